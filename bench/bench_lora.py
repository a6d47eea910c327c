#!/usr/bin/env python
"""Adapting the text encoder from clicks: gain where wording misleads vs what the model forgets.

Runs :func:`driftrec.experiments.lora_study.run_sweep` (the decoy catalog, the adapter trained
on click logs of training seeds, ``history-similarity`` evaluated on other seeds; LoRA ranks x
learning rates and full fine-tuning as the contrast), prints the markdown table of BENCHMARKS.md
and writes the trade-off figure::

    python bench/bench_lora.py --figure docs/lora_tradeoff.png --json lora.json
    python bench/bench_lora.py --plot-only --merge lora.json --figure docs/lora_tradeoff.png
    python bench/bench_lora.py --ranks 8 --lora-lrs 1e-3 --full-lrs --retain-weights 1 10

One torch thread (the default here) is the fast setting on small shared CPUs.
"""

import argparse
import dataclasses
import json
import os
import tempfile
import time

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> None:
    import torch

    from driftrec.agents.lora import FinetuneSettings, LoraSettings
    from driftrec.atomic import atomic_open
    from driftrec.experiments.lora_study import (
        LoraStudySetting,
        SweepRow,
        format_sweep,
        plot_tradeoff,
        run_sweep,
    )
    from driftrec.experiments.plots import save_figure

    default = LoraStudySetting()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--lora-lrs", type=float, nargs="+", default=[1e-3, 3e-3])
    parser.add_argument("--full-lrs", type=float, nargs="*", default=[1e-5, 3e-5])
    parser.add_argument(
        "--retain-weights",
        type=float,
        nargs="*",
        default=[0.0],
        help="train every LoRA setting with each of these retention-term weights (default 0)",
    )
    parser.add_argument("--steps", type=int, default=80, help="optimizer steps per encoder")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--train-seeds", type=int, nargs="+", default=list(default.train_seeds))
    parser.add_argument("--eval-seeds", type=int, nargs="+", default=list(default.eval_seeds))
    parser.add_argument("--num-items", type=int, default=default.num_items)
    parser.add_argument("--max-length", type=int, default=default.max_length)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--figure", default=None, help="write the figure here (e.g. a .png)")
    parser.add_argument("--json", default=None, help="write every figure as JSON here")
    parser.add_argument(
        "--merge",
        nargs="*",
        default=[],
        help="JSON files of earlier calls (same setting): their rows join the table and figure",
    )
    parser.add_argument(
        "--plot-only",
        action="store_true",
        help="train nothing: the table and figure of the --merge files' rows only",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.torch_threads)
    setting = dataclasses.replace(
        default,
        train_seeds=tuple(args.train_seeds),
        eval_seeds=tuple(args.eval_seeds),
        num_items=args.num_items,
        max_length=args.max_length,
    )
    common = {"steps": args.steps, "batch_size": args.batch_size}
    grid = [
        FinetuneSettings(
            lora=LoraSettings(rank=r, alpha=2.0 * r), learning_rate=lr, retain_weight=w, **common
        )
        for w in args.retain_weights
        for lr in args.lora_lrs
        for r in args.ranks
    ]
    grid += [FinetuneSettings(method="full", learning_rate=lr, **common) for lr in args.full_lrs]
    print(
        f"decoy catalog of {setting.num_items} items, {setting.num_topics} topics; train seeds "
        f"{list(setting.train_seeds)}, evaluation seeds {list(setting.eval_seeds)}; "
        f"{len(grid)} encoders x {args.steps} steps; torch threads {args.torch_threads}",
        flush=True,
    )
    t0 = time.perf_counter()
    if args.plot_only:
        if not args.merge:
            raise SystemExit("--plot-only needs --merge FILE ... (the rows to show)")
        base, rows = None, []
    else:
        with tempfile.TemporaryDirectory() as work:
            base, rows = run_sweep(setting, grid, work)
    for path in args.merge:
        with open(path) as f:
            earlier = json.load(f)
        if earlier["setting"] != json.loads(json.dumps(dataclasses.asdict(setting))):
            raise SystemExit(f"--merge {path}: made with another setting ({earlier['setting']})")
        base = base if base is not None else earlier["frozen"]
        rows += [SweepRow(**row) for row in earlier["rows"]]
    print()
    print(format_sweep(base, rows))
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")
    if args.figure:
        save_figure(plot_tradeoff(rows), args.figure)
        print(f"figure: {args.figure}")
    if args.json:
        out = {
            "setting": dataclasses.asdict(setting),
            "frozen": base,
            "rows": [dataclasses.asdict(r) for r in rows],
        }
        with atomic_open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
