"""Tests of the drift processes: hand-computed single steps and statistics on the batched core."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from driftrec.envs.config import (
    CatalogConfig,
    ChoiceConfig,
    DriftConfig,
    EnvConfig,
    SessionConfig,
    UserConfig,
)
from driftrec.envs.core import BatchSimulator
from driftrec.envs.drift import (
    AbruptShift,
    Aversion,
    Boredom,
    ConsumptionDrift,
    DriftContext,
    DriftEvent,
    DriftProcess,
    GradualDrift,
    PopulationDrift,
    PopulationTrend,
    Satisfaction,
    World,
)
from driftrec.envs.gym_env import DriftRecEnv
from driftrec.envs.rng import UserStreams

K = 4  # topics in the statistical tests


class FixedStreams:
    """A stand-in for UserStreams that returns queued arrays (rows picked by ``idx``)."""

    def __init__(
        self,
        normals: list[NDArray[np.float64]] | None = None,
        uniforms: list[NDArray[np.float64]] | None = None,
    ) -> None:
        self.normals = list(normals or [])
        self.uniforms = list(uniforms or [])
        self.calls: list[tuple[str, int, Any]] = []

    def _pop(self, queue: list[NDArray[np.float64]], n: int, idx: Any) -> NDArray[np.float64]:
        arr = np.asarray(queue.pop(0), dtype=np.float64)
        assert arr.shape[1] == n
        return arr if idx is None else arr[idx]

    def normal(self, n: int, idx: Any = None) -> NDArray[np.float64]:
        self.calls.append(("normal", n, None if idx is None else list(idx)))
        return self._pop(self.normals, n, idx)

    def uniform(self, n: int, idx: Any = None) -> NDArray[np.float64]:
        self.calls.append(("uniform", n, None if idx is None else list(idx)))
        return self._pop(self.uniforms, n, idx)


def _ctx(
    interest: Any,
    *,
    anchor: Any = None,
    boredom: Any = None,
    clicked_topics: Any = None,
    clicked_quality: Any = None,
    new_clock: int = 1,
    world: World | None = None,
    streams: Any = None,
    interest_spread: float = 1.0,
) -> DriftContext:
    theta = np.array(interest, dtype=np.float64)
    b, k = theta.shape
    topics = np.zeros((b, k)) if clicked_topics is None else np.array(clicked_topics, float)
    return DriftContext(
        interest=theta,
        anchor=theta.copy() if anchor is None else np.array(anchor, dtype=np.float64),
        boredom=np.zeros((b, k)) if boredom is None else np.array(boredom, dtype=np.float64),
        clicked=topics.sum(axis=1) > 0,
        clicked_topics=topics,
        clicked_quality=np.zeros(b) if clicked_quality is None else np.array(clicked_quality),
        new_clock=new_clock,
        world=world if world is not None else World(k, 1.0, seed=0),
        streams=streams if streams is not None else FixedStreams(),
        interest_spread=interest_spread,
        events=np.zeros(b, dtype=np.int32),
    )


def _sim(
    *processes: DriftProcess,
    num_users: int,
    users: UserConfig | None = None,
    catalog: CatalogConfig | None = None,
    seed: int = 0,
) -> BatchSimulator:
    """A batched core over a tiny catalog with loose clipping and patience that never runs out."""
    cfg = EnvConfig(
        catalog=catalog or CatalogConfig(num_items=32, num_topics=K),
        users=users or UserConfig(interest_clip=100.0, patience=1e6, max_patience=1e6),
        session=SessionConfig(max_steps=1000, history_len=8),
        drift=DriftConfig(processes=processes, seed=seed),
    )
    sim = BatchSimulator(cfg, num_users=num_users)
    sim.seed([seed * 100_000 + i for i in range(num_users)])
    return sim


def _random_actions(sim: BatchSimulator, rng: np.random.Generator) -> NDArray[np.int64]:
    return rng.integers(0, sim.num_items, size=sim.num_users)


# --------------------------------------------------------------------------------------------
# hand-computed single steps on a fixed stream
# --------------------------------------------------------------------------------------------
def test_random_walk_step_by_hand() -> None:
    """GradualDrift(reversion=0): theta <- theta + sigma * eps."""
    streams = FixedStreams(normals=[np.array([[1.0, -2.0], [0.0, 4.0]])])
    ctx = _ctx([[0.5, -1.0], [2.0, 0.0]], streams=streams)
    GradualDrift(sigma=0.1).apply(ctx)
    # [0.5 + 0.1, -1.0 - 0.2] and [2.0 + 0, 0 + 0.4]
    np.testing.assert_allclose(ctx.interest, [[0.6, -1.2], [2.0, 0.4]], rtol=1e-15)
    assert streams.calls == [("normal", 2, None)]


def test_ornstein_uhlenbeck_step_by_hand() -> None:
    """GradualDrift(reversion=r): theta <- theta + r (a - theta) + sigma * eps; anchor fixed."""
    streams = FixedStreams(normals=[np.array([[2.0, 0.0]])])
    ctx = _ctx([[0.0, 1.0]], anchor=[[1.0, 0.0]], streams=streams)
    GradualDrift(sigma=0.5, reversion=0.25).apply(ctx)
    # reversion: [0 + 0.25 * (1 - 0), 1 + 0.25 * (0 - 1)] = [0.25, 0.75]; noise: + 0.5 * [2, 0]
    np.testing.assert_allclose(ctx.interest, [[1.25, 0.75]], rtol=1e-15)
    np.testing.assert_array_equal(ctx.anchor, [[1.0, 0.0]])


def test_scheduled_shift_by_hand() -> None:
    """At a scheduled step: theta <- (1 - mix) theta + mix (mu(t) + spread eps), a <- theta."""
    world = World(2, 1.0, seed=3, shift_steps=(3,))
    mu = world.population_mean(3)
    np.testing.assert_array_equal(mu, world.means[1])
    eps = np.array([[1.0, -1.0], [0.0, 2.0]])
    ctx = _ctx(
        [[1.0, 2.0], [-1.0, 0.0]],
        anchor=[[9.0, 9.0], [9.0, 9.0]],
        new_clock=3,
        world=world,
        streams=FixedStreams(normals=[eps]),
        interest_spread=0.5,
    )
    AbruptShift(at_steps=(3,), mix=0.5).apply(ctx)
    expected = 0.5 * np.array([[1.0, 2.0], [-1.0, 0.0]]) + 0.5 * (mu + 0.5 * eps)
    np.testing.assert_allclose(ctx.interest, expected, rtol=1e-14)
    np.testing.assert_array_equal(ctx.anchor, ctx.interest)
    np.testing.assert_array_equal(ctx.events, [DriftEvent.POPULATION_SHIFT] * 2)


def test_scheduled_shift_does_nothing_off_schedule() -> None:
    """Off the scheduled steps (and with rate 0) AbruptShift draws nothing and changes nothing."""
    streams = FixedStreams()
    ctx = _ctx([[1.0, 2.0]], new_clock=2, streams=streams)
    AbruptShift(at_steps=(3,)).apply(ctx)
    np.testing.assert_array_equal(ctx.interest, [[1.0, 2.0]])
    assert streams.calls == [] and ctx.events.tolist() == [0]


def test_poisson_jump_by_hand() -> None:
    """A user jumps iff its uniform is below 1 - exp(-rate); only jumpers draw normals."""
    world = World(2, 1.0, seed=0)
    # threshold 1 - e^-0.5 = 0.393469; u = 0.1 jumps, u = 0.9 stays, u = 0.39 jumps
    eps = np.array([[1.0, 1.0], [5.0, 5.0], [-1.0, 0.0]])
    streams = FixedStreams(normals=[eps], uniforms=[np.array([[0.1], [0.9], [0.39]])])
    before = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    ctx = _ctx(before, new_clock=7, world=world, streams=streams, interest_spread=2.0)
    AbruptShift(rate=0.5).apply(ctx)
    mu = world.population_mean(7)
    np.testing.assert_allclose(ctx.interest[0], mu + 2.0 * eps[0], rtol=1e-14)
    np.testing.assert_array_equal(ctx.interest[1], before[1])
    np.testing.assert_allclose(ctx.interest[2], mu + 2.0 * eps[2], rtol=1e-14)
    np.testing.assert_array_equal(ctx.events, [2, 0, 2])
    assert streams.calls == [("uniform", 1, None), ("normal", 2, [0, 2])]


def test_consumption_drift_by_hand() -> None:
    """A liked click pulls theta by pull (z - 1/K); a disliked one pushes by push; no click: 0."""
    z = [0.7, 0.3, 0.0, 0.0]
    ctx = _ctx(
        np.zeros((4, 4)),
        clicked_topics=[z, z, z, [0.0] * 4],
        clicked_quality=[0.8, 0.5, 0.2, 0.0],
    )
    ConsumptionDrift(pull=0.2, push=0.1, like_threshold=0.5).apply(ctx)
    # z - 1/4 = [0.45, 0.05, -0.25, -0.25]
    liked = [0.09, 0.01, -0.05, -0.05]  # 0.2 * (z - 1/4); quality 0.5 is at the threshold: liked
    disliked = [-0.045, -0.005, 0.025, 0.025]  # -0.1 * (z - 1/4)
    np.testing.assert_allclose(ctx.interest, [liked, liked, disliked, [0.0] * 4], atol=1e-15)


def test_boredom_by_hand() -> None:
    """Boredom: b <- (1 - decay) b + gain * z for the clicked item's topics."""
    ctx = _ctx(
        np.zeros((2, 4)),
        boredom=[[1.0, 2.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.0]],
        clicked_topics=[[0.0, 0.0, 1.0, 0.0], [0.0] * 4],
    )
    Boredom(gain=2.0, decay=0.1).apply(ctx)
    # clicked: [0.9, 1.8, 0, 0] + 2 * [0, 0, 1, 0]; not clicked: only the decay
    np.testing.assert_allclose(ctx.boredom, [[0.9, 1.8, 2.0, 0.0], [0.9, 1.8, 0.0, 0.0]])


