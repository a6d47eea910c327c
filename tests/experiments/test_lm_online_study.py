"""Tests of the in-run fine-tuning study's arithmetic, table and figure (hand-made runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from driftrec.experiments.analysis import Run
from driftrec.experiments.studies.lm_online import (
    StudySetting,
    format_gains,
    gain_rows,
    grid_configs,
    half_mean,
    paired_gain,
    plot_online,
)


def _run(agent: str, seed: int, values: list[float], finetune: dict | None = None) -> Run:
    steps = np.arange(1, len(values) + 1, dtype=float) * 32
    return Run(
        path=Path(f"/nowhere/JargonNews__{agent}__{seed}"),
        config={"scenario": "JargonNews", "agent": agent, "seed": seed},
        metrics={"step": steps, "normalized_reward": np.asarray(values, dtype=float)},
        events=[],
        done={} if finetune is None else {"finetune": finetune},
    )


FT = {
    "refresh_steps": [64],
    "seconds_per_refresh": 10.0,
    "share_of_run": 0.5,
    "retention": {"cosine": 0.97, "topic_acc": 0.78, "base_topic_acc": 0.79},
}


def test_half_mean_and_the_paired_gain_by_hand() -> None:
    """The second half is the windows ending after ``start``; the gain is the mean of the
    per-seed differences with a Student-t interval (t_{0.975,1} = 12.706 for two seeds)."""
    frozen = [_run("a", 1, [0.1, 0.2, 0.3, 0.4]), _run("a", 2, [0.1, 0.2, 0.2, 0.2])]
    tuned = [_run("a", 1, [0.1, 0.2, 0.5, 0.6], FT), _run("a", 2, [0.1, 0.2, 0.3, 0.3], FT)]
    assert half_mean(frozen[0], 64) == pytest.approx(0.35)  # windows ending at 96, 128
    pairs, stat = paired_gain(frozen, tuned, "a", 64)
    assert pairs == {1: pytest.approx((0.35, 0.55)), 2: pytest.approx((0.2, 0.3))}
    assert stat.mean == pytest.approx(0.15) and stat.n == 2
    # sd of (0.2, 0.1) is 0.0707, / sqrt(2) = 0.05
    assert stat.hi - stat.mean == pytest.approx(12.7062 * 0.05, rel=1e-4)
    (row,) = gain_rows(frozen, tuned, ["a"], 64)
    assert row.retention_cosine == [0.97, 0.97] and row.topic_acc_change[0] == pytest.approx(-0.01)
    table = format_gains([row], start=64)
    assert "| a | 0.275 | 0.425 | +0.150 [" in table and "1: +0.200, 2: +0.100" in table
    assert "0.970 (0.970)" in table and "-1.0 pt" in table and "| 10 | 50% |" in table
    fig = plot_online(frozen, tuned, ["a"], start=64)
    lines = fig.axes[0].get_lines()
    assert any(list(line.get_xdata()) == [64, 64] for line in lines)  # the refresh is marked


def test_grid_configs_pair_the_same_runs() -> None:
    """The frozen and the fine-tuned grids differ only in name and fine-tuning (and the
    frozen-only references)."""
    setting = StudySetting(seeds=(1, 2), frozen_only=("random",), out_dir="/tmp/x")
    frozen, tuned = grid_configs(setting)
    assert frozen.agents == ("history-similarity", "attention-ppo", "random")
    assert tuned.agents == ("history-similarity", "attention-ppo")
    assert frozen.finetune_every is None and tuned.finetune_every == 256
    assert frozen.seeds == tuned.seeds == (1, 2) and frozen.steps == tuned.steps
    assert frozen.name == "lm-online-frozen" and tuned.name == "lm-online-finetuned"


def test_the_topics_bound_runs_each_seed_on_its_own_catalogs_true_topics(tmp_path: Path) -> None:
    """One experiment per seed (each seed draws its own catalog), the agents as in the frozen
    grid, their item table the file holding that catalog's topic vectors; the file is written
    from the seed's catalog, so the bound sees the topics the users' interests are made of."""
    from driftrec.envs.core import cached_catalog
    from driftrec.envs.scenarios import get_scenario
    from driftrec.experiments.studies.lm_online import _write_topics, topics_bound_config

    setting = StudySetting(seeds=(1, 2), agents=("attention-ppo",), out_dir=str(tmp_path))
    frozen, _ = grid_configs(setting)
    cfg = topics_bound_config(setting, 2)
    assert cfg.seeds == (2,) and cfg.agents == ("attention-ppo",)
    assert cfg.name == "lm-online-topics-seed2" and cfg.finetune_every is None
    assert (cfg.steps, cfg.num_envs, cfg.scenarios) == (
        frozen.steps,
        frozen.num_envs,
        frozen.scenarios,
    )
    path = Path(cfg.agent_kwargs["attention-ppo"]["policy_kwargs"]["embeddings_file"])
    assert path.parent == tmp_path and path != Path(
        topics_bound_config(setting, 1).agent_kwargs["attention-ppo"]["policy_kwargs"][
            "embeddings_file"
        ]
    )
    assert _write_topics(setting, 2) == path
    env = get_scenario(setting.scenario).config.with_overrides(world_seed=2, catalog_seed=2)
    expected = np.asarray(cached_catalog(env).topics, dtype=np.float32)
    np.testing.assert_array_equal(np.load(path, allow_pickle=False), expected)
    other = get_scenario(setting.scenario).config.with_overrides(world_seed=1, catalog_seed=1)
    assert not np.array_equal(np.asarray(cached_catalog(other).topics, dtype=np.float32), expected)
