"""Baseline recommenders (numpy only): random, popularity, the privileged oracle, epsilon-greedy,
LinUCB (plain, discounted, sliding-window) and linear Thompson sampling.

Every agent follows :class:`~driftrec.agents.base.Recommender`: ``predict`` maps a batch of
observations ``(B, D)`` to ``(B,)`` items or ``(B, k)`` slates of ``k`` distinct items (best
first), and ``update`` learns online from one batched transition. Items not yet released at the
observation's clock (``catalog.release_step > clock``) are never recommended. (If fewer than
``k`` items are released, a slate repeats released items; with none released the agent falls
back to its unmasked ranking, since nothing can be clicked anyway.)

All randomness comes from the ``np.random.Generator`` built in the constructor from ``seed``
(``int | np.random.Generator | None``), so the same seed and the same env seed give the same
actions. ``predict(..., deterministic=True)`` turns random exploration off (no epsilon, the
posterior mean instead of a Thompson sample) and breaks score ties by index instead of at random;
it is the policy's deterministic mode, so LinUCB keeps its confidence bonus there.

:meth:`BaselineAgent.greedy_actions` is the *greedy* choice, what the agent believes is best now
with every exploration device off: LinUCB without the bonus (the ridge estimate), Thompson
sampling with the posterior mean, epsilon-greedy and popularity with epsilon 0, the privileged
references as they act. A uniform policy has no preference, so the greedy choice of ``random``
(and of ``history-similarity`` for a user with an empty history, whose rule is a uniform draw
there) is a uniform draw from a separate generator spawned from the agent's seed. Computing it
never draws from the agent's own generator (its state is restored afterwards), so measuring the
greedy choices does not change a run.

What the agents learn from is the observable feedback only: the reward of each shown item, read
from the ``feedback`` part of ``next_observation`` (slates) or ``reward`` (single items). For the
click reward that is 1 per click; for the engagement reward it is the watch time, so "click
counts" below are reward sums.

Build one by name with :func:`make_baseline`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftrec.envs.config import check_float, check_int
from driftrec.envs.core import BatchSimulator
from driftrec.envs.observation import ObservationLayout, SplitObservation

__all__ = [
    "BaselineAgent",
    "RandomAgent",
    "PopularityAgent",
    "OracleAgent",
    "EpsilonGreedyAgent",
    "LinUCBAgent",
    "LinearThompsonAgent",
    "HistorySimilarityAgent",
    "PopulationBestAgent",
    "make_baseline",
    "BASELINE_NAMES",
    "PRIVILEGED_AGENTS",
]

SeedLike = int | np.random.Generator | None

BASELINE_NAMES: tuple[str, ...] = (
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
"""The names :func:`make_baseline` accepts."""

PRIVILEGED_AGENTS: tuple[str, ...] = (
    "oracle",
    "planner",
    "planner-first-order",
    "static-tilt",
    "population-best",
)
"""The baselines that read the simulator's hidden state (their class sets ``privileged``):
references, not achievable policies, so paired comparisons never choose one as the baseline to
beat."""

DEFAULT_DISCOUNT = 0.99
"""``discount`` of ``"linucb-discounted"``: per vector step, a memory of about 100 steps."""

DEFAULT_WINDOW = 5000
"""``window`` of ``"linucb-window"``: the last 5,000 (item, reward) pairs (78 steps of 64)."""


def _simulator(env: Any) -> BatchSimulator:
    """The :class:`BatchSimulator` behind a driftrec env (single, vector, SB3 or wrapped)."""
    for candidate in (env, getattr(env, "unwrapped", None)):
        sim = getattr(candidate, "sim", None)
        if isinstance(sim, BatchSimulator):
            return sim
    raise TypeError(
        "'env' must be a driftrec env (DriftRecEnv, DriftRecVectorEnv, DriftRecSB3VecEnv or a "
        f"wrapper of one) with a 'sim' BatchSimulator (got {type(env).__name__})"
    )


def _item_features(sim: BatchSimulator, item_features: Any) -> NDArray[np.float64]:
    """Checked ``(N, E)`` float64 item features (None: the catalog's topic mixtures)."""
    raw = sim.catalog.topics if item_features is None else item_features
    feats = np.asarray(raw, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] != sim.num_items or feats.shape[1] < 1:
        raise ValueError(
            f"'item_features' must have shape (num_items={sim.num_items}, E) (got {feats.shape})"
        )
    if not np.isfinite(feats).all():
        raise ValueError("'item_features' must be finite (got NaN or inf)")
    return feats


def _check_seed(seed: Any) -> None:
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int | np.integer | np.random.Generator)
    ):
        raise TypeError(
            f"'seed' must be an int, a numpy Generator or None (got {type(seed).__name__})"
        )


