"""Adapting the text encoder to recommendation from click feedback: LoRA adapters (``peft``).

The item tower's language model (:mod:`driftrec.agents.text_encoder`) is pretrained for generic
sentence similarity. Where the wording of item texts misleads about what users like, its
embeddings are the bottleneck of every consumer (``history-similarity``, the attention policy).
This module fine-tunes it from logged interactions, and keeps what it knows by training only
low-rank adapters (LoRA) on the attention projections:

* :class:`LoraSettings` (rank, alpha, target module names; the BERT pooler, which the
  mean-pooled encoder never uses, is always excluded) and :func:`add_lora`;
* :func:`collect_click_log` rolls out a behaviour agent (any registry agent) and keeps every
  impression with the user's observed history (:class:`ClickLog`);
* :func:`finetune_encoder` trains on (user history, clicked item vs other items) examples with
  an InfoNCE loss: the user vector is the normalised mean embedding of the (up to
  ``history_items`` most recent) items the user clicked in the observed history, the candidates
  are the clicked item, ``negatives`` items the user skipped (random catalog items when the
  history has too few) and every other candidate in the minibatch. Only the minibatch's texts
  are encoded, all with gradient (both towers share the encoder), so no item table has to be
  kept fresh while training; the consumer's item table is re-encoded once afterwards
  (``driftrec finetune`` measures that cost). ``method="full"`` fine-tunes every weight
  instead, as the contrast that forgets more. An optional retention term
  (``retain_weight``) keeps the embeddings of anchor texts outside the catalog near the base
  model's, to protect what the model knows;
* :func:`save_adapter` writes the adapter (``adapter_model.safetensors``, a few hundred kB for
  MiniLM at rank 8) and a JSON manifest atomically into a directory, :func:`load_adapter`
  checks the manifest against the base model and applies it, and :func:`adapter_identity` is
  the hash of the adapter's weights that the embedding cache keys on.

Use an adapter with ``TextEncoderConfig(adapter=DIR)`` (``driftrec run --text-adapter DIR``);
``driftrec finetune`` trains one. ``peft`` is needed (``pip install "driftrec[lora]"``).

Training runs the model in eval mode (no dropout), with torch's generator seeded from
``FinetuneSettings.seed`` inside a forked RNG state, so the same settings and log give the same
adapter, and the caller's global torch RNG is left as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from driftrec.atomic import atomic_open, current_umask
from driftrec.envs.config import check_float, check_int

if TYPE_CHECKING:
    import torch

    from driftrec.agents.text_encoder import TextEncoder
    from driftrec.envs.config import EnvConfig

__all__ = [
    "LoraSettings",
    "FinetuneSettings",
    "FinetuneResult",
    "ClickLog",
    "LORA_INSTALL_HINT",
    "MANIFEST_NAME",
    "add_lora",
    "lora_target_modules",
    "collect_click_log",
    "default_anchor_texts",
    "finetune_encoder",
    "ClickTrainer",
    "save_adapter",
    "load_adapter",
    "read_manifest",
    "check_adapter_base",
    "adapter_identity",
    "heldout_texts",
    "retention_metrics",
    "portable_model_reference",
]

LORA_INSTALL_HINT = 'pip install "driftrec[lora]"   (peft)'
MANIFEST_NAME = "driftrec_adapter.json"
WEIGHTS_NAME = "adapter_model.safetensors"
PEFT_CONFIG_NAME = "adapter_config.json"
_FORMAT = "driftrec-lora-adapter-v1"
DEFAULT_BASE_REFERENCE = "sentence-transformers/all-MiniLM-L6-v2"
"""How adapters of the packaged MiniLM name their base model (its hub id)."""
_EXCLUDED_PREFIXES = ("pooler",)  # BERT's pooler: unused by mean pooling, its Linear is "dense"


def _import_peft() -> Any:
    try:
        import peft
    except ImportError as err:
        raise ImportError(
            f"LoRA adapters need peft ({err}). Install it with: {LORA_INSTALL_HINT}"
        ) from None
    return peft


# --------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoraSettings:
    """Where the low-rank adapters go and how big they are.

    Attributes:
        rank: LoRA rank ``r`` (1 to 256).
        alpha: LoRA scaling numerator; the update is ``(alpha / rank) * B @ A``.
        targets: names of the ``Linear`` modules to adapt, matched against the last part of
            each module's name (BERT: ``query``, ``key``, ``value``, ``dense``). Modules under
            the pooler are never adapted.
    """

    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("query", "value")

    def __post_init__(self) -> None:
        check_int("rank", self.rank, 1, 256)
        check_float("alpha", self.alpha, 0.0, 1e6, low_open=True)
        targets = self.targets
        if isinstance(targets, str) or not isinstance(targets, Sequence) or not targets:
            raise ValueError(
                f"'targets' must be a non-empty list of module names (got {targets!r})"
            )
        for t in targets:
            if not isinstance(t, str) or not t or "." in t:
                raise ValueError(
                    f"'targets' entries must be module names such as 'query' (got {t!r})"
                )
        object.__setattr__(self, "targets", tuple(targets))


@dataclass(frozen=True)
class FinetuneSettings:
    """How :func:`finetune_encoder` trains.

    Attributes:
        method: ``"lora"`` (adapters only) or ``"full"`` (every encoder weight but the pooler).
        lora: the adapters (``method="lora"``).
        learning_rate: AdamW step size. On MiniLM (BENCHMARKS.md) LoRA at 1e-4 kept held-out
            embeddings in place (mean cosine 0.97) and 1e-3 moved them far (0.57) unless the
            retention term was on; full fine-tuning at 1e-5 kept 0.91.
        steps: optimizer steps.
        batch_size: click examples per step.
        negatives: skipped (or random) items per example, on top of the in-batch candidates.
        in_batch: also contrast each click with the other examples' items of the batch (their
            clicks and negatives). False keeps only its own ``negatives``: with a log that a
            recommender collected, those are impressions it showed the same user, so the
            contrast is between what was shown and clicked and what was shown and skipped
            (the other users' items mostly differ from this user's history in what the
            recommender matched on, which teaches that instead of what the clicks reveal).
        history_items: most recent clicked history items per user vector.
        temperature: softmax temperature of the cosine scores.
        weight_decay: AdamW weight decay.
        retain_weight: weight of a retention term, ``mean(1 - cos(adapted, base))`` over
            ``batch_size`` anchor texts per step (texts outside the catalog, passed to
            :func:`finetune_encoder`; their base embeddings are computed once). 0 turns it off.
        seed: seeds the example sampling and the adapter initialisation.
    """

    method: str = "lora"
    lora: LoraSettings = field(default_factory=LoraSettings)
    learning_rate: float = 1e-4
    steps: int = 100
    batch_size: int = 16
    negatives: int = 2
    in_batch: bool = True
    history_items: int = 4
    temperature: float = 0.1
    weight_decay: float = 0.0
    retain_weight: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("lora", "full"):
            raise ValueError(f"'method' must be 'lora' or 'full' (got {self.method!r})")
        if isinstance(self.lora, Mapping):
            object.__setattr__(self, "lora", LoraSettings(**self.lora))
        if not isinstance(self.lora, LoraSettings):
            raise TypeError(f"'lora' must be a LoraSettings (got {self.lora!r})")
        check_float("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        check_int("steps", self.steps, 1)
        check_int("batch_size", self.batch_size, 2, 4096)
        check_int("negatives", self.negatives, 0, 256)
        if not isinstance(self.in_batch, bool):
            raise TypeError(f"'in_batch' must be true or false (got {self.in_batch!r})")
        if not self.in_batch and self.negatives < 1:
            raise ValueError("'in_batch' false needs 'negatives' >= 1 (got 0): nothing to contrast")
        check_float("temperature", self.temperature, 0.0, 10.0, low_open=True)
        check_int("history_items", self.history_items, 1, 1024)
        check_float("weight_decay", self.weight_decay, 0.0, 1.0)
        check_float("retain_weight", self.retain_weight, 0.0, 1e6)
        check_int("seed", self.seed, 0)


@dataclass
class FinetuneResult:
    """What a fine-tuning run did and cost (wall seconds; a shared machine makes them noisy)."""

    method: str
    steps: int
    examples: int
    trainable_params: int
    losses: list[float]
    train_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the per-step losses as a list)."""
        return asdict(self)


