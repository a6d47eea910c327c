"""Compare attention PPO's slate distributions: Plackett-Luce vs k independent categoricals.

    python bench/bench_slate.py                      # 2 scenarios x 2 variants x 3 seeds
    python bench/bench_slate.py --quick              # a smoke run
    python bench/bench_slate.py --json slate.json    # also write the per-run figures

Each run builds ``attention-ppo`` from the agent registry (its defaults) with
``policy_kwargs={"slate_distribution": ...}`` on a slate scenario (``SlateStationary``,
``SlateMixed``: slates of 10 out of 1,000 items) and trains it online with ``run_online`` for
``--steps`` global steps of ``--users`` user slots. Per run it reports:

* ``norm. reward (last 1/4)``: sum of the shown slates' expected reward over the last quarter of
  the steps divided by the one-step oracle's (privileged ``info`` fields);
* ``norm. reward (all)``: the same over the whole run;
* ``dup. rate``: the fraction of slate positions that repeat an item shown earlier in the same
  slate (the simulator shows it once), over the whole run and in the last quarter;
* ``env-steps/s``: user-steps per second of the whole ``run_online`` call (rollouts and PPO
  updates). Variants alternate within each seed so both see the same machine load.

The table gives means and 95% Student-t intervals over seeds.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Any

import numpy as np
import torch

from driftrec.agents.online import StepRecord, run_online
from driftrec.agents.registry import build_agent
from driftrec.envs.scenarios import get_scenario
from driftrec.experiments.analysis import Stat, mean_ci
from driftrec.experiments.io import atomic_write_json

VARIANTS = ("plackett-luce", "independent")


def duplicate_positions(actions: np.ndarray) -> np.ndarray:
    """``(B,)`` count of slate positions repeating an earlier item of the same slate."""
    a = np.sort(actions, axis=1)  # (B, k)
    return (a[:, 1:] == a[:, :-1]).sum(axis=1)


def run_variant(scenario: str, variant: str, seed: int, users: int, steps: int) -> dict[str, Any]:
    """Train one variant online and return its figures."""
    config = get_scenario(scenario).config
    built = build_agent(
        "attention-ppo",
        config,
        num_envs=users,
        seed=seed,
        agent_kwargs={"policy_kwargs": {"slate_distribution": variant}},
    )
    k = config.choice.slate_size
    expected, oracle, dups = [], [], []

    def hook(record: StepRecord) -> None:
        expected.append(float(np.sum(record.info["expected_reward"])))
        oracle.append(float(np.sum(record.info["oracle_expected_reward"])))
        dups.append(int(duplicate_positions(np.asarray(record.actions)).sum()))

    t0 = time.perf_counter()
    done = run_online(built.agent, built.env, steps, on_step=hook)
    seconds = time.perf_counter() - t0
    exp, orc, dup = np.array(expected), np.array(oracle), np.array(dups, dtype=np.float64)
    last = slice(len(exp) - len(exp) // 4, None)
    return {
        "scenario": scenario,
        "variant": variant,
        "seed": seed,
        "steps": done,
        "norm_reward_last_quarter": float(exp[last].sum() / orc[last].sum()),
        "norm_reward_all": float(exp.sum() / orc.sum()),
        "dup_rate_all": float(dup.sum() / (len(dup) * users * k)),
        "dup_rate_last_quarter": float(dup[last].sum() / (len(dup[last]) * users * k)),
        "env_steps_per_s": done * users / seconds,
        "seconds": seconds,
    }


def _fmt(stat: Stat, digits: int = 3) -> str:
    return f"{stat.mean:.{digits}f} [{stat.lo:.{digits}f}, {stat.hi:.{digits}f}]"


def print_table(results: list[dict[str, Any]]) -> None:
    """Markdown table: mean [95% CI] over seeds for each scenario x variant."""
    cols = (
        ("norm. reward (last 1/4)", "norm_reward_last_quarter", 3),
        ("norm. reward (all)", "norm_reward_all", 3),
        ("dup. rate (all)", "dup_rate_all", 3),
        ("dup. rate (last 1/4)", "dup_rate_last_quarter", 3),
        ("env-steps/s", "env_steps_per_s", 0),
    )
    print("| scenario | slate distribution | seeds | " + " | ".join(c[0] for c in cols) + " |")
    print("|---|---|---:|" + "---:|" * len(cols))
    for scenario in dict.fromkeys(r["scenario"] for r in results):
        for variant in VARIANTS:
            rows = [r for r in results if r["scenario"] == scenario and r["variant"] == variant]
            if not rows:
                continue
            cells = [_fmt(mean_ci([r[key] for r in rows]), d) for _, key, d in cols]
            print(f"| {scenario} | {variant} | {len(rows)} | " + " | ".join(cells) + " |")
    # paired by seed (the two variants of a seed share the env seed and ran back to back)
    print()
    for scenario in dict.fromkeys(r["scenario"] for r in results):
        diffs, ratios = [], []
        for seed in dict.fromkeys(r["seed"] for r in results):
            pair = {
                r["variant"]: r for r in results if r["scenario"] == scenario and r["seed"] == seed
            }
            if len(pair) == 2:
                pl, ind = pair["plackett-luce"], pair["independent"]
                key = "norm_reward_last_quarter"
                diffs.append(pl[key] - ind[key])
                ratios.append(pl["env_steps_per_s"] / ind["env_steps_per_s"])
        if diffs:
            per_seed = ", ".join(f"{d:+.3f}" for d in diffs)
            print(
                f"{scenario} ({len(diffs)} paired seeds): last-quarter norm. reward PL - "
                f"independent {_fmt(mean_ci(diffs))} (per seed {per_seed}); "
                f"throughput ratio PL / independent {_fmt(mean_ci(ratios), 2)}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="SlateStationary,SlateMixed")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--steps", type=int, default=1280, help="global steps per run")
    parser.add_argument("--quick", action="store_true", help="1 seed, 64 steps, 8 users")
    parser.add_argument("--json", help="write per-run results here (atomically)")
    args = parser.parse_args(argv)
    scenarios = args.scenarios.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    users, steps = args.users, args.steps
    if args.quick:
        seeds, users, steps = seeds[:1], 8, 64
    print(
        f"# python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} cpus,"
        f" {users} users x {steps} steps, seeds {seeds}",
        flush=True,
    )
    results = []
    for scenario in scenarios:
        for seed in seeds:
            # alternate which variant goes first so a load change hits both alike
            order = VARIANTS if seed % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                r = run_variant(scenario, variant, seed, users, steps)
                results.append(r)
                print(
                    f"{scenario} {variant} seed {seed}: last quarter "
                    f"{r['norm_reward_last_quarter']:.3f}, dup {r['dup_rate_all']:.3f}, "
                    f"{r['env_steps_per_s']:.0f} steps/s",
                    flush=True,
                )
                if args.json:
                    atomic_write_json(args.json, {"args": vars(args), "runs": results})
    print()
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
