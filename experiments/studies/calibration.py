"""Validate a calibrated world against held-out log data.

**The calibration table** (:func:`calibration_table`) asks whether simulated users behave like
the real users they stand for, on users (or periods) the fit never saw. Every statistic is
computed the same way on the real log and on a log of the same shape that the simulator
writes (:func:`driftrec.envs.movielens.simulate_histories`): each simulated user consumes, one
step after another, as many items as the real user did, choosing the next one from the env's
own attraction by a Gumbel-max draw among the items released by then, while the env's
within-user drift moves its interests between steps.

* **Users held out** (``folds``-fold over users): the world is fitted without the fold's users;
  each of them is replaced by a fitted user of about the same activity (drawn among the 25
  fitted users closest in number of interactions: the env's users carry their activity level
  in their interests). On the real log and on the simulated one (every user simulated once):

  (a) *personalisation room*: the top-1 hit rate of PureSVD (rank 32, on the training part)
      divided by that of the most popular unseen item, on a random split (20% of each user's
      items, averaged over ``split_seeds`` splits) and a temporal split (each user's last 20%);
  (c) *item popularity*: the Gini coefficient of items' interaction counts and the share of the
      top 10% of items;
  (d) *per-user drift*: the Jensen-Shannon divergence between the genre mix of the first and
      the second half of each user's history (users with >= 20 items), beside the same for
      random halves (the sampling-noise floor).

* **A period held out** (the last ``1 - train_fraction`` of interactions by time, (b)): the
  world is fitted on the earlier part; users who were seen continue (their fitted interests,
  without what they already consumed), new users are fitted users of about the same activity.
  *Genre share*: the JS divergence of the simulated period's genre share from the real one,
  against "the past repeats" (the training period's own share). No population trend is fitted.

* **The env itself**: the privileged population-best item's expected click rate as a share of
  the per-user oracle's, for users drawn by the env at step 0 (what one item for everyone is
  worth).

Tolerances were fixed before any simulated number was looked at (:data:`TOLERANCES`). The
within-user drift is fitted to a drift profile of the genre mix of the training users'
histories, so (d), measured on other users, is close to a fitted moment; (a), (b) and (c) are
not fitted to.

**The policy order** (:func:`validate`) fits the earliest ``train_fraction`` of a log
(:func:`driftrec.envs.movielens.calibrate`) and compares it with the rest:

* **Distributions.** Genre share and item share (popularity) of the held-out interactions vs
  (a) the simulated users' own choices over the whole released catalog (the multinomial logit
  the fit assumes), (b) the clicks the simulator produces under uniformly random
  recommendations (``env.step``), and three references: the same choice model without user
  interests (quality alone), the training period's shares ("the past repeats") and a uniform
  choice over the catalog (no preferences). Distances are
  Jensen-Shannon divergences in bits (0 = equal, 1 = disjoint).
* **Policy order.** Popularity (training counts), genre match (the items whose genres best
  match what the user consumed, ties by popularity) and random, each recommending slates of 10
  it has not seen the user consume: offline replay on the held-out ratings (precision@10) and
  the simulator's click rate with the same policies (users arrive at the end of the training
  span; slates of 10 at the fitted click level). The question is whether
  the simulator orders the policies as the replay does.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftrec.envs.catalog import Catalog
from driftrec.envs.core import BatchSimulator
from driftrec.envs.drift import GradualDrift
from driftrec.envs.gym_env import DriftRecVectorEnv
from driftrec.envs.movielens import (
    Calibration,
    InteractionLog,
    _genres,
    calibrate,
    calibrated_config,
    js_rows,
    simulate_histories,
    split_log,
)

__all__ = [
    "js_divergence",
    "validate",
    "POLICIES",
    "TOLERANCES",
    "Tolerance",
    "calibration_table",
    "format_table",
    "hit_ratio",
    "gini",
    "top_share",
    "halves_drift",
]

POLICIES = ("popularity", "genre-match", "random")


def js_divergence(p: NDArray[np.float64], q: NDArray[np.float64]) -> float:
    """Jensen-Shannon divergence in bits between two (unnormalised) distributions."""
    p = np.asarray(p, dtype=np.float64)[None, :]
    q = np.asarray(q, dtype=np.float64)[None, :]
    return float(js_rows(p, q)[0])


def _scores(
    policy: str,
    popularity: NDArray[np.float64],
    profile: NDArray[np.float64],
    topics: NDArray[np.float64],
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """(B, N) scores of a policy; ``profile`` (B, K) is the consumed-genre profile."""
    b, n = profile.shape[0], topics.shape[0]
    tie = popularity / (popularity.max() + 1.0)  # (N,) in [0, 1): popularity breaks ties
    if policy == "popularity":
        return np.broadcast_to(tie, (b, n)).copy()
    if policy == "random":
        return rng.random((b, n))
    if policy == "genre-match":
        norm = np.linalg.norm(profile, axis=1, keepdims=True)  # (B, 1)
        unit = np.divide(profile, norm, out=np.zeros_like(profile), where=norm > 0)
        tnorm = topics / np.linalg.norm(topics, axis=1, keepdims=True)  # (N, K)
        return np.round(unit @ tnorm.T, 6) + 1e-3 * tie  # (B, N) cosine, then popularity
    raise ValueError(f"'policy' must be one of {POLICIES} (got {policy!r})")


def _top(scores: NDArray[np.float64], k: int) -> NDArray[np.int64]:
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (B, k) unordered best
    return part.astype(np.int64)


def _replay(
    train: InteractionLog,
    test: InteractionLog,
    topics: NDArray[np.float64],
    popularity: NDArray[np.float64],
    k: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    n_users, n_items = max(train.num_users, test.num_users), train.num_items
    seen = np.zeros((n_users, n_items), dtype=bool)
    seen[train.user, train.item] = True
    held = np.zeros((n_users, n_items), dtype=bool)
    held[test.user, test.item] = True
    held &= ~seen  # re-ratings are not new consumption
    users = np.flatnonzero(held.any(axis=1) & seen.any(axis=1))
    profile = seen[users].astype(np.float64) @ topics  # (U, K)
    out = {}
    for policy in POLICIES:
        scores = _scores(policy, popularity, profile, topics, rng)
        scores[seen[users]] = -np.inf
        top = _top(scores, k)
        out[policy] = float(np.take_along_axis(held[users], top, axis=1).sum(axis=1).mean() / k)
    out["users"] = float(users.size)
    return out


def _sim_users(env: DriftRecVectorEnv, clock: int, seed: int) -> None:
    """Reset ``env`` with ``seed`` and redraw its users as they arrive at global step ``clock``."""
    env.reset(seed=seed)
    sim = env.sim
    sim.state.clock = clock  # type: ignore[union-attr]  # the held-out period starts here
    sim.reset_users(np.arange(sim.num_users))


def _simulate(
    config: Any,
    catalog: Catalog,
    genres: NDArray[np.float64],
    popularity: NDArray[np.float64],
    start: int,
    *,
    num_users: int,
    steps: int,
    seed: int,
) -> tuple[dict[str, float], NDArray[np.float64], NDArray[np.float64]]:
    """Simulator click rates per policy, plus the free-choice and random-click item shares."""
    rng = np.random.default_rng(seed)
    n = catalog.num_items
    # (a) free choice: each simulated user's MNL over the released catalog
    env = DriftRecVectorEnv(num_users, config=config.with_overrides(oracle_info=False))
    _sim_users(env, start, seed)
    sim = env.sim
    uv = sim._user_vectors(sim.state)  # (B, K)  # noqa: SLF001  (privileged, for validation)
    s = uv @ np.asarray(catalog.topics).T + sim._item_bias  # (B, N) attraction  # noqa: SLF001
    s[:, ~sim.released()] = -np.inf
    s -= s.max(axis=1, keepdims=True)
    p = np.exp(s)
    free_share = (p / p.sum(axis=1, keepdims=True)).mean(axis=0)  # (N,)
    # (b) clicks under uniformly random single-item recommendations
    clicks = np.zeros(n)
    released = np.flatnonzero(sim.released())
    for _ in range(steps):
        action = rng.choice(released, size=num_users)
        _, _, _, _, info = env.step(action)
        hit = info["clicked_item"] >= 0
        np.add.at(clicks, info["clicked_item"][hit], 1.0)
    # (c) the three policies on slates of 10
    k = 10
    slate_cfg = config.with_overrides(slate_size=k, history_len=30, oracle_info=False)
    rates = {}
    for policy in POLICIES:
        venv = DriftRecVectorEnv(num_users, config=slate_cfg)
        _sim_users(venv, start, seed)
        lay = venv.sim.layout
        obs = venv.sim.observation()
        total = 0.0
        for _ in range(steps):
            ids = obs[:, lay.item_ids].astype(np.int64)  # (B, H)
            got = (obs[:, lay.feedback] > 0) & (obs[:, lay.mask] > 0)  # (B, H) clicked
            consumed = np.zeros((num_users, n), dtype=bool)
            rows = np.repeat(np.arange(num_users), ids.shape[1])
            consumed[rows[got.ravel()], ids.ravel()[got.ravel()]] = True
            profile = consumed.astype(np.float64) @ genres  # (B, G)
            scores = _scores(policy, popularity, profile, genres, rng)
            if policy == "genre-match":  # nothing consumed yet: fall back to popularity
                empty = ~consumed.any(axis=1)
                scores[empty] = popularity / (popularity.max() + 1.0)
            scores[consumed] = -np.inf
            scores[:, ~venv.sim.released()] = -np.inf
            obs, reward, _, _, _ = venv.step(_top(scores, k))
            total += float(reward.mean())
        rates[policy] = total / steps
    return rates, free_share, clicks


def validate(
    log: InteractionLog,
    *,
    train_fraction: float = 0.8,
    num_users: int = 256,
    steps: int = 200,
    seed: int = 0,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """Fit on the early part of ``log``, compare with the rest (see the module docstring)."""
    train, test = split_log(log, train_fraction)
    cal = calibrate(train)
    config = calibrated_config(train, cache_dir=cache_dir, calibration=cal)
    topics = _genres(train)[1]  # (N, G) the policies and shares use genres, not taste topics
    popularity = np.bincount(train.item, minlength=train.num_items).astype(np.float64)
    test_items = np.bincount(test.item, minlength=test.num_items).astype(np.float64)
    test_genres = test_items @ topics
    rates, free_share, clicks = _simulate(
        config, cal.catalog, topics, popularity, cal.span_steps, num_users=num_users, steps=steps,
        seed=seed,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    replay = _replay(train, test, topics, popularity, 10, rng)
    released = cal.catalog.released(cal.span_steps)
    bias = np.where(released, cal.quality_weight * (cal.catalog.quality - 0.5), -np.inf)
    quality_only = np.exp(bias - bias.max())  # (N,) the same choice model without interests
    sources = {
        "sim_free_choice": free_share,
        "sim_random_clicks": clicks,
        "quality_only": quality_only,
        "train_period": popularity,
        "uniform_catalog": released.astype(np.float64),
    }
    divergence = {
        name: {
            "genre_js": round(js_divergence(share @ topics, test_genres), 4),
            "item_js": round(js_divergence(share, test_items), 4),
        }
        for name, share in sources.items()
    }
    order_sim = sorted(POLICIES, key=lambda p: -rates[p])
    order_replay = sorted(POLICIES, key=lambda p: -replay[p])
    return {
        "train_interactions": int(train.user.size),
        "test_interactions": int(test.user.size),
        "divergence_vs_heldout": divergence,
        "sim_click_rate": {p: round(v, 4) for p, v in rates.items()},
        "replay_precision_at_10": {p: round(replay[p], 4) for p in POLICIES},
        "replay_users": int(replay["users"]),
        "order_sim": order_sim,
        "order_replay": order_replay,
        "same_order": order_sim == order_replay,
        "fit": {k: v for k, v in cal.summary.items() if not k.startswith("genre_share")},
        "sim_clicks": int(clicks.sum()),
        "steps": steps,
        "num_users": num_users,
    }


# --------------------------------------------------------------------------------------------
# the calibration table: real vs simulated statistics on held-out users and periods
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Tolerance:
    """How close a simulated statistic must be to the real one.

    ``kind`` is ``"abs"`` (``|sim - real| <= value``), ``"ratio"`` (``sim / real`` within
    ``[1 / value, value]``), ``"below_reference"`` (``sim < reference``) or ``"at_most"``
    (``sim <= value``, no real counterpart).
    """

    kind: str
    value: float = 0.0

    def holds(self, real: float, sim: float, reference: float | None = None) -> bool:
        """Whether ``sim`` passes against ``real`` (or ``reference``)."""
        if self.kind == "abs":
            return abs(sim - real) <= self.value
        if self.kind == "ratio":
            return real > 0 and 1.0 / self.value <= sim / real <= self.value
        if self.kind == "below_reference":
            return reference is not None and sim < reference
        if self.kind == "at_most":
            return sim <= self.value
        raise ValueError(
            f"'kind' must be abs, ratio, below_reference or at_most (got {self.kind!r})"
        )

    def describe(self) -> str:
        """The rule in words, for the table."""
        if self.kind == "abs":
            return f"|sim - real| <= {self.value:g}"
        if self.kind == "ratio":
            return f"sim / real in [{1 / self.value:.2f}, {self.value:g}]"
        if self.kind == "below_reference":
            return "sim < the past repeats"
        return f"sim <= {self.value:g}"


TOLERANCES: dict[str, Tolerance] = {
    "room_random": Tolerance("abs", 0.30),
    "room_temporal": Tolerance("abs", 0.30),
    "env_population_best_over_oracle": Tolerance("at_most", 0.75),
    "genre_share_js": Tolerance("below_reference"),
    "item_gini": Tolerance("abs", 0.05),
    "item_top10_share": Tolerance("abs", 0.05),
    "user_drift_js": Tolerance("ratio", 1.25),
}
"""Fixed before any simulated number was computed: (a) about 2-3 standard errors of the real
ratios (about 940 users); (c) 0.05 on both popularity summaries; (d) within 25% either way;
(b) below "the past repeats"; and the issue's bound on population-best / oracle."""

