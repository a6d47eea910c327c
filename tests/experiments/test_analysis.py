"""Tests of driftrec.experiments.analysis on hand-made run directories."""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from driftrec.experiments.analysis import (
    IncompleteRunError,
    NoRunsError,
    Recovery,
    Stat,
    aggregate,
    bootstrap_ci,
    censored_median,
    few_seeds_warning,
    format_stat,
    format_table,
    load_run,
    load_runs,
    mean_ci,
    moving_average,
    recovery_time,
    reference_levels,
    summary_table,
    t_quantile_975,
    within_run_se,
)

COLUMNS = (
    "step", "env_steps", "reward", "expected_reward", "oracle_reward", "normalized_reward",
    "regret", "cum_regret", "click_rate", "sessions", "churn", "session_length", "diversity",
    "coverage", "cold_start_share", "oracle_cold_start_share", "tracking_error", "drift_event",
)  # fmt: skip


def write_run(
    exp_dir: Path,
    scenario: str,
    agent: str,
    seed: int,
    *,
    steps: Sequence[int],
    values: Mapping[str, Sequence[float] | float] | None = None,
    events: Sequence[int] = (),
    done: bool = True,
    topics: bool = False,
) -> Path:
    """Write one run dir in the runner's format; unspecified metric columns are 0.5 (or cells)."""
    run_dir = exp_dir / f"{scenario}__{agent}__{seed}"
    run_dir.mkdir(parents=True)
    config = {
        "scenario": scenario, "env_id": "driftrec/DriftRec-v0", "agent": agent,
        "agent_kwargs": {}, "seed": seed, "num_envs": 4, "total_steps": int(steps[-1]),
        "log_every": int(steps[0]), "frozen_at": None, "env_config": {}, "cold_start_window": 100,
    }  # fmt: skip
    (run_dir / "config.json").write_text(json.dumps(config))
    values = dict(values or {})
    columns = [*COLUMNS, *(k for k in values if k not in COLUMNS)]
    cols: dict[str, list[str]] = {}
    for name in columns:
        v = steps if name == "step" else values.get(name, 0.5)
        seq = list(v) if isinstance(v, Sequence) else [v] * len(steps)
        cols[name] = [x if isinstance(x, str) else repr(float(x)) for x in seq]
    lines = [",".join(columns)]
    lines += [",".join(cols[c][i] for c in columns) for i in range(len(steps))]
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n")
    doc = {
        "events": [{"step": s, "kind": "population_shift"} for s in events],
        "counts": {"interest_jump": 3, "new_items": 0},
    }
    (run_dir / "events.json").write_text(json.dumps(doc))
    if topics:
        w, k = len(steps), 3
        np.savez(
            run_dir / "topics.npz",
            steps=np.asarray(steps),
            topic_names=np.array(["news", "sport", "music"]),
            rec_mix=np.full((w, k), 1 / k),
            interest_mix=np.full((w, k), 1 / k),
            tracked_interest=np.full((w, 1, k), 1 / k),
            tracked_rec=np.full((w, 1, k), 1 / k),
        )
    if done:
        (run_dir / "done.json").write_text(json.dumps({"wall_time_s": 1.0, "env_steps": 1}))
    return run_dir


STEPS = [100, 200, 300, 400, 500, 600]


@pytest.fixture
def exp_dir(tmp_path: Path) -> Path:
    """Agent "a" with 2 seeds, agent "b" with 1 seed, one population event at step 300."""
    write_run(
        tmp_path, "shift", "a", 0, steps=STEPS, events=[300],
        values={"normalized_reward": [0.8, 0.8, 0.8, 0.4, 0.8, 0.8],
                "cum_regret": [1, 2, 3, 6, 8, 10], "click_rate": 0.1},
    )  # fmt: skip
    write_run(
        tmp_path, "shift", "a", 1, steps=STEPS, events=[300],
        values={"normalized_reward": [0.6, 0.6, 0.6, 0.3, 0.3, 0.6],
                "cum_regret": [2, 4, 6, 9, 12, 14], "click_rate": 0.3},
    )  # fmt: skip
    write_run(
        tmp_path,
        "shift",
        "b",
        0,
        steps=STEPS,
        events=[300],
        values={"normalized_reward": [1.0] * 6, "cum_regret": [0.0] * 6},
    )
    return tmp_path