def test_population_trend_orbit_by_hand() -> None:
    """mu(t) = mu_r + A ((cos(2 pi t/P) - 1) c + sin(2 pi t/P) d), by hand at 0, P/4, P/2."""
    world = World(3, 0.7, seed=5, trend=PopulationTrend(amplitude=2.0, period=100))
    m0 = world.means[0]
    c, d = world.orbit
    np.testing.assert_allclose(world.population_mean(0), m0, atol=1e-15)
    # t = P/4: cos = 0, sin = 1 -> m0 + 2 (-c + d); t = P/2: cos = -1, sin = 0 -> m0 - 4 c
    np.testing.assert_allclose(world.population_mean(25), m0 + 2.0 * (d - c), atol=1e-12)
    np.testing.assert_allclose(world.population_mean(50), m0 - 4.0 * c, atol=1e-12)
    np.testing.assert_allclose(world.population_mean(100), m0, atol=1e-12)
    phase = 2 * math.pi * 13 / 100
    expected = m0 + 2.0 * ((math.cos(phase) - 1) * c + math.sin(phase) * d)
    np.testing.assert_allclose(world.population_mean(13), expected, atol=1e-12)


def test_world_regimes_and_independent_child_streams() -> None:
    """Regime r holds from shift_steps[r-1] on; adding a process never changes other draws."""
    world = World(3, 1.0, seed=2, shift_steps=(10, 20))
    assert [world.regime(t) for t in (0, 9, 10, 19, 20, 10**6)] == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(world.population_mean(15), world.means[1])
    plain = World(3, 1.0, seed=2)
    trend = World(3, 1.0, seed=2, trend=PopulationTrend())
    np.testing.assert_array_equal(plain.means[0], world.means[0])
    np.testing.assert_array_equal(plain.means[0], trend.means[0])
    np.testing.assert_array_equal(plain.orbit, world.orbit)
    assert not np.array_equal(world.means[1], world.means[2])


