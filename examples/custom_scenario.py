"""Your own drift scenario from a JSON file, through the whole pipeline to the figures and report.

    python examples/custom_scenario.py            # 3 seeds, the language-model agents included
    python examples/custom_scenario.py --quick    # 2 seeds, agents without text (under a minute)

The scenario is the data file ``my_scenario.json`` next to this script: keys mirror
``driftrec.envs.EnvConfig`` and drift processes are written by kind and parameters (start from a
built-in one with ``driftrec scenarios --show AbruptShift > mine.json``). The same file works on
the command line::

    driftrec run --scenarios examples/my_scenario.json --agents random,linucb-discounted --report

This script registers it under a name (so ``gymnasium.make`` and the runner know it), runs a grid
of agents on it (the greedy oracle on the same seeds is the reference), and writes the
adaptation figure and ``report.md``, which lists the file's drift and the population shift it
caused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym

import driftrec
from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.report import write_report
from driftrec.experiments.runner import run_grid

SCENARIO_FILE = Path(__file__).with_name("my_scenario.json")


def main(argv: list[str] | None = None) -> int:
    """Register the file's scenario, run the grid, write the report; print where it is."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, agents without text")
    parser.add_argument("--out-dir", default="runs", help="results root (default: runs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    args = parser.parse_args(argv)

    scenario = driftrec.register_scenario("MyScenario", SCENARIO_FILE, overwrite=True)
    print(f"{scenario.env_id}: {scenario.description}")
    env = gym.make(scenario.env_id)  # a Gymnasium env like any built-in scenario
    env.reset(seed=0)
    env.close()

    agents = ("random", "popularity", "epsilon-greedy")  # no text encoder: quick everywhere
    if not args.quick:  # the agents that read the items' texts (encoded once per catalog)
        agents += ("history-similarity", "linucb-discounted", "attention-ppo")
    cfg = ExperimentConfig(
        name="custom-scenario-quick" if args.quick else "custom-scenario",
        scenarios=("MyScenario",),  # or str(SCENARIO_FILE): a file works without registering
        agents=agents,
        seeds=(0, 1) if args.quick else (0, 1, 2),
        num_envs=16 if args.quick else 32,
        steps=192 if args.quick else 384,
        log_every=16,
        out_dir=args.out_dir,
        workers=1 if args.quick else 2,
    )
    run_grid(cfg, progress=not args.no_progress)
    report = write_report(cfg.experiment_dir)
    print(f"adaptation figure: {cfg.experiment_dir / 'adaptation_MyScenario.png'}")
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