# ------------------------------------------------------------------------------------ loading


def test_load_run_reads_config_metrics_events(exp_dir: Path) -> None:
    """load_run parses config, the CSV as float arrays, events and counts."""
    run = load_run(exp_dir / "shift__a__1")
    assert (run.scenario, run.agent, run.seed) == ("shift", "a", 1)
    assert run.metrics["step"].dtype == np.float64
    np.testing.assert_array_equal(run.steps, STEPS)
    np.testing.assert_allclose(run.metrics["normalized_reward"], [0.6, 0.6, 0.6, 0.3, 0.3, 0.6])
    assert run.events == [{"step": 300, "kind": "population_shift"}]
    assert run.event_counts == {"interest_jump": 3, "new_items": 0}
    assert run.event_steps() == [300]
    assert run.topics is None and run.attention is None
    assert run.done["wall_time_s"] == 1.0


def test_csv_empty_and_nan_cells_are_nan(tmp_path: Path) -> None:
    """Empty and 'nan' cells load as nan."""
    write_run(tmp_path, "s", "a", 0, steps=[10, 20], values={"tracking_error": ["", "nan"]})
    run = load_run(tmp_path / "s__a__0")
    assert np.isnan(run.metrics["tracking_error"]).all()


def test_load_run_reads_topics(tmp_path: Path) -> None:
    """topics.npz is loaded into a dict of arrays with string topic names."""
    write_run(tmp_path, "s", "a", 0, steps=[10, 20], topics=True)
    run = load_run(tmp_path / "s__a__0")
    assert run.topics is not None
    assert run.topics["rec_mix"].shape == (2, 3)
    assert list(run.topics["topic_names"]) == ["news", "sport", "music"]


def test_load_run_incomplete_raises(tmp_path: Path) -> None:
    """load_run refuses a run dir without done.json."""
    write_run(tmp_path, "s", "a", 0, steps=[10], done=False)
    with pytest.raises(IncompleteRunError, match="done.json"):
        load_run(tmp_path / "s__a__0")


def test_load_runs_sorted_and_filtered(exp_dir: Path) -> None:
    """load_runs sorts by (scenario, agent, seed) and filters by scenario and agents."""
    write_run(exp_dir, "alpha", "z", 3, steps=STEPS)
    runs = load_runs(exp_dir)
    assert [r.name for r in runs] == ["alpha__z__3", "shift__a__0", "shift__a__1", "shift__b__0"]
    assert [r.name for r in load_runs(exp_dir, scenario="shift", agents=["b"])] == ["shift__b__0"]
    with pytest.raises(NoRunsError, match="scenario='nope'"):
        load_runs(exp_dir, scenario="nope")


def test_load_runs_skips_incomplete_with_warning(exp_dir: Path) -> None:
    """An interrupted run (no done.json) is skipped with a warning naming it."""
    write_run(exp_dir, "shift", "a", 2, steps=STEPS[:2], done=False)
    with pytest.warns(UserWarning, match="shift__a__2"):
        runs = load_runs(exp_dir)
    assert "shift__a__2" not in [r.name for r in runs]
    assert len(runs) == 3


