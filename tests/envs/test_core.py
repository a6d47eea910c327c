"""Tests of the batched core: clicks, rewards, patience, the oracle and the observation history."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from driftrec.envs.choice import attraction, first_occurrence, slate_click_probs
from driftrec.envs.config import (
    CatalogConfig,
    ChoiceConfig,
    EnvConfig,
    RewardConfig,
    SessionConfig,
    UserConfig,
)
from driftrec.envs.core import BatchSimulator, SimState
from driftrec.envs.gym_env import DriftRecEnv


def _raises(exc: type[Exception], msg: str) -> Any:
    return pytest.raises(exc, match=f"^{re.escape(msg)}$")


def _sim(config: EnvConfig, num_users: int, seed: int = 0) -> BatchSimulator:
    sim = BatchSimulator(config, num_users=num_users)
    sim.seed([seed + i for i in range(num_users)])
    return sim


def _with_new_items(config: EnvConfig) -> EnvConfig:
    """Half of the catalog released late (global steps 1..10000)."""
    return config.with_overrides(
        catalog=dataclasses.replace(config.catalog, new_item_fraction=0.5, release_horizon=10_000)
    )


def _late_items(sim: BatchSimulator, after: int) -> NDArray[np.int64]:
    late = np.flatnonzero(sim.catalog.release_step > after)
    assert late.size >= 3, "the test catalog needs items released late"
    return late


def _slate_values(
    sim: BatchSimulator, slates: NDArray[np.int64], interest: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Click-reward expected value of ``slates`` (U, S, k) for users with ``interest`` (U, K)."""
    ch = sim.config.choice
    u, s, k = slates.shape
    flat = slates.reshape(u * s, k)
    uv = np.repeat(ch.interest_weight * interest, s, axis=0)
    bias = ch.quality_weight * (sim.catalog.quality[flat] - 0.5)
    scores = attraction(uv, sim.catalog.topics[flat], bias)
    probs = slate_click_probs(scores, first_occurrence(flat), ch)
    return (1.0 - probs[:, k]).reshape(u, s)


# --------------------------------------------------------------------------------------------
# construction and argument checks
# --------------------------------------------------------------------------------------------
def test_bad_arguments_raise(tiny_config: EnvConfig) -> None:
    """Bad num_users, seed counts and actions raise with exact messages; step needs a seed."""
    with _raises(ValueError, "'num_users' must be an integer >= 1 (got 0)"):
        BatchSimulator(tiny_config, num_users=0)
    sim = BatchSimulator(tiny_config, num_users=4)
    with _raises(
        RuntimeError, "the simulator has not been seeded: call seed(...) (or env.reset) first"
    ):
        sim.step(np.zeros(4, dtype=np.int64))
    with _raises(ValueError, "expected 4 seeds, one per user slot (got 3)"):
        sim.seed([0, 1, 2])
    sim.seed([0, 1, 2, 3])
    with _raises(
        ValueError,
        "action must be integers of shape (4,) for 4 users and slate size 1 "
        "(got dtype float64 and shape (4,))",
    ):
        sim.step(np.zeros(4))
    with _raises(ValueError, "action items must be in [0, 32) (got 32)"):
        sim.step(np.array([0, 32, 1, 2]))
    with _raises(ValueError, "action items must be in [0, 32) (got -1)"):
        sim.step(np.array([0, 1, -1, 2]))


def test_state_memory_does_not_scale_with_catalog(tiny_config: EnvConfig) -> None:
    """Per-user state arrays have shapes (B, K), (B,) or (B, 3H + 2), independent of N."""
    small = _sim(tiny_config, 4)
    large = _sim(tiny_config.with_overrides(num_items=5000), 4)
    for f in dataclasses.fields(SimState):
        a, b = getattr(small.state, f.name), getattr(large.state, f.name)
        if isinstance(a, np.ndarray):
            assert a.shape == b.shape and a.shape[0] == 4, f.name
            assert a.size <= 4 * (3 * 8 + 2), f.name
    assert small.state.interest.shape == (4, 4)
    assert small.state.obs.shape == (4, 3 * 8 + 2)


