"""The attention recommender: a small transformer over the impression history.

The whole forward pass is in this file (in the style of a ``transformers`` modeling file)::

    observation (B, 3H+2)
      -> item ids, feedback, mask, clock                      (layout of driftrec.envs.observation)
      -> history tokens  = item tower(id) + feedback embedding
      -> [start token; history tokens, oldest first]           (B, T = H+1, d)
      -> num_layers x causal pre-LN block (self-attention with a learned per-head relative
         recency bias + MLP): token i sees the start token and impressions up to i
      -> final LayerNorm: one state per history prefix         (B, T, d)
      -> user state u = the state of the newest impression (0 for an empty history)
      -> click score  c_i = b_i + w * m_i + <u, item_tower(i)> / sqrt(d)    (B, N)
      -> scores (policy logits) = beta * c_i                                 (B, N)
      -> items not yet released at the observation's clock get torch.finfo(dtype).min

**Three terms, each with its own job.** ``b_i`` is a learned per-item prior (what the
population likes, and the quality the text does not show; zero-initialised, so an item nobody
has seen yet is neutral). ``m_i`` is a *content match* computed from this user's history only:
the cosine between item ``i``'s language-model embedding (its top ``match_dim`` singular
directions) and the user's profile
``h_u = sum_t gamma**r_t (y_t - lambda (1 - y_t)) e_{a_t}`` (clicked items attract, skipped
ones repel, recent ones count more), with a weight ``w`` kept positive (softplus) and learned
``gamma``, ``lambda``. With ``match_attention`` (default) each term is also multiplied by
``exp(kappa (s_t <e_{a_t}, q> - 1))``, its agreement with the short-term profile ``q``: a
dynamic interest attention in which clicks the newest ones contradict fade at once.
``<u, v_i>`` is the transformer's personal term. ``c_i + a`` (``a`` a
learned offset) is a click logit: :meth:`AttentionRecommender.click_loss` fits it to the clicks
and skips the history itself shows (predicting each impression from the ones before it), the
dense per-impression signal that keeps the scores personal while an RL loss also shapes them.
The prior is kept orthogonal to the text directions (``prior_residual``), so topic preferences
must come from the user's history and the prior holds what the text cannot say.
``beta = softplus(.)`` (starting at ``1 / score_temperature``) is the policy's inverse
temperature: how greedily it exploits the click scores is learned too.

**Item tower.** The item table holds frozen language-model embeddings of the item texts
(:func:`driftrec.agents.text_encoder.encode_catalog`) in a *non-persistent* buffer, so checkpoints
stay small and a catalog can be swapped with :meth:`AttentionRecommender.set_item_table`. A
trainable ``Linear(E, d)`` projects them to the model width; the optional hybrid tower adds a
per-item ``nn.Embedding(N, d)`` (initialised at zero, so the hybrid starts as the text-only model).

**Causal encoder (SASRec-style).** The state at history token ``i`` summarises the impressions
up to and including ``i``, so one pass gives, for every impression in the history, the state
of the history *before* it: :meth:`AttentionRecommender.click_loss` predicts each impression from
that state, and the newest state scores the next recommendation. Order enters only through a
relative recency bias: each token's recency ``r`` counts the real impressions after it
(0 = the most recent, padding ignored wherever it sits), and when ``recency_bias`` is on every
head ``h`` of every layer adds ``-softplus(slope_h) * (r_key - r_query)`` to its attention
logits (ALiBi-style, learned slope; the start token carries no penalty). With no absolute
positions, a prefix's state does not depend on how many impressions came after it, which is
what makes the click loss's targets and the policy's query the same computation. Slopes start
at geometric values (one head sharply recent, one nearly global).

**Padding and empty histories.** Padding and later impressions are never attended to; the
start token is always a valid key, so every row has one and an empty history gives finite
outputs. With ``zero_start_state`` (default) the state of an empty history is 0: a user with no
history is scored by the item prior alone.

Scoring the whole catalog is one matrix product ``(B, d) @ (d, N)``; with gradients off
(``torch.no_grad`` / ``torch.inference_mode``) the projected item table is cached and reused
until a parameter of the item tower or the item table changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from driftrec.envs.observation import CLOCK_SCALE, ObservationLayout

__all__ = [
    "AttentionConfig",
    "AttentionRecommender",
    "RecommenderOutput",
    "EncodedHistory",
    "ParsedObservation",
    "parse_observation",
    "mask_history_items",
]


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"'{name}' must be an integer >= {low} (got {value!r})")


@dataclass(frozen=True, slots=True)
class AttentionConfig:
    """Hyper-parameters of :class:`AttentionRecommender`.

    Attributes:
        embed_dim: Model width ``d``: of the tokens, the user state and the projected items.
        num_heads: Attention heads per layer; must divide ``embed_dim``.
        num_layers: Transformer blocks (pre-LN self-attention + MLP).
        ff_dim: Hidden width of each block's MLP.
        dropout: Dropout on the token embeddings, the attention weights and each residual branch.
        history_len: ``H``, the number of impressions in an observation (must match the env's
            ``session.history_len``); observations have ``3H + 2`` columns.
        use_id_embeddings: Hybrid item tower: add a trainable per-item embedding (initialised at
            zero) to the projected text embedding. Ties the model to a catalog size.
        score_temperature: Scores are ``<u, v> / (sqrt(d) * score_temperature)``; below 1 makes
            the initial policy sharper, above 1 flatter.
        recency_bias: Add the learned per-head linear recency bias to the attention logits.
        item_bias: Add a learned per-item prior ``b_i`` (zero-initialised) to the scores. Ties
            the model to a catalog size.
        content_match: Add the content-match term ``w * m_i`` (cosine between the item's text
            embedding and the user's recency-weighted click profile).
        match_decay: Initial recency decay ``gamma`` of the content-match profile, in (0, 1).
        match_skip_weight: Initial weight ``lambda`` of skipped impressions in the profile.
        match_weight: Initial weight ``w`` of the content-match term (logit units).
        match_attention: Make the content-match profile's weights over the history dynamic
            ("dynamic interest attention"): impression ``k`` also counts by how well it agrees
            with the user's *short-term* profile ``q`` (the same click-minus-skip sum with a
            faster learned decay): its weight is multiplied by ``exp(kappa * (s_k <e_k, q> - 1))``
            with ``s_k`` +1 for a click and -1 for a skip and a learned ``kappa >= 0``. After a
            change of taste the old, now contradicted impressions fade at once instead of at
            the long decay's pace. :meth:`AttentionRecommender.match_attention` returns these
            weights (the attention figure).
        match_query_decay: Initial decay of the short-term profile ``q``, in (0, 1).
        match_sharpness: Initial ``kappa`` of ``match_attention``, > 0.
        match_dim: The content match uses the top ``match_dim`` singular directions of the item
            table (the full table when it is narrower): the same cosine structure at a
            fraction of the cost for wide language-model embeddings.
        learn_score_scale: Learn the policy's inverse temperature ``beta`` (else fixed at
            ``1 / score_temperature``).
        prior_residual: Keep the item prior orthogonal to the text directions the content match
            uses (``b = delta - U U^T delta``, ``U`` an orthonormal basis of the reduced text
            table): what the text can explain (topics) must then come from the user's history,
            and the prior holds only what the text cannot (quality). A population shift moves
            topic preferences, so a frozen model's prior stays valid.
        carryover: Add a learned per-item *carry-over* ``e_j`` to the click logits: every click
            on item ``j`` in the history adds ``g**r e_j`` to the click logit of every later
            impression (``r`` impressions later; ``g`` learned, starting at ``carryover_decay``;
            ``e`` starts at 0; kept orthogonal to the text directions, see
            :meth:`AttentionRecommender.carry_effects`). It is fitted by the click loss, so it
            learns from every impression how what a user consumed changes their later
            engagement (satisfaction that quality builds and clickbait drains, fatigue), which
            neither the text nor the item prior can say. It shifts all items of a history
            alike, so it does not change the click ranking; with ``policy_tilt`` the policy can
            weigh it (below).
        carryover_decay: Initial ``g`` of ``carryover``, in (0, 1).
        carryover_horizon: Initial ``eta`` of ``policy_tilt`` with ``carryover`` (>= 0): 1 counts
            an item's carry-over once over its whole decay horizon (a first-order lookahead with
            the learned click model); the reinforcement-learning loss adjusts it.
        policy_tilt: Add two policy-only terms to the logits, trained by the reinforcement-
            learning loss alone (the click loss never sees them): a learned weight ``rho`` on
            the item prior (starting at 1) and a per-item tilt ``tau_i`` (starting at 0), so the
            logits are ``beta * (c_i + (rho - 1) b_i + tau_i)``. The click scores ``c`` predict
            the next click; a long-horizon policy may prefer items whose clicks pay off later
            (or avoid clickbait that drains the user), which ``rho`` (one number for the whole
            catalog: follow, ignore or reverse the population's click prior) and ``tau`` (per
            item) express without corrupting the click model. With ``carryover`` a third term
            ``eta e_i / (1 - g)`` (``eta`` learned, from ``carryover_horizon``) lets the policy
            value an item's carry-over over its whole decay horizon. Ties the model to a
            catalog size.
        zero_start_state: The state of an empty history is 0 (the start token stays a key
            every query may attend to): a user with no history is scored by the item prior
            alone, and every topic preference comes from the user's own history, which is what
            lets frozen weights follow a population shift.
        layer_norm_eps: Epsilon of every LayerNorm.
        init_std: Standard deviation of the normal initialisation of the linear layers, the
            position embeddings and the user token (``transformers`` style).
    """

    embed_dim: int = 64
    num_heads: int = 4
    num_layers: int = 2
    ff_dim: int = 128
    dropout: float = 0.0
    history_len: int = 20
    use_id_embeddings: bool = False
    score_temperature: float = 1.0
    recency_bias: bool = True
    item_bias: bool = True
    content_match: bool = True
    match_decay: float = 0.9
    match_skip_weight: float = 0.1
    match_weight: float = 2.0
    match_attention: bool = True
    match_query_decay: float = 0.5
    match_sharpness: float = 1.0
    match_dim: int = 64
    learn_score_scale: bool = True
    prior_residual: bool = True
    carryover: bool = False
    carryover_decay: float = 0.95
    carryover_horizon: float = 1.0
    policy_tilt: bool = False
    zero_start_state: bool = True
    layer_norm_eps: float = 1e-5
    init_std: float = 0.02

    def __post_init__(self) -> None:
        _check_int("embed_dim", self.embed_dim, 1)
        _check_int("num_heads", self.num_heads, 1)
        _check_int("num_layers", self.num_layers, 1)
        _check_int("ff_dim", self.ff_dim, 1)
        _check_int("history_len", self.history_len, 1)
        _check_int("match_dim", self.match_dim, 1)
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"'embed_dim' ({self.embed_dim}) must be divisible by 'num_heads' "
                f"({self.num_heads})"
            )
        for name in (
            "dropout",
            "score_temperature",
            "layer_norm_eps",
            "init_std",
            "match_decay",
            "match_skip_weight",
            "match_weight",
            "match_query_decay",
            "match_sharpness",
            "carryover_decay",
            "carryover_horizon",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"'{name}' must be a number (got {value!r})")
            if not math.isfinite(value):
                raise ValueError(f"'{name}' must be finite (got {value!r})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"'dropout' must be in [0, 1) (got {self.dropout!r})")
        for name in ("score_temperature", "layer_norm_eps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"'{name}' must be > 0 (got {getattr(self, name)!r})")
        if self.init_std < 0:
            raise ValueError(f"'init_std' must be >= 0 (got {self.init_std!r})")
        for name in ("match_decay", "match_query_decay", "carryover_decay"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"'{name}' must be in (0, 1) (got {getattr(self, name)!r})")
        if not 0.0 <= self.carryover_horizon <= 100.0:
            raise ValueError(
                f"'carryover_horizon' must be in [0, 100] (got {self.carryover_horizon!r})"
            )
        for name in ("match_skip_weight", "match_weight", "match_sharpness"):
            if not 0.0 < getattr(self, name) <= 100.0:
                raise ValueError(f"'{name}' must be in (0, 100] (got {getattr(self, name)!r})")
        for name in (
            "use_id_embeddings",
            "recency_bias",
            "item_bias",
            "content_match",
            "match_attention",
            "learn_score_scale",
            "prior_residual",
            "carryover",
            "policy_tilt",
            "zero_start_state",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"'{name}' must be a bool (got {getattr(self, name)!r})")

    @property
    def head_dim(self) -> int:
        """Width of one attention head, ``embed_dim // num_heads``."""
        return self.embed_dim // self.num_heads

    @property
    def obs_size(self) -> int:
        """Columns of a flat observation, ``3 * history_len + 2``."""
        return 3 * self.history_len + 2


