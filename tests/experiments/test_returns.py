"""Return metrics: hand-checked on a tiny world, the reference run, and worlds per seed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftrec.agents.online import StepRecord
from driftrec.envs.catalog import build_catalog
from driftrec.envs.config import EnvConfig
from driftrec.envs.observation import ObservationLayout
from driftrec.experiments.analysis import load_runs
from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.recorder import StepRecorder
from driftrec.experiments.returns import return_table, run_returns
from driftrec.experiments.runner import run_grid


def _record(rec: StepRecorder, reward: list[float], term: list[bool], trunc: list[bool]) -> None:
    b = len(reward)
    lay = rec.layout
    rec.record(
        StepRecord(
            clock=len(rec.rows) + 1,
            observation=np.zeros((b, lay.size), np.float32),
            actions=np.zeros(b, np.int64),
            reward=np.asarray(reward, dtype=np.float64),
            terminated=np.asarray(term),
            truncated=np.asarray(trunc),
            next_observation=np.zeros((b, lay.size), np.float32),
            info={
                "clicked_item": np.where(np.asarray(reward) > 0, 0, -1),
                "expected_reward": np.full(b, 0.5),
                "oracle_expected_reward": np.full(b, 1.0),
                "oracle_action": np.zeros(b, np.int64),
                "interests": np.zeros((b, 4)),
                "drift_events": np.zeros(b, np.int32),
            },
        )
    )


def test_user_return_and_retention_by_hand() -> None:
    """Two slots, 4 steps, one window per 2 steps: returns and retention computed by hand."""
    cfg = EnvConfig().with_overrides(num_items=8, num_topics=4)
    rec = StepRecorder(
        build_catalog(cfg), 2, ObservationLayout(4, 8), interest_weight=1.5, log_every=2
    )
    # slot 0: rewards 1, 0 then leaves (terminated) -> return 1, length 2, left
    # slot 1: rewards 1, 1, 1 then truncated at step 3 -> return 3, length 3, stayed
    _record(rec, [1.0, 1.0], [False, False], [False, False])
    _record(rec, [0.0, 1.0], [True, False], [False, False])
    _record(rec, [1.0, 1.0], [False, False], [False, True])
    _record(rec, [0.0, 0.0], [False, False], [False, False])
    first, second = rec.rows
    assert first["sessions"] == 1 and first["user_return"] == 1.0 and first["retention"] == 0.0
    assert second["sessions"] == 1 and second["user_return"] == 3.0
    assert second["retention"] == 1.0 and second["session_length"] == 3.0
    # the one-step quantities keep their meaning: regret per user-step, cum_regret per slot
    assert first["regret"] == 0.5 and second["cum_regret"] == pytest.approx(2.0)


class _FakeRun:
    def __init__(self, scenario: str, agent: str, seed: int, metrics: dict[str, Any]) -> None:
        self.scenario, self.agent, self.seed = scenario, agent, seed
        self.metrics = {k: np.asarray(v, dtype=np.float64) for k, v in metrics.items()}


def test_return_ratio_by_hand() -> None:
    """Stays are pooled per run (weighted by stays per window); the ratio is per seed."""
    runs = [
        _FakeRun("S", "oracle", 0, {"sessions": [1, 3], "user_return": [10, 2],
                                    "session_length": [100, 40], "retention": [1, 0]}),
        _FakeRun("S", "oracle", 1, {"sessions": [2], "user_return": [8],
                                    "session_length": [90], "retention": [0.5]}),
        _FakeRun("S", "planner", 0, {"sessions": [4], "user_return": [12],
                                     "session_length": [100], "retention": [1]}),
        _FakeRun("S", "planner", 1, {"sessions": [0, 2], "user_return": [math.nan, 10],
                                     "session_length": [math.nan, 100],
                                     "retention": [math.nan, 1]}),
    ]  # fmt: skip
    assert run_returns(runs[0]) == {"user_return": 4.0, "stay_length": 55.0, "retention": 0.25}
    rows = {r["agent"]: r for r in return_table(runs)}  # type: ignore[arg-type]
    # seed 0: 12 / 4 = 3; seed 1: 10 / 8 = 1.25
    assert rows["planner"]["return_ratio"].mean == pytest.approx((3.0 + 1.25) / 2)
    assert rows["planner"]["return_ratio"].n == 2
    assert rows["oracle"]["return_ratio"].mean == 1.0
    assert rows["oracle"]["user_return"].mean == pytest.approx((4.0 + 8.0) / 2)
    assert return_table(runs, reference=None)[0]["return_ratio"] is None


def test_grid_runs_the_reference_on_each_seed_with_its_own_world(tmp_path: Path) -> None:
    """The oracle runs as its own run per seed, each seed draws its own world and catalog,
    and the report's return table divides by it."""
    cfg = ExperimentConfig(
        name="ret",
        scenarios=("LongTerm",),
        agents=("random",),
        seeds=(0, 1),
        num_envs=16,
        steps=240,
        log_every=40,
        env_overrides={"num_items": 40},
        out_dir=str(tmp_path),
    )
    run_grid(cfg, progress=False)
    runs = load_runs(cfg.experiment_dir)
    assert sorted((r.agent, r.seed) for r in runs) == [
        ("oracle", 0), ("oracle", 1), ("random", 0), ("random", 1)
    ]  # fmt: skip
    worlds = {r.seed: r.config["env_config"] for r in runs if r.agent == "random"}
    assert worlds[0]["drift"]["seed"] == 0 and worlds[1]["drift"]["seed"] == 1
    assert worlds[0]["catalog"]["seed"] == 0 and worlds[1]["catalog"]["seed"] == 1
    same = {r.seed: r.config["env_config"] for r in runs if r.agent == "oracle"}
    assert same == worlds  # the reference shares each seed's world
    rows = {r["agent"]: r for r in return_table(runs)}
    assert rows["oracle"]["return_ratio"].mean == 1.0
    assert 0.0 < rows["random"]["return_ratio"].mean < 0.5  # random drains users fast
    fixed = ExperimentConfig(scenarios=("LongTerm",), vary_world=False)
    assert fixed.run_env_config("LongTerm", 5) == fixed.env_config("LongTerm")
    pinned = ExperimentConfig(scenarios=("LongTerm",), env_overrides={"world_seed": 9})
    assert pinned.run_env_config("LongTerm", 5).drift.seed == 9
    assert pinned.run_env_config("LongTerm", 5).catalog.seed == 5
