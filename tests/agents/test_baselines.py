"""Tests for driftrec.agents.baselines (numpy baselines and the factory)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from driftrec.agents.base import Recommender, evaluate
from driftrec.agents.baselines import (
    BASELINE_NAMES,
    EpsilonGreedyAgent,
    LinearThompsonAgent,
    LinUCBAgent,
    OracleAgent,
    PopularityAgent,
    RandomAgent,
    make_baseline,
)
from driftrec.envs import DriftRecEnv, DriftRecVectorEnv
from driftrec.envs.observation import ObservationLayout, encode_clock

B = 4  # users per vector step in the small envs
NAMES = list(BASELINE_NAMES)
PRIVILEGED = ("oracle", "planner", "planner-first-order", "static-tilt")
LEARNERS = [n for n in NAMES if n not in PRIVILEGED]  # the privileged references


def _env(num_envs: int = B, **overrides: Any) -> DriftRecVectorEnv:
    overrides.setdefault("num_items", 40)
    return DriftRecVectorEnv(num_envs, **overrides)


def _new_items_env(num_items: int = 30, slate_size: int = 1) -> DriftRecVectorEnv:
    """Half the catalog is released during the first 20 global steps."""
    return DriftRecVectorEnv(
        B,
        scenario="NewItems",
        num_items=num_items,
        slate_size=slate_size,
        new_item_fraction=0.5,
        **{"catalog.release_horizon": 20},
    )


def _obs(history: list[tuple[int, float]], lay: ObservationLayout, clock: float = 0.0):
    """One flat observation whose history (oldest first) is ``history``."""
    obs = np.zeros(lay.size, dtype=np.float32)
    h = lay.history_len
    for j, (item, fb) in enumerate(history):
        pos = h - len(history) + j
        obs[lay.item_ids.start + pos] = item
        obs[lay.feedback.start + pos] = fb
        obs[lay.mask.start + pos] = 1.0
    obs[lay.clock] = encode_clock(clock)
    return obs


# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("slate_size", [1, 10])
@pytest.mark.parametrize("name", NAMES)
def test_predict_shapes_dtype_and_distinct_slates(name: str, slate_size: int) -> None:
    """Batched predict gives (B,) or (B, k) int64 items in range, distinct within a slate."""
    env = _env(slate_size=slate_size)
    obs, _ = env.reset(seed=0)
    agent = make_baseline(name, env, seed=0)
    assert isinstance(agent, Recommender) and agent.name == name
    actions, state = agent.predict(obs)
    assert state is None
    assert actions.dtype == np.int64
    assert actions.shape == ((B,) if slate_size == 1 else (B, slate_size))
    assert ((actions >= 0) & (actions < 40)).all()
    if slate_size > 1:
        assert all(len(set(row.tolist())) == slate_size for row in actions)


@pytest.mark.parametrize("name", LEARNERS)
def test_single_observation_gives_single_action(name: str) -> None:
    """A (D,) observation from DriftRecEnv gives one action that the env accepts."""
    env = DriftRecEnv(num_items=40, slate_size=3)
    obs, _ = env.reset(seed=0)
    agent = make_baseline(name, env, seed=0)
    action, _ = agent.predict(obs)
    assert action.shape == (3,)
    _, reward, *_ = env.step(action)
    agent.update(obs[None], action[None], np.array([reward]), env.sim.observation(), [False], {})


@pytest.mark.parametrize("slate_size", [1, 10])
@pytest.mark.parametrize("name", NAMES)
def test_never_recommends_unreleased_items(name: str, slate_size: int) -> None:
    """While items are being released, every recommended item is released at that clock."""
    env = _new_items_env(slate_size=slate_size)
    release = env.catalog.release_step
    assert (release > 0).sum() == 15 and release.max() <= 20
    agent = make_baseline(name, env, seed=0)
    res = evaluate(agent, env, 25, seed=0, record_actions=True)
    assert res.actions is not None
    for t in range(25):  # the action of step t is applied at global clock t
        assert (release[res.actions[t]] <= t).all(), f"unreleased item at step {t}"


@pytest.mark.parametrize("name", LEARNERS)
def test_fewer_released_than_slate_repeats_released_items(name: str) -> None:
    """With only 6 of 12 items released, a slate of 10 still holds released items only."""
    env = _new_items_env(num_items=12, slate_size=10)
    obs, _ = env.reset(seed=0)
    released = env.catalog.release_step <= 0
    assert released.sum() == 6
    actions, _ = make_baseline(name, env, seed=0).predict(obs)
    assert released[actions].all()
    assert all(len(set(row.tolist())) == 6 for row in actions)


@pytest.mark.parametrize("slate_size", [1, 10])
@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_actions(name: str, slate_size: int) -> None:
    """Two runs with the same agent seed and env seed recommend exactly the same items."""
    runs = []
    for _ in range(2):
        env = _env(slate_size=slate_size)
        agent = make_baseline(name, env, seed=7)
        runs.append(evaluate(agent, env, 12, seed=3, record_actions=True).actions)
    np.testing.assert_array_equal(runs[0], runs[1])


def test_different_seeds_differ() -> None:
    """The random agent's actions depend on its seed."""
    acts = []
    for seed in (0, 1):
        env = _env()
        acts.append(evaluate(RandomAgent(env, seed=seed), env, 5, seed=0, record_actions=True))
    assert not np.array_equal(acts[0].actions, acts[1].actions)


