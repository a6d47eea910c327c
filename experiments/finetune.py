"""``driftrec finetune``: train a LoRA adapter of the text encoder from simulated clicks.

:func:`finetune_adapter` logs a behaviour agent's impressions on a scenario (one run per seed,
:func:`~driftrec.agents.lora.collect_click_log`), fine-tunes LoRA adapters of the encoder on
them (:func:`~driftrec.agents.lora.finetune_encoder`), writes the adapter and its manifest
atomically into a directory, and re-encodes the scenario's catalog with the adapted encoder
(which fills the embedding cache for later runs and measures what one refresh of the item
table costs). Use the adapter in runs with ``driftrec run --text-adapter DIR``.

The schedule this supports is *offline between phases*: log a phase, fine-tune, refresh the
item table once, run the next phase with the new table. Training and the refresh are timed and
stored in the manifest (``training.train_seconds``, ``catalog_encode_seconds``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from driftrec.agents.lora import (
    MANIFEST_NAME,
    ClickLog,
    FinetuneSettings,
    collect_click_log,
    default_anchor_texts,
    finetune_encoder,
    save_adapter,
)
from driftrec.agents.text_encoder import (
    TextEncoder,
    TextEncoderConfig,
    encode_catalog,
    model_identity,
)
from driftrec.atomic import atomic_open
from driftrec.envs.config import check_int
from driftrec.envs.core import cached_catalog
from driftrec.envs.scenarios import get_scenario

__all__ = ["finetune_adapter"]


def finetune_adapter(
    out_dir: str | Path,
    *,
    scenario: str = "Stationary",
    env_overrides: Mapping[str, Any] | None = None,
    behaviour: str = "random",
    seeds: Sequence[int] = (100,),
    num_envs: int = 32,
    log_steps: int = 150,
    settings: FinetuneSettings | None = None,
    text_model: str | None = None,
    max_length: int = 128,
    progress: bool = True,
) -> dict[str, Any]:
    """Log, fine-tune, save; returns the manifest written (see the module docstring).

    Raises:
        ValueError: bad settings (naming the field), or ``method="full"`` (only adapters are
            written by this command).
    """
    s = settings if settings is not None else FinetuneSettings()
    if s.method != "lora":
        raise ValueError(f"'method' must be 'lora' to write an adapter (got {s.method!r})")
    if not seeds:
        raise ValueError("'seeds' must name at least one seed of the logged interactions")
    check_int("log_steps", log_steps, 1)  # named here: collect_click_log calls it 'steps'
    check_int("num_envs", num_envs, 1)
    base_env = get_scenario(scenario).config
    base_env = base_env.with_overrides(**dict(env_overrides)) if env_overrides else base_env
    enc_cfg = TextEncoderConfig(model=text_model, max_length=max_length, show_progress=progress)
    encoder = TextEncoder(enc_cfg)  # fails early on a bad model, before any logging
    t0 = time.perf_counter()
    logs = []
    for seed in seeds:
        env = base_env.with_overrides(world_seed=seed, catalog_seed=base_env.catalog.seed)
        logs.append(
            collect_click_log(
                env,
                agent=behaviour,
                num_envs=num_envs,
                steps=log_steps,
                seed=seed,
                text_encoder=TextEncoderConfig(model=text_model, show_progress=False),
            )
        )
    log = ClickLog.concatenate(logs)
    log_s = time.perf_counter() - t0
    catalog = cached_catalog(base_env)
    texts = catalog.texts()
    if progress:
        print(
            f"logged {len(log)} impressions ({int(log.clicked.sum())} clicks) of {behaviour} on "
            f"{scenario} in {log_s:.1f} s; fine-tuning {s.steps} steps ...",
            flush=True,
        )
    anchors = default_anchor_texts() if s.retain_weight > 0 else None
    result = finetune_encoder(encoder, texts, log, s, anchor_texts=anchors, progress=progress)
    extra = {
        "scenario": scenario,
        "env_overrides": dict(env_overrides or {}),
        "catalog_fingerprint": catalog.content_fingerprint(),
        "behaviour": behaviour,
        "log_seeds": [int(x) for x in seeds],
        "log_steps": log_steps,
        "num_envs": num_envs,
        "logged_impressions": len(log),
        "max_length": max_length,
        "finetune": {**dataclasses.asdict(s), "lora": dataclasses.asdict(s.lora)},
        "training": {k: v for k, v in result.to_dict().items() if k != "losses"},
        "loss_first_10": float(np.mean(result.losses[:10])),
        "loss_last_10": float(np.mean(result.losses[-10:])),
    }
    out = save_adapter(
        encoder.model,
        out_dir,
        base_model=encoder.name,
        base_identity=model_identity(text_model),
        settings=s.lora,
        extra=extra,
    )
    t1 = time.perf_counter()
    encode_catalog(texts, dataclasses.replace(enc_cfg, adapter=str(out), show_progress=False))
    extra["catalog_encode_seconds"] = time.perf_counter() - t1
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    manifest["catalog_encode_seconds"] = extra["catalog_encode_seconds"]
    with atomic_open(out / MANIFEST_NAME, "w") as f:
        f.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if progress:
        print(
            f"adapter written to {out} (rank {s.lora.rank}, {result.trainable_params:,} "
            f"trainable parameters; loss {extra['loss_first_10']:.3f} -> "
            f"{extra['loss_last_10']:.3f}); training {result.train_seconds:.1f} s, "
            f"re-encoding the {len(texts)} catalog texts {extra['catalog_encode_seconds']:.1f} s",
            flush=True,
        )
    return manifest
