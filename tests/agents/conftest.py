"""Fixtures shared by the agent tests: a text-embedding cache and a small item table."""

from __future__ import annotations

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