def test_load_runs_errors_on_empty_or_missing_dir(tmp_path: Path) -> None:
    """An empty directory raises NoRunsError; a missing one FileNotFoundError."""
    (tmp_path / "report").mkdir()  # not a run dir: ignored
    with pytest.raises(NoRunsError, match="no complete runs"):
        load_runs(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_runs(tmp_path / "missing")


# ------------------------------------------------------------------------------- statistics


def test_t_quantile_table_and_large_df() -> None:
    """t_{0.975} matches the printed table, decreases with df and tends to 1.96."""
    assert t_quantile_975(1) == pytest.approx(12.7062, abs=1e-4)
    assert t_quantile_975(2) == pytest.approx(4.3027, abs=1e-4)
    assert t_quantile_975(4) == pytest.approx(2.7764, abs=1e-4)
    assert t_quantile_975(30) == pytest.approx(2.0423, abs=1e-4)
    assert t_quantile_975(60) == pytest.approx(2.0003, abs=1e-3)
    assert t_quantile_975(10**6) == pytest.approx(1.96, abs=1e-3)
    qs = [t_quantile_975(d) for d in range(1, 100)]
    assert all(a > b for a, b in zip(qs, qs[1:], strict=False))
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_mean_ci_by_hand() -> None:
    """mean_ci of [1, 2, 6]: mean 3, sd sqrt(7), half-width 4.3027 * sqrt(7/3); nan ignored."""
    # deviations -2, -1, 3 -> sum of squares 14 -> var 14/2 = 7; se = sqrt(7)/sqrt(3) = 1.527525
    half = 4.302653 * math.sqrt(7 / 3)  # = 6.57239
    stat = mean_ci([1.0, 2.0, 6.0, math.nan])
    assert stat.n == 3
    assert stat.mean == pytest.approx(3.0)
    assert stat.lo == pytest.approx(3.0 - half)
    assert stat.hi == pytest.approx(3.0 + half)
    assert mean_ci([5.0]) == Stat(5.0, 5.0, 5.0, 1)
    assert mean_ci([]).n == 0 and math.isnan(mean_ci([math.nan]).mean)


def test_mean_ci_floors_a_spuriously_narrow_interval_at_the_runs_own_noise() -> None:
    """Three seeds that agree (sd 0.001) but each with a standard error of 0.006: the
    interval uses 0.006 (the issue's -0.009 +- 0.001 personal gain) and says so."""
    values = [-0.010, -0.009, -0.008]
    narrow = mean_ci(values)
    assert narrow.half_width == pytest.approx(4.302653 * 0.001 / math.sqrt(3))  # 0.0025
    floored = mean_ci(values, [0.006, 0.006, 0.006])
    assert floored.floored and floored.mean == pytest.approx(-0.009)
    assert floored.half_width == pytest.approx(4.302653 * 0.006 / math.sqrt(3))  # 0.0149
    # the floor is the root mean square of the standard errors: sqrt((0 + 0 + 0.012^2) / 3)
    rms = mean_ci(values, [0.0, 0.0, 0.012])
    assert rms.half_width == pytest.approx(4.302653 * math.sqrt(0.012**2 / 3) / math.sqrt(3))
    wide = mean_ci([0.1, 0.5, 0.9], [0.006] * 3)  # a real spread is not changed
    assert not wide.floored and wide.half_width == pytest.approx(4.302653 * 0.4 / math.sqrt(3))
    with pytest.raises(ValueError, match="one standard error per value"):
        mean_ci(values, [0.006])


def test_mean_ci_cuts_to_bounds() -> None:
    """A ratio's interval never leaves [0, 1]: 0.61 with half-width 1.03 reads [0, 1]."""
    stat = mean_ci([0.2, 1.0], bounds=(0.0, 1.0))  # mean 0.6, half 12.7062 * 0.4 = 5.08
    assert stat.clipped and (stat.lo, stat.hi) == (0.0, 1.0) and stat.mean == pytest.approx(0.6)
    inside = mean_ci([0.5, 0.52, 0.54], bounds=(0.0, 1.0))
    assert not inside.clipped


def test_format_stat_prints_no_negative_zero() -> None:
    """A mean that rounds to zero reads 0.000, not -0.000 (the sign of rounding noise)."""
    assert format_stat(Stat(-0.0001, -0.0002, 0.0, 3)) == "0.000 ± 0.000"
    assert format_stat(Stat(-0.0001, 0.0, 0.0003, 3, clipped=True)) == "0.000 [0.000, 0.000]‡"
    assert format_stat(Stat(-0.004, -0.012, 0.004, 3)) == "-0.004 ± 0.008"


def test_within_run_se_by_batch_means() -> None:
    """Batch means of 8 windows in 4 batches, variance from successive differences."""
    x = [1.0, 1.0, 3.0, 3.0, 1.0, 1.0, 3.0, 3.0]  # batch means 1, 3, 1, 3
    # successive differences 2, -2, 2: sum of squares 12 / (2 * 3) = 2; se = sqrt(2 / 4)
    assert within_run_se(x, batches=4) == pytest.approx(math.sqrt(0.5))
    # a steady learning trend: batch means 1, 2, 3, 4, differences all 1 -> 3 / 6 = 0.5
    trend = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]
    assert within_run_se(trend, batches=4) == pytest.approx(math.sqrt(0.5 / 4))
    assert within_run_se(trend, batches=4) < np.std([1, 2, 3, 4], ddof=1) / 2  # plain: 0.645
    # weights: batch 1 = (1 * 3 + 3 * 1) / 4 = 1.5, batch 2 = 3 -> (1.5)^2 / 2 / 2
    assert within_run_se([1, 3, 3, 3], [3, 1, 1, 1], batches=2) == pytest.approx(
        math.sqrt(1.5**2 / 2 / 2)
    )
    assert math.isnan(within_run_se([1.0, 2.0, 3.0]))  # fewer than 2 batches of 2 windows