class BaselineAgent:
    """Shared machinery: observation parsing, release masks and top-k selection.

    Subclasses implement :meth:`_scores` (one score per item and user; higher is better) and
    usually :meth:`update`. Only the ``catalog``, ``layout`` and slate size of ``env`` are used,
    never its state (except by the privileged :class:`OracleAgent`).

    Args:
        env: a driftrec env (``DriftRecEnv``, ``DriftRecVectorEnv``, ``DriftRecSB3VecEnv``).
        seed: seed of the agent's own generator (an int, a Generator used as is, or None).

    Attributes:
        num_items: catalog size ``N``.
        slate_size: ``k`` (1 for single-item actions).
        layout: the observation layout.
        release_step: ``(N,)`` release step of each item.
        rng: the agent's generator.
    """

    name: str = "baseline"
    privileged: bool = False
    _break_ties: bool = True  # add tiny random jitter so equal scores are broken at random

    def __init__(self, env: Any, *, seed: SeedLike = None) -> None:
        _check_seed(seed)
        sim = _simulator(env)
        self.num_items: int = sim.num_items
        self.slate_size: int = sim.slate_size
        self.layout: ObservationLayout = sim.layout
        self.release_step: NDArray[np.int64] = np.asarray(sim.catalog.release_step, np.int64)
        self._all_released_at = int(self.release_step.max())
        self.rng: np.random.Generator = np.random.default_rng(seed)

    # ------------------------------------------------------------------ observation helpers
    def _parse(self, observation: Any) -> tuple[SplitObservation, bool]:
        """Split a batch (or one) observation; True in the second place for a single one."""
        if isinstance(observation, Mapping):
            single = np.ndim(observation["clock"]) == 1
            if single:
                observation = {k: np.asarray(v)[None] for k, v in observation.items()}
        else:
            observation = np.asarray(observation, dtype=np.float32)
            single = observation.ndim == 1
            if single:
                observation = observation[None]
            elif observation.ndim != 2:
                raise ValueError(
                    f"observation must have shape (B, {self.layout.size}) or "
                    f"({self.layout.size},) (got shape {observation.shape})"
                )
        return self.layout.split(observation), single

    def released_mask(self, clock: NDArray[Any]) -> NDArray[np.bool_] | None:
        """``(B, N)`` True for items released at each user's clock; None if all are."""
        clock = np.asarray(clock).astype(np.int64)  # (B,)
        if clock.size == 0 or clock.min() >= self._all_released_at:
            return None
        return self.release_step[None, :] <= clock[:, None]  # (B, N)

    def scores(self, observation: Any, deterministic: bool = False) -> NDArray[np.float64]:
        """``(B, N)`` the agent's item scores before masking (higher is recommended first)."""
        parts, _ = self._parse(observation)
        return self._scores(parts, deterministic)

    def _scores(self, obs: SplitObservation, deterministic: bool) -> NDArray[np.float64]:
        raise NotImplementedError

    def _greedy_scores(self, obs: SplitObservation) -> NDArray[np.float64]:
        """``(B, N)`` the scores of the greedy choice (default: the deterministic scores)."""
        return self._scores(obs, deterministic=True)

    def _greedy_generator(self) -> np.random.Generator:
        """A generator for the greedy choice's own draws, spawned once from the agent's seed
        (spawning does not advance the agent's stream)."""
        if getattr(self, "_greedy_rng", None) is None:
            self._greedy_rng = self.rng.spawn(1)[0]
        return self._greedy_rng

    def greedy_actions(self, observation: Any) -> NDArray[np.int64]:
        """The greedy choice for every user: the top-scored released item(s) with every
        exploration device off (see the module docs for each agent), ties broken by index.

        It learns nothing and never draws from the agent's generator ``rng`` (its state is
        restored afterwards, whatever a subclass does), so it can be measured during a run
        without changing the run.

        Returns:
            ``(B,)`` or ``(B, k)`` int64 actions; one action for one observation.
        """
        parts, single = self._parse(observation)
        state = self.rng.bit_generator.state
        try:
            scores = self._greedy_scores(parts)  # (B, N)
            actions = self._select(scores, self.released_mask(parts.clock), deterministic=True)
        finally:
            self.rng.bit_generator.state = state
        return actions[0] if single else actions

    # ------------------------------------------------------------------ acting
    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: NDArray[np.bool_] | None = None,
        deterministic: bool = False,
    ) -> tuple[NDArray[np.int64], Any]:
        """Recommend the top-scored released item(s) for every user (SB3 signature).

        Args:
            observation: ``(B, D)`` flat observations or the dict variant; ``(D,)`` for one.
            state: passed through unchanged (these agents are not recurrent).
            episode_start: ignored.
            deterministic: no exploration; ties broken by index.

        Returns:
            ``((B,) or (B, k) int64 actions, state)``; one action for one observation.
        """
        parts, single = self._parse(observation)
        scores = self._scores(parts, deterministic)  # (B, N)
        actions = self._select(scores, self.released_mask(parts.clock), deterministic)
        return (actions[0] if single else actions), state

    def _select(
        self,
        scores: NDArray[np.float64],
        released: NDArray[np.bool_] | None,
        deterministic: bool,
    ) -> NDArray[np.int64]:
        """Top-k released items per row, best first: ``(B,)`` for k = 1, else ``(B, k)``."""
        k = self.slate_size
        ranked = scores
        if self._break_ties and not deterministic:
            scale = 1e-9 * max(1.0, float(np.abs(scores).max(initial=0.0)))
            ranked = scores + scale * self.rng.random(scores.shape)  # (B, N)
        if released is not None:
            ranked = np.where(released, ranked, -np.inf)  # (B, N)
        actions = _top_k(ranked, k)  # (B, k)
        if released is not None:
            short = np.flatnonzero(released.sum(axis=1) < k)
            for row in short.tolist():  # rare: fewer than k items released at this clock
                ok = np.flatnonzero(released[row])
                if ok.size == 0:
                    actions[row] = _top_k(scores[row : row + 1], k)[0]
                else:
                    best = ok[np.argsort(-ranked[row, ok], kind="stable")]
                    actions[row] = np.resize(best, k)  # repeat released items
        return actions[:, 0] if k == 1 else actions

    # ------------------------------------------------------------------ learning
    def update(
        self,
        observation: Any,
        action: NDArray[np.int64],
        reward: NDArray[np.float64],
        next_observation: Any,
        done: NDArray[np.bool_],
        info: Mapping[str, Any],
    ) -> None:
        """Learn from one batched transition (no-op unless a subclass learns)."""

    def reset_state(self) -> None:
        """Forget everything learned (the generator is not reseeded)."""

    def _shown_feedback(
        self, action: Any, reward: Any, next_observation: Any
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """``(B, k)`` shown items and the reward each earned (0 where not clicked)."""
        k = self.slate_size
        items = np.asarray(action, dtype=np.int64).reshape(-1, k)  # (B, k)
        if k == 1:
            fb = np.asarray(reward, dtype=np.float64).reshape(-1, 1)  # (B, 1)
        else:
            nxt, _ = self._parse(next_observation)
            fb = np.asarray(nxt.feedback[:, -k:], dtype=np.float64)  # (B, k) this step's slate
        if fb.shape != items.shape:
            raise ValueError(
                f"action must hold {k} item(s) per user for the {fb.shape[0]} users of the "
                f"batch (got shape {np.shape(action)})"
            )
        return items, fb


def _top_k(scores: NDArray[np.float64], k: int) -> NDArray[np.int64]:
    """``(B, k)`` column indices of the ``k`` largest entries per row, largest first."""
    if k == 1:
        return scores.argmax(axis=1)[:, None].astype(np.int64)  # (B, 1)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (B, k) unordered
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)  # (B, k) best first


