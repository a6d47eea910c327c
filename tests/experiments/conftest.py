"""Fixtures shared by the experiment tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.runner import run_one


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny finished id-ppo run with a checkpoint, on a catalog file (so no text encoding),
    made once per test module with its own copy of the catalog beside it. Copy the run
    directory before changing it."""
    root = tmp_path_factory.mktemp("trained")
    rows = [f"i{j},title {j},text {j},{('jazz', 'rock', 'folk')[j % 3]}" for j in range(12)]
    (root / "items.csv").write_text("id,title,description,tags\n" + "\n".join(rows) + "\n")
    cfg = ExperimentConfig(
        name="t",
        scenarios=("Stationary",),
        agents=("id-ppo",),
        seeds=(0,),
        num_envs=4,
        steps=16,
        log_every=8,
        out_dir=str(root),
        env_overrides={"catalog_path": str(root / "items.csv")},
    )
    return run_one(cfg, "Stationary", "id-ppo", 0, progress=False)
