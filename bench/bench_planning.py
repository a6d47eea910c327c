"""What looking ahead is worth on the long-term scenarios: the paired per-user-return table.

Every policy serves the same users (one complete stay each) on every seed; each seed is its own
world and catalog. Prints the table of BENCHMARKS.md ("Planning that needs a plan")::

    .venv/bin/python bench/bench_planning.py [--seeds 0,1,2,3,4] [--users 32] [--samples 4]
        [--horizon N] [--scenarios LongTerm,LongTermBoredom,LongTermAversion]
        [--learners linucb-discounted,history-similarity]
"""

from __future__ import annotations

import argparse
import os
import time

from driftrec.experiments.planning import (
    LONG_TERM_SCENARIOS,
    format_planning_table,
    planning_table,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(LONG_TERM_SCENARIOS))
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--horizon", type=int, default=None, help="default: to the session end")
    parser.add_argument("--learners", default="linucb-discounted,history-similarity")
    args = parser.parse_args()
    start = time.time()
    results = planning_table(
        [s for s in args.scenarios.split(",") if s],
        [int(s) for s in args.seeds.split(",")],
        num_users=args.users,
        planner_kwargs={"samples": args.samples, "horizon": args.horizon},  # None: to the end
        learners=[a for a in args.learners.split(",") if a],
        progress=lambda line: print(line, flush=True),
    )
    print()
    print(format_planning_table(results))
    print(f"wall {time.time() - start:.0f} s, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
