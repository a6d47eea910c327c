#!/usr/bin/env python
"""Validate the MovieLens-calibrated world against held-out ratings (figures in BENCHMARKS.md).

Needs MovieLens-100k (``pip install --no-deps recbole``, or ``DRIFTREC_MOVIELENS=<dir>`` with
GroupLens's u.data and u.item). Prints the fitted parameters, the divergences of simulated vs
held-out genre and item shares, and the policy orders of the simulator vs offline replay.
"""

import argparse
import json
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")


def main() -> None:
    from driftrec.envs.movielens import load_movielens
    from driftrec.experiments.calibration import validate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-fraction", type=float, default=0.8)
    parser.add_argument("--num-users", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None, help="a GroupLens ml-100k directory")
    args = parser.parse_args()
    result = validate(
        load_movielens(args.data),
        train_fraction=args.train_fraction,
        num_users=args.num_users,
        steps=args.steps,
        seed=args.seed,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