# --------------------------------------------------------------------------------------------
# outputs and observation parsing
# --------------------------------------------------------------------------------------------
class RecommenderOutput(NamedTuple):
    """What :meth:`AttentionRecommender.forward` returns.

    Attributes:
        scores: ``(B, N)`` one score (logit) per catalog item; unreleased items hold
            ``torch.finfo(dtype).min`` so a softmax gives them exactly zero probability.
        user_state: ``(B, d)`` the user vector ``u``.
        attentions: With ``output_attentions=True``, one ``(B, heads, T, T)`` tensor of attention
            weights per layer (``T = history_len + 1``; index 0 is the start token, 1..H the
            history in observation order); else ``None``.
        encoding: With ``output_encoding=True``, the encoder output, the parsed observation
            and the projected item table ``(N, d)`` the scores used
            (for :meth:`AttentionRecommender.click_loss`); else ``None``.
    """

    scores: torch.Tensor
    user_state: torch.Tensor
    attentions: tuple[torch.Tensor, ...] | None = None
    encoding: tuple[EncodedHistory, ParsedObservation, torch.Tensor] | None = None


class MatchState(NamedTuple):
    """The content match's view of a batch of histories, in the history's own coordinates.

    The profile at state row ``t`` is ``h_t = sum_k weights[t, k] x_k`` normalised; it is
    never formed for every row: what the click loss needs, ``<h_t, x_k>``, is ``wg[t, k]``
    (the weights times the history's Gram matrix), and ``|h_t|`` comes from the same product.
    Only the query's profile, which scores the whole catalog, is formed (:meth:`profile`).

    Attributes:
        weights: ``(B, R, H)`` signed weight of impression ``k`` in the profile at row ``t``.
        x: ``(B, H, r)`` the history's reduced unit text embeddings.
        wg: ``(B, R, H)`` ``<h_t, x_k>`` before normalising ``h_t``.
        inv_norm: ``(B, R)`` ``1 / (|h_t| + 1e-6)``.
    """

    weights: torch.Tensor
    x: torch.Tensor
    wg: torch.Tensor
    inv_norm: torch.Tensor

    def profile(self, rows: torch.Tensor) -> torch.Tensor:
        """``(B, r)`` the unit profile at row ``rows[b]`` of each observation ``b``."""
        index = torch.arange(rows.shape[0], device=rows.device)
        w = self.weights[index, rows]  # (B, H)
        h = torch.bmm(w.unsqueeze(1), self.x).squeeze(1)  # (B, 1, H) @ (B, H, r) -> (B, r)
        return h * self.inv_norm[index, rows].unsqueeze(1)  # (B, r)


class ClickTargets(NamedTuple):
    """Which impressions the click loss predicts, and from which state row.

    Attributes:
        position: ``(B, M)`` history position of each target (None: every position, ``M = H``).
        context: ``(B, M)`` the state row summarising the impressions before the target.
        ok: ``(B, M)`` True for a real target.
        rank: ``(B, M)`` how many real impressions came after the target (0 = the newest).
    """

    position: torch.Tensor | None
    context: torch.Tensor
    ok: torch.Tensor
    rank: torch.Tensor


class EncodedHistory(NamedTuple):
    """The causal encoder's output for a batch of histories (token 0 = start, 1..H = history).

    The full encoder keeps a state for every token (``R = H + 1`` rows, row ``t`` = token
    ``t``); a partial one only for the ``R`` newest real tokens, newest first (row 0 is the
    query; tokens beyond the history's start are the start token).

    Attributes:
        states: ``(B, R, d)`` the state after each row's token: the start token's is the
            empty-history state; history token ``i``'s summarises impressions up to ``i``.
        match: the content match's profile weights at the same rows (None without it), see
            :class:`MatchState`.
        query: ``(B,)`` the row whose state scores the next recommendation (the newest real
            impression, or the start token for an empty history).
        targets: the impressions the click loss can predict from these rows.
        attentions: per layer ``(B, heads, R, H + 1)`` attention weights (empty unless asked
            for).
        history_items: ``(B, H, d)`` item tower vectors of the history's items.
        carry: ``(B, R)`` the carry-over at each row (None without ``carryover``).
    """

    states: torch.Tensor
    match: MatchState | None
    query: torch.Tensor
    targets: ClickTargets
    attentions: tuple[torch.Tensor, ...]
    history_items: torch.Tensor
    carry: torch.Tensor | None = None

    def query_states(self) -> torch.Tensor:
        """``(B, d)`` the state at the query token: the user state ``u``."""
        return self.states[torch.arange(self.states.shape[0], device=self.query.device), self.query]

    def query_profiles(self) -> torch.Tensor | None:
        """``(B, r)`` the unit content-match profile at the query token."""
        return None if self.match is None else self.match.profile(self.query)


class ParsedObservation(NamedTuple):
    """The parts of a batch of observations, as tensors."""

    item_ids: torch.Tensor  # (B, H) long
    feedback: torch.Tensor  # (B, H) float
    mask: torch.Tensor  # (B, H) bool, True for a real impression
    progress: torch.Tensor  # (B,) float
    clock: torch.Tensor  # (B,) float

    def checked_item_ids(self, num_items: int, what: str = "the item table") -> torch.Tensor:
        """``(B, H)`` the history's item ids with padding as item 0, each checked to be in
        ``[0, num_items)``; the error asks whether ``what`` is for this catalog."""
        ids = self.item_ids.masked_fill(~self.mask, 0)  # padding is masked anyway
        if ids.numel():
            low, high = (int(v) for v in torch.aminmax(ids))
            if low < 0 or high >= num_items:
                raise ValueError(
                    f"observed item ids must be in [0, {num_items - 1}] "
                    f"(got {low}..{high}); is {what} for this catalog?"
                )
        return ids


