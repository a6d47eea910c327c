"""Slow: the compressed attention policy keeps >= 98% of the full policy's reward; is it 2x faster?

Run on purpose: ``python3 dev.py test -m slow tests/experiments/test_compression_slow.py -s``
(about 9 minutes on 2 cores: three PPO runs of the demo setup, then int8 and a distilled
student compared with each). The tables are printed; BENCHMARKS.md ("Compressed policy")
records them. Asserted: the int8 policy's mean reward ratio >= 0.98 with every seed >= 0.97 and
greedy agreement >= 0.95; and, as an ``xfail`` since driftrec 0.4.0 made the full policy's own
forward fast (the token table, the cached item side), a mean forward speed-up >= 2 at batches of
32 and 256 (timed interleaved, so a busy machine slows both alike). The distilled student is
printed only.
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


@pytest.fixture(scope="module")
def int8(tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """AbruptShift, 1,000 items, 32 users, 1,536 steps, shift at 768, seeds 0-2: int8's means."""
    bench = _bench()
    out = tmp_path_factory.mktemp("compress")
    args = bench.build_parser().parse_args(["--out-dir", str(out)])
    return bench.run(args)["summary"]["int8"]


def test_int8_policy_keeps_98_percent_of_the_reward(int8: dict[str, float]) -> None:
    assert int8["reward_ratio"] >= 0.98
    assert int8["min_reward_ratio"] >= 0.97
    assert int8["greedy_agreement"] >= 0.95


@pytest.mark.xfail(
    reason="0.6.0, 2026-12-04: int8 1.63x at a batch of 32 and 1.17x at 256 (0.5.0's code on "
    "random weights: 1.71x / 1.19x); the full policy's forward is 1.3 / 3.3 ms since 0.4.0, "
    "against 4.6 / 20 ms when the 2x was measured",
    strict=False,
)
def test_int8_policy_is_twice_as_fast(int8: dict[str, float]) -> None:
    assert int8["speedup_32"] >= 2.0 and int8["speedup_256"] >= 2.0
