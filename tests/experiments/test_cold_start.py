"""Tests of driftrec.experiments.cold_start on hand-made runs (the measured grid is slow-marked)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from driftrec.experiments.analysis import Run
from driftrec.experiments.cold_start import (
    ColdStartSetting,
    cold_start_config,
    format_summary,
    freeze_losses,
    phase_summary,
    plot_cold_start,
)
from driftrec.experiments.plots import save_figure

STEPS = np.arange(1, 9, dtype=np.float64) * 32.0  # windows ending 32..256; frozen_at 128


def _run(agent: str, seed: int, before: float, after: float, share: float) -> Run:
    late = STEPS > 128
    metrics = {
        "step": STEPS.copy(),
        "normalized_reward": np.where(late, after, before) + 0.01 * seed,
        "cold_start_share": np.where(late, share, 0.0),
        "oracle_cold_start_share": np.where(late, 0.1, np.nan),
    }
    config = {"scenario": "NewItems", "agent": agent, "seed": seed, "log_every": 32}
    return Run(path=Path(f"{agent}_{seed}"), config=config, metrics=metrics, events=[])


@pytest.fixture()
def runs() -> dict[str, list[Run]]:
    return {
        "attention-ppo": [_run("attention-ppo", s, 0.6, 0.7, 0.05) for s in range(3)],
        "attention-ppo-frozen": [
            _run("attention-ppo-frozen", s, 0.6, 0.65, 0.04) for s in range(3)
        ],
        "random": [_run("random", s, 0.3, 0.3, 0.1) for s in range(3)],
    }


def test_phase_summary_splits_at_frozen_at(runs: dict[str, list[Run]]) -> None:
    summary = phase_summary(runs, frozen_at=128)
    att = summary["attention-ppo"]
    assert att["train"]["reward"] == pytest.approx([0.6, 0.61, 0.62])
    assert att["after"]["reward"] == pytest.approx([0.7, 0.71, 0.72])
    assert att["after"]["relative"] == pytest.approx(0.5)  # 0.05 / 0.1, pooled
    assert np.isnan(att["train"]["relative"])  # the oracle's share is nan before
    assert freeze_losses(summary) == {"attention-ppo": pytest.approx([0.05, 0.05, 0.05])}
    table = format_summary(summary)
    assert "| attention-ppo | 0.610 ± " in table and "| 0.50 |" in table


def test_phase_summary_rejects_unknown_phase(runs: dict[str, list[Run]]) -> None:
    from driftrec.experiments.cold_start import _phase_mask

    with pytest.raises(ValueError, match="'phase' must be 'train' or 'after'"):
        _phase_mask(runs["random"][0], 128, "later")


def test_plot_cold_start_writes_png(runs: dict[str, list[Run]], tmp_path: Path) -> None:
    release = np.array([0, 0, 40, 100, 200])
    fig = plot_cold_start(runs, release, 128, smooth=1)
    top, bottom = fig.axes[:2]
    assert "Cold start" in top.get_title()
    labels = bottom.get_legend_handles_labels()[1]
    assert "item releases (3)" in labels and any("oracle" in lab for lab in labels)
    path = save_figure(fig, tmp_path / "cold.png")
    assert path.stat().st_size > 1000


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("steps", 0, "'steps' must be an integer"),
        ("new_item_fraction", 1.5, "'new_item_fraction' must be a finite number"),
        ("new_item_fraction", 0.0, "'new_item_fraction' must be a finite number"),
        ("frozen_at", 1024, "'frozen_at' must be an integer"),
    ],
)
def test_setting_rejects_bad_values(field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ColdStartSetting(**{field: value})


def test_config_releases_over_the_whole_run(tmp_path: Path) -> None:
    setting = ColdStartSetting(steps=256, frozen_at=128, new_item_fraction=0.3)
    cfg = cold_start_config(
        setting, agents=("random", "id-ppo-frozen"), seeds=(0,), out_dir=tmp_path
    )
    env = cfg.env_config("NewItems")
    assert env.catalog.release_horizon == 256 and env.catalog.new_item_fraction == 0.3
    assert cfg.frozen_step("NewItems") == 128 and not cfg.checkpoint
