"""A compressed attention recommender for deployment: folded tables, one query row, int8.

A trained :class:`~driftrec.agents.attention.AttentionRecommender` acts with fixed weights once
it is deployed, so most of its forward pass can be done once, ahead of time, or not at all.
Profiling the demo-size policy (1,000 items, width 32, one layer, history 20) shows where the
time goes: the encoder runs its MLP, LayerNorms and attention for *every* one of the ``H + 1``
history prefixes and the content-match profile for every prefix too (the click loss needs them
while training), yet acting reads only the newest one; and the score head is three catalog-wide
products (the personal term, the content match and the text-orthogonal prior). The compressed
module :class:`CompressedRecommender` keeps the same computation for acting and drops the rest:

* **Folded item side.** The projected item table (with id embeddings when the model has them),
  the prior ``b`` (its projection is done once), the content-match weight ``w``, the policy's
  inverse temperature ``beta`` and ``1 / sqrt(d)`` are folded into one ``Linear(d + r, N)``
  score head: ``scores = beta * c = [u, s * profile] @ W.T + beta * b`` (plus ``beta`` times
  the policy-only tilt with ``policy_tilt``; ``s = sqrt(r)`` puts
  the unit-norm profile on the same scale as the user state, which matters once activations are
  quantised; ``W``'s match columns carry ``1 / s``). The projected item table also serves the
  history tokens, so the language-model table itself (``N x 384``) is not kept.
* **One query row.** Every layer but the last runs as before; the last layer computes keys and
  values for all tokens but the query, the attention output, the MLP and the final LayerNorm for
  the newest impression's token only, and the content-match profile only at that token. For the
  query row this is the same arithmetic as the full encoder (the causal mask and the recency
  distances of that row are what the full pass uses), so the ``fold`` method (the default) is
  exact up to float rounding.
* **int8 dynamic quantisation** (``int8``): the score head (nearly all of the
  weights) becomes a ``torch.ao`` ``DynamicQuantizedLinear`` with per-item int8 weights and
  activations quantised per batch; ``scope="all"`` quantises the encoder's Linears too (slower
  at this width: see :func:`quantize_int8`). It is not the default: at the sizes most runs use
  (1,000 items) folding and the single query row give the whole speed-up and int8 adds none,
  its file is no smaller (the float weights are stored and quantised at load), and its
  rounding can change the greedy choice; it pays from about 10,000 items (BENCHMARKS.md).
* **Distillation** (``distil``): a narrower student recommender (half the width, one head,
  fewer content-match dimensions by default; :class:`DistilConfig`) is fitted to the teacher's
  action distribution (KL divergence on observations the teacher meets in its own world), then
  folded and quantised like ``int8``.

The content match's dynamic weights (``match_attention``: recency times agreement with the
short-term profile) are computed for the query token only as well. The compressed module keeps
:meth:`CompressedRecommender.match_attention` and
:meth:`CompressedRecommender.history_attention` (what the attention figure shows, chosen as
the runs choose it: :attr:`ScoreActor.attention_fn`), and returns the same
:class:`~driftrec.agents.attention.RecommenderOutput` as the full model, so :class:`ScoreActor`
acts with either (greedy: top-``k``; sampled: Gumbel top-``k``, which is
the categorical / Plackett-Luce policy the SB3 glue samples from). It is an actor only: the
value head is not kept.

Files: :func:`save_compressed` writes ``{"spec", "state_dict"}`` with ``torch.save``
atomically (the float, folded weights; int8 is applied again at load, deterministically, so the
file loads with ``weights_only=True``); :func:`load_compressed` rebuilds the module.

``torch.ao.quantization`` is deprecated in torch 2.10+ (in favour of ``torchao``) but still
ships in the pinned torch; its deprecation warnings are silenced where this module calls it.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from driftrec.agents.attention import (
    AttentionConfig,
    AttentionRecommender,
    RecommenderOutput,
    TransformerBlock,
    _recency,
    mask_history_items,
    parse_observation,
)
from driftrec.atomic import atomic_open
from driftrec.envs.config import check_int

__all__ = [
    "COMPRESS_METHODS",
    "FORMAT",
    "INT8_SCOPES",
    "CompressedRecommender",
    "DistilConfig",
    "ScoreActor",
    "compress_recommender",
    "distil_recommender",
    "fold_recommender",
    "load_compressed",
    "quantize_int8",
    "save_compressed",
]

COMPRESS_METHODS = ("fold", "int8", "distil")
"""``fold``: float32, exact (default); ``int8``: fold + int8 Linears; ``distil``: student + int8."""
FORMAT = "driftrec-compressed-recommender/1"


class CompressedRecommender(nn.Module):
    """The attention recommender's acting path with the item side folded (see the module doc).

    Build it with :func:`fold_recommender` (or :func:`compress_recommender`); the constructor
    only lays out the shapes (zeros), which :func:`load_compressed` then fills.

    Args:
        config: the source model's :class:`AttentionConfig`.
        num_items: catalog size ``N``.
        match_dim: ``r``, the width of the content-match table (0 without content match).
    """

    def __init__(self, config: AttentionConfig, num_items: int, match_dim: int) -> None:
        super().__init__()
        if not isinstance(config, AttentionConfig):
            raise TypeError(f"'config' must be an AttentionConfig (got {type(config).__name__})")
        for name, value, low in (("num_items", num_items, 1), ("match_dim", match_dim, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"'{name}' must be an integer >= {low} (got {value!r})")
        if match_dim and not config.content_match:
            raise ValueError(f"'match_dim' must be 0 without content match (got {match_dim})")
        d, eps = config.embed_dim, config.layer_norm_eps
        self.config = dataclasses.replace(config, dropout=0.0)
        self.match_dim = match_dim
        self.profile_scale = math.sqrt(match_dim) if match_dim else 1.0
        self.register_buffer("token_table", torch.zeros(num_items, d))  # (N, d) item tower
        self.register_buffer("release_step", torch.zeros(num_items, dtype=torch.long))  # (N,)
        self.feedback_proj = nn.Linear(1, d)
        self.user_token = nn.Parameter(torch.zeros(d), requires_grad=False)
        self.layers = nn.ModuleList(
            TransformerBlock(self.config) for _ in range(config.num_layers - 1)
        )
        # the last layer, for the query row only (q and kv split so q is computed once)
        self.last_ln_attn = nn.LayerNorm(d, eps=eps)
        self.last_q = nn.Linear(d, d)
        self.last_kv = nn.Linear(d, 2 * d)
        self.last_out = nn.Linear(d, d)
        self.register_buffer("recency_slope", torch.zeros(config.num_heads))  # softplus'd
        self.last_ln_mlp = nn.LayerNorm(d, eps=eps)
        self.last_mlp = nn.Sequential(
            nn.Linear(d, config.ff_dim), nn.GELU(), nn.Linear(config.ff_dim, d)
        )
        self.final_norm = nn.LayerNorm(d, eps=eps)
        # content match: the reduced text table, the profile's decay and skip weight
        self.register_buffer("match_table", torch.zeros(num_items, match_dim))  # (N, r)
        self.register_buffer("match_decay", torch.zeros(()))  # gamma
        self.register_buffer("match_skip", torch.zeros(()))  # lambda
        self.register_buffer("match_fast", torch.zeros(()))  # short-term profile's decay
        self.register_buffer("match_kappa", torch.zeros(()))  # sharpness of match_attention
        # scores = [u, s * profile] @ W.T + bias: beta, 1/sqrt(d), w and the prior folded in
        self.score_head = nn.Linear(d + match_dim, num_items)
        self.register_buffer(
            "_positions", torch.arange(1, config.history_len + 1), persistent=False
        )
        self._last_release: int | None = None  # max(release_step), cached at the first call
        self.int8_scope: str | None = None  # set by quantize_int8
        self.requires_grad_(False)
        self.eval()

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._last_release = None
        super()._load_from_state_dict(*args, **kwargs)

    @property
    def num_items(self) -> int:
        """Catalog size ``N``."""
        return int(self.token_table.shape[0])

    @property
    def quantized(self) -> bool:
        """True once :func:`quantize_int8` has replaced the Linears."""
        return not isinstance(self.score_head, nn.Linear)

    def extra_repr(self) -> str:
        return f"num_items={self.num_items}, match_dim={self.match_dim}"

    def spec(self) -> dict[str, Any]:
        """What :func:`load_compressed` needs to rebuild the layout."""
        return {
            "config": dataclasses.asdict(self.config),
            "num_items": self.num_items,
            "match_dim": self.match_dim,
        }

    # ---------------------------------------------------------------------------------- forward
    def _run(
        self, obs: torch.Tensor | Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """``(scores (B, N), user (B, d), attention (B, heads, T), match weights (B, H) or None,
        clock (B,))``."""
        cfg = self.config
        parsed = parse_observation(obs, cfg.history_len)
        ids = parsed.checked_item_ids(self.num_items, "this policy")  # (B, H)
        feedback, valid = parsed.feedback, parsed.mask  # each (B, H)
        b, h = ids.shape
        fb = feedback.unsqueeze(-1)  # (B, H, 1)
        tokens = F.embedding(ids, self.token_table) + self.feedback_proj(fb)  # (B, H, d)
        x = torch.cat([self.user_token.expand(b, 1, -1), tokens], dim=1)  # (B, T, d)
        recency = _recency(valid)  # (B, H) 0 = newest
        r = torch.cat([recency.new_zeros(b, 1), recency], dim=1).float()  # (B, T)
        key_ok = torch.cat([valid.new_ones(b, 1), valid], dim=1)  # (B, T)
        if self.layers:  # every layer but the last: all prefixes, as in the full model
            causal = torch.ones(h + 1, h + 1, dtype=torch.bool).tril()  # (T, T)
            allowed = causal.unsqueeze(0) & key_ok.unsqueeze(1)  # (B, T, T)
            distance = (r.unsqueeze(1) - r.unsqueeze(2)).clamp_min(0.0)  # (B, T, T)
            distance[:, :, 0] = 0.0
            for layer in self.layers:
                x, _ = layer(x, allowed, distance)  # (B, T, d)
        # The query is the newest real impression's token (0, the start, for an empty
        # history). Its recency is 0, and every real impression is at or before it, so its
        # row of the full model's causal mask is key_ok and its recency distances are r.
        query = (self._positions[:h] * valid).amax(dim=1)  # (B,)
        at_query = query.view(b, 1, 1).expand(b, 1, x.shape[-1])  # (B, 1, d)

        heads, dh = cfg.num_heads, cfg.head_dim
        xn = self.last_ln_attn(x)  # (B, T, d)
        q = self.last_q(xn.gather(1, at_query).squeeze(1)).view(b, heads, dh)  # (B, heads, dh)
        k, v = self.last_kv(xn).view(b, h + 1, 2, heads, dh).unbind(2)  # each (B, T, heads, dh)
        k, v = k.transpose(1, 2), v.transpose(1, 2)  # each (B, heads, T, dh)
        logits = (k @ q.unsqueeze(-1)).squeeze(-1) / math.sqrt(dh)  # (B, heads, T)
        if cfg.recency_bias:
            logits = logits - self.recency_slope.view(1, -1, 1) * r.unsqueeze(1)
        logits = logits.masked_fill(~key_ok.unsqueeze(1), torch.finfo(logits.dtype).min)
        weights = logits.softmax(dim=-1)  # (B, heads, T)
        mixed = (weights.unsqueeze(2) @ v).reshape(b, heads * dh)  # (B, heads, 1, dh) -> (B, d)
        xq = x.gather(1, at_query).squeeze(1) + self.last_out(mixed)  # (B, d)
        xq = xq + self.last_mlp(self.last_ln_mlp(xq))  # (B, d)
        user = self.final_norm(xq)  # (B, d)
        if cfg.zero_start_state:  # an empty history carries no topic preference
            user = user * (query > 0).unsqueeze(1).to(user.dtype)

        features, match_w = user, None
        if self.match_dim:
            # the profile at the query token: impression k weighs gamma ** r_k (its distance
            # back from the query, whose recency is 0) times its sign, and with match_attention
            # also exp(kappa * (agreement with the short-term profile - 1))
            y = feedback.clamp(0.0, 1.0)  # (B, H)
            sign = valid.float() * (y - self.match_skip * (1.0 - y))  # (B, H)
            dist = r[:, 1:]  # (B, H)
            table = F.embedding(ids, self.match_table)  # (B, H, r)
            match_w = sign * self.match_decay**dist  # (B, H)
            if cfg.match_attention:
                fast = (sign * self.match_fast**dist).unsqueeze(1)  # (B, 1, H)
                short = torch.bmm(fast, table)  # (B, 1, r) short-term profile
                short = short / (short.norm(dim=-1, keepdim=True) + 1e-6)
                side = valid.float() * (2.0 * y - 1.0)  # (B, H) +1 click, -1 skip
                agree = torch.bmm(short, table.transpose(1, 2)).squeeze(1) * side  # (B, H)
                match_w = match_w * torch.exp(self.match_kappa * (agree - 1.0))  # (B, H)
            profile = torch.bmm(match_w.unsqueeze(1), table).squeeze(1)  # (B, 1, H) @ (B, H, r)
            profile = profile / (profile.norm(dim=-1, keepdim=True) + 1e-6)  # (B, r)
            features = torch.cat([user, profile * self.profile_scale], dim=1)  # (B, d + r)
        scores = self.score_head(features)  # (B, N)
        return scores, user, weights, match_w, parsed.clock

    def forward(self, obs: torch.Tensor | Mapping[str, torch.Tensor]) -> RecommenderOutput:
        """Scores ``(B, N)`` for every item (unreleased ones at ``finfo.min``) and ``u``."""
        scores, user, _, _, clock = self._run(obs)
        clock = clock.round().long()  # (B,)
        if self._last_release is None:  # the tables are fixed once built
            self._last_release = int(self.release_step.max())
        if clock.numel() and int(clock.min()) < self._last_release:
            unreleased = self.release_step.unsqueeze(0) > clock.unsqueeze(1)  # (B, N)
            scores = scores.masked_fill(unreleased, torch.finfo(scores.dtype).min)
        return RecommenderOutput(scores=scores, user_state=user)

    def history_attention(self, obs: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``(B, H)`` the query's attention over the history (last layer, heads averaged).

        The same quantity as :meth:`AttentionRecommender.history_attention`; padding gets 0.
        """
        _, _, weights, _, _ = self._run(obs)
        return weights.mean(dim=1)[:, 1:]  # (B, H)

    def match_attention(self, obs: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``(B, H)`` how much each impression counts in the content-match profile (``|w|``
        normalised over the history; padding and an empty history 0): the same quantity as
        :meth:`AttentionRecommender.match_attention`, which the attention figure shows.

        Raises:
            ValueError: without content match.
        """
        if not self.match_dim:
            raise ValueError("match_attention needs content_match=True")
        _, _, _, match_w, _ = self._run(obs)
        row = match_w.abs()  # type: ignore[union-attr]  # (B, H)
        total = row.sum(dim=1, keepdim=True)
        return torch.where(total > 0, row / total.clamp_min(1e-12), torch.zeros_like(row))


# ------------------------------------------------------------------------------------ building
def _copy_linear(dst: nn.Linear, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    dst.weight.copy_(weight)
    if bias is not None:
        dst.bias.copy_(bias)


@torch.no_grad()
def fold_recommender(model: AttentionRecommender) -> CompressedRecommender:
    """The float32 :class:`CompressedRecommender` of a trained model (same scores, rounding aside).

    Raises:
        TypeError: ``model`` is not an :class:`AttentionRecommender`.
    """
    if not isinstance(model, AttentionRecommender):
        raise TypeError(f"'model' must be an AttentionRecommender (got {type(model).__name__})")
    cfg = model.config
    d = cfg.embed_dim
    match_dim = int(model.match_table.shape[1]) if cfg.content_match else 0
    out = CompressedRecommender(cfg, model.num_items, match_dim)
    src = copy.deepcopy(model).float().cpu().eval()
    items = src._embed_items(None)  # (N, d)
    out.token_table.copy_(items)
    out.release_step.copy_(src.release_step)
    out.feedback_proj.load_state_dict(src.feedback_proj.state_dict())
    out.user_token.copy_(src.user_token)
    for dst_layer, src_layer in zip(out.layers, src.layers[:-1], strict=True):
        dst_layer.load_state_dict(src_layer.state_dict())
    last = src.layers[-1]
    out.last_ln_attn.load_state_dict(last.ln_attn.state_dict())
    wq, wkv = last.attn.qkv.weight.split([d, 2 * d])  # (d, d), (2d, d)
    bq, bkv = last.attn.qkv.bias.split([d, 2 * d])
    _copy_linear(out.last_q, wq, bq)
    _copy_linear(out.last_kv, wkv, bkv)
    out.last_out.load_state_dict(last.attn.out.state_dict())
    if last.attn.recency_slope is not None:
        out.recency_slope.copy_(F.softplus(last.attn.recency_slope))
    out.last_ln_mlp.load_state_dict(last.ln_mlp.state_dict())
    out.last_mlp.load_state_dict(last.mlp.state_dict())
    out.final_norm.load_state_dict(src.final_norm.state_dict())
    beta = src.score_scale()
    weight = items * (beta / math.sqrt(d))  # (N, d) personal term
    if match_dim:
        out.match_table.copy_(src.match_table)
        params = src.match_parameters()
        out.match_decay.fill_(params["decay"])
        out.match_skip.fill_(params["skip_weight"])
        if cfg.match_attention:
            out.match_fast.copy_(torch.sigmoid(src.match_query_logit))
            out.match_kappa.copy_(F.softplus(src.match_sharpness_raw))
        w_match = src.match_table * (beta * F.softplus(src.match_weight_raw) / out.profile_scale)
        weight = torch.cat([weight, w_match], dim=1)  # (N, d + r)
    _copy_linear(out.score_head, weight, beta * (src.prior() + src.policy_tilt()))
    return out


INT8_SCOPES = ("head", "all")
"""Which Linears :func:`quantize_int8` quantises: the score head only (default) or every one."""
_ENCODER_LINEARS = ("last_q", "last_kv", "last_out", "last_mlp.0", "last_mlp.2")


def quantize_int8(module: CompressedRecommender, scope: str = "head") -> CompressedRecommender:
    """A copy with int8 dynamic Linears: the score head (``"head"``) or every one (``"all"``).

    Weights are quantised per output channel (per item, in the score head), activations per
    batch, with ``torch.ao.quantization.quantize_dynamic``. The score head holds nearly all the
    weights (``N x (d + r)``: 96,000 of the demo policy's ~110,000); the encoder's Linears
    (width 32, applied to one row per user) cost more in quantising their inputs than their
    int8 product saves (``bench/bench_compress.py --scope all`` measures it), so ``"head"`` is
    the default. The one-input feedback projection is never quantised.

    Raises:
        TypeError: ``module`` is not a :class:`CompressedRecommender`.
        ValueError: it is already quantised, or ``scope`` is unknown.
        RuntimeError: this torch has no ``torch.ao.quantization.quantize_dynamic``.
    """
    if not isinstance(module, CompressedRecommender):
        raise TypeError(
            f"'module' must be a CompressedRecommender (got {type(module).__name__}); fold the "
            "model first with fold_recommender"
        )
    if scope not in INT8_SCOPES:
        raise ValueError(f"'scope' must be one of {list(INT8_SCOPES)} (got {scope!r})")
    if module.quantized:
        raise ValueError("the module is already int8-quantised")
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError as exc:  # pragma: no cover - torch.ao ships with the pinned torch
        raise RuntimeError(
            f"int8 quantisation needs torch.ao.quantization.quantize_dynamic, which this torch "
            f"({torch.__version__}) lacks; use --method fold, or torch==2.13.0"
        ) from exc
    names = ["score_head"]
    if scope == "all":
        names += _ENCODER_LINEARS
        for i, _ in enumerate(module.layers):
            names += [f"layers.{i}.attn.qkv", f"layers.{i}.attn.out"]
            names += [f"layers.{i}.mlp.0", f"layers.{i}.mlp.2"]
    with warnings.catch_warnings():  # torch.ao is deprecated (torchao) but still shipped
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_(tensor|channel).*")
        quantized = quantize_dynamic(
            copy.deepcopy(module),
            {name: per_channel_dynamic_qconfig for name in names},
            dtype=torch.qint8,
        )
    quantized.int8_scope = scope
    return quantized


# -------------------------------------------------------------------------------- distillation
@dataclass(frozen=True, slots=True)
class DistilConfig:
    """How :func:`distil_recommender` builds and fits the student.

    Attributes:
        embed_dim: the student's width (the teacher's demo width is 32).
        num_heads: the student's attention heads.
        ff_dim: the student's MLP width.
        match_dim: content-match dimensions of the student (SVD directions of the text table).
        epochs: passes over the observations.
        batch_size: observations per gradient step.
        learning_rate: Adam's step size.
        seed: seeds the student's initialisation and the minibatch order.
    """

    embed_dim: int = 16
    num_heads: int = 1
    ff_dim: int = 32
    match_dim: int = 32
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 3e-3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("embed_dim", "num_heads", "ff_dim", "match_dim", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"'{name}' must be an integer >= 1 (got {value!r})")
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"'embed_dim' ({self.embed_dim}) must be divisible by 'num_heads' "
                f"({self.num_heads})"
            )
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr <= 1:
            raise ValueError(f"'learning_rate' must be in (0, 1] (got {lr!r})")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"'seed' must be an integer (got {self.seed!r})")


def _masked_log_softmax(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log_softmax, released mask)``; unreleased items (at ``finfo.min``) are excluded."""
    released = scores > torch.finfo(scores.dtype).min / 2  # (B, N)
    logp = scores.masked_fill(~released, -torch.inf).log_softmax(dim=-1)  # (B, N)
    return logp, released


def distil_recommender(
    teacher: AttentionRecommender,
    observations: NDArray[np.float32] | torch.Tensor,
    config: DistilConfig | None = None,
) -> tuple[AttentionRecommender, list[float]]:
    """Fit a smaller :class:`AttentionRecommender` to ``teacher``'s action distribution.

    The loss is ``KL(pi_teacher || pi_student)`` over the released items of each observation,
    with ``pi = softmax(scores)`` (the policy the SB3 glue samples from), averaged over a
    minibatch; the student is built on the teacher's own text table and release steps.

    Args:
        teacher: the trained model (left unchanged).
        observations: ``(M, 3H + 2)`` observations, e.g. from the teacher's own rollouts.
        config: the student's shape and the optimisation (default :class:`DistilConfig`).

    Returns:
        The student (eval mode) and the mean loss of each epoch.
    """
    cfg = config if config is not None else DistilConfig()
    if not isinstance(cfg, DistilConfig):
        raise TypeError(f"'config' must be a DistilConfig (got {type(cfg).__name__})")
    if not isinstance(teacher, AttentionRecommender):
        raise TypeError(f"'teacher' must be an AttentionRecommender (got {type(teacher).__name__})")
    obs = torch.as_tensor(np.asarray(observations, dtype=np.float32))
    tcfg = teacher.config
    if obs.ndim != 2 or obs.shape[0] < 1 or obs.shape[1] != tcfg.obs_size:
        raise ValueError(
            f"'observations' must have shape (num_obs >= 1, {tcfg.obs_size}) for the teacher's "
            f"history_len={tcfg.history_len} (got {tuple(obs.shape)})"
        )
    gen = torch.Generator().manual_seed(cfg.seed)
    student_cfg = dataclasses.replace(
        tcfg,
        embed_dim=cfg.embed_dim,
        num_heads=cfg.num_heads,
        ff_dim=cfg.ff_dim,
        match_dim=cfg.match_dim,
        num_layers=1,
        dropout=0.0,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        student = AttentionRecommender(
            student_cfg, teacher.item_table.cpu(), teacher.release_step.cpu()
        )
        if teacher.id_embedding is not None and student.id_embedding is not None:
            nn.init.normal_(student.id_embedding.weight, std=1.0 / cfg.embed_dim**0.5)
    with torch.no_grad():  # the teacher's targets, once
        was_training = teacher.training
        teacher.eval()
        target = torch.cat(
            [_masked_log_softmax(teacher(chunk).scores.float())[0] for chunk in obs.split(1024)]
        )  # (M, N)
        teacher.train(was_training)
        if student.item_prior is not None and teacher.item_prior is not None:
            student.item_prior.copy_(teacher.prior())  # the population prior transfers as is
        if student.item_tilt is not None:  # and the policy-only tilt (student's rho starts at 1)
            student.item_tilt.copy_(teacher.policy_tilt())
    optimizer = torch.optim.Adam(
        [p for p in student.parameters() if p.requires_grad], lr=cfg.learning_rate
    )
    student.train()
    losses = []
    for _ in range(cfg.epochs):
        order = torch.randperm(obs.shape[0], generator=gen)
        total, count = 0.0, 0
        for idx in order.split(cfg.batch_size):
            logq, released = _masked_log_softmax(student(obs[idx]).scores)
            logp = target[idx]  # (b, N)
            kl = torch.where(released, logp.exp() * (logp - logq), 0.0).sum(-1).mean()
            optimizer.zero_grad()
            kl.backward()
            optimizer.step()
            total += float(kl.detach()) * idx.numel()
            count += idx.numel()
        losses.append(total / count)
    student.eval()
    return student, losses


def compress_recommender(
    model: AttentionRecommender,
    method: str = "fold",
    *,
    observations: NDArray[np.float32] | torch.Tensor | None = None,
    distil: DistilConfig | None = None,
    scope: str = "head",
) -> CompressedRecommender:
    """Compress ``model`` with ``method`` (one of :data:`COMPRESS_METHODS`).

    ``distil`` needs ``observations`` (see :func:`distil_recommender`); ``scope`` is
    :func:`quantize_int8`'s.
    """
    if method not in COMPRESS_METHODS:
        raise ValueError(f"'method' must be one of {list(COMPRESS_METHODS)} (got {method!r})")
    if method == "distil":
        if observations is None:
            raise ValueError("method 'distil' needs 'observations' to fit the student on")
        model, _ = distil_recommender(model, observations, distil)
    folded = fold_recommender(model)
    return folded if method == "fold" else quantize_int8(folded, scope)


# ------------------------------------------------------------------------------------ files
def save_compressed(
    module: CompressedRecommender,
    path: str | os.PathLike[str],
    *,
    method: str,
    scope: str = "head",
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write the folded float weights and how to rebuild them, atomically (``torch.save``).

    Args:
        module: the folded module (before :func:`quantize_int8`: int8 is applied at load).
        path: the file to write.
        method: the method it was made with; ``int8`` and ``distil`` are quantised at load.
        scope: what :func:`quantize_int8` quantises at load.
        metadata: JSON-able facts to keep with it (source run, catalog fingerprint, ...).
    """
    if not isinstance(module, CompressedRecommender) or module.quantized:
        raise TypeError(
            "'module' must be the float CompressedRecommender from fold_recommender "
            "(int8 is applied again when the file is loaded)"
        )
    if method not in COMPRESS_METHODS:
        raise ValueError(f"'method' must be one of {list(COMPRESS_METHODS)} (got {method!r})")
    if scope not in INT8_SCOPES:
        raise ValueError(f"'scope' must be one of {list(INT8_SCOPES)} (got {scope!r})")
    payload = {
        "format": FORMAT,
        "method": method,
        "int8_scope": scope,
        "spec": module.spec(),
        "metadata": dict(metadata or {}),
        "state_dict": module.state_dict(),
    }
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        torch.save(payload, fh)
    return path


def load_compressed(
    path: str | os.PathLike[str],
) -> tuple[CompressedRecommender, dict[str, Any]]:
    """Load a file written by :func:`save_compressed`: ``(module, {"method", "metadata"})``.

    The module is quantised to int8 when the file's method says so.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a compressed recommender (named in the message).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: expected a file 'driftrec compress' wrote")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip, pickle and torch all raise their own errors
        raise ValueError(
            f"{path} cannot be read as a compressed recommender ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}); expected a file 'driftrec compress' wrote"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: 'format' must be {FORMAT!r} (got {got!r})")
    method = payload.get("method")
    if method not in COMPRESS_METHODS:
        raise ValueError(
            f"{path}: 'method' must be one of {list(COMPRESS_METHODS)} (got {method!r})"
        )
    try:
        spec = payload["spec"]
        module = CompressedRecommender(
            AttentionConfig(**spec["config"]), int(spec["num_items"]), int(spec["match_dim"])
        )
        module.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"{path}: the stored policy does not rebuild ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]})"
        ) from None
    scope = payload.get("int8_scope", "head")
    if scope not in INT8_SCOPES:
        raise ValueError(f"{path}: 'int8_scope' must be one of {list(INT8_SCOPES)} (got {scope!r})")
    if method != "fold":
        module = quantize_int8(module, scope)
    return module, {"method": method, "int8_scope": scope, "metadata": payload.get("metadata", {})}


# ------------------------------------------------------------------------------------ acting
class ScoreActor:
    """A :class:`~driftrec.agents.base.Recommender` that acts with a recommender's scores.

    Works with the full :class:`AttentionRecommender` and with a :class:`CompressedRecommender`
    alike, so both are evaluated by the same code with the same random numbers. Greedy: the
    ``k`` best items; sampled: the ``k`` best of ``scores + Gumbel noise`` (a draw from the
    categorical policy for ``k = 1`` and from the Plackett-Luce slate policy for ``k > 1``, the
    distributions the SB3 glue samples from). It does not learn (no ``update``). The SB3
    policy's masks of history items (``mask_consumed``, ``mask_rejected``) apply as there
    (:func:`~driftrec.agents.attention.mask_history_items`).

    Args:
        module: returns a :class:`RecommenderOutput` for ``(B, 3H + 2)`` observations.
        slate_size: ``k``, items per action (1: ``Discrete`` actions).
        seed: seeds the sampling noise (an integer or a ``numpy`` Generator).
        name: a label for logs.
        mask_consumed: zero probability for the items clicked in the observed history.
        mask_rejected: zero probability for the items skipped this many times and never
            clicked in it (0: off).
    """

    privileged = False

    def __init__(
        self,
        module: nn.Module,
        slate_size: int = 1,
        seed: int | np.random.Generator = 0,
        name: str = "recommender",
        mask_consumed: bool = False,
        mask_rejected: int = 0,
    ) -> None:
        if isinstance(slate_size, bool) or not isinstance(slate_size, int) or slate_size < 1:
            raise ValueError(f"'slate_size' must be an integer >= 1 (got {slate_size!r})")
        if not isinstance(mask_consumed, bool):
            raise TypeError(f"'mask_consumed' must be a bool (got {mask_consumed!r})")
        check_int("mask_rejected", mask_rejected, 0)
        self.mask_consumed = mask_consumed
        self.mask_rejected = mask_rejected
        self.module = module.eval()
        self.slate_size = slate_size
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.name = name

    def scores(self, observation: Any) -> NDArray[np.float32]:
        """``(B, N)`` the module's scores for a batch of observations."""
        with torch.inference_mode():
            x = torch.as_tensor(np.asarray(observation, dtype=np.float32))
            scores = self.module(x).scores
            return mask_history_items(x, scores, self.mask_consumed, self.mask_rejected).numpy()

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> tuple[NDArray[np.int64], None]:
        """``(B,)`` items (``(B, k)`` slates); a single ``(D,)`` observation gives one action."""
        obs = np.asarray(observation, dtype=np.float32)
        single = obs.ndim == 1
        keys = self.scores(obs[None] if single else obs).astype(np.float64)  # (B, N)
        if not deterministic:
            keys = keys + self.rng.gumbel(size=keys.shape)  # (B, N)
        k = self.slate_size
        if k == 1:
            actions = keys.argmax(axis=1)  # (B,)
        else:
            top = np.argpartition(-keys, k - 1, axis=1)[:, :k]  # (B, k) unordered
            order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1)
            actions = np.take_along_axis(top, order, axis=1)  # (B, k) best first
        actions = actions.astype(np.int64)
        return (actions[0] if single else actions), None

    @property
    def attention_fn(self) -> Callable[[NDArray[np.float32]], NDArray[np.float64]]:
        """One observation ``(D,)`` -> what the next recommendation reads from the history
        ``(H,)``, chosen as the runs choose it: the content-match weights
        (``match_attention``) when the model has a content match over a real text table,
        else the encoder's last-layer attention of the query; ``source`` names which."""
        module = self.module
        table = getattr(module, "match_table", None)
        match = module.config.content_match and table is not None and bool(table.any())
        weigh = module.match_attention if match else module.history_attention

        def fn(obs: NDArray[np.float32]) -> NDArray[np.float64]:
            with torch.inference_mode():
                x = torch.as_tensor(np.asarray(obs, dtype=np.float32)[None])
                return weigh(x)[0].numpy().astype(np.float64)

        fn.source = (  # type: ignore[attr-defined]
            "content-match weight" if match else "encoder attention (last layer, mean over heads)"
        )
        return fn
