"""Does a change of PPO settings cost learning quality? Paired by seed on the demo's setup.

    python bench/bench_ppo_settings.py --seeds 0,1,2,3,4,5,6,7,8,9 \\
        --variants '{"0.5.0": {"batch_size": 512, "n_epochs": 4, "learning_rate": 0.003,
                               "policy_kwargs": {"optimizer_kwargs": {}}},
                     "registry": {}}'

Runs one agent (``--agent``, default ``attention-ppo``) on AbruptShift (32 users, 1,536 steps,
shift at 768: the demo's world) once per variant and seed, each variant an ``agent_kwargs``
override of the registry's defaults (``{}`` = the registry as it is), through the experiment
runner (finished runs are reused), and prints for each phase figure of
``bench/bench_personalization.py`` (``whole``, ``pre``, ``end``, ``gain``, ``greedy_pre``,
``greedy_end``) the per-seed values and every variant's paired difference from the first with
its 95% t interval over the seeds, then the recovery times.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench_personalization import phase_metrics

from driftrec.experiments.analysis import mean_ci
from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.runner import run_grid

FIGURES = ("whole", "pre", "end", "gain", "greedy_pre", "greedy_end")
SHIFT_AT, STEPS = 768, 1536


def run(
    variants: dict[str, dict],
    seeds: tuple[int, ...],
    agent: str = "attention-ppo",
    out_dir: str = "runs",
    workers: int = 2,
) -> dict[str, list[dict[str, float]]]:
    """Run (or reuse) every variant's grid; the per-seed phase figures of each variant."""
    figures = {}
    for name, kwargs in variants.items():
        if not isinstance(kwargs, dict):
            raise ValueError(
                f"'--variants' value of {name!r} must be a JSON object (got {kwargs!r})"
            )
        cfg = ExperimentConfig(
            name=f"ppo-settings-{agent}-{name}",
            scenarios=("AbruptShift",),
            agents=(agent,),
            seeds=seeds,
            num_envs=32,
            steps=STEPS,
            log_every=32,
            shift_at=SHIFT_AT,
            agent_kwargs={agent: kwargs} if kwargs else {},
            out_dir=out_dir,
            workers=workers,
            checkpoint=False,
        )
        run_grid(cfg, progress=False)
        exp = Path(out_dir) / cfg.name
        figures[name] = [
            phase_metrics(exp / f"AbruptShift__{agent}__{seed}", SHIFT_AT, STEPS) for seed in seeds
        ]
    return figures


def report(figures: dict[str, list[dict[str, float]]]) -> str:
    """Per-seed values and the paired differences from the first variant."""
    names = list(figures)
    base = names[0]
    lines = []
    for key in FIGURES:
        lines.append(f"\n{key}:")
        for name in names:
            lines.append(f"  {name}: " + " ".join(f"{p[key]:.3f}" for p in figures[name]))
        for name in names[1:]:
            diff = [a[key] - b[key] for a, b in zip(figures[name], figures[base], strict=True)]
            st = mean_ci(diff)
            lo, hi = st.mean - st.half_width, st.mean + st.half_width
            lines.append(f"  {name} - {base}: {st.mean:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    lines.append("\nrecovery (steps, per seed; inf = not within the run):")
    for name in names:
        lines.append(f"  {name}: " + " ".join(f"{p['recovery']:.0f}" for p in figures[name]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", required=True, type=json.loads, help="JSON: name -> kwargs")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--agent", default="attention-ppo")
    p.add_argument("--out-dir", default="runs")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    if not isinstance(args.variants, dict) or len(args.variants) < 2:
        p.error("'--variants' must be a JSON object with at least two variants")
    seeds = tuple(int(x) for x in args.seeds.split(","))
    figures = run(args.variants, seeds, args.agent, args.out_dir, args.workers)
    print(report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
