"""What a run of each agent costs, relative to the random recommender's: the grid's ETA weights.

    python bench/bench_run_costs.py                  # the demo's setup, 384 global steps, seed 0
    python bench/bench_run_costs.py --steps 1536 --agents random,attention-ppo
    python bench/bench_run_costs.py --eta            # does the grid's ETA hold? (2 workers)

Runs every agent once, one after the other in this process (through the experiment runner, one
torch and one BLAS thread, as a grid's worker does), on the demo's world (AbruptShift, 1,000
generated items, 32 users), after encoding the item texts once. Prints each run's wall time
(``done.json``), its CPU time, and both as a ratio to the random run's, next to the weight
:data:`driftrec.experiments.progress.RELATIVE_COST` uses. The ratio is what matters for the ETA;
absolute seconds depend on the machine and its load (``uptime`` is printed with them).

``--eta`` instead runs a grid (the agents x seeds 0-2 on one world, two workers, the progress
lines captured) and prints, at each progress line, the total time the cost-weighted ETA
predicted (elapsed + ETA) and what counting finished runs would have predicted, next to the
grid's actual wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import resource
import tempfile
import time
from pathlib import Path

from driftrec.agents.registry import AGENT_NAMES
from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.progress import RELATIVE_COST
from driftrec.experiments.runner import run_grid, run_one, warm_text_cache


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
    parser.add_argument("--eta", action="store_true", help="check the grid's ETA instead")
    args = parser.parse_args(argv)
    if args.eta:
        return eta_check(args.steps)
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


def _seconds(text: str) -> float:
    parts = [int(p) for p in text.split(":")]
    return float(sum(p * 60**i for i, p in enumerate(reversed(parts))))


def eta_check(steps: int) -> int:
    """Run a 2-worker grid and compare its ETAs with its actual wall time."""
    agents = ("random", "popularity", "linucb-discounted", "id-ppo", "attention-ppo")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ExperimentConfig(
            name="eta",
            scenarios=("AbruptShift",),
            agents=agents,
            seeds=(0, 1, 2),
            num_envs=32,
            steps=steps,
            log_every=32,
            shift_at=steps // 2,
            out_dir=tmp,
            workers=2,
            vary_world=False,  # one catalog: its texts are encoded once
            checkpoint=False,
        )
        warm_text_cache(cfg)
        err = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stderr(err):
            run_grid(cfg, progress=True)
        total = time.perf_counter() - t0
    runs = len(cfg.runs())
    print(f"{runs} runs ({', '.join(cfg.all_agents)} x 3 seeds), {steps} global steps, 2 workers")
    print(f"actual wall time {total:.0f} s; load average {os.getloadavg()[0]:.2f} after")
    print(f"{'elapsed':>8s} {'work done':>9s} {'runs done':>9s} {'ETA total':>9s} {'by runs':>8s}")
    pattern = re.compile(r"(\d+)/(\d+) runs, (\d+)% of the work, ([\d:]+) elapsed, ETA ([\d:]+)")
    for line in err.getvalue().splitlines():
        m = pattern.search(line)
        if not m:
            continue
        done, n, pct, elapsed, eta = m.groups()
        el = _seconds(elapsed)
        by_runs = el * int(n) / int(done) if int(done) else float("nan")
        print(f"{el:8.0f} {pct:>8s}% {done:>5s}/{n:<3s} {el + _seconds(eta):9.0f} {by_runs:8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
