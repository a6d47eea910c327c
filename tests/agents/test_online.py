"""Tests of driftrec.agents.online.run_online (baselines and SB3 models on a running stream)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from driftrec.agents.attention import AttentionConfig
from driftrec.agents.baselines import make_baseline
from driftrec.agents.online import StepRecord, is_sb3_model, run_online
from driftrec.agents.sb3_policy import recommender_policy_kwargs
from driftrec.envs.config import EnvConfig
from driftrec.envs.gym_env import DriftRecVectorEnv
from driftrec.envs.sb3 import DriftRecSB3VecEnv

torch.set_num_threads(1)

B = 4
N_STEPS = 8  # PPO rollout length in the SB3 tests
TINY = AttentionConfig(embed_dim=8, num_heads=2, num_layers=1, ff_dim=16)


def _config() -> EnvConfig:
    return EnvConfig().with_overrides(num_items=32, num_topics=4, history_len=4, max_steps=5)


def _vec_env(seed: int = 0) -> DriftRecVectorEnv:
    env = DriftRecVectorEnv(B, _config())
    env.reset(seed=seed)
    return env


def _ppo(seed: int = 0) -> PPO:
    env = DriftRecSB3VecEnv(B, _config(), seed=seed)
    kwargs = recommender_policy_kwargs(env, attention=TINY, ids_only=True)
    return PPO(
        "AttentionRecommenderPolicy",
        env,
        policy_kwargs=kwargs,
        n_steps=N_STEPS,
        batch_size=N_STEPS * B,
        n_epochs=1,
        seed=seed,
        device="cpu",
    )


def _params(model: PPO) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class _Recorder:
    """A hook that keeps every StepRecord and can stop after ``stop_after`` calls."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.records: list[StepRecord] = []
        self.stop_after = stop_after

    def __call__(self, record: StepRecord) -> bool:
        self.records.append(record)
        return self.stop_after is None or len(self.records) < self.stop_after

    @property
    def clocks(self) -> list[int]:
        return [r.clock for r in self.records]


class _PredictOnly:
    """An agent with predict but no update."""

    name = "predict-only"
    privileged = False

    def predict(self, obs: Any, state: Any = None, **_: Any) -> tuple[np.ndarray, Any]:
        return np.zeros(len(obs), dtype=np.int64), None


# --------------------------------------------------------------------------------------------
def test_baseline_runs_exact_steps_and_continues_clock() -> None:
    """A baseline runs exactly N steps, one hook call each, clock +1 a step; a 2nd call goes on."""
    env = _vec_env()
    agent = make_baseline("random", env, seed=0)
    hook = _Recorder()
    assert run_online(agent, env, 12, on_step=hook) == 12
    assert hook.clocks == list(range(1, 13))
    first = hook.records[0]
    d = env.sim.layout.size
    assert first.observation.shape == (B, d) and first.next_observation.shape == (B, d)
    assert first.actions.shape == (B,) and first.reward.shape == (B,)
    assert first.terminated.shape == first.truncated.shape == (B,)
    assert "interests" in first.info  # the full, privileged info for measurement
    # consecutive records chain: a step's next observation is the next step's observation
    for prev, cur in zip(hook.records, hook.records[1:], strict=False):
        np.testing.assert_array_equal(prev.next_observation, cur.observation)
    assert any(r.truncated.any() for r in hook.records)  # max_steps=5: sessions ended
    last_obs = hook.records[-1].next_observation
    hook2 = _Recorder()
    assert run_online(agent, env, 5, on_step=hook2) == 5
    assert hook2.clocks == list(range(13, 18))  # no reset: the clock keeps running
    np.testing.assert_array_equal(hook2.records[0].observation, last_obs)
    assert env.sim.state.clock == 17


def test_baseline_update_gets_guarded_info() -> None:
    """With learn=True a baseline's update sees every step, without the privileged info keys."""
    env = _vec_env()
    agent = make_baseline("popularity", env, seed=0)
    seen: list[dict[str, Any]] = []
    original = agent.update

    def spy(obs: Any, act: Any, rew: Any, nxt: Any, done: Any, info: dict[str, Any]) -> None:
        seen.append(info)
        original(obs, act, rew, nxt, done, info)

    agent.update = spy  # type: ignore[method-assign]
    run_online(agent, env, 6)
    assert len(seen) == 6
    assert all("interests" not in i and "oracle_action" not in i for i in seen)
    assert all("clicked_item" in i for i in seen)
    seen.clear()
    run_online(agent, env, 3, learn=False)
    assert seen == []


def test_hook_returning_false_stops_early() -> None:
    """A hook returning False stops the run after that step; the return value says how many."""
    env = _vec_env()
    agent = make_baseline("random", env, seed=0)
    hook = _Recorder(stop_after=3)
    assert run_online(agent, env, 10, on_step=hook) == 3
    assert hook.clocks == [1, 2, 3] and env.sim.state.clock == 3
    # returning None (not False) does not stop
    assert run_online(agent, env, 4, on_step=lambda r: None) == 4
    assert env.sim.state.clock == 7


def test_learn_without_update_raises_type_error() -> None:
    """learn=True on an agent without update() raises TypeError; learn=False runs it."""
    env = _vec_env()
    agent = _PredictOnly()
    msg = "_PredictOnly has no update(); run it with learn=False"
    with pytest.raises(TypeError, match=f"^{re.escape(msg)}$"):
        run_online(agent, env, 3)
    assert env.sim.state.clock == 0  # nothing ran
    assert run_online(agent, env, 3, learn=False) == 3


