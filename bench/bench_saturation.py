"""What the smooth saturation of interest updates costs: Mixed with it and without, side by side.

Toggles the ``saturates`` flag of the incremental drift processes in one process and times the
batched core, interleaved, best of ``--repeats``::

    .venv/bin/python bench/bench_saturation.py [--users 4096] [--steps 200] [--repeats 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from driftrec.envs import drift
from driftrec.envs.core import BatchSimulator
from driftrec.envs.scenarios import get_scenario

_INCREMENTAL = (drift.GradualDrift, drift.ConsumptionDrift, drift.PopulationDrift)


def _rate(saturate: bool, users: int, steps: int) -> float:
    for cls in _INCREMENTAL:
        cls.saturates = saturate
    cfg = get_scenario("Mixed").config.with_overrides(oracle_info=False)
    sim = BatchSimulator(cfg, users)
    sim.seed(list(range(users)))
    actions = np.random.default_rng(0).integers(0, sim.num_items, (steps, users))
    t0 = time.perf_counter()
    for a in actions:
        sim.step(a)
    return steps * users / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    best = {True: 0.0, False: 0.0}
    try:
        for _ in range(args.repeats):
            for saturate in (True, False):
                best[saturate] = max(best[saturate], _rate(saturate, args.users, args.steps))
    finally:
        for cls in _INCREMENTAL:
            cls.saturates = True
    print(
        f"Mixed, {args.users} users, oracle off: {best[True]:,.0f} user-steps/s with saturation, "
        f"{best[False]:,.0f} without ({best[True] / best[False]:.2f}x)"
    )


if __name__ == "__main__":
    main()