def test_generator_seed_is_used_as_is() -> None:
    """A Generator passed as seed is the agent's generator (not a copy)."""
    rng = np.random.default_rng(0)
    assert RandomAgent(_env(), seed=rng).rng is rng
    with pytest.raises(TypeError, match=r"^'seed' must be an int, a numpy Generator or None"):
        RandomAgent(_env(), seed="0")


@pytest.mark.parametrize("slate_size", [1, 10])
@pytest.mark.parametrize("name", LEARNERS)
def test_update_survives_autoresets(name: str, slate_size: int) -> None:
    """Learning through many same-step autoresets (3-step sessions) runs and stays finite."""
    env = _env(slate_size=slate_size, max_steps=3)
    agent = make_baseline(name, env, seed=0)
    res = evaluate(agent, env, 12, seed=0)
    assert res.sessions_finished.sum() == 4 * B
    assert np.isfinite(agent.scores(env.sim.observation())).all()


@pytest.mark.parametrize("slate_size", [1, 10])
def test_popularity_counts_every_click(slate_size: int) -> None:
    """Undecayed popularity counts sum to the total reward, finished users' clicks included."""
    env = _env(slate_size=slate_size, max_steps=3)
    agent = PopularityAgent(env, seed=0)
    res = evaluate(agent, env, 12, seed=0)
    assert res.total_reward > 0
    assert agent.counts.sum() == pytest.approx(res.total_reward)


def test_popularity_decay_and_ranking() -> None:
    """Counts decay by the factor each step and the most clicked released item wins."""
    env = _env(num_envs=2)
    agent = PopularityAgent(env, decay=0.5, seed=0)
    obs, _ = env.reset(seed=0)
    agent.update(obs, np.array([3, 5]), np.array([1.0, 1.0]), obs, np.zeros(2, bool), {})
    agent.update(obs, np.array([3, 7]), np.array([1.0, 0.0]), obs, np.zeros(2, bool), {})
    assert agent.counts[3] == 1.5 and agent.counts[5] == 0.5 and agent.counts[7] == 0.0
    actions, _ = agent.predict(obs)
    np.testing.assert_array_equal(actions, [3, 3])
    agent.reset_state()
    assert agent.counts.sum() == 0


def test_epsilon_greedy_rates_and_exploration() -> None:
    """Rates use the Beta prior; epsilon=0 is greedy and epsilon=1 explores every user."""
    env = _env(num_envs=2)
    obs, _ = env.reset(seed=0)
    agent = EpsilonGreedyAgent(env, epsilon=0.0, seed=0)
    done = np.zeros(2, bool)
    agent.update(obs, np.array([4, 4]), np.array([1.0, 1.0]), obs, done, {})
    agent.update(obs, np.array([9, 9]), np.array([0.0, 1.0]), obs, done, {})
    assert agent.click_rates[4] == pytest.approx(3 / 4)  # (2 + 1) / (2 + 2)
    assert agent.click_rates[9] == pytest.approx(2 / 4)
    assert agent.click_rates[0] == pytest.approx(1 / 2)
    np.testing.assert_array_equal(agent.predict(obs)[0], [4, 4])
    explorer = EpsilonGreedyAgent(env, epsilon=1.0, seed=0)
    explorer.clicks[:] = agent.clicks
    explorer.shows[:] = agent.shows
    picks = np.concatenate([explorer.predict(obs)[0] for _ in range(20)])
    assert len(set(picks.tolist())) > 10
    np.testing.assert_array_equal(explorer.predict(obs, deterministic=True)[0], [4, 4])