def test_bootstrap_ci_seeded_stratified_and_small_n() -> None:
    """Same seed, same interval; at n = 2 the percentile interval is [min, max]."""
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 1.0, 40)
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    lo, hi = bootstrap_ci(x, seed=3)
    assert lo < x.mean() < hi and hi - lo == pytest.approx(2 * 1.96 * x.std() / 40**0.5, rel=0.2)
    # resampling two values gives means {a, (a+b)/2, b} with probabilities 1/4, 1/2, 1/4
    assert bootstrap_ci([1.0, 3.0], seed=0) == (1.0, 3.0)
    # stratified: each stratum keeps its size, so a constant stratum adds no spread
    lo_s, hi_s = bootstrap_ci([0, 0, 0, 0, 1, 3], [0, 0, 0, 0, 1, 1], seed=0)
    assert (lo_s, hi_s) == pytest.approx((2 / 6, 6 / 6))
    assert all(math.isnan(v) for v in bootstrap_ci([math.nan]))


def test_few_seeds_warning() -> None:
    """Below five seeds the warning names the count; from five on there is none."""
    assert "only 3 seeds (fewer than 5)" in str(few_seeds_warning(3))
    assert few_seeds_warning(5) is None


def test_moving_average_trailing() -> None:
    """Trailing window, same length, shorter at the start, nan ignored."""
    np.testing.assert_allclose(moving_average([1, 2, 3, 4], 2), [1.0, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(moving_average([1, 2, 3, 4], 3), [1.0, 1.5, 2.0, 3.0])
    np.testing.assert_allclose(moving_average([1, math.nan, 3], 2), [1.0, 1.0, 3.0])
    assert np.isnan(moving_average([math.nan, math.nan], 2)).all()
    np.testing.assert_allclose(moving_average([1, 2], 1), [1, 2])


def _runs_with(
    tmp_path: Path,
    per_seed: Sequence[Sequence[float]],
    agent: str = "x",
    metric: str = "normalized_reward",
) -> list:
    for seed, nr in enumerate(per_seed):
        write_run(tmp_path, "s", agent, seed, steps=[10, 20], values={metric: nr})
    return load_runs(tmp_path)


def test_aggregate_mean_and_ci_three_seeds_by_hand(tmp_path: Path) -> None:
    """aggregate over 3 seeds: step 10 values 1, 2, 6 and step 20 values all 0.5."""
    runs = _runs_with(tmp_path, [[1.0, 0.5], [2.0, 0.5], [6.0, 0.5]], metric="score")
    curve = aggregate(runs, "score")["x"]  # an unbounded metric: the band is not cut
    # step 10: mean 3, sd = sqrt(((1-3)^2 + (2-3)^2 + (6-3)^2) / 2) = sqrt(7),
    # half-width = t_{0.975,2} * sd / sqrt(3) = 4.3027 * 1.527525 = 6.57246
    # step 20: sd 0 -> lo = hi = mean = 0.5
    assert curve.n == 3
    np.testing.assert_array_equal(curve.steps, [10, 20])
    np.testing.assert_allclose(curve.mean, [3.0, 0.5])
    np.testing.assert_allclose(curve.lo, [3.0 - 6.57246, 0.5], atol=1e-4)
    np.testing.assert_allclose(curve.hi, [3.0 + 6.57246, 0.5], atol=1e-4)


def test_aggregate_cuts_bands_to_the_metrics_range(tmp_path: Path) -> None:
    """A one-step oracle ratio's band stays in [0, 1] however few and spread the seeds."""
    runs = _runs_with(tmp_path, [[0.1, 0.9], [0.9, 0.95]])  # n = 2: t = 12.7
    curve = aggregate(runs, "normalized_reward")["x"]
    np.testing.assert_allclose(curve.mean, [0.5, 0.925])
    # step 20: sd = 0.05 / sqrt(2), half-width = 12.7062 * sd / sqrt(2) = 12.7062 * 0.025
    np.testing.assert_allclose(curve.lo, [0.0, 0.925 - 12.7062 * 0.025], atol=1e-4)
    np.testing.assert_allclose(curve.hi, [1.0, 1.0])


def test_aggregate_single_seed_and_smoothing(tmp_path: Path) -> None:
    """With one seed lo = hi = mean; smooth=2 averages each window with the previous one."""
    runs = _runs_with(tmp_path, [[1.0, 3.0]])
    curve = aggregate(runs, "normalized_reward", smooth=2)["x"]
    np.testing.assert_allclose(curve.mean, [1.0, 2.0])
    np.testing.assert_allclose(curve.lo, curve.mean)
    np.testing.assert_allclose(curve.hi, curve.mean)


def test_aggregate_ignores_nan_seed_values(tmp_path: Path) -> None:
    """A nan in one seed leaves that window's statistics to the other seeds."""
    runs = _runs_with(tmp_path, [[1.0, "nan"], [3.0, 4.0]])  # type: ignore[list-item]
    curve = aggregate(runs, "normalized_reward")["x"]
    np.testing.assert_allclose(curve.mean, [2.0, 4.0])
    np.testing.assert_array_equal(curve.count, [2, 1])
    assert curve.lo[1] == curve.hi[1] == 4.0


def test_aggregate_rejects_mismatched_steps(tmp_path: Path) -> None:
    """Runs of one agent on different step grids raise ValueError naming them."""
    write_run(tmp_path, "s", "x", 0, steps=[10, 20])
    write_run(tmp_path, "s", "x", 1, steps=[10, 30])
    with pytest.raises(ValueError, match="s__x__1"):
        aggregate(load_runs(tmp_path), "normalized_reward")


def test_aggregate_rejects_mixed_scenarios_and_unknown_metric(tmp_path: Path) -> None:
    """Several scenarios or an unknown metric are errors."""
    write_run(tmp_path, "s", "x", 0, steps=[10])
    write_run(tmp_path, "t", "x", 0, steps=[10])
    runs = load_runs(tmp_path)
    with pytest.raises(ValueError, match="one scenario"):
        aggregate(runs, "normalized_reward")
    with pytest.raises(KeyError, match="no metric 'bogus'"):
        aggregate(runs[:1], "bogus")


def test_aggregate_groups_agents_sorted(exp_dir: Path) -> None:
    """One curve per agent, sorted; n counts seeds."""
    curves = aggregate(load_runs(exp_dir), "cum_regret")
    assert list(curves) == ["a", "b"]
    assert curves["a"].n == 2 and curves["b"].n == 1
    np.testing.assert_allclose(curves["a"].mean, [1.5, 3, 4.5, 7.5, 10, 12])


# --------------------------------------------------------------------------------- recovery

S = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
PRE = [1.0] * 5  # windows ending at 100..500, the event at 500


def test_recovery_immediate() -> None:
    """Back above 0.9 L in the first window after the event: recovery 0 (never below)."""
    rec = recovery_time(S, PRE + [0.95] * 5, 500)
    assert rec.steps == 0 and not rec.censored
    assert rec.pre_level == pytest.approx(1.0)
    assert rec.dip == pytest.approx(0.95)
    assert rec.observed == 500


def test_recovery_delayed() -> None:
    """Dip to 0.5 then 0.7; the first of two good windows starts at 700 -> 200 steps."""
    rec = recovery_time(S, PRE + [0.5, 0.7, 0.95, 0.92, 1.0], 500)
    assert rec.steps == 200 and not rec.censored
    assert rec.dip == pytest.approx(0.5)


def test_recovery_never_is_censored() -> None:
    """Never reaching 0.9 L: nan and censored; the lower bound is the recovery time the last
    two windows (900, 1000: starting at 800) could have shown, 800 - 500."""
    rec = recovery_time(S, PRE + [0.5, 0.6, 0.7, 0.8, 0.85], 500)
    assert math.isnan(rec.steps) and rec.censored
    assert rec.observed == 300 and rec.dip == pytest.approx(0.5)


def test_recovery_sustain_logic() -> None:
    """A single good window does not count with sustain=2; it does with sustain=1."""
    nr = PRE + [0.5, 0.95, 0.6, 0.95, 0.95]
    assert recovery_time(S, nr, 500, sustain=2).steps == 300  # windows 900 and 1000
    assert recovery_time(S, nr, 500, sustain=1).steps == 100  # window 700
    assert recovery_time(S, nr, 500, sustain=3).censored  # only two good in a row
    last_only = PRE + [0.5, 0.5, 0.5, 0.5, 0.95]
    assert recovery_time(S, last_only, 500, sustain=2).censored  # run ends before sustain


def test_recovery_pre_level_window_and_fraction() -> None:
    """L averages the last pre_windows windows ending at or before the event."""
    nr = [0.2, 0.4, 0.6, 0.8, 1.0, 0.8, 0.85, 0.85, 0.85, 0.85]
    rec = recovery_time(S, nr, 500, pre_windows=2)  # L = (0.8 + 1.0) / 2 = 0.9; bar 0.81
    assert rec.pre_level == pytest.approx(0.9)
    assert rec.steps == 100  # 0.8 < 0.81 at 600; 0.85 at 700 and 800
    assert rec.dip == pytest.approx(0.8 / 0.9)
    assert recovery_time(S, nr, 500, pre_windows=2, fraction=0.5).steps == 0


def test_recovery_not_enough_pre_windows_and_nan() -> None:
    """Too few pre-event windows: undefined (nan, not censored); nan breaks a good streak."""
    rec = recovery_time(S, PRE + [1.0] * 5, 300)
    assert math.isnan(rec.steps) and not rec.censored and not rec.defined
    nr = PRE + [0.95, math.nan, 0.95, 0.95, 0.95]
    assert recovery_time(S, nr, 500).steps == 200


def test_recovery_against_a_reference_moves_with_the_new_world() -> None:
    """The target is the agent's pre-event standing carried into the new world's level."""
    # the reference: 0.8 before, 0.6 after (the new world is harder for everyone)
    ref = [0.8] * 5 + [0.6] * 5
    a_pre, a_post = reference_levels(S, ref, 500)
    assert (a_pre, a_post) == pytest.approx((0.8, 0.6))
    # the agent was at 0.72 (standing 0.9) and is at 0.5 after: target 0.9 * 0.72 * 0.6 / 0.8
    agent = [0.72] * 5 + [0.3, 0.5, 0.5, 0.5, 0.5]
    rec = recovery_time(S, agent, 500, reference=(a_pre, a_post))
    assert rec.target == pytest.approx(0.486) and rec.steps == 100
    # the old rule (0.9 * 0.72 = 0.648) calls the same run never recovered
    assert recovery_time(S, agent, 500).censored
    # the reference itself is at the target from the first window: a noise floor of 0
    own = recovery_time(S, ref, 500, reference=(a_pre, a_post))
    assert own.steps == 0 and own.target == pytest.approx(0.54)
    # an unusable reference leaves the recovery undefined rather than falling back
    assert not recovery_time(S, agent, 500, reference=(math.nan, 0.6)).defined


def test_censored_median_is_the_time_half_had_recovered() -> None:
    """Censored seeds count as longer; more than half censored gives a lower bound."""

    def rec(steps: float, censored: bool = False) -> Recovery:
        return Recovery(math.nan if censored else steps, censored, 0.8, 0.5, 700.0)

    assert censored_median([rec(64), rec(32), rec(96)]) == (64.0, False)
    assert censored_median([rec(64), rec(0, True), rec(96)]) == (96.0, False)
    assert censored_median([rec(64), rec(0, True)]) == (64.0, False)
    assert censored_median([rec(64), rec(0, True), rec(0, True)]) == (700.0, True)
    median, bound = censored_median([])
    assert math.isnan(median) and not bound


def test_summary_recovery_with_population_best_has_a_noise_floor(tmp_path: Path) -> None:
    """With population-best in the grid, its levels set the target and its own recovery is
    every row's noise floor; the oracle's recovery is not measured."""
    ref = [0.8] * 5 + [0.6] * 5  # the new world is harder
    for seed in (0, 1):
        write_run(tmp_path, "s", "population-best", seed, steps=S, events=[500],
                  values={"normalized_reward": ref})  # fmt: skip
        write_run(tmp_path, "s", "learner", seed, steps=S, events=[500],
                  values={"normalized_reward": [0.72] * 5 + [0.3, 0.3, 0.5, 0.5, 0.5]})  # fmt: skip
        write_run(tmp_path, "s", "oracle", seed, steps=S, events=[500],
                  values={"normalized_reward": 1.0})  # fmt: skip
    rows = {r["agent"]: r for r in summary_table(load_runs(tmp_path))}
    (learner,) = rows["learner"]["recovery"]
    assert learner["median"] == 200.0 and learner["n_recovered"] == 2
    assert learner["floor"]["median"] == 0.0 and learner["floor"]["n_recovered"] == 2
    assert rows["population-best"]["recovery"][0]["median"] == 0.0
    assert rows["oracle"]["recovery"] == []
    assert rows["learner"]["recovery_reference"] == "population-best"
    header = format_table(list(rows.values()), part="outcome").splitlines()[0]
    assert "noise floor #1 (population-best)" in header
    assert "| 200 (200–200) | 0 (0–0) |" in format_table([rows["learner"]])


def test_recovery_horizon_limits_the_search() -> None:
    """With horizon=800 a recovery at 900 is censored."""
    nr = PRE + [0.5, 0.5, 0.5, 0.95, 0.95]
    assert recovery_time(S, nr, 500).steps == 300
    rec = recovery_time(S, nr, 500, horizon=800)
    assert rec.censored and rec.observed == 100  # windows 700, 800 could have shown 100


# ---------------------------------------------------------------------------------- summary


def test_summary_table_by_hand(exp_dir: Path) -> None:
    """Summary of agent a (2 seeds) and b (1 seed) against hand-computed values."""
    rows = summary_table(load_runs(exp_dir), pre_windows=3)
    assert [(r["scenario"], r["agent"], r["n"]) for r in rows] == [
        ("shift", "a", 2),
        ("shift", "b", 1),
    ]
    a, b = rows
    # whole-run means: seed 0 (5 * 0.8 + 0.4) / 6 = 0.73333, seed 1 (4 * 0.6 + 2 * 0.3) / 6 = 0.5
    # mean 0.616667; n = 2: half-width = 12.7062 * |0.73333 - 0.5| / 2 = 1.48239, which
    # reaches past both ends of the ratio's range [0, 1]: the interval is cut to it
    assert a["normalized_reward"].mean == pytest.approx(0.616667, abs=1e-6)
    assert (a["normalized_reward"].lo, a["normalized_reward"].hi) == (0.0, 1.0)
    assert a["normalized_reward"].clipped and not a["normalized_reward"].floored
    # before the event (steps <= 300): 0.8 and 0.6; after: (0.4+0.8+0.8)/3, (0.3+0.3+0.6)/3
    assert a["normalized_reward_before"].mean == pytest.approx(0.7)
    assert a["normalized_reward_after"].mean == pytest.approx((2.0 / 3 + 0.4) / 2)
    assert a["final_cum_regret"].mean == pytest.approx(12.0)
    assert a["click_rate"].mean == pytest.approx(0.2)
    assert a["coverage"].mean == pytest.approx(0.5)
    # recovery (L over 3 windows): seed 0 L = 0.8, 0.4 then 0.8, 0.8 -> the stretch starts
    # at 400: 400 - 300 = 100; seed 1 L = 0.6, 0.3, 0.3, 0.6 (last window only) -> censored,
    # longer than the 100 its last two windows (starting at 400) could have shown
    (rec,) = a["recovery"]
    assert rec["event_step"] == 300
    assert rec["steps"] == Stat(100.0, 100.0, 100.0, 1)
    assert (rec["n_recovered"], rec["n_censored"], rec["n_undefined"]) == (1, 1, 0)
    assert rec["dip"].mean == pytest.approx(0.5)
    # half the seeds had recovered at 100 (the other never did): the median is 100
    assert (rec["median"], rec["median_is_lower_bound"]) == (100.0, False)
    assert a["recovery_reference"] is None and rec["floor"] is None  # no population-best
    assert b["normalized_reward"] == Stat(1.0, 1.0, 1.0, 1)
    assert b["recovery"][0]["steps"].mean == 0


def test_summary_without_events(tmp_path: Path) -> None:
    """Without events: no 'after' statistic and no recovery entries."""
    write_run(tmp_path, "calm", "x", 0, steps=[10, 20], values={"normalized_reward": [0.2, 0.4]})
    (row,) = summary_table(load_runs(tmp_path))
    assert row["normalized_reward_after"] is None and row["recovery"] == []
    assert row["normalized_reward_before"].mean == pytest.approx(0.3)


def test_format_table_markdown_and_plain(exp_dir: Path) -> None:
    """The Markdown table has a header, '±' intervals and a not-recovered note."""
    rows = summary_table(load_runs(exp_dir), pre_windows=3)
    text = format_table(rows)
    lines = text.strip().splitlines()
    assert lines[0].startswith("| scenario | agent | seeds | reward/oracle")
    assert "recovery #1 (steps)" in lines[0]
    assert len(lines) == 4 and all(line.count("|") == lines[0].count("|") for line in lines)
    assert "0.617 [0.000, 1.000]‡" in text
    assert "100 (100–>100), 1/2 censored" in text
    assert "| b | 1 | 1.000 |" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = format_table(rows, markdown=False)
    assert "|" not in plain and "0.617 [0.000, 1.000]‡" in plain


def test_format_table_recovery_undefined_is_na(tmp_path: Path) -> None:
    """With too few windows before the event the recovery cell reads n/a."""
    write_run(tmp_path, "s", "x", 0, steps=[10, 20, 30, 40], events=[20])
    (row,) = summary_table(load_runs(tmp_path))
    assert row["recovery"][0]["n_undefined"] == 1
    assert "| n/a |" in format_table([row])


def test_format_table_leaves_out_all_zero_columns(tmp_path: Path) -> None:
    """A metric that is 0 for every agent (no new items: cold-start shares) is not a column;
    one agent's non-zero value keeps it."""
    zero = {"cold_start_share": 0.0, "oracle_cold_start_share": 0.0, "churn": 0.0}
    write_run(tmp_path, "s", "a", 0, steps=[10, 20], values=zero)
    write_run(tmp_path, "s", "b", 0, steps=[10, 20], values={**zero, "churn": 0.25})
    rows = summary_table(load_runs(tmp_path))
    header = format_table(rows, part="behaviour").splitlines()[0]
    assert (
        header
        == "| scenario | agent | click rate | coverage | diversity | churn | tracking error |"
    )
    outcome = format_table(rows, part="outcome").splitlines()[0]
    assert "click rate" not in outcome and "reward/oracle" in outcome
    msg = "'part' must be 'all', 'outcome' or 'behaviour' (got 'x')"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        format_table(rows, part="x")