STATISTICS = {
    "room_random": "(a) PureSVD-32 / most-popular top-1 hit rate, random 20% split",
    "room_temporal": "(a) PureSVD-32 / most-popular top-1 hit rate, each user's last 20%",
    "env_population_best_over_oracle": "(a) env: population-best / per-user oracle reward",
    "genre_share_js": "(b) genre share of the last 20% of the log: JS (bits) to the real",
    "item_gini": "(c) Gini of item interaction counts",
    "item_top10_share": "(c) share of interactions on the top 10% of items",
    "user_drift_js": "(d) per-user JS (bits), first vs second half of the history",
}


def gini(counts: NDArray[np.float64]) -> float:
    """Gini coefficient of non-negative counts (0 = equal, -> 1 = one item takes all)."""
    c = np.sort(np.asarray(counts, dtype=np.float64))
    n = c.size
    cum = np.cumsum(c)
    return float((n + 1 - 2 * (cum / cum[-1]).sum()) / n)


def top_share(counts: NDArray[np.float64], fraction: float = 0.1) -> float:
    """Share of the total held by the top ``fraction`` of entries."""
    c = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    return float(c[: max(1, int(len(c) * fraction))].sum() / c.sum())


def hit_ratio(
    train: NDArray[np.bool_], test: NDArray[np.bool_], rank: int = 32
) -> tuple[float, float, float]:
    """``(PureSVD hit / popularity hit, PureSVD hit, popularity hit)`` at top-1.

    Each user with held-out items gets the unseen item that PureSVD (rank ``rank`` on the
    ``train`` matrix: scores ``r_u V V^T``) and training popularity rank first; a hit is an item
    in the user's ``test`` set.
    """
    test = test & ~train
    users = np.flatnonzero(test.any(axis=1) & train.any(axis=1))
    r = train.astype(np.float32)
    _, _, vt = np.linalg.svd(r, full_matrices=False)
    v = vt[:rank].T  # (N, rank)
    hits = []
    for scores in ((r[users] @ v) @ v.T, np.broadcast_to(r.sum(axis=0), (users.size, r.shape[1]))):
        scores = np.where(train[users], -np.inf, scores)
        hits.append(float(test[users, scores.argmax(axis=1)].mean()))
    ratio = hits[0] / hits[1] if hits[1] > 0 else (math.inf if hits[0] > 0 else math.nan)
    return ratio, hits[0], hits[1]