# --------------------------------------------------------------------------------------------
# clicks and rewards
# --------------------------------------------------------------------------------------------
def test_single_item_click_rate_matches_click_prob(tiny_config: EnvConfig) -> None:
    """Over many users and steps, the click count matches the sum of reported click_prob."""
    sim = _sim(tiny_config, 2000)
    rng = np.random.default_rng(0)
    clicks = probs = var = 0.0
    for _ in range(5):
        r = sim.step(rng.integers(0, 32, 2000))
        clicks += (r.clicked_item >= 0).sum()
        probs += r.click_prob.sum()
        var += (r.click_prob * (1 - r.click_prob)).sum()
    assert abs(clicks - probs) < 5 * math.sqrt(var)  # sum of independent Bernoullis


def test_slate_click_rate_matches_click_prob(tiny_config: EnvConfig) -> None:
    """For slates of 10, clicks per position match the MNL probabilities (and click_prob)."""
    cfg = tiny_config.with_overrides(
        history_len=10, choice=ChoiceConfig(slate_size=10, no_click_score=3.0)
    )
    users, k = 1000, 10
    sim = _sim(cfg, users)
    rng = np.random.default_rng(1)
    counts = np.zeros(k + 1)
    expect = np.zeros(k + 1)
    var = np.zeros(k + 1)
    for _ in range(5):
        slate = rng.integers(0, 32, (users, k))
        r = sim.step(slate)
        probs = _slate_full_probs(sim, slate, r.interest)
        np.testing.assert_allclose(r.click_prob, 1.0 - probs[:, k], rtol=1e-12)
        clicked = r.clicked_item >= 0
        pos = np.where(clicked, np.argmax(slate == r.clicked_item[:, None], axis=1), k)
        counts += np.bincount(pos, minlength=k + 1)
        expect += probs.sum(axis=0)
        var += (probs * (1 - probs)).sum(axis=0)
        assert np.all(r.reward == clicked)
    assert np.all(np.abs(counts - expect) < 5 * np.sqrt(var) + 1e-9)


def _slate_full_probs(
    sim: BatchSimulator, slate: NDArray[np.int64], interest: NDArray[np.float64]
) -> NDArray[np.float64]:
    ch = sim.config.choice
    scores = attraction(
        ch.interest_weight * interest,
        sim.catalog.topics[slate],
        ch.quality_weight * (sim.catalog.quality[slate] - 0.5),
    )
    return slate_click_probs(scores, first_occurrence(slate), ch)


def test_click_reward_is_one_iff_clicked(tiny_config: EnvConfig) -> None:
    """With click reward, reward == 1 exactly when clicked_item >= 0; expected == click_prob."""
    sim = _sim(tiny_config, 500)
    rng = np.random.default_rng(2)
    for _ in range(3):
        action = rng.integers(0, 32, 500)
        r = sim.step(action)
        np.testing.assert_array_equal(r.reward, (r.clicked_item >= 0).astype(float))
        clicked = r.clicked_item >= 0
        np.testing.assert_array_equal(r.clicked_item[clicked], action[clicked])
        np.testing.assert_array_equal(r.expected_reward, r.click_prob)


def test_engagement_reward_is_clicked_quality(tiny_config: EnvConfig) -> None:
    """With engagement reward, reward is the clicked item's quality (0 without a click)."""
    sim = _sim(tiny_config.with_overrides(reward=RewardConfig(kind="engagement")), 500)
    q = sim.catalog.quality
    rng = np.random.default_rng(3)
    for _ in range(3):
        action = rng.integers(0, 32, 500)
        r = sim.step(action)
        clicked = r.clicked_item >= 0
        assert clicked.any() and (~clicked).any()
        np.testing.assert_array_equal(r.reward, np.where(clicked, q[action], 0.0))
        np.testing.assert_allclose(r.expected_reward, r.click_prob * q[action], rtol=1e-12)


def test_engagement_slate_expected_reward(tiny_slate_config: EnvConfig) -> None:
    """For engagement slates, expected_reward = sum_j P(click j) q_j."""
    cfg = tiny_slate_config.with_overrides(reward=RewardConfig(kind="engagement"))
    sim = _sim(cfg, 200)
    slate = np.random.default_rng(4).integers(0, 32, (200, 3))
    r = sim.step(slate)
    probs = _slate_full_probs(sim, slate, r.interest)
    expected = (probs[:, :3] * sim.catalog.quality[slate]).sum(axis=1)
    np.testing.assert_allclose(r.expected_reward, expected, rtol=1e-12)
    clicked = r.clicked_item >= 0
    np.testing.assert_array_equal(
        r.reward, np.where(clicked, sim.catalog.quality[np.maximum(r.clicked_item, 0)], 0.0)
    )