def test_bad_num_steps_and_unreset_env() -> None:
    """num_steps must be an int >= 0 (0 does nothing); an env never reset raises RuntimeError."""
    env = _vec_env()
    agent = make_baseline("random", env, seed=0)
    with pytest.raises(ValueError, match=r"^'num_steps' must be an integer >= 0 \(got -1\)$"):
        run_online(agent, env, -1)
    with pytest.raises(ValueError, match="'num_steps'"):
        run_online(agent, env, True)  # type: ignore[arg-type]
    assert run_online(agent, env, 0) == 0 and env.sim.state.clock == 0
    fresh = DriftRecVectorEnv(B, _config())
    with pytest.raises(RuntimeError, match="reset the env once before run_online"):
        run_online(make_baseline("random", fresh, seed=0), fresh, 2)


def test_sb3_learn_false_keeps_parameters_learn_true_changes_them() -> None:
    """learn=False only acts (parameters unchanged, no timesteps); learn=True updates them."""
    model = _ppo()
    assert is_sb3_model(model) and not is_sb3_model(object())
    env = model.get_env()
    before = _params(model)
    hook = _Recorder()
    assert run_online(model, env, N_STEPS, learn=False, on_step=hook) == N_STEPS
    assert _same(before, _params(model))
    assert model.num_timesteps == 0
    assert hook.clocks == list(range(1, N_STEPS + 1))
    assert hook.records[0].actions.shape == (B,)
    assert run_online(model, env, N_STEPS, learn=True) == N_STEPS
    assert not _same(before, _params(model))
    assert model.num_timesteps == N_STEPS * B


def test_sb3_learning_continues_across_calls() -> None:
    """Learning calls accumulate num_timesteps and carry _last_obs and the clock over."""
    model = _ppo()
    env = model.get_env()
    hook = _Recorder()
    assert run_online(model, env, N_STEPS, on_step=hook) == N_STEPS
    assert model.num_timesteps == N_STEPS * B
    assert hook.clocks == list(range(1, N_STEPS + 1))
    last_obs = np.array(model._last_obs, copy=True)
    np.testing.assert_array_equal(last_obs, hook.records[-1].next_observation)
    hook2 = _Recorder()
    assert run_online(model, env, N_STEPS, on_step=hook2) == N_STEPS
    assert model.num_timesteps == 2 * N_STEPS * B
    assert hook2.clocks == list(range(N_STEPS + 1, 2 * N_STEPS + 1))  # no env reset
    np.testing.assert_array_equal(hook2.records[0].observation, last_obs)
    # acting without learning also continues the stream, and a later learn goes on from it
    hook3 = _Recorder()
    run_online(model, env, 3, learn=False, on_step=hook3)
    np.testing.assert_array_equal(hook3.records[0].observation, hook2.records[-1].next_observation)
    hook4 = _Recorder()
    run_online(model, env, N_STEPS, on_step=hook4)
    assert hook4.clocks[0] == 2 * N_STEPS + 4
    np.testing.assert_array_equal(hook4.records[0].observation, hook3.records[-1].next_observation)
    assert model.num_timesteps == 3 * N_STEPS * B


def test_sb3_learning_rounds_up_to_whole_rollouts() -> None:
    """A learning on-policy model runs num_steps rounded up to a multiple of n_steps."""
    model = _ppo()
    assert run_online(model, model.get_env(), 3) == N_STEPS
    assert model.num_timesteps == N_STEPS * B


def test_sb3_hook_false_stops_learning_early() -> None:
    """A hook returning False stops an SB3 learning call (and an acting one) at that step."""
    model = _ppo()
    hook = _Recorder(stop_after=3)
    assert run_online(model, model.get_env(), 2 * N_STEPS, on_step=hook) == 3
    assert hook.clocks == [1, 2, 3]
    hook = _Recorder(stop_after=2)
    assert run_online(model, model.get_env(), 5, learn=False, on_step=hook) == 2
    assert hook.clocks == [4, 5]


def test_sb3_stopped_learning_resumes_from_current_observation() -> None:
    """After a hook stops a learning call, the next call starts from the env's current state."""
    model = _ppo()
    hook = _Recorder(stop_after=3)
    run_online(model, model.get_env(), 2 * N_STEPS, on_step=hook)
    hook2 = _Recorder()
    run_online(model, model.get_env(), 2, learn=False, on_step=hook2)
    np.testing.assert_array_equal(hook2.records[0].observation, hook.records[-1].next_observation)


def test_sb3_dqn_learning_with_hook() -> None:
    """An off-policy model (DQN) learns with a hook and reports every step."""
    from stable_baselines3 import DQN

    env = DriftRecSB3VecEnv(B, _config(), seed=0)
    model = DQN(
        "AttentionRecommenderPolicy",
        env,
        policy_kwargs=recommender_policy_kwargs(env, attention=TINY, ids_only=True),
        learning_starts=4,
        batch_size=8,
        buffer_size=256,
        seed=0,
    )
    hook = _Recorder()
    assert run_online(model, env, 6, on_step=hook) == 6
    assert hook.clocks == list(range(1, 7))
    assert model.num_timesteps == 6 * B
