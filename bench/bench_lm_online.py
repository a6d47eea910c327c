#!/usr/bin/env python
"""Does the language model learning from the run's own clicks pay online? (JargonNews)

Runs :func:`driftrec.experiments.studies.lm_online.run_study`: every seed runs each agent with
the frozen MiniLM and with in-run fine-tuning (``--finetune-every``), on the same users; prints
the paired second-half gain with its 95% interval, the retention check and the refresh costs
(the table of BENCHMARKS.md), optionally the frozen encoder's next-click AUC next to the true
topic vectors and the runs' adapters, and writes the figure. Finished runs are reused (the
grids resume like any ``driftrec run``)::

    python bench/bench_lm_online.py --seeds 1 2 3 4 5 --figure docs/lm_online.png --auc
    python bench/bench_lm_online.py --name lm-r4 --finetune '{"rank": 4, "window": 256}'
    python bench/bench_lm_online.py --agents attention-ppo --topics-bound   # is text the limit?

``--topics-bound`` runs no fine-tuning: each agent frozen, and again with the catalog's true
topic vectors as its item table (PRIVILEGED: what perfect text would give), paired per seed.

One torch thread per run (the default) is the fast setting on small shared CPUs.
"""

import argparse
import json
import os
import time

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> None:
    from driftrec.experiments.plots import save_figure
    from driftrec.experiments.studies.lm_online import (
        StudySetting,
        format_gains,
        gain_rows,
        next_click_auc,
        plot_online,
        run_study,
        run_topics_bound,
    )

    default = StudySetting()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=default.name)
    parser.add_argument("--out-dir", default=default.out_dir)
    parser.add_argument("--agents", nargs="+", default=list(default.agents))
    parser.add_argument(
        "--frozen-only", nargs="*", default=[], help="references run frozen only (random, id-ppo)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=list(default.seeds))
    parser.add_argument("--steps", type=int, default=default.steps)
    parser.add_argument("--num-envs", type=int, default=default.num_envs)
    parser.add_argument("--every", type=int, default=default.every, help="finetune_every")
    parser.add_argument(
        "--finetune", type=json.loads, default=dict(default.finetune), help="settings as JSON"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--auc", action="store_true", help="also the next-click AUC table")
    parser.add_argument("--figure", default=None, help="write the figure here (e.g. a .png)")
    parser.add_argument(
        "--topics-bound",
        action="store_true",
        help="instead of fine-tuning: each agent frozen vs with the true topic vectors as its "
        "item table (PRIVILEGED), paired per seed",
    )
    args = parser.parse_args(argv)

    setting = StudySetting(
        name=args.name,
        agents=tuple(args.agents),
        frozen_only=tuple(args.frozen_only),
        seeds=tuple(args.seeds),
        steps=args.steps,
        num_envs=args.num_envs,
        every=args.every,
        finetune=args.finetune,
        out_dir=args.out_dir,
        workers=args.workers,
    )
    t0 = time.perf_counter()
    if args.topics_bound:
        frozen, topics = run_topics_bound(setting)
        print(f"\n{setting.scenario}, {len(setting.seeds)} seeds, {setting.steps} steps x "
              f"{setting.num_envs} users ({time.perf_counter() - t0:.0f} s wall, finished runs "
              f"reused); online normalised reward over steps > {setting.half}:\n")  # fmt: skip
        print("| agent | seeds | frozen MiniLM | true topic vectors (PRIVILEGED) | "
              "difference [95% paired t] | per seed |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---|")
        for row in gain_rows(frozen, topics, setting.agents, setting.half):
            stat = row.gain
            print(f"| {row.agent} | {len(row.pairs)} | {row.frozen_mean:.3f} | "
                  f"{row.tuned_mean:.3f} | {stat.mean:+.3f} [{stat.lo:+.3f}, {stat.hi:+.3f}] | "
                  + ", ".join(f"{t - f:+.3f}" for f, t in row.pairs.values()) + " |")  # fmt: skip
        return
    frozen, tuned = run_study(setting)
    print(f"\n{setting.scenario}, {len(setting.seeds)} seeds, {setting.steps} steps x "
          f"{setting.num_envs} users, refresh every {setting.every}, {setting.finetune} "
          f"({time.perf_counter() - t0:.0f} s wall, finished runs reused)\n")  # fmt: skip
    rows = gain_rows(frozen, tuned, setting.agents, setting.half)
    print(format_gains(rows, start=setting.half))
    from driftrec.experiments.studies.lm_online import half_mean

    for agent in setting.frozen_only:
        values = [half_mean(r, setting.half) for r in frozen if r.agent == agent]
        if values:
            print(f"{agent} (frozen only): {sum(values) / len(values):.3f} over steps > "
                  f"{setting.half}, per seed {', '.join(f'{v:.3f}' for v in values)}")  # fmt: skip
    if args.auc:
        adapters = {
            r.seed: r.path / "text_adapter"
            for r in tuned
            if r.agent == setting.agents[0] and (r.path / "text_adapter").is_dir()
        }
        tables = {"frozen MiniLM": "frozen", "true topics": "topics"}
        if adapters:
            tables[f"adapter of the {setting.agents[0]} run"] = adapters
        auc = next_click_auc(setting.scenario, sorted(adapters) or setting.seeds, tables)
        print("\nhistory-similarity next-click AUC (random agent's log, 256 steps x 32 users):")
        for label, values in auc.items():
            print(f"  {label:40s} {sum(values) / len(values):.3f}  per seed "
                  + ", ".join(f"{v:.3f}" for v in values))  # fmt: skip
    if args.figure:
        fig = plot_online(frozen, tuned, setting.agents, start=setting.half)
        save_figure(fig, args.figure)
        print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