def test_unreleased_items_are_never_clicked(tiny_config: EnvConfig) -> None:
    """An unreleased item cannot be clicked, even when released items would almost surely be."""
    cfg = _with_new_items(tiny_config).with_overrides(choice=ChoiceConfig(no_click_score=-10.0))
    sim = _sim(cfg, 50)
    late = _late_items(sim, after=20)
    released = np.flatnonzero(sim.catalog.release_step == 0)
    for _ in range(20):
        r = sim.step(np.full(50, late[0]))
        assert np.all(r.clicked_item == -1)
        assert np.all(r.click_prob == 0.0) and np.all(r.reward == 0.0)
    r = sim.step(np.full(50, released[0]))
    assert (r.clicked_item == released[0]).mean() > 0.9


def test_unreleased_items_in_a_slate_are_skipped(tiny_slate_config: EnvConfig) -> None:
    """In a slate, only released items can be clicked."""
    cfg = _with_new_items(tiny_slate_config).with_overrides(
        choice=ChoiceConfig(slate_size=3, no_click_score=-10.0)
    )
    sim = _sim(cfg, 100)
    late = _late_items(sim, after=10)
    good = int(np.flatnonzero(sim.catalog.release_step == 0)[0])
    slate = np.tile([late[0], good, late[1]], (100, 1))
    for _ in range(5):
        r = sim.step(slate)
        assert set(r.clicked_item.tolist()) <= {good, -1}
        assert np.all(r.clicked_item == good)  # no_click_score -10: the released item wins


# --------------------------------------------------------------------------------------------
# the oracle
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["click", "engagement"])
def test_single_item_oracle_is_brute_force_argmax(tiny_config: EnvConfig, kind: str) -> None:
    """The single-item oracle picks the released item with the largest expected reward."""
    cfg = _with_new_items(tiny_config).with_overrides(reward=RewardConfig(kind=kind))
    sim = _sim(cfg, 8)
    ch = cfg.choice
    released = sim.released()
    assert not released.all()
    for _ in range(3):
        scores = (
            ch.interest_weight * sim.state.interest @ sim.catalog.topics.T
            + ch.quality_weight * (sim.catalog.quality - 0.5)
        )  # (B, N), float64
        value = 1.0 / (1.0 + np.exp(ch.no_click_score - scores))
        if kind == "engagement":
            value = value * sim.catalog.quality
        value[:, ~released] = -np.inf
        oracle = sim.oracle()
        best = value.max(axis=1)
        assert released[oracle.action].all()
        np.testing.assert_allclose(value[np.arange(8), oracle.action], best, atol=1e-6)
        np.testing.assert_allclose(oracle.expected_reward, best, atol=1e-6)
        r = sim.step(oracle.action, with_oracle=True)
        np.testing.assert_array_equal(r.oracle.action, oracle.action)
        np.testing.assert_allclose(r.expected_reward, best, atol=1e-6)


def test_slate_oracle_is_exact_for_click_reward() -> None:
    """For click reward, the slate oracle's value equals the best of all ordered slates."""
    cfg = EnvConfig(
        catalog=CatalogConfig(num_items=8, num_topics=2),
        choice=ChoiceConfig(slate_size=3, position_bias=0.7, no_click_score=1.0),
        session=SessionConfig(history_len=3),
    )
    sim = _sim(cfg, 4)
    slates = np.array(list(itertools.permutations(range(8), 3)))  # 336 ordered slates
    all_values = _slate_values(sim, np.broadcast_to(slates, (4, *slates.shape)), sim.state.interest)
    oracle = sim.oracle()
    np.testing.assert_allclose(oracle.expected_reward, all_values.max(axis=1), atol=1e-6)
    mine = _slate_values(sim, oracle.action[:, None, :], sim.state.interest)[:, 0]
    np.testing.assert_allclose(mine, all_values.max(axis=1), atol=1e-6)
    assert oracle.action.shape == (4, 3)
    assert all(len(set(row)) == 3 for row in oracle.action.tolist())


