"""The planning references: static tilts of the greedy oracle, the rollout planner, and the
first-order lookahead (fast tests; the measured table is in test_planner_slow.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from driftrec.agents.baselines import make_baseline
from driftrec.agents.planner import (
    RolloutBase,
    RolloutPlanner,
    Tilt,
    _Spacing,
    greedy_scores,
    search_static_tilts,
    stay_returns,
    tilt_family,
)
from driftrec.envs.config import CatalogConfig, DriftConfig, EnvConfig, SessionConfig
from driftrec.envs.drift import Aversion, Boredom
from driftrec.envs.gym_env import DriftRecVectorEnv
from driftrec.envs.scenarios import get_scenario


def test_planner_equals_greedy_without_long_term_state() -> None:
    """With neither satisfaction nor boredom the planner is the greedy oracle."""
    env = DriftRecVectorEnv(64, scenario="Stationary")
    env.reset(seed=3)
    planner = make_baseline("planner-first-order", env)
    oracle = make_baseline("oracle", env)
    obs, _ = env.reset(seed=3)
    for _ in range(20):
        a, _ = planner.predict(obs)
        b, _ = oracle.predict(obs)
        np.testing.assert_array_equal(a, b)
        obs, *_ = env.step(a)


def test_planner_is_privileged_validates_and_fills_short_slates() -> None:
    """Privileged; a bad lookahead names the field; with 6 of 12 items released a slate of 10
    holds released items only (repeated)."""
    env = DriftRecVectorEnv(
        3,
        scenario="LongTermBoredom",
        num_items=12,
        slate_size=10,
        new_item_fraction=0.5,
        history_len=10,
    )
    obs, _ = env.reset(seed=0)
    agent = make_baseline("planner-first-order", env)
    assert agent.privileged
    released = env.catalog.release_step <= 0
    assert released.sum() == 6
    actions, _ = agent.predict(obs)
    assert actions.shape == (3, 10) and released[actions].all()
    with pytest.raises(ValueError, match=r"^'lookahead' must be a finite number >= 0 \(got -1\)$"):
        make_baseline("planner-first-order", env, lookahead=-1)


def test_planner_values_by_hand() -> None:
    """v_i = p_i (1 + p*(1 - p*) w g (q_i - 1/2) H) with satisfaction only, checked by hand."""
    env = DriftRecVectorEnv(2, scenario="LongTerm", num_items=30)
    env.reset(seed=1)
    agent = make_baseline("planner-first-order", env)
    sim = env.sim
    scores = sim.attraction_all()
    p = 1.0 / (1.0 + np.exp(1.5 - scores))
    p_best = p.max(axis=1, keepdims=True)
    q = np.asarray(env.catalog.quality)
    keep = 0.95  # decay 0.05, 100 steps left
    horizon = keep * (1 - keep**100) / 0.05
    expected = p * (1 + p_best * (1 - p_best) * 1.5 * 0.2 * (q - 0.5) * horizon)
    np.testing.assert_allclose(agent.values(), expected, rtol=1e-12)


def test_tilt_validates_and_labels() -> None:
    """Tilt names a bad direction or space with the choices; weight 0 is the greedy oracle."""
    assert Tilt().label == "greedy"
    assert Tilt(1.5).label == "quality +1.5 (logit)"
    assert RolloutBase(Tilt(-2.0, "purity"), spacing=True).label == "purity -2 (logit) + spacing"
    msg = "'direction' must be one of ['quality', 'purity', 'population'] (got 'fame')"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        Tilt(1.0, "fame")
    msg = "'space' must be one of ['logit', 'log', 'linear'] (got 'exp')"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        Tilt(1.0, space="exp")
    family = tilt_family(weights=(1.0, 2.0), directions=("quality",), spaces=("logit", "linear"))
    assert family == [
        Tilt(),
        Tilt(1.0),
        Tilt(2.0),
        Tilt(0.1, space="linear"),
        Tilt(0.2, space="linear"),
    ]


def test_static_tilt_is_a_change_of_quality_weight() -> None:
    """A quality tilt w in the logit space ranks like the oracle of a world with quality weight
    q_w + w; weight 0 is the greedy oracle itself."""
    env = DriftRecVectorEnv(16, scenario="LongTerm", num_items=50)
    obs, _ = env.reset(seed=2)
    oracle = make_baseline("oracle", env)
    flat = make_baseline("static-tilt", env)
    tilted = make_baseline("static-tilt", env, weight=1.5)
    q = np.asarray(env.catalog.quality)
    for _ in range(5):
        np.testing.assert_array_equal(flat.predict(obs)[0], oracle.predict(obs)[0])
        # LongTerm's quality weight is -1: the tilt makes it +0.5
        expected = (env.sim.attraction_all() + 1.5 * (q - 0.5)).argmax(axis=1)
        action, _ = tilted.predict(obs)
        np.testing.assert_array_equal(action, expected)
        obs, *_ = env.step(action)


def test_greedy_scores_are_monotone_in_the_one_step_reward() -> None:
    """Every score space ranks items like the oracle's expected one-step reward."""
    env = DriftRecVectorEnv(4, scenario="LongTerm", num_items=40, reward="engagement")
    env.reset(seed=0)
    reward = env.sim.item_rewards()
    for space in ("logit", "log", "linear"):
        scores = greedy_scores(env.sim, space)
        np.testing.assert_array_equal(np.argsort(scores, axis=1), np.argsort(reward, axis=1))


