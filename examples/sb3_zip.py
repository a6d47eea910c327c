"""A stable-baselines3 model trained on one scenario, saved as a ``.zip``, then evaluated on a new
scenario through driftrec's pipeline.

    python examples/sb3_zip.py --quick      # well under a minute
    python examples/sb3_zip.py

Training is plain SB3 (``PPO(...).learn``, ``model.save``) with driftrec's attention policy on
``Stationary``. The saved model then meets ``AbruptShift`` (the same catalog, users whose tastes
jump): first frozen on new users (``driftrec.evaluate_agent``), then in an experiment grid next
to the baselines, the population's tastes jumping halfway, where it keeps learning online from
its trained weights. The same from the command line::

    driftrec evaluate --agent model.zip --scenario AbruptShift --trust-checkpoint
    driftrec run --agents random,popularity,model.zip --scenarios AbruptShift --trust-checkpoint

Loading a ``.zip`` with SB3's ``load`` unpickles it, which can run arbitrary code, so driftrec
asks for ``trust_checkpoint=True`` (``--trust-checkpoint``): here the file is our own.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stable_baselines3 import PPO

import driftrec
from driftrec.agents.registry import ATTENTION_DEFAULTS, PPO_DEFAULTS
from driftrec.agents.sb3_policy import recommender_policy_kwargs

NUM_ITEMS = 300


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small version (CI)")
    parser.add_argument("--out-dir", default="runs/examples", help="results root")
    args = parser.parse_args(argv)

    # 1. train with SB3 on Stationary and save the model
    env = driftrec.make_sb3_vec_env("Stationary", num_envs=32, seed=0, num_items=NUM_ITEMS)
    kwargs = recommender_policy_kwargs(env, attention=ATTENTION_DEFAULTS)
    model = PPO("AttentionRecommenderPolicy", env, policy_kwargs=kwargs, seed=0, **PPO_DEFAULTS)
    model.learn(4_096 if args.quick else 65_536)
    path = Path(args.out_dir) / "sb3_attention_ppo.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)

    # 2. frozen on a new scenario: the same catalog, users whose tastes drift (new users, seed
    #    12345; the population's scheduled jump comes later than these 256 steps)
    overrides = {"num_items": NUM_ITEMS}
    for agent in ("random", str(path)):
        result = driftrec.evaluate_agent(
            agent, scenario="AbruptShift", steps=256, num_envs=16 if args.quick else 32,
            env_overrides=overrides, trust_checkpoint=True,
        )  # fmt: skip
        print(f"frozen on AbruptShift: {agent:40s} reward / oracle {result['normalized_reward']}")

    # 3. in a grid next to the baselines (it keeps learning online from its trained weights)
    steps = 192 if args.quick else 1536
    cfg = driftrec.ExperimentConfig(
        name="sb3-zip",
        scenarios=("AbruptShift",),
        agents=("random", "popularity", str(path)),
        seeds=(1, 2) if args.quick else (1, 2, 3),
        num_envs=16 if args.quick else 32,
        steps=steps,
        log_every=16 if args.quick else 32,
        shift_at=steps // 2,
        env_overrides=overrides,
        vary_world=False,  # the catalog the model was trained on
        trust_checkpoint=True,
        out_dir=args.out_dir,
    )
    driftrec.run_grid(cfg, progress=False, restart=True)
    report = driftrec.report(cfg.experiment_dir)
    for row in driftrec.summary_table(driftrec.load_results(cfg.experiment_dir)):
        print(f"{row['agent']:40s} reward / one-step oracle {row['normalized_reward'].mean:.3f}")
    print(f"report: {report}")


if __name__ == "__main__":
    main()
