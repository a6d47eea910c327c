"""Is the compressed attention policy >= 2x faster at >= 98% of the full policy's reward?

    python bench/bench_compress.py                          # the demo setup, seeds 0-2
    python bench/bench_compress.py --methods int8,fold,distil --seeds 0,1,2
    python bench/bench_compress.py --steps 384 --num-envs 16   # a shortened version
    python bench/bench_compress.py --scope all              # int8 on every Linear, not the head

Trains ``attention-ppo`` on the demo's world (AbruptShift, 1,000 items, 32 users, 1,536 global
steps, shift at 768; through the experiment runner, so finished runs are reused), then for each
seed loads the checkpoint, compresses its recommender (:mod:`driftrec.agents.compress`) and
measures both in one process (:func:`driftrec.experiments.compression.compare_run`):

* ``norm``: normalised reward (expected reward / one-step oracle's) of the frozen policy acting
  on new users of the run's world for the run's length (shift included), sampling from its
  policy; ``greedy``: the same with greedy actions. Full and compressed see the same users and
  the same sampling noise. ``ratio``: compressed / full. ``resamp``: the full policy with other
  sampling noise / full, the noise of the sampled ratio (one different draw changes that user's
  history, so later draws are no longer paired); the greedy ratio has no sampling noise.
* ``agree``: fraction of the observations the full policy met where the greedy item is the same.
* ``fwd32`` / ``fwd256``: median milliseconds of one forward (observations -> scores of every
  item) on a batch of 32 / 256 of those observations, timed interleaved with the full policy;
  ``x32`` / ``x256``: speed-up over the full policy.

The last lines give the means over seeds and whether the target holds for each method. Timings
are ratios on a shared machine: read them side by side, not as absolute figures.

``--latency-items 10000,100000`` also times the forward alone (no training, no reward) for
larger catalogs: a recommender with the registry's defaults over random unit-norm 384-dim item
embeddings, its ``fold`` and ``int8`` compressions, on random observations.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from driftrec.agents.compress import COMPRESS_METHODS, INT8_SCOPES
from driftrec.agents.sb3_policy import configure_torch
from driftrec.experiments.compression import compare_run
from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.runner import run_grid

COLUMNS = (
    ("norm", "normalized_reward"),
    ("greedy", "greedy_normalized_reward"),
    ("ratio", "reward_ratio"),
    ("resamp", "resampled_ratio"),
    ("g.ratio", "greedy_reward_ratio"),
    ("agree", "greedy_agreement"),
    ("fwd32", "forward_ms_32"),
    ("fwd256", "forward_ms_256"),
    ("x32", "speedup_32"),
    ("x256", "speedup_256"),
)


def _csv(kind: type) -> Any:
    return lambda text: tuple(kind(x) for x in text.split(",") if x.strip())


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train (or reuse) the runs and compare every method on each; returns the results."""
    configure_torch(1)
    cfg = ExperimentConfig(
        name=args.name,
        scenarios=("AbruptShift",),
        agents=("attention-ppo",),
        seeds=args.seeds,
        num_envs=args.num_envs,
        steps=args.steps,
        log_every=32,
        shift_at=args.steps // 2,
        out_dir=args.out_dir,
        workers=1,
    )
    run_dirs = [d for d in run_grid(cfg, progress=False) if "__attention-ppo__" in Path(d).name]
    rows = []
    for run_dir in run_dirs:
        result = compare_run(run_dir, methods=args.methods, scope=args.scope)
        rows.append(result)
        _print_seed(Path(run_dir).name, result, args.methods)
    summary = _summary(rows, args.methods)
    return {"runs": rows, "summary": summary}


def _print_seed(name: str, result: dict[str, Any], methods: tuple[str, ...]) -> None:
    print(f"\n{name}")
    print(f"  {'policy':8s} " + " ".join(f"{c:>8s}" for c, _ in COLUMNS))
    for policy in ("full", *methods):
        r = result[policy]
        cells = [f"{r[k]:8.4g}" if k in r else f"{'':8s}" for _, k in COLUMNS]
        print(f"  {policy:8s} " + " ".join(cells))
    for m in methods:
        extra = {k: v for k, v in result[m].items() if k.startswith("distil")}
        if extra:
            print(f"  {m}: {extra}")
    sys.stdout.flush()


