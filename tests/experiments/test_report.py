"""Tests of driftrec.experiments.report on a hand-made experiment directory."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from driftrec.experiments.analysis import format_table, load_runs, summary_table
from driftrec.experiments.guard import MANIFEST_NAME
from driftrec.experiments.report import summary_text, write_figures, write_report

COLUMNS = (
    "step", "env_steps", "reward", "expected_reward", "oracle_reward", "normalized_reward",
    "regret", "cum_regret", "click_rate", "sessions", "churn", "session_length", "diversity",
    "coverage", "cold_start_share", "oracle_cold_start_share", "tracking_error", "drift_event",
)  # fmt: skip
STEPS = np.arange(1, 13) * 100  # 12 windows of 100 global steps
EVENT = 600
TOPICS = np.array(["news", "sport", "music", "film"])


def write_run(exp_dir: Path, agent: str, seed: int, *, level: float, done: bool = True) -> Path:
    """One run of scenario "shift" in the runner's format: a dip after the event at step 600."""
    run_dir = exp_dir / f"shift__{agent}__{seed}"
    run_dir.mkdir(parents=True)
    w = len(STEPS)
    config = {
        "scenario": "shift", "env_id": "driftrec/DriftRec-v0", "agent": agent,
        "agent_kwargs": {}, "seed": seed, "num_envs": 8, "total_steps": 1200, "log_every": 100,
        "frozen_at": None, "env_config": {}, "cold_start_window": 200,
    }  # fmt: skip
    (run_dir / "config.json").write_text(json.dumps(config))
    nr = np.full(w, level - 0.02 * seed)
    nr[6:9] = nr[6:9] * np.array([0.3, 0.6, 0.95])  # windows ending 700, 800, 900
    oracle = np.full(w, 0.5)
    regret = oracle * (1 - nr)
    values = {
        "step": STEPS, "env_steps": STEPS * 8, "reward": 0.4 * nr, "expected_reward": oracle * nr,
        "oracle_reward": oracle, "normalized_reward": nr, "regret": regret,
        "cum_regret": np.cumsum(regret * 100), "click_rate": 0.4 * nr, "sessions": np.full(w, 20),
        "churn": np.full(w, 0.1), "session_length": np.full(w, 9.0), "diversity": np.full(w, 0.6),
        "coverage": np.full(w, 0.3), "cold_start_share": np.full(w, 0.05),
        "oracle_cold_start_share": np.full(w, 0.1),
        "tracking_error": np.where(np.arange(w) == 0, np.nan, 0.2),
        "drift_event": np.where(STEPS == EVENT, 1, 0),
    }  # fmt: skip
    lines = [",".join(COLUMNS)]
    lines += [",".join(repr(float(values[c][i])) for c in COLUMNS) for i in range(w)]
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n")
    events = {"events": [{"step": EVENT, "kind": "population_shift"}], "counts": {}}
    (run_dir / "events.json").write_text(json.dumps(events))
    t = np.linspace(0, 1, w)[:, None]
    interest = np.hstack([1 - t, t, np.full((w, 2), 0.5)])
    interest /= interest.sum(axis=1, keepdims=True)
    np.savez(
        run_dir / "topics.npz",
        steps=STEPS,
        topic_names=TOPICS,
        rec_mix=np.roll(interest, 1, axis=0),
        interest_mix=interest,
        tracked_interest=interest[:, None, :],
        tracked_rec=np.roll(interest, 1, axis=0)[:, None, :],
    )
    if agent == "attention-ppo":
        h = 5
        item_topic = np.tile(np.arange(h) % 4, (w, 1))
        np.savez(
            run_dir / "attention.npz",
            steps=STEPS,
            weights=np.tile(np.linspace(0.1, 0.3, h), (w, 1)),
            item_topic=item_topic,
            feedback=(item_topic == 1).astype(np.float64),
            mask=np.ones((w, h), dtype=bool),
            topic_names=TOPICS,
        )
    if done:
        (run_dir / "done.json").write_text(json.dumps({"wall_time_s": 2.0, "env_steps": 9600}))
    return run_dir


@pytest.fixture
def exp_dir(tmp_path: Path) -> Path:
    """2 agents x 3 seeds, one population event, plus one interrupted run."""
    exp = tmp_path / "exp"
    for seed in range(3):
        write_run(exp, "attention-ppo", seed, level=0.8)
        write_run(exp, "random", seed, level=0.3)
    write_run(exp, "attention-ppo", 3, level=0.8, done=False)
    return exp


