"""Tests of driftrec.experiments.runner: run files, determinism, resume, SB3 and frozen runs."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from driftrec.experiments import runner
from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.recorder import METRIC_COLUMNS, tensorboard_available
from driftrec.experiments.runner import is_done, run_grid, run_one

torch.set_num_threads(1)

STEPS, LOG_EVERY, SHIFT, B, ITEMS = 32, 8, 16, 4, 32


@pytest.fixture(autouse=True)
def _shared_text_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One text-embedding cache for the session: the packaged MiniLM encodes each catalog once."""
    monkeypatch.setenv("DRIFTREC_CACHE", str(tmp_path_factory.getbasetemp() / "driftrec-cache"))


def _grid(out_dir: Path, **kwargs: Any) -> ExperimentConfig:
    base: dict[str, Any] = {
        "name": "grid",
        "scenarios": ("AbruptShift",),
        "agents": ("random", "popularity"),
        "seeds": (0, 1),
        "num_envs": B,
        "steps": STEPS,
        "log_every": LOG_EVERY,
        "shift_at": SHIFT,
        "env_overrides": {"num_items": ITEMS},
        "out_dir": str(out_dir),
        "reference_agent": None,  # the reference run is tested in test_returns.py
    }
    return ExperimentConfig(**{**base, **kwargs})


def _metrics(dirs: list[Path]) -> dict[str, str]:
    return {d.name: (d / "metrics.csv").read_text() for d in dirs}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[ExperimentConfig, list[Path]]:
    """The tiny bandit grid run once, uninterrupted, with one worker."""
    cfg = _grid(tmp_path_factory.mktemp("reference"))
    return cfg, run_grid(cfg, progress=False)


# --------------------------------------------------------------------------------------------
def test_grid_writes_every_file(reference: tuple[ExperimentConfig, list[Path]]) -> None:
    """Each run writes config.json, metrics.csv, events.json (shift 16), topics.npz, done.json."""
    cfg, dirs = reference
    assert [d.name for d in dirs] == [
        "AbruptShift__random__0",
        "AbruptShift__random__1",
        "AbruptShift__popularity__0",
        "AbruptShift__popularity__1",
    ]
    assert json.loads((cfg.experiment_dir / "experiment.json").read_text())["steps"] == STEPS
    for d in dirs:
        assert is_done(d)
        names = {p.name for p in d.iterdir()}
        tb = {n for n in names if n.startswith("events.out.tfevents.")}
        assert len(tb) == (1 if tensorboard_available() else 0)  # driftrec's metrics
        files = {"config.json", "metrics.csv", "events.json", "topics.npz", "done.json"}
        assert names - tb == files
        conf = json.loads((d / "config.json").read_text())
        agent, seed = d.name.split("__")[1], int(d.name.split("__")[2])
        assert (conf["agent"], conf["seed"], conf["scenario"]) == (agent, seed, "AbruptShift")
        assert conf["total_steps"] == STEPS and conf["frozen_at"] is None
        assert conf["env_config"]["catalog"]["num_items"] == ITEMS
        shifts = [p for p in conf["env_config"]["drift"]["processes"] if p["kind"] == "abrupt"]
        assert shifts[0]["at_steps"] == [SHIFT]

        lines = (d / "metrics.csv").read_text().splitlines()
        assert lines[0].split(",") == list(METRIC_COLUMNS)
        assert len(lines) == 1 + STEPS // LOG_EVERY
        rows = [dict(zip(METRIC_COLUMNS, line.split(","), strict=True)) for line in lines[1:]]
        assert [int(r["step"]) for r in rows] == [8, 16, 24, 32]
        assert [int(r["env_steps"]) for r in rows] == [32, 64, 96, 128]
        assert int(rows[1]["drift_event"]) & 1  # the population shift is in window (8, 16]
        assert 0.0 < float(rows[-1]["normalized_reward"]) <= 1.0 + 1e-9

        events = json.loads((d / "events.json").read_text())
        assert events["events"] == [{"step": SHIFT, "kind": "population_shift"}]
        assert set(events["counts"]) == {"interest_jump", "new_items"}

        with np.load(d / "topics.npz") as t:
            assert t["steps"].tolist() == [8, 16, 24, 32]
            k = len(t["topic_names"])
            assert t["rec_mix"].shape == t["interest_mix"].shape == (4, k)
            assert t["tracked_rec"].shape == t["tracked_interest"].shape == (4, 3, k)

        done = json.loads((d / "done.json").read_text())
        assert done["global_steps"] == STEPS and done["env_steps"] == STEPS * B
        assert done["final_cum_regret"] == pytest.approx(float(rows[-1]["cum_regret"]))


