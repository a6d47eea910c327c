"""Shared tiny fixtures: small configs that keep every test fast and offline."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from driftrec.envs.config import (
    CatalogConfig,
    ChoiceConfig,
    EnvConfig,
    SessionConfig,
    UserConfig,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_ITEMS = 32  # catalog size of the tiny configs
TINY_TOPICS = 4  # number of topics of the tiny configs
TINY_HISTORY = 8  # history length of the tiny configs
TINY_USERS = 4  # user slots of the tiny batched fixtures


@pytest.fixture(scope="session", autouse=True)
def _single_torch_thread() -> Iterator[None]:
    """Run torch on one thread when it is installed (imported lazily: envs tests do not need it)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency, but envs must not need it
        yield
        return
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """Run BLAS on one thread: threaded OpenBLAS crawls on small products when cores are busy."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def tiny_config() -> EnvConfig:
    """A single-item world with 32 items, 4 topics, history 8 and 20-step sessions."""
    return EnvConfig(
        catalog=CatalogConfig(num_items=TINY_ITEMS, num_topics=TINY_TOPICS, seed=0),
        users=UserConfig(patience=20.0, max_patience=50.0),
        session=SessionConfig(max_steps=20, history_len=TINY_HISTORY),
    )


@pytest.fixture
def tiny_slate_config(tiny_config: EnvConfig) -> EnvConfig:
    """The tiny world with slates of 3 items and position bias 0.8."""
    return tiny_config.with_overrides(choice=ChoiceConfig(slate_size=3, position_bias=0.8))
