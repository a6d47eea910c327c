"""Tests of driftrec.experiments.comparison: paired differences, the reference rule, tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from driftrec.experiments.analysis import load_runs
from driftrec.experiments.comparison import (
    NOT_DISTINGUISHABLE,
    choose_reference,
    compare_agents,
    comparison_note,
    format_comparison,
    paired_difference,
)

STEPS = np.arange(1, 9) * 10  # 8 windows


def run(
    exp: Path,
    agent: str,
    seed: int,
    *,
    ret: float | list[float],
    nr: float | list[float] = 0.5,
    scenario: str = "s",
) -> None:
    """One run: user_return per window (10 stays ending in each) and normalized_reward."""
    d = exp / f"{scenario}__{agent}__{seed}"
    d.mkdir(parents=True)
    cfg = {"scenario": scenario, "agent": agent, "seed": seed}
    (d / "config.json").write_text(json.dumps(cfg))
    cols = {
        "step": STEPS,
        "user_return": np.broadcast_to(np.asarray(ret, dtype=float), STEPS.shape),
        "sessions": np.full(STEPS.shape, 10.0),
        "normalized_reward": np.broadcast_to(np.asarray(nr, dtype=float), STEPS.shape),
    }
    lines = [",".join(cols)] + [
        ",".join(repr(float(cols[c][i])) for c in cols) for i in range(len(STEPS))
    ]
    (d / "metrics.csv").write_text("\n".join(lines) + "\n")
    (d / "done.json").write_text("{}")


def test_paired_difference_by_hand(tmp_path: Path) -> None:
    """Differences 2, 3, 7 over three seeds: the t interval is scipy's, seeds paired."""
    for seed, (a, b) in enumerate([(12.0, 10.0), (23.0, 20.0), (37.0, 30.0)]):
        run(tmp_path, "learner", seed, ret=a)
        run(tmp_path, "linucb", seed, ret=b)
    run(tmp_path, "learner", 9, ret=50.0)  # no reference run on seed 9: not paired
    d = paired_difference(load_runs(tmp_path), "learner", "linucb", "user_return")
    assert d.seeds == (0, 1, 2) and d.diffs.tolist() == [2.0, 3.0, 7.0]
    # mean 4, sd = sqrt((4 + 1 + 9) / 2) = sqrt(7); half = t_{.975,2} sqrt(7) / sqrt(3)
    lo, hi = stats.ttest_1samp([2.0, 3.0, 7.0], 0.0).confidence_interval(0.95)
    assert (d.t.lo, d.t.hi) == pytest.approx((lo, hi))
    assert d.t.mean == 4.0 and not d.t.floored  # constant windows: no within-seed noise
    assert d.ahead == 3 and d.reference_mean == pytest.approx(20.0)
    # the t interval contains 0 (-2.57, 10.57): not distinguishable, though every seed is ahead
    assert d.t.lo < 0 < d.t.hi and d.verdict == NOT_DISTINGUISHABLE
    assert d.interval_text() == f"+4.00 [{lo:+.2f}, {hi:+.2f}]"


def test_verdict_needs_both_intervals_to_exclude_zero(tmp_path: Path) -> None:
    """Five seeds ahead by about 1 are 'higher'; behind, 'lower'; one seed is 'n/a'."""
    for seed, delta in enumerate([0.9, 1.0, 1.1, 1.0, 0.95]):
        run(tmp_path, "good", seed, ret=10.0 + delta)
        run(tmp_path, "bad", seed, ret=10.0 - delta)
        run(tmp_path, "ref", seed, ret=10.0)
    runs = load_runs(tmp_path)
    good = paired_difference(runs, "good", "ref")
    assert good.verdict == "higher" and good.bootstrap[0] > 0 and good.t.lo > 0
    assert paired_difference(runs, "bad", "ref").verdict == "lower"
    one = paired_difference([r for r in runs if r.seed == 0], "good", "ref")
    assert one.n == 1 and one.verdict == "n/a" and one.bootstrap_text() == "–"