# --------------------------------------------------------------------------------------------
# adapters
# --------------------------------------------------------------------------------------------
def lora_target_modules(model: Any, targets: Sequence[str]) -> list[str]:
    """Full names of the ``Linear`` modules of ``model`` whose last name part is in ``targets``,
    the pooler's excluded.

    Raises:
        ValueError: when a target matches no module (naming the names that exist).
    """
    import torch

    linear = [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not name.startswith(_EXCLUDED_PREFIXES)
    ]
    chosen = [name for name in linear if name.rsplit(".", 1)[-1] in targets]
    found = {name.rsplit(".", 1)[-1] for name in chosen}
    missing = [t for t in targets if t not in found]
    if missing:
        available = sorted({name.rsplit(".", 1)[-1] for name in linear})
        raise ValueError(
            f"'targets' {missing} match no Linear module of the encoder; expected names "
            f"from {available}"
        )
    return chosen


def add_lora(model: Any, settings: LoraSettings) -> Any:
    """Wrap a transformers model in a ``peft`` LoRA model (adapters trainable, base frozen).

    The adapters start as an exact no-op (peft initialises ``B`` to zero), so the wrapped
    model's output equals the base model's until it is trained.
    """
    peft = _import_peft()
    config = peft.LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=0.0,
        target_modules=lora_target_modules(model, settings.targets),
        bias="none",
    )
    return peft.get_peft_model(model, config)