def test_search_static_tilts_is_sorted_and_reproducible() -> None:
    """The search returns every policy once, best first, the same for the same seed."""
    cfg = get_scenario("LongTerm").config.with_overrides(num_items=60, max_steps=20)
    family = tilt_family(weights=(1.0, 4.0), directions=("quality",))
    first = search_static_tilts(cfg, family, num_users=8, seed=3)
    again = search_static_tilts(cfg, family, num_users=8, seed=3)
    assert first == again
    assert sorted(r.tilt.label for r in first) == sorted(t.label for t in family)
    means = [r.mean_return for r in first]
    assert means == sorted(means, reverse=True)


def _aversion_world(**session: int) -> EnvConfig:
    return EnvConfig(
        catalog=CatalogConfig(num_items=40, num_topics=4),
        session=SessionConfig(**session) if session else SessionConfig(),
        drift=DriftConfig(processes=(Boredom(gain=1.0, decay=0.1), Aversion(threshold=1.0))),
    )


def test_spacing_flags_clicks_that_start_aversion() -> None:
    """A click on i is unsafe iff 0.9 b_k + z_ik > 1 for a topic k the item has (z_ik > 0)."""
    env = DriftRecVectorEnv(3, config=_aversion_world())
    env.reset(seed=0)
    boredom = np.array([[0.0] * 4, [0.3, 0.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    z = np.asarray(env.catalog.topics)
    expected = ((0.9 * boredom[:, None, :] + z[None]) > 1.0) & (z[None] > 0)
    np.testing.assert_array_equal(_Spacing(env.sim).unsafe(boredom), expected.any(axis=2))
    assert _Spacing(env.sim).unsafe(boredom)[2].all()  # everything is over for user 2


def test_rollout_planner_choice_and_determinism() -> None:
    """Another candidate replaces the base's choice only with a clear paired gain; the same
    seed gives the same actions."""
    env = DriftRecVectorEnv(4, config=_aversion_world(max_steps=30))
    obs, _ = env.reset(seed=1)
    planner = make_baseline("planner", env, seed=5, base=None, samples=3, horizon=10)
    assert isinstance(planner, RolloutPlanner) and planner.privileged
    returns = np.array(
        [
            [[5.0, 5.0, 5.0], [6.0, 6.0, 6.0]],  # a sure gain of 1: candidate 1
            [[5.0, 5.0, 5.0], [5.0, 5.0, 5.0]],  # a tie: the base's choice
            [[5.0, 5.0, 5.0], [9.0, 5.0, 4.0]],  # mean gain 1, s.e. 1.53 > 1: the base's
            [[5.0, 6.0, 7.0], [4.0, 5.0, 6.0]],  # a sure loss
        ]
    )
    np.testing.assert_array_equal(planner.choose(returns), [1, 0, 0, 0])
    twin = make_baseline("planner", env, seed=5, base=None, samples=3, horizon=10)
    a, _ = planner.predict(obs)
    b, _ = twin.predict(obs)
    np.testing.assert_array_equal(a, b)


def test_rollout_planner_auto_base_and_stay_returns() -> None:
    """With Aversion the auto search also tries spacing; a whole stay runs and pairs by seed."""
    env = DriftRecVectorEnv(6, config=_aversion_world(max_steps=15))
    planner = make_baseline(
        "planner", env, seed=0, samples=2, horizon=5, search_users=4, candidates=2
    )
    assert any(r.spacing for r in planner.search) and any(not r.spacing for r in planner.search)
    assert planner.base == planner.search[0].base
    ret, length = stay_returns(planner, env, seed=3)
    assert ret.shape == length.shape == (6,) and (length >= 1).all() and (length <= 15).all()
    oracle = make_baseline("oracle", env)
    ret2, _ = stay_returns(oracle, env, seed=3)
    ret3, _ = stay_returns(make_baseline("oracle", env), env, seed=3)
    np.testing.assert_array_equal(ret2, ret3)  # the same users for the same seed
    with pytest.raises(TypeError, match="^'base' must be 'auto', a Tilt, a RolloutBase or None"):
        make_baseline("planner", env, base="greedy")


def test_first_order_aversion_damage_by_hand() -> None:
    """D(b) = rate * sum_t max(b 0.9^t - 1, 0), summed directly, for a few boredom levels."""
    env = DriftRecVectorEnv(1, config=_aversion_world())
    env.reset(seed=0)
    agent = make_baseline("planner-first-order", env)
    b = np.array([0.5, 1.0, 1.2, 3.0, 10.0])
    direct = [sum(max(x * 0.9**t - 1.0, 0.0) for t in range(200)) for x in b]
    np.testing.assert_allclose(agent._total_damage(b), direct, rtol=1e-12, atol=1e-12)


def test_rollout_planner_is_greedy_where_nothing_lasts() -> None:
    """Without satisfaction, boredom, aversion or consumption drift the planner is the oracle."""
    env = DriftRecVectorEnv(8, scenario="AbruptShift", num_items=50)
    obs, _ = env.reset(seed=4)
    planner = make_baseline("planner", env, seed=0)
    oracle = make_baseline("oracle", env)
    assert not planner.plans and planner.search == [] and planner.base == RolloutBase()
    for _ in range(5):
        a, _ = planner.predict(obs)
        np.testing.assert_array_equal(a, oracle.predict(obs)[0])
        obs, *_ = env.step(a)


def test_family_returns_equal_the_agents_on_the_env_users() -> None:
    """Stepped together in one batch, each tilt earns what StaticTiltAgent earns on the env's
    users (slot_seeds of the env seed), user by user."""
    from driftrec.agents.planner import StaticTiltAgent, family_returns
    from driftrec.envs.rng import slot_seeds

    cfg = get_scenario("LongTermAversion").config.with_overrides(num_items=80, max_steps=30)
    env = DriftRecVectorEnv(5, config=cfg)
    family = [Tilt(), Tilt(2.0), Tilt(-1.0, "purity", "log"), Tilt(0.2, "population", "linear")]
    batched = family_returns(cfg, family, slot_seeds(9, 5), block=3)
    for tilt, row in zip(family, batched, strict=True):
        agent = StaticTiltAgent(env, weight=tilt.weight, direction=tilt.direction, space=tilt.space)
        ret, _ = stay_returns(agent, env, seed=9)
        np.testing.assert_array_equal(ret, row)
