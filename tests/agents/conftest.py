"""Fixtures shared by the agent tests: a text-embedding cache and a small item table."""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

TABLE_ITEMS = 32  # rows of emb_file: the tiny catalogs' size
TABLE_DIM = 6  # width of emb_file


@pytest.fixture
def shared_text_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One text-embedding cache for the whole session (the default encoder runs once)."""
    monkeypatch.setenv("DRIFTREC_CACHE", str(tmp_path_factory.getbasetemp() / "driftrec-cache"))


@pytest.fixture(scope="module")
def emb_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A saved random (32, 6) item-embedding table (``.npy``), seeded."""
    path = tmp_path_factory.mktemp("emb") / "items.npy"
    rng = np.random.default_rng(0)
    np.save(path, rng.standard_normal((TABLE_ITEMS, TABLE_DIM)).astype(np.float32))
    return str(path)


def _save_tiny_bert(
    directory: Path,
    seed: int,
    *,
    extra_tokens: Sequence[str] = (),
    max_position_embeddings: int = 64,
) -> Path:
    """Save a random 2-layer BERT (hidden 32) with a letter-level WordPiece vocabulary (plus
    ``extra_tokens``) to ``directory``; the same ``seed`` gives the same weights."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    letters = string.ascii_lowercase
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters)]
    vocab += list(extra_tokens)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer.from_pretrained(str(directory)).save_pretrained(str(directory))
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_position_embeddings,
    )
    BertModel(config).save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="session")
def save_tiny_bert() -> Callable[..., Path]:
    """``save_tiny_bert(directory, seed, *, extra_tokens=(), max_position_embeddings=64)``:
    writes a tiny random BERT and its tokenizer (no download) and returns ``directory``."""
    return _save_tiny_bert
