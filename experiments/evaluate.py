"""Evaluate a saved SB3 checkpoint, frozen, on the world it was trained in (fresh users)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from driftrec.agents.online import StepRecord, run_online
from driftrec.envs.config import EnvConfig

__all__ = ["evaluate_checkpoint"]


def _algorithm(agent: str) -> Any:
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import A2C, DQN, PPO

    import driftrec.agents.sb3_policy  # noqa: F401  (registers the policy name)

    base = agent.removesuffix("-frozen")
    table = {"attention-a2c": A2C, "attention-dqn": DQN, "attention-maskable-ppo": MaskablePPO}
    return table.get(base, PPO)


def evaluate_checkpoint(
    run_dir: str | Path, *, steps: int = 256, seed: int = 12345, deterministic: bool = False
) -> dict[str, Any]:
    """Load ``run_dir/model.zip`` and act (no learning) for ``steps`` global steps.

    The world is the run's own (``config.json``), with new users seeded from ``seed``; the
    global clock restarts at 0, so scheduled shifts happen at the same steps as in training.

    Returns:
        Mean reward, expected reward, oracle expected reward, normalized reward, click rate.
    """
    from driftrec.envs.sb3 import DriftRecSB3VecEnv

    run_dir = Path(run_dir)
    model_path = run_dir / "model.zip"
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} does not exist: is {run_dir} a run directory?")
    if not model_path.is_file():
        raise FileNotFoundError(
            f"{model_path} does not exist: only SB3 agents save checkpoints (baselines keep no "
            "model between runs; re-run them with 'driftrec train')"
        )
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"'steps' must be an integer >= 1 (got {steps!r})")
    cfg = json.loads(config_path.read_text())
    env = DriftRecSB3VecEnv(
        int(cfg["num_envs"]),
        EnvConfig.from_dict(cfg["env_config"]).with_overrides(oracle_info=True),
    )
    env.seed(seed)
    model = _algorithm(cfg["agent"]).load(model_path, env=env, device="cpu")
    model._last_obs = env.reset()
    sums = {"reward": 0.0, "expected": 0.0, "oracle": 0.0, "clicks": 0.0, "n": 0}

    def hook(r: StepRecord) -> None:
        sums["reward"] += float(r.reward.sum())
        sums["expected"] += float(np.sum(r.info["expected_reward"]))
        sums["oracle"] += float(np.sum(r.info["oracle_expected_reward"]))
        sums["clicks"] += float((r.info["clicked_item"] >= 0).sum())
        sums["n"] += r.reward.size

    run_online(model, env, steps, learn=False, on_step=hook, deterministic=deterministic)
    n = max(sums["n"], 1)
    return {
        "run": str(run_dir),
        "agent": cfg["agent"],
        "user_steps": sums["n"],
        "reward": round(sums["reward"] / n, 4),
        "expected_reward": round(sums["expected"] / n, 4),
        "oracle_reward": round(sums["oracle"] / n, 4),
        "normalized_reward": round(sums["expected"] / max(sums["oracle"], 1e-12), 4),
        "click_rate": round(sums["clicks"] / n, 4),
    }
