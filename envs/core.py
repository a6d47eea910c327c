"""The batched simulator core: every user of a batch is stepped with array operations.

:class:`BatchSimulator` owns the state of ``B`` user slots and steps them together. The Gymnasium
single env is this core with ``B = 1``; the Gymnasium vector env and the stable-baselines3
``VecEnv`` step it directly, so the three cannot disagree. There is no Python loop over users in
the step path (the only per-user loop is the amortised buffer refill in ``envs/rng.py``).

One step, for every user at once:

1. the recommended item(s) are scored (:mod:`driftrec.envs.choice`) against the user's current
   interests and boredom; the user clicks at most one item (one uniform from its own stream);
2. the reward is the click (or click x watch time = the item's quality); patience is spent and
   regained (``UserConfig``); the user leaves when it runs out (``terminated``);
3. the drift processes run in their configured order (:mod:`driftrec.envs.drift`), interests are
   clipped, and the global clock advances; a session that reaches ``max_steps`` is ``truncated``;
4. the shown items and their feedback enter the history that the observation shows.

``info`` quantities (click probability, expected reward, the oracle) refer to the state the
user was in when the recommendation was made, i.e. before step 3.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from driftrec.envs.catalog import Catalog, build_catalog
from driftrec.envs.choice import (
    attraction,
    first_occurrence,
    sample_choice,
    slate_click_probs,
)
from driftrec.envs.config import CatalogConfig, EnvConfig
from driftrec.envs.drift import (
    AbruptShift,
    Boredom,
    DriftContext,
    DriftEvent,
    PopulationDrift,
    PopulationTrend,
    Satisfaction,
    World,
)
from driftrec.envs.observation import ObservationLayout, encode_clock
from driftrec.envs.population import load_population
from driftrec.envs.rng import SeedLike, UserStreams

__all__ = ["BatchSimulator", "SimState", "StepResult", "Oracle", "cached_catalog"]

_ORACLE_CHUNK = 1 << 22  # score at most this many (user, item) pairs at a time
_ONE_BLAS_THREAD_ABOVE = 1 << 14  # (user, item) pairs from which the oracle pins BLAS to 1 thread


@functools.lru_cache(maxsize=1)
def _blas_libraries() -> tuple[Any, ...]:
    from threadpoolctl import ThreadpoolController

    return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """BLAS on one thread inside the block (the libraries' own calls: a few microseconds, where
    ``threadpoolctl``'s ``limit`` re-reads every library's state each time)."""
    libraries = _blas_libraries()
    before = [lib.num_threads for lib in libraries]
    for lib, n in zip(libraries, before, strict=True):
        if n != 1:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(libraries, before, strict=True):
            if n != 1:
                lib.set_num_threads(n)


def _oracle_blas_limit(pairs: int) -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread for the oracle's products from 16,384 (user, item) pairs.

    On small shared machines OpenBLAS's second thread stalls whenever the other core is busy:
    measured on 2 vCPUs with the oracle, B = 4,096 x N = 1,000 ran at 110-150k user-steps/s with
    the default threads and 245k with one, and B = 64 x N = 1,000 (which OpenBLAS already
    splits over two threads) took 4-15 ms a step against 0.3-0.4 with one (load average 3).
    Smaller products (which BLAS runs on one thread anyway) skip the switch.
    """
    if pairs < _ONE_BLAS_THREAD_ABOVE:
        return contextlib.nullcontext()
    return _one_blas_thread()


@functools.lru_cache(maxsize=8)
def _catalog_for(catalog_config: CatalogConfig, catalog_path: str | None) -> Catalog:
    return build_catalog(EnvConfig(catalog=catalog_config, catalog_path=catalog_path))


def cached_catalog(config: EnvConfig) -> Catalog:
    """The catalog of ``config``, built once per process (catalogs are immutable)."""
    return _catalog_for(config.catalog, config.catalog_path)