def _explore_rows(
    rng: np.random.Generator, scores: NDArray[np.float64], epsilon: float
) -> NDArray[np.float64]:
    """Replace each row by uniform random keys with probability ``epsilon``."""
    explore = rng.random(scores.shape[0]) < epsilon  # (B,)
    if not explore.any():
        return scores
    scores = np.array(scores, dtype=np.float64, copy=True)
    scores[explore] = rng.random((int(explore.sum()), scores.shape[1]))  # random keys
    return scores


# ----------------------------------------------------------------------------------------------
# simple baselines
# ----------------------------------------------------------------------------------------------
class RandomAgent(BaselineAgent):
    """Uniformly random released items (a uniformly random set of ``k`` for slates).

    ``deterministic`` has no effect: the policy is uniform. Its greedy choice
    (:meth:`greedy_actions`) is a uniform draw too, from a separate generator.

    Args:
        env: a driftrec env.
        seed: seed of the agent's generator.
    """

    name = "random"
    _break_ties = False

    def _scores(self, obs: SplitObservation, deterministic: bool) -> NDArray[np.float64]:
        return self.rng.random((obs.clock.shape[0], self.num_items))  # (B, N) random keys

    def _greedy_scores(self, obs: SplitObservation) -> NDArray[np.float64]:
        """No preference: uniform random keys from the greedy choice's own generator."""
        return self._greedy_generator().random((obs.clock.shape[0], self.num_items))  # (B, N)


class PopularityAgent(BaselineAgent):
    """The items with the most (decayed) clicks over all users so far.

    Each update first multiplies every count by ``decay`` (once per vector step), then adds the
    reward each shown item earned. ``decay < 1`` forgets old popularity, so the agent follows a
    drifting population. Ties (e.g. at the start) are broken at random.

    Args:
        env: a driftrec env.
        decay: per-step forgetting factor in ``(0, 1]``.
        epsilon: probability that a user gets a uniformly random recommendation instead.
        seed: seed of the agent's generator.

    Attributes:
        counts: ``(N,)`` decayed click (reward) counts.
    """

    name = "popularity"

    def __init__(
        self, env: Any, *, decay: float = 1.0, epsilon: float = 0.0, seed: SeedLike = None
    ) -> None:
        check_float("decay", decay, 0.0, 1.0, low_open=True)
        check_float("epsilon", epsilon, 0.0, 1.0)
        super().__init__(env, seed=seed)
        self.decay = float(decay)
        self.epsilon = float(epsilon)
        self.counts = np.zeros(self.num_items)

    def _scores(self, obs: SplitObservation, deterministic: bool) -> NDArray[np.float64]:
        scores = np.broadcast_to(self.counts, (obs.clock.shape[0], self.num_items))  # (B, N)
        if self.epsilon > 0 and not deterministic:
            scores = _explore_rows(self.rng, scores, self.epsilon)
        return scores

    def update(
        self,
        observation: Any,
        action: NDArray[np.int64],
        reward: NDArray[np.float64],
        next_observation: Any,
        done: NDArray[np.bool_],
        info: Mapping[str, Any],
    ) -> None:
        """Decay the counts, then add this step's clicks."""
        items, fb = self._shown_feedback(action, reward, next_observation)
        self.counts *= self.decay
        self.counts += np.bincount(items.ravel(), weights=fb.ravel(), minlength=self.num_items)

    def reset_state(self) -> None:
        """Zero the counts."""
        self.counts[:] = 0.0


class OracleAgent(BaselineAgent):
    """PRIVILEGED: the best one-step action under the simulator's true click model.

    It reads the env's hidden user state (``env.sim.oracle()``) at ``predict`` time, so it is
    exact for the state the next step will face: the short-term (myopic) upper bound that
    regret is measured against. It is not an achievable policy and it ignores the observation
    (apart from its batch size). It does not plan ahead (boredom, leaving), and for slates under
    the engagement reward it is the simulator's greedy top-k.

    Args:
        env: the driftrec env it will act in (it must be the env that is stepped).
        seed: unused (the oracle is deterministic); accepted for a uniform signature.
    """

    name = "oracle"
    privileged = True

    def __init__(self, env: Any, *, seed: SeedLike = None) -> None:
        super().__init__(env, seed=seed)
        self.sim = _simulator(env)

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: NDArray[np.bool_] | None = None,
        deterministic: bool = False,
    ) -> tuple[NDArray[np.int64], Any]:
        """The oracle's action for every user of the env now (the observation is not read)."""
        parts, single = self._parse(observation)
        self._check_batch(parts.clock.shape[0])
        actions = self._actions()
        return (actions[0] if single else actions), state

    def greedy_actions(self, observation: Any) -> NDArray[np.int64]:
        """The same as :meth:`predict`: the policy is greedy (and draws nothing)."""
        actions, _ = self.predict(observation, deterministic=True)
        return actions

    def _actions(self) -> NDArray[np.int64]:
        """``(B,)`` or ``(B, k)`` actions for every user of the env now."""
        return np.array(self.sim.oracle().action, dtype=np.int64, copy=True)

    def _check_batch(self, b: int) -> None:
        if b != self.sim.num_users:
            raise ValueError(
                f"{type(self).__name__} acts for the {self.sim.num_users} users of its env, but "
                f"the observation holds {b}; build it with the env you step"
            )