# --------------------------------------------------------------------------------------------
# processes inside the batched core
# --------------------------------------------------------------------------------------------
def saturate(before: np.ndarray, after: np.ndarray, clip: float) -> np.ndarray:
    """The documented saturation: outward moves scaled by max(0, 1 - (theta / clip)^4)."""
    delta = after - before
    room = np.maximum(0.0, 1.0 - (before / clip) ** 4)
    return np.clip(before + np.where(delta * before > 0, delta * room, delta), -clip, clip)


def test_core_random_walk_uses_the_users_own_normals() -> None:
    """One core step adds exactly sigma times the next normals of each user's own stream."""
    sim = _sim(GradualDrift(sigma=0.1), num_users=3)
    before = sim.state.interest.copy()
    sim.step(np.array([0, 1, 2]))
    # the core draws: normal(K) for the new user, uniform(1) for the click, normal(K) for drift
    twin = UserStreams([0, 1, 2], normal_chunk=512)
    twin.normal(K)
    twin.uniform(1)
    expected = saturate(before, before + 0.1 * twin.normal(K), sim.config.users.interest_clip)
    np.testing.assert_allclose(sim.state.interest, expected, rtol=1e-12)


def test_random_walk_variance_grows_linearly() -> None:
    """Random walk: Var[theta_t - theta_0] = t sigma^2 and the mean increment is 0."""
    sigma, steps, users = 0.1, 25, 4000
    sim = _sim(GradualDrift(sigma=sigma), num_users=users)
    theta0 = sim.state.interest.copy()
    rng = np.random.default_rng(0)
    for _ in range(steps):
        sim.step(_random_actions(sim, rng))
    delta = (sim.state.interest - theta0).ravel()
    n = delta.size
    var = steps * sigma**2  # 0.25
    assert abs(delta.mean()) < 5 * math.sqrt(var / n)
    assert abs(delta.var() - var) < 5 * var * math.sqrt(2 / n)  # ~1.1% standard error