def test_slate_oracle_beats_random_slates(tiny_config: EnvConfig) -> None:
    """The slate-10 oracle's value is at least that of 500 random slates, for every user."""
    cfg = tiny_config.with_overrides(history_len=10, choice=ChoiceConfig(slate_size=10))
    sim = _sim(cfg, 6)
    oracle = sim.oracle()
    random_slates = np.random.default_rng(5).integers(0, 32, (6, 500, 10))
    values = _slate_values(sim, random_slates, sim.state.interest)
    assert np.all(oracle.expected_reward >= values.max(axis=1) - 1e-6)


def test_step_oracle_matches_pre_step_oracle(tiny_config: EnvConfig) -> None:
    """The oracle reported by step(with_oracle=True) is the oracle of the pre-step state."""
    sim = _sim(tiny_config, 16)
    rng = np.random.default_rng(6)
    for _ in range(3):
        before = sim.oracle()
        r = sim.step(rng.integers(0, 32, 16), with_oracle=True)
        np.testing.assert_array_equal(r.oracle.action, before.action)
        np.testing.assert_array_equal(r.oracle.expected_reward, before.expected_reward)
    assert sim.step(np.zeros(16, dtype=np.int64)).oracle is None


# --------------------------------------------------------------------------------------------
# patience, termination and truncation
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("patience", "cost", "steps"),
    [(5.0, 2.0, 3), (6.0, 2.0, 3), (5.0, 1.0, 5), (0.5, 1.0, 1), (7.0, 2.5, 3)],
)
def test_user_who_never_clicks_leaves_after_ceil_patience_over_cost(
    tiny_config: EnvConfig, patience: float, cost: float, steps: int
) -> None:
    """Without clicks a user is terminated after exactly ceil(patience / cost) steps."""
    # 5 / 2: 3, 1, -1 -> 3 steps; 6 / 2: 4, 2, 0 -> 3 (0 counts); 7 / 2.5: 4.5, 2, -0.5 -> 3
    assert steps == math.ceil(patience / cost)
    cfg = _with_new_items(tiny_config).with_overrides(
        users=UserConfig(patience=patience, patience_cost=cost, max_patience=50.0), max_steps=100
    )
    env = DriftRecEnv(cfg)
    env.reset(seed=0)
    item = int(_late_items(env.sim, after=100)[0])
    for t in range(1, steps + 1):
        _, reward, terminated, truncated, _ = env.step(item)
        assert reward == 0.0 and not truncated
        assert terminated == (t == steps)


def test_patience_budget_follows_rewards(tiny_config: EnvConfig) -> None:
    """patience <- min(patience + gain * reward - cost, max_patience); terminated iff <= 0."""
    users = UserConfig(patience=3.0, patience_cost=1.0, patience_gain=1.5, max_patience=4.0)
    sim = _sim(tiny_config.with_overrides(users=users), 300)
    expected = np.full(300, 3.0)
    rng = np.random.default_rng(7)
    for _ in range(6):
        r = sim.step(rng.integers(0, 32, 300))
        expected = np.minimum(expected + 1.5 * r.reward - 1.0, 4.0)
        np.testing.assert_allclose(sim.state.patience, expected, rtol=1e-12)
        np.testing.assert_array_equal(r.terminated, expected <= 0.0)
    assert sim.state.patience.max() == 4.0  # some user clicked enough to hit the cap


def test_truncation_at_max_steps(tiny_config: EnvConfig) -> None:
    """A session is truncated (not terminated) after exactly max_steps steps."""
    cfg = tiny_config.with_overrides(users=UserConfig(patience=1e6, max_patience=1e6), max_steps=7)
    env = DriftRecEnv(cfg)
    env.reset(seed=0)
    for t in range(1, 8):
        _, _, terminated, truncated, _ = env.step(t)
        assert not terminated
        assert truncated == (t == 7)


def test_termination_wins_over_truncation(tiny_config: EnvConfig) -> None:
    """When patience runs out on the last step, the step is terminated and not truncated."""
    cfg = _with_new_items(tiny_config).with_overrides(
        users=UserConfig(patience=4.0, max_patience=4.0), max_steps=4
    )
    env = DriftRecEnv(cfg)
    env.reset(seed=0)
    item = int(_late_items(env.sim, after=10)[0])
    flags = [env.step(item)[2:4] for _ in range(4)]
    assert flags == [(False, False)] * 3 + [(True, False)]