@dataclass
class SimState:
    """Mutable state of ``B`` user slots (arrays with a leading ``B`` axis)."""

    interest: NDArray[np.float64]  # (B, K) true interests, never observed
    anchor: NDArray[np.float64]  # (B, K) what Ornstein-Uhlenbeck drift reverts to
    boredom: NDArray[np.float64]  # (B, K)
    patience: NDArray[np.float64]  # (B,)
    satisfaction: NDArray[np.float64]  # (B,) long-term satisfaction (Satisfaction process)
    t: NDArray[np.int64]  # (B,) steps into the current session
    obs: NDArray[np.float32]  # (B, 3H + 2) the flat observation (see observation.py)
    clock: int = 0  # global steps since the world was seeded
    # (B, ceil(N / 8)) bit i of a row: the slot's user clicked item i this session (no_repeat)
    consumed: NDArray[np.uint8] | None = None


class Oracle(NamedTuple):
    """The best one-step recommendation per user under the true click model."""

    action: NDArray[np.int64]  # (B,) item, or (B, k) slate
    expected_reward: NDArray[np.float64]  # (B,)


class StepResult(NamedTuple):
    """What one batched step produced (arrays with a leading ``B`` axis)."""

    reward: NDArray[np.float64]
    terminated: NDArray[np.bool_]
    truncated: NDArray[np.bool_]
    clicked_item: NDArray[np.int64]  # -1 where nothing was clicked
    click_prob: NDArray[np.float64]  # probability that the shown action got a click
    expected_reward: NDArray[np.float64]  # expected reward of the shown action
    interest: NDArray[np.float64]  # (B, K) interests the action faced
    drift_events: NDArray[np.int32]  # DriftEvent bits
    oracle: Oracle | None  # None unless requested


def _saturate(before: NDArray[np.float64], after: NDArray[np.float64], clip: float) -> None:
    """Scale the outward part of ``after - before`` by ``max(0, 1 - (before / clip)^4)``, in place.

    A change that moves an entry away from 0 slows down as the entry nears the bound, so a
    feedback loop (a greedy recommender under consumption drift) approaches ``clip`` smoothly
    instead of pinning every user at it; moves toward 0 are not damped. The hard clip remains
    a guard for single steps larger than the remaining room.
    """
    delta = after - before
    room = before * (1.0 / clip)
    np.square(room, out=room)
    np.square(room, out=room)  # (before / clip)^4 by two squares: np.power is ~10x slower
    np.subtract(1.0, room, out=room)
    np.maximum(room, 0.0, out=room)  # 0.996 at clip/4, 0.68 at 3 clip/4
    outward = delta * before > 0.0
    np.multiply(delta, room, out=room, where=outward)
    np.copyto(room, delta, where=~outward)
    np.add(before, room, out=after)


def _unpack(bits: NDArray[np.uint8], num_items: int) -> NDArray[np.bool_]:
    """``(U, ceil(N / 8))`` consumed bits -> ``(U, N)`` booleans (item ``i``: bit ``i % 8`` of
    byte ``i // 8``)."""
    return np.unpackbits(bits, axis=1, count=num_items, bitorder="little").view(bool)


def _bit(items: NDArray[np.int64]) -> NDArray[np.uint8]:
    """The mask of each item's bit within its byte."""
    return np.left_shift(1, items & 7).astype(np.uint8)