def test_ornstein_uhlenbeck_stationary_variance() -> None:
    """OU drift: Var[theta - anchor] -> sigma^2 / (1 - (1 - r)^2) (the anchor does not move)."""
    sigma, r, steps, users = 0.1, 0.2, 40, 4000
    sim = _sim(GradualDrift(sigma=sigma, reversion=r), num_users=users)
    anchor0 = sim.state.anchor.copy()
    rng = np.random.default_rng(1)
    for _ in range(steps):
        sim.step(_random_actions(sim, rng))
    np.testing.assert_array_equal(sim.state.anchor, anchor0)
    dev = (sim.state.interest - sim.state.anchor).ravel()
    stationary = sigma**2 / (1 - (1 - r) ** 2)  # 0.02778; after 40 steps (0.8)^80 ~ 1e-8 is left
    assert abs(dev.var() - stationary) < 5 * stationary * math.sqrt(2 / dev.size)


def test_scheduled_shift_fires_exactly_at_its_step() -> None:
    """A scheduled shift moves every user only at its global step, toward World.population_mean."""
    users = 2000
    sim = _sim(
        AbruptShift(at_steps=(5,)),
        num_users=users,
        users=UserConfig(
            population_scale=1.0,
            interest_spread=0.5,
            interest_clip=100.0,
            patience=1e6,
            max_patience=1e6,
        ),
    )
    tol = 5 * 0.5 / math.sqrt(users)  # 5 standard errors of a mean over users
    mu0, mu5 = sim.world.population_mean(0), sim.world.population_mean(5)
    np.testing.assert_array_equal(mu5, sim.world.means[1])
    assert np.abs(mu0 - mu5).max() > 10 * tol
    assert np.abs(sim.state.interest.mean(axis=0) - mu0).max() < tol
    rng = np.random.default_rng(2)
    for step in range(1, 9):
        before = sim.state.interest.copy()
        result = sim.step(_random_actions(sim, rng))
        assert sim.state.clock == step
        if step == 5:
            assert np.all(result.drift_events == DriftEvent.POPULATION_SHIFT)
            assert np.all(np.any(sim.state.interest != before, axis=1))
            assert np.abs(sim.state.interest.mean(axis=0) - mu5).max() < tol
            np.testing.assert_array_equal(sim.state.anchor, sim.state.interest)
        else:
            assert np.all(result.drift_events == 0)
            np.testing.assert_array_equal(sim.state.interest, before)


def test_scheduled_shift_is_reported_in_env_info() -> None:
    """The single env names 'population_shift' in info only on the step that reaches the shift."""
    env = DriftRecEnv(
        EnvConfig(
            catalog=CatalogConfig(num_items=32, num_topics=K),
            drift=DriftConfig(processes=(AbruptShift(at_steps=(3,)),)),
        )
    )
    env.reset(seed=0)
    seen = {}
    for _ in range(5):
        *_, info = env.step(0)
        seen[info["clock"]] = info["drift_events"]
    assert seen == {1: (), 2: (), 3: ("population_shift",), 4: (), 5: ()}


