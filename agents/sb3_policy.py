"""stable-baselines3 glue: the attention recommender as an actor-critic policy and a Q-network.

The recommender scores every catalog item (one ``(B, d) @ (d, N)`` product), so the policy's
logits *are* those scores. SB3's ``ActorCriticPolicy`` routes everything through
``mlp_extractor -> (latent_pi, latent_vf)``, ``action_net(latent_pi)`` and
``value_net(latent_vf)``; here the ``mlp_extractor`` is the recommender (``latent_pi`` = item
scores, ``latent_vf`` = user state + session progress), ``action_net`` passes the scores through
(for ``MultiDiscrete`` slates, by default into a Plackett-Luce distribution over ordered slates
without repeats, :mod:`driftrec.agents.slate_distribution`; with
``slate_distribution="independent"`` repeated ``k`` times into ``k`` independent categoricals, so
a slate may repeat an item, which the simulator counts once), and ``value_net`` is a small MLP.
The maskable policy keeps the independent categoricals (sb3-contrib's masked distributions). All of
SB3's (and sb3-contrib's masked) ``forward``, ``evaluate_actions``, ``get_distribution`` and
``predict_values`` then work unchanged, except that ``evaluate_actions`` (called only in the
algorithms' ``train`` step) also adds the recommender's self-supervised click loss to the
gradient (``click_loss_coef``; see :class:`_RecommenderPolicyMixin`). ``_build`` is replaced
as a whole because the parent would build a ``Linear(N, N)`` action head and then the
optimizer; ours builds the optimizer last over every parameter.

The item table (frozen language-model embeddings, or nothing for the id-only ablation) is not
pickled into checkpoints: ``policy_kwargs`` carry a small :class:`ItemTableSpec`, and the table
is rebuilt from the catalog and the on-disk embedding cache when a model is created or loaded.

Usage::

    from stable_baselines3 import PPO
    from driftrec.agents.sb3_policy import recommender_policy_kwargs
    from driftrec.envs.sb3 import make_sb3_vec_env

    env = make_sb3_vec_env("AbruptShift", num_envs=64, seed=0)
    model = PPO("AttentionRecommenderPolicy", env, policy_kwargs=recommender_policy_kwargs(env))
    model.learn(50_000)

``"AttentionRecommenderPolicy"`` is registered for ``PPO``, ``A2C``, ``DQN`` and sb3-contrib's
``MaskablePPO`` when this module is imported. Training defaults to one torch thread
(:func:`configure_torch`): on small shared CPUs, more threads make these small matrix products
slower (OpenMP synchronisation), not faster.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from driftrec.agents.attention import (
    AttentionConfig,
    AttentionRecommender,
    _recency,
    mask_history_items,
)
from driftrec.agents.slate_distribution import (
    PlackettLuceDistribution,
    ScoreCategoricalDistribution,
)
from driftrec.agents.text_encoder import TextEncoderConfig, encode_catalog
from driftrec.envs.config import EnvConfig, check_float, check_int
from driftrec.envs.core import cached_catalog

__all__ = [
    "ItemTableSpec",
    "AttentionActorCriticPolicy",
    "MaskableAttentionActorCriticPolicy",
    "AttentionDQNPolicy",
    "AttentionQNetwork",
    "RecommenderExtractor",
    "recommender_policy_kwargs",
    "build_recommender",
    "configure_torch",
    "BudgetPPO",
    "POLICY_NAME",
    "SLATE_DISTRIBUTIONS",
]

POLICY_NAME = "AttentionRecommenderPolicy"
SLATE_DISTRIBUTIONS = ("plackett-luce", "independent")


def configure_torch(num_threads: int = 1) -> None:
    """Set torch's intra-op threads (default 1: fastest for these models on small CPUs)."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"'num_threads' must be an integer >= 1 (got {num_threads!r})")
    torch.set_num_threads(num_threads)


