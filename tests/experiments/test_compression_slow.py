"""Slow: the compressed attention policy is >= 2x faster at >= 98% of the full policy's reward.

Run on purpose: ``python3 dev.py test -m slow tests/experiments/test_compression_slow.py -s``
(about 7 minutes on 2 cores: three PPO runs of the demo setup, then int8 and a distilled
student compared with each). The tables are printed; BENCHMARKS.md ("Compressed policy")
records them. Asserted: the int8 policy's mean reward ratio >= 0.98 with every seed >= 0.97,
greedy agreement >= 0.95, and a mean forward speed-up >= 2 at batches of 32 and 256 (timed
interleaved, so a busy machine slows both alike). The distilled student is printed only.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

_BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_compress.py"


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_compress", _BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_int8_policy_is_twice_as_fast_at_98_percent_reward(tmp_path: Path) -> None:
    """AbruptShift, 1,000 items, 32 users, 1,536 steps, shift at 768, seeds 0-2."""
    bench = _bench()
    args = bench.build_parser().parse_args(["--out-dir", str(tmp_path)])
    results = bench.run(args)
    int8 = results["summary"]["int8"]
    assert int8["reward_ratio"] >= 0.98
    assert int8["min_reward_ratio"] >= 0.97
    assert int8["greedy_agreement"] >= 0.95
    assert int8["speedup_32"] >= 2.0 and int8["speedup_256"] >= 2.0
