"""A Plackett-Luce (top-k without replacement) action distribution for slates, for SB3.

A slate ``a = (a_0, ..., a_{k-1})`` of ``k`` distinct items out of ``N`` is drawn from one score
vector ``s`` ``(N,)`` per observation: the first item from ``softmax(s)``, each next one from the
softmax over the items not yet chosen. Its probability is exact and cheap::

    log p(a) = sum_j [ s_{a_j} - logsumexp_{i not in a_<j} s_i ]

Compared with ``k`` independent categoricals over the same scores (SB3's
``MultiCategoricalDistribution`` fed the scores ``k`` times), a slate never repeats an item, and
its log-probability is the one of the ordered slate the policy actually shows.

* :meth:`PlackettLuceDistribution.sample` is exact: the Gumbel-top-k trick (the ``k`` largest of
  ``s_i + G_i``, ``G_i`` i.i.d. standard Gumbel, in decreasing order, is a Plackett-Luce sample).
  The noise comes from torch's default generator, which ``PPO(seed=...)`` seeds, so runs stay
  deterministic.
* :meth:`~PlackettLuceDistribution.mode` is the top-``k`` of the scores.
* **Masked items** (score ``<= torch.finfo(dtype).min / 2``, how the attention recommender marks
  unreleased items) are never sampled and never produce NaN. Only when a row has fewer than
  ``k`` valid items does a slate need masked items: the remaining positions are then filled
  deterministically with the masked items in increasing index order, and :meth:`log_prob` gives
  that fill probability 1 (log 0) and any other masked item at such a position ``finfo.min``.
* **Entropy.** The exact entropy of a ``k``-item Plackett-Luce over ``N`` items is a sum over
  ``N! / (N - k)!`` ordered slates (``~10^30`` for ``N = 1000, k = 10``). By the chain rule it is
  ``H(A) = sum_j E_{a_<j ~ p}[ H(A_j | a_<j) ]``, where each conditional entropy is exact and costs
  ``O(N)``. :meth:`~PlackettLuceDistribution.entropy` returns:

  1. ``k == 1``: the exact entropy (one categorical);
  2. else, when ``N! / (N - k)! <= exact_max_orderings`` (default 1,024): the exact entropy by
     enumerating every ordered slate (:func:`plackett_luce_entropy_exact`);
  3. else: ``sum_j H(A_j | a_<j)`` along one slate ``a`` per row: the actions last passed to
     :meth:`log_prob` on this distribution (SB3's ``evaluate_actions`` calls ``log_prob`` and
     then ``entropy``), or, when ``log_prob`` was not called, a fresh Gumbel-top-k sample. When
     ``a`` is drawn from this distribution this is an **unbiased single-sample estimate** of the
     exact entropy (its first term, ``H(A_0)``, is exact). In PPO's update the actions come from
     the rollout policy, so after the first gradient step it is an estimate along slightly
     off-policy prefixes. Its gradient treats the prefixes as fixed: it raises each conditional
     entropy along them, and omits the score-function term of the prefix probabilities, so it is
     not the exact entropy's gradient either.

Usage (the policy in :mod:`driftrec.agents.sb3_policy` does this for ``MultiDiscrete`` slates)::

    dist = PlackettLuceDistribution(num_items=1000, slate_size=10)
    dist.proba_distribution(action_logits=scores)  # (B, N)
    slates = dist.sample()  # (B, 10), distinct items per row
    log_p = dist.log_prob(slates)  # (B,)
"""

from __future__ import annotations

import itertools
import math
from typing import Any, TypeVar

import torch
from stable_baselines3.common.distributions import Distribution
from torch import nn
from torch.distributions import Categorical

__all__ = [
    "ScoreCategoricalDistribution",
    "PlackettLuceDistribution",
    "ScorePassThrough",
    "plackett_luce_log_prob",
    "plackett_luce_entropy_exact",
    "all_ordered_slates",
]

SelfPL = TypeVar("SelfPL", bound="PlackettLuceDistribution")


