"""The README's training snippet gets what the CLI sets: one torch thread, and a progress bar."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import torch

from driftrec.envs.sb3 import make_sb3_vec_env


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_make_sb3_vec_env_sets_one_torch_thread() -> None:
    torch.set_num_threads(2)
    make_sb3_vec_env("Stationary", num_envs=2, seed=0, num_items=20)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(2)
    make_sb3_vec_env("Stationary", num_envs=2, seed=0, num_items=20, torch_threads=None)
    assert torch.get_num_threads() == 2
    msg = "'torch_threads' must be >= 1 (got 0)"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        make_sb3_vec_env("Stationary", num_envs=2, torch_threads=0)
    msg = "'torch_threads' must be an int or None (got 1.0)"
    with pytest.raises(TypeError, match=f"^{re.escape(msg)}$"):
        make_sb3_vec_env("Stationary", num_envs=2, torch_threads=1.0)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:rich is experimental")
def test_readme_snippet_with_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    """progress_bar=True needs only the declared dependencies (tqdm and rich)."""
    from stable_baselines3 import PPO

    from driftrec.agents.registry import PPO_DEFAULTS
    from driftrec.agents.sb3_policy import recommender_policy_kwargs

    env = make_sb3_vec_env("AbruptShift", num_envs=4, seed=0, num_items=30)
    kwargs = recommender_policy_kwargs(env, ids_only=True)
    ppo = {**PPO_DEFAULTS, "batch_size": 64}  # one rollout of 16 steps x 4 users
    model = PPO("AttentionRecommenderPolicy", env, policy_kwargs=kwargs, seed=0, **ppo)
    model.learn(128, progress_bar=True)
    assert model.num_timesteps == 128
