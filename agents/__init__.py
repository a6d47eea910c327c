"""Agents for driftrec: frozen language-model item embeddings and attention recommenders.

Importing :mod:`driftrec.agents` is cheap: the public names below are resolved lazily, so torch
and transformers are imported only when a class that needs them is first used.

- :mod:`driftrec.agents.text_encoder`: :class:`TextEncoderConfig`, :class:`TextEncoder`,
  :func:`encode_catalog` (item texts -> unit-norm embeddings, cached on disk).
- :mod:`driftrec.agents.attention`: :class:`AttentionConfig`, :class:`AttentionRecommender`,
  :class:`RecommenderOutput` (history -> user state -> one score per catalog item).
- :mod:`driftrec.agents.lora`: LoRA adapters of the text encoder trained from click logs
  (needs ``peft``: ``pip install "driftrec[lora]"``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftrec.agents.attention import (
        AttentionConfig,
        AttentionRecommender,
        RecommenderOutput,
    )
    from driftrec.agents.text_encoder import (
        TextEncoder,
        TextEncoderConfig,
        catalog_cache_path,
        encode_catalog,
    )

_EXPORTS: dict[str, str] = {
    "TextEncoderConfig": "driftrec.agents.text_encoder",
    "TextEncoder": "driftrec.agents.text_encoder",
    "encode_catalog": "driftrec.agents.text_encoder",
    "catalog_cache_path": "driftrec.agents.text_encoder",
    "AttentionConfig": "driftrec.agents.attention",
    "AttentionRecommender": "driftrec.agents.attention",
    "RecommenderOutput": "driftrec.agents.attention",
}

__all__ = [
    "AttentionConfig",
    "AttentionRecommender",
    "RecommenderOutput",
    "TextEncoder",
    "TextEncoderConfig",
    "catalog_cache_path",
    "encode_catalog",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