def test_oracle_is_privileged_and_checks_its_env() -> None:
    """The oracle is flagged privileged and refuses observations of another batch size."""
    env = _env()
    agent = OracleAgent(env)
    assert agent.privileged is True
    assert not RandomAgent(env).privileged and not LinUCBAgent(env).privileged
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(agent.predict(obs)[0], env.sim.oracle().action)
    with pytest.raises(ValueError, match="acts for the 4 users of its env, but the observation"):
        agent.predict(obs[:2])


# --------------------------------------------------------------------------------------------
# LinUCB
# --------------------------------------------------------------------------------------------
FEATS = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])  # three unit-norm items, E = 2


def test_linucb_hand_computed_discounted_updates() -> None:
    """UCB scores and two D-LinUCB updates (gamma 0.5) match the arithmetic by hand."""
    env = _env(num_envs=1, num_items=3, num_topics=2)
    agent = LinUCBAgent(env, FEATS, alpha=1.0, reg=1.0, discount=0.5, personalize=False)
    assert agent.name == "linucb-discounted" and agent.dim == 2
    obs, _ = env.reset(seed=0)
    # prior: theta = 0, A = I -> UCB = sqrt(|f|^2) = 1 for every unit-norm item
    np.testing.assert_allclose(agent.scores(obs), [[1.0, 1.0, 1.0]])

    # item 2 (x = [.6, .8]) clicked: A = .5 I + x x^T + .5 I = I + x x^T, b = x
    agent.update(obs, np.array([2]), np.array([1.0]), obs, np.zeros(1, bool), {})
    np.testing.assert_allclose(agent.A, [[1.36, 0.48], [0.48, 1.64]])
    np.testing.assert_allclose(agent.b, [0.6, 0.8])
    # A^{-1} = I - x x^T / 2, theta = A^{-1} x = x / 2 = [.3, .4]
    np.testing.assert_allclose(agent.theta, [0.3, 0.4])
    # e0: .3 + sqrt(1 - .36/2); e1: .4 + sqrt(1 - .64/2); x: .5 + sqrt(1 - 1/2)
    want = [0.3 + np.sqrt(0.82), 0.4 + np.sqrt(0.68), 0.5 + np.sqrt(0.5)]
    np.testing.assert_allclose(agent.scores(obs), [want], rtol=1e-6)
    assert agent.predict(obs)[0].tolist() == [1]

    # item 0 not clicked: A = .5 (I + x x^T) + e0 e0^T + .5 I, b = .5 x
    agent.update(obs, np.array([0]), np.array([0.0]), obs, np.zeros(1, bool), {})
    np.testing.assert_allclose(agent.A, [[2.18, 0.24], [0.24, 1.32]])
    np.testing.assert_allclose(agent.b, [0.3, 0.4])
    a_inv = np.linalg.inv([[2.18, 0.24], [0.24, 1.32]])
    theta = a_inv @ [0.3, 0.4]
    want = FEATS @ theta + np.sqrt(np.einsum("nd,de,ne->n", FEATS, a_inv, FEATS))
    np.testing.assert_allclose(agent.scores(obs)[0], want, rtol=1e-6)


def test_linucb_sliding_window_keeps_the_last_pairs() -> None:
    """With window=2, A and b hold reg I plus exactly the last two (item, reward) pairs."""
    env = _env(num_envs=1, num_items=3, num_topics=2)
    agent = LinUCBAgent(env, FEATS, reg=2.0, window=2, personalize=False)
    assert agent.name == "linucb-window"
    obs, _ = env.reset(seed=0)
    done = np.zeros(1, bool)
    for item, r in [(0, 1.0), (1, 0.0), (2, 1.0), (1, 1.0)]:
        agent.update(obs, np.array([item]), np.array([r]), obs, done, {})
    x2, x1 = FEATS[2], FEATS[1]  # the last two pairs: (2, 1.0) and (1, 1.0)
    np.testing.assert_allclose(agent.A, 2.0 * np.eye(2) + np.outer(x2, x2) + np.outer(x1, x1))
    np.testing.assert_allclose(agent.b, x2 + x1)
    agent.update(obs, np.array([0]), np.array([0.0]), obs, done, {})  # (2, 1.0) leaves
    x0 = FEATS[0]
    np.testing.assert_allclose(agent.A, 2.0 * np.eye(2) + np.outer(x1, x1) + np.outer(x0, x0))
    np.testing.assert_allclose(agent.b, x1)


