"""Tests for driftrec.agents.base: the Recommender protocol, evaluate() and the info guard."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest

from driftrec.agents.base import (
    EvalResult,
    Recommender,
    evaluate,
    final_observation,
    privileged_info_guard,
)
from driftrec.agents.baselines import OracleAgent, RandomAgent
from driftrec.envs import DriftEvent, DriftRecVectorEnv

B = 4  # users per vector step in the small envs
PRIVILEGED = {
    "interests",
    "click_prob",
    "expected_reward",
    "drift_events",
    "oracle_action",
    "oracle_expected_reward",
}


def _env(num_envs: int = B, **overrides: Any) -> DriftRecVectorEnv:
    overrides.setdefault("num_items", 40)
    return DriftRecVectorEnv(num_envs, **overrides)


class SpyAgent:
    """Recommends item 0 and records what update() receives."""

    name = "spy"
    privileged = False

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic=False
    ) -> tuple[np.ndarray, Any]:
        return np.zeros(len(observation), dtype=np.int64), state

    def update(self, observation, action, reward, next_observation, done, info) -> None:
        self.calls.append(
            dict(
                obs=observation.copy(),
                next_obs=np.array(next_observation, copy=True),
                done=done.copy(),
                reward=reward.copy(),
                info=info,
            )
        )


class PrivilegedSpy(SpyAgent):
    """A spy that is allowed to see the ground truth."""

    privileged = True


class PredictOnly:
    """Has predict() but no update(), like a trained SB3 model."""

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return np.ones(len(observation), dtype=np.int64), state


# --------------------------------------------------------------------------------------------
def test_protocol_is_runtime_checkable() -> None:
    """Baselines and the spy satisfy Recommender; a predict-only object does not."""
    env = _env()
    assert isinstance(RandomAgent(env, seed=0), Recommender)
    assert isinstance(OracleAgent(env), Recommender)
    assert isinstance(SpyAgent(), Recommender)
    assert not isinstance(PredictOnly(), Recommender)


def test_evaluate_records_arrays_of_num_steps() -> None:
    """Every per-step array has one entry per vector step and the right dtype."""
    res = evaluate(RandomAgent(_env(), seed=0), _env(), 25, seed=0)
    assert isinstance(res, EvalResult)
    assert res.num_steps == 25 and res.num_envs == B and res.agent == "random"
    for name in ("reward", "expected_reward", "oracle_expected_reward", "click_rate"):
        arr = getattr(res, name)
        assert arr.shape == (25,) and arr.dtype == np.float64 and np.isfinite(arr).all()
    for name in ("sessions_finished", "terminated"):
        assert getattr(res, name).shape == (25,) and getattr(res, name).dtype == np.int64
    assert res.drift_events.shape == (25,) and res.drift_events.dtype == np.int32
    assert res.actions is None
    assert ((res.click_rate >= 0) & (res.click_rate <= 1)).all()
    assert res.total_reward == pytest.approx(res.reward.sum() * B)
    assert res.wall_time_s > 0 and res.steps_per_second > 0


def test_evaluate_record_actions_shapes() -> None:
    """record_actions keeps (T, B) single-item and (T, B, k) slate actions."""
    env = _env()
    res = evaluate(RandomAgent(env, seed=0), env, 5, seed=0, record_actions=True)
    assert res.actions is not None and res.actions.shape == (5, B)
    env = _env(slate_size=10)
    res = evaluate(RandomAgent(env, seed=0), env, 5, seed=0, record_actions=True)
    assert res.actions is not None and res.actions.shape == (5, B, 10)


def test_to_dict_is_json_ready() -> None:
    """to_dict() holds the summary numbers and lists that json can write."""
    env = _env()
    res = evaluate(RandomAgent(env, seed=0), env, 6, seed=0, record_actions=True)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["num_steps"] == 6 and d["agent"] == "random" and len(d["reward"]) == 6
    assert d["regret"] == pytest.approx(res.regret)
    assert d["normalized_reward"] == pytest.approx(res.normalized_reward)
    assert np.asarray(d["actions"]).shape == (6, B)


def test_oracle_has_zero_regret() -> None:
    """The oracle's expected reward is the oracle's expected reward: regret 0, normalized 1."""
    env = _env(slate_size=1)
    res = evaluate(OracleAgent(env), env, 30, seed=1)
    assert res.oracle_expected_reward is not None
    np.testing.assert_allclose(res.expected_reward, res.oracle_expected_reward, atol=1e-9)
    assert res.regret == pytest.approx(0.0, abs=1e-7)
    assert res.normalized_reward == pytest.approx(1.0)


def test_oracle_has_zero_regret_on_slates() -> None:
    """On click-reward slates the oracle agent also matches the reported oracle exactly."""
    env = _env(slate_size=5)
    res = evaluate(OracleAgent(env), env, 20, seed=2)
    assert res.instant_regret is not None
    np.testing.assert_allclose(res.instant_regret, 0.0, atol=1e-9)


def test_random_is_below_the_oracle_and_regret_is_positive() -> None:
    """Random's normalized reward is below the oracle's and its regret is positive per step."""
    env = _env(num_envs=16, num_items=200)
    rand = evaluate(RandomAgent(env, seed=0), env, 40, seed=3)
    env = _env(num_envs=16, num_items=200)
    orac = evaluate(OracleAgent(env), env, 40, seed=3)
    assert rand.normalized_reward is not None and orac.normalized_reward is not None
    assert rand.normalized_reward < orac.normalized_reward - 0.2
    assert rand.instant_regret is not None and (rand.instant_regret >= 0).all()
    assert rand.regret is not None and rand.regret > 0


def test_without_oracle_info_regret_is_none() -> None:
    """With oracle_info=False there is no oracle array, regret or normalized reward."""
    env = _env(oracle_info=False)
    res = evaluate(RandomAgent(env, seed=0), env, 5, seed=0)
    assert res.oracle_expected_reward is None
    assert res.regret is None and res.normalized_reward is None and res.instant_regret is None
    assert res.to_dict()["oracle_expected_reward"] is None


def test_guard_strips_privileged_keys() -> None:
    """Non-privileged agents lose the ground truth (and its _masks); privileged keep all."""
    info = {
        "interests": 1,
        "_interests": 1,
        "click_prob": 1,
        "expected_reward": 1,
        "drift_events": 1,
        "oracle_action": 1,
        "oracle_expected_reward": 1,
        "_oracle_action": 1,
        "clicked_item": 1,
        "final_obs": 1,
        "_final_obs": 1,
    }
    assert set(privileged_info_guard(SpyAgent(), info)) == {
        "clicked_item",
        "final_obs",
        "_final_obs",
    }
    assert privileged_info_guard(PrivilegedSpy(), info) == info
    assert privileged_info_guard(object(), info).keys() == {
        "clicked_item",
        "final_obs",
        "_final_obs",
    }


def test_evaluate_hands_guarded_info_to_update() -> None:
    """update() of a normal agent never sees oracle fields; a privileged agent does."""
    spy, priv = SpyAgent(), PrivilegedSpy()
    evaluate(spy, _env(), 3, seed=0)
    evaluate(priv, _env(), 3, seed=0)
    assert len(spy.calls) == 3 and len(priv.calls) == 3
    for call in spy.calls:
        assert not PRIVILEGED & set(call["info"]) and "clicked_item" in call["info"]
    for call in priv.calls:
        assert PRIVILEGED <= set(call["info"])


def test_update_gets_final_obs_of_finished_users() -> None:
    """With same-step autoreset, next_observation holds the finished user's last observation."""
    env = _env(max_steps=2)
    spy = SpyAgent()
    evaluate(spy, env, 4, seed=0)
    lay = env.layout
    second = spy.calls[1]  # every session ends at its second step
    assert second["done"].all()
    # the last observation has 2 impressions and progress 1, not a fresh user's empty history
    np.testing.assert_array_equal(second["next_obs"][:, lay.mask].sum(axis=1), 2.0)
    np.testing.assert_array_equal(second["next_obs"][:, lay.progress], 1.0)
    # the following update starts from the fresh user (one impression after its first step)
    np.testing.assert_array_equal(spy.calls[2]["obs"][:, lay.mask].sum(axis=1), 0.0)