class EpsilonGreedyAgent(BaselineAgent):
    """Per-item empirical click rate with epsilon-uniform exploration.

    The rate of item ``i`` is ``(clicks_i + a) / (shows_i + a + b)`` with a Beta(``a``, ``b``)
    prior (``prior=(a, b)``; the default (1, 1) is Laplace smoothing, which makes unseen items
    mildly optimistic). Clicks and shows are multiplied by ``decay`` every vector step. With
    probability ``epsilon`` a user's whole recommendation is uniformly random instead.

    Args:
        env: a driftrec env.
        epsilon: exploration probability per user and step, in ``[0, 1]``.
        decay: per-step forgetting factor in ``(0, 1]``.
        prior: ``(a, b)`` pseudo-counts, both ``>= 0``.
        seed: seed of the agent's generator.

    Attributes:
        clicks: ``(N,)`` decayed click (reward) sums.
        shows: ``(N,)`` decayed impression counts.
    """

    name = "epsilon-greedy"

    def __init__(
        self,
        env: Any,
        *,
        epsilon: float = 0.1,
        decay: float = 1.0,
        prior: tuple[float, float] = (1.0, 1.0),
        seed: SeedLike = None,
    ) -> None:
        check_float("epsilon", epsilon, 0.0, 1.0)
        check_float("decay", decay, 0.0, 1.0, low_open=True)
        if not isinstance(prior, tuple | list) or len(prior) != 2:
            raise TypeError(f"'prior' must be a pair (a, b) (got {prior!r})")
        check_float("prior[0]", prior[0], 0.0)
        check_float("prior[1]", prior[1], 0.0)
        if prior[0] + prior[1] <= 0:
            raise ValueError(f"'prior' must have a + b > 0 (got {tuple(prior)!r})")
        super().__init__(env, seed=seed)
        self.epsilon = float(epsilon)
        self.decay = float(decay)
        self.prior = (float(prior[0]), float(prior[1]))
        self.clicks = np.zeros(self.num_items)
        self.shows = np.zeros(self.num_items)

    @property
    def click_rates(self) -> NDArray[np.float64]:
        """``(N,)`` posterior-mean click rate of every item."""
        a, b = self.prior
        return (self.clicks + a) / (self.shows + a + b)

    def _scores(self, obs: SplitObservation, deterministic: bool) -> NDArray[np.float64]:
        scores = np.broadcast_to(self.click_rates, (obs.clock.shape[0], self.num_items))
        if self.epsilon > 0 and not deterministic:
            scores = _explore_rows(self.rng, scores, self.epsilon)
        return scores

    def update(
        self,
        observation: Any,
        action: NDArray[np.int64],
        reward: NDArray[np.float64],
        next_observation: Any,
        done: NDArray[np.bool_],
        info: Mapping[str, Any],
    ) -> None:
        """Decay the statistics, then add this step's impressions and clicks."""
        items, fb = self._shown_feedback(action, reward, next_observation)
        n = self.num_items
        self.clicks *= self.decay
        self.shows *= self.decay
        self.clicks += np.bincount(items.ravel(), weights=fb.ravel(), minlength=n)
        self.shows += np.bincount(items.ravel(), minlength=n)

    def reset_state(self) -> None:
        """Zero the statistics."""
        self.clicks[:] = 0.0
        self.shows[:] = 0.0