def _split_random(consumed: NDArray[np.bool_], seed: int) -> NDArray[np.bool_]:
    return consumed & (np.random.default_rng(seed).random(consumed.shape) < 0.2)


def _split_last(
    consumed: NDArray[np.bool_], order: NDArray[np.int64], frac: float
) -> NDArray[np.bool_]:
    n = consumed.sum(axis=1)
    return consumed & (order >= np.ceil((1.0 - frac) * n)[:, None])


def halves_drift(
    consumed: NDArray[np.bool_],
    order: NDArray[np.int64],
    genres: NDArray[np.float64],
    *,
    min_items: int = 20,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean per-user JS (bits) of the genre mix, first vs second half of the history, and the
    same for a random half (the noise floor); users with at least ``min_items`` items."""
    n = consumed.sum(axis=1)
    users = np.flatnonzero(n >= min_items)
    late = consumed & (order >= ((n + 1) // 2)[:, None])
    rng = np.random.default_rng(seed)
    rand = consumed & (rng.random(consumed.shape) < 0.5)
    out = []
    for second in (late, rand):
        first = consumed & ~second
        a, b = first[users] @ genres, second[users] @ genres  # (U, G) genre mass per half
        both = (a.sum(axis=1) > 0) & (b.sum(axis=1) > 0)
        pairs = zip(a[both], b[both], strict=True)
        out.append(float(np.mean([js_divergence(x, y) for x, y in pairs])))
    return out[0], out[1]


def _order(log: InteractionLog) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """``(U, N)`` consumed and each consumed item's position in the user's history (-1: none)."""
    u, n = log.num_users, log.num_items
    by_user_time = np.lexsort((log.timestamp, log.user))
    users = log.user[by_user_time]
    n_u = np.bincount(users, minlength=u)
    start = np.concatenate([[0], np.cumsum(n_u)[:-1]])
    rank = np.arange(users.size) - start[users]
    consumed = np.zeros((u, n), dtype=bool)
    order = np.full((u, n), -1, dtype=np.int64)
    consumed[users, log.item[by_user_time]] = True
    order[users, log.item[by_user_time]] = rank
    return consumed, order


@dataclass(frozen=True)
class _Chooser:
    """The env's attraction and within-user drift of a fitted world, as arrays."""

    topics: NDArray[np.float64]  # (N, K)
    appeal: NDArray[np.float64]  # (N,) quality_weight * (q - 1/2)
    release: NDArray[np.int64]  # (N,)
    interest_weight: float
    drift: GradualDrift | None
    clip: float

    @classmethod
    def of(cls, sim: BatchSimulator) -> _Chooser:
        cfg, cat = sim.config, sim.catalog
        return cls(
            topics=np.asarray(cat.topics),
            appeal=cfg.choice.quality_weight * (np.asarray(cat.quality) - 0.5),
            release=np.asarray(cat.release_step, dtype=np.int64),
            interest_weight=cfg.choice.interest_weight,
            drift=cfg.drift.get(GradualDrift),
            clip=cfg.users.interest_clip,
        )

    def histories(
        self,
        interest: NDArray[np.float64],
        counts: NDArray[np.int64],
        taken: NDArray[np.bool_],
        rng: np.random.Generator,
    ) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
        """:func:`~driftrec.envs.movielens.simulate_histories` in this world."""
        return simulate_histories(
            self.topics, self.appeal, interest, counts, taken, rng,
            interest_weight=self.interest_weight, drift=self.drift, interest_clip=self.clip,
        )  # fmt: skip


def _world(log: InteractionLog, cal: Calibration, cache: str) -> BatchSimulator:
    """The fitted world's simulator (for its attraction, release steps and drift)."""
    config = calibrated_config(log, cache_dir=cache, calibration=cal)
    return BatchSimulator(config.with_overrides(oracle_info=False), 1)


def _matched_users(
    fitted_counts: NDArray[np.int64],
    counts: NDArray[np.int64],
    rng: np.random.Generator,
    neighbours: int = 25,
) -> NDArray[np.int64]:
    """For each of ``counts``, a fitted user drawn among the ``neighbours`` whose number of
    interactions is closest: a simulated user gets the tastes *and* the activity level of a
    real one, so that consuming ``count`` items is typical for it (a light user made to
    consume 300 items would dig deep into its niche)."""
    by_count = np.argsort(fitted_counts, kind="stable")
    pos = np.searchsorted(fitted_counts[by_count], counts)  # (M,)
    k = min(neighbours, by_count.size)
    lo = np.clip(pos - k // 2, 0, by_count.size - k)
    return by_count[lo + rng.integers(0, k, counts.size)]


def _clock_of(times: NDArray[np.int64], log: InteractionLog, span_steps: int) -> NDArray[np.int64]:
    """Global steps of ``times`` in a world fitted to ``log`` (its span maps to ``span_steps``)."""
    t0, t1 = int(log.timestamp.min()), int(log.timestamp.max())
    return np.floor((times - t0) / max(1, t1 - t0) * span_steps).astype(np.int64)


def _users_held_out(
    log: InteractionLog,
    folds: int,
    seed: int,
    cache: str,
    calibrate_kwargs: dict[str, Any],
) -> tuple[NDArray[np.bool_], NDArray[np.int64], list[dict[str, Any]]]:
    """Simulated histories of every user, each by a world fitted without the user's fold."""
    consumed, _ = _order(log)
    n_u = consumed.sum(axis=1)
    rng = np.random.default_rng(seed)
    fold = rng.permutation(log.num_users) % folds
    last = np.zeros(log.num_users, dtype=np.int64)
    np.maximum.at(last, log.user, log.timestamp)
    sim_c = np.zeros_like(consumed)
    sim_o = np.full(consumed.shape, -1, dtype=np.int64)
    fits = []
    for f in range(folds):
        held = np.flatnonzero(fold == f)
        train = log.subset(fold[log.user] != f)
        cal = calibrate(train, **calibrate_kwargs)
        fits.append(cal.summary)
        chooser = _Chooser.of(_world(train, cal, cache))
        rows = _matched_users(n_u[cal.users], n_u[held], rng)
        # each held-out user sees the catalog released by its own last interaction
        clock = _clock_of(last[held], train, cal.span_steps)
        unreleased = chooser.release[None, :] > clock[:, None]
        sim_c[held], sim_o[held] = chooser.histories(
            cal.population.interests[rows], n_u[held], unreleased, rng
        )
    return sim_c, sim_o, fits


def _matrix(log: InteractionLog, num_users: int) -> NDArray[np.bool_]:
    out = np.zeros((num_users, log.num_items), dtype=bool)
    out[log.user, log.item] = True
    return out


def _period_held_out(
    log: InteractionLog,
    train_fraction: float,
    sims: int,
    seed: int,
    cache: str,
    calibrate_kwargs: dict[str, Any],
    genres: NDArray[np.float64],
) -> dict[str, float]:
    """(b): the genre share of the held-out period, simulated vs the past repeats."""
    train, test = split_log(log, train_fraction)
    u = log.num_users
    seen, later = _matrix(train, u), _matrix(test, u)
    later &= ~seen  # a repeat is not new consumption
    counts = later.sum(axis=1)
    cal = calibrate(train, **calibrate_kwargs)
    row = np.full(u, -1)
    row[cal.users] = np.arange(cal.users.size)
    known = row >= 0
    real_share = later.sum(axis=0) @ genres
    sim_share = np.zeros(genres.shape[1])
    rng = np.random.default_rng(seed)
    chooser = _Chooser.of(_world(train, cal, cache))
    unreleased = chooser.release > cal.span_steps  # the period starts as the fit ends
    fitted_counts = seen.sum(axis=1)[cal.users]
    for _ in range(sims):
        # new users: fitted users of about the same activity (over their whole history)
        drawn = _matched_users(fitted_counts, counts, rng)
        interest = np.where(known[:, None], cal.population.interests[row], 0.0)
        interest[~known] = cal.population.interests[drawn[~known]]
        got, _ = chooser.histories(interest, counts, seen | unreleased[None, :], rng)
        sim_share += got.sum(axis=0) @ genres
    return {
        "sim": js_divergence(sim_share, real_share),
        "past_repeats": js_divergence(seen.sum(axis=0) @ genres, real_share),
        "users": int(counts.astype(bool).sum()),
        "continuing_users": int((counts.astype(bool) & known).sum()),
    }


def _env_room(config: Any, num_users: int, seed: int) -> dict[str, float]:
    """Population-best and oracle expected rewards of users drawn at step 0 (privileged)."""
    sim = BatchSimulator(config.with_overrides(oracle_info=False), num_users)
    sim.seed(np.random.SeedSequence(seed).spawn(num_users))
    rewards = sim.item_rewards()  # (B, N)
    oracle = float(rewards.max(axis=1).mean())
    best = float(rewards.mean(axis=0).max())
    random = float(rewards[:, sim.released()].mean())
    return {"oracle": oracle, "population_best": best, "random": random}


def calibration_table(
    log: InteractionLog,
    *,
    folds: int = 5,
    split_seeds: int = 10,
    period_sims: int = 4,
    train_fraction: float = 0.8,
    env_users: int = 2048,
    seed: int = 0,
    cache_dir: str | None = None,
    **calibrate_kwargs: Any,
) -> dict[str, Any]:
    """Real vs simulated statistics with their tolerances (see the module docstring).

    Args:
        log: the interactions (e.g. :func:`~driftrec.envs.movielens.load_movielens`).
        folds: user folds; each fold's users are simulated by a world fitted without them.
        split_seeds: random 20% splits averaged for the random-split room.
        period_sims: simulated copies of the held-out period averaged for the genre share.
        train_fraction: the period fit uses the earliest ``train_fraction`` of interactions.
        env_users: users drawn for the env's population-best / oracle ratio.
        seed: seeds the folds, the simulated choices and the env's users.
        cache_dir: where the fitted worlds' files go (default: a temporary directory).
        calibrate_kwargs: passed to :func:`~driftrec.envs.movielens.calibrate`.

    Returns:
        ``{"rows": [{"statistic", "description", "real", "sim", "reference",
        "tolerance", "passed"}], "details": {...}}``.
    """
    with tempfile.TemporaryDirectory(prefix="driftrec-calibration-") as tmp:
        cache = cache_dir if cache_dir is not None else tmp
        _, genres = _genres(log)
        real_c, real_o = _order(log)
        sim_c, sim_o, fits = _users_held_out(log, folds, seed, cache, calibrate_kwargs)
        period = _period_held_out(
            log, train_fraction, period_sims, seed, cache, calibrate_kwargs, genres
        )
        full = calibrated_config(log, cache_dir=cache_dir, **calibrate_kwargs)
        env = _env_room(full, env_users, seed)

    def room(c: NDArray[np.bool_], o: NDArray[np.int64]) -> dict[str, float]:
        rand = [hit_ratio(c & ~t, t) for t in (_split_random(c, s) for s in range(split_seeds))]
        last = _split_last(c, o, 0.2)
        temporal = hit_ratio(c & ~last, last)
        return {
            "random": float(np.mean([r[0] for r in rand])),
            "random_svd_hit": float(np.mean([r[1] for r in rand])),
            "random_pop_hit": float(np.mean([r[2] for r in rand])),
            "temporal": temporal[0],
            "temporal_svd_hit": temporal[1],
            "temporal_pop_hit": temporal[2],
        }

    real_room, sim_room = room(real_c, real_o), room(sim_c, sim_o)
    real_drift, real_floor = halves_drift(real_c, real_o, genres, seed=seed)
    sim_drift, sim_floor = halves_drift(sim_c, sim_o, genres, seed=seed)
    real_n, sim_n = real_c.sum(axis=0), sim_c.sum(axis=0)
    values = {
        "room_random": (real_room["random"], sim_room["random"], None),
        "room_temporal": (real_room["temporal"], sim_room["temporal"], None),
        "env_population_best_over_oracle": (
            None, env["population_best"] / env["oracle"], None,
        ),
        "genre_share_js": (None, period["sim"], period["past_repeats"]),
        "item_gini": (gini(real_n), gini(sim_n), None),
        "item_top10_share": (top_share(real_n), top_share(sim_n), None),
        "user_drift_js": (real_drift, sim_drift, None),
    }  # fmt: skip
    rows = []
    for name, (real, sim, ref) in values.items():
        tol = TOLERANCES[name]
        rows.append(
            {
                "statistic": name,
                "description": STATISTICS[name],
                "real": real,
                "sim": sim,
                "reference": ref,
                "tolerance": tol.describe(),
                "passed": tol.holds(real if real is not None else 0.0, sim, ref),
            }
        )
    return {
        "rows": rows,
        "details": {
            "room_real": real_room,
            "room_sim": sim_room,
            "drift_noise_floor_real": real_floor,
            "drift_noise_floor_sim": sim_floor,
            "period": period,
            "env": env,
            "fold_fits": [
                {k: f[k] for k in ("users", "quality_weight", "no_click_score", "drift_sigma")}
                for f in fits
            ],
        },
    }


def format_table(result: dict[str, Any]) -> str:
    """The calibration table as Markdown (statistic, real, simulated, tolerance, pass)."""

    def num(x: float | None) -> str:
        return "-" if x is None else (f"{x:.4f}" if abs(x) < 0.01 else f"{x:.3f}")

    lines = [
        "| statistic | real | simulated | tolerance | pass |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        real = num(r["real"]) if r["reference"] is None else f"past repeats {num(r['reference'])}"
        lines.append(
            f"| {r['description']} | {real} | {num(r['sim'])} | {r['tolerance']} | "
            f"{'pass' if r['passed'] else 'FAIL'} |"
        )
    return "\n".join(lines)