def test_poisson_jump_frequency() -> None:
    """Each user jumps with probability 1 - exp(-rate) per step; only jumpers change."""
    rate, steps, users = 0.1, 20, 2000
    sim = _sim(AbruptShift(rate=rate), num_users=users)
    rng = np.random.default_rng(3)
    jumps = 0
    for _ in range(steps):
        before = sim.state.interest.copy()
        result = sim.step(_random_actions(sim, rng))
        jumped = (result.drift_events & DriftEvent.INTEREST_JUMP) > 0
        assert np.all(np.any(sim.state.interest[jumped] != before[jumped], axis=1))
        np.testing.assert_array_equal(sim.state.interest[~jumped], before[~jumped])
        np.testing.assert_array_equal(sim.state.anchor[jumped], sim.state.interest[jumped])
        jumps += int(jumped.sum())
    n = steps * users
    p = 1 - math.exp(-rate)  # 0.0952
    assert abs(jumps / n - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_consumption_drift_in_core() -> None:
    """In the core, a click moves theta by +pull or -push times (z - 1/K) of the clicked item."""
    users = 256
    sim = _sim(ConsumptionDrift(pull=0.3, push=0.2, like_threshold=0.5), num_users=users)
    before = sim.state.interest.copy()
    action = _random_actions(sim, np.random.default_rng(4))
    result = sim.step(action)
    clicked = result.clicked_item >= 0
    quality = sim.catalog.quality[action]
    step = np.where(quality >= 0.5, 0.3, -0.2) * clicked
    expected = saturate(
        before,
        before + step[:, None] * (sim.catalog.topics[action] - 1.0 / K),
        sim.config.users.interest_clip,
    )
    np.testing.assert_allclose(sim.state.interest, expected, rtol=1e-12, atol=1e-15)
    assert clicked.any() and (~clicked).any()
    assert (quality[clicked] >= 0.5).any() and (quality[clicked] < 0.5).any()


def _unreleased_item(sim: BatchSimulator, after: int) -> int:
    late = np.flatnonzero(sim.catalog.release_step > after)
    assert late.size, "the test catalog needs an item released late"
    return int(late[0])


def test_boredom_decays_geometrically_without_clicks() -> None:
    """With nothing clicked (only unreleased items shown), b_t = (1 - decay)^t b_0 exactly."""
    sim = _sim(
        Boredom(gain=1.0, decay=0.1),
        num_users=3,
        catalog=CatalogConfig(
            num_items=32, num_topics=K, new_item_fraction=0.5, release_horizon=10_000
        ),
    )
    item = _unreleased_item(sim, after=20)
    b0 = np.array([[1.0, 2.0, 3.0, 4.0], [0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 8.0]])
    sim.state.boredom[:] = b0
    for t in range(1, 11):
        result = sim.step(np.full(3, item))
        assert np.all(result.clicked_item == -1) and np.all(result.click_prob == 0.0)
        np.testing.assert_allclose(sim.state.boredom, 0.9**t * b0, rtol=1e-13)


def test_boredom_gain_on_click_in_core() -> None:
    """In the core, a click adds gain times the clicked item's topic vector after the decay."""
    sim = _sim(Boredom(gain=0.5, decay=0.2), num_users=64)
    sim.state.boredom[:] = np.random.default_rng(5).random((64, K))
    before = sim.state.boredom.copy()
    action = _random_actions(sim, np.random.default_rng(6))
    result = sim.step(action)
    clicked = result.clicked_item >= 0
    assert clicked.any() and (~clicked).any()
    expected = 0.8 * before + 0.5 * sim.catalog.topics[action] * clicked[:, None]
    np.testing.assert_allclose(sim.state.boredom, expected, rtol=1e-13)


def test_boredom_lowers_click_probability() -> None:
    """Boredom on an item's topics lowers its click probability (boredom_weight > 0)."""
    cfg = EnvConfig(
        catalog=CatalogConfig(num_items=32, num_topics=K),
        choice=ChoiceConfig(boredom_weight=1.0),
        drift=DriftConfig(processes=(Boredom(),)),
    )
    fresh, bored = BatchSimulator(cfg, 1), BatchSimulator(cfg, 1)
    fresh.seed([0])
    bored.seed([0])
    bored.state.boredom[:] = 1.0
    p_fresh = fresh.step(np.array([3])).click_prob[0]
    p_bored = bored.step(np.array([3])).click_prob[0]
    assert p_bored < p_fresh


def test_population_trend_moves_new_users_only() -> None:
    """New users' mean interests follow World.population_mean(t); current users keep theirs."""
    users = 4000
    sim = _sim(PopulationTrend(amplitude=2.0, period=40), num_users=users)
    tol = 5 * 1.0 / math.sqrt(users)  # interest_spread 1: 5 standard errors of a mean
    mu0, mu10 = sim.world.population_mean(0), sim.world.population_mean(10)
    assert np.abs(mu10 - mu0).max() > 10 * tol
    assert np.abs(sim.state.interest.mean(axis=0) - mu0).max() < tol
    theta0 = sim.state.interest.copy()
    rng = np.random.default_rng(7)
    for _ in range(10):
        sim.step(_random_actions(sim, rng))
    np.testing.assert_array_equal(sim.state.interest, theta0)  # current users are unaffected
    sim.reset_users(np.arange(users))
    assert np.abs(sim.state.interest.mean(axis=0) - mu10).max() < tol


@pytest.mark.parametrize(
    "process",
    [GradualDrift(sigma=2.0), AbruptShift(rate=1.0), ConsumptionDrift(pull=10.0, push=10.0)],
    ids=["gradual", "abrupt", "consumption"],
)
def test_interests_are_clipped_after_drift(process: DriftProcess) -> None:
    """After the drift processes, interests stay within +-interest_clip."""
    sim = _sim(
        process,
        num_users=64,
        users=UserConfig(population_scale=3.0, interest_spread=3.0, interest_clip=0.5),
    )
    rng = np.random.default_rng(8)
    for _ in range(5):
        sim.step(_random_actions(sim, rng))
        assert np.abs(sim.state.interest).max() <= 0.5


def test_new_items_event_and_release_mask() -> None:
    """NEW_ITEMS is set exactly on the steps that release items, and released() grows with them."""
    sim = _sim(
        num_users=2,
        catalog=CatalogConfig(
            num_items=32, num_topics=K, new_item_fraction=0.5, release_horizon=12
        ),
    )
    release = sim.catalog.release_step
    steps = set(release[release > 0].tolist())
    assert 0 < len(steps) < 12
    for t in range(1, 16):
        result = sim.step(np.zeros(2, dtype=np.int64))
        assert np.all((result.drift_events == DriftEvent.NEW_ITEMS) == (t in steps)), t
        np.testing.assert_array_equal(sim.released(), release <= t)
    np.testing.assert_array_equal(sim.released(3), release <= 3)


# --------------------------------------------------------------------------------------------
# v1: satisfaction, the population walk, saturation
# --------------------------------------------------------------------------------------------
def test_satisfaction_step_by_hand() -> None:
    """sigma <- (1 - d) sigma + g * clicked * (q - neutral); no click only decays."""
    ctx = _ctx(
        [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]],
        clicked_topics=[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]],
        clicked_quality=[0.9, 0.1, 0.0],
    )
    ctx.satisfaction = np.array([1.0, 0.0, 2.0])
    Satisfaction(gain=0.5, decay=0.2, neutral=0.5, weight=3.0).apply(ctx)
    # 0.8 * 1 + 0.5 * 0.4 = 1.0; 0 + 0.5 * (-0.4) = -0.2; 0.8 * 2 = 1.6 (no click)
    np.testing.assert_allclose(ctx.satisfaction, [1.0, -0.2, 1.6], rtol=1e-15)
    np.testing.assert_array_equal(ctx.interest, 0.0)  # interests untouched


