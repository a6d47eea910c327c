"""Validate a calibrated world against held-out log data.

:func:`validate` fits a world to the earliest ``train_fraction`` of a log
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
  span; slates of 10, ``no_click_score`` 3 as in the slate scenarios). The question is whether
  the simulator orders the policies as the replay does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftrec.envs.catalog import Catalog
from driftrec.envs.gym_env import DriftRecVectorEnv
from driftrec.envs.movielens import InteractionLog, calibrate, calibrated_config, split_log

__all__ = ["js_divergence", "validate", "POLICIES"]

POLICIES = ("popularity", "genre-match", "random")


def js_divergence(p: NDArray[np.float64], q: NDArray[np.float64]) -> float:
    """Jensen-Shannon divergence in bits between two (unnormalised) distributions."""
    p = np.asarray(p, dtype=np.float64) / np.sum(p)
    q = np.asarray(q, dtype=np.float64) / np.sum(q)
    m = 0.5 * (p + q)

    def kl(a: NDArray[np.float64]) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / m[nz])).sum())

    return 0.5 * kl(p) + 0.5 * kl(q)


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
    popularity: NDArray[np.float64],
    start: int,
    *,
    num_users: int,
    steps: int,
    seed: int,
) -> tuple[dict[str, float], NDArray[np.float64], NDArray[np.float64]]:
    """Simulator click rates per policy, plus the free-choice and random-click item shares."""
    rng = np.random.default_rng(seed)
    topics = np.asarray(catalog.topics)
    n = catalog.num_items
    # (a) free choice: each simulated user's MNL over the released catalog
    env = DriftRecVectorEnv(num_users, config=config.with_overrides(oracle_info=False))
    _sim_users(env, start, seed)
    sim = env.sim
    uv = sim._user_vectors(sim.state)  # (B, K)  # noqa: SLF001  (privileged, for validation)
    s = uv @ topics.T + sim._item_bias  # (B, N) attraction  # noqa: SLF001
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
    slate_cfg = config.with_overrides(
        slate_size=k, history_len=30, oracle_info=False, **{"choice.no_click_score": 3.0}
    )
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
            profile = consumed.astype(np.float64) @ topics  # (B, K)
            scores = _scores(policy, popularity, profile, topics, rng)
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
    topics = np.asarray(cal.catalog.topics)
    popularity = np.bincount(train.item, minlength=train.num_items).astype(np.float64)
    test_items = np.bincount(test.item, minlength=test.num_items).astype(np.float64)
    test_genres = test_items @ topics
    rates, free_share, clicks = _simulate(
        config, cal.catalog, popularity, cal.span_steps, num_users=num_users, steps=steps,
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