def parse_observation(
    obs: torch.Tensor | Mapping[str, torch.Tensor], history_len: int
) -> ParsedObservation:
    """Split flat ``(B, 3H+2)`` observations (or the ``"dict"`` variant) into typed parts.

    The column layout is :class:`driftrec.envs.observation.ObservationLayout`: item ids, feedback,
    mask (``> 0.5`` means a real impression), progress, clock.

    Args:
        obs: A ``(B, 3H+2)`` tensor, or a mapping with the keys ``item_ids``, ``feedback``,
            ``mask`` (each ``(B, H)``), ``progress`` and ``clock`` (each ``(B, 1)`` or ``(B,)``).
        history_len: ``H``.

    Returns:
        The parsed parts.

    Raises:
        ValueError: When the shape does not match the layout.
    """
    h = history_len
    if isinstance(obs, Mapping):
        ids, fb, mask = obs["item_ids"], obs["feedback"], obs["mask"]
        if ids.ndim != 2 or ids.shape[1] != h:
            raise ValueError(
                f"dict observation 'item_ids' must have shape (batch, {h}) (got {tuple(ids.shape)})"
            )
        progress = obs["progress"].reshape(ids.shape[0])  # (B,)
        clock = obs["clock"].reshape(ids.shape[0]) * CLOCK_SCALE  # (B,) global steps
    else:
        layout = ObservationLayout(history_len=h, num_items=1)
        if obs.ndim != 2 or obs.shape[1] != layout.size:
            raise ValueError(
                f"observations must have shape (batch, {layout.size}) = (batch, 3 * history_len "
                f"+ 2) for history_len={h} (got {tuple(obs.shape)})"
            )
        ids = obs[:, layout.item_ids]  # (B, H)
        fb = obs[:, layout.feedback]  # (B, H)
        mask = obs[:, layout.mask]  # (B, H)
        progress = obs[:, layout.progress]  # (B,)
        clock = obs[:, layout.clock] * CLOCK_SCALE  # (B,) global steps
    return ParsedObservation(
        item_ids=ids.round().long(),
        feedback=fb.float(),
        mask=mask > 0.5,
        progress=progress.float(),
        clock=clock.float(),
    )


# --------------------------------------------------------------------------------------------
# transformer layers
# --------------------------------------------------------------------------------------------
def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))  # log(exp(y) - 1), stable for small and large y