def test_satisfaction_shifts_every_attraction_in_core() -> None:
    """In the core, weight * sigma is added to every item's attraction (click prob changes)."""
    sim = _sim(Satisfaction(gain=1.0, decay=0.0, weight=2.0), num_users=2)
    sim.state.satisfaction[:] = [0.0, 1.0]
    sim.state.interest[1] = sim.state.interest[0]
    before = sim.attraction_all()
    np.testing.assert_allclose(before[1] - before[0], 2.0, rtol=1e-12)
    result = sim.step(np.array([3, 3]), with_oracle=True)
    s0 = 1.0 / (1.0 + np.exp(1.5 - before[:, 3]))
    np.testing.assert_allclose(result.click_prob, s0, rtol=1e-12)
    np.testing.assert_allclose(
        result.oracle.expected_reward, 1.0 / (1.0 + np.exp(1.5 - before.max(axis=1))), rtol=1e-12
    )


def test_population_drift_moves_everyone_by_the_same_walk() -> None:
    """PopulationDrift: every user and the population mean move by the world's walk step."""
    sim = _sim(PopulationDrift(sigma=0.1), num_users=5)
    theta0 = sim.state.interest.copy()
    mu0 = sim.world.population_mean(0)
    for _ in range(30):
        sim.step(np.zeros(5, dtype=np.int64))
    walk = sim.world.walk(30)
    # up to the saturation at the (loose, 100) clip: a relative damping below 1e-5 here
    np.testing.assert_allclose(
        sim.state.interest - theta0, np.broadcast_to(walk, (5, K)), rtol=1e-5, atol=1e-9
    )
    np.testing.assert_allclose(sim.world.population_mean(30) - mu0, walk, rtol=1e-12)
    # the walk is a fixed function of the clock, whatever order it is asked in
    other = World(K, 1.0, seed=0, walk_sigma=0.1)
    np.testing.assert_array_equal(other.walk(30), walk)
    assert np.std(np.diff([sim.world.walk(t) for t in range(31)], axis=0)) == pytest.approx(
        0.1, rel=0.3
    )