def _sha(identity: str) -> str:
    """The content-hash part of a :func:`~driftrec.agents.text_encoder.model_identity`."""
    return identity.rsplit("#", 1)[-1]


def adapter_identity(adapter_dir: str | os.PathLike[str]) -> str:
    """sha256 over an adapter's weights file and its LoRA settings (the cache key part).

    Raises:
        FileNotFoundError / ValueError: see :func:`read_manifest`.
    """
    manifest = read_manifest(adapter_dir)
    digest = hashlib.sha256(_FORMAT.encode())
    digest.update(json.dumps(manifest["lora"], sort_keys=True).encode())
    with (Path(adapter_dir) / WEIGHTS_NAME).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(adapter_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an adapter directory, checked.

    Raises:
        FileNotFoundError: the directory, its manifest or its weights file is missing.
        ValueError: the manifest is not valid JSON or not a driftrec adapter manifest.
    """
    directory = Path(adapter_dir).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(
            f"'adapter' {str(adapter_dir)!r} is not a directory; expected a directory written "
            "by 'driftrec finetune' (save_adapter)"
        )
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"'adapter' {str(adapter_dir)!r} has no {MANIFEST_NAME}; expected a directory "
            "written by 'driftrec finetune' (save_adapter)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise ValueError(
            f"{path}: 'format' must be {_FORMAT!r} (got "
            f"{manifest.get('format') if isinstance(manifest, dict) else manifest!r})"
        )
    for key in ("base_model_sha256", "lora"):
        if key not in manifest:
            raise ValueError(f"{path}: the manifest has no {key!r}")
    lora = manifest["lora"]
    if not isinstance(lora, dict):
        raise ValueError(f"{path}: 'lora' must be a JSON object of LoRA settings (got {lora!r})")
    try:
        LoraSettings(**{**lora, "targets": tuple(lora.get("targets", ()))})
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: 'lora' is invalid ({err})") from None
    if not (directory / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"'adapter' {str(adapter_dir)!r} has no {WEIGHTS_NAME}")
    _check_peft_config(directory / PEFT_CONFIG_NAME)
    _check_weights(directory / WEIGHTS_NAME, manifest.get("weights_sha256"))
    return manifest


_DAMAGED = "expected the adapter as 'driftrec finetune' wrote it (train it again)"


def _check_peft_config(path: Path) -> None:
    """peft's ``adapter_config.json``: a JSON object of a LoRA adapter, or an error naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; {_DAMAGED}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err}); {_DAMAGED}") from None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        got = config.get("peft_type") if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"{path}: 'peft_type' must be 'LORA' (got {got!r}); {_DAMAGED}")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_weights(path: Path, sha256: Any) -> None:
    """The weights file: the hash the manifest records (adapters saved since it does), a
    readable safetensors file, LoRA tensors only, every value finite; else an error naming it."""
    if sha256 is not None and _file_sha256(path) != sha256:
        raise ValueError(
            f"{path}: its sha256 differs from the one {MANIFEST_NAME} records (the file was "
            f"changed or damaged after training); {_DAMAGED}"
        )
    import torch
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            names = list(f.keys())
            if not names:
                raise ValueError("it holds no tensors")
            for name in names:
                if "lora_" not in name:
                    raise ValueError(f"tensor {name!r} is not a LoRA weight")
                if not bool(torch.isfinite(f.get_tensor(name)).all()):
                    raise ValueError(f"tensor {name!r} has non-finite values (inf or nan)")
    except Exception as err:  # safetensors raises its own error type for a damaged file
        detail = " ".join(str(err).split()) or type(err).__name__
        raise ValueError(f"{path}: not usable adapter weights ({detail}); {_DAMAGED}") from None


def save_adapter(
    peft_model: Any,
    out_dir: str | os.PathLike[str],
    *,
    base_model: str,
    base_identity: str,
    settings: LoraSettings,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a LoRA model's adapter and a manifest into ``out_dir``, atomically.

    Everything is written into a temporary directory next to ``out_dir`` that then takes its
    place, so a reader never sees a half-written adapter. An existing adapter directory is
    replaced; an existing directory that holds anything else is refused.

    Args:
        peft_model: the ``peft`` model whose (default) adapter is saved.
        out_dir: the adapter directory.
        base_model: the base model as configured (a directory or hub id), for the record.
        base_identity: :func:`~driftrec.agents.text_encoder.model_identity` of the base model;
            :func:`load_adapter` refuses any other base.
        settings: the LoRA settings it was built with.
        extra: more JSON-ready fields for the manifest (training settings and costs).

    Returns:
        ``out_dir`` as a path.

    Raises:
        FileExistsError: ``out_dir`` exists and is not an empty directory or an adapter.
    """
    out = Path(out_dir).expanduser()
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"adapter output {str(out)!r} exists and is not a directory")
        if any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
            raise FileExistsError(
                f"adapter output {str(out)!r} is a non-empty directory that holds no adapter; "
                "expected a new or empty directory, or an adapter to replace"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        peft_model.save_pretrained(str(tmp), safe_serialization=True)
        (tmp / "README.md").unlink(missing_ok=True)  # peft's model-card template
        reference = portable_model_reference(base_model)
        _set_peft_base(tmp / PEFT_CONFIG_NAME, reference)
        manifest = {
            "format": _FORMAT,
            "base_model": reference,
            "base_model_sha256": _sha(base_identity),
            "weights_sha256": _file_sha256(tmp / WEIGHTS_NAME),
            "lora": {**asdict(settings), "targets": list(settings.targets)},
            "trainable_params": int(
                sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)
            ),
            **dict(extra or {}),
        }
        with atomic_open(tmp / MANIFEST_NAME, "w") as f:
            f.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        mask = current_umask()  # as if written by open/mkdir: peft's weights file was 0600
        for entry in tmp.iterdir():
            os.chmod(entry, 0o666 & ~mask)
        os.chmod(tmp, 0o777 & ~mask)
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def portable_model_reference(model: str) -> str:
    """How an adapter names its base model, portable between machines: the hub id of the
    packaged MiniLM (not its install path), a hub id as it is, a local directory by its name."""
    from driftrec.agents.text_encoder import default_model_path

    path = Path(model).expanduser()
    if path.is_dir():
        if path.resolve() == Path(default_model_path()).resolve():
            return DEFAULT_BASE_REFERENCE
        return path.resolve().name
    return model


def _set_peft_base(path: Path, reference: str) -> None:
    """peft records the base model's path (absolute for a local one); record ``reference``."""
    config = json.loads(path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = reference
    with atomic_open(path, "w") as f:
        f.write(json.dumps(config, indent=2, sort_keys=True) + "\n")


def check_adapter_base(adapter_dir: str | os.PathLike[str], base_identity: str) -> None:
    """Raise ``ValueError`` unless the adapter was trained on the model of ``base_identity``
    (:func:`~driftrec.agents.text_encoder.model_identity`; the content hash is compared, so a
    copy of the same model elsewhere is fine)."""
    manifest = read_manifest(adapter_dir)
    if manifest["base_model_sha256"] != _sha(base_identity):
        raise ValueError(
            f"'adapter' {str(adapter_dir)!r} was trained on base model "
            f"{manifest.get('base_model')!r} (content sha256 {manifest['base_model_sha256'][:12]}"
            f"...), but the encoder's model has sha256 {_sha(base_identity)[:12]}...; expected "
            "the base model it was trained on (--text-model)"
        )


def load_adapter(model: Any, adapter_dir: str | os.PathLike[str], base_identity: str) -> Any:
    """Apply a saved adapter to ``model`` (the base it was trained on), frozen, in eval mode.

    Args:
        model: the base transformers model.
        adapter_dir: a directory written by :func:`save_adapter`.
        base_identity: :func:`~driftrec.agents.text_encoder.model_identity` of ``model``.

    Returns:
        The ``peft`` model; ``with model.disable_adapter(): ...`` gives the base output.

    Raises:
        FileNotFoundError / ValueError: a missing or invalid adapter (see :func:`read_manifest`),
            or an adapter trained on another base model.
    """
    check_adapter_base(adapter_dir, base_identity)
    peft = _import_peft()
    wrapped = peft.PeftModel.from_pretrained(model, str(Path(adapter_dir).expanduser()))
    wrapped.eval()
    wrapped.requires_grad_(False)
    return wrapped


# --------------------------------------------------------------------------------------------
# logged interactions
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClickLog:
    """Impressions with the history the user had when each was shown (single-item actions).

    Attributes:
        history_items: ``(M, H)`` item ids of the observed history.
        history_feedback: ``(M, H)`` 1 for a click, 0 for a skip.
        history_mask: ``(M, H)`` which history entries are real.
        items: ``(M,)`` the item shown.
        clicked: ``(M,)`` whether it was clicked.
    """

    history_items: NDArray[np.int64]
    history_feedback: NDArray[np.float32]
    history_mask: NDArray[np.bool_]
    items: NDArray[np.int64]
    clicked: NDArray[np.bool_]

    def __post_init__(self) -> None:
        m = self.items.shape[0]
        for name in ("history_items", "history_feedback", "history_mask"):
            arr = getattr(self, name)
            if arr.ndim != 2 or arr.shape[0] != m:
                raise ValueError(f"'{name}' must have shape ({m}, H) (got {arr.shape})")
        if self.clicked.shape != (m,):
            raise ValueError(f"'clicked' must have shape ({m},) (got {self.clicked.shape})")

    def __len__(self) -> int:
        return int(self.items.shape[0])

    @classmethod
    def concatenate(cls, logs: Sequence[ClickLog]) -> ClickLog:
        """One log of the impressions of ``logs`` (same history length), in order."""
        if not logs:
            raise ValueError("'logs' must hold at least one ClickLog")
        return cls(*(np.concatenate([getattr(g, f.name) for g in logs]) for f in fields(cls)))

    def click_examples(self) -> NDArray[np.int64]:
        """Indices of the clicked impressions whose user had clicked something before."""
        earlier = (self.history_mask & (self.history_feedback > 0.5)).any(axis=1)
        return np.flatnonzero(self.clicked & earlier)


def collect_click_log(
    env_config: EnvConfig,
    *,
    agent: str = "random",
    num_envs: int = 32,
    steps: int = 200,
    seed: int = 0,
    agent_kwargs: Mapping[str, Any] | None = None,
    text_encoder: Any = None,
    learn: bool = True,
) -> ClickLog:
    """Roll out an agent and log every impression with the user's observed history.

    Args:
        env_config: the world (single-item actions: ``slate_size`` 1).
        agent: the behaviour agent: a name (``driftrec agents``), a registered name, an import
            path ``package.module:NAME`` or a ``.zip`` (see
            :func:`driftrec.agents.registry.resolve_agent`).
        num_envs: user slots stepped together.
        steps: global steps.
        seed: seeds the users and the agent.
        agent_kwargs: overrides for the agent.
        text_encoder: a ``TextEncoderConfig`` for agents that read item texts.
        learn: let the agent learn online while it logs (an agent without ``update`` only
            acts).
    """
    from driftrec.agents.online import run_online
    from driftrec.agents.registry import build_agent

    if env_config.choice.slate_size != 1:
        raise ValueError(
            f"'slate_size' must be 1 to log click examples (got {env_config.choice.slate_size})"
        )
    check_int("steps", steps, 1)
    built = build_agent(
        agent,
        env_config,
        num_envs=num_envs,
        seed=seed,
        agent_kwargs=agent_kwargs,
        text_encoder=text_encoder,
    )
    layout = built.env.venv.sim.layout if built.is_sb3 else built.env.sim.layout
    parts: list[tuple[Any, ...]] = []

    def on_step(record: Any) -> None:
        obs = layout.split(record.observation)
        clicked = np.asarray(record.info["clicked_item"]) >= 0
        parts.append((obs.item_ids, obs.feedback, obs.mask, np.asarray(record.actions), clicked))

    from driftrec.agents.registry import FirstStepChecked

    acting = built.agent if built.is_sb3 else FirstStepChecked(built)  # a user's: checked once
    run_online(acting, built.env, steps, learn=learn and built.learns, on_step=on_step)
    cols = [np.concatenate([p[i] for p in parts]) for i in range(5)]
    return ClickLog(
        history_items=cols[0].astype(np.int64),
        history_feedback=cols[1].astype(np.float32),
        history_mask=cols[2].astype(bool),
        items=cols[3].astype(np.int64).reshape(-1),
        clicked=cols[4].astype(bool),
    )


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
def _recent_clicks(log: ClickLog, rows: NDArray[np.int64], k: int) -> NDArray[np.int64]:
    """``(b, k)`` the ``k`` most recent clicked history items of each row, -1 padded."""
    clicked = log.history_mask[rows] & (log.history_feedback[rows] > 0.5)  # (b, H), newest last
    out = np.full((rows.shape[0], k), -1, dtype=np.int64)
    for j in range(rows.shape[0]):
        items = log.history_items[rows[j]][clicked[j]][-k:]
        out[j, : items.shape[0]] = items
    return out


def _negatives(
    rng: np.random.Generator, log: ClickLog, rows: NDArray[np.int64], k: int, num_items: int
) -> NDArray[np.int64]:
    """``k`` items per row: skipped items of its history first, random catalog items after."""
    out = rng.integers(0, num_items, size=(rows.shape[0], k))
    for j, r in enumerate(rows):
        skipped = log.history_items[r][log.history_mask[r] & (log.history_feedback[r] < 0.5)]
        skipped = np.unique(skipped[skipped != log.items[r]])
        take = min(k, skipped.shape[0])
        if take:
            out[j, :take] = rng.choice(skipped, size=take, replace=False)
    return out


def default_anchor_texts(num: int = 240, seed: int = 4242) -> list[str]:
    """Anchor texts for the retention term: a generated catalog's texts (24 topics, mixed).

    Any texts outside the catalog serve; these need no data and cover every generator topic.
    """
    from driftrec.envs.catalog import generate_catalog
    from driftrec.envs.config import CatalogConfig

    config = CatalogConfig(num_items=num, num_topics=24, topic_purity=0.7, seed=seed)
    return generate_catalog(config).texts()


def _check_log(log: ClickLog, num_items: int) -> NDArray[np.int64]:
    if len(log) and (log.items.max() >= num_items or log.history_items.max() >= num_items):
        raise ValueError(
            f"the click log names items beyond the {num_items} texts given; expected the "
            "catalog the log was collected on"
        )
    examples = log.click_examples()
    if examples.shape[0] < 2:
        raise ValueError(
            f"the click log has {examples.shape[0]} usable clicks (a click by a user who had "
            "clicked before); expected at least 2: log more steps or users"
        )
    return examples


def finetune_encoder(
    encoder: TextEncoder,
    texts: Sequence[str],
    log: ClickLog,
    settings: FinetuneSettings | None = None,
    *,
    anchor_texts: Sequence[str] | None = None,
    progress: bool = False,
) -> FinetuneResult:
    """Fine-tune ``encoder`` in place from a click log on the catalog ``texts``.

    With ``method="lora"`` the encoder's model is replaced by a ``peft`` LoRA model (only the
    adapters train; save them with :func:`save_adapter`); with ``method="full"`` every weight
    but the pooler trains. See the module docstring for the objective. The model is left in
    eval mode with gradients off. This is one :meth:`ClickTrainer.train` call of
    ``settings.steps`` steps (:class:`ClickTrainer` keeps training across calls).

    Args:
        encoder: a loaded :class:`~driftrec.agents.text_encoder.TextEncoder` (without adapter).
        texts: the catalog's item texts in item-id order (the ids the log uses).
        log: impressions from :func:`collect_click_log` on that catalog.
        settings: the training settings.
        anchor_texts: texts whose embeddings the retention term keeps near the base model's
            (needed when ``settings.retain_weight > 0``).
        progress: show a bar of the optimizer steps with the running loss.

    Returns:
        The losses and costs.

    Raises:
        ValueError: a log that does not fit ``texts`` or has fewer than 2 usable clicks, or
            ``retain_weight > 0`` without ``anchor_texts``.
    """
    s = settings if settings is not None else FinetuneSettings()
    _check_log(log, len(texts))  # before the model is touched
    trainer = ClickTrainer(encoder, texts, s, anchor_texts=anchor_texts)
    return trainer.train(log, s.steps, progress=progress)


class ClickTrainer:
    """Trains an encoder from click logs, and keeps training it across calls.

    The constructor adds the LoRA adapters (``method="lora"``) or unfreezes the weights
    (``"full"``), builds the AdamW optimizer and, with a retention term, embeds the anchor
    texts with the base model once. Every :meth:`train` call then takes more optimizer steps
    on a log (its optimizer state and example sampling carry over), so a run can fine-tune
    the same adapter again and again as its own click log grows (:mod:`driftrec.agents.online_lm`).
    The encoder's ``identity`` changes with its weights after every call.

    Args:
        encoder: a loaded :class:`~driftrec.agents.text_encoder.TextEncoder` (without adapter).
        texts: the catalog's item texts in item-id order (the ids the logs use).
        settings: the training settings (``steps`` is the default of :meth:`train`).
        anchor_texts: texts the retention term keeps near the base model (``retain_weight > 0``).

    Raises:
        ValueError: ``retain_weight > 0`` without ``anchor_texts``, or an encoder that already
            has an adapter with ``method="lora"``.
    """

    def __init__(
        self,
        encoder: TextEncoder,
        texts: Sequence[str],
        settings: FinetuneSettings | None = None,
        *,
        anchor_texts: Sequence[str] | None = None,
    ) -> None:
        import torch

        s = settings if settings is not None else FinetuneSettings()
        self.settings = s
        self.encoder = encoder
        self.texts = list(texts)
        self.anchors = list(anchor_texts or [])
        if s.retain_weight > 0 and not self.anchors:
            raise ValueError(
                f"'retain_weight' is {s.retain_weight} but no anchor_texts were given; expected "
                "texts outside the catalog whose base embeddings the retention term keeps"
            )
        if s.method == "lora" and type(encoder.model).__module__.startswith("peft"):
            raise ValueError("the encoder already has an adapter; expected a base encoder")
        # before training: the base model's embeddings of the anchors
        self.anchor_base = encoder.encode(self.anchors) if s.retain_weight > 0 else None
        self.rng = np.random.default_rng(s.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s.seed)
            if s.method == "lora":
                encoder.model = add_lora(encoder.model, s.lora)
                params = [p for n, p in encoder.model.named_parameters() if "lora_" in n]
            else:
                params = [
                    p
                    for n, p in encoder.model.named_parameters()
                    if not n.startswith(_EXCLUDED_PREFIXES)
                ]
        self.params = params
        self.base_identity = encoder.identity
        encoder.model.eval()
        encoder.model.requires_grad_(False)
        self.optim = torch.optim.AdamW(params, lr=s.learning_rate, weight_decay=s.weight_decay)
        self.steps_done = 0

    @property
    def trainable_params(self) -> int:
        """Number of trained weights (the adapters', or the whole encoder's but the pooler)."""
        return int(sum(p.numel() for p in self.params))

    def train(
        self, log: ClickLog, steps: int | None = None, *, progress: bool = False
    ) -> FinetuneResult:
        """``steps`` (default: ``settings.steps``) more optimizer steps on ``log``.

        Raises:
            ValueError: a log that does not fit the texts or has fewer than 2 usable clicks.
        """
        from tqdm.auto import tqdm

        s, encoder = self.settings, self.encoder
        steps = s.steps if steps is None else steps
        check_int("steps", steps, 1)
        examples = _check_log(log, len(self.texts))
        for p in self.params:
            p.requires_grad_(True)
        losses: list[float] = []
        t0 = time.perf_counter()
        bar = tqdm(total=steps, desc="fine-tuning", unit="step", disable=not progress)
        try:
            for _ in range(steps):
                loss = self._loss(log, examples)
                self.optim.zero_grad(set_to_none=True)
                loss.backward()
                self.optim.step()
                losses.append(float(loss.detach()))
                bar.update(1)
                if len(losses) % 10 == 0:
                    bar.set_postfix_str(f"loss {np.mean(losses[-10:]):.3f}", refresh=False)
        finally:
            bar.close()
            encoder.model.requires_grad_(False)
            encoder.model.eval()
        train_s = time.perf_counter() - t0
        self.steps_done += steps
        # the weights changed and are not on disk: never pass for the base model's identity
        encoder._identity = f"{self.base_identity}+finetuned#{_tensor_hash(self.params)}"
        return FinetuneResult(
            method=s.method,
            steps=steps,
            examples=int(examples.shape[0]),
            trainable_params=self.trainable_params,
            losses=losses,
            train_seconds=train_s,
        )

    def _loss(self, log: ClickLog, examples: NDArray[np.int64]) -> torch.Tensor:
        """The InfoNCE loss of one minibatch (plus the retention term)."""
        import torch

        s, encoder, texts, rng = self.settings, self.encoder, self.texts, self.rng
        rows = rng.choice(examples, size=min(s.batch_size, examples.shape[0]), replace=False)
        b = rows.shape[0]
        history = _recent_clicks(log, rows, s.history_items)  # (b, k), -1 padded
        negs = _negatives(rng, log, rows, s.negatives, len(texts))  # (b, n)
        candidates = np.concatenate([log.items[rows], negs.reshape(-1)])
        ids, inverse = np.unique(
            np.concatenate([candidates, history[history >= 0]]), return_inverse=True
        )
        emb = encoder.embed([texts[i] for i in ids])  # (U, dim), all with gradient
        slots = np.zeros(history.shape, dtype=np.int64)  # positions of history items in ids
        slots[history >= 0] = inverse[candidates.shape[0] :]
        weights = torch.as_tensor(history >= 0, dtype=emb.dtype, device=encoder.device)
        user = (emb[torch.as_tensor(slots, device=encoder.device)] * weights[..., None]).sum(1)
        user = torch.nn.functional.normalize(user, dim=-1)  # (b, dim)
        cand = np.unique(inverse[: candidates.shape[0]])  # candidate columns of the batch
        cand_t = torch.as_tensor(cand, device=encoder.device)
        logits = user @ emb[cand_t].T / s.temperature  # (b, C)
        column = np.searchsorted(cand, inverse[: candidates.shape[0]])  # candidate -> column
        target = torch.as_tensor(column[:b], device=encoder.device)
        if not s.in_batch:  # each row: its own click and its own negatives only
            own = np.zeros(logits.shape, dtype=bool)
            own[np.arange(b), column[:b]] = True
            own[np.repeat(np.arange(b), negs.shape[1]), column[b:]] = True
            keep = torch.as_tensor(own, device=encoder.device)
            logits = logits.masked_fill(~keep, float("-inf"))
        loss = torch.nn.functional.cross_entropy(logits, target)
        if self.anchor_base is not None:
            anchors = self.anchors
            pick = rng.choice(len(anchors), size=min(s.batch_size, len(anchors)), replace=False)
            now = encoder.embed([anchors[i] for i in pick])
            was = torch.as_tensor(self.anchor_base[pick], device=encoder.device)
            loss = loss + s.retain_weight * (1.0 - (now * was).sum(dim=-1)).mean()
        return loss


def _tensor_hash(tensors: Sequence[torch.Tensor]) -> str:
    """sha256 over the values of ``tensors`` (in order)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# retention: what an adapted encoder still knows
# --------------------------------------------------------------------------------------------
def heldout_texts(
    num: int = 240, num_topics: int = 12, seed: int = 9001
) -> tuple[list[str], NDArray[np.float64]]:
    """General texts outside any training catalog, and their topic mixtures: a generated
    catalog (mixed topics, purity 0.7) whose texts :func:`retention_metrics` compares before
    and after adaptation. The defaults are the ones the retention figures in BENCHMARKS.md use."""
    from driftrec.envs.catalog import generate_catalog
    from driftrec.envs.config import CatalogConfig

    held = generate_catalog(
        CatalogConfig(num_items=num, num_topics=num_topics, topic_purity=0.7, seed=seed)
    )
    return held.texts(), np.asarray(held.topics, dtype=np.float64)


def _spearman(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    def ranks(x: NDArray[np.float64]) -> NDArray[np.float64]:
        order = np.argsort(x, kind="stable")
        r = np.empty_like(x)
        r[order] = np.arange(x.shape[0], dtype=np.float64)
        for v in np.unique(x):  # average ranks of ties (topic overlaps tie a lot)
            tied = x == v
            r[tied] = r[tied].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def retention_metrics(
    base: NDArray[np.float32],
    adapted: NDArray[np.float32],
    topics: NDArray[np.float64],
    *,
    pairs: int = 600,
    seed: int = 0,
) -> dict[str, float]:
    """Drift and capability of ``adapted`` vs ``base`` embeddings of the same held-out texts.

    Returns:
        ``mse`` and ``cosine`` (mean over texts of the squared error per dimension and of the
        cosine between each text's two embeddings), ``topic_acc`` / ``base_topic_acc``
        (leave-one-out nearest-centroid accuracy of the main topic), ``spearman`` /
        ``base_spearman`` (cosine of random pairs vs their topic-mixture overlap).
    """
    rng = np.random.default_rng(seed)
    n = base.shape[0]
    a = rng.integers(0, n, size=pairs)
    b = (a + rng.integers(1, n, size=pairs)) % n  # never a text with itself
    related = np.einsum("pk,pk->p", topics[a], topics[b])
    main = topics.argmax(axis=1)

    def topic_acc(emb: NDArray[np.float32]) -> float:
        k = topics.shape[1]
        sums = np.zeros((k, emb.shape[1]))
        np.add.at(sums, main, emb)
        counts = np.bincount(main, minlength=k).astype(np.float64)
        own = sums[main] - emb  # leave the item out of its own centroid
        cents = sums[None, :, :].repeat(n, axis=0)
        cents[np.arange(n), main] = own
        cnt = np.broadcast_to(counts, (n, k)).copy()
        cnt[np.arange(n), main] -= 1
        cents /= np.maximum(cnt, 1)[:, :, None]
        cents /= np.maximum(np.linalg.norm(cents, axis=2, keepdims=True), 1e-12)
        scores = np.einsum("nkd,nd->nk", cents, emb)
        scores[cnt == 0] = -np.inf
        return float((scores.argmax(axis=1) == main).mean())

    def spearman(emb: NDArray[np.float32]) -> float:
        return _spearman(np.einsum("pd,pd->p", emb[a], emb[b]).astype(np.float64), related)

    return {
        "mse": float(np.mean((adapted - base) ** 2)),
        "cosine": float(np.mean(np.sum(adapted * base, axis=1))),
        "topic_acc": topic_acc(adapted),
        "base_topic_acc": topic_acc(base),
        "spearman": spearman(adapted),
        "base_spearman": spearman(base),
    }