def test_write_report_links_every_png_and_has_table(exp_dir: Path) -> None:
    """report.md exists, links every PNG written, explains the plot and holds the table."""
    with pytest.warns(UserWarning, match="shift__attention-ppo__3"):
        report = write_report(exp_dir, title="Test experiment")
    assert report == exp_dir / "report.md"
    text = report.read_text()
    pngs = sorted(p.name for p in report.parent.glob("*.png"))
    assert pngs == [
        "adaptation_shift.png",
        "attention_shift.png",
        "interest_drift_shift__attention-ppo.png",
        "recovery_shift.png",
        "regret_shift.png",
    ]
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(links) == pngs
    assert all(p.stat().st_size > 5_000 for p in report.parent.glob("*.png"))
    assert text.startswith("# Test experiment\n")
    assert "## How to read the figures" in text
    assert "95% confidence interval" in text and "oracle" in text
    # the headline: every agent minus the best non-privileged baseline (here random), paired
    assert text.index("## Paired comparisons (headline)") < text.index("## Scenario `shift`")
    assert "**shift: each agent minus `random`, paired by seed**" in text
    assert "| attention-ppo | 3 |" in text and "reference `random`" in text
    assert text.splitlines()[2].startswith("> **Warning:** only 3 seeds (fewer than 5)")
    assert "| scenario | agent | seeds | reward/oracle" in text
    assert "| shift | attention-ppo | 3 |" in text and "| shift | random | 3 |" in text
    assert "population shift @ 600" in text
    assert "`shift`" in text and "1,200" in text  # scenario and steps from config.json
    hidden = [p.name for p in report.parent.iterdir() if p.name.startswith(".")]
    assert hidden == [MANIFEST_NAME]  # what driftrec wrote there, and no temp files


def test_write_report_out_dir_and_no_attention(tmp_path: Path) -> None:
    """Without attention agents: no attention plot; interest drift for the non-random agent."""
    exp = tmp_path / "exp"
    for seed in range(2):
        write_run(exp, "linucb", seed, level=0.7)
        write_run(exp, "random", seed, level=0.3)
    out = tmp_path / "out"
    report = write_report(exp, out_dir=out)
    assert report.parent == out
    names = {p.name for p in out.glob("*.png")}
    assert "attention_shift.png" not in names
    assert "interest_drift_shift__linucb.png" in names
    text = report.read_text()
    assert text.startswith("# driftrec experiment: exp\n")
    assert "interest_drift_shift__linucb.png" in text and "attention_shift.png" not in text


def test_write_figures_returns_pngs(exp_dir: Path, tmp_path: Path) -> None:
    """write_figures writes the PNGs only and returns their paths."""
    with pytest.warns(UserWarning, match="incomplete"):
        paths = write_figures(exp_dir, out_dir=tmp_path / "figs")
    assert len(paths) == 5 and all(p.is_file() and p.parent == tmp_path / "figs" for p in paths)
    assert not (tmp_path / "figs" / "report.md").exists()


def test_compare_to_is_the_users_choice(exp_dir: Path, tmp_path: Path) -> None:
    """compare_to names the reference (report.md and the console); an unknown one is refused."""
    from driftrec.experiments.report import console_text

    with pytest.warns(UserWarning, match="incomplete"):
        report = write_report(exp_dir, out_dir=tmp_path / "r", compare_to="attention-ppo")
        runs = load_runs(exp_dir)
    text = report.read_text()
    assert "each agent minus `attention-ppo`" in text and "chosen by the user" in text
    console = console_text(runs, compare_to="attention-ppo")
    assert console.startswith("shift: each agent minus `attention-ppo`, paired by seed")
    assert "WARNING: only 3 seeds" in console and "reward/oracle" in console
    msg = "'compare_to' must be one of the experiment's agents ['attention-ppo', 'random'] "
    with pytest.raises(ValueError, match=re.escape(msg + "(got 'nobody')")):
        console_text(runs, compare_to="nobody")


def test_summary_text_plain(exp_dir: Path) -> None:
    """summary_text is two aligned plain-text tables (outcome, behaviour), one line per agent,
    each narrower than the single wide table they replace."""
    with pytest.warns(UserWarning):
        rows = summary_table(load_runs(exp_dir))
    outcome, behaviour = summary_text(rows).strip().split("\n\n")
    for table in (outcome, behaviour):
        lines = table.splitlines()
        assert len(lines) == 4 and lines[0].startswith("scenario")
        assert lines[2].startswith("shift") and "attention-ppo" in lines[2]
        wide = max(len(line) for line in format_table(rows, markdown=False).splitlines())
        assert max(len(line) for line in lines) < wide
    assert "reward/oracle" in outcome and "click rate" not in outcome
    assert "click rate" in behaviour and "reward/oracle" not in behaviour