def test_consumption_drift_saturates_below_the_clip() -> None:
    """A greedy feedback loop under strong consumption drift no longer pins interests at 4."""
    cfg = EnvConfig(
        catalog=CatalogConfig(num_items=64, num_topics=K),
        users=UserConfig(patience=1e6, max_patience=1e6),
        session=SessionConfig(max_steps=1000, history_len=8),
        drift=DriftConfig(processes=(ConsumptionDrift(pull=0.5, push=0.1),)),
    )
    sim = BatchSimulator(cfg, num_users=64)
    sim.seed(list(range(64)))
    for _ in range(200):
        sim.step(sim.oracle().action)
    top = np.abs(sim.state.interest).max(axis=1)
    assert top.max() < 4.0  # approached smoothly, never reached
    assert top.mean() > 2.0  # but the loop still pulls them far out


# --------------------------------------------------------------------------------------------
# Aversion: over-exposure turns into a lasting loss of interest
# --------------------------------------------------------------------------------------------
def test_aversion_step_by_hand() -> None:
    """theta_k <- theta_k - rate * max(b_k - threshold, 0), with b after this step's boredom."""
    ctx = _ctx(
        [[1.0, 2.0, 0.5], [1.0, 2.0, 0.5]],
        boredom=[[0.5, 0.9, 0.0], [0.0, 0.0, 0.0]],
        clicked_topics=[[0.8, 0.2, 0.0], [0.0, 0.0, 0.0]],
    )
    Boredom(gain=1.0, decay=0.1).apply(ctx)
    # user 0: b = 0.9 * [0.5, 0.9, 0] + [0.8, 0.2, 0] = [1.25, 1.01, 0]; user 1: b = 0
    Aversion(threshold=1.0, rate=2.0).apply(ctx)
    # user 0 loses 2 * [0.25, 0.01, 0] = [0.5, 0.02, 0]; user 1 nothing
    np.testing.assert_allclose(ctx.interest, [[0.5, 1.98, 0.5], [1.0, 2.0, 0.5]], atol=1e-12)
    np.testing.assert_allclose(ctx.boredom[0], [1.25, 1.01, 0.0], atol=1e-12)


def test_aversion_in_core_lasts_after_boredom_fades() -> None:
    """Repeated clicks on one topic cost interest there; the loss stays once boredom has faded."""
    sim = _sim(
        Boredom(gain=1.0, decay=0.1),
        Aversion(threshold=1.0, rate=1.0),
        num_users=1,
        catalog=CatalogConfig(num_items=32, num_topics=K, topic_purity=1.0),
    )
    sim.state.interest[:] = 50.0  # every item is clicked (probability ~1)
    item = 0
    k = int(np.argmax(sim.catalog.topics[item]))
    for _ in range(3):
        sim.step(np.array([item]))
    # b_k: 1, 1.9, 2.71 after the three clicks; interest lost 0 + 0.9 + 1.71
    np.testing.assert_allclose(sim.state.boredom[0, k], 2.71, rtol=1e-12)
    np.testing.assert_allclose(sim.state.interest[0, k], 50.0 - 2.61, rtol=1e-12)
    other = next(i for i in range(32) if np.argmax(sim.catalog.topics[i]) != k)
    for _ in range(40):  # boredom on k fades (0.9^40 * 2.71 < 0.05); the interest stays lost
        sim.step(np.array([other]))
    assert sim.state.boredom[0, k] < 0.05
    # b_k was 2.439, 2.195, ... above 1 for 9 more steps: more loss, then none
    lost = sum(max(2.71 * 0.9**t - 1.0, 0.0) for t in range(1, 41))
    np.testing.assert_allclose(sim.state.interest[0, k], 50.0 - 2.61 - lost, rtol=1e-9)