def test_linucb_profile_and_personalized_widths() -> None:
    """h_u is the click-weighted mean of history features; widths equal phi^T A^-1 phi."""
    env = _env(num_envs=2, num_items=3, num_topics=2)
    agent = LinUCBAgent(env, FEATS, alpha=0.7, reg=1.0)
    assert agent.dim == 4
    lay = env.layout
    obs = np.stack([_obs([(0, 1.0), (1, 0.0), (2, 1.0)], lay), _obs([(1, 0.0)], lay)])
    h = agent.profile(obs)
    np.testing.assert_allclose(h, [[0.8, 0.4], [0.0, 0.0]])  # (e0 + [.6, .8]) / 2; no clicks
    # some data, then compare with a brute-force phi^T A^{-1} phi
    rng = np.random.default_rng(0)
    for _ in range(3):
        act = rng.integers(0, 3, size=2)
        agent.update(obs, act, rng.random(2), obs, np.zeros(2, bool), {})
    a_inv = np.linalg.inv(agent.A)
    phi = np.concatenate([np.broadcast_to(FEATS, (2, 3, 2)), FEATS * h[:, None, :]], axis=2)
    widths = np.sqrt(np.einsum("uid,de,uie->ui", phi, a_inv, phi))
    np.testing.assert_allclose(agent.widths(obs), widths, rtol=1e-5)
    mean = phi @ agent.theta
    np.testing.assert_allclose(agent.scores(obs), mean + 0.7 * widths, rtol=1e-5)


def test_linucb_reduces_wide_features() -> None:
    """Features wider than feature_dim are reduced (SVD or a seeded random projection)."""
    env = _env(num_items=40)
    wide = np.random.default_rng(0).standard_normal((40, 100))
    svd = LinUCBAgent(env, wide, feature_dim=8)
    assert svd.features.shape == (40, 8) and svd.dim == 16
    a = LinUCBAgent(env, wide, feature_dim=8, projection="random", seed=1)
    b = LinUCBAgent(env, wide, feature_dim=8, projection="random", seed=1)
    np.testing.assert_array_equal(a.features, b.features)
    assert LinUCBAgent(env, wide, feature_dim=None, personalize=False).features.shape == (40, 100)


