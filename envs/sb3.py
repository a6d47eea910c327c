"""A stable-baselines3 ``VecEnv`` that steps the batched core directly.

SB3 does not accept Gymnasium's ``VectorEnv``; wrapping ``B`` single envs in ``DummyVecEnv`` works
but steps them one by one in Python. :class:`DriftRecSB3VecEnv` steps all ``B`` users with one
call of the core, autoresets in the same step (finished users' last observation goes to
``info["terminal_observation"]``, as SB3 expects) and reports ``info["episode"]`` (return,
length, time) for SB3's logger, so no ``VecMonitor`` is needed. It also answers
``env_method("action_masks")`` for sb3-contrib's ``MaskablePPO``.

Importing this module imports stable-baselines3 (and so torch).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from driftrec.envs.config import EnvConfig
from driftrec.envs.gym_env import DriftRecVectorEnv

__all__ = ["DriftRecSB3VecEnv", "make_sb3_vec_env"]


class DriftRecSB3VecEnv(VecEnv):
    """``num_envs`` simulated users as one SB3 ``VecEnv`` over the batched core.

    Args:
        num_envs: number of user slots.
        config: the world (or pass ``scenario=`` and overrides, as for ``DriftRecEnv``).
        scenario: a scenario name or Gymnasium id.
        seed: the run seed of the first reset (slot ``i`` gets ``slot_seed(seed, i)``, as in
            :class:`DriftRecVectorEnv`); ``model.set_random_seed`` / ``VecEnv.seed`` also work.
        **overrides: config overrides (``EnvConfig.with_overrides``).
    """

    def __init__(
        self,
        num_envs: int = 16,
        config: EnvConfig | None = None,
        *,
        scenario: str | None = None,
        seed: int | None = None,
        **overrides: Any,
    ) -> None:
        self.venv = DriftRecVectorEnv(num_envs, config, scenario=scenario, **overrides)
        if self.venv.config.session.observation != "flat":
            raise ValueError("DriftRecSB3VecEnv needs observation='flat' (got 'dict')")
        super().__init__(
            num_envs, self.venv.single_observation_space, self.venv.single_action_space
        )
        self.config = self.venv.config
        self.catalog = self.venv.catalog
        self.sim = self.venv.sim
        self._actions: NDArray[np.int64] | None = None
        self.last_info: dict[str, Any] = {}
        self._returns = np.zeros(num_envs)
        self._lengths = np.zeros(num_envs, dtype=np.int64)
        self._t0 = time.time()
        if seed is not None:
            self.seed(seed)

    # ---------------------------------------------------------------- VecEnv API
    def reset(self) -> NDArray[np.float32]:
        """Start new users in every slot (seeded if ``seed()`` was called before)."""
        seeds = self._seeds
        if all(s is not None for s in seeds):
            # SB3's VecEnv.seed(s) stores [s, s + 1, ...]: s is the run seed, and the slots get
            # independent children of it (not the overlapping integer seeds s + i)
            obs, _ = self.venv.reset(seed=int(seeds[0]))  # type: ignore[arg-type]
        else:
            obs, _ = self.venv.reset()
        self._reset_seeds()
        self._reset_options()
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_async must be called before step_wait")
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        # the full vector info (privileged arrays) for experiments that measure the stream
        self.last_info = dict(info, reward=reward, terminated=terminated, truncated=truncated)
        self._returns += reward
        self._lengths += 1
        done = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if "oracle_expected_reward" in info:
            exp, orc = info["expected_reward"], info["oracle_expected_reward"]
            for i, d in enumerate(infos):
                d["expected_reward"] = float(exp[i])
                d["oracle_expected_reward"] = float(orc[i])
        if done.any():
            final = info["final_obs"]
            elapsed = round(time.time() - self._t0, 6)
            for i in np.flatnonzero(done).tolist():
                infos[i]["terminal_observation"] = final[i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                infos[i]["episode"] = {
                    "r": float(self._returns[i]),
                    "l": int(self._lengths[i]),
                    "t": elapsed,
                }
            self._returns[done] = 0.0
            self._lengths[done] = 0
        return obs, reward.astype(np.float32), done, infos

    def close(self) -> None:
        return None

    def action_masks(self) -> NDArray[np.bool_]:
        """``(num_envs, N)`` released-item masks (``(num_envs, k * N)`` for slates)."""
        return self.venv.action_masks()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(
            f"DriftRecSB3VecEnv slots share one simulator; cannot set {attr_name!r} per slot"
        )

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        idx = list(self._get_indices(indices))
        if method_name == "action_masks":
            masks = self.venv.action_masks()
            return [masks[i] for i in idx]
        method = getattr(self.venv, method_name)
        result = method(*method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]


def make_sb3_vec_env(
    env_id_or_scenario: str | EnvConfig = "Stationary",
    num_envs: int = 16,
    seed: int | None = None,
    *,
    torch_threads: int | None = 1,
    **overrides: Any,
) -> DriftRecSB3VecEnv:
    """Build the fast SB3 ``VecEnv`` from a scenario name, Gymnasium id or :class:`EnvConfig`.

    ``torch_threads`` (default 1, what ``driftrec train``/``run`` use) sets torch's intra-op
    threads for the training that follows: on small CPUs more threads make these small products
    slower, not faster. ``None`` leaves torch's setting alone.
    """
    if torch_threads is not None:
        if isinstance(torch_threads, bool) or not isinstance(torch_threads, int):
            raise TypeError(f"'torch_threads' must be an int or None (got {torch_threads!r})")
        if torch_threads < 1:
            raise ValueError(f"'torch_threads' must be >= 1 (got {torch_threads!r})")
        import torch

        torch.set_num_threads(torch_threads)
    if isinstance(env_id_or_scenario, EnvConfig):
        return DriftRecSB3VecEnv(num_envs, env_id_or_scenario, seed=seed, **overrides)
    return DriftRecSB3VecEnv(num_envs, scenario=env_id_or_scenario, seed=seed, **overrides)