# --------------------------------------------------------------------------------------------
# observation / history
# --------------------------------------------------------------------------------------------
def test_single_item_history_layout(tiny_config: EnvConfig) -> None:
    """ids, feedback and mask hold the last H impressions, oldest first; then progress, clock."""
    h, max_steps = 6, 20
    sim = _sim(tiny_config.with_overrides(history_len=h, max_steps=max_steps), 1)
    obs = sim.observation()[0]
    np.testing.assert_array_equal(obs, np.zeros(3 * h + 2))
    actions, rewards = [3, 5, 7, 9, 11, 13, 15, 17], []
    for t, a in enumerate(actions, start=1):
        rewards.append(float(sim.step(np.array([a])).reward[0]))
        obs = sim.observation()[0]
        pad = max(0, h - t)
        ids = [0] * pad + actions[max(0, t - h) : t]
        fb = [0.0] * pad + rewards[max(0, t - h) : t]
        mask = [0.0] * pad + [1.0] * min(t, h)
        np.testing.assert_array_equal(obs[:h], ids)
        np.testing.assert_array_equal(obs[h : 2 * h], fb)
        np.testing.assert_array_equal(obs[2 * h : 3 * h], mask)
        assert obs[3 * h] == np.float32(t / max_steps)
        assert obs[3 * h + 1] == t / 16_384  # the clock, in units of CLOCK_SCALE steps
        assert obs.dtype == np.float32
    assert any(rewards) and not all(rewards)