def test_final_observation_patches_flat_and_dict() -> None:
    """final_observation replaces masked rows, for flat and dict observations alike."""
    nxt = np.zeros((3, 2), dtype=np.float32)
    final = np.array([None, np.ones(2, np.float32), None], dtype=object)
    info = {"final_obs": final, "_final_obs": np.array([False, True, False])}
    out = final_observation(nxt, info)
    np.testing.assert_array_equal(out, [[0, 0], [1, 1], [0, 0]])
    assert nxt.sum() == 0  # input untouched
    assert final_observation(nxt, {}) is nxt
    dnext = {"a": np.zeros((3, 2)), "b": np.zeros((3, 1))}
    dfinal = np.array([None, {"a": np.ones(2), "b": np.full(1, 2.0)}, None], dtype=object)
    dout = final_observation(dnext, {"final_obs": dfinal, "_final_obs": info["_final_obs"]})
    np.testing.assert_array_equal(dout["a"][1], [1, 1])
    np.testing.assert_array_equal(dout["b"][:, 0], [0, 2, 0])


def test_callback_sees_progress_and_can_stop() -> None:
    """callback(step, result, info) runs each step; returning False stops the run early."""
    seen: list[tuple[int, int]] = []

    def cb(step: int, res: EvalResult, info: Any) -> bool:
        seen.append((step, res.num_steps))
        assert "oracle_action" in info  # the callback gets the full info
        return step < 4

    env = _env()
    res = evaluate(RandomAgent(env, seed=0), env, 20, seed=0, callback=cb)
    assert seen == [(t, t + 1) for t in range(5)]
    assert res.num_steps == 5 and res.reward.shape == (5,)


def test_predict_only_agents_need_learn_false() -> None:
    """An agent without update() is rejected with learn=True and runs with learn=False."""
    msg = "agent PredictOnly has no update() method; pass learn=False to evaluate a fixed policy"
    with pytest.raises(TypeError, match=f"^{re.escape(msg)}$"):
        evaluate(PredictOnly(), _env(), 2)
    res = evaluate(PredictOnly(), _env(), 2, learn=False)
    assert res.agent == "PredictOnly" and res.num_steps == 2


def test_evaluate_rejects_a_single_env() -> None:
    """evaluate() needs a vector env and says so."""
    from driftrec.envs import DriftRecEnv

    with pytest.raises(TypeError, match="must be a vector env"):
        evaluate(RandomAgent(_env(), seed=0), DriftRecEnv(num_items=40), 2)


def test_drift_events_are_or_over_users() -> None:
    """The NEW_ITEMS bit is set exactly at the steps where items are released."""
    env = _env(scenario="NewItems", new_item_fraction=0.5, **{"catalog.release_horizon": 20})
    res = evaluate(RandomAgent(env, seed=0), env, 25, seed=0)
    releases = set(env.catalog.release_step.tolist()) - {0}
    got = {t + 1 for t in range(25) if res.drift_events[t] & DriftEvent.NEW_ITEMS}
    assert got == releases