def test_thompson_deterministic_is_the_posterior_mean() -> None:
    """deterministic=True ranks by theta_hat, like LinUCB with alpha=0 on the same data."""
    env = _env()
    obs, _ = env.reset(seed=0)
    ts = LinearThompsonAgent(env, seed=0)
    greedy = LinUCBAgent(env, alpha=0.0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        act = rng.integers(0, 40, size=B)
        r = rng.random(B)
        for agent in (ts, greedy):
            agent.update(obs, act, r, obs, np.zeros(B, bool), {})
    np.testing.assert_allclose(ts.scores(obs, deterministic=True), greedy.scores(obs))
    assert not np.allclose(ts.scores(obs), greedy.scores(obs))  # a posterior sample


def test_linucb_beats_random_on_stationary() -> None:
    """On Stationary (B=64, topic features), LinUCB's last 200 of 600 steps beat random clearly."""
    means = {}
    for name in ("random", "linucb"):
        env = DriftRecVectorEnv(64, scenario="Stationary")
        agent = make_baseline(name, env, item_features=env.catalog.topics, seed=0)
        res = evaluate(agent, env, 600, seed=0)
        means[name] = float(res.reward[-200:].mean())
    assert means["linucb"] > means["random"] + 0.15, means


# --------------------------------------------------------------------------------------------
# validation and the factory
# --------------------------------------------------------------------------------------------
def test_baseline_names_are_pinned() -> None:
    """The factory's names, in order."""
    assert BASELINE_NAMES == (
        "random",
        "popularity",
        "oracle",
        "planner",
        "planner-first-order",
        "static-tilt",
        "epsilon-greedy",
        "linucb",
        "linucb-discounted",
        "linucb-window",
        "thompson",
        "history-similarity",
        "population-best",
    )


def test_make_baseline_builds_each_variant() -> None:
    """Each name gives its class and defaults; kwargs reach the constructor."""
    env = _env()
    assert type(make_baseline("popularity", env, decay=0.9)) is PopularityAgent
    assert make_baseline("popularity", env, decay=0.9).decay == 0.9
    assert make_baseline("linucb-discounted", env).discount == 0.99
    assert make_baseline("linucb-window", env).window == 5000
    assert make_baseline("linucb-window", env, window=10).window == 10
    assert type(make_baseline("thompson", env, v=0.1)) is LinearThompsonAgent
    assert type(make_baseline("oracle", env, item_features=np.zeros((40, 2)))) is OracleAgent


def test_make_baseline_unknown_name() -> None:
    """An unknown name raises ValueError listing the names."""
    msg = (
        "'name' must be one of ['random', 'popularity', 'oracle', 'planner', "
        "'planner-first-order', 'static-tilt', 'epsilon-greedy', 'linucb', 'linucb-discounted', "
        "'linucb-window', 'thompson', 'history-similarity', 'population-best'] (got 'ucb')"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        make_baseline("ucb", _env())


@pytest.mark.parametrize(
    ("build", "error", "msg"),
    [
        (
            lambda env: PopularityAgent(env, decay=1.5),
            ValueError,
            "'decay' must be a finite number in (0.0, 1.0] (got 1.5)",
        ),
        (
            lambda env: EpsilonGreedyAgent(env, epsilon=-0.1),
            ValueError,
            "'epsilon' must be a finite number in [0.0, 1.0] (got -0.1)",
        ),
        (
            lambda env: LinUCBAgent(env, np.zeros((5, 2))),
            ValueError,
            "'item_features' must have shape (num_items=40, E) (got (5, 2))",
        ),
        (
            lambda env: LinUCBAgent(env, discount=0.9, window=10),
            ValueError,
            "pass either 'discount' < 1 or 'window', not both (got discount=0.9 and window=10)",
        ),
        (
            lambda env: LinUCBAgent(env, projection="pca"),
            ValueError,
            "'projection' must be 'svd' or 'random' (got 'pca')",
        ),
        (
            lambda env: RandomAgent(object()),
            TypeError,
            "'env' must be a driftrec env (DriftRecEnv, DriftRecVectorEnv, DriftRecSB3VecEnv or "
            "a wrapper of one) with a 'sim' BatchSimulator (got object)",
        ),
    ],
)
def test_invalid_arguments_are_named(build: Any, error: type, msg: str) -> None:
    """Bad constructor arguments raise errors that name the argument and the value."""
    with pytest.raises(error, match=f"^{re.escape(msg)}$"):
        build(_env())


def test_wide_personalized_features_warn() -> None:
    """Keeping more than 128 personalised feature dims warns about the cost."""
    wide = np.random.default_rng(0).standard_normal((40, 130))
    with pytest.warns(UserWarning, match="pass feature_dim=64 or less"):
        LinUCBAgent(_env(), wide, feature_dim=None)


# --------------------------------------------------------------------------------------------
# the references: history-similarity and population-best
# --------------------------------------------------------------------------------------------
def test_history_similarity_profile_by_hand() -> None:
    """h_u = sum_r decay^r (y - skip (1 - y)) e_a over the history, newest r = 0."""
    from driftrec.agents.baselines import HistorySimilarityAgent

    env = _env()
    obs, _ = env.reset(seed=0)
    feats = np.eye(40)[:, :40]  # one-hot item features: the profile is readable per item
    agent = HistorySimilarityAgent(env, feats, decay=0.5, skip_weight=0.25, epsilon=0.0, seed=0)
    lay = ObservationLayout(history_len=env.sim.layout.history_len, num_items=40)
    one = np.zeros((1, lay.size), dtype=np.float32)
    h = lay.history_len
    one[0, lay.item_ids.start + h - 3 : lay.item_ids.start + h] = [7, 3, 5]  # 5 is newest
    one[0, lay.feedback.start + h - 3 : lay.feedback.start + h] = [1.0, 0.0, 1.0]
    one[0, lay.mask.start + h - 3 : lay.mask.start + h] = 1.0
    profile = agent.profile(one)[0]
    expected = np.zeros(40)
    expected[[7, 3, 5]] = [0.25 * 1.0, 0.5 * -0.25, 1.0]  # decay^2, decay^1 * -skip, decay^0
    np.testing.assert_allclose(profile, expected)
    action, _ = agent.predict(one[0], deterministic=True)
    assert action == 5  # the most similar item is the newest click itself


def test_history_similarity_ranks_clicked_items_last_where_clicks_consume() -> None:
    """In a no_repeat world (or with exclude_clicked=True) the items clicked in the observed
    history are ranked last, so the next most similar item is recommended; skipped items are
    not excluded. set_item_features swaps the embeddings it scores with."""
    from driftrec.agents.baselines import HistorySimilarityAgent

    env = _env(**{"choice.no_repeat": True})
    env.reset(seed=0)
    feats = np.eye(40)
    feats[9, 5] = feats[9, 9] = 0.5**0.5  # item 9 resembles item 5
    agent = HistorySimilarityAgent(env, feats, epsilon=0.0, seed=0)
    assert agent.exclude_clicked
    lay = env.sim.layout
    one = np.zeros((1, lay.size), dtype=np.float32)
    h = lay.history_len
    one[0, lay.item_ids.start + h - 2 : lay.item_ids.start + h] = [3, 5]  # clicked 5, skipped 3
    one[0, lay.feedback.start + h - 1] = 1.0
    one[0, lay.mask.start + h - 2 : lay.mask.start + h] = 1.0
    assert agent.predict(one[0], deterministic=True)[0] == 9
    scores = agent.scores(one, deterministic=True)[0]
    assert scores[5] == -2.0 and scores[3] > -2.0
    keeps = HistorySimilarityAgent(env, feats, epsilon=0.0, seed=0, exclude_clicked=False)
    assert keeps.predict(one[0], deterministic=True)[0] == 5
    assert not HistorySimilarityAgent(_env(), feats, seed=0).exclude_clicked
    agent.set_item_features(np.roll(np.eye(40), 1, axis=1))  # item i now looks like i + 1
    np.testing.assert_array_equal(agent.features, np.roll(np.eye(40), 1, axis=1))
    with pytest.raises(TypeError, match=r"^'exclude_clicked' must be a bool or None \(got 1\)$"):
        HistorySimilarityAgent(env, feats, exclude_clicked=1)  # type: ignore[arg-type]


def test_history_similarity_empty_history_is_random_unless_deterministic() -> None:
    """An empty profile gives random items; deterministic mode draws nothing (item 0)."""
    from driftrec.agents.baselines import HistorySimilarityAgent

    env = _env(num_envs=8)
    obs, _ = env.reset(seed=0)  # every history is empty
    agent = HistorySimilarityAgent(env, epsilon=0.0, seed=0)
    state = agent.rng.bit_generator.state
    greedy, _ = agent.predict(obs, deterministic=True)
    assert agent.rng.bit_generator.state == state and (greedy == 0).all()
    actions, _ = agent.predict(obs)
    assert np.unique(actions).size > 1


def test_population_best_is_the_best_average_item_for_everyone() -> None:
    """Every user gets argmax_i mean_u R(u, i) (top-k of it for slates)."""
    env = _env()
    obs, _ = env.reset(seed=0)
    agent = make_baseline("population-best", env)
    mean = env.sim.item_rewards().mean(axis=0)
    actions, _ = agent.predict(obs)
    assert (actions == int(np.argmax(mean))).all()
    slates = _env(slate_size=3)
    obs, _ = slates.reset(seed=0)
    agent = make_baseline("population-best", slates)
    top = np.argsort(-slates.sim.item_rewards().mean(axis=0), kind="stable")[:3]
    actions, _ = agent.predict(obs)
    assert (actions == top).all()
    # the privileged reward table agrees with the simulator's own slate evaluation
    np.testing.assert_allclose(
        env.sim.item_rewards(), env.sim.slate_rewards(np.arange(40)), rtol=1e-12
    )


# -------------------------------------------------------------------------------- greedy choices
def _trained(name: str, steps: int = 12, **kwargs: Any) -> tuple[Any, DriftRecVectorEnv, Any]:
    """A baseline that has learned online for ``steps`` vector steps; its env and last obs."""
    env = _env()
    obs, _ = env.reset(seed=3)
    agent = make_baseline(name, env, seed=5, **kwargs)
    for _ in range(steps):
        actions, _ = agent.predict(obs)
        nxt, reward, term, trunc, info = env.step(actions)
        agent.update(obs, actions, reward, nxt, term | trunc, info)
        obs = nxt
    return agent, env, obs


@pytest.mark.parametrize("name", NAMES)
def test_greedy_actions_never_draw_from_the_agents_generator(name: str) -> None:
    """greedy_actions leaves the agent's generator where it was: predict after it is unchanged."""
    agent, env, obs = _trained(name)
    twin, _, _ = _trained(name)  # the same agent, the same stream
    state = agent.rng.bit_generator.state
    greedy = agent.greedy_actions(obs)
    assert agent.rng.bit_generator.state == state
    assert greedy.shape == (B,) and greedy.dtype == np.int64
    assert ((greedy >= 0) & (greedy < env.sim.num_items)).all()
    np.testing.assert_array_equal(agent.predict(obs)[0], twin.predict(obs)[0])


def test_linucb_greedy_drops_the_bonus() -> None:
    """LinUCB's greedy choice is the top of the ridge estimate; predict keeps the bonus."""
    agent, _, obs = _trained("linucb", alpha=50.0)
    theta = agent.theta
    h = agent.profile(obs)
    mean = agent._user_vectors(h, theta) @ agent.features.T  # (B, N) phi(u, i) theta
    np.testing.assert_array_equal(agent.greedy_actions(obs), mean.argmax(axis=1))
    ucb = mean + 50.0 * agent.widths(obs)
    np.testing.assert_array_equal(agent.predict(obs, deterministic=True)[0], ucb.argmax(axis=1))
    assert (mean.argmax(axis=1) != ucb.argmax(axis=1)).any()  # the bonus matters at alpha 50


def test_thompson_greedy_is_the_posterior_mean() -> None:
    """Thompson's greedy choice uses theta_hat (no sample), as predict(deterministic=True)."""
    agent, _, obs = _trained("thompson", v=5.0)
    mean = agent._user_vectors(agent.profile(obs), agent.theta) @ agent.features.T
    np.testing.assert_array_equal(agent.greedy_actions(obs), mean.argmax(axis=1))
    sampled = np.stack([agent.predict(obs)[0] for _ in range(5)])
    assert (sampled != mean.argmax(axis=1)).any()  # sampling explores at v = 5


def test_epsilon_greedy_and_popularity_greedy_use_epsilon_zero() -> None:
    """With epsilon 1 every acted choice is random; the greedy one is the best estimate."""
    agent, _, obs = _trained("epsilon-greedy", epsilon=1.0)
    best = int(np.argmax(agent.click_rates))  # ties by index, as argmax
    np.testing.assert_array_equal(agent.greedy_actions(obs), np.full(B, best))
    pop, _, obs = _trained("popularity", epsilon=1.0)
    np.testing.assert_array_equal(pop.greedy_actions(obs), np.full(B, int(np.argmax(pop.counts))))


def test_random_greedy_is_uniform_from_its_own_generator() -> None:
    """random's greedy choice is a uniform draw from a spawned generator, not the agent's."""
    env = _env(num_envs=64)
    obs, _ = env.reset(seed=0)
    agent = make_baseline("random", env, seed=1)
    twin = make_baseline("random", env, seed=1)
    draws = np.concatenate([agent.greedy_actions(obs) for _ in range(20)])  # 1,280 draws
    counts = np.bincount(draws, minlength=40)
    assert counts.min() > 0 and counts.max() < 3 * counts.mean()  # every item, none dominant
    np.testing.assert_array_equal(agent.predict(obs)[0], twin.predict(obs)[0])


def test_history_similarity_greedy_keeps_the_uniform_rule_for_empty_histories() -> None:
    """An empty history's greedy choice is a uniform draw, a clicked one's is its nearest item."""
    env = _env(num_envs=2)
    env.reset(seed=0)
    lay = env.sim.layout
    agent = make_baseline("history-similarity", env, seed=0, epsilon=1.0)
    obs = np.stack([_obs([], lay), _obs([(7, 1.0)], lay)])
    picks = np.stack([agent.greedy_actions(obs) for _ in range(30)])  # (30, 2)
    assert len(set(picks[:, 0].tolist())) > 5  # the empty history: spread over the catalog
    assert set(picks[:, 1].tolist()) == {int(np.argmax(agent.features @ agent.features[7]))}


def test_privileged_agents_are_the_classes_that_say_so() -> None:
    """PRIVILEGED_AGENTS lists exactly the baselines whose class reads the hidden state."""
    from driftrec.agents.baselines import PRIVILEGED_AGENTS

    env = _env()
    env.reset(seed=0)
    flagged = {name for name in NAMES if make_baseline(name, env, seed=0).privileged}
    assert flagged == set(PRIVILEGED_AGENTS)
