#!/usr/bin/env python
"""What the optional world rules cost the batched core: ``no_repeat`` and staleness.

Steps ``DriftRecVectorEnv`` (Stationary, ``--items`` items, ``--users`` user slots, the oracle
on, as by default) with pre-drawn random actions, the rules off / ``no_repeat`` / staleness /
both, the variants interleaved round-robin over ``--repeats`` so the load of a shared host hits
them alike; prints env-steps per CPU-second (median and every repeat)::

    python bench/bench_world_rules.py --repeats 3
"""

import argparse
import os
import time

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

STALE = {"choice.staleness_weight": 3.0, "choice.staleness_halflife": 100.0}
VARIANTS = {
    "off (default)": {},
    "no_repeat": {"choice.no_repeat": True},
    "staleness": STALE,
    "both": {"choice.no_repeat": True, **STALE},
}


def main(argv: list[str] | None = None) -> None:
    from driftrec.envs import DriftRecVectorEnv

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=1000)
    p.add_argument("--users", type=int, default=64)
    p.add_argument("--steps", type=int, default=400, help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    rates: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for rep in range(args.repeats):
        actions = np.random.default_rng(rep).integers(0, args.items, (args.steps, args.users))
        for name, overrides in VARIANTS.items():
            env = DriftRecVectorEnv(
                args.users, scenario="Stationary", num_items=args.items, **overrides
            )
            env.reset(seed=0)
            t0 = time.process_time()
            for a in actions:
                env.step(a)
            rates[name].append(args.users * args.steps / (time.process_time() - t0))
    print(f"N = {args.items}, B = {args.users}, {args.steps} steps x {args.repeats} repeats")
    for name, r in rates.items():
        print(f"{name:14s} env-steps per CPU-second: median {np.median(r):>9,.0f}  "
              f"({', '.join(f'{x:,.0f}' for x in r)})")  # fmt: skip


if __name__ == "__main__":
    main()
