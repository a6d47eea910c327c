"""Click models: attraction scores, multinomial-logit slate choice, and the one-step oracle.

All functions are pure and batched over users (leading axis ``B``). The equations are given on
:class:`~driftrec.envs.config.ChoiceConfig`.

Slates: the slate ``(i_0, ..., i_{k-1})`` shows ``i_j`` at position ``j`` with examination
weight ``w_j = position_bias ** j``. An item that appears more than once in a slate counts only
at its first position: later copies have zero attraction and are never clicked (so duplicates
waste a slot and never help). An unreleased item has zero attraction too (recommending it is a
no-op); a single-item action with an unreleased item can therefore never be clicked.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from driftrec.envs.config import ChoiceConfig

__all__ = [
    "attraction",
    "slate_click_probs",
    "sample_choice",
    "first_occurrence",
    "position_weights",
]


def position_weights(slate_size: int, position_bias: float) -> NDArray[np.float64]:
    """Examination weights ``w_j = position_bias ** j``, shape ``(slate_size,)``."""
    return position_bias ** np.arange(slate_size, dtype=np.float64)


def attraction(
    user_vectors: NDArray[np.float64],
    item_topics: NDArray[np.float64],
    item_bias: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Attraction ``s = <user_vector, z> + item_bias`` of shown items.

    Args:
        user_vectors: ``(B, K)``, already combined as
            ``interest_weight * theta - boredom_weight * b``.
        item_topics: ``(B, k, K)`` topic vectors of the shown items.
        item_bias: ``(B, k)``, ``quality_weight * (q - 0.5)``.

    Returns:
        ``(B, k)`` attraction scores.
    """
    # (B, k, K) * (B, 1, K) summed over K -> (B, k); an explicit sum keeps every user's result
    # independent of the batch size (no BLAS blocking differences)
    return (item_topics * user_vectors[:, None, :]).sum(axis=2) + item_bias


def first_occurrence(slate: NDArray[np.int64]) -> NDArray[np.bool_]:
    """``(B, k)`` True where an item appears in its row for the first time."""
    k = slate.shape[1]
    if k == 1:
        return np.ones(slate.shape, dtype=bool)
    # (B, k, k): eq[b, j, l] = slate[b, j] == slate[b, l]; a copy has an equal item at l < j
    eq = slate[:, :, None] == slate[:, None, :]
    earlier = np.tril(np.ones((k, k), dtype=bool), k=-1)
    return ~(eq & earlier).any(axis=2)


def slate_click_probs(
    scores: NDArray[np.float64],
    valid: NDArray[np.bool_],
    config: ChoiceConfig,
) -> NDArray[np.float64]:
    """Multinomial-logit click probabilities with a no-click option and position bias.

    Args:
        scores: ``(B, k)`` attraction of each slate position.
        valid: ``(B, k)`` False for unreleased items and repeated copies (zero attraction).
        config: the choice config (``no_click_score``, ``position_bias``).

    Returns:
        ``(B, k + 1)`` probabilities: clicking position ``j`` for ``j < k``, and no click last.
    """
    k = scores.shape[1]
    if k == 1:  # sigmoid(s - s0), the common single-item case, without the slate machinery
        out = np.empty((scores.shape[0], 2))
        p = out[:, 0]
        np.exp(config.no_click_score - scores[:, 0], out=p)
        p += 1.0
        np.reciprocal(p, out=p)
        p *= valid[:, 0]
        np.subtract(1.0, p, out=out[:, 1])
        return out
    w = position_weights(k, config.position_bias)
    # subtract a per-row max for numerical stability (it cancels in the ratio)
    top = np.maximum(np.where(valid, scores, -np.inf).max(axis=1), config.no_click_score)  # (B,)
    num = np.where(valid, w * np.exp(scores - top[:, None]), 0.0)  # (B, k)
    none = np.exp(config.no_click_score - top)  # (B,)
    denom = num.sum(axis=1) + none
    return np.concatenate([num, none[:, None]], axis=1) / denom[:, None]


def sample_choice(probs: NDArray[np.float64], u: NDArray[np.float64]) -> NDArray[np.int64]:
    """Inverse-CDF sample per row: the first index whose cumulative probability exceeds ``u``.

    Args:
        probs: ``(B, k + 1)`` rows summing to 1 (last column = no click).
        u: ``(B,)`` uniforms in [0, 1).

    Returns:
        ``(B,)`` chosen column; ``k`` means no click.
    """
    if probs.shape[1] == 2:  # single item: click iff u < p
        return (u >= probs[:, 0]).astype(np.int64)
    cdf = np.cumsum(probs, axis=1)  # (B, k + 1)
    choice = (cdf <= u[:, None]).sum(axis=1)
    return np.minimum(choice, probs.shape[1] - 1)