def test_same_config_same_metrics(
    tmp_path: Path, reference: tuple[ExperimentConfig, list[Path]]
) -> None:
    """Running the same config again (elsewhere) gives byte-identical metrics.csv files."""
    dirs = run_grid(_grid(tmp_path), progress=False)
    assert _metrics(dirs) == _metrics(reference[1])


GREEDY = [c for c in METRIC_COLUMNS if c.startswith("greedy_")]


def _without_greedy(text: str) -> str:
    """metrics.csv with the greedy_* columns cut out, every other byte as written."""
    rows = [line.split(",") for line in text.splitlines()]
    keep = [i for i, name in enumerate(rows[0]) if name not in GREEDY]
    return "\n".join(",".join(row[i] for i in keep) for row in rows)


@pytest.mark.parametrize(
    "agent",
    [
        "random",
        "popularity",
        "epsilon-greedy",
        "linucb-discounted",
        "thompson",
        "history-similarity",
        "attention-ppo",
    ],
)
def test_greedy_columns_do_not_change_the_run(tmp_path: Path, agent: str) -> None:
    """metrics.csv is byte-identical with and without the greedy columns, apart from them."""
    texts = {}
    for greedy in (True, False):
        cfg = _grid(tmp_path / str(greedy), agents=(agent,), seeds=(0,), checkpoint=False)
        d = run_one(cfg, "AbruptShift", agent, 0, progress=False, greedy_columns=greedy)
        texts[greedy] = (d / "metrics.csv").read_text()
        with np.load(d / "topics.npz") as t:
            texts[greedy, "topics"] = {k: t[k].tolist() for k in t.files}
    assert _without_greedy(texts[True]) == _without_greedy(texts[False])
    assert texts[True, "topics"] == texts[False, "topics"]
    rows = {g: list(csv.DictReader(io.StringIO(texts[g]))) for g in (True, False)}
    for column in GREEDY:  # measured with them, empty (nan) without
        assert all(np.isfinite(float(r[column])) for r in rows[True]), column
        assert all(np.isnan(float(r[column] or "nan")) for r in rows[False]), column


