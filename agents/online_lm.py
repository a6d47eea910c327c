"""The language model learns from feedback during a run: in-run fine-tuning of the item tower.

The text encoder is frozen by default (:mod:`driftrec.agents.text_encoder`), and ``driftrec
finetune`` adapts it offline between phases (:mod:`driftrec.agents.lora`). Here it keeps
learning *inside* a run, from what the agents observe and nothing else:

* :class:`ClickLogBuffer` keeps the run's own click log as it grows: every impression the user
  clicked (``info["clicked_item"]``, the click the agent saw) whose user had clicked something
  before, with the history the agent observed then. No interest, probability or oracle field is
  read.
* every ``every`` global steps, :class:`InRunFinetuner` trains the same LoRA adapter further on
  that log (the InfoNCE click objective of :mod:`driftrec.agents.lora` with its retention term;
  :class:`~driftrec.agents.lora.ClickTrainer` keeps the optimizer state across refreshes) and
  re-encodes the item texts that can still be recommended: with a changed adapter *every*
  text's embedding changes, so what can be saved is the texts that cannot be shown before the
  next refresh (not yet released) and, with ``window``, those released longer ago than that
  (old items keep their previous embedding). The new table goes into the running agent
  (:func:`swap_item_table`: the attention policy's ``set_item_table``, or
  ``history-similarity``'s ``set_item_features``).

Each refresh is timed (training and re-encoding seconds); the runner reports them with the
run's share in ``done.json``. All draws come from generators seeded by the run seed, so a run
that is redone gives the same adapter.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from driftrec.agents.lora import ClickLog, ClickTrainer, FinetuneSettings, LoraSettings
from driftrec.envs.config import check_int
from driftrec.envs.observation import ObservationLayout

if TYPE_CHECKING:
    from driftrec.agents.online import StepRecord
    from driftrec.agents.text_encoder import TextEncoderConfig

__all__ = [
    "InRunFinetuneSettings",
    "ClickLogBuffer",
    "InRunFinetuner",
    "RefreshRecord",
    "swap_item_table",
    "supports_item_refresh",
    "REFRESH_AGENTS",
]

REFRESH_AGENTS = (
    "history-similarity",
    "attention-ppo",
    "attention-a2c",
    "attention-maskable-ppo",
    "attention-dqn",
)
"""The registry agents whose item table can be swapped during a run."""


def supports_item_refresh(name: str) -> bool:
    """Whether registry agent ``name`` reads the text embeddings and can take a new table."""
    return name in REFRESH_AGENTS


@dataclass(frozen=True)
class InRunFinetuneSettings:
    """How a run fine-tunes its text encoder (``driftrec run --finetune-every N``).

    Attributes:
        every: global steps between refreshes (the first one after ``every`` steps).
        method: ``"lora"`` (adapters) or ``"full"`` (every encoder weight but the pooler: the
            contrast that forgets more).
        rank: LoRA rank.
        alpha: LoRA scaling numerator.
        targets: the ``Linear`` modules adapted (``query``/``value``).
        learning_rate: AdamW step size.
        steps: optimizer steps per refresh.
        batch_size: clicks per optimizer step.
        negatives: skipped (or random) items per click (with ``in_batch``, beside the batch's).
        in_batch: contrast each click with the batch's other items too (False, the default
            since 0.5.0: only with its own ``negatives``, the impressions the same user
            skipped). The run's log is the recommender's own: the other users' items differ
            from a user's history in what the recommender matched on, so contrasting with them
            teaches that, while what this user was shown and skipped teaches what the clicks
            reveal. On JargonNews, seeds 1-5, it tripled history-similarity's gain (+0.193
            against +0.064) and made attention-ppo's decided (+0.035 against +0.016;
            BENCHMARKS.md).
        history_items: most recent clicked history items in the user vector.
        temperature: softmax temperature of the cosine scores.
        retain_weight: weight of the retention term (anchor texts outside the catalog kept
            near the base model); 0 turns it off.
        window: re-encode only items released at most this many global steps before the
            refresh (older items keep their previous embedding); None re-encodes every item
            that can be shown before the next refresh.
    """

    every: int
    method: str = "lora"
    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("query", "value")
    learning_rate: float = 2e-3
    steps: int = 20
    batch_size: int = 8
    negatives: int = 2
    in_batch: bool = False
    history_items: int = 2
    temperature: float = 0.1
    retain_weight: float = 1.0
    window: int | None = None

    def __post_init__(self) -> None:
        check_int("every", self.every, 1)
        if self.window is not None:
            check_int("window", self.window, 1)
        object.__setattr__(self, "targets", tuple(self.targets))
        self.finetune_settings(0)  # every training field checked now, naming the field

    def finetune_settings(self, seed: int) -> FinetuneSettings:
        """The :class:`~driftrec.agents.lora.FinetuneSettings` of one refresh, seeded."""
        return FinetuneSettings(
            method=self.method,
            lora=LoraSettings(rank=self.rank, alpha=self.alpha, targets=self.targets),
            learning_rate=self.learning_rate,
            steps=self.steps,
            batch_size=self.batch_size,
            negatives=self.negatives,
            in_batch=self.in_batch,
            history_items=self.history_items,
            temperature=self.temperature,
            retain_weight=self.retain_weight,
            seed=seed,
        )

    @classmethod
    def from_config(cls, every: int, settings: Mapping[str, Any] | None) -> InRunFinetuneSettings:
        """Build from an experiment's ``finetune_every`` and ``finetune`` dict; an unknown key
        is named with the ones that exist."""
        settings = dict(settings or {})
        known = [f.name for f in dataclasses.fields(cls) if f.name != "every"]
        for key in settings:
            if key not in known:
                raise ValueError(f"unknown 'finetune' setting {key!r}; expected one of {known}")
        return cls(every=every, **settings)


class ClickLogBuffer:
    """The run's click log as it grows (single items and slates alike).

    Only the impressions that can become training examples are kept: a click (the item in
    ``info["clicked_item"]``) by a user whose observed history already holds a click.

    Args:
        layout: the observation layout of the run's env.
    """

    def __init__(self, layout: ObservationLayout) -> None:
        self.layout = layout
        self._parts: list[tuple[NDArray[Any], ...]] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, record: StepRecord) -> None:
        """Keep the usable clicks of one vector step."""
        clicked = np.asarray(record.info["clicked_item"], dtype=np.int64)  # (B,), -1: no click
        obs = self.layout.split(np.asarray(record.observation))
        earlier = (obs.mask > 0.5) & (obs.feedback > 0)  # (B, H) clicks the user had made
        rows = np.flatnonzero((clicked >= 0) & earlier.any(axis=1))
        if rows.size == 0:
            return
        self._parts.append(
            (
                obs.item_ids[rows].astype(np.int64),
                obs.feedback[rows].astype(np.float32),
                obs.mask[rows] > 0.5,
                clicked[rows],
            )
        )
        self._size += int(rows.size)

    def log(self) -> ClickLog:
        """Everything kept so far as a :class:`~driftrec.agents.lora.ClickLog`."""
        h = self.layout.history_len
        if not self._parts:
            empty = np.zeros((0, h))
            return ClickLog(
                empty.astype(np.int64),
                empty.astype(np.float32),
                empty.astype(bool),
                np.zeros(0, dtype=np.int64),
                np.zeros(0, dtype=bool),
            )
        if len(self._parts) > 1:  # concatenate once; later calls reuse it
            self._parts = [tuple(np.concatenate(c) for c in zip(*self._parts, strict=True))]
        ids, feedback, mask, items = self._parts[0]
        return ClickLog(ids, feedback, mask, items, np.ones(items.shape[0], dtype=bool))


@dataclass
class RefreshRecord:
    """One refresh: when, how much it trained on, what it cost (wall seconds)."""

    step: int
    examples: int
    texts_encoded: int
    train_seconds: float
    encode_seconds: float
    loss_first: float
    loss_last: float
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (rounded)."""
        out = dataclasses.asdict(self)
        for key in ("train_seconds", "encode_seconds", "loss_first", "loss_last"):
            out[key] = round(float(out[key]), 4)
        return out


