"""An exported dataset trains an offline RL agent (d3rlpy discrete CQL) that beats random.

d3rlpy 2.8 pins an old Gymnasium and needs the old ``gym``: install it next to driftrec with
``pip install --no-deps d3rlpy==2.8.1`` plus ``pip install gym structlog colorama
dataclasses-json click`` (the ``offline`` extra cannot express ``--no-deps``). Skipped when
absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("minari")
d3rlpy = pytest.importorskip("d3rlpy")

from driftrec.envs.gym_env import DriftRecVectorEnv  # noqa: E402
from driftrec.experiments.export import export_minari  # noqa: E402

WORLD = {"num_items": 50, "max_steps": 50}


def _click_rate(policy, steps: int = 200, seed: int = 1234) -> float:
    env = DriftRecVectorEnv(32, scenario="Stationary", **WORLD)
    obs, _ = env.reset(seed=seed)
    total = 0.0
    for _ in range(steps):
        obs, reward, _, _, _ = env.step(policy(obs))
        total += float(reward.mean())
    return total / steps


@pytest.mark.slow
def test_discrete_cql_from_an_export_beats_random(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Export epsilon-greedy sessions, load them with d3rlpy.datasets.get_minari, train CQL
    600 steps, evaluate it frozen in the simulator on fresh users."""
    import torch

    torch.set_num_threads(1)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    ds = export_minari("driftrec/Stationary/eps-v0", scenario="Stationary",
                       agent="epsilon-greedy", num_envs=32, steps=200,
                       env_overrides=WORLD)  # fmt: skip
    dataset, env = d3rlpy.datasets.get_minari("driftrec/Stationary/eps-v0")
    assert env.unwrapped.catalog.num_items == WORLD["num_items"]
    cql = d3rlpy.algos.DiscreteCQLConfig(
        batch_size=256, learning_rate=1e-3, target_update_interval=100, gamma=0.9
    ).create(device="cpu:0")
    d3rlpy.seed(0)
    cql.fit(dataset, n_steps=600, n_steps_per_epoch=600, show_progress=False,
            logger_adapter=d3rlpy.logging.NoopAdapterFactory())  # fmt: skip
    rng = np.random.default_rng(0)
    cql_rate = _click_rate(lambda o: cql.predict(o.astype(np.float32)))
    random_rate = _click_rate(lambda o: rng.integers(0, WORLD["num_items"], len(o)))
    behaviour = sum(float(e.rewards.sum()) for e in ds.iterate_episodes()) / ds.total_steps
    print(f"\nexport: {ds.total_episodes} episodes, {ds.total_steps} steps, behaviour "
          f"(epsilon-greedy, learning) click rate {behaviour:.3f}; evaluation "
          f"click rate CQL {cql_rate:.3f} vs random {random_rate:.3f}")  # fmt: skip
    assert cql_rate > random_rate + 0.05