def _is_set(
    bits: NDArray[np.uint8], rows: NDArray[np.int64], items: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """Whether the consumed bit of ``items`` is set in row ``rows`` (broadcast together)."""
    return (bits[rows, items >> 3] & _bit(items)) != 0


class BatchSimulator:
    """Steps ``num_users`` user slots of one simulated world.

    Args:
        config: the world.
        num_users: number of slots ``B``.
        catalog: a prebuilt catalog (defaults to :func:`~driftrec.envs.catalog.build_catalog`).
    """

    def __init__(self, config: EnvConfig, num_users: int, catalog: Catalog | None = None) -> None:
        if isinstance(num_users, bool) or not isinstance(num_users, int) or num_users < 1:
            raise ValueError(f"'num_users' must be an integer >= 1 (got {num_users!r})")
        self.config = config
        self.num_users = num_users
        self.catalog = catalog if catalog is not None else cached_catalog(config)
        cat = self.catalog
        self.num_items = cat.num_items
        self.num_topics = cat.num_topics
        self.slate_size = config.choice.slate_size
        self.layout = ObservationLayout(config.session.history_len, self.num_items)

        self._topics = np.ascontiguousarray(cat.topics, dtype=np.float64)  # (N, K)
        self._quality = np.asarray(cat.quality, dtype=np.float64)  # (N,)
        self._item_bias = config.choice.quality_weight * (self._quality - 0.5)  # (N,)
        self._release = np.asarray(cat.release_step, dtype=np.int64)  # (N,)
        self._no_repeat = config.choice.no_repeat
        self._stale = config.choice.staleness_weight > 0
        self._bias_at: tuple[int, NDArray[np.float64]] = (-1, self._item_bias)
        # (rows, items) whose consumed bit the last step set (slate_rewards before_last_step)
        self._last_consumed: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None
        self._release_steps = frozenset(np.unique(self._release[self._release > 0]).tolist())
        self._all_released_at = int(self._release.max())

        drift = config.drift
        shift = drift.get(AbruptShift)
        self.world = World(
            num_topics=self.num_topics,
            population_scale=config.users.population_scale,
            seed=drift.seed,
            shift_steps=shift.at_steps if shift is not None else (),
            trend=drift.get(PopulationTrend),
            walk_sigma=walk.sigma if (walk := drift.get(PopulationDrift)) is not None else 0.0,
        )
        self._satisfaction: Satisfaction | None = drift.get(Satisfaction)
        self.population = (
            load_population(config.population_path).bootstrap(drift.seed)
            if config.population_path
            else None
        )
        if self.population is not None and self.population.num_topics != self.num_topics:
            raise ValueError(
                f"'population_path' has {self.population.num_topics} topics but the catalog has "
                f"{self.num_topics} (got {config.population_path!r})"
            )
        self.streams: UserStreams | None = None
        self.state: SimState | None = None
        self._rows = np.arange(num_users)
        self._oracle_buf: NDArray[np.float64] | None = None
        # (user vectors, clock, satisfaction offset or None) of the last step's recommendation
        self._last_step: tuple[NDArray[np.float64], int, NDArray[np.float64] | None] | None = None
        self._has_boredom = drift.get(Boredom) is not None
        self._ones_b1 = np.ones((num_users, 1), dtype=bool)
        self._slots = np.arange(self.slate_size)  # (k,)

    # ------------------------------------------------------------------ seeding and resets
    def seed(self, seeds: Sequence[SeedLike]) -> None:
        """Start the world over: clock 0, every slot's stream from ``seeds``, fresh users."""
        if len(seeds) != self.num_users:
            raise ValueError(
                f"expected {self.num_users} seeds, one per user slot (got {len(seeds)})"
            )
        b, k = self.num_users, self.num_topics
        self.streams = UserStreams(seeds, normal_chunk=max(512, 32 * k))
        self.state = SimState(
            interest=np.zeros((b, k)),
            anchor=np.zeros((b, k)),
            boredom=np.zeros((b, k)),
            patience=np.zeros(b),
            satisfaction=np.zeros(b),
            t=np.zeros(b, dtype=np.int64),
            obs=np.zeros((b, self.layout.size), dtype=np.float32),
            clock=0,
            consumed=np.zeros((b, -(-self.num_items // 8)), dtype=np.uint8)
            if self._no_repeat
            else None,
        )
        self._last_step = None
        self._last_consumed = None
        self.reset_users(np.arange(b))

    def reseed_slots(self, idx: Sequence[int], seeds: Sequence[SeedLike]) -> None:
        """Restart the streams of some slots (the clock keeps running) and draw fresh users."""
        streams, _ = self._require()
        streams.reseed(idx, seeds)
        self.reset_users(np.asarray(idx, dtype=np.int64))

    def reset_users(self, idx: NDArray[np.int64]) -> None:
        """Replace the users in slots ``idx`` by new users drawn from the current population."""
        streams, s = self._require()
        if idx.size == 0:
            return
        users = self.config.users
        if self.population is None:
            mean = self.world.population_mean(s.clock)  # (K,)
        else:  # an empirical population: resample a fitted user (see envs/population.py)
            mean = self.population.draw(streams.uniform(1, idx)[:, 0], s.clock)  # (len(idx), K)
        eps = streams.normal(self.num_topics, idx)  # (len(idx), K)
        theta = mean + users.interest_spread * eps
        np.clip(theta, -users.interest_clip, users.interest_clip, out=theta)
        s.interest[idx] = theta
        s.anchor[idx] = theta
        s.boredom[idx] = 0.0
        s.patience[idx] = users.patience
        s.satisfaction[idx] = 0.0
        s.t[idx] = 0
        if s.consumed is not None:
            s.consumed[idx] = 0
        s.obs[idx] = 0.0
        s.obs[idx, self.layout.clock] = encode_clock(s.clock)

    def _require(self) -> tuple[UserStreams, SimState]:
        if self.streams is None or self.state is None:
            raise RuntimeError(
                "the simulator has not been seeded: call seed(...) (or env.reset) first"
            )
        return self.streams, self.state

    # ------------------------------------------------------------------ queries
    def released(self, clock: int | None = None) -> NDArray[np.bool_]:
        """``(N,)`` True for items that can be recommended at ``clock`` (default: now)."""
        if clock is None:
            clock = self._require()[1].clock
        return self._release <= clock

    def observation(self) -> NDArray[np.float32]:
        """A copy of the current ``(B, 3H + 2)`` flat observation."""
        return self._require()[1].obs.copy()

    def item_bias(self, clock: int | None = None) -> NDArray[np.float64]:
        """``(N,)`` the part of every item's attraction that is the same for all users, at
        ``clock`` (default: now): ``quality_weight * (q - 0.5)``, minus the staleness of the
        item's age when ``staleness_weight > 0`` (computed once per clock)."""
        if not self._stale:
            return self._item_bias
        if clock is None:
            clock = self._require()[1].clock
        cached, bias = self._bias_at
        if cached != clock:
            ch = self.config.choice
            age = np.maximum(clock - self._release, 0)  # unreleased items are masked anyway
            stale = 1.0 - np.exp2(age * (-1.0 / ch.staleness_halflife))  # (N,) in [0, 1)
            bias = self._item_bias - ch.staleness_weight * stale
            self._bias_at = (clock, bias)
        return bias

    def consumed(self, users: NDArray[np.int64] | None = None) -> NDArray[np.bool_] | None:
        """PRIVILEGED: ``(U, N)`` True where the user in the slot clicked the item during this
        session (``no_repeat`` worlds; ``None`` in the others). ``users``: the slots (all)."""
        s = self._require()[1]
        if s.consumed is None:
            return None
        bits = s.consumed if users is None else s.consumed[np.asarray(users, dtype=np.int64)]
        return _unpack(bits, self.num_items)

    def _user_vectors(self, s: SimState) -> NDArray[np.float64]:
        ch = self.config.choice
        uv = ch.interest_weight * s.interest  # (B, K)
        if ch.boredom_weight and self._has_boredom:  # boredom stays 0 without the process
            uv = uv - ch.boredom_weight * s.boredom
        return uv

    def attraction_all(self) -> NDArray[np.float64]:
        """``(B, N)`` attraction of every item to every user now, under the true model
        (privileged; unreleased items get ``-inf``)."""
        s = self._require()[1]
        scores = self._user_vectors(s) @ self._topics.T + self.item_bias(s.clock)  # (B, N)
        offset = self._offset(s)
        if offset is not None:
            scores += offset
        if s.clock < self._all_released_at:
            scores[:, ~self.released(s.clock)] = -np.inf
        if s.consumed is not None:
            scores[_unpack(s.consumed, self.num_items)] = -np.inf
        return scores

    def attraction_of(self, items: NDArray[np.int64], shared: int = 1) -> NDArray[np.float64]:
        """PRIVILEGED: ``(B, L)`` attraction of each user's own list of items, now.

        Args:
            items: ``(B / shared, L)``: row ``r`` lists the items to score for users
                ``r * shared`` to ``(r + 1) * shared - 1`` (consecutive users share a list).
            shared: how many consecutive users share each row of ``items``.

        Returns:
            ``(B, L)``, equal to the matching entries of :meth:`attraction_all` (unreleased
            and consumed items get ``-inf``) at a cost of ``B L K`` instead of ``B N K``.
        """
        s = self._require()[1]
        items = np.asarray(items, dtype=np.int64)
        rows, width = items.shape
        if rows * shared != self.num_users:
            raise ValueError(
                f"'items' must have {self.num_users} / {shared} rows (got shape {items.shape})"
            )
        uv = self._user_vectors(s).reshape(rows, shared, -1)  # (rows, shared, K)
        topics = self._topics[items]  # (rows, L, K)
        # (rows, shared, K) @ (rows, K, L) -> (rows, shared, L)
        bias = self.item_bias(s.clock)[items]  # (rows, L) staleness included
        scores = np.matmul(uv, topics.transpose(0, 2, 1)) + bias[:, None, :]
        scores = scores.reshape(self.num_users, width)
        offset = self._offset(s)
        if offset is not None:
            scores += offset
        if s.clock < self._all_released_at:
            late = np.repeat(self._release[items] > s.clock, shared, axis=0)  # (B, L)
            scores[late] = -np.inf
        if s.consumed is not None:  # what each user already clicked cannot be clicked again
            per_user = np.repeat(items, shared, axis=0)  # (B, L)
            scores[_is_set(s.consumed, self._rows[:, None], per_user)] = -np.inf
        return scores

    def item_rewards(self) -> NDArray[np.float64]:
        """PRIVILEGED: ``(B, N)`` expected one-step reward of showing each item alone, now.

        ``sigmoid(s - s0)`` (times the quality under the engagement reward) for every user and
        item; unreleased items are worth 0. Position bias does not enter (position 0).
        """
        s = self._require()[1]
        ch = self.config.choice
        with _oracle_blas_limit(self.num_users * self.num_items):
            scores = self._user_vectors(s) @ self._topics.T + self.item_bias(s.clock)  # (B, N)
        offset = self._offset(s)
        if offset is not None:
            scores += offset
        p = 1.0 / (1.0 + np.exp(ch.no_click_score - scores))  # (B, N)
        if self.config.reward.kind == "engagement":
            p *= self._quality
        if s.clock < self._all_released_at:
            p[:, ~self.released(s.clock)] = 0.0
        if s.consumed is not None:
            p[_unpack(s.consumed, self.num_items)] = 0.0
        return p

    def slate_rewards(
        self,
        slates: NDArray[np.int64],
        *,
        users: NDArray[np.int64] | None = None,
        before_last_step: bool = False,
    ) -> NDArray[np.float64]:
        """PRIVILEGED: expected one-step reward for every user of every one of ``M`` slates.

        Args:
            slates: ``(M,)`` single items or ``(M, k)`` slates (any ``k``), the same candidates
                for every user.
            users: the slots to evaluate (default: all ``B``).
            before_last_step: evaluate the users as they were when the last :meth:`step` made
                its recommendation (before that step's drift), instead of now.

        Returns:
            ``(U, M)``: entry ``[u, m]`` is what user ``u`` earns in expectation from candidate
            ``m``, by the step's own click model (position bias, repeats and unreleased items
            count as in :meth:`step`).
        """
        s = self._require()[1]
        if before_last_step:
            if self._last_step is None:
                raise RuntimeError("'before_last_step' needs a step since the last seed(...)")
            uv, clock, offset = self._last_step
        else:
            uv, clock, offset = self._user_vectors(s), s.clock, self._offset(s)
        rows = self._rows if users is None else np.asarray(users, dtype=np.int64)
        if users is not None:
            uv = uv[rows]
            if offset is not None:
                offset = offset[rows]
        cand = np.asarray(slates, dtype=np.int64)
        if cand.ndim == 1:
            cand = cand[:, None]  # (M, 1)
        if cand.ndim != 2 or cand.size == 0:
            raise ValueError(f"'slates' must have shape (M,) or (M, k) (got {cand.shape})")
        if cand.min() < 0 or cand.max() >= self.num_items:
            raise ValueError(f"'slates' must hold item ids in [0, {self.num_items - 1}]")
        u, (m, k) = uv.shape[0], cand.shape
        flat = np.broadcast_to(cand, (u, m, k)).reshape(u * m, k)  # (U*M, k) user-major
        scores = attraction(
            np.repeat(uv, m, axis=0), self._topics[flat], self.item_bias(clock)[flat]
        )  # (U*M, k)
        if offset is not None:  # satisfaction raises every item of a user's slates alike
            scores += np.repeat(offset, m, axis=0)
        valid = first_occurrence(flat) & (self._release[flat] <= clock)  # (U*M, k)
        if s.consumed is not None:
            bits = s.consumed[rows]  # (U, ceil(N / 8)) a copy
            if before_last_step and self._last_consumed is not None:
                # the users as they were: without the bits the last step set (a slot whose user
                # left since then holds its new user's, empty, bits)
                where = np.full(self.num_users, -1, dtype=np.int64)
                where[rows] = np.arange(rows.size)
                set_rows, set_items = self._last_consumed
                keep = where[set_rows] >= 0
                bits[where[set_rows[keep]], set_items[keep] >> 3] &= ~_bit(set_items[keep])
            valid &= ~_is_set(bits, np.repeat(np.arange(u), m)[:, None], flat)
        probs = slate_click_probs(scores, valid, self.config.choice)  # (U*M, k + 1)
        return self._expected_reward(probs, flat).reshape(u, m)

    def oracle(self) -> Oracle:
        """The best one-step action per user under the true model (privileged)."""
        s = self._require()[1]
        return self._oracle(self._user_vectors(s), s.clock, self._offset(s), s.consumed)

    def _offset(self, s: SimState) -> NDArray[np.float64] | None:
        """``(B, 1)`` attraction every item gains from the user's satisfaction, or None."""
        if self._satisfaction is None:
            return None
        return (self._satisfaction.weight * s.satisfaction)[:, None]

    def _oracle(
        self,
        uv: NDArray[np.float64],
        clock: int,
        offset: NDArray[np.float64] | None = None,
        consumed: NDArray[np.uint8] | None = None,
    ) -> Oracle:
        unreleased = None if clock >= self._all_released_at else ~self.released(clock)
        with _oracle_blas_limit(uv.shape[0] * self.num_items):
            return self._oracle_ranked(uv, unreleased, offset, consumed, self.item_bias(clock))

    def _oracle_ranked(
        self,
        uv: NDArray[np.float64],
        unreleased: NDArray[np.bool_] | None,
        offset: NDArray[np.float64] | None = None,
        consumed: NDArray[np.uint8] | None = None,
        bias: NDArray[np.float64] | None = None,
    ) -> Oracle:
        bias = self._item_bias if bias is None else bias
        ch = self.config.choice
        engagement = self.config.reward.kind == "engagement"
        b, k, n = uv.shape[0], self.slate_size, self.num_items
        actions = np.empty((b, k), dtype=np.int64)
        values = np.empty(b, dtype=np.float64)
        rows = max(1, _ORACLE_CHUNK // n)
        if self._oracle_buf is None or self._oracle_buf.shape[0] < min(rows, b):
            # one reused block: fresh 30 MB temporaries every step cost page faults, not flops
            self._oracle_buf = np.empty((min(rows, b), n))
        for lo in range(0, b, rows):
            hi = min(b, lo + rows)
            # (chunk, K) @ (K, N) -> (chunk, N) attraction of every item, in float64 for ranking
            scores = self._oracle_buf[: hi - lo]
            np.matmul(uv[lo:hi], self._topics.T, out=scores)
            scores += bias
            if unreleased is not None:
                scores[:, unreleased] = -np.inf
            if consumed is not None:  # what each user already clicked is worth nothing
                scores[_unpack(consumed[lo:hi], n)] = -np.inf
            if offset is not None:  # a per-user constant: it changes values, and for engagement
                scores += offset[lo:hi]  # the ranking too, but not the click ranking
            if engagement:
                # expected reward of showing i alone: sigmoid(s - s0) * q
                rank = self._quality / (1.0 + np.exp(ch.no_click_score - scores))
            else:
                rank = scores
            if k == 1:
                top = rank.argmax(axis=1)[:, None]  # (chunk, 1)
            else:
                part = np.argpartition(rank, n - k, axis=1)[:, n - k :]  # (chunk, k) unordered
                order = np.argsort(-np.take_along_axis(rank, part, axis=1), axis=1, kind="stable")
                top = np.take_along_axis(part, order, axis=1)  # (chunk, k) best first
            actions[lo:hi] = top
            # the value is recomputed with the step's own per-row arithmetic, so it does not
            # depend on how BLAS blocked the product above (i.e. on the batch size)
            top_scores = attraction(uv[lo:hi], self._topics[top], bias[top])
            if offset is not None:
                top_scores += offset[lo:hi]
            valid = np.isfinite(np.take_along_axis(scores, top, axis=1))
            probs = slate_click_probs(top_scores, valid, ch)
            values[lo:hi] = self._expected_reward(probs, top)
        return Oracle(actions[:, 0] if k == 1 else actions, values)

    def _expected_reward(
        self, probs: NDArray[np.float64], slate: NDArray[np.int64]
    ) -> NDArray[np.float64]:
        k = slate.shape[1]
        if self.config.reward.kind == "engagement":
            return (probs[:, :k] * self._quality[slate]).sum(axis=1)
        return 1.0 - probs[:, k]

    # ------------------------------------------------------------------ the step
    def step(
        self, action: NDArray[np.int64], with_oracle: bool = False, *, validate: bool = True
    ) -> StepResult:
        """Advance every slot by one step.

        Args:
            action: ``(B,)`` item ids (single-item) or ``(B, k)`` slates, ints in ``[0, N)``.
            with_oracle: also compute the oracle for the pre-step state (privileged info).
            validate: check the action's shape, type and range (adapters that have already
                checked it pass False).
        """
        streams, s = self._require()
        cfg = self.config
        b, k = self.num_users, self.slate_size
        action = np.asarray(action)
        if validate:
            if action.size != b * k or not np.issubdtype(action.dtype, np.integer):
                want = f"({b},)" if k == 1 else f"({b}, {k})"
                raise ValueError(
                    f"action must be integers of shape {want} for {b} users and slate size {k} "
                    f"(got dtype {action.dtype} and shape {action.shape})"
                )
            if action.size and (action.min() < 0 or action.max() >= self.num_items):
                bad = action[(action < 0) | (action >= self.num_items)].flat[0]
                raise ValueError(f"action items must be in [0, {self.num_items}) (got {int(bad)})")
        slate = action.astype(np.int64, copy=False).reshape(b, k)

        # 1. choice ------------------------------------------------------------------------
        uv = self._user_vectors(s)  # (B, K)
        offset = self._offset(s)  # (B, 1) satisfaction term, or None
        # what slate_rewards(before_last_step=True) reads (the offset is a fresh array)
        self._last_step = (uv, s.clock, offset)
        shown_topics = self._topics[slate]  # (B, k, K)
        scores = attraction(uv, shown_topics, self.item_bias(s.clock)[slate])  # (B, k)
        if offset is not None:
            scores += offset
        valid = first_occurrence(slate) if k > 1 else self._ones_b1.copy()
        if s.clock < self._all_released_at:
            valid &= self._release[slate] <= s.clock
        if s.consumed is not None:  # a consumed item cannot be clicked again
            valid &= ~_is_set(s.consumed, self._rows[:, None], slate)
        probs = slate_click_probs(scores, valid, cfg.choice)  # (B, k + 1)
        choice = sample_choice(probs, streams.uniform(1)[:, 0])  # (B,), k = no click
        clicked = choice < k
        pos = np.minimum(choice, k - 1)
        rows = self._rows
        picked = slate[rows, pos]  # (B,) the clicked item where there was a click
        clicked_item = np.where(clicked, picked, -1)

        # 2. reward and patience --------------------------------------------------------------
        clicked_quality = np.where(clicked, self._quality[picked], 0.0)
        reward = (
            clicked_quality.copy()
            if cfg.reward.kind == "engagement"
            else clicked.astype(np.float64)
        )
        expected = self._expected_reward(probs, slate)
        click_prob = 1.0 - probs[:, k]
        interest_seen = s.interest.copy()
        oracle = self._oracle(uv, s.clock, offset, s.consumed) if with_oracle else None
        if s.consumed is not None:  # after the oracle: it ranks what the user faced
            hit = np.flatnonzero(clicked)
            s.consumed[hit, picked[hit] >> 3] |= _bit(picked[hit])
            self._last_consumed = (hit, picked[hit])
        users = cfg.users
        s.patience += users.patience_gain * reward - users.patience_cost
        np.minimum(s.patience, users.max_patience, out=s.patience)
        terminated = s.patience <= 0.0

        # 3. drift, clock, time limit ---------------------------------------------------------
        events = np.zeros(b, dtype=np.int32)
        new_clock = s.clock + 1
        if cfg.drift.processes:
            ctx = DriftContext(
                interest=s.interest,
                anchor=s.anchor,
                boredom=s.boredom,
                clicked=clicked,
                clicked_topics=shown_topics[rows, pos] * clicked[:, None],
                clicked_quality=clicked_quality,
                new_clock=new_clock,
                world=self.world,
                streams=streams,
                interest_spread=users.interest_spread,
                events=events,
                satisfaction=s.satisfaction,
            )
            # incremental interest updates saturate at the clip: the change that a run of
            # incremental processes makes together (up to a process that sets interests, an
            # abrupt jump) is saturated once
            before = None
            for process in cfg.drift.processes:
                if process.saturates:
                    if before is None:
                        before = s.interest.copy()
                elif process.sets_interest and before is not None:
                    _saturate(before, s.interest, users.interest_clip)
                    before = None
                process.apply(ctx)
            if before is not None:
                _saturate(before, s.interest, users.interest_clip)
            np.clip(s.interest, -users.interest_clip, users.interest_clip, out=s.interest)
        if new_clock in self._release_steps:
            events |= int(DriftEvent.NEW_ITEMS)
        s.clock = new_clock
        s.t += 1
        truncated = (s.t >= cfg.session.max_steps) & ~terminated

        # 4. history -> observation -----------------------------------------------------------
        lay = self.layout
        obs = s.obs
        h = lay.history_len
        # ids, feedback and mask are three consecutive blocks of H: shift them as one
        # (B, 3, H) view; numpy buffers the overlapping copy
        hist = obs[:, : 3 * h].reshape(b, 3, h)
        hist[:, :, :-k] = hist[:, :, k:]
        hist[:, 0, -k:] = slate
        # the reward lands on the clicked slot (reward is 0 without a click)
        hist[:, 1, -k:] = (
            reward[:, None]
            if k == 1
            else np.where(self._slots == choice[:, None], reward[:, None], 0.0)
        )
        hist[:, 2, -k:] = 1.0
        obs[:, lay.progress] = s.t / cfg.session.max_steps
        obs[:, lay.clock] = encode_clock(new_clock)
        return StepResult(
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            clicked_item=clicked_item,
            click_prob=click_prob,
            expected_reward=expected,
            interest=interest_seen,
            drift_events=events,
            oracle=oracle,
        )
