"""Validation of a calibrated world against held-out log data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from driftrec.envs.movielens import load_interaction_log
from driftrec.experiments.calibration import POLICIES, js_divergence, validate


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