@dataclass(frozen=True)
class ItemTableSpec:
    """How to rebuild the item table: the catalog (from an env config) and the text encoder.

    Args:
        env_config: ``EnvConfig.to_dict()`` of the world whose catalog is scored.
        text_encoder: ``TextEncoderConfig`` fields as a dict, or ``None`` for the id-only
            ablation (no language model: items are learned id embeddings).
        embeddings_file: a ``.npy`` file of precomputed ``(N, E)`` item embeddings to use
            instead of running the text encoder.
    """

    env_config: Mapping[str, Any]
    text_encoder: Mapping[str, Any] | None = dataclasses.field(default_factory=dict)
    embeddings_file: str | None = None

    @property
    def ids_only(self) -> bool:
        """True for the id-only ablation."""
        return self.text_encoder is None and self.embeddings_file is None

    def build(self) -> tuple[np.ndarray, np.ndarray]:
        """``(item_embeddings (N, E), release_step (N,))`` from the catalog and the cache."""
        catalog = cached_catalog(EnvConfig.from_dict(self.env_config))
        if self.embeddings_file is not None:
            try:  # no pickles: an object array is refused, never unpickled
                table = np.load(self.embeddings_file, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise ValueError(
                    f"'embeddings_file' {self.embeddings_file} cannot be read as a numeric .npy "
                    f"array ({exc})"
                ) from None
            if table.ndim != 2 or table.shape[0] != catalog.num_items:
                raise ValueError(
                    f"'embeddings_file' {self.embeddings_file} must hold a ({catalog.num_items}, "
                    f"dim) array for this catalog (got shape {table.shape})"
                )
        elif self.text_encoder is None:
            table = np.zeros((catalog.num_items, 1), dtype=np.float32)
        else:
            cfg = TextEncoderConfig(**dict(self.text_encoder))
            table = encode_catalog(catalog.texts(), cfg)
        return table, np.asarray(catalog.release_step)


def _require_item_table(item_table: ItemTableSpec | None) -> ItemTableSpec:
    if item_table is None:
        raise ValueError(
            "AttentionRecommenderPolicy needs policy_kwargs['item_table']; build the "
            "policy_kwargs with driftrec.agents.sb3_policy.recommender_policy_kwargs(env)"
        )
    return item_table


def _attention_config(value: AttentionConfig | Mapping[str, Any] | None) -> AttentionConfig:
    if value is None:
        return AttentionConfig()
    if isinstance(value, AttentionConfig):
        return value
    if isinstance(value, Mapping):
        return AttentionConfig(**dict(value))
    raise TypeError(f"'attention' must be an AttentionConfig or a dict (got {value!r})")


def build_recommender(
    item_table: ItemTableSpec, attention: AttentionConfig
) -> AttentionRecommender:
    """An :class:`AttentionRecommender` over the table ``item_table`` describes."""
    if not isinstance(item_table, ItemTableSpec):
        raise TypeError(
            f"'item_table' must be an ItemTableSpec (got {type(item_table).__name__}); build "
            "policy_kwargs with driftrec.agents.sb3_policy.recommender_policy_kwargs(env)"
        )
    table, release = item_table.build()
    if item_table.ids_only:
        attention = dataclasses.replace(attention, use_id_embeddings=True)
    model = AttentionRecommender(attention, table, release)
    if item_table.ids_only and model.id_embedding is not None:
        # the text table is empty, so ids must start apart to tell items from each other
        nn.init.normal_(model.id_embedding.weight, std=1.0 / attention.embed_dim**0.5)
    return model


CRITICS = ("shared", "history")


class RecommenderExtractor(nn.Module):
    """SB3's ``mlp_extractor`` slot: observation -> (item scores, the critic's input).

    The critic's input is the user state ``u`` and the session progress (``critic="shared"``,
    the default: the value loss also trains the recommender through ``u``). ``critic="history"``
    is a critic for long horizons: it reads ``u`` without training the recommender through it
    (``detach``), plus what the history says about the user's state beyond the topics ``u``
    encodes: the click rate and the share of real impressions in it, the recommender's
    carry-over of the history (with ``AttentionConfig.carryover``), and a learned value per
    clicked item, ``sum_t g^{r_t} y_t v_{a_t}`` (``v`` zero-initialised, ``g`` learned, starting
    at 0.95, ``r_t`` the recency), which the value head adds to its output. Item quality is in
    neither the text nor the observation, so this is how the critic can tell that a user who
    just clicked items that drain (or restore) them is worth less (or more) from now on.

    With ``mask_consumed`` the items the user clicked in the observed history get the score of
    an unreleased item (zero probability): in a world where a click consumes its item
    (``ChoiceConfig.no_repeat``, a rule of the world like the release steps) showing it again
    is worth nothing, and a profile-based score would otherwise rank it first.

    With ``mask_rejected = k`` (0: off) an item the observed history shows skipped at least ``k``
    times and never clicked gets zero probability too: a greedy policy otherwise keeps showing
    a new user the few items it rates highest for everyone, and loses the users who want none
    of them (BENCHMARKS.md, "Long-horizon learning"). It reads only the observation.

    Args:
        recommender: the attention recommender.
        mask_consumed: give the history's clicked items zero probability (see above).
        mask_rejected: skips without a click that give an item zero probability (0: off).
        click_loss: while training, keep the encoder pass for the click loss (which then
            needs every prefix's state, or with ``click_targets`` only the newest ones').
        click_targets: the click loss's number of targets (None: every impression).
        critic: ``"shared"`` or ``"history"`` (above).
    """

    def __init__(
        self,
        recommender: AttentionRecommender,
        mask_consumed: bool = False,
        click_loss: bool = True,
        click_targets: int | None = None,
        critic: str = "shared",
        mask_rejected: int = 0,
    ) -> None:
        super().__init__()
        check_int("mask_rejected", mask_rejected, 0, recommender.config.history_len)
        if critic not in CRITICS:
            raise ValueError(f"'critic' must be one of {list(CRITICS)} (got {critic!r})")
        self.recommender = recommender
        self.critic = critic
        self.click_loss = click_loss
        self.click_targets = click_targets
        self.latent_dim_pi = recommender.num_items
        self.latent_dim_vf = recommender.config.embed_dim + 1
        self._progress_col = 3 * recommender.config.history_len
        self.mask_consumed = bool(mask_consumed)
        self.mask_rejected = int(mask_rejected)
        if critic == "history":
            # click rate, real share, the recommender's carry-over, the item values' sum (last)
            self.latent_dim_vf += 4
            self.item_value = nn.Embedding(recommender.num_items, 1)
            nn.init.zeros_(self.item_value.weight)
            self.value_decay_logit = nn.Parameter(torch.tensor(math.log(0.95 / 0.05)))
        self.last_output: Any = None

    def _mask(self, features: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return mask_history_items(features, scores, self.mask_consumed, self.mask_rejected)

    def _value_input(self, obs: torch.Tensor, out: Any) -> torch.Tensor:
        user = out.user_state  # (B, d)
        progress = obs[:, self._progress_col : self._progress_col + 1].to(user.dtype)  # (B, 1)
        if self.critic == "shared":
            return torch.cat([user, progress], dim=1)  # (B, d + 1)
        enc, parsed, _ = out.encoding
        valid = parsed.mask.to(user.dtype)  # (B, H)
        clicks = parsed.feedback.to(user.dtype).clamp(0.0, 1.0) * valid  # (B, H)
        real = valid.sum(dim=1, keepdim=True)  # (B, 1)
        rate = clicks.sum(dim=1, keepdim=True) / real.clamp_min(1.0)  # (B, 1)
        share = real / parsed.mask.shape[1]  # (B, 1)
        if enc.carry is not None:  # the recommender's carry-over of this history
            carry = enc.carry.gather(1, enc.query.unsqueeze(1)).detach()  # (B, 1)
        else:
            carry = torch.zeros_like(rate)
        weight = torch.sigmoid(self.value_decay_logit) ** _recency(parsed.mask).to(user.dtype)
        values = self.item_value(parsed.item_ids.masked_fill(~parsed.mask, 0)).squeeze(-1)
        item_sum = (weight * clicks * values).sum(dim=1, keepdim=True)  # (B, 1)
        return torch.cat([user.detach(), progress, rate, share, carry, item_sum], dim=1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # while training, keep the encoder's output so the click loss reuses this pass
        keep = self.click_loss and torch.is_grad_enabled()
        out = self.recommender(
            features,
            output_encoding=keep or self.critic != "shared",
            click_targets=self.click_targets if keep else None,
        )
        self.last_output = out if keep else None
        return self._mask(features, out.scores), self._value_input(features, out)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        return self._mask(features, self.recommender(features).scores)  # (B, N)

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        if self.critic == "shared":
            user = self.recommender.user_vectors(features)
            return self._value_input(features, _UserOnly(user))
        return self._value_input(features, self.recommender(features, output_encoding=True))


class _UserOnly(NamedTuple):
    user_state: torch.Tensor


class _ValueHead(nn.Sequential):
    """``value_scale * (MLP(x) [+ x_last])``: the value net over the extractor's critic input.

    With ``additive`` the last input column (the history critic's item-value sum) is added to
    the MLP's output instead of entering it. ``value_scale`` sets the unit the net works in, so a
    long-horizon value (tens of clicks) needs no large weights or biases to be learned first.
    (A ``Sequential`` of the MLP's layers, so checkpoints keep the plain value net's keys.)
    """

    def __init__(self, in_dim: int, hidden: int, value_scale: float, additive: bool) -> None:
        super().__init__(nn.Linear(in_dim - int(additive), hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.additive = additive
        self.value_scale = value_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.additive:
            return self.value_scale * (super().forward(x[:, :-1]) + x[:, -1:])  # (B, 1)
        return self.value_scale * super().forward(x)  # (B, 1)


class _SlateLogits(nn.Module):
    """Scores ``(B, N)`` -> logits of ``k`` independent categoricals ``(B, k * N)``."""

    def __init__(self, slate_size: int) -> None:
        super().__init__()
        self.slate_size = slate_size

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return scores if self.slate_size == 1 else scores.repeat(1, self.slate_size)


def _slate_size(action_space: spaces.Space[Any], num_items: int) -> int:
    if isinstance(action_space, spaces.Discrete):
        if int(action_space.n) != num_items:
            raise ValueError(
                f"the action space has {action_space.n} items but the item table has {num_items}"
            )
        return 1
    if isinstance(action_space, spaces.MultiDiscrete) and np.all(action_space.nvec == num_items):
        return int(action_space.nvec.size)
    raise ValueError(
        f"AttentionRecommenderPolicy needs Discrete({num_items}) or "
        f"MultiDiscrete([{num_items}] * k) actions (got {action_space})"
    )


class _AddLoss(torch.autograd.Function):
    """Identity on ``carrier``; in the backward pass ``loss`` gets gradient 1.

    ``_AddLoss.apply(x, aux)`` returns ``x`` unchanged, and any loss built from it back-propagates
    as if ``aux`` had been added to it: the way an extra loss term rides along with an
    algorithm's own ``loss.backward()`` (and its gradient clipping and optimizer step) without
    changing the algorithm.
    """

    @staticmethod
    def forward(ctx: Any, carrier: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        ctx.loss_shape = loss.shape
        return carrier.view_as(carrier)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return grad, grad.new_ones(ctx.loss_shape)


class _RecommenderPolicyMixin:
    """Shared ``__init__``/``_build`` for the plain and the maskable actor-critic policies.

    **The click loss.** With ``click_loss_coef > 0`` every training minibatch also fits the
    recommender's click logits to the impressions its observations show
    (:meth:`~driftrec.agents.attention.AttentionRecommender.click_loss`): ``evaluate_actions``
    (which PPO, A2C and MaskablePPO call only in their ``train`` step) adds
    ``click_loss_coef * click_loss`` to the gradient of the algorithm's own loss through the
    returned log-probabilities, so the same backward pass, gradient clipping and optimizer step
    train both. Without it, policy-gradient updates find the user-independent gain first (one
    item for everyone) and the scores stop being personal; with it, each impression is a labelled
    example, the way a bandit's regression learns. ``last_click_loss`` holds the latest value.
    """

    _slate_distributions: tuple[str, ...] = SLATE_DISTRIBUTIONS  # first = default
    _score_categorical = True  # single items: ScoreCategoricalDistribution (not the masked one)

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        lr_schedule: Schedule,
        *args: Any,
        item_table: ItemTableSpec | None = None,
        attention: AttentionConfig | Mapping[str, Any] | None = None,
        value_hidden: int = 64,
        slate_distribution: str | None = None,
        click_loss_coef: float = 1.0,
        click_targets: int | None = None,
        critic: str = "shared",
        value_scale: float = 1.0,
        mask_consumed: bool = False,
        mask_rejected: int = 0,
        ortho_init: bool = False,
        **kwargs: Any,
    ) -> None:
        self.item_table = _require_item_table(item_table)
        if not isinstance(mask_consumed, bool):
            raise TypeError(f"'mask_consumed' must be a bool (got {mask_consumed!r})")
        self.mask_consumed = mask_consumed
        check_int("mask_rejected", mask_rejected, 0)
        self.mask_rejected = mask_rejected
        self.attention = _attention_config(attention)
        self.value_hidden = value_hidden
        if slate_distribution is None:
            slate_distribution = self._slate_distributions[0]
        if slate_distribution not in self._slate_distributions:
            raise ValueError(
                f"'slate_distribution' must be one of {list(self._slate_distributions)} for "
                f"{type(self).__name__} (got {slate_distribution!r})"
            )
        self.slate_distribution = slate_distribution
        check_float("click_loss_coef", click_loss_coef, 0.0, 1e6)
        if click_targets is not None:
            check_int("click_targets", click_targets, 1, self.attention.history_len)
        self.click_loss_coef = float(click_loss_coef)
        self.click_targets = click_targets
        if critic not in CRITICS:
            raise ValueError(f"'critic' must be one of {list(CRITICS)} (got {critic!r})")
        check_float("value_scale", value_scale, 0.0, 1e6, low_open=True)
        self.critic = critic
        self.value_scale = float(value_scale)
        self.last_click_loss = float("nan")
        kwargs.setdefault("features_extractor_class", FlattenExtractor)
        super().__init__(  # type: ignore[call-arg]
            observation_space, action_space, lr_schedule, *args, ortho_init=ortho_init, **kwargs
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data.update(
            item_table=self.item_table,
            attention=self.attention,
            value_hidden=self.value_hidden,
            slate_distribution=self.slate_distribution,
            click_loss_coef=self.click_loss_coef,
            click_targets=self.click_targets,
            critic=self.critic,
            value_scale=self.value_scale,
            mask_consumed=self.mask_consumed,
            mask_rejected=self.mask_rejected,
        )
        return data

    def evaluate_actions(
        self, obs: torch.Tensor, actions: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The parent's ``(values, log_prob, entropy)``; training also gets the click loss."""
        values, log_prob, entropy = super().evaluate_actions(  # type: ignore[misc]
            obs, actions, *args, **kwargs
        )
        last, self.mlp_extractor.last_output = self.mlp_extractor.last_output, None
        if self.click_loss_coef > 0 and torch.is_grad_enabled():
            # the forward pass inside evaluate_actions already encoded these observations
            source = last if last is not None else obs
            loss = self.recommender.click_loss(source, num_targets=self.click_targets)
            self.last_click_loss = float(loss.detach())
            log_prob = _AddLoss.apply(log_prob, self.click_loss_coef * loss)
        return values, log_prob, entropy

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = RecommenderExtractor(
            build_recommender(self.item_table, self.attention),
            self.mask_consumed,
            click_loss=self.click_loss_coef > 0,
            click_targets=self.click_targets,
            critic=self.critic,
            mask_rejected=self.mask_rejected,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        self._build_mlp_extractor()
        recommender = self.mlp_extractor.recommender
        slate_size = _slate_size(self.action_space, recommender.num_items)
        if slate_size > 1 and self.slate_distribution == "plackett-luce":
            self.action_dist = PlackettLuceDistribution(recommender.num_items, slate_size)
            self.action_net = self.action_dist.proba_distribution_net()
        elif slate_size == 1 and self._score_categorical:
            self.action_dist = ScoreCategoricalDistribution(recommender.num_items)
            self.action_net = self.action_dist.proba_distribution_net()
        else:
            self.action_net = _SlateLogits(slate_size)
        self.value_net = _ValueHead(
            self.mlp_extractor.latent_dim_vf,
            self.value_hidden,
            self.value_scale,
            additive=self.critic == "history",
        )
        # the optimizer comes last, over every parameter (the parent's order)
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )
        # the recommender's no-grad tables are keyed on parameter versions, which a fused
        # optimizer's in-place update does not bump: drop them after every step of any optimizer
        self.optimizer.register_step_post_hook(_ClearCaches(recommender))

    @property
    def recommender(self) -> AttentionRecommender:
        """The underlying :class:`AttentionRecommender` (e.g. for attention plots)."""
        return self.mlp_extractor.recommender

    def _get_action_dist_from_latent(self, latent_pi: torch.Tensor) -> Any:
        if isinstance(self.action_dist, PlackettLuceDistribution | ScoreCategoricalDistribution):
            return self.action_dist.proba_distribution(action_logits=self.action_net(latent_pi))
        return super()._get_action_dist_from_latent(latent_pi)  # type: ignore[misc]


class _ClearCaches:
    """An optimizer step post-hook that drops the recommender's cached no-grad tables
    (a picklable callable, so the policy can still be deep-copied)."""

    def __init__(self, recommender: AttentionRecommender) -> None:
        self.recommender = recommender

    def __call__(self, *_: Any) -> None:
        self.recommender.clear_caches()


class AttentionActorCriticPolicy(_RecommenderPolicyMixin, ActorCriticPolicy):
    """Actor-critic policy (PPO, A2C) whose logits are the attention recommender's item scores.

    Extra ``policy_kwargs``: ``item_table`` (:class:`ItemTableSpec`, required), ``attention``
    (:class:`AttentionConfig` or dict), ``value_hidden`` (int, 64), ``slate_distribution``
    (``"plackett-luce"``, the default: ordered slates without repeats, or ``"independent"``:
    ``k`` independent categoricals; only used for ``MultiDiscrete`` slates), ``mask_consumed``
    (bool; :func:`recommender_policy_kwargs` turns it on in ``no_repeat`` worlds: the items
    clicked in the observed history get zero probability).
    """


class MaskableAttentionActorCriticPolicy(_RecommenderPolicyMixin, MaskableActorCriticPolicy):
    """The same policy for sb3-contrib's ``MaskablePPO`` (uses the env's ``action_masks()``).

    Slates stay ``k`` independent (masked) categoricals: ``slate_distribution`` accepts only
    ``"independent"``.
    """

    _slate_distributions = ("independent",)
    _score_categorical = False


class AttentionQNetwork(QNetwork):
    """Q-values ``Q(s, i) = a * score_i + b`` from the attention recommender (unreleased: min).

    Without gradients it scores with freshly built item tables on every call (no cache): SB3
    updates the target network through ``.data``, which no version counter records.
    """

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        item_table: ItemTableSpec,
        attention: AttentionConfig,
        normalize_images: bool = True,
        **_: Any,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor,
            features_dim,
            net_arch=[],
            normalize_images=normalize_images,
        )
        self.recommender = build_recommender(item_table, attention)
        _slate_size(action_space, self.recommender.num_items)
        self.q_net = nn.Identity()  # replaced by the recommender
        self.q_scale = nn.Parameter(torch.ones(()))
        self.q_bias = nn.Parameter(torch.zeros(()))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            # SB3's target-network update writes through ``.data`` (polyak_update), which the
            # recommender's cached no-grad tables cannot see: rebuild them on every such call
            self.recommender.clear_caches()
        scores = self.recommender(self.extract_features(obs, self.features_extractor)).scores
        floor = torch.finfo(scores.dtype).min
        return torch.where(scores <= floor / 2, floor, scores * self.q_scale + self.q_bias)


class AttentionDQNPolicy(DQNPolicy):
    """DQN policy whose Q-network is the attention recommender (single-item actions only)."""

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        *args: Any,
        item_table: ItemTableSpec | None = None,
        attention: AttentionConfig | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.item_table = _require_item_table(item_table)
        self.attention = _attention_config(attention)
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)

    def make_q_net(self) -> AttentionQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return AttentionQNetwork(
            item_table=self.item_table, attention=self.attention, **net_args
        ).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(item_table=self.item_table, attention=self.attention)
        return data


def recommender_policy_kwargs(
    env: Any,
    *,
    attention: AttentionConfig | Mapping[str, Any] | None = None,
    text_encoder: TextEncoderConfig | None = None,
    ids_only: bool = False,
    embeddings_file: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """``policy_kwargs`` for ``"AttentionRecommenderPolicy"`` on a driftrec env.

    Args:
        env: a driftrec env (single, vector, SB3 VecEnv, or anything with a ``.config``
            :class:`EnvConfig`), or an :class:`EnvConfig`.
        attention: the recommender's config; ``history_len`` is taken from the env.
        text_encoder: the language model (default: the packaged MiniLM).
        ids_only: the ablation without a language model (learned item-id embeddings only).
        embeddings_file: precomputed ``(N, E)`` item embeddings (``.npy``) instead of encoding.
        **extra: more policy kwargs (``value_hidden``, ``optimizer_kwargs``, ...).
    """
    config = env if isinstance(env, EnvConfig) else getattr(env, "config", None)
    if config is None and hasattr(env, "unwrapped"):
        config = getattr(env.unwrapped, "config", None)
    if not isinstance(config, EnvConfig):
        raise TypeError(f"cannot find a driftrec EnvConfig on {env!r}; pass the env or its config")
    att = _attention_config(attention)
    att = dataclasses.replace(att, history_len=config.session.history_len)
    encoder = None
    if not ids_only and embeddings_file is None:
        encoder = dataclasses.asdict(text_encoder or TextEncoderConfig())
    spec = ItemTableSpec(
        env_config=config.to_dict(), text_encoder=encoder, embeddings_file=embeddings_file
    )
    if config.choice.no_repeat:  # a clicked item is consumed: never recommend it again
        extra.setdefault("mask_consumed", True)
    return {"item_table": spec, "attention": att, **extra}


@dataclass(frozen=True)
class _LinearDecay:
    """An SB3 schedule: ``start`` at progress remaining 1, falling linearly to ``end`` at 0
    (SB3's own ``LinearSchedule`` is newer than the oldest stable-baselines3 driftrec supports)."""

    start: float
    end: float

    def __call__(self, progress_remaining: float) -> float:
        # the arithmetic of SB3's LinearSchedule(start, end, 1.0), so the rates are bit-equal
        return self.start + (1 - progress_remaining) * (self.end - self.start) / 1.0


class BudgetPPO(PPO):
    """PPO whose schedules run over a fixed budget of env-steps, however many ``learn`` calls
    train it; a float ``learning_rate`` decays linearly over that budget.

    stable-baselines3 computes a schedule's ``progress_remaining`` from the current ``learn``
    call alone, so a model trained in chunks (``learn(..., reset_num_timesteps=False)``, as
    :func:`~driftrec.agents.online.run_online` does between a run's records) would restart a
    decaying schedule at every chunk. Here the progress is ``max(0, 1 - num_timesteps /
    budget_timesteps)`` over every call, and a float ``learning_rate`` becomes a linear decay
    to ``final_lr_fraction`` of itself at ``budget_timesteps`` (where it stays; with the default
    0 the model stops changing there). A callable ``learning_rate`` (or ``clip_range``) is used
    as given, with that progress.

    Args:
        budget_timesteps: the env-steps the schedules run over (all ``learn`` calls together).
        final_lr_fraction: the learning rate at the end of the budget, as a fraction of the
            first, in ``[0, 1]``.
        *args, **kwargs: as for :class:`~stable_baselines3.PPO`.
    """

    def __init__(
        self,
        *args: Any,
        budget_timesteps: int = 262_144,
        final_lr_fraction: float = 0.0,
        **kwargs: Any,
    ) -> None:
        check_int("budget_timesteps", budget_timesteps, 1)
        check_float("final_lr_fraction", final_lr_fraction, 0.0, 1.0)
        self.budget_timesteps = int(budget_timesteps)
        self.final_lr_fraction = float(final_lr_fraction)
        rate = kwargs.get("learning_rate", 3e-4)
        if isinstance(rate, int | float) and not isinstance(rate, bool):
            kwargs["learning_rate"] = _LinearDecay(
                float(rate), float(rate) * self.final_lr_fraction
            )
        super().__init__(*args, **kwargs)

    def _update_current_progress_remaining(self, num_timesteps: int, total_timesteps: int) -> None:
        self._current_progress_remaining = max(0.0, 1.0 - num_timesteps / self.budget_timesteps)


PPO.policy_aliases[POLICY_NAME] = AttentionActorCriticPolicy
A2C.policy_aliases[POLICY_NAME] = AttentionActorCriticPolicy
MaskablePPO.policy_aliases[POLICY_NAME] = MaskableAttentionActorCriticPolicy
DQN.policy_aliases[POLICY_NAME] = AttentionDQNPolicy