@dataclass
class InRunFinetuner:
    """Fine-tunes a run's text encoder on its own click log and refreshes its item table.

    Args:
        settings: what to train and when.
        texts: the catalog's item texts (item-id order).
        release_step: ``(N,)`` the catalog's release steps (public: the agents mask with them).
        base_table: ``(N, E)`` the frozen encoder's embeddings (the table before any refresh).
        layout: the env's observation layout.
        text_encoder: the encoder's configuration (model, max length, device).
        seed: seeds the adapter's initialisation and the example sampling.
        anchor_texts: texts the retention term keeps near the base model.
        horizon: the run's last global step (no text released after it is encoded).
    """

    settings: InRunFinetuneSettings
    texts: Sequence[str]
    release_step: NDArray[np.int64]
    base_table: NDArray[np.float32]
    layout: ObservationLayout
    text_encoder: TextEncoderConfig
    seed: int = 0
    anchor_texts: Sequence[str] | None = None
    horizon: int | None = None
    refreshes: list[RefreshRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        from driftrec.agents.text_encoder import TextEncoder

        self.release_step = np.asarray(self.release_step, dtype=np.int64)
        self.table = np.array(self.base_table, dtype=np.float32, copy=True)
        if self.table.shape[0] != len(self.texts) or self.release_step.shape[0] != len(self.texts):
            raise ValueError(
                f"'base_table' ({self.table.shape[0]} rows) and 'release_step' "
                f"({self.release_step.shape[0]}) must have one entry per text ({len(self.texts)})"
            )
        self.buffer = ClickLogBuffer(self.layout)
        cfg = dataclasses.replace(self.text_encoder, show_progress=False)
        self.encoder = TextEncoder(cfg)
        self.trainer: ClickTrainer | None = None  # built at the first refresh with enough clicks
        self.next_step = self.settings.every

    def observe(self, record: StepRecord) -> None:
        """Log one vector step (the usable clicks only)."""
        self.buffer.add(record)

    def to_encode(self, clock: int) -> NDArray[np.int64]:
        """The items whose embedding a refresh at ``clock`` recomputes: released by the next
        refresh (or the run's end) and, with ``window``, not before ``clock - window``."""
        until = clock + self.settings.every
        if self.horizon is not None:
            until = min(until, self.horizon)
        pick = self.release_step <= until
        if self.settings.window is not None:
            pick &= self.release_step >= clock - self.settings.window
        return np.flatnonzero(pick)

    def refresh(self, clock: int) -> NDArray[np.float32] | None:
        """Train on the log so far, re-encode, and return the new ``(N, E)`` table.

        Returns None (and records why) when the log has fewer than 2 usable clicks yet.
        """
        self.next_step = clock + self.settings.every
        log = self.buffer.log()
        usable = int(log.click_examples().shape[0])
        if usable < 2:
            self.refreshes.append(
                RefreshRecord(
                    clock, usable, 0, 0.0, 0.0, float("nan"), float("nan"), "too few clicks"
                )
            )
            return None
        if self.trainer is None:
            self.trainer = ClickTrainer(
                self.encoder,
                self.texts,
                self.settings.finetune_settings(self.seed),
                anchor_texts=self.anchor_texts,
            )
        result = self.trainer.train(log, self.settings.steps)
        items = self.to_encode(clock)
        t0 = time.perf_counter()
        if items.size:
            self.table[items] = self.encoder.encode([self.texts[i] for i in items])
        encode_s = time.perf_counter() - t0
        self.refreshes.append(
            RefreshRecord(
                step=clock,
                examples=usable,
                texts_encoded=int(items.size),
                train_seconds=result.train_seconds,
                encode_seconds=encode_s,
                loss_first=float(np.mean(result.losses[: max(1, len(result.losses) // 4)])),
                loss_last=float(np.mean(result.losses[-max(1, len(result.losses) // 4) :])),
            )
        )
        return self.table.copy()

    @property
    def trained(self) -> bool:
        """Whether at least one refresh trained the encoder."""
        return self.trainer is not None

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embeddings of ``texts`` with the encoder as trained so far."""
        return self.encoder.encode(list(texts))

    def summary(self, run_seconds: float) -> dict[str, Any]:
        """What the refreshes cost: per refresh, in total and as a share of the run's wall time."""
        cost = sum(r.train_seconds + r.encode_seconds for r in self.refreshes)
        done = [r for r in self.refreshes if r.skipped is None]
        return {
            "settings": dataclasses.asdict(self.settings)
            | {"targets": list(self.settings.targets)},
            "refresh_steps": [r.step for r in done],
            "refreshes": [r.to_dict() for r in self.refreshes],
            "seconds": round(cost, 3),
            "seconds_per_refresh": round(cost / len(done), 3) if done else None,
            "share_of_run": round(cost / run_seconds, 4) if run_seconds > 0 else None,
            "trainable_params": self.trainer.trainable_params if self.trainer else 0,
            "logged_clicks": len(self.buffer),
        }


def swap_item_table(built: Any, table: NDArray[np.float32]) -> None:
    """Put a new ``(N, E)`` item table into a running agent (a registry ``BuiltAgent``).

    The attention policies get it through ``AttentionRecommender.set_item_table`` (DQN's
    target network too), ``history-similarity`` through ``set_item_features``.

    Raises:
        TypeError: the agent has no item table to swap.
    """
    agent = built.agent
    if built.is_sb3:
        policy = agent.policy
        if hasattr(policy, "recommender"):
            recommenders = [policy.recommender]
        elif hasattr(policy, "q_net") and hasattr(policy.q_net, "recommender"):
            recommenders = [policy.q_net.recommender, policy.q_net_target.recommender]
        else:
            raise TypeError(f"{type(policy).__name__} has no item table to refresh")
        for rec in recommenders:
            if rec.id_embedding is not None and not bool(rec.item_table.any()):
                raise TypeError("the id-only policy has no text table to refresh")
            rec.set_item_table(table, rec.release_step.cpu().numpy())
        return
    setter = getattr(agent, "set_item_features", None)
    if not callable(setter):
        raise TypeError(f"{type(agent).__name__} has no item features to refresh")
    setter(table)
