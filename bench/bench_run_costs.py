"""What a run of each agent costs, relative to the random recommender's: the grid's ETA weights.

    python bench/bench_run_costs.py                  # the demo's setup, 384 global steps, seed 0
    python bench/bench_run_costs.py --steps 1536 --agents random,attention-ppo

Runs every agent once, one after the other in this process (through the experiment runner, one
torch and one BLAS thread, as a grid's worker does), on the demo's world (AbruptShift, 1,000
generated items, 32 users), after encoding the item texts once. Prints each run's wall time
(``done.json``), its CPU time, and both as a ratio to the random run's, next to the weight
:data:`driftrec.experiments.progress.RELATIVE_COST` uses. The ratio is what matters for the ETA;
absolute seconds depend on the machine and its load (``uptime`` is printed with them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
from pathlib import Path

from driftrec.agents.registry import AGENT_NAMES
from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.progress import RELATIVE_COST
from driftrec.experiments.runner import run_one, warm_text_cache


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=384, help="global steps per run")
    parser.add_argument(
        "--agents",
        default=",".join(a for a in AGENT_NAMES if a not in ("attention-dqn",)),
        help="comma-separated agents (random is always run first)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    agents = ["random"] + [a for a in args.agents.split(",") if a and a != "random"]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ExperimentConfig(
            name="costs",
            scenarios=("AbruptShift",),
            agents=tuple(agents),
            seeds=(args.seed,),
            num_envs=32,
            steps=args.steps,
            log_every=32,
            shift_at=args.steps // 2,
            out_dir=tmp,
            reference_agent=None,
            checkpoint=False,
        )
        warm_text_cache(cfg)
        rows = []
        for agent in agents:
            cpu0 = _cpu_s()
            run_dir = run_one(cfg, "AbruptShift", agent, args.seed, progress=False)
            cpu = _cpu_s() - cpu0
            wall = float(json.loads((Path(run_dir) / "done.json").read_text())["wall_time_s"])
            rows.append((agent, wall, cpu))
    load = os.getloadavg()
    base_wall, base_cpu = rows[0][1], rows[0][2]
    print(f"{args.steps} global steps x 32 users, AbruptShift, 1,000 items, seed {args.seed}")
    print(f"load average after the runs: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'agent':24s} {'wall s':>8s} {'CPU s':>8s} {'wall x':>7s} {'CPU x':>7s} {'weight':>7s}")
    for agent, wall, cpu in rows:
        weight = RELATIVE_COST.get(agent, float("nan"))
        print(
            f"{agent:24s} {wall:8.2f} {cpu:8.2f} {wall / base_wall:7.2f} "
            f"{cpu / base_cpu:7.2f} {weight:7.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
