"""Does the attention recommender personalise and adapt? Side by side with the references.

    python bench/bench_personalization.py                       # the demo setup, seeds 0-2
    python bench/bench_personalization.py --seeds 3,4,5         # held-out seeds
    python bench/bench_personalization.py --scenario UserJumps --frozen-at 768
    python bench/bench_personalization.py --catalog items.csv   # a user-made catalog

Runs (through the experiment runner, so finished runs are reused) the references that bracket
what personalisation is worth -- ``population-best`` (PRIVILEGED: the single best item for
everyone), ``history-similarity`` (no learning), ``linucb-discounted`` -- next to
``attention-ppo`` and ``attention-ppo-frozen`` (weights frozen at the shift), and prints per
agent, as mean over seeds with the 95% half-width:

* ``whole``: normalised reward (expected reward / one-step oracle's) over the run;
* ``pre``: over the last quarter before the shift (or the freeze step); ``end``: over the last
  quarter of the run;
* ``recovery``: steps until the normalised reward is back at 90% of its pre-shift level for two
  windows (``analysis.recovery_time``; ``never`` when censored), one entry per seed;
* ``gain`` / ``distinct``: personalisation gain and distinct items of the greedy choices
  (recorder columns ``greedy_personal_gain`` / ``greedy_distinct_items``), run means;
* ``greedy pre`` / ``greedy end``: the oracle ratio of the greedy choices (exploration switched
  off; recorder column ``greedy_normalized_reward``) in the same two phases. The gap to ``pre`` /
  ``end`` is what exploring costs the online policy; a deterministic reference has none.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from driftrec.experiments.analysis import load_run, mean_ci, recovery_time
from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.runner import run_grid

AGENTS = (
    "population-best",
    "history-similarity",
    "linucb-discounted",
    "attention-ppo",
    "attention-ppo-frozen",
)


def _fmt(values: list[float], decimals: int = 3) -> str:
    stat = mean_ci(values)
    if stat.n == 0 or not math.isfinite(stat.mean):
        return "–"
    if stat.n > 1 and math.isfinite(stat.half_width):
        return f"{stat.mean:.{decimals}f} ± {stat.half_width:.{decimals}f}"
    return f"{stat.mean:.{decimals}f}"


def phase_metrics(run_dir: Path, event: int, steps: int, shift: bool = True) -> dict[str, float]:
    """The per-run figures of the table for the run in ``run_dir`` (no recovery without a
    population shift at ``event``)."""
    run = load_run(run_dir)
    s = run.steps
    nr = run.metrics["normalized_reward"]
    quarter = event / 4
    pre = (s > event - quarter) & (s <= event)
    end = s > steps - (steps - event) / 4
    rec = recovery_time(s, nr, event)
    greedy = run.metrics.get("greedy_normalized_reward")
    if greedy is None:  # a run made before the column existed
        greedy = np.full_like(nr, np.nan)
    return {
        "whole": float(np.nanmean(nr)),
        "pre": float(np.nanmean(nr[pre])),
        "end": float(np.nanmean(nr[end])),
        "recovery": (math.inf if rec.censored else rec.steps) if shift else math.nan,
        "gain": float(np.nanmean(run.metrics["greedy_personal_gain"])),
        "distinct": float(np.nanmean(run.metrics["greedy_distinct_items"])),
        "greedy_pre": _nanmean(greedy[pre]),
        "greedy_end": _nanmean(greedy[end]),
    }


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


def table(
    exp_dir: Path,
    scenario: str,
    agents: tuple[str, ...],
    seeds: tuple[int, ...],
    event: int,
    steps: int,
    shift: bool = True,
) -> tuple[str, dict[str, list[dict[str, float]]]]:
    """Markdown table and the per-seed figures of every agent."""
    lines = [
        "| agent | whole | pre | end | recovery (steps, per seed) | gain | distinct "
        "| greedy pre | greedy end |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    figures: dict[str, list[dict[str, float]]] = {}
    for agent in agents:
        per_seed = [
            phase_metrics(exp_dir / f"{scenario}__{agent}__{seed}", event, steps, shift)
            for seed in seeds
        ]
        figures[agent] = per_seed
        col = {k: [p[k] for p in per_seed] for k in per_seed[0]}
        recs = ", ".join(
            "never" if math.isinf(r) else "–" if math.isnan(r) else f"{r:.0f}"
            for r in col["recovery"]
        )
        lines.append(
            f"| {agent} | {_fmt(col['whole'])} | {_fmt(col['pre'])} | {_fmt(col['end'])} | "
            f"{recs} | {_fmt(col['gain'])} | {_fmt(col['distinct'], 1)} | "
            f"{_fmt(col['greedy_pre'])} | {_fmt(col['greedy_end'])} |"
        )
    return "\n".join(lines) + "\n", figures


def run(
    *,
    scenario: str = "AbruptShift",
    seeds: tuple[int, ...] = (0, 1, 2),
    agents: tuple[str, ...] = AGENTS,
    steps: int = 1536,
    num_envs: int = 32,
    shift_at: int | None = 768,
    frozen_at: int | None = None,
    catalog: str | None = None,
    out_dir: str = "runs",
    name: str | None = None,
    workers: int = 2,
) -> tuple[str, dict[str, list[dict[str, float]]]]:
    """Run (or reuse) the grid and return the table and the per-seed figures."""
    overrides = {"catalog_path": str(Path(catalog).resolve())} if catalog else {}
    name = name or f"personalization-{scenario}" + ("-catalog" if catalog else "")
    cfg = ExperimentConfig(
        name=name,
        scenarios=(scenario,),
        agents=agents,
        seeds=seeds,
        num_envs=num_envs,
        steps=steps,
        log_every=32,
        shift_at=shift_at,
        frozen_at=frozen_at,
        env_overrides=overrides,
        out_dir=out_dir,
        workers=workers,
        checkpoint=False,
    )
    run_grid(cfg, progress=False)
    event = shift_at if shift_at is not None else frozen_at
    if event is None:
        raise ValueError("pass --shift-at or --frozen-at: the phases are split at that step")
    return table(
        Path(out_dir) / name, scenario, agents, seeds, event, steps, shift=shift_at is not None
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="AbruptShift")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--agents", default=",".join(AGENTS))
    p.add_argument("--steps", type=int, default=1536)
    p.add_argument("--num-envs", type=int, default=32)
    p.add_argument("--shift-at", type=int, default=None, help="default: 768 on AbruptShift")
    p.add_argument("--frozen-at", type=int, default=None)
    p.add_argument("--catalog", default=None, help="a CSV/JSONL catalog (README format)")
    p.add_argument("--out-dir", default="runs")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    shift_at = args.shift_at
    if shift_at is None and args.frozen_at is None and args.scenario == "AbruptShift":
        shift_at = 768
    text, _ = run(
        scenario=args.scenario,
        seeds=tuple(int(x) for x in args.seeds.split(",")),
        agents=tuple(args.agents.split(",")),
        steps=args.steps,
        num_envs=args.num_envs,
        shift_at=shift_at,
        frozen_at=args.frozen_at,
        catalog=args.catalog,
        out_dir=args.out_dir,
        workers=args.workers,
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
