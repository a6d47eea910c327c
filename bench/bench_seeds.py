#!/usr/bin/env python
"""How many seeds the demo's claims need: paired intervals at 3, 5 and 8 seeds.

Runs the demo's grid (``experiments/configs/demo.py``) on seeds 0-7 (or reads an experiment
directory that holds them), then, for the first 3, 5 and 8 seeds, prints the paired
comparisons behind the README's sentences (each agent minus another, same seed = same users,
world and catalog; paired-t interval floored at the within-seed noise, seeded bootstrap; a
verdict only where both exclude 0) next to the unpaired intervals of each agent's own mean,
as Markdown for BENCHMARKS.md::

    python bench/bench_seeds.py                        # run the grid (resumable), then compare
    python bench/bench_seeds.py --exp runs/demo-seeds8 # compare saved runs only
    python bench/bench_seeds.py --name demo-seeds8 --workers 2 --subsets 3 5 8

The demo grid of eight seeds is 64 runs; on a quiet 2-core machine it takes about as long as
2.7 demos (each PPO run is most of the cost).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("attention-ppo", "linucb-discounted", "user_return"),
    ("attention-ppo", "linucb-discounted", "normalized_reward"),
    ("attention-ppo", "linucb-discounted", "greedy_personal_gain"),
    ("attention-ppo", "population-best", "user_return"),
    ("attention-ppo", "population-best", "normalized_reward"),
    ("attention-ppo", "history-similarity", "user_return"),
    ("attention-ppo", "id-ppo", "user_return"),
    ("attention-ppo", "id-ppo", "greedy_personal_gain"),
    ("linucb-discounted", "history-similarity", "user_return"),
    ("population-best", "linucb-discounted", "user_return"),
)
"""(agent, reference, measure): the comparisons the README's demo sentences rest on."""


def _run_grid(name: str, out_dir: str, seeds: tuple[int, ...], workers: int) -> Path:
    from driftrec.agents.registry import SB3_AGENTS
    from driftrec.experiments.configs.demo import get_config
    from driftrec.experiments.runner import run_grid

    cfg = dataclasses.replace(get_config(out_dir=out_dir, workers=workers), name=name, seeds=seeds)
    fast = tuple(a for a in cfg.agents if a not in SB3_AGENTS)
    t0 = time.perf_counter()
    run_grid(dataclasses.replace(cfg, agents=fast), progress=False)  # bandits first: quick
    run_grid(cfg, progress=False)
    print(f"grid {cfg.experiment_dir}: {len(cfg.runs())} runs ready in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    return cfg.experiment_dir


def compare_subsets(exp: Path, subsets: list[int], reps: int = 10_000) -> str:
    """The Markdown table: one row per comparison and seed count."""
    from driftrec.experiments.analysis import load_runs, mean_ci
    from driftrec.experiments.comparison import MEASURES, paired_difference

    runs = load_runs(exp)
    all_seeds = sorted({r.seed for r in runs})
    lines = [
        "| agent minus reference | measure | seeds | difference [95% paired t] | bootstrap 95% "
        "| ahead | verdict | unpaired: agent / reference (mean ± 95%) |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for agent, ref, measure in COMPARISONS:
        m = MEASURES[measure]
        for n in subsets:
            seeds = set(all_seeds[:n])
            if len(seeds) < n:
                continue
            subset = [r for r in runs if r.seed in seeds]
            if not any(r.agent == agent for r in subset) or not any(r.agent == ref for r in subset):
                continue
            d = paired_difference(subset, agent, ref, measure, reps=reps)
            if d.n < n:  # some runs of this pair are missing: the row would not be n seeds
                continue
            own = [mean_ci([m.value(r) for r in subset if r.agent == a]) for a in (agent, ref)]
            unpaired = " / ".join(
                f"{s.mean:.{m.decimals}f} ± {s.half_width:.{m.decimals}f}" for s in own
            )
            lines.append(
                f"| {agent} − {ref} | {m.label} | {d.n} | {d.interval_text()} | "
                f"{d.bootstrap_text()} | {d.ahead}/{d.n} | {d.verdict} | {unpaired} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exp", type=Path, help="an experiment directory to read (no runs)")
    parser.add_argument("--name", default="demo-seeds8", help="experiment name for the grid")
    parser.add_argument("--out-dir", default="runs")
    parser.add_argument("--seeds", type=int, default=8, help="seeds 0..N-1 (default 8)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--subsets", type=int, nargs="+", default=[3, 5, 8])
    parser.add_argument("--reps", type=int, default=10_000, help="bootstrap replicates")
    args = parser.parse_args(argv)
    exp = args.exp
    if exp is None:
        exp = _run_grid(args.name, args.out_dir, tuple(range(args.seeds)), args.workers)
    print(compare_subsets(exp, args.subsets, args.reps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
