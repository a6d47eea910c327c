"""Slow: the attention policy personalises and adapts in context (issue targets, printed).

Run on purpose: ``python3 dev.py test -m slow tests/agents/test_personalization_slow.py -s``
(about 15 minutes on 2 cores: 12 PPO runs of 32 users x 1,536 steps). The full tables are
printed; BENCHMARKS.md ("Personalisation") records them. Only claims that held with a margin
on every measurement so far are asserted; the others are printed with their status.
"""

from __future__ import annotations

import importlib.util
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

_BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_personalization.py"


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_personalization", _BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mean(figures: dict[str, list[dict[str, float]]], agent: str, key: str) -> float:
    return statistics.fmean(run[key] for run in figures[agent])


def test_attention_policy_personalises_on_the_demo_setup(tmp_path: Path) -> None:
    """AbruptShift, 32 users, 1,536 steps, shift at 768, seeds 0-2."""
    bench = _bench()
    text, fig = bench.run(agents=(*bench.AGENTS, "oracle"), out_dir=str(tmp_path), seeds=(0, 1, 2))
    print("\n" + text)
    att, frozen = "attention-ppo", "attention-ppo-frozen"
    targets = {
        "pre-shift >= population-best": _mean(fig, att, "pre")
        >= _mean(fig, "population-best", "pre"),
        "end >= population-best": _mean(fig, att, "end") >= _mean(fig, "population-best", "end"),
        "whole >= linucb-discounted": _mean(fig, att, "whole")
        >= _mean(fig, "linucb-discounted", "whole"),
        "greedy gain >= history-similarity": _mean(fig, att, "gain")
        >= _mean(fig, "history-similarity", "gain"),
        "distinct >= oracle / 2": _mean(fig, att, "distinct")
        >= _mean(fig, "oracle", "distinct") / 2,
        "frozen recovers within 150 steps in 2 of 3 seeds": sum(
            run["recovery"] <= 150 for run in fig[frozen] if not math.isnan(run["recovery"])
        )
        >= 2,
    }
    for name, ok in targets.items():
        print(f"target {name}: {'met' if ok else 'NOT met'}")
    # asserted: it personalises (the one-item policy's gain is 0) more than LinUCB does, it
    # clearly beats content matching without learning, and it is not a one-item policy
    assert _mean(fig, att, "gain") > max(0.1, _mean(fig, "linucb-discounted", "gain")), text
    assert _mean(fig, att, "whole") > _mean(fig, "history-similarity", "whole") + 0.03, text
    assert targets["distinct >= oracle / 2"], text


def test_frozen_policy_keeps_its_level_when_users_jump(tmp_path: Path) -> None:
    """UserJumps (per-user Poisson jumps at 1/50 per step): frozen at 768, seeds 0-2."""
    bench = _bench()
    text, fig = bench.run(
        scenario="UserJumps",
        shift_at=None,
        frozen_at=768,
        out_dir=str(tmp_path),
        seeds=(0, 1, 2),
    )
    print("\n" + text)
    frozen = "attention-ppo-frozen"
    pre, end = _mean(fig, frozen, "pre"), _mean(fig, frozen, "end")
    print(f"frozen: last quarter before freezing {pre:.3f}, last quarter of the run {end:.3f}")
    assert end >= 0.95 * pre, text