def test_within_seed_noise_widens_an_interval_of_agreeing_seeds(tmp_path: Path) -> None:
    """Three seeds whose differences agree to 0.001, each from noisy windows: the interval
    is floored at the windows' batch-means standard error (and marked)."""
    rng = np.random.default_rng(0)
    for seed, delta in enumerate([0.010, 0.011, 0.012]):
        noise = rng.normal(0.0, 0.05, len(STEPS))
        noise -= noise.mean()  # the run's mean difference is exactly delta
        run(tmp_path, "a", seed, ret=10.0, nr=list(0.5 + delta + noise))
        run(tmp_path, "b", seed, ret=10.0, nr=0.5)
    d = paired_difference(load_runs(tmp_path), "a", "b", "normalized_reward")
    assert d.t.mean == pytest.approx(0.011)
    assert d.t.floored and np.isfinite(d.within_se).all()
    floor = math.sqrt(float(np.mean(d.within_se**2)))
    assert d.t.half_width == pytest.approx(stats.t.ppf(0.975, 2) * floor / math.sqrt(3))
    assert d.t.half_width > 10 * stats.t.ppf(0.975, 2) * 0.001 / math.sqrt(3)
    assert "†" in d.interval_text()


def test_choose_reference_is_the_best_non_privileged_baseline(tmp_path: Path) -> None:
    """population-best and the oracle earn more, attention-ppo is not a baseline: linucb."""
    for seed in range(2):
        run(tmp_path, "oracle", seed, ret=90.0)
        run(tmp_path, "population-best", seed, ret=50.0)
        run(tmp_path, "attention-ppo", seed, ret=45.0)
        run(tmp_path, "linucb-discounted", seed, ret=40.0)
        run(tmp_path, "history-similarity", seed, ret=30.0)
        run(tmp_path, "random", seed, ret=8.0)
    runs = load_runs(tmp_path)
    assert choose_reference(runs) == "linucb-discounted"
    assert choose_reference([r for r in runs if r.agent in ("oracle", "attention-ppo")]) is None
    rows = compare_agents(runs)
    assert {r["reference"] for r in rows} == {"linucb-discounted"} and all(
        r["chosen"] for r in rows
    )
    assert [r["agent"] for r in rows] == [  # best first by the mean return difference
        "oracle",
        "population-best",
        "attention-ppo",
        "history-similarity",
        "random",
    ]
    chosen = compare_agents(runs, reference="random")
    assert {r["reference"] for r in chosen} == {"random"} and not chosen[0]["chosen"]


def test_format_comparison_and_note(tmp_path: Path) -> None:
    """The table names the reference and each verdict; the note warns below five seeds."""
    for seed in range(3):
        run(tmp_path, "learner", seed, ret=[40.0 + seed + (w % 2) for w in range(8)], nr=0.7)
        run(tmp_path, "linucb", seed, ret=[40.0 + 2 * seed for _ in range(8)], nr=0.6 + 0.01 * seed)
    rows = compare_agents(load_runs(tmp_path))
    text = format_comparison(rows)
    assert "s: each agent minus `linucb`, paired by seed" in text
    assert "| agent | seeds | return per user: minus linucb [95% t] | bootstrap 95% |" in text
    assert NOT_DISTINGUISHABLE in text and "| learner | 3 |" in text
    plain = format_comparison(rows, markdown=False)
    assert "|" not in plain and "learner" in plain
    note = "\n".join(comparison_note(rows))
    assert "reference `linucb`, the non-privileged baseline with the highest" in note
    assert "WARNING: only 3 seeds (fewer than 5)" in note
    with pytest.raises(ValueError, match="no runs of agent 'nobody'"):
        paired_difference(load_runs(tmp_path), "learner", "nobody")


def test_runs_without_the_column_are_left_out(tmp_path: Path) -> None:
    """A run written before a column existed is skipped for that measure, not an error."""
    for seed in range(3):
        run(tmp_path, "a", seed, ret=12.0 + seed)
        run(tmp_path, "b", seed, ret=10.0)
    old = tmp_path / "s__a__2" / "metrics.csv"
    lines = [line.split(",") for line in old.read_text().splitlines()]
    keep = [i for i, name in enumerate(lines[0]) if name != "user_return"]
    old.write_text("\n".join(",".join(row[i] for i in keep) for row in lines) + "\n")
    d = paired_difference(load_runs(tmp_path), "a", "b", "user_return")
    assert d.seeds == (0, 1) and d.diffs.tolist() == [2.0, 3.0]