class ScorePassThrough(nn.Module):
    """``action_net`` for :class:`PlackettLuceDistribution`: the scores ``(B, N)`` are logits."""

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return scores


def _valid(scores: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` True where the item may be chosen (its score is above ``finfo.min / 2``)."""
    return scores > torch.finfo(scores.dtype).min / 2


def _masked_fill_order(valid: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` item ids with the masked items first, each group in increasing index order."""
    return torch.sort(valid.to(torch.int8), dim=1, stable=True).indices


def _conditionals(scores: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position log-probabilities and exact conditional entropies along ``actions``.

    Args:
        scores: ``(B, N)`` logits (masked items at ``finfo.min``).
        actions: ``(B, k)`` item ids.

    Returns:
        ``(log_probs (B, k), entropies (B, k))``: ``log p(a_j | a_<j)`` and ``H(A_j | a_<j)``.
    """
    floor = torch.finfo(scores.dtype).min
    b, n = scores.shape
    k = actions.shape[1]
    valid = _valid(scores)  # (B, N)
    # taken[b, j, i] > 0 iff item i is one of a_0 .. a_{j-1}
    earlier = torch.ones(k, k, dtype=torch.uint8, device=scores.device).tril(-1)  # (k, k): i < j
    taken = torch.zeros(b, k, n, dtype=torch.uint8, device=scores.device)
    taken.scatter_add_(2, actions[:, None, :].expand(b, k, k), earlier.expand(b, k, k))
    remaining = valid[:, None, :] & (taken == 0)  # (B, k, N) valid and not yet chosen
    rem_scores = scores[:, None, :].masked_fill(~remaining, floor)  # (B, k, N)
    log_z = torch.logsumexp(rem_scores, dim=-1)  # (B, k)
    # a masked or repeated pick while valid items remain gets ~finfo.min (p = 0, but finite)
    picked = rem_scores.gather(2, actions[:, :, None]).squeeze(2)  # (B, k)
    step_lp = picked - log_z  # (B, k)
    # H(A_j | a_<j) = log Z_j - sum_i p_i s_i over the remaining items (others: p_i = 0)
    probs = torch.softmax(rem_scores, dim=-1)  # (B, k, N)
    step_h = log_z - (probs * scores[:, None, :].masked_fill(~remaining, 0.0)).sum(dim=-1)
    num_valid = valid.sum(dim=1, keepdim=True)  # (B, 1)
    if bool((num_valid < k).any()):
        # positions past the last valid item: the deterministic fill has probability 1
        has_valid = remaining.any(dim=-1)  # (B, k)
        fill_pos = (torch.arange(k, device=scores.device)[None, :] - num_valid).clamp(0, n - 1)
        fill = _masked_fill_order(valid).gather(1, fill_pos)  # (B, k)
        fill_lp = torch.where(actions == fill, 0.0, floor).to(scores.dtype)  # (B, k)
        step_lp = torch.where(has_valid, step_lp, fill_lp)
        step_h = torch.where(has_valid, step_h, torch.zeros_like(step_h))
    return step_lp, step_h


def _total(step_lp: torch.Tensor) -> torch.Tensor:
    """Sum over positions, kept finite (several ``finfo.min`` terms would overflow to -inf)."""
    return step_lp.sum(dim=1).clamp_min(torch.finfo(step_lp.dtype).min)


def plackett_luce_log_prob(scores: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Exact ``log p(a)`` ``(B,)`` of ordered slates ``actions`` ``(B, k)``, scores ``(B, N)``."""
    return _total(_conditionals(scores, actions.long())[0])


def all_ordered_slates(num_items: int, slate_size: int) -> torch.Tensor:
    """Every ordered slate of ``slate_size`` distinct items: ``(N! / (N - k)!, k)`` ids."""
    perms = list(itertools.permutations(range(num_items), slate_size))
    return torch.tensor(perms, dtype=torch.long).reshape(len(perms), slate_size)


def plackett_luce_entropy_exact(scores: torch.Tensor, slate_size: int) -> torch.Tensor:
    """Exact entropy ``(B,)`` by enumerating all ``N! / (N - k)!`` ordered slates (small N only)."""
    b, n = scores.shape
    slates = all_ordered_slates(n, slate_size).to(scores.device)  # (P, k)
    p = slates.shape[0]
    rows = scores.repeat_interleave(p, dim=0)  # (B * P, N)
    log_p = plackett_luce_log_prob(rows, slates.repeat(b, 1)).reshape(b, p)  # (B, P)
    prob = log_p.exp()
    return -(prob * torch.where(prob > 0, log_p, torch.zeros_like(log_p))).sum(dim=1)


class _ScoreDistribution(Distribution):
    """What the distributions over the policy's item scores share: the scores ``(B, N)`` are
    the logits (``proba_distribution_net`` is a pass-through) and are set, checked, by
    :meth:`_set_scores`; ``distribution`` shows ``softmax(scores)`` as a torch ``Categorical``."""

    num_items: int
    scores: torch.Tensor | None

    @property
    def distribution(self) -> Categorical:  # type: ignore[override]
        """``softmax(scores)`` as a torch Categorical (of a slate: its first position's)."""
        return Categorical(logits=self._scores())

    @distribution.setter
    def distribution(self, value: None) -> None:
        # some SB3 versions (2.6) set ``self.distribution = None`` in Distribution.__init__
        if value is not None:
            raise AttributeError("set the scores with proba_distribution(action_logits)")

    def _scores(self) -> torch.Tensor:
        if self.scores is None:
            raise RuntimeError("call proba_distribution(action_logits) first")
        return self.scores

    def _set_scores(self, action_logits: torch.Tensor) -> None:
        if action_logits.ndim != 2 or action_logits.shape[1] != self.num_items:
            raise ValueError(
                f"'action_logits' must have shape (batch, {self.num_items}) "
                f"(got {tuple(action_logits.shape)})"
            )
        self.scores = action_logits

    def proba_distribution_net(self, *args: object, **kwargs: object) -> nn.Module:
        """The policy's scores are the logits: a parameter-free pass-through."""
        return ScorePassThrough()

    def actions_from_params(
        self, action_logits: torch.Tensor, deterministic: bool = False
    ) -> torch.Tensor:
        """Set the scores and return actions (the mode when ``deterministic``)."""
        self.proba_distribution(action_logits)
        return self.get_actions(deterministic=deterministic)

    def log_prob_from_params(
        self, action_logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled actions and their log-probabilities."""
        actions = self.actions_from_params(action_logits)
        return actions, self.log_prob(actions)


class PlackettLuceDistribution(_ScoreDistribution):
    """Plackett-Luce over ordered slates of ``slate_size`` distinct items out of ``num_items``.

    Parameterised by one score vector ``(B, N)`` per observation (``proba_distribution``);
    actions are ``(B, k)`` item ids, the layout of a ``MultiDiscrete([N] * k)`` action. See the
    module docstring for what :meth:`entropy` computes.

    Args:
        num_items: ``N``, the catalog size.
        slate_size: ``k``, items per slate (``1 <= k <= N``).
        exact_max_orderings: use the exact (enumerated) entropy when ``N! / (N - k)!`` is at most
            this; otherwise the chain-rule estimate along a slate.
    """

    def __init__(self, num_items: int, slate_size: int, exact_max_orderings: int = 1024) -> None:
        super().__init__()
        for name, value in (("num_items", num_items), ("slate_size", slate_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"'{name}' must be an integer >= 1 (got {value!r})")
        if slate_size > num_items:
            raise ValueError(
                f"'slate_size' must be at most 'num_items' ({num_items}) for slates without "
                f"repeats (got {slate_size})"
            )
        self.num_items = num_items
        self.slate_size = slate_size
        self.exact_max_orderings = exact_max_orderings
        self.num_orderings = math.perm(num_items, slate_size)
        self.scores: torch.Tensor | None = None
        self._last_entropies: torch.Tensor | None = None  # (B, k) along the last log_prob

    def proba_distribution(self: SelfPL, action_logits: torch.Tensor) -> SelfPL:
        """Set the scores ``(B, N)``."""
        self._set_scores(action_logits)
        self._last_entropies = None
        return self

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(a)`` ``(B,)`` of the ordered slates ``actions`` ``(B, k)``."""
        scores = self._scores()
        actions = actions.reshape(scores.shape[0], self.slate_size).long()
        step_lp, step_h = _conditionals(scores, actions)
        self._last_entropies = step_h
        return _total(step_lp)

    def entropy(self) -> torch.Tensor:
        """``(B,)``: exact for ``k = 1`` or few orderings, else the chain-rule estimate."""
        scores = self._scores()
        if self.slate_size == 1:
            return Categorical(logits=scores).entropy()
        if self.num_orderings <= self.exact_max_orderings:
            return plackett_luce_entropy_exact(scores, self.slate_size)
        if self._last_entropies is None:
            _, self._last_entropies = _conditionals(scores, self.sample())
        return self._last_entropies.sum(dim=1)

    def _top_k(self, keys: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The ``k`` largest valid ``keys``; masked items (in index order) fill the rest."""
        k = self.slate_size
        keys = keys.masked_fill(~valid, -torch.inf)
        top = torch.topk(keys, k, dim=1).indices  # (B, k)
        num_valid = valid.sum(dim=1, keepdim=True)  # (B, 1)
        pos = torch.arange(k, device=keys.device)[None, :]  # (1, k)
        if bool((num_valid >= k).all()):
            return top
        fill = _masked_fill_order(valid).gather(1, (pos - num_valid).clamp(0, self.num_items - 1))
        return torch.where(pos < num_valid, top, fill)

    def sample(self) -> torch.Tensor:
        """Exact Plackett-Luce slates ``(B, k)`` by the Gumbel-top-k trick."""
        scores = self._scores().detach()
        u = torch.rand(scores.shape, dtype=scores.dtype, device=scores.device)
        tiny = torch.finfo(scores.dtype).tiny
        gumbel = -torch.log(-torch.log(u.clamp(tiny, 1.0 - 1e-7)))  # (B, N) standard Gumbel
        return self._top_k(scores + gumbel, _valid(scores))

    def mode(self) -> torch.Tensor:
        """The most likely slate: the top-``k`` scores in decreasing order ``(B, k)``."""
        scores = self._scores().detach()
        return self._top_k(scores, _valid(scores))


# --------------------------------------------------------------------------------------------
# one item: a categorical over the scores, lean enough for a catalog-wide softmax per sample
# --------------------------------------------------------------------------------------------
class _LogProbEntropy(torch.autograd.Function):
    """``(log p(a), H)`` ``(B,), (B,)`` of ``softmax(scores)`` in one pass over ``(B, N)``.

    The backward pass reuses the saved probabilities, and skips the entropy's ``(B, N)``
    gradient when the entropy's incoming gradient is exactly zero (PPO with ``ent_coef=0``
    multiplies it by 0): the result is the same, without the work.
    """

    @staticmethod
    def forward(ctx: Any, scores: torch.Tensor, actions: torch.Tensor) -> Any:
        top = scores.amax(dim=1, keepdim=True)  # (B, 1)
        probs = (scores - top).exp_()  # (B, N) unnormalised
        total = probs.sum(dim=1, keepdim=True)  # (B, 1)
        probs.div_(total)
        lse = top + total.log()  # (B, 1) logsumexp
        dot = (probs * scores).sum(dim=1)  # (B,) sum_i p_i s_i
        entropy = lse.squeeze(1) - dot  # (B,)
        log_prob = scores.gather(1, actions[:, None]).squeeze(1) - lse.squeeze(1)  # (B,)
        ctx.save_for_backward(scores, actions, probs, lse, entropy)
        ctx.set_materialize_grads(False)
        return log_prob, entropy

    @staticmethod
    def backward(ctx: Any, grad_lp: torch.Tensor | None, grad_h: torch.Tensor | None) -> Any:
        scores, actions, probs, lse, entropy = ctx.saved_tensors
        grad = None
        if grad_lp is not None:
            grad = probs * -grad_lp[:, None]  # (B, N): d log p(a) / d s = onehot(a) - p
            grad.scatter_add_(1, actions[:, None], grad_lp[:, None])
        if grad_h is not None and bool(grad_h.any()):
            # dH / ds_i = -p_i (log p_i + H); masked items have p_i = 0 and finite terms
            dh = probs * (scores - lse + entropy[:, None]) * -grad_h[:, None]  # (B, N)
            grad = dh if grad is None else grad.add_(dh)
        return grad, None


class ScoreCategoricalDistribution(_ScoreDistribution):
    """A categorical over ``num_items`` items with logits = the policy's scores ``(B, N)``.

    The same distribution as SB3's ``CategoricalDistribution`` (``softmax(scores)``), computed
    for a catalog-wide softmax per observation: ``log_prob`` and ``entropy`` come from one pass
    (and one saved probability table for the backward pass), ``sample`` draws by inverse CDF
    (one uniform per row instead of ``N`` exponentials), ``mode`` is the argmax of the scores.
    Masked items (score ``torch.finfo(dtype).min``) get probability 0 and finite gradients.
    Randomness comes from torch's default generator (seeded by ``PPO(seed=...)``).

    Args:
        num_items: ``N``, the catalog size.
    """

    def __init__(self, num_items: int) -> None:
        super().__init__()
        if isinstance(num_items, bool) or not isinstance(num_items, int) or num_items < 1:
            raise ValueError(f"'num_items' must be an integer >= 1 (got {num_items!r})")
        self.num_items = num_items
        self.scores: torch.Tensor | None = None
        self._entropy: torch.Tensor | None = None

    def proba_distribution(self, action_logits: torch.Tensor) -> ScoreCategoricalDistribution:
        """Set the scores ``(B, N)``."""
        self._set_scores(action_logits)
        self._entropy = None
        return self

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """``log p(a)`` ``(B,)`` of item ids ``actions`` ``(B,)`` (or ``(B, 1)``)."""
        scores = self._scores()
        actions = actions.reshape(scores.shape[0]).long()
        if not scores.requires_grad:
            lse = torch.logsumexp(scores, dim=1)  # (B,)
            return scores.gather(1, actions[:, None]).squeeze(1) - lse
        log_prob, self._entropy = _LogProbEntropy.apply(scores, actions)
        return log_prob

    def entropy(self) -> torch.Tensor:
        """``H(softmax(scores))`` ``(B,)`` (from the last ``log_prob`` when there was one)."""
        if self._entropy is not None:
            return self._entropy
        scores = self._scores()
        lse = torch.logsumexp(scores, dim=1, keepdim=True)  # (B, 1)
        probs = (scores - lse).exp()  # (B, N)
        return lse.squeeze(1) - (probs * scores).sum(dim=1)

    def sample(self) -> torch.Tensor:
        """Item ids ``(B,)`` drawn from ``softmax(scores)`` by inverse CDF (float64 sums)."""
        scores = self._scores().detach()
        weights = (scores - scores.amax(dim=1, keepdim=True)).exp_()  # (B, N), masked: 0
        cdf = torch.cumsum(weights, dim=1, dtype=torch.float64)  # (B, N)
        total = cdf[:, -1:]  # (B, 1) > 0: the max item has weight 1
        u = torch.rand(total.shape, dtype=torch.float64, device=scores.device) * total
        u = torch.minimum(u, torch.nextafter(total, torch.zeros_like(total)))  # u < total
        # the first item whose cdf exceeds u: its weight is > 0, so never a masked item
        return torch.searchsorted(cdf, u, right=True).squeeze(1)

    def mode(self) -> torch.Tensor:
        """The most likely item ``(B,)``: the argmax of the scores."""
        return torch.argmax(self._scores(), dim=1)