def _summary(rows: list[dict[str, Any]], methods: tuple[str, ...]) -> dict[str, Any]:
    print(f"\nmeans over {len(rows)} seeds")
    resampled = [r["full"]["resampled_ratio"] for r in rows]
    print(f"  full     resampled ratio (noise of the sampled ratios): {np.mean(resampled):.4f}")
    out: dict[str, Any] = {"full": {"resampled_ratio": float(np.mean(resampled))}}
    for m in methods:
        mean = {k: float(np.mean([r[m][k] for r in rows])) for _, k in COLUMNS if k in rows[0][m]}
        low = min(r[m]["reward_ratio"] for r in rows)
        ok = mean["speedup_32"] >= 2 and mean["speedup_256"] >= 2 and mean["reward_ratio"] >= 0.98
        out[m] = {**mean, "min_reward_ratio": low, "target_met": bool(ok)}
        print(
            f"  {m:8s} speed-up x{mean['speedup_32']:.2f} (batch 32), x{mean['speedup_256']:.2f} "
            f"(batch 256); reward ratio {mean['reward_ratio']:.4f} (lowest seed {low:.4f}), "
            f"greedy {mean['greedy_reward_ratio']:.4f}; greedy agreement "
            f"{mean['greedy_agreement']:.4f}; target (>= 2x at >= 98%): "
            f"{'met' if ok else 'NOT met'}"
        )
    return out


def latency_scaling(items: tuple[int, ...], batch_sizes: tuple[int, ...] = (32, 256)) -> None:
    """Print the forward speed-ups of ``fold`` and ``int8`` for random models of ``items`` items."""
    import torch

    from driftrec.agents.attention import AttentionConfig, AttentionRecommender
    from driftrec.agents.compress import fold_recommender, quantize_int8
    from driftrec.agents.registry import ATTENTION_DEFAULTS
    from driftrec.experiments.compression import time_forward

    rng = np.random.default_rng(0)
    h = 20
    print("\nforward latency alone (random weights; ms per batch, speed-up over full)")
    for n in items:
        table = rng.normal(size=(n, 384)).astype(np.float32)
        table /= np.linalg.norm(table, axis=1, keepdims=True)
        torch.manual_seed(0)
        full = AttentionRecommender(AttentionConfig(**ATTENTION_DEFAULTS, history_len=h), table)
        folded = fold_recommender(full.eval())
        modules = {"full": full, "fold": folded, "int8": quantize_int8(folded)}
        for b in batch_sizes:
            obs = np.zeros((b, 3 * h + 2), dtype=np.float32)
            obs[:, :h] = rng.integers(0, n, (b, h))
            obs[:, h : 2 * h] = rng.random((b, h)) < 0.3
            obs[:, 2 * h : 3 * h] = 1.0
            t = time_forward(modules, torch.as_tensor(obs), rounds=9, calls=5)
            cells = ", ".join(f"{k} {v * 1e3:.3g} ms (x{t['full'] / v:.2f})" for k, v in t.items())
            print(f"  {n:>7,} items, batch {b:>3}: {cells}")
            sys.stdout.flush()


def build_parser() -> argparse.ArgumentParser:
    """The command line of this benchmark."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=_csv(int), default=(0, 1, 2), help="default: 0,1,2")
    p.add_argument(
        "--methods", type=_csv(str), default=("int8", "distil"), help="default: int8,distil"
    )
    p.add_argument("--scope", choices=INT8_SCOPES, default="head", help="int8 scope")
    p.add_argument("--steps", type=int, default=1536, help="global steps (default: 1536)")
    p.add_argument("--num-envs", type=int, default=32, help="users (default: 32)")
    p.add_argument("--name", default="compress", help="experiment name (default: compress)")
    p.add_argument("--out-dir", default="runs", help="results root (default: runs)")
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    p.add_argument(
        "--latency-items", type=_csv(int), default=(), help="also time random models this big"
    )
    p.add_argument("--latency-only", action="store_true", help="only the --latency-items part")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    bad = [m for m in args.methods if m not in COMPRESS_METHODS]
    if bad:
        print(f"--methods: expected names from {list(COMPRESS_METHODS)} (got {bad})")
        return 2
    if args.latency_items:
        latency_scaling(args.latency_items)
    if args.latency_only:
        return 0
    results = run(args)
    if args.json is not None:
        from driftrec.experiments.io import atomic_write_json

        atomic_write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