class RecencySelfAttention(nn.Module):
    """Multi-head self-attention with a learned linear recency bias per head."""

    def __init__(self, config: AttentionConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.qkv = nn.Linear(config.embed_dim, 3 * config.embed_dim)
        self.out = nn.Linear(config.embed_dim, config.embed_dim)
        self.attn_dropout = nn.Dropout(config.dropout)
        if config.recency_bias:
            # ALiBi-like geometric start: softplus(slope_h) = 2 ** (-8 (h + 1) / heads)
            start = 2.0 ** (-8.0 * torch.arange(1, config.num_heads + 1) / config.num_heads)
            self.recency_slope = nn.Parameter(_inverse_softplus(start))  # (heads,)
        else:
            self.register_parameter("recency_slope", None)

    def forward(
        self,
        x: torch.Tensor,
        allowed: torch.Tensor,
        distance: torch.Tensor,
        need_weights: bool = True,
        rows: torch.Tensor | None = None,
        tokens: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend.

        Args:
            x: ``(B, T, d)`` normalised token states.
            allowed: ``(B, R, T)`` bool, ``[b, i, j]`` True when query ``i`` may attend to key
                ``j`` (padding and the future are never attended to).
            distance: ``(B, R, T)`` float recency distance from query ``i`` back to key ``j``.
            need_weights: Also return the attention weights.
            rows: ``(B, R)`` the tokens that query (None: every token, ``R = T``); keys and
                values are always every token's.
            tokens: ``(B, T)`` with ``rows``: ``x`` is then a table ``(M, d)`` of distinct
                token states and the sequences are ``x[tokens]``; the projections run once
                per table row instead of once per token.

        Returns:
            The ``(B, R, d)`` output and the ``(B, heads, R, T)`` attention weights (before
            dropout; every row sums to 1), or None for the weights without ``need_weights``.
        """
        heads, dh = self.num_heads, self.head_dim
        if tokens is not None:
            if rows is None:
                raise ValueError("'tokens' needs 'rows'")
            (b, t), (r, d) = tokens.shape, (rows.shape[1], x.shape[1])
            w, bias = self.qkv.weight, self.qkv.bias  # (3d, d), (3d,)
            xr = x.index_select(0, tokens.gather(1, rows).reshape(-1)).view(b, r, d)
            queries = F.linear(xr, w[:d], bias[:d]).view(b, r, heads, dh).unbind(2)
            kv = F.linear(x, w[d:], bias[d:])  # (M, 2d) once per distinct token
            keys = kv.index_select(0, tokens.reshape(-1)).view(b, t, 2 * heads, dh).unbind(2)
            return self._attend(queries, keys, allowed, distance, need_weights)
        b, t, d = x.shape
        # one head at a time on strided views of the projections: no permuted copies of q, k,
        # v (or of their gradients), and the bias, the mask and the scale enter the logits in
        # one baddbmm
        if rows is None:
            parts = self.qkv(x).view(b, t, 3 * heads, dh).unbind(2)  # 3 * heads x (B, T, dh)
            queries, keys = parts[:heads], parts[heads:]
        else:
            r = rows.shape[1]
            xr = _take_rows(x, rows)  # (B, R, d)
            w, bias = self.qkv.weight, self.qkv.bias  # (3d, d), (3d,)
            queries = F.linear(xr, w[:d], bias[:d]).view(b, r, heads, dh).unbind(2)
            keys = F.linear(x, w[d:], bias[d:]).view(b, t, 2 * heads, dh).unbind(2)
        return self._attend(queries, keys, allowed, distance, need_weights)

    def _attend(
        self,
        queries: tuple[torch.Tensor, ...],
        keys: tuple[torch.Tensor, ...],
        allowed: torch.Tensor,
        distance: torch.Tensor,
        need_weights: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The heads' attention from the per-head queries ``(B, R, dh)`` and keys then values
        ``(B, T, dh)``; see :meth:`forward`."""
        heads, dh = self.num_heads, self.head_dim
        dtype, device = queries[0].dtype, queries[0].device
        # keys not allowed get finfo.min, hence exactly 0 weight
        masked = torch.zeros(allowed.shape, dtype=dtype, device=device)  # (B, R, T)
        masked.masked_fill_(~allowed, torch.finfo(dtype).min)
        slope = None if self.recency_slope is None else F.softplus(self.recency_slope)
        mixed, weights = [], []
        for i in range(heads):
            q, k, v = queries[i], keys[i], keys[heads + i]  # (B, R, dh), (B, T, dh), (B, T, dh)
            bias_i = masked if slope is None else torch.addcmul(masked, distance, -slope[i])
            logits = torch.baddbmm(bias_i, q, k.transpose(1, 2), alpha=1.0 / math.sqrt(dh))
            head_weights = logits.softmax(dim=-1)  # (B, R, T)
            mixed.append(torch.bmm(self.attn_dropout(head_weights), v))  # (B, R, dh)
            weights.append(head_weights)
        out = self.out(torch.cat(mixed, dim=-1))  # (B, R, d)
        return out, (torch.stack(weights, dim=1) if need_weights else None)


class TransformerBlock(nn.Module):
    """Pre-LN block: ``x + attn(LN(x))``, then ``x + MLP(LN(x))``."""

    def __init__(self, config: AttentionConfig) -> None:
        super().__init__()
        d, eps = config.embed_dim, config.layer_norm_eps
        self.ln_attn = nn.LayerNorm(d, eps=eps)
        self.attn = RecencySelfAttention(config)
        self.ln_mlp = nn.LayerNorm(d, eps=eps)
        self.mlp = nn.Sequential(
            nn.Linear(d, config.ff_dim),
            nn.GELU(),
            nn.Linear(config.ff_dim, d),
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        allowed: torch.Tensor,
        distance: torch.Tensor,
        need_weights: bool = True,
        rows: torch.Tensor | None = None,
        tokens: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Apply the block to ``(B, T, d)`` states; returns the new states ``(B, R, d)`` of the
        ``rows`` tokens (every token without ``rows``) and the attention weights (None without
        ``need_weights``); ``allowed``, ``distance``, ``rows`` and ``tokens`` (``x`` is then a
        table ``(M, d)``) as in :meth:`RecencySelfAttention.forward`."""
        normed = self.ln_attn(x)  # LayerNorm is per row: once per table row with ``tokens``
        attended, weights = self.attn(normed, allowed, distance, need_weights, rows, tokens)
        if tokens is not None:
            b, r = rows.shape  # type: ignore[union-attr]
            x = x.index_select(0, tokens.gather(1, rows).reshape(-1)).view(b, r, -1)  # (B, R, d)
        elif rows is not None:
            x = _take_rows(x, rows)  # (B, R, d)
        x = x + self.dropout(attended)  # (B, R, d)
        x = x + self.dropout(self.mlp(self.ln_mlp(x)))  # (B, R, d)
        return x, weights


# --------------------------------------------------------------------------------------------
# the recommender
# --------------------------------------------------------------------------------------------
class AttentionRecommender(nn.Module):
    """Scores every catalog item for each observation from the user's recent history.

    Args:
        config: The hyper-parameters.
        item_embeddings: ``(N, E)`` frozen item-text embeddings (numpy or torch, floating).
        release_step: ``(N,)`` integer global step at which each item appears; ``None`` means
            every item is always available.

    Raises:
        ValueError: On a malformed item table or release vector.
    """

    def __init__(
        self,
        config: AttentionConfig,
        item_embeddings: np.ndarray | torch.Tensor,
        release_step: np.ndarray | torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(config, AttentionConfig):
            raise TypeError(f"'config' must be an AttentionConfig (got {type(config).__name__})")
        self.config = config
        table, release = _check_item_table(item_embeddings, release_step)
        n, e = table.shape
        d = config.embed_dim
        self.text_dim = e

        # item tower
        self.item_proj = nn.Linear(e, d, bias=False)
        self.id_embedding = nn.Embedding(n, d) if config.use_id_embeddings else None
        # history tokens
        self.feedback_proj = nn.Linear(1, d)
        self.user_token = nn.Parameter(torch.zeros(d))
        self.embed_dropout = nn.Dropout(config.dropout)
        # encoder
        self.layers = nn.ModuleList(TransformerBlock(config) for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        # scores: item prior, content match, policy scale, click offset
        self.item_prior = nn.Parameter(torch.zeros(n)) if config.item_bias else None
        if config.content_match:
            self.match_decay_logit = nn.Parameter(torch.zeros(()))
            self.match_skip_raw = nn.Parameter(torch.zeros(()))
            self.match_weight_raw = nn.Parameter(torch.zeros(()))
        if config.content_match and config.match_attention:
            self.match_query_logit = nn.Parameter(torch.zeros(()))
            self.match_sharpness_raw = nn.Parameter(torch.zeros(()))
        self.score_scale_raw = nn.Parameter(torch.zeros(()), requires_grad=config.learn_score_scale)
        if config.carryover:  # see AttentionConfig.carryover
            self.carry_effect = nn.Parameter(torch.zeros(n))
            self.carry_decay_logit = nn.Parameter(torch.zeros(()))
        else:
            self.register_parameter("carry_effect", None)
            self.register_parameter("carry_decay_logit", None)
        if config.policy_tilt:  # policy-only terms (see AttentionConfig.policy_tilt)
            self.prior_weight = nn.Parameter(torch.ones(()))
            self.item_tilt = nn.Parameter(torch.zeros(n))
        else:
            self.register_parameter("prior_weight", None)
            self.register_parameter("item_tilt", None)
        if config.policy_tilt and config.carryover:
            self.horizon_weight = nn.Parameter(torch.zeros(()))
        else:
            self.register_parameter("horizon_weight", None)
        self.click_offset = nn.Parameter(torch.zeros(()))

        self.register_buffer("item_table", table, persistent=False)  # (N, E)
        self.register_buffer("release_step", release, persistent=False)  # (N,)
        self.register_buffer("match_table", _match_table(table, config), persistent=False)
        self.register_buffer("text_basis", _text_basis(self.match_table), persistent=False)
        self._caches: dict[str, tuple[tuple[Any, ...], torch.Tensor]] = {}  # no-grad tables
        self._released_at: int | None = None  # max(release_step), cached
        self.reset_parameters()

    # ---------------------------------------------------------------------------------- setup
    def reset_parameters(self) -> None:
        """Initialise the weights (``transformers`` style; id embeddings start at zero)."""
        std = self.config.init_std
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.user_token, std=std)
        if self.id_embedding is not None:
            nn.init.zeros_(self.id_embedding.weight)
        cfg = self.config
        with torch.no_grad():
            if self.item_prior is not None:
                self.item_prior.zero_()
            if cfg.content_match:
                self.match_decay_logit.fill_(math.log(cfg.match_decay / (1.0 - cfg.match_decay)))
                self.match_skip_raw.copy_(_inverse_softplus(torch.tensor(cfg.match_skip_weight)))
                self.match_weight_raw.copy_(_inverse_softplus(torch.tensor(cfg.match_weight)))
            if cfg.content_match and cfg.match_attention:
                q = cfg.match_query_decay
                self.match_query_logit.fill_(math.log(q / (1.0 - q)))
                self.match_sharpness_raw.copy_(_inverse_softplus(torch.tensor(cfg.match_sharpness)))
            self.score_scale_raw.copy_(_inverse_softplus(torch.tensor(1.0 / cfg.score_temperature)))
            self.click_offset.fill_(-1.0)  # sigmoid(-1) = 0.27, about a typical click rate
            if self.item_tilt is not None:
                self.prior_weight.fill_(1.0)
                self.item_tilt.zero_()
            if self.carry_effect is not None:
                self.carry_effect.zero_()
                g = cfg.carryover_decay
                self.carry_decay_logit.fill_(math.log(g / (1.0 - g)))
            if self.horizon_weight is not None:
                self.horizon_weight.fill_(cfg.carryover_horizon)
        for layer in self.layers:
            attn = layer.attn
            if attn.recency_slope is not None:
                heads = self.config.num_heads
                start = 2.0 ** (-8.0 * torch.arange(1, heads + 1) / heads)
                with torch.no_grad():
                    attn.recency_slope.copy_(_inverse_softplus(start))
        self._caches = {}

    def set_item_table(
        self,
        item_embeddings: np.ndarray | torch.Tensor,
        release_step: np.ndarray | torch.Tensor | None = None,
    ) -> None:
        """Swap in a catalog's item embeddings and release steps (e.g. after loading weights).

        Args:
            item_embeddings: ``(N, E)`` with the same ``E`` as at construction. ``N`` may change
                only when ``use_id_embeddings`` is False.
            release_step: ``(N,)`` integer release steps; ``None`` means all released.

        Raises:
            ValueError: On a different ``E``, or a different ``N`` with id embeddings.
        """
        table, release = _check_item_table(item_embeddings, release_step)
        n, e = table.shape
        if e != self.text_dim:
            raise ValueError(
                f"item embeddings must have width {self.text_dim} like at construction (got {e})"
            )
        if self.id_embedding is not None and n != self.id_embedding.num_embeddings:
            raise ValueError(
                f"with use_id_embeddings=True the catalog size is fixed at "
                f"{self.id_embedding.num_embeddings} items (got {n})"
            )
        if self.item_prior is not None and n != self.item_prior.shape[0]:
            raise ValueError(
                f"with item_bias=True the catalog size is fixed at {self.item_prior.shape[0]} "
                f"items (got {n})"
            )
        for name in ("item_tilt", "carry_effect"):
            param = getattr(self, name)
            if param is not None and n != param.shape[0]:
                raise ValueError(
                    f"with {'policy_tilt' if name == 'item_tilt' else 'carryover'}=True the "
                    f"catalog size is fixed at {param.shape[0]} items (got {n})"
                )
        ref = self.item_proj.weight
        self.item_table = table.to(device=ref.device, dtype=ref.dtype)
        self.release_step = release.to(device=ref.device)
        self.match_table = _match_table(table, self.config).to(device=ref.device, dtype=ref.dtype)
        self.text_basis = _text_basis(self.match_table)
        self._caches = {}
        self._released_at = None

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> AttentionRecommender:
        self._caches = {}  # .to() / .float() / .cuda() move or convert the tables
        self._released_at = None
        return super()._apply(fn, *args, **kwargs)

    @property
    def num_items(self) -> int:
        """Catalog size ``N``."""
        return int(self.item_table.shape[0])

    def extra_repr(self) -> str:
        return f"num_items={self.num_items}, text_dim={self.text_dim}"

    # ---------------------------------------------------------------------------- item tower
    def _embed_items(self, ids: torch.Tensor | None) -> torch.Tensor:
        """Item tower for the given ids (``(...,)`` long) or, with ``None``, for all items."""
        if ids is None:
            vectors = self.item_proj(self.item_table)  # (N, d)
            if self.id_embedding is not None:
                vectors = vectors + self.id_embedding.weight  # (N, d)
            return vectors
        vectors = self.item_proj(self.item_table[ids])  # (..., d)
        if self.id_embedding is not None:
            vectors = vectors + self.id_embedding(ids)  # (..., d)
        return vectors

    def item_vectors(self) -> torch.Tensor:
        """The projected item table ``(N, d)``.

        With gradients disabled the result is cached until the item table, the projection or the
        id embeddings change (parameter versions are checked on every call). A write that does
        not bump a tensor's version counter is not seen: torch's fused optimizers
        (``Adam(..., fused=True)``) and writes through ``.data``; call :meth:`clear_caches`
        after such a step (the SB3 policies do it after every step of their optimizer).
        """
        if torch.is_grad_enabled():
            return self._embed_items(None)
        return self._cached("items", self._item_tensors(), lambda: self._embed_items(None))

    def clear_caches(self) -> None:
        """Drop the tables cached for acting without gradients (they are rebuilt on next use)."""
        self._caches = {}

    def _item_tensors(self) -> list[torch.Tensor]:
        """What the projected item table depends on."""
        tensors = [self.item_proj.weight, self.item_table]
        if self.id_embedding is not None:
            tensors.append(self.id_embedding.weight)
        return tensors

    def _cached(
        self, name: str, tensors: list[torch.Tensor], build: Callable[[], torch.Tensor]
    ) -> torch.Tensor:
        """``build()``, reused (without gradients) until one of ``tensors`` changes: their
        identity, storage and version counters are checked on every call."""
        key = tuple((id(t), t.data_ptr(), t._version) for t in tensors)
        hit = self._caches.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = build()
        self._caches[name] = (key, value)
        return value

    # ---------------------------------------------------------------------------- user tower
    def user_vectors(
        self,
        obs: torch.Tensor | Mapping[str, torch.Tensor],
        output_attentions: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """The user state ``u`` for each observation.

        Args:
            obs: ``(B, 3H+2)`` observations (or the dict variant).
            output_attentions: Also return the per-layer attention weights.

        Returns:
            ``(B, d)``, or ``((B, d), attentions)`` with ``output_attentions=True``.
        """
        parsed = parse_observation(obs, self.config.history_len)
        rows = None if output_attentions else 1  # the query row is the user state
        enc = self._encode(
            parsed, need_attentions=output_attentions, need_match=False, num_rows=rows
        )
        user = enc.query_states()
        return (user, enc.attentions) if output_attentions else user

    def _encode(
        self,
        parsed: ParsedObservation,
        items: torch.Tensor | None = None,
        need_attentions: bool = False,
        need_match: bool = True,
        num_rows: int | None = None,
    ) -> EncodedHistory:
        """Run the causal encoder (see :class:`EncodedHistory`).

        Without ``num_rows`` every token gets a state (the click loss can then predict every
        impression). With ``num_rows = R`` only the ``R`` newest real tokens do (newest first,
        the start token filling in for short histories): every layer but the last runs over
        all prefixes, the last computes keys and values for every token but its attention,
        MLP and final LayerNorm only for those rows, and the content-match weights likewise.
        The same arithmetic for those rows, in a fraction of the work: ``R = 1`` is the acting
        path (the query alone), ``R = k + 1`` serves a click loss on the ``k`` newest
        impressions. ``attentions`` is empty unless ``need_attentions``; ``match`` is None
        without ``need_match`` (or without content match).
        """
        feedback, valid = parsed.feedback, parsed.mask  # each (B, H)
        b, h = valid.shape
        ids = parsed.checked_item_ids(self.num_items)  # (B, H)
        dtype = self.item_proj.weight.dtype
        if items is None:
            items = self._embed_items(None)  # (N, d): cheaper than B * H rows for N < B * H
        history_items = items[ids]  # (B, H, d)
        tokens = None
        if num_rows is not None and len(self.layers) == 1:
            tokens = self._token_index(ids, feedback, valid, items.shape[0])  # (B, T) or None
        if tokens is None:
            x = self._tokens(history_items, feedback)  # (B, T = H + 1, d)
        else:  # the distinct tokens: [item + no click; item + click; start] (2N + 1, d)
            x = self._token_table(items)
        index = torch.arange(1, h + 1, device=ids.device).expand(b, h) * valid  # (B, H)
        recency = _recency(valid)  # (B, H) real impressions after each position
        allowed = distance = rows = None
        if num_rows is None or len(self.layers) > 1:
            allowed, distance = _causal_geometry(valid, dtype)  # (B, T, T) each
        if num_rows is None:
            # for each history position the newest real token before it (0 = start): the
            # context its click is predicted from; the query is the newest real token
            upto = index.cummax(dim=1).values  # (B, H) newest real token at or before each
            before = torch.cat([upto.new_zeros(b, 1), upto[:, :-1]], dim=1)  # (B, H)
            query = upto[:, -1]  # (B,)
            targets = ClickTargets(position=None, context=before, ok=valid, rank=recency)
            row_allowed, row_distance = allowed, distance
        else:
            _check_int("num_rows", num_rows, 1)
            rows = _newest_tokens(index, num_rows)  # (B, R) newest first, 0 = start
            query = rows.new_zeros(b)  # row 0
            k = rows.shape[1] - 1  # row j + 1 is the context of the target at row j
            targets = ClickTargets(
                position=(rows[:, :k] - 1).clamp_min(0),
                context=torch.arange(1, k + 1, device=ids.device).expand(b, k),
                ok=rows[:, :k] > 0,
                rank=torch.arange(k, device=ids.device).expand(b, k),
            )
            row_allowed, row_distance = _row_geometry(valid, recency, rows, dtype)  # (B, R, T)

        attentions = []
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i < last or num_rows is None:
                x, weights = layer(x, allowed, distance, need_attentions)  # (B, T, d)
            else:
                x, weights = layer(x, row_allowed, row_distance, need_attentions, rows, tokens)
            if weights is not None:
                attentions.append(weights)  # (B, heads, R, T)
        states = self.final_norm(x)  # (B, R, d)
        if self.config.zero_start_state:  # an empty history carries no topic preference
            start = (rows == 0) if rows is not None else None
            if start is None:
                states[:, 0].zero_()  # (LayerNorm's backward does not need its output)
            else:
                states = states.masked_fill(start.unsqueeze(-1), 0.0)
        match = None
        if need_match:
            match = self._match(ids, feedback, valid, row_allowed[:, :, 1:], row_distance[:, :, 1:])
        return EncodedHistory(
            states=states,
            match=match,
            query=query,
            targets=targets,
            attentions=tuple(attentions),
            history_items=history_items,
            carry=self._carry(ids, feedback, row_allowed, row_distance),
        )

    def _carry(
        self,
        ids: torch.Tensor,
        feedback: torch.Tensor,
        allowed: torch.Tensor,
        distance: torch.Tensor,
    ) -> torch.Tensor | None:
        """``(B, R)`` carry-over at every row's token: ``sum_k g**dist y_k e_{a_k}`` over the
        clicked impressions ``k`` up to the token (0 at the start); None without ``carryover``."""
        if self.carry_effect is None:
            return None
        effect = self.carry_effects()  # (N,)
        y = feedback.to(effect.dtype).clamp(0.0, 1.0)  # (B, H)
        g = torch.sigmoid(self.carry_decay_logit)
        seen = allowed[:, :, 1:].to(effect.dtype)  # (B, R, H) k <= t and k real
        weights = seen * g ** distance[:, :, 1:]  # (B, R, H)
        clicked = y * F.embedding(ids, effect.unsqueeze(1)).squeeze(-1)  # (B, H) y_k e_{a_k}
        return (weights @ clicked.unsqueeze(-1)).squeeze(-1)  # (B, R, H) @ (B, H, 1) -> (B, R)

    def carryover(self, obs: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``(B,)`` the carry-over of each observation's history (what its clicks add to the
        next click logit); zeros without ``carryover``."""
        parsed = parse_observation(obs, self.config.history_len)
        if self.carry_effect is None:
            return parsed.progress.new_zeros(parsed.progress.shape)
        enc = self._encode(parsed)
        return enc.carry.gather(1, enc.query.unsqueeze(1)).squeeze(1)  # type: ignore[union-attr]

    def _token_index(
        self, ids: torch.Tensor, feedback: torch.Tensor, valid: torch.Tensor, num_items: int
    ) -> torch.Tensor | None:
        """``(B, T)`` each token's row in :meth:`_token_table`, or None when that table does
        not hold them (feedback other than 0 or 1 on a real impression, or token dropout).

        A token is its item's vector plus the feedback's projection, so with click feedback
        there are only ``2N + 1`` distinct tokens; LayerNorm and the key, value and query
        projections are per token, so a one-layer encoder computes them once per distinct
        token (what padding holds does not matter: it is never attended to)."""
        if self.training and self.config.dropout > 0:
            return None
        click = feedback == 1.0  # (B, H)
        if not bool(((feedback == 0.0) | click | ~valid).all()):
            return None
        row = ids + click.to(ids.dtype) * num_items  # (B, H)
        start = row.new_full((row.shape[0], 1), 2 * num_items)  # (B, 1)
        return torch.cat([start, row], dim=1)  # (B, T)

    def _token_table(self, items: torch.Tensor) -> torch.Tensor:
        """``(2N + 1, d)`` every token :meth:`_tokens` can make from click feedback: each item
        with feedback 0, then with feedback 1, then the start token (the same arithmetic)."""
        fb = torch.tensor([[0.0], [1.0]], dtype=items.dtype, device=items.device)  # (2, 1)
        proj = self.feedback_proj(fb)  # (2, d)
        table = (items.unsqueeze(0) + proj.unsqueeze(1)).reshape(-1, items.shape[1])  # (2N, d)
        return torch.cat([table, self.user_token.unsqueeze(0).to(items.dtype)], dim=0)

    def _tokens(self, history_items: torch.Tensor, feedback: torch.Tensor) -> torch.Tensor:
        """``(B, T, d)`` the encoder's input: the start token, then item + feedback tokens."""
        fb = feedback.to(history_items.dtype).unsqueeze(-1)  # (B, H, 1)
        tokens = history_items + self.feedback_proj(fb)  # (B, H, d)
        start = self.user_token.expand(tokens.shape[0], 1, -1)  # (B, 1, d)
        return self.embed_dropout(torch.cat([start, tokens], dim=1))  # (B, T = H + 1, d)

    def _match(
        self,
        ids: torch.Tensor,
        feedback: torch.Tensor,
        valid: torch.Tensor,
        seen: torch.Tensor,
        dist: torch.Tensor,
    ) -> MatchState | None:
        """The content-match profile weights at some tokens (None without content match).

        ``seen`` ``(B, T', H)`` says which impressions each of the ``T'`` tokens sees (``k``
        real and at or before it) and ``dist`` ``(B, T', H)`` how far back each is (recency
        distance); the full encoder passes every token, the acting path only the query.
        """
        if not self.config.content_match:
            return None
        x = F.embedding(ids, self.match_table)  # (B, H, r); a plain gather, faster than [ids]
        gram = x @ x.transpose(1, 2)  # (B, H, H) <x_j, x_k>; no gradient (a frozen table)
        weights = self._match_weights(gram, feedback, valid, seen, dist)  # (B, T', H)
        wg = weights @ gram  # (B, T', H) @ (B, H, H): <h_t, x_k>
        sq_norm = (wg * weights).sum(-1)  # (B, T') |h_t|^2
        inv_norm = 1.0 / (sq_norm.clamp_min(1e-24).sqrt() + 1e-6)  # (B, T')
        return MatchState(weights=weights, x=x, wg=wg, inv_norm=inv_norm)

    def _match_weights(
        self,
        gram: torch.Tensor,
        feedback: torch.Tensor,
        valid: torch.Tensor,
        seen: torch.Tensor,
        dist: torch.Tensor,
    ) -> torch.Tensor:
        """``(B, T', H)`` signed weight of impression ``k`` in the profile at token ``t``, from
        the Gram matrix ``(B, H, H)`` of the history's reduced text embeddings (``seen`` and
        ``dist`` as in :meth:`_match`)."""
        dtype = gram.dtype
        y = feedback.to(dtype).clamp(0.0, 1.0)  # (B, H)
        skip = F.softplus(self.match_skip_raw)
        sign = valid.to(dtype) * (y - skip * (1.0 - y))  # (B, H)
        signed = seen.to(dtype) * sign.unsqueeze(1)  # (B, T', H) 0 unless k <= t
        # weight of impression k in the profile at token t: gamma ** (r_k - r_t), k <= t
        log_w = dist * F.logsigmoid(self.match_decay_logit)  # (B, T, H) log gamma ** dist
        if self.config.match_attention:
            # short-term profile q_t = sum_k fast ** dist s_k x_k; <q_t, x_k> via the Gram matrix
            wq = signed * (dist * F.logsigmoid(self.match_query_logit)).exp()  # (B, T, H)
            qx = wq @ gram  # (B, T, H) <q_t, x_k> before normalising q
            q_norm = (qx * wq).sum(-1, keepdim=True).clamp_min(1e-12).sqrt()  # (B, T, 1)
            side = valid.to(dtype) * (2.0 * y - 1.0)  # (B, H) +1 click, -1 skip
            agree = qx / (q_norm + 1e-6) * side.unsqueeze(1)  # (B, T, H) in [-1, 1]
            log_w = log_w + F.softplus(self.match_sharpness_raw) * (agree - 1.0)
        return signed * log_w.exp()  # (B, T, H)

    def match_attention(self, obs: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``(B, H)`` how much each history impression counts in the content-match profile
        that scores the next recommendation: ``|weight|``, normalised to sum 1 over the history
        (observation order; padding and an empty history get 0).

        With ``match_attention`` these weights are dynamic (recency times agreement with the
        short-term profile); without it they are the fixed recency decay.

        Raises:
            ValueError: without ``content_match``.
        """
        if not self.config.content_match:
            raise ValueError("match_attention needs content_match=True")
        parsed = parse_observation(obs, self.config.history_len)
        ids, feedback, valid = parsed.item_ids, parsed.feedback, parsed.mask  # each (B, H)
        b, h = ids.shape
        ids = ids.masked_fill(~valid, 0)
        allowed, distance = _causal_geometry(valid, self.match_table.dtype)
        x = F.embedding(ids, self.match_table)  # (B, H, r)
        gram = x @ x.transpose(1, 2)  # (B, H, H)
        weights = self._match_weights(
            gram, feedback, valid, allowed[:, :, 1:], distance[:, :, 1:]
        )  # (B, T, H)
        index = torch.arange(1, h + 1, device=ids.device).expand(b, h) * valid  # (B, H)
        query = index.max(dim=1).values  # (B,) newest real token (0: empty history)
        row = weights[torch.arange(b, device=ids.device), query].abs()  # (B, H)
        total = row.sum(dim=1, keepdim=True)
        return torch.where(total > 0, row / total.clamp_min(1e-12), torch.zeros_like(row))

    # ---------------------------------------------------------------------------------- forward
    def forward(
        self,
        obs: torch.Tensor | Mapping[str, torch.Tensor],
        output_attentions: bool = False,
        output_encoding: bool = False,
        click_targets: int | None = None,
    ) -> RecommenderOutput:
        """Score every item for each observation.

        Only the newest token's state scores the catalog, so by default the encoder computes
        that row alone (:meth:`_encode` with one row); the other prefixes' states are computed
        when the encoding or the attention weights are asked for.

        Args:
            obs: ``(B, 3H+2)`` flat observations (see :mod:`driftrec.envs.observation`), or the
                dict variant.
            output_attentions: Return the per-layer attention weights (every token's).
            output_encoding: Return the :class:`EncodedHistory` (for :meth:`click_loss` without
                a second pass).
            click_targets: With ``output_encoding``, the encoding serves a click loss on the
                ``click_targets`` newest impressions only (None: every impression).

        Returns:
            ``scores`` ``(B, N)`` (unreleased items at ``torch.finfo(dtype).min``), ``user_state``
            ``(B, d)`` and, when asked for, ``attentions`` and ``encoding``.
        """
        parsed = parse_observation(obs, self.config.history_len)
        items = self.item_vectors()  # (N, d)
        if output_attentions:
            rows = None
        elif output_encoding:  # the rows the click loss will need
            rows = None if click_targets is None else click_targets + 1
        else:  # the query row only
            rows = 1
        enc = self._encode(parsed, items, need_attentions=output_attentions, num_rows=rows)
        user = enc.query_states()  # (B, d)
        scores = self._policy_scores(user, enc.query_profiles(), items)  # (B, N)
        if self.item_tilt is not None:  # policy-only terms, in the same units
            scores = scores + self.score_scale() * self.policy_tilt()  # (B, N) + (N,)
        clock = parsed.clock.round().long()  # (B,)
        if self._released_at is None:  # the step from which every item is released
            self._released_at = int(self.release_step.max())
        if clock.numel() and int(clock.min()) < self._released_at:
            unreleased = self.release_step.unsqueeze(0) > clock.unsqueeze(1)  # (B, N)
            scores = scores.masked_fill(unreleased, torch.finfo(scores.dtype).min)  # (B, N)
        return RecommenderOutput(
            scores=scores,
            user_state=user,
            attentions=enc.attentions if output_attentions else None,
            encoding=(enc, parsed, items) if output_encoding else None,
        )

    def history_attention(self, obs: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``(B, H)`` how the query (the newest impression's token) attends over the history.

        Last layer, mean over heads, in observation order; padding gets 0. The remainder of
        each row (to 1) is the weight on the start token.
        """
        parsed = parse_observation(obs, self.config.history_len)
        enc = self._encode(parsed, need_attentions=True, need_match=False)
        last = enc.attentions[-1].mean(dim=1)  # (B, T, T)
        index = torch.arange(last.shape[0], device=last.device)
        rows = last[index, enc.query]  # (B, T) the query's row
        return rows[:, 1:]  # (B, H)

    # ------------------------------------------------------------------------------ scores
    def score_scale(self) -> torch.Tensor:
        """The policy's inverse temperature ``beta`` (scores = ``beta *`` click scores)."""
        return F.softplus(self.score_scale_raw)

    def prior(self) -> torch.Tensor:
        """``(N,)`` the item prior ``b`` (its text-orthogonal part with ``prior_residual``)."""
        if self.item_prior is None:
            return self.item_proj.weight.new_zeros(self.num_items)
        if not self.config.prior_residual:
            return self.item_prior
        basis = self.text_basis  # (N, r) orthonormal columns
        return self.item_prior - basis @ (basis.T @ self.item_prior)  # (N,)

    def policy_tilt(self) -> torch.Tensor:
        """``(N,)`` what the policy adds to the click scores: ``(rho - 1) b + tau`` (plus
        ``eta e / (1 - g)`` with ``carryover``; 0 without ``policy_tilt``); the logits are
        ``beta * (c + policy_tilt())``. ``b``, ``e`` and ``g`` belong to the click model and
        enter detached, so a gradient through this term trains only ``rho``, ``tau``, ``eta``."""
        if self.item_tilt is None:
            return self.item_proj.weight.new_zeros(self.num_items)
        # the click model's b and e enter detached: the RL loss tunes how much the policy
        # follows them (rho, eta), never the click model itself through this term
        tilt = (self.prior_weight - 1.0) * self.prior().detach() + self.item_tilt  # (N,)
        if self.horizon_weight is not None:
            horizon = 1.0 / (1.0 - torch.sigmoid(self.carry_decay_logit.detach()))
            tilt = tilt + self.horizon_weight * horizon * self.carry_effects().detach()  # (N,)
        return tilt

    def carry_effects(self) -> torch.Tensor:
        """``(N,)`` the carry-over ``e`` per item: its part orthogonal to the text directions
        (like the prior with ``prior_residual``): what the text says is an item's topic, and
        a click on a topic the user likes is followed by more clicks because of the topic, which
        must not pass for an item that pays off; zeros without ``carryover``."""
        if self.carry_effect is None:
            return self.item_proj.weight.new_zeros(self.num_items)
        basis = self.text_basis  # (N, r)
        return self.carry_effect - basis @ (basis.T @ self.carry_effect)  # (N,)

    def match_parameters(self) -> dict[str, float]:
        """Current ``gamma``, ``lambda`` and ``w`` of the content match (empty when off)."""
        if not self.config.content_match:
            return {}
        return {
            "decay": float(torch.sigmoid(self.match_decay_logit.detach())),
            "skip_weight": float(F.softplus(self.match_skip_raw.detach())),
            "weight": float(F.softplus(self.match_weight_raw.detach())),
        }

    def _policy_scores(
        self, user: torch.Tensor, profile: torch.Tensor | None, items: torch.Tensor
    ) -> torch.Tensor:
        """Policy scores ``beta * c`` of every item ``(B, N)``.

        ``user`` ``(B, d)`` and ``profile`` ``(B, r)`` (None without content match) describe the
        history; ``items`` is the projected item table ``(N, d)``. The scalars (``beta``,
        ``1 / sqrt(d)``, ``w``) are folded into the ``(B, .)`` side and the prior rides along
        as one more column, so the ``(B, N)`` result comes from two matrix products with no
        elementwise pass over it (and the same in the backward pass).
        """
        beta = self.score_scale()
        if not torch.is_grad_enabled():  # acting: one product with the cached item side
            left = [user * (beta / math.sqrt(self.config.embed_dim))]  # (B, d)
            if self.item_prior is not None:
                left.append(beta.expand(user.shape[0], 1))  # (B, 1)
            if profile is not None:
                left.append(profile * (F.softplus(self.match_weight_raw) * beta))  # (B, r)
            return torch.cat(left, dim=1) @ self._score_table(items, profile is not None).T
        left = [user * (beta / math.sqrt(self.config.embed_dim))]  # (B, d)
        right = [items]  # (N, d)
        if self.item_prior is not None:
            left.append(beta.expand(user.shape[0], 1))  # (B, 1)
            right.append(self.prior().unsqueeze(1))  # (N, 1)
        a = left[0] if len(left) == 1 else torch.cat(left, dim=1)  # (B, d [+ 1])
        w = right[0] if len(right) == 1 else torch.cat(right, dim=1)  # (N, d [+ 1])
        if profile is None:
            return a @ w.T  # (B, N)
        weight = F.softplus(self.match_weight_raw) * beta
        return _ScoreProduct.apply(a, w, profile * weight, self.match_table)  # (B, N)

    def _score_table(self, items: torch.Tensor, match: bool) -> torch.Tensor:
        """``(N, d [+ 1] [+ r])`` the item side of the policy scores, ``[v, b, m]`` (without
        gradients, cached while the item tower and the prior stay the same)."""
        tensors = self._item_tensors()
        if self.item_prior is not None:
            tensors.append(self.item_prior)
        tensors += [self.match_table, self.text_basis]

        def build() -> torch.Tensor:
            parts = [items]
            if self.item_prior is not None:
                parts.append(self.prior().unsqueeze(1))
            if match:
                parts.append(self.match_table)
            return torch.cat(parts, dim=1)

        return self._cached(f"scores{int(match)}", tensors, build)

    def _target_scores(
        self,
        user: torch.Tensor,
        item_vectors: torch.Tensor,
        targets: torch.Tensor,
        match: torch.Tensor | None,
    ) -> torch.Tensor:
        """Click scores ``c`` ``(...)`` of one target item per context.

        ``user`` and ``item_vectors`` ``(..., d)`` are the context's state and the target's item
        tower vector, ``targets`` ``(...)`` its id, and ``match`` ``(...)`` the cosine between the
        context's profile and the target's text (None without content match).
        """
        scores = (user * item_vectors).sum(-1) / math.sqrt(self.config.embed_dim)
        if self.item_prior is not None:
            scores = scores + self.prior()[targets]
        if match is not None:
            scores = scores + F.softplus(self.match_weight_raw) * match
        return scores

    def click_logits(
        self, obs: torch.Tensor | Mapping[str, torch.Tensor], items: torch.Tensor
    ) -> torch.Tensor:
        """The click logit ``c_i + a`` (plus the carry-over with ``carryover``) of item
        ``items[b]`` for observation ``b``, ``(B,)``."""
        parsed = parse_observation(obs, self.config.history_len)
        table = self._embed_items(None)  # (N, d)
        enc = self._encode(parsed, table)
        items = items.long()
        profile = enc.query_profiles()  # (B, r) or None
        match = None if profile is None else (profile * self.match_table[items]).sum(-1)  # (B,)
        scores = self._target_scores(enc.query_states(), table[items], items, match)
        if enc.carry is not None:  # what the earlier clicks carry over
            scores = scores + enc.carry.gather(1, enc.query.unsqueeze(1)).squeeze(1)
        return scores + self.click_offset

    def click_loss(
        self,
        obs: torch.Tensor | Mapping[str, torch.Tensor] | RecommenderOutput,
        num_targets: int | None = None,
    ) -> torch.Tensor:
        """Self-supervised click loss on the impressions the observations already show.

        Every impression ``(a, y)`` in an observation's history (or only the ``num_targets``
        newest) is predicted from the impressions *before* it, which the causal encoder has
        already summarised at the preceding token: binary cross-entropy between
        ``sigmoid(c_a + a0)`` (plus the carry-over with ``carryover``) and the feedback ``y``
        clipped to [0, 1], averaged over all such
        targets. One pass of the encoder serves the policy's scores and all ``H`` targets, and
        no reward or next observation is needed, so any batch of observations can be used.

        With ``num_targets`` only the newest tokens' states are needed, and an encoder pass
        made for it (``forward(..., output_encoding=True, click_targets=num_targets)``, or the
        one this method runs on raw observations) computes only those rows.

        Args:
            obs: observations, or the output of ``forward(obs, output_encoding=True)`` (reuses
                its encoder pass).
            num_targets: predict only the newest ``num_targets`` impressions (None: all).

        Returns:
            A scalar loss (0 when no observation has an impression).

        Raises:
            ValueError: when the given encoder pass holds fewer targets than asked for.
        """
        if num_targets is not None:
            _check_int("num_targets", num_targets, 1)
        if isinstance(obs, RecommenderOutput):
            if obs.encoding is None:
                raise ValueError("click_loss needs forward(..., output_encoding=True)")
            enc, parsed, table = obs.encoding  # the item table forward already projected
        else:
            parsed = parse_observation(obs, self.config.history_len)
            table = self._embed_items(None)  # (N, d)
            rows = None if num_targets is None else num_targets + 1
            enc = self._encode(parsed, table, num_rows=rows)
        t = enc.targets
        if (
            t.position is not None
            and (num_targets is None or num_targets > t.ok.shape[1])
            and t.ok.shape[1] < parsed.mask.shape[1]
        ):
            raise ValueError(
                f"this encoder pass serves the newest {t.ok.shape[1]} impressions, not "
                f"{'all' if num_targets is None else num_targets}; pass click_targets="
                f"{num_targets} to forward, or click_loss the observations themselves"
            )
        ok = t.ok if num_targets is None else t.ok & (t.rank < num_targets)  # (B, M)
        count = ok.sum()
        if not bool(count):
            return self.click_offset * 0.0
        # every target at once (padding is computed and then weighted 0)
        user = _take_rows(enc.states, t.context)  # (B, M, d)
        ids = parsed.item_ids.masked_fill(~parsed.mask, 0)  # (B, H)
        label = parsed.feedback.clamp(0.0, 1.0)  # (B, H)
        items = enc.history_items  # (B, H, d)
        if t.position is not None:  # the targets are some positions only
            ids, label = ids.gather(1, t.position), label.gather(1, t.position)  # (B, M)
            items = _take_rows(items, t.position)  # (B, M, d)
        match = None
        if enc.match is not None:
            # <h_c, x_p> / |h_c| for context row c and target position p: wg[b, c, p]
            wg, h = enc.match.wg, enc.match.wg.shape[-1]  # (B, R, H)
            pos = t.position if t.position is not None else torch.arange(h, device=ids.device)
            raw = wg.flatten(1).gather(1, t.context * h + pos)  # (B, M)
            match = raw * enc.match.inv_norm.gather(1, t.context)  # (B, M)
        logits = self._target_scores(user, items, ids, match) + self.click_offset  # (B, M)
        if enc.carry is not None:  # what the earlier clicks carry over
            logits = logits + enc.carry.gather(1, t.context)  # (B, M)
        loss = F.binary_cross_entropy_with_logits(logits, label.to(logits.dtype), reduction="none")
        return (loss * ok.to(loss.dtype)).sum() / count


class _ScoreProduct(torch.autograd.Function):
    """``[a, c] @ [w, m].T`` ``(B, N)`` as one matrix product, for a frozen table ``m``.

    ``a`` ``(B, k)`` and ``w`` ``(N, k)`` are trainable, ``c`` ``(B, r)`` too but ``m`` ``(N, r)``
    is not (the content-match table): the backward pass is one ``(B, N) @ (N, k + r)`` product
    for both left factors and one ``(N, B) @ (B, k)`` for ``w``, with no gradient for ``m``.
    """

    @staticmethod
    def forward(
        ctx: Any, a: torch.Tensor, w: torch.Tensor, c: torch.Tensor, m: torch.Tensor
    ) -> torch.Tensor:
        right = torch.cat([w, m], dim=1)  # (N, k + r)
        ctx.save_for_backward(a, right)
        return torch.cat([a, c], dim=1) @ right.T  # (B, k + r) @ (k + r, N)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        a, right = ctx.saved_tensors
        k = a.shape[1]
        grad_left = grad @ right  # (B, N) @ (N, k + r)
        grad_w = grad.T @ a if ctx.needs_input_grad[1] else None  # (N, B) @ (B, k)
        return grad_left[:, :k], grad_w, grad_left[:, k:], None


def mask_history_items(
    obs: torch.Tensor, scores: torch.Tensor, consumed: bool = False, rejected: int = 0
) -> torch.Tensor:
    """``scores`` ``(B, N)`` with the items that the flat observations ``obs`` ``(B, 3H + 2)``
    rule out at ``finfo.min`` (zero probability, like an unreleased item): with ``consumed``
    the items clicked in the observed history, with ``rejected = k > 0`` those it shows skipped
    at least ``k`` times and never clicked. The SB3 policies' ``mask_consumed`` /
    ``mask_rejected`` and the compressed policy's actor both act through it."""
    if not consumed and not rejected:
        return scores
    h = (obs.shape[1] - 2) // 3
    ids = obs[:, :h].long().clamp(0, scores.shape[1] - 1)  # (B, H)
    real = obs[:, 2 * h : 3 * h] > 0.5  # (B, H)
    clicked = (obs[:, h : 2 * h] > 0) & real  # (B, H)
    hit = torch.zeros_like(scores).scatter_add_(1, ids, clicked.to(scores.dtype))  # (B, N)
    banned = hit > 0 if consumed else torch.zeros_like(hit, dtype=torch.bool)
    if rejected:
        skips = torch.zeros_like(scores).scatter_add_(1, ids, (real & ~clicked).to(scores.dtype))
        banned = banned | ((skips >= rejected) & (hit == 0))
    return scores.masked_fill(banned, torch.finfo(scores.dtype).min)


def _take_rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``x[b, rows[b, j]]`` ``(B, M, d)`` from ``x`` ``(B, T, d)`` and ``rows`` ``(B, M)``: one
    ``index_select`` of whole rows (its backward an ``index_add``), faster than ``gather``."""
    b, t, d = x.shape
    offset = torch.arange(b, device=rows.device).unsqueeze(1) * t  # (B, 1)
    flat = (rows + offset).reshape(-1)  # (B * M,)
    return x.reshape(b * t, d).index_select(0, flat).view(b, rows.shape[1], d)


def _newest_tokens(index: torch.Tensor, num_rows: int) -> torch.Tensor:
    """``(B, R)`` the ``R`` newest real tokens, newest first, 0 (the start) for the rest.

    ``index`` ``(B, H)`` holds each history position's token (1..H) where real, 0 elsewhere.
    """
    b, h = index.shape
    if num_rows == 1:
        return index.amax(dim=1, keepdim=True)  # (B, 1)
    rows = index.topk(min(num_rows, h), dim=1).values  # (B, min(R, H)) descending
    if num_rows > h:
        rows = torch.cat([rows, rows.new_zeros(b, num_rows - h)], dim=1)  # (B, R)
    return rows


def _row_geometry(
    valid: torch.Tensor, recency: torch.Tensor, rows: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """``allowed`` and ``distance`` ``(B, R, T)`` of the query ``rows`` ``(B, R)``: the rows
    of :func:`_causal_geometry`'s matrices for those tokens."""
    b, h = valid.shape
    r = torch.cat([recency.new_zeros(b, 1), recency], dim=1).to(dtype)  # (B, T)
    key_ok = torch.cat([valid.new_ones(b, 1), valid], dim=1)  # (B, T)
    keys = torch.arange(h + 1, device=valid.device)  # (T,)
    allowed = key_ok.unsqueeze(1) & (keys.view(1, 1, -1) <= rows.unsqueeze(-1))  # (B, R, T)
    r_rows = r.gather(1, rows)  # (B, R)
    distance = (r.unsqueeze(1) - r_rows.unsqueeze(-1)).clamp_min(0.0)  # (B, R, T)
    distance[:, :, 0] = 0.0  # the start token carries no recency penalty
    return allowed, distance


def _causal_geometry(
    valid: torch.Tensor, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """``allowed`` and ``distance`` ``(B, T, T)`` [query, key] over ``[start; history]``.

    Token 0 is the start ("no history yet"), tokens 1..H the history, oldest first. Query ``i``
    may attend to the start and to real impressions at or before it (causal), so the state at
    token ``i`` summarises the history up to and including impression ``i``. ``distance`` is
    ``r_key - r_query`` (recency counts real impressions after a token), 0 for the start.
    """
    b, h = valid.shape
    recency = _recency(valid)  # (B, H) 0 = newest
    r = torch.cat([recency.new_zeros(b, 1), recency], dim=1).to(dtype)  # (B, T)
    key_ok = torch.cat([valid.new_ones(b, 1), valid], dim=1)  # (B, T)
    causal = torch.ones(h + 1, h + 1, dtype=torch.bool, device=valid.device).tril()  # (T, T)
    allowed = causal.unsqueeze(0) & key_ok.unsqueeze(1)  # (B, T, T) [query, key]
    distance = (r.unsqueeze(1) - r.unsqueeze(2)).clamp_min(0.0)  # (B, T, T)
    distance[:, :, 0] = 0.0  # the start token carries no recency penalty
    return allowed, distance


def _recency(valid: torch.Tensor) -> torch.Tensor:
    """``(B, H)`` real impressions after each position (0 = the newest), padding ignored."""
    valid_i = valid.to(torch.int64)
    return valid_i.flip(-1).cumsum(-1).flip(-1) - valid_i


def _match_table(table: torch.Tensor, config: AttentionConfig) -> torch.Tensor:
    """Unit rows of the item table, reduced to its top ``match_dim`` singular directions."""
    t = table.detach().float()
    if t.shape[1] > config.match_dim and t.shape[0] > config.match_dim:
        _, _, vh = torch.linalg.svd(t, full_matrices=False)  # vh: (min(N, E), E)
        t = t @ vh[: config.match_dim].T  # (N, r)
    return t / t.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _text_basis(match_table: torch.Tensor) -> torch.Tensor:
    """``(N, r)`` orthonormal basis of the column space of the reduced text table."""
    u, sv, _ = torch.linalg.svd(match_table, full_matrices=False)  # u: (N, min(N, r))
    keep = sv > sv.max() * 1e-6
    return u[:, keep].contiguous()


def _check_item_table(
    item_embeddings: np.ndarray | torch.Tensor,
    release_step: np.ndarray | torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate and convert an item table ``(N, E)`` and release steps ``(N,)`` to tensors."""
    table = torch.as_tensor(item_embeddings)
    if table.ndim != 2 or table.shape[0] < 1 or table.shape[1] < 1:
        raise ValueError(
            f"'item_embeddings' must have shape (num_items, dim) with both >= 1 "
            f"(got {tuple(table.shape)})"
        )
    if not table.is_floating_point():
        raise ValueError(f"'item_embeddings' must be floating point (got {table.dtype})")
    table = table.detach().float()
    if not torch.isfinite(table).all():
        raise ValueError("'item_embeddings' must be finite")
    n = table.shape[0]
    if release_step is None:
        release = torch.zeros(n, dtype=torch.long)
    else:
        release = torch.as_tensor(
            np.array(release_step) if isinstance(release_step, np.ndarray) else release_step
        )
        if release.shape != (n,):
            raise ValueError(
                f"'release_step' must have shape ({n},) like the item table (got "
                f"{tuple(release.shape)})"
            )
        if release.is_floating_point():
            if not torch.equal(release, release.round()):
                raise ValueError("'release_step' must hold integers")
        elif release.dtype == torch.bool or release.is_complex():
            raise ValueError(f"'release_step' must hold integers (got {release.dtype})")
        release = release.detach().long()
    return table, release.clone()
