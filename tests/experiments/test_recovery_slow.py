"""Slow: the recovery statistic's noise floor on the demo setup (issue 16, item 2)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from driftrec.experiments.analysis import load_runs, recovery_time, summary_table
from driftrec.experiments.configs.demo import get_config
from driftrec.experiments.runner import run_grid

pytestmark = pytest.mark.slow


def test_population_best_recovers_within_its_noise_floor_on_the_demo(tmp_path: Path) -> None:
    """population-best re-optimises every step: measured against its own level before and
    after the shift, it is back at the target in the first window after it (recovery 0) on
    most demo seeds and spends one window below it on the others (the churn transient), on
    every seed of 0-4: within one window, as the issue asks. The old rule (90% of the
    pre-shift level) called the same runs up to three windows (and 448 steps on seed 5)."""
    demo = get_config(out_dir=str(tmp_path), workers=1)
    cfg = dataclasses.replace(
        demo, name="floor", agents=("population-best",), reference_agent=None, seeds=(0, 1, 2, 3, 4)
    )
    run_grid(cfg, progress=False)
    runs = load_runs(cfg.experiment_dir)
    (row,) = summary_table(runs)
    (entry,) = row["recovery"]
    window = demo.log_every
    new = [r.steps for r in entry["recoveries"]]
    old = []
    for run in runs:
        nr = run.metric("normalized_reward")
        old.append(recovery_time(run.steps, nr, run.event_steps()[0]).steps)
    print(f"\npopulation-best recovery, seeds 0-4: new {new}; old rule {old}")
    # measured on this machine: new [32, 0, 32, 0, 0], old [96, 0, 64, 32, 0]
    assert entry["n_recovered"] == 5 and entry["n_censored"] == 0
    assert all(steps <= window for steps in new)  # 0-1 window below the target, every seed
    assert entry["median"] == 0  # at least half the seeds never below it
    assert np.nanmax(old) > np.nanmax(new)  # the old rule mistook the new level for a dip
    assert entry["floor"]["median"] == entry["median"]  # it is its own floor
