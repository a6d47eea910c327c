"""Tests of the stable-baselines3 VecEnv over the batched core, and tiny PPO / MaskablePPO runs."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")

from stable_baselines3 import PPO  # noqa: E402

from driftrec.envs.gym_env import DriftRecVectorEnv  # noqa: E402
from driftrec.envs.sb3 import DriftRecSB3VecEnv, make_sb3_vec_env  # noqa: E402

torch.set_num_threads(1)


def _raises(exc: type[Exception], msg: str) -> Any:
    return pytest.raises(exc, match=f"^{re.escape(msg)}$")


def test_reset_and_step_shapes() -> None:
    """reset gives (B, 3H + 2) float32; step gives float32 rewards, bool dones and B info dicts."""
    env = DriftRecSB3VecEnv(4, scenario="Mixed", num_items=40, seed=0)
    assert env.num_envs == 4
    assert env.observation_space.shape == (62,) and env.action_space.n == 40
    obs = env.reset()
    assert obs.shape == (4, 62) and obs.dtype == np.float32
    obs, rewards, dones, infos = env.step(np.array([0, 1, 2, 3]))
    assert obs.shape == (4, 62) and obs.dtype == np.float32
    assert rewards.shape == (4,) and rewards.dtype == np.float32
    assert dones.shape == (4,) and dones.dtype == np.bool_
    assert len(infos) == 4
    assert set(infos[0]) == {"expected_reward", "oracle_expected_reward"}
    assert infos[0]["oracle_expected_reward"] >= infos[0]["expected_reward"] - 1e-6


def test_done_infos_on_truncation() -> None:
    """On a time limit: terminal_observation, TimeLimit.truncated=True and an episode summary."""
    env = DriftRecSB3VecEnv(3, scenario="Stationary", num_items=20, max_steps=5, seed=1)
    env.reset()
    total = np.zeros(3)
    last = None
    for _ in range(5):
        last = env.step(np.array([1, 2, 3]))
        total += last[1]
    obs, _, dones, infos = last
    assert dones.all()
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is True
        assert info["episode"]["l"] == 5
        assert info["episode"]["r"] == pytest.approx(total[i])
        assert info["episode"]["t"] >= 0.0
        terminal = info["terminal_observation"]
        assert terminal.shape == (62,) and terminal[60] == 1.0  # progress 5 / 5
        assert obs[i, 60] == 0.0 and obs[i, 40:60].sum() == 0  # the next user's first obs
    _, _, dones, infos = env.step(np.array([1, 2, 3]))
    assert not dones.any() and "episode" not in infos[0]


def test_done_infos_on_termination() -> None:
    """A user who runs out of patience is done with TimeLimit.truncated=False."""
    env = DriftRecSB3VecEnv(2, scenario="NewItems", num_items=50, seed=0, **{"users.patience": 2.0})
    env.reset()
    late = int(np.flatnonzero(env.catalog.release_step > 10)[0])
    _, _, dones, _ = env.step(np.array([late, late]))
    assert not dones.any()
    _, _, dones, infos = env.step(np.array([late, late]))
    assert dones.all()
    assert [i["TimeLimit.truncated"] for i in infos] == [False, False]
    assert [i["episode"]["l"] for i in infos] == [2, 2]


def test_sb3_vec_env_equals_vector_env() -> None:
    """The SB3 VecEnv seeded with s equals DriftRecVectorEnv reset with seed s, step for step."""
    sb3_env = make_sb3_vec_env("SlateMixed", num_envs=4, seed=3, max_steps=6)
    venv = DriftRecVectorEnv(4, scenario="SlateMixed", max_steps=6)
    np.testing.assert_array_equal(sb3_env.reset(), venv.reset(seed=3)[0])
    rng = np.random.default_rng(0)
    for _ in range(15):
        actions = rng.integers(0, sb3_env.catalog.num_items, (4, 10))
        obs, rewards, dones, infos = sb3_env.step(actions)
        vobs, vrew, vterm, vtrunc, vinfo = venv.step(actions)
        np.testing.assert_array_equal(obs, vobs)
        np.testing.assert_array_equal(rewards, vrew.astype(np.float32))
        np.testing.assert_array_equal(dones, vterm | vtrunc)
        for i in np.flatnonzero(dones):
            np.testing.assert_array_equal(infos[i]["terminal_observation"], vinfo["final_obs"][i])


def test_seed_method_and_reseeding() -> None:
    """VecEnv.seed(s) makes the next reset equal to a fresh env built with seed=s."""
    a = DriftRecSB3VecEnv(3, num_items=20)
    a.seed(9)
    b = DriftRecSB3VecEnv(3, num_items=20, seed=9)
    np.testing.assert_array_equal(a.reset(), b.reset())
    a.step(np.array([0, 1, 2]))
    a.reset()  # no pending seed: continues the clock
    assert a.sim.state.clock == 1


def test_env_method_and_attributes() -> None:
    """env_method('action_masks') gives one (N,) mask per slot; attributes are shared."""
    env = make_sb3_vec_env("NewItems", num_envs=4, seed=0, num_items=50)
    env.reset()
    masks = env.env_method("action_masks")
    assert len(masks) == 4 and all(m.shape == (50,) and m.dtype == np.bool_ for m in masks)
    np.testing.assert_array_equal(masks[0], env.catalog.release_step <= 0)
    assert len(env.env_method("action_masks", indices=[1, 2])) == 2
    assert env.action_masks().shape == (4, 50)
    slate = make_sb3_vec_env("SlateMixed", num_envs=2, seed=0, num_items=50)
    slate.reset()
    assert [m.shape for m in slate.env_method("action_masks")] == [(500,), (500,)]
    assert env.get_attr("num_envs") == [4] * 4
    assert env.env_is_wrapped(object) == [False] * 4  # type: ignore[arg-type]
    with _raises(
        AttributeError,
        "DriftRecSB3VecEnv slots share one simulator; cannot set 'x' per slot",
    ):
        env.set_attr("x", 1)


def test_dict_observation_is_rejected() -> None:
    """The SB3 VecEnv needs the flat observation."""
    with _raises(ValueError, "DriftRecSB3VecEnv needs observation='flat' (got 'dict')"):
        DriftRecSB3VecEnv(2, num_items=10, observation="dict")


def _ppo(seed: int, **kwargs: Any) -> PPO:
    env = make_sb3_vec_env("AbruptShift", num_envs=8, seed=seed, max_steps=16)
    return PPO("MlpPolicy", env, n_steps=32, batch_size=64, seed=seed, device="cpu", **kwargs)


def test_ppo_learns_256_steps() -> None:
    """SB3 PPO runs 256 steps on the VecEnv and logs episodes from info['episode']."""
    model = _ppo(0)
    model.learn(256)
    assert model.num_timesteps == 256
    assert len(model.ep_info_buffer) >= 8  # 16-step sessions: every slot finished twice
    assert all(ep["l"] <= 16 for ep in model.ep_info_buffer)
    obs = model.env.reset()
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (8,)


def test_maskable_ppo_runs_on_new_items() -> None:
    """sb3-contrib MaskablePPO runs 256 steps on NewItems and predicts only released items."""
    sb3_contrib = pytest.importorskip("sb3_contrib")
    env = make_sb3_vec_env("NewItems", num_envs=8, seed=0, num_items=200)
    model = sb3_contrib.MaskablePPO(
        "MlpPolicy", env, n_steps=32, batch_size=64, n_epochs=2, seed=0, device="cpu"
    )
    model.learn(256)
    assert model.num_timesteps == 256
    obs = env.reset()
    masks = env.action_masks()
    action, _ = model.predict(obs, action_masks=masks)
    assert masks[np.arange(8), action].all()


def test_two_ppo_runs_with_the_same_seed_are_identical() -> None:
    """Two PPO runs with the same seed end with exactly equal parameters."""
    params = []
    for _ in range(2):
        model = _ppo(1, n_epochs=2)
        model.learn(256)
        params.append({k: v.clone() for k, v in model.policy.state_dict().items()})
    assert params[0].keys() == params[1].keys()
    for k in params[0]:
        assert torch.equal(params[0][k], params[1][k]), k