def test_finished_grid_is_not_recomputed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run_one and run_grid skip runs that have done.json."""
    cfg = _grid(tmp_path, agents=("random",), seeds=(0,))
    run_grid(cfg, progress=False)
    calls: list[str] = []
    monkeypatch.setattr(runner, "build_agent", lambda name, *a, **k: calls.append(name))
    assert run_one(cfg, "AbruptShift", "random", 0) == cfg.run_dir("AbruptShift", "random", 0)
    run_grid(cfg, progress=False)
    assert calls == []


def test_resume_after_interruption(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reference: tuple[ExperimentConfig, list[Path]],
) -> None:
    """After an interrupt in run 3, a re-run keeps runs 1-2, redoes run 3, and matches the ref."""
    cfg = _grid(tmp_path)
    real_write = runner.atomic_write_csv
    writes = {"n": 0}

    def interrupt_third(*args: Any, **kwargs: Any) -> Any:
        writes["n"] += 1
        if writes["n"] == 3:  # run 3 has config.json, is about to write metrics.csv
            raise KeyboardInterrupt
        return real_write(*args, **kwargs)

    monkeypatch.setattr(runner, "atomic_write_csv", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        run_grid(cfg, progress=False)
    runs = [cfg.run_dir(*r) for r in cfg.runs()]
    assert [is_done(d) for d in runs] == [True, True, False, False]
    assert (runs[2] / "config.json").is_file() and not (runs[2] / "metrics.csv").exists()
    assert not runs[3].exists()

    # mark the finished runs (old mtime + an extra file) and the half-written one
    old_ns = time.time_ns() - 10**11
    for d in runs[:2]:
        os.utime(d / "done.json", ns=(old_ns, old_ns))
        (d / "keep.txt").write_text("finished")
    (runs[2] / "stale.txt").write_text("half-written")

    monkeypatch.setattr(runner, "atomic_write_csv", real_write)
    built: list[tuple[str, int]] = []
    real_build = runner.build_agent

    def spy(name: str, *args: Any, **kwargs: Any) -> Any:
        built.append((name, kwargs["seed"]))
        return real_build(name, *args, **kwargs)

    monkeypatch.setattr(runner, "build_agent", spy)
    dirs = run_grid(cfg, progress=False)
    assert built == [("popularity", 0), ("popularity", 1)]  # only runs 3 and 4 computed
    for d in runs[:2]:
        assert (d / "done.json").stat().st_mtime_ns == old_ns
        assert (d / "keep.txt").exists()
    assert not (runs[2] / "stale.txt").exists()  # redone from scratch
    assert all(is_done(d) for d in dirs)
    assert _metrics(dirs) == _metrics(reference[1])


def test_sb3_run_writes_checkpoint_and_attention(tmp_path: Path) -> None:
    """An attention-ppo run (default text encoder) also writes model.zip and attention.npz."""
    from stable_baselines3 import PPO

    cfg = _grid(tmp_path, agents=("attention-ppo",), seeds=(0,))
    (d,) = run_grid(cfg, progress=False)
    names = {p.name for p in d.iterdir()}
    assert {"model.zip", "attention.npz", "metrics.csv", "done.json"} <= names
    assert not any(n.startswith(".") for n in names)  # no temporary files left
    assert json.loads((d / "config.json").read_text())["rollout_steps"] == 16
    with np.load(d / "attention.npz") as a:
        assert a["steps"].tolist() == [8, 16, 24, 32]
        h = a["weights"].shape[1]
        assert a["weights"].shape == a["mask"].shape == a["item_topic"].shape == (4, h)
        assert (a["weights"] >= 0).all() and (a["weights"].sum(axis=1) <= 1 + 1e-6).all()
    model = PPO.load(d / "model.zip", device="cpu")
    assert model.num_timesteps == STEPS * B
    # SB3's own diagnostics are kept in the run directory (a row per dump, the last with the
    # training figures of the rollout that was trained)
    log = (d / "sb3_log" / "progress.csv").read_text().splitlines()
    row = dict(zip(log[0].split(","), log[-1].split(","), strict=True))
    for key in ("train/approx_kl", "train/clip_fraction", "train/explained_variance"):
        assert np.isfinite(float(row[key])), key


def test_frozen_agent_stops_learning_at_shift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A '-frozen' agent learns for shift_at steps, then only acts; its checkpoint is the freeze."""
    from stable_baselines3 import PPO

    calls: list[tuple[int, bool]] = []
    at_freeze: dict[str, torch.Tensor] = {}
    real_run_online = runner.run_online

    def spy(agent: Any, env: Any, num_steps: int, *, learn: bool = True, **kw: Any) -> int:
        calls.append((num_steps, learn))
        done = real_run_online(agent, env, num_steps, learn=learn, **kw)
        if learn:
            at_freeze.update({k: v.clone() for k, v in agent.policy.state_dict().items()})
        return done

    monkeypatch.setattr(runner, "run_online", spy)
    cfg = _grid(tmp_path, agents=("id-ppo-frozen",), seeds=(0,))
    (d,) = run_grid(cfg, progress=False)
    assert calls == [(SHIFT, True), (STEPS - SHIFT, False)]
    assert json.loads((d / "config.json").read_text())["frozen_at"] == SHIFT
    assert len((d / "metrics.csv").read_text().splitlines()) == 1 + STEPS // LOG_EVERY
    model = PPO.load(d / "model.zip", device="cpu")
    assert model.num_timesteps == SHIFT * B  # no learning after the freeze
    saved = model.policy.state_dict()
    assert saved.keys() == at_freeze.keys()
    assert all(torch.equal(saved[k], at_freeze[k]) for k in saved)


def test_two_workers_match_one(
    tmp_path: Path, reference: tuple[ExperimentConfig, list[Path]]
) -> None:
    """workers=2 (spawned processes) writes the same metrics as workers=1."""
    dirs = run_grid(_grid(tmp_path, workers=2), progress=False)
    assert all(is_done(d) for d in dirs)
    assert _metrics(dirs) == _metrics(reference[1])


def test_run_one_progress_callback(tmp_path: Path) -> None:
    """run_one calls on_window once per metrics row with that row."""
    cfg = _grid(tmp_path, agents=("random",), seeds=(0,))
    rows: list[dict[str, float]] = []
    d = run_one(cfg, "AbruptShift", "random", 0, progress=False, on_window=rows.append)
    assert [r["step"] for r in rows] == [8, 16, 24, 32]
    assert dataclasses.asdict(cfg)["steps"] == STEPS and is_done(d)