def test_slate_history_pushes_k_impressions_in_order(tiny_slate_config: EnvConfig) -> None:
    """A slate of k adds k impressions in slate order; feedback sits at the clicked position."""
    sim = _sim(tiny_slate_config.with_overrides(history_len=6), 1)
    slates = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    fbs: list[list[float]] = []
    for slate in slates:
        r = sim.step(np.array([slate]))
        fb = [0.0, 0.0, 0.0]
        if r.clicked_item[0] >= 0:
            fb[slate.index(int(r.clicked_item[0]))] = float(r.reward[0])
        fbs.append(fb)
    obs = sim.observation()[0]
    np.testing.assert_array_equal(obs[:6], [4, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(obs[6:12], fbs[1] + fbs[2])
    np.testing.assert_array_equal(obs[12:18], [1.0] * 6)
    assert obs[19] == 3 / 16_384  # the clock, in units of CLOCK_SCALE steps


def test_slate_history_first_step_padding(tiny_slate_config: EnvConfig) -> None:
    """After one slate step the first H - k history slots are still padding."""
    sim = _sim(tiny_slate_config.with_overrides(history_len=5), 1)
    sim.step(np.array([[10, 20, 30]]))
    obs = sim.observation()[0]
    np.testing.assert_array_equal(obs[:5], [0, 0, 10, 20, 30])
    np.testing.assert_array_equal(obs[10:15], [0, 0, 1, 1, 1])


def test_observation_never_contains_the_interests(tiny_config: EnvConfig) -> None:
    """Users with different true interests yield identical observations when nothing is clicked."""
    cfg = _with_new_items(tiny_config)
    a, b = _sim(cfg, 3), _sim(cfg, 3)
    b.state.interest[:] = 3.0  # very different hidden state
    np.testing.assert_array_equal(a.observation(), b.observation())
    item = int(_late_items(a, after=10)[0])
    for _ in range(5):
        a.step(np.full(3, item))
        b.step(np.full(3, item))
        np.testing.assert_array_equal(a.observation(), b.observation())
    assert not np.isin(a.state.interest, a.observation()).any()
    other_k = _sim(cfg.with_overrides(num_topics=9), 3)
    assert other_k.observation().shape == a.observation().shape  # no K-sized part


def test_observation_is_a_copy(tiny_config: EnvConfig) -> None:
    """observation() returns a copy; writing to it does not change the state."""
    sim = _sim(tiny_config, 2)
    obs = sim.observation()
    obs[:] = 5.0
    assert not np.array_equal(sim.observation(), obs)


# --------------------------------------------------------------------------------------------
# batch independence and resets
# --------------------------------------------------------------------------------------------
def test_user_trajectory_is_independent_of_batch_size(tiny_slate_config: EnvConfig) -> None:
    """User slot i of a batch behaves exactly like a batch of one seeded with the same seed."""
    big = _sim(tiny_slate_config, 5, seed=40)
    singles = [_sim(tiny_slate_config, 1, seed=40 + i) for i in range(5)]
    rng = np.random.default_rng(8)
    for _ in range(10):
        slate = rng.integers(0, 32, (5, 3))
        rb = big.step(slate)
        for i, s in enumerate(singles):
            r1 = s.step(slate[i : i + 1])
            for name in ("reward", "terminated", "truncated", "clicked_item", "click_prob"):
                assert getattr(rb, name)[i] == getattr(r1, name)[0], name
            np.testing.assert_array_equal(big.state.obs[i], s.state.obs[0])


def test_reset_users_keeps_the_clock_and_other_slots(tiny_config: EnvConfig) -> None:
    """reset_users redraws only the given slots, with fresh history and the running clock."""
    sim = _sim(tiny_config, 3)
    for _ in range(4):
        sim.step(np.array([1, 2, 3]))
    keep = sim.state.obs[[0, 2]].copy()
    interest = sim.state.interest.copy()
    sim.reset_users(np.array([1]))
    assert sim.state.clock == 4 and sim.state.t.tolist() == [4, 0, 4]
    np.testing.assert_array_equal(sim.state.obs[[0, 2]], keep)
    np.testing.assert_array_equal(sim.state.obs[1, :-1], 0.0)
    assert sim.state.obs[1, -1] == 4 / 16_384  # the clock entry (units of 2**14 steps)
    assert sim.state.patience[1] == tiny_config.users.patience
    assert not np.array_equal(sim.state.interest[1], interest[1])
    np.testing.assert_array_equal(sim.state.interest[[0, 2]], interest[[0, 2]])


def test_reseed_slots_restarts_streams(tiny_config: EnvConfig) -> None:
    """reseed_slots gives a slot the same user as a fresh seed, while the clock keeps running."""
    sim = _sim(tiny_config, 2)
    first = sim.state.interest[1].copy()
    sim.step(np.array([0, 0]))
    sim.reseed_slots([1], [1])
    assert sim.state.clock == 1
    np.testing.assert_array_equal(sim.state.interest[1], first)  # stationary world


def test_attraction_of_matches_attraction_all() -> None:
    """Per-user item lists (rows shared by consecutive users) score like attraction_all,
    unreleased items included (-inf); a wrong number of rows names the shape."""
    from driftrec.envs.config import DriftConfig
    from driftrec.envs.drift import Satisfaction

    cfg = EnvConfig(
        catalog=CatalogConfig(num_items=30, num_topics=4, new_item_fraction=0.3),
        drift=DriftConfig(processes=(Satisfaction(),)),
    )
    sim = BatchSimulator(cfg, 6)
    sim.seed(list(range(6)))
    sim.state.satisfaction[:] = np.linspace(-1, 1, 6)
    items = np.random.default_rng(0).integers(0, 30, (3, 7))  # rows for users 0-1, 2-3, 4-5
    full = sim.attraction_all()
    expected = full[np.arange(6)[:, None], np.repeat(items, 2, axis=0)]
    got = sim.attraction_of(items, shared=2)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.isinf(got).any() and np.array_equal(np.isinf(got), np.isinf(expected))
    with pytest.raises(ValueError, match=r"^'items' must have 6 / 4 rows \(got shape \(3, 7\)\)$"):
        sim.attraction_of(items, shared=4)


# --------------------------------------------------------------------------------------------
# consumed items (no_repeat) and ageing items (staleness)
# --------------------------------------------------------------------------------------------
def _no_repeat(config: EnvConfig, **choice: Any) -> EnvConfig:
    return config.with_overrides(
        choice=dataclasses.replace(config.choice, no_repeat=True, no_click_score=-20.0, **choice)
    )


def test_a_clicked_item_cannot_be_clicked_again_in_the_session(tiny_config: EnvConfig) -> None:
    """no_repeat: after a click the same item has click probability 0 for that user only, and
    a new user in the slot can click it again."""
    sim = _sim(_no_repeat(tiny_config), 3)  # no-click score -20: every showing clicks
    item = np.full(3, 7, dtype=np.int64)
    first = sim.step(item)
    assert (first.clicked_item == 7).all()  # p = sigmoid(s + 20) > 1 - 1e-6 here
    again = sim.step(item)
    np.testing.assert_array_equal(again.click_prob, 0.0)
    np.testing.assert_array_equal(again.expected_reward, 0.0)
    assert (again.clicked_item == -1).all()
    other = sim.step(np.full(3, 8, dtype=np.int64))
    assert (other.click_prob > 0.99).all()  # other items are unaffected
    sim.reset_users(np.array([1]))
    after = sim.step(item)
    assert after.click_prob[1] > 0.99 and after.click_prob[0] == 0.0 and after.click_prob[2] == 0.0


def test_consumed_items_are_worth_nothing_to_the_oracle(tiny_config: EnvConfig) -> None:
    """The oracle never picks a consumed item, and item_rewards / attraction_all / consumed()
    agree on which items are consumed (a brute-force check over the catalog)."""
    sim = _sim(_no_repeat(tiny_config), 4)
    rng = np.random.default_rng(3)
    for _ in range(12):
        before = sim.oracle()
        r = sim.step(before.action, with_oracle=True)
        np.testing.assert_array_equal(r.oracle.action, before.action)
        assert (r.clicked_item == before.action).any()
        sim.step(rng.integers(0, 32, 4))
    consumed = sim.consumed()
    assert consumed.shape == (4, 32) and consumed.sum() >= 12
    rewards = sim.item_rewards()
    assert (rewards[consumed] == 0.0).all() and (rewards[~consumed] > 0).all()
    assert np.isneginf(sim.attraction_all()[consumed]).all()
    oracle = sim.oracle()
    assert not consumed[np.arange(4), oracle.action].any()
    best = np.where(consumed, -1.0, rewards).max(axis=1)
    np.testing.assert_allclose(oracle.expected_reward, best, rtol=1e-12)
    np.testing.assert_array_equal(sim.consumed(np.array([2, 0])), consumed[[2, 0]])
    assert _sim(tiny_config, 2).consumed() is None  # only no_repeat worlds keep the bits


def test_slate_rewards_count_consumed_items_and_see_the_state_before_the_step(
    tiny_config: EnvConfig,
) -> None:
    """slate_rewards gives 0 for consumed items; before_last_step=True evaluates the users as
    they were when the last step recommended, before that step's click consumed its item."""
    sim = _sim(_no_repeat(tiny_config), 2)
    r = sim.step(np.array([5, 6]))
    assert (r.clicked_item == [5, 6]).all()
    now = sim.slate_rewards(np.array([5, 6, 9]))
    assert now[0, 0] == 0.0 and now[1, 1] == 0.0 and now[0, 1] > 0 and now[1, 0] > 0
    then = sim.slate_rewards(np.array([5, 6, 9]), before_last_step=True)
    assert (then > 0.9).all()
    user1 = sim.slate_rewards(np.array([6, 5]), users=np.array([1]))  # user 1 consumed 6
    assert user1[0, 0] == 0.0 and user1[0, 1] > 0.9
    one = sim.slate_rewards(np.array([5, 6]), users=np.array([1]), before_last_step=True)
    assert (one > 0.9).all()


def test_stale_items_lose_attraction_with_age() -> None:
    """Staleness: the attraction of an item released at r falls by w (1 - 2^-((t - r) / h)) at
    clock t, in the step's click probability and in item_bias (hand-computed)."""
    cfg = EnvConfig(
        catalog=CatalogConfig(num_items=6, num_topics=2, new_item_fraction=0.5, release_horizon=4),
        choice=ChoiceConfig(staleness_weight=2.0, staleness_halflife=3.0),
        session=SessionConfig(history_len=2, max_steps=100),
    )
    sim = _sim(cfg, 1)
    release = np.asarray(sim.catalog.release_step)
    base = 1.0 * (np.asarray(sim.catalog.quality) - 0.5)  # quality_weight 1
    for t in range(8):
        age = np.maximum(t - release, 0)
        want = base - 2.0 * (1.0 - 2.0 ** (-age / 3.0))
        np.testing.assert_allclose(sim.item_bias(), want, rtol=0, atol=1e-12)
        item = int(np.flatnonzero(release <= t)[t % int((release <= t).sum())])
        s = 1.5 * float(sim.state.interest[0] @ sim.catalog.topics[item]) + want[item]
        r = sim.step(np.array([item]))
        assert r.click_prob[0] == pytest.approx(1.0 / (1.0 + math.exp(1.5 - s)), rel=1e-12)
    plain = _sim(cfg.with_overrides(**{"choice.staleness_weight": 0.0}), 1)
    assert plain.item_bias() is plain.item_bias(10**6)  # no staleness: the constant bias


def test_no_repeat_and_staleness_batched_equals_single_envs() -> None:
    """With no_repeat and staleness (JargonNews), B slots stepped together equal B single envs
    with the same slot seeds, step for step (consumed bits included)."""
    from driftrec.envs.scenarios import get_scenario

    cfg = get_scenario("JargonNews").config.with_overrides(num_items=60, history_len=4)
    b = 3
    batched = BatchSimulator(cfg, b)
    batched.seed([10, 11, 12])
    singles = [BatchSimulator(cfg, 1) for _ in range(b)]
    for i, s in enumerate(singles):
        s.seed([10 + i])
    rng = np.random.default_rng(0)
    for _ in range(40):
        actions = rng.integers(0, 60, b)
        actions[rng.random(b) < 0.5] = 3  # repeats, so consumed items are shown again
        r = batched.step(actions, with_oracle=True)
        for i, s in enumerate(singles):
            ri = s.step(actions[i : i + 1], with_oracle=True)
            assert ri.clicked_item[0] == r.clicked_item[i]
            assert ri.click_prob[0] == r.click_prob[i]
            assert ri.oracle.action[0] == r.oracle.action[i]
            np.testing.assert_array_equal(s.state.consumed[0], batched.state.consumed[i])
        done = np.flatnonzero(r.terminated | r.truncated)
        if done.size:
            batched.reset_users(done)
            for i in done.tolist():
                singles[i].reset_users(np.zeros(1, dtype=np.int64))


def test_attraction_of_counts_consumed_and_stale_items() -> None:
    """In a no_repeat world with staleness, attraction_of still equals attraction_all: consumed
    items get -inf for the user who clicked them, and ageing items lose their staleness."""
    cfg = EnvConfig(
        catalog=CatalogConfig(num_items=24, num_topics=3),
        choice=ChoiceConfig(
            no_repeat=True, no_click_score=-20.0, staleness_weight=1.0, staleness_halflife=5
        ),
    )
    sim = BatchSimulator(cfg, 4)
    sim.seed(list(range(4)))
    for step in range(6):  # every showing clicks: items 0-5 consumed by every user
        sim.step(np.full(4, step, dtype=np.int64))
    items = np.tile(np.arange(0, 24, 2), (2, 1))  # (2, 12) rows shared by users 0-1 and 2-3
    expected = sim.attraction_all()[np.arange(4)[:, None], np.repeat(items, 2, axis=0)]
    got = sim.attraction_of(items, shared=2)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.isneginf(got[:, :3]).all() and np.isfinite(got[:, 3:]).all()  # 0, 2, 4 consumed


def test_oracle_products_run_on_one_blas_thread_and_restore_it() -> None:
    """From 16,384 (user, item) pairs (64 users x 1,000 items: OpenBLAS would split it over
    its threads, 10-40x slower on busy cores) the oracle's products pin BLAS to one thread and
    give the setting back afterwards; smaller ones leave it alone."""
    from threadpoolctl import threadpool_limits

    from driftrec.envs import core

    libraries = core._blas_libraries()
    if not libraries:  # pragma: no cover - numpy always loads a BLAS
        pytest.skip("no BLAS library loaded")
    with threadpool_limits(limits=2, user_api="blas"):
        before = [lib.num_threads for lib in libraries]
        if before == [1] * len(libraries):  # pragma: no cover - a one-thread BLAS build
            pytest.skip("this BLAS runs on one thread only")
        with core._oracle_blas_limit(64 * 1000):
            assert [lib.num_threads for lib in libraries] == [1] * len(libraries)
        assert [lib.num_threads for lib in libraries] == before
        with core._oracle_blas_limit(16 * 1000):
            assert [lib.num_threads for lib in libraries] == before
        with pytest.raises(RuntimeError), core._oracle_blas_limit(64 * 1000):
            raise RuntimeError  # restored on the way out of an error too
        assert [lib.num_threads for lib in libraries] == before