# ----------------------------------------------------------------------------------------------
# linear bandits
# ----------------------------------------------------------------------------------------------
class _LinearBandit(BaselineAgent):
    """Ridge regression of the reward on ``phi(u, i)``, shared by LinUCB and Thompson.

    Features. Sessions are anonymous, so personalisation comes from the observation: ``h_u``
    is the feedback-weighted mean of the (reduced) features of the items in the user's
    observed history (zeros before the first click), and

        phi(u, i) = [f_i, f_i * h_u]          (2d,)   with personalize=True
        phi(u, i) = f_i                       (d,)    with personalize=False

    so ``theta = [theta_1, theta_2]`` learns which item features are rewarded in general
    (``theta_1``, the population's taste) and how much "like what this user clicked" pays
    (``theta_2``, per feature). The score is linear in ``g_u = theta_1 + h_u * theta_2``:
    ``<g_u, f_i>``, one ``(B, d) @ (d, N)`` product per step.

    Statistics, over all users' shown (item, reward) pairs (a slate gives ``k`` pairs, position
    bias is ignored), with ``X`` the ``(B k, dim)`` features and ``r`` the rewards of one step:

    * plain: ``A = reg I + sum X^T X``, ``b = sum X^T r``;
    * discounted (``discount = gamma < 1``), after D-LinUCB (Russac, Cappe and Garivier,
      "Weighted linear bandits for non-stationary environments", NeurIPS 2019): once per vector
      step ``A <- gamma A + X^T X + (1 - gamma) reg I`` and ``b <- gamma b + X^T r``;
    * sliding window (``window = W`` pairs), after SW-LinUCB (Cheung, Simchi-Levi and Zhu,
      "Learning to optimize under non-stationarity", AISTATS 2019): only the last ``W`` pairs
      count; a ring buffer subtracts the pairs that leave and ``A, b`` are rebuilt from the
      buffer each time it wraps around (so rounding does not accumulate).

    ``theta = A^{-1} b`` with ``A^{-1}`` recomputed (``dim x dim``) once per step after an
    update.

    Feature reduction. With ``E`` wide item features (384 for MiniLM) the exact UCB width costs
    ``O(N d^2 B)`` per step, so features wider than ``feature_dim`` are reduced first:
    ``projection="svd"`` (default) keeps the top ``feature_dim`` right singular directions of
    the (uncentred) feature matrix, the best rank-``feature_dim`` approximation; ``"random"``
    is a fixed Gaussian projection drawn from the agent's seed (Johnson-Lindenstrauss).
    """

    def __init__(
        self,
        env: Any,
        item_features: Any = None,
        *,
        reg: float = 1.0,
        discount: float = 1.0,
        window: int | None = None,
        personalize: bool = True,
        feature_dim: int | None = 32,
        projection: str = "svd",
        seed: SeedLike = None,
    ) -> None:
        check_float("reg", reg, 0.0, low_open=True)
        check_float("discount", discount, 0.0, 1.0, low_open=True)
        if window is not None:
            check_int("window", window, 1)
            if discount != 1.0:
                raise ValueError(
                    f"pass either 'discount' < 1 or 'window', not both (got discount={discount} "
                    f"and window={window})"
                )
        # "linucb" -> "linucb-window" / "linucb-discounted" (likewise "thompson")
        variant = "-window" if window is not None else "-discounted" if discount < 1.0 else ""
        self.name = f"{type(self).name}{variant}"
        if feature_dim is not None:
            check_int("feature_dim", feature_dim, 1)
        if projection not in ("svd", "random"):
            raise ValueError(f"'projection' must be 'svd' or 'random' (got {projection!r})")
        if not isinstance(personalize, bool):
            raise TypeError(f"'personalize' must be a bool (got {personalize!r})")
        super().__init__(env, seed=seed)
        sim = _simulator(env)
        feats = _item_features(sim, item_features)
        if feature_dim is not None and feats.shape[1] > feature_dim:
            feats = self._reduce(feats, feature_dim, projection)
        self.features: NDArray[np.float64] = np.ascontiguousarray(feats)  # (N, d)
        self.feature_dim: int = feats.shape[1]
        self.personalize = personalize
        self.dim: int = 2 * self.feature_dim if personalize else self.feature_dim
        self.reg = float(reg)
        self.discount = float(discount)
        self.window = window
        self.reset_state()

    def _reduce(self, feats: NDArray[np.float64], d: int, projection: str) -> NDArray[np.float64]:
        if projection == "svd":
            _, _, vt = np.linalg.svd(feats, full_matrices=False)  # vt: (min(N, E), E)
            return feats @ vt[:d].T  # (N, d)
        proj = self.rng.standard_normal((feats.shape[1], d)) / np.sqrt(d)  # (E, d)
        return feats @ proj  # (N, d)

    def reset_state(self) -> None:
        """Back to the prior: ``A = reg I``, ``b = 0``, empty window."""
        self.A: NDArray[np.float64] = self.reg * np.eye(self.dim)
        self.b: NDArray[np.float64] = np.zeros(self.dim)
        self._A_inv: NDArray[np.float64] | None = None
        self._theta: NDArray[np.float64] | None = None
        if self.window is not None:
            self._buf_x = np.zeros((self.window, self.dim))
            self._buf_r = np.zeros(self.window)
            self._buf_pos = 0
            self._buf_len = 0

    # ------------------------------------------------------------------ features
    def profile(self, observation: Any) -> NDArray[np.float64]:
        """``(B, d)`` ``h_u``: feedback-weighted mean features of each user's history."""
        parts, _ = self._parse(observation)
        return self._profile(parts)

    def _profile(self, obs: SplitObservation) -> NDArray[np.float64]:
        w = np.where(obs.mask, obs.feedback, 0.0).astype(np.float64)  # (B, H)
        total = w.sum(axis=1)  # (B,)
        f_hist = self.features[obs.item_ids]  # (B, H, d)
        h = np.einsum("bh,bhd->bd", w, f_hist)  # (B, d)
        return h / np.where(total > 0, total, 1.0)[:, None]  # zeros where nothing was clicked

    def _phi(self, h: NDArray[np.float64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        """``(B * k, dim)`` features of the shown items ``items`` ``(B, k)``."""
        f = self.features[items]  # (B, k, d)
        if self.personalize:
            f = np.concatenate([f, f * h[:, None, :]], axis=2)  # (B, k, 2d)
        return f.reshape(-1, self.dim)  # (B * k, dim)

    def _user_vectors(self, h: NDArray[np.float64], theta: NDArray[np.float64]) -> Any:
        """``g_u = theta_1 + h_u * theta_2``: ``(B, d)``; theta is ``(dim,)`` or ``(B, dim)``."""
        if not self.personalize:
            return np.broadcast_to(theta, (h.shape[0], self.feature_dim))
        d = self.feature_dim
        return theta[..., :d] + h * theta[..., d:]  # (B, d)

    # ------------------------------------------------------------------ statistics
    def _solve(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(A^{-1}, theta)``, recomputed once after each update."""
        if self._A_inv is None or self._theta is None:
            a_inv = np.linalg.inv(self.A)
            a_inv = 0.5 * (a_inv + a_inv.T)  # exactly symmetric
            self._A_inv = a_inv
            self._theta = a_inv @ self.b
        return self._A_inv, self._theta

    @property
    def theta(self) -> NDArray[np.float64]:
        """``(dim,)`` the ridge estimate ``A^{-1} b``."""
        return self._solve()[1].copy()

    def update(
        self,
        observation: Any,
        action: NDArray[np.int64],
        reward: NDArray[np.float64],
        next_observation: Any,
        done: NDArray[np.bool_],
        info: Mapping[str, Any],
    ) -> None:
        """Add the step's (features, reward) pairs (discounting or windowing old ones)."""
        items, fb = self._shown_feedback(action, reward, next_observation)
        parts, _ = self._parse(observation)
        x = self._phi(self._profile(parts), items)  # (B * k, dim)
        r = fb.reshape(-1)  # (B * k,)
        if self.window is not None:
            self._window_add(x, r)
        else:
            g = self.discount
            if g < 1.0:
                self.A *= g
                self.A[np.diag_indices(self.dim)] += (1.0 - g) * self.reg
                self.b *= g
            self.A += x.T @ x  # (dim, dim)
            self.b += x.T @ r
        self._A_inv = None
        self._theta = None

    def _window_add(self, x: NDArray[np.float64], r: NDArray[np.float64]) -> None:
        w = self.window
        assert w is not None
        if x.shape[0] >= w:  # the batch alone fills the window
            x, r = x[-w:], r[-w:]
        n = x.shape[0]
        idx = (self._buf_pos + np.arange(n)) % w  # (n,) ring slots to overwrite
        old = idx[: max(0, self._buf_len + n - w)]  # occupied slots that leave the window
        if old.size:
            xo = self._buf_x[old]  # (n_old, dim)
            self.A -= xo.T @ xo
            self.b -= xo.T @ self._buf_r[old]
        self._buf_x[idx] = x
        self._buf_r[idx] = r
        self.A += x.T @ x
        self.b += x.T @ r
        wrapped = self._buf_pos + n >= w
        self._buf_pos = int((self._buf_pos + n) % w)
        self._buf_len = min(w, self._buf_len + n)
        if wrapped:  # rebuild exactly from the buffer once per lap
            xb = self._buf_x[: self._buf_len]
            self.A = self.reg * np.eye(self.dim) + xb.T @ xb
            self.b = xb.T @ self._buf_r[: self._buf_len]


class LinUCBAgent(_LinearBandit):
    """LinUCB (Li, Chu, Langford and Schapire, WWW 2010) with optional discounting or a window.

    Every item is scored ``UCB_ui = phi(u, i) theta + alpha sqrt(phi(u, i)^T A^{-1} phi(u, i))``
    and the top-k released items are recommended (:meth:`greedy_actions` drops the bonus:
    the top-k of the ridge estimate). See the features, the discounted (D-LinUCB,
    Russac et al. 2019) and sliding-window (SW-LinUCB, Cheung et al. 2019) statistics and the
    feature reduction below. For the discounted variant the width uses ``A^{-1}`` itself rather
    than D-LinUCB's ``A^{-1} A~ A^{-1}`` (``A~`` accumulated with ``gamma^2``), a common
    simplification whose scale ``alpha`` absorbs.

    The width is computed exactly for all ``N`` items and ``B`` users in one matrix product:
    with ``M = A^{-1}`` split into ``d x d`` blocks, ``phi^T M phi = f_i^T S_u f_i`` where
    ``S_u = M11 + M12 diag(h_u) + diag(h_u) M21 + diag(h_u) M22 diag(h_u)``, and the upper
    triangles of ``f_i f_i^T`` (``(N, d(d+1)/2)``, precomputed) times those of ``S_u`` give all
    ``(u, i)`` at once: ``O(N d^2 B / 2)`` per step (float32).

    Args:
        env: a driftrec env.
        item_features: ``(N, E)`` item features (e.g. language-model embeddings); defaults to
            the catalog's topic mixtures ``env.catalog.topics`` (item metadata, like tags).
        alpha: width multiplier ``>= 0`` (0 = greedy ridge regression).
        reg: ridge strength ``> 0`` (``A`` starts at ``reg I``).
        discount: D-LinUCB factor ``gamma`` in ``(0, 1]`` per vector step (1 = no forgetting).
        window: keep only the last ``window`` (item, reward) pairs (SW-LinUCB); exclusive with
            ``discount < 1``.
        personalize: use ``[f_i, f_i * h_u]`` (True) or just ``f_i`` (False, a population-level
            bandit that recommends the same items to everyone).
        feature_dim: reduce features wider than this (None: never); ``d = min(E, feature_dim)``.
        projection: ``"svd"`` or ``"random"``, how to reduce.
        seed: seed of the agent's generator (ties, the random projection).

    Attributes:
        A: ``(dim, dim)`` design matrix; ``b``: ``(dim,)`` response vector; ``features``:
        ``(N, d)`` the (reduced) item features.
    """

    name = "linucb"
    _break_ties = False

    def __init__(
        self,
        env: Any,
        item_features: Any = None,
        *,
        alpha: float = 1.0,
        reg: float = 1.0,
        discount: float = 1.0,
        window: int | None = None,
        personalize: bool = True,
        feature_dim: int | None = 32,
        projection: str = "svd",
        seed: SeedLike = None,
    ) -> None:
        check_float("alpha", alpha, 0.0)
        super().__init__(
            env,
            item_features,
            reg=reg,
            discount=discount,
            window=window,
            personalize=personalize,
            feature_dim=feature_dim,
            projection=projection,
            seed=seed,
        )
        self.alpha = float(alpha)
        d = self.feature_dim
        if personalize and d > 128:
            warnings.warn(
                f"LinUCBAgent with {d}-dimensional features costs O(N d^2 B) per step; pass "
                "feature_dim=64 or less to reduce them",
                stacklevel=2,
            )
        self._tri = np.triu_indices(d)  # upper triangle (a <= b), d(d+1)/2 entries
        self._quad: NDArray[np.float32] | None = None

    def _quadratic_features(self) -> NDArray[np.float32]:
        """``(N, d(d+1)/2)`` ``w_ab f_ia f_ib`` for ``a <= b`` (``w`` = 1 diagonal, 2 off)."""
        if self._quad is None:
            ia, ib = self._tri
            weight = np.where(ia == ib, 1.0, 2.0)  # (T,)
            q = self.features[:, ia] * self.features[:, ib] * weight  # (N, T)
            self._quad = np.ascontiguousarray(q, dtype=np.float32)
        return self._quad

    def widths(self, observation: Any) -> NDArray[np.float64]:
        """``(B, N)`` the confidence widths ``sqrt(phi^T A^{-1} phi)`` (before ``alpha``)."""
        parts, _ = self._parse(observation)
        return self._widths(self._profile(parts))

    def _widths(self, h: NDArray[np.float64]) -> NDArray[np.float64]:
        m, _ = self._solve()
        b, d = h.shape[0], self.feature_dim
        if not self.personalize:
            q = ((self.features @ m) * self.features).sum(axis=1)  # (N, d) -> (N,)
            return np.broadcast_to(np.sqrt(np.maximum(q, 0.0)), (b, self.num_items))
        ia, ib = self._tri
        m11, m12, m22 = m[:d, :d], m[:d, d:], m[d:, d:]
        # (B, T): upper triangle of S_u = M11 + M12 diag(h) + diag(h) M21 + diag(h) M22 diag(h)
        s = m11[ia, ib] + m12[ia, ib] * h[:, ib] + m12[ib, ia] * h[:, ia]
        s += m22[ia, ib] * h[:, ia] * h[:, ib]
        q = s.astype(np.float32) @ self._quadratic_features().T  # (B, T) @ (T, N) -> (B, N)
        return np.sqrt(np.maximum(q, 0.0), dtype=np.float64)

    def _scores(self, obs: SplitObservation, deterministic: bool) -> NDArray[np.float64]:
        _, theta = self._solve()
        h = self._profile(obs)  # (B, d)
        mean = self._user_vectors(h, theta) @ self.features.T  # (B, d) @ (d, N) -> (B, N)
        if self.alpha == 0.0:
            return np.ascontiguousarray(mean)
        return mean + self.alpha * self._widths(h)

    def _greedy_scores(self, obs: SplitObservation) -> NDArray[np.float64]:
        """The ridge estimate ``phi(u, i) theta`` without the confidence bonus."""
        _, theta = self._solve()
        h = self._profile(obs)  # (B, d)
        return np.ascontiguousarray(self._user_vectors(h, theta) @ self.features.T)  # (B, N)


class LinearThompsonAgent(_LinearBandit):
    """Linear Thompson sampling (Agrawal and Goyal, "Thompson sampling for contextual bandits
    with linear payoffs", ICML 2013) with the same features and statistics as LinUCB.

    Each step draws ``theta_u ~ N(theta_hat, v^2 A^{-1})`` independently for every user of the
    batch (B independent posterior samples, as if the B decisions were made one after another
    without an update in between) and recommends the top-k of ``phi(u, i) theta_u``. With
    ``deterministic=True`` it uses ``theta_hat`` (no sampling).

    Args:
        env: a driftrec env.
        item_features: ``(N, E)`` item features; defaults to ``env.catalog.topics``.
        v: posterior scale ``>= 0`` (about the reward noise's standard deviation; 0.5 bounds
            that of a click).
        reg: ridge strength ``> 0``.
        discount: forgetting factor in ``(0, 1]`` per vector step (as D-LinUCB's).
        window: keep only the last ``window`` (item, reward) pairs; exclusive with discount.
        personalize: ``[f_i, f_i * h_u]`` (True) or ``f_i`` (False) features.
        feature_dim: reduce features wider than this (None: never).
        projection: ``"svd"`` or ``"random"``.
        seed: seed of the agent's generator (the posterior samples).
    """

    name = "thompson"
    _break_ties = False

    def __init__(
        self,
        env: Any,
        item_features: Any = None,
        *,
        v: float = 0.5,
        reg: float = 1.0,
        discount: float = 1.0,
        window: int | None = None,
        personalize: bool = True,
        feature_dim: int | None = 32,
        projection: str = "svd",
        seed: SeedLike = None,
    ) -> None:
        check_float("v", v, 0.0)
        super().__init__(
            env,
            item_features,
            reg=reg,
            discount=discount,
            window=window,
            personalize=personalize,
            feature_dim=feature_dim,
            projection=projection,
            seed=seed,
        )
        self.v = float(v)

    def _scores(self, obs: SplitObservation, deterministic: bool) -> NDArray[np.float64]:
        a_inv, theta = self._solve()
        h = self._profile(obs)  # (B, d)
        if deterministic or self.v == 0.0:
            thetas: NDArray[np.float64] = theta
        else:
            chol = np.linalg.cholesky(a_inv)  # a_inv = chol @ chol.T
            z = self.rng.standard_normal((h.shape[0], self.dim))  # (B, dim)
            thetas = theta + self.v * z @ chol.T  # (B, dim), cov v^2 A^{-1}
        return self._user_vectors(h, thetas) @ self.features.T  # (B, d) @ (d, N) -> (B, N)


# ----------------------------------------------------------------------------------------------
# references that bracket what personalisation is worth
# ----------------------------------------------------------------------------------------------
class HistorySimilarityAgent(BaselineAgent):
    """No learning: items whose text embeddings resemble what this user clicked recently.

    The user's profile is a recency-weighted sum over the observed history ``(item a_t,
    feedback y_t)``, newest first with recency ``r = 0, 1, ...``::

        h_u = sum_t decay**r_t * (y_t * e_{a_t} - skip_weight * (1 - y_t) * e_{a_t})

    with ``e`` the L2-normalised item embeddings (the language-model text embeddings in the
    registry), and the score of item ``i`` is the cosine ``<e_i, h_u> / |h_u|``. A user with an
    empty (or all-zero) profile gets uniformly random items; with probability ``epsilon`` any
    user does (exploration; with ``deterministic=True`` neither happens and an empty profile
    gives item 0; the greedy choice drops epsilon and keeps the uniform draw for an empty
    profile, from a separate generator). Nothing is learned, so it follows each user's shifts
    exactly as fast as their history turns over, and it cannot know item quality (it is not in
    the text).
    In a world where a clicked item is consumed (``ChoiceConfig.no_repeat``, a rule of the
    world, not a user's state) the items clicked in the observed history are ranked last
    (``exclude_clicked``); otherwise the most similar item is usually the one just clicked.
    :meth:`set_item_features` swaps in new embeddings (an in-run refresh of the text encoder).

    Args:
        env: a driftrec env.
        item_features: ``(N, E)`` item embeddings (None: the catalog's topic mixtures).
        decay: recency weight per impression in ``(0, 1]``.
        skip_weight: how strongly a skipped impression repels, ``>= 0``.
        epsilon: exploration probability per user and step.
        exclude_clicked: rank the items clicked in the observed history last; None (the
            default) does so exactly when the world has ``no_repeat``.
        seed: seed of the agent's generator.
    """

    name = "history-similarity"

    def __init__(
        self,
        env: Any,
        item_features: Any = None,
        *,
        decay: float = 0.9,
        skip_weight: float = 0.1,
        epsilon: float = 0.05,
        exclude_clicked: bool | None = None,
        seed: SeedLike = None,
    ) -> None:
        check_float("decay", decay, 0.0, 1.0, low_open=True)
        check_float("skip_weight", skip_weight, 0.0)
        check_float("epsilon", epsilon, 0.0, 1.0)
        if exclude_clicked is not None and not isinstance(exclude_clicked, bool):
            raise TypeError(f"'exclude_clicked' must be a bool or None (got {exclude_clicked!r})")
        super().__init__(env, seed=seed)
        sim = _simulator(env)
        self._catalog_sim = sim  # only its catalog is read (set_item_features)
        self.features: NDArray[np.float64] = np.empty((0, 0))
        self.set_item_features(item_features)
        self.decay = float(decay)
        self.skip_weight = float(skip_weight)
        self.epsilon = float(epsilon)
        no_repeat = bool(sim.config.choice.no_repeat)
        self.exclude_clicked = no_repeat if exclude_clicked is None else exclude_clicked

    def set_item_features(self, item_features: Any) -> None:
        """Use new ``(N, E)`` item embeddings from now on (None: the catalog's topic mixtures);
        e.g. after the text encoder was fine-tuned during a run."""
        feats = _item_features(self._catalog_sim, item_features)
        norms = np.linalg.norm(feats, axis=1, keepdims=True)
        self.features = feats / np.where(norms > 0, norms, 1.0)  # (N, E)

    def profile(self, observation: Any) -> NDArray[np.float64]:
        """``(B, E)`` the users' profiles ``h_u`` (zeros for an empty history)."""
        parts, _ = self._parse(observation)
        return self._profile(parts)

    def _profile(self, obs: SplitObservation) -> NDArray[np.float64]:
        valid = obs.mask.astype(np.float64)  # (B, H)
        recency = np.flip(np.cumsum(np.flip(valid, axis=1), axis=1), axis=1) - valid  # (B, H)
        fb = np.clip(obs.feedback.astype(np.float64), 0.0, 1.0)  # (B, H)
        w = valid * self.decay**recency * (fb - self.skip_weight * (1.0 - fb))  # (B, H)
        return np.einsum("bh,bhe->be", w, self.features[obs.item_ids])  # (B, E)

    def _scores(self, obs: SplitObservation, deterministic: bool) -> NDArray[np.float64]:
        h = self._profile(obs)  # (B, E)
        norm = np.linalg.norm(h, axis=1)  # (B,)
        scores = self.features @ (h / np.where(norm > 0, norm, 1.0)[:, None]).T  # (N, B)
        scores = np.ascontiguousarray(scores.T)  # (B, N)
        empty = norm <= 1e-12
        if empty.any() and not deterministic:  # deterministic: all-zero rows, ties by index
            scores[empty] = self.rng.random((int(empty.sum()), self.num_items))
        if self.epsilon > 0 and not deterministic:
            scores = _explore_rows(self.rng, scores, self.epsilon)
        if self.exclude_clicked:  # below every cosine and every random key
            rows, cols = np.nonzero(obs.mask & (obs.feedback > 0))
            scores[rows, obs.item_ids[rows, cols].astype(np.int64)] = -2.0
        return scores

    def _greedy_scores(self, obs: SplitObservation) -> NDArray[np.float64]:
        """No epsilon; an empty history keeps its rule (a uniform draw), from the greedy
        choice's own generator."""
        scores = self._scores(obs, deterministic=True)  # (B, N)
        empty = np.linalg.norm(self._profile(obs), axis=1) <= 1e-12  # (B,) as in _scores
        if empty.any():
            scores[empty] = self._greedy_generator().random((int(empty.sum()), self.num_items))
        return scores


class PopulationBestAgent(BaselineAgent):
    """PRIVILEGED: the one item (slate) best on average over the current users, for everyone.

    At every step it reads the true expected reward of every item for every user now
    (:meth:`~driftrec.envs.core.BatchSimulator.item_rewards`), averages over the users and
    recommends the argmax to all of them (for slates: the ``k`` items with the highest average
    single-item reward, in that order). It is the best policy that ignores who the user is, so
    a recommender that does not beat it has not personalised; its personalisation gain is 0.

    Args:
        env: the driftrec env it will act in (it must be the env that is stepped).
        seed: unused (deterministic); accepted for a uniform signature.
    """

    name = "population-best"
    privileged = True
    _break_ties = False  # exact ties go to the lowest index, so everyone gets the same item

    def __init__(self, env: Any, *, seed: SeedLike = None) -> None:
        super().__init__(env, seed=seed)
        self.sim = _simulator(env)

    def _scores(self, obs: SplitObservation, deterministic: bool) -> NDArray[np.float64]:
        b = obs.clock.shape[0]
        if b != self.sim.num_users:
            raise ValueError(
                f"PopulationBestAgent acts for the {self.sim.num_users} users of its env, but "
                f"the observation holds {b}; build it with the env you step"
            )
        mean = self.sim.item_rewards().mean(axis=0)  # (N,) average over the current users
        return np.broadcast_to(mean, (b, self.num_items))  # (B, N) the same for everyone


# ----------------------------------------------------------------------------------------------
# factory
# ----------------------------------------------------------------------------------------------
def make_baseline(
    name: str,
    env: Any,
    item_features: Any = None,
    seed: SeedLike = None,
    **kwargs: Any,
) -> BaselineAgent:
    """Build a baseline by name.

    ============================  =========================================================
    name                          agent
    ============================  =========================================================
    ``"random"``                  :class:`RandomAgent`
    ``"popularity"``              :class:`PopularityAgent`
    ``"oracle"``                  :class:`OracleAgent` (privileged; ``seed`` unused)
    ``"planner"``                 :class:`~driftrec.agents.planner.RolloutPlanner` (privileged)
    ``"planner-first-order"``     :class:`~driftrec.agents.planner.PlannerAgent` (privileged)
    ``"static-tilt"``             :class:`~driftrec.agents.planner.StaticTiltAgent` (privileged)
    ``"epsilon-greedy"``          :class:`EpsilonGreedyAgent`
    ``"linucb"``                  :class:`LinUCBAgent`
    ``"linucb-discounted"``       :class:`LinUCBAgent` with ``discount=0.99`` by default
    ``"linucb-window"``           :class:`LinUCBAgent` with ``window=5000`` by default
    ``"thompson"``                :class:`LinearThompsonAgent`
    ``"history-similarity"``      :class:`HistorySimilarityAgent` (no learning)
    ``"population-best"``         :class:`PopulationBestAgent` (privileged; ``seed`` unused)
    ============================  =========================================================

    Args:
        name: one of :data:`BASELINE_NAMES`.
        env: the driftrec env the agent will act in.
        item_features: ``(N, E)`` features for the linear agents (ignored by the others, so one
            call works for every name); None means the catalog's topic mixtures.
        seed: seed of the agent's generator.
        **kwargs: constructor arguments (``decay=0.99``, ``alpha=0.5``, ...).

    Raises:
        ValueError: for an unknown name.
    """
    if name == "random":
        return RandomAgent(env, seed=seed, **kwargs)
    if name == "popularity":
        return PopularityAgent(env, seed=seed, **kwargs)
    if name == "oracle":
        return OracleAgent(env, seed=seed, **kwargs)
    if name in ("planner", "planner-first-order", "static-tilt"):
        from driftrec.agents import planner

        cls = {
            "planner": planner.RolloutPlanner,
            "planner-first-order": planner.PlannerAgent,
            "static-tilt": planner.StaticTiltAgent,
        }[name]
        return cls(env, seed=seed, **kwargs)
    if name == "epsilon-greedy":
        return EpsilonGreedyAgent(env, seed=seed, **kwargs)
    if name == "linucb":
        return LinUCBAgent(env, item_features, seed=seed, **kwargs)
    if name == "linucb-discounted":
        kwargs.setdefault("discount", DEFAULT_DISCOUNT)
        return LinUCBAgent(env, item_features, seed=seed, **kwargs)
    if name == "linucb-window":
        kwargs.setdefault("window", DEFAULT_WINDOW)
        return LinUCBAgent(env, item_features, seed=seed, **kwargs)
    if name == "thompson":
        return LinearThompsonAgent(env, item_features, seed=seed, **kwargs)
    if name == "history-similarity":
        return HistorySimilarityAgent(env, item_features, seed=seed, **kwargs)
    if name == "population-best":
        return PopulationBestAgent(env, seed=seed, **kwargs)
    raise ValueError(f"'name' must be one of {list(BASELINE_NAMES)} (got {name!r})")
