#!/usr/bin/env python
"""Cold start: the LM item tower vs the id-only ablation on items released after training.

Runs the grid of :mod:`driftrec.experiments.cold_start` (``NewItems`` with a share of the
catalog released over the whole run; the learning agents also frozen at ``--frozen-at``),
prints the per-phase table (markdown, as in BENCHMARKS.md) and writes the figure::

    python bench/bench_cold_start.py --out runs --figure docs/cold_start.png

Finished runs are reused (the runner resumes), so a second call only redraws.
"""

import argparse
import os
import time

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")


def main() -> None:
    from driftrec.envs.catalog import build_catalog
    from driftrec.experiments.cold_start import (
        COLD_START_AGENTS,
        ColdStartSetting,
        cold_start_config,
        format_summary,
        freeze_losses,
        load_cold_start_runs,
        phase_summary,
        plot_cold_start,
    )
    from driftrec.experiments.plots import save_figure
    from driftrec.experiments.runner import run_grid

    default = ColdStartSetting()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=default.steps)
    parser.add_argument("--num-envs", type=int, default=default.num_envs)
    parser.add_argument("--new-item-fraction", type=float, default=default.new_item_fraction)
    parser.add_argument("--frozen-at", type=int, default=default.frozen_at)
    parser.add_argument("--cold-start-window", type=int, default=default.cold_start_window)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--agents", nargs="+", default=list(COLD_START_AGENTS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="runs")
    parser.add_argument("--name", default="cold_start")
    parser.add_argument("--figure", default=None, help="write the figure here (e.g. a .png)")
    args = parser.parse_args()
    setting = ColdStartSetting(
        steps=args.steps,
        num_envs=args.num_envs,
        new_item_fraction=args.new_item_fraction,
        frozen_at=args.frozen_at,
        cold_start_window=args.cold_start_window,
    )
    cfg = cold_start_config(
        setting,
        agents=args.agents,
        seeds=args.seeds,
        out_dir=args.out,
        name=args.name,
        workers=args.workers,
    )
    start = time.perf_counter()
    run_grid(cfg, progress=False)
    wall = time.perf_counter() - start
    runs = load_cold_start_runs(cfg)
    print(
        f"NewItems, {setting.num_envs} users x {setting.steps} global steps, "
        f"{setting.new_item_fraction:.0%} of the catalog released over the run, frozen at "
        f"{setting.frozen_at}, new = released within {setting.cold_start_window} steps, "
        f"seeds {list(args.seeds)}, wall {wall:.0f} s (workers={args.workers})\n"
    )
    summary = phase_summary(runs, setting.frozen_at)
    print(format_summary(summary))
    for agent, losses in freeze_losses(summary).items():
        per = " / ".join(f"{v:+.3f}" for v in losses)
        print(f"\n{agent}: reward after frozen_at, learning minus frozen: {per}")
    if args.figure:
        release = build_catalog(cfg.env_config("NewItems")).release_step
        fig = plot_cold_start(runs, release, setting.frozen_at)
        print(f"\nfigure: {save_figure(fig, args.figure)}")


if __name__ == "__main__":
    main()
