"""Validation of a calibrated world against held-out log data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from driftrec.envs.movielens import load_interaction_log
from driftrec.experiments.studies.calibration import (
    POLICIES,
    TOLERANCES,
    Tolerance,
    calibration_table,
    format_table,
    gini,
    hit_ratio,
    js_divergence,
    top_share,
    validate,
)


def test_js_divergence_hand_values() -> None:
    """JS is 0 for equal distributions, 1 bit for disjoint ones, and normalises its inputs."""
    assert js_divergence(np.array([1.0, 3.0]), np.array([2.0, 6.0])) == 0.0
    assert math.isclose(js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])), 1.0)
    # p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4); JS = 1/2 log2(4/3) + 1/4 log2(2/3) + 1/4 log2(2)
    expected = 0.5 * math.log2(4 / 3) + 0.25 * math.log2(2 / 3) + 0.25
    assert math.isclose(js_divergence(np.array([1.0, 0.0]), np.array([1.0, 1.0])), expected)


def test_validate_on_a_synthetic_log(
    tmp_path: Path, synthetic_log_files: tuple[Path, Path]
) -> None:
    """validate reports divergences in [0, 1], click rates and both policy orders; on a log
    where users stick to their genre, genre match beats random in the offline replay.

    (The synthetic log's population turns to Comedy late, so in the simulator, where users
    arrive at the end of the training span, random slates can beat genre match: the simulator
    ranks what the fitted trend says, which is the point of comparing the orders.)"""
    log = load_interaction_log(*synthetic_log_files)
    out = validate(log, num_users=16, steps=20, cache_dir=str(tmp_path / "cache"))
    for d in out["divergence_vs_heldout"].values():
        assert 0.0 <= d["genre_js"] <= 1.0 and 0.0 <= d["item_js"] <= 1.0
    assert sorted(out["order_sim"]) == sorted(out["order_replay"]) == sorted(POLICIES)
    assert out["replay_precision_at_10"]["genre-match"] > out["replay_precision_at_10"]["random"]
    assert all(0.0 <= r <= 1.0 for r in out["sim_click_rate"].values())
    assert out["same_order"] == (out["order_sim"] == out["order_replay"])
    assert out["test_interactions"] == 480


def test_gini_and_top_share_hand_values() -> None:
    """Equal counts: Gini 0 and the top 10% hold 10%; one item takes all: Gini (n-1)/n."""
    assert math.isclose(gini(np.ones(10)), 0.0, abs_tol=1e-12)
    assert math.isclose(top_share(np.ones(10)), 0.1)
    one = np.zeros(10)
    one[3] = 5.0
    assert math.isclose(gini(one), 0.9) and top_share(one) == 1.0


def test_hit_ratio_counts_top1_hits() -> None:
    """Two taste blocks and one item everyone has (hand-built): the rank-2 SVD recommends each
    user's missing block item (2 hits of 2); popularity recommends the most held unseen item,
    which is in user 0's test set only (1 of 2)."""
    train = np.zeros((4, 6), dtype=bool)
    train[:, 0] = True  # everyone has item 0
    train[[0, 1], 2] = train[1, 1] = True  # block A: items 1, 2 (user 0 lacks item 1)
    train[[2, 3], 4] = train[3, 3] = True  # block B: items 3, 4 (user 2 lacks item 3)
    test = np.zeros_like(train)
    test[0, [1, 4]] = True  # user 0: its block item and B's popular item 4 (count 2)
    test[2, 3] = True  # user 2: its block item; popularity offers item 2 (count 2): a miss
    ratio, svd, pop = hit_ratio(train, test, rank=2)
    assert (svd, pop, ratio) == (1.0, 0.5, 2.0)
    no_pop = test.copy()
    no_pop[0, 4] = False
    assert hit_ratio(train, no_pop, rank=2)[0] == math.inf


def test_tolerance_rules() -> None:
    """Each kind of tolerance passes and fails where its rule says."""
    assert Tolerance("abs", 0.3).holds(1.8, 2.05) and not Tolerance("abs", 0.3).holds(1.8, 2.2)
    assert Tolerance("ratio", 1.25).holds(0.1, 0.12) and not Tolerance("ratio", 1.25).holds(
        0.1, 0.079
    )
    assert Tolerance("below_reference").holds(0.0, 0.001, 0.002)
    assert not Tolerance("below_reference").holds(0.0, 0.002, 0.002)
    assert Tolerance("at_most", 0.75).holds(0.0, 0.75) and not Tolerance("at_most", 0.75).holds(
        0.0, 0.76
    )
    assert Tolerance("ratio", 1.25).describe() == "sim / real in [0.80, 1.25]"


def test_calibration_table_runs_on_a_synthetic_log(
    tmp_path: Path, synthetic_log_files: tuple[Path, Path]
) -> None:
    """The table has every statistic with a verdict that follows its tolerance, finite values,
    and a Markdown rendering with one line per statistic."""
    log = load_interaction_log(*synthetic_log_files)
    out = calibration_table(
        log, folds=2, split_seeds=1, period_sims=1, env_users=32, latent_topics=2, iters=30,
        drift_min_ratings=10, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    names = [r["statistic"] for r in out["rows"]]
    assert names == list(TOLERANCES)
    for r in out["rows"]:
        assert math.isfinite(r["sim"])
        real = 0.0 if r["real"] is None else r["real"]
        assert r["passed"] == TOLERANCES[r["statistic"]].holds(real, r["sim"], r["reference"])
    assert len(format_table(out).splitlines()) == 2 + len(TOLERANCES)
    assert 0.0 < out["details"]["env"]["random"] < out["details"]["env"]["oracle"] <= 1.0
