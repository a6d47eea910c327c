"""Keeping every agent learning on a non-stationary stream.

Under drift there is no separate "training" and "test" phase: the drifting stream of users *is*
the training data, and what matters is reward over global time. :func:`run_online` advances one
vector env by a number of global steps with any agent, learning from every step (or, with
``learn=False``, only acting — the "frozen" contrast), and calls a hook after every step with the
full, privileged step record so an experiment can measure it. Calling it again continues where
the previous call stopped: the env is never reset, the world's clock keeps running, and

* a **bandit / baseline** (:class:`~driftrec.agents.base.Recommender`) is updated after every
  vector step from the feedback it observed (the privileged fields of ``info`` are removed first
  for non-privileged agents);
* a **stable-baselines3 model** keeps training with ``model.learn(..., reset_num_timesteps=False)``
  on a :class:`~driftrec.envs.sb3.DriftRecSB3VecEnv`: its step counter, schedules, optimizer state
  and last observation carry over between calls, and PPO's rollouts are simply the most recent
  ``n_steps`` of the stream. When ``learn=False`` the model acts with ``predict`` (stochastic by
  default, as during training) and is not updated.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftrec.agents.base import final_observation, privileged_info_guard

__all__ = ["StepRecord", "StepHook", "run_online", "is_sb3_model"]


@dataclass
class StepRecord:
    """One vector step as the experiment sees it (privileged: for measurement only)."""

    clock: int  # global step after this step
    observation: NDArray[np.float32]  # (B, D) what the agent saw
    actions: NDArray[np.int64]  # (B,) or (B, k)
    reward: NDArray[np.float64]  # (B,)
    terminated: NDArray[np.bool_]  # (B,)
    truncated: NDArray[np.bool_]  # (B,)
    next_observation: NDArray[np.float32]  # (B, D) after same-step autoreset
    info: dict[str, Any]  # the vector env's full info


StepHook = Callable[[StepRecord], Any]


def is_sb3_model(agent: Any) -> bool:
    """True for a stable-baselines3 (or sb3-contrib) algorithm instance.

    Never imports SB3 (and so torch, seconds on a small CPU): an object can only be an SB3
    model if SB3 is already imported.
    """
    module = sys.modules.get("stable_baselines3.common.base_class")
    return module is not None and isinstance(agent, module.BaseAlgorithm)


def run_online(
    agent: Any,
    env: Any,
    num_steps: int,
    *,
    learn: bool = True,
    on_step: StepHook | None = None,
    deterministic: bool = False,
) -> int:
    """Advance ``env`` by ``num_steps`` global steps with ``agent`` acting (and learning).

    Args:
        agent: a :class:`~driftrec.agents.base.Recommender` (with ``update``) or an SB3 model.
        env: a :class:`~driftrec.envs.gym_env.DriftRecVectorEnv` for recommenders, the model's
            :class:`~driftrec.envs.sb3.DriftRecSB3VecEnv` for SB3 models. It must have been
            reset once (SB3 does that on its first ``learn``; see :func:`start`).
        num_steps: vector steps to run (each steps every user slot once). A learning SB3
            on-policy model runs whole rollouts, i.e. ``num_steps`` rounded up to a multiple
            of its ``n_steps``; an off-policy one (DQN) stops after exactly ``num_steps``.
        learn: update the agent from the stream; False freezes it.
        on_step: called with a :class:`StepRecord` after every step; returning ``False`` stops.
        deterministic: act greedily (only when not learning SB3 models).

    Returns:
        The number of steps actually run.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"'num_steps' must be an integer >= 0 (got {num_steps!r})")
    if num_steps == 0:
        return 0
    if is_sb3_model(agent):
        if learn:
            return _learn_sb3(agent, num_steps, on_step)
        return _act_sb3(agent, num_steps, on_step, deterministic)
    return _run_recommender(agent, env, num_steps, learn, on_step, deterministic)


def _sim_clock(env: Any) -> int:
    sim = getattr(env, "sim", None) or getattr(getattr(env, "venv", None), "sim", None)
    return int(sim.state.clock) if sim is not None and sim.state is not None else -1


def _run_recommender(
    agent: Any,
    env: Any,
    num_steps: int,
    learn: bool,
    on_step: StepHook | None,
    deterministic: bool,
) -> int:
    if learn and not callable(getattr(agent, "update", None)):
        raise TypeError(f"{type(agent).__name__} has no update(); run it with learn=False")
    if env.sim.state is None:
        raise RuntimeError("reset the env once before run_online (e.g. env.reset(seed=0))")
    obs = env.sim.observation()
    for step in range(num_steps):
        actions, _ = agent.predict(obs, deterministic=deterministic)
        next_obs, reward, terminated, truncated, info = env.step(actions)
        if learn:
            agent.update(
                obs,
                actions,
                reward,
                final_observation(next_obs, info),
                terminated | truncated,
                privileged_info_guard(agent, info),
            )
        record = StepRecord(
            _sim_clock(env), obs, np.asarray(actions), reward, terminated, truncated, next_obs, info
        )
        obs = next_obs
        if on_step is not None and on_step(record) is False:
            return step + 1
    return num_steps


def _act_sb3(model: Any, num_steps: int, on_step: StepHook | None, deterministic: bool) -> int:
    env = model.get_env()
    obs = model._last_obs
    if obs is None:
        obs = env.reset()
    for step in range(num_steps):
        actions, _ = model.predict(obs, deterministic=deterministic)
        next_obs, reward, done, _infos = env.step(actions)
        info = env.last_info
        record = StepRecord(
            _sim_clock(env),
            obs,
            np.asarray(actions),
            np.asarray(reward, dtype=np.float64),
            np.asarray(info["terminated"]),
            np.asarray(info["truncated"]),
            next_obs,
            info,
        )
        obs = next_obs
        model._last_obs = obs  # a later learn() continues from here
        if on_step is not None and on_step(record) is False:
            return step + 1
    return num_steps


def _learn_sb3(model: Any, num_steps: int, on_step: StepHook | None) -> int:
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

    env = model.get_env()
    done_steps = 0

    class _Hook(BaseCallback):
        def _on_step(self) -> bool:
            nonlocal done_steps
            done_steps += 1
            info = env.last_info
            if on_step is not None:
                record = StepRecord(
                    _sim_clock(env),
                    # at callback time SB3 (on- and off-policy) has not yet replaced _last_obs
                    np.asarray(self.model._last_obs),
                    np.asarray(self.locals["actions"]),
                    np.asarray(info["reward"], dtype=np.float64),
                    np.asarray(info["terminated"]),
                    np.asarray(info["truncated"]),
                    self.locals["new_obs"],
                    info,
                )
                if on_step(record) is False:
                    return self._stop()
            if off_policy and done_steps >= num_steps:
                return self._stop()  # this step's transitions do not reach the replay buffer
            return True

        def _stop(self) -> bool:
            # SB3 returns before moving to the new observation: do it here, so a later call
            # acts on the current users (an unfinished on-policy rollout is dropped)
            self.model._last_obs = self.locals["new_obs"]
            return False

    # on-policy algorithms train on whole rollouts only (stopping one early drops it untrained),
    # so they run ceil(num_steps / n_steps) rollouts; off-policy ones stop at num_steps exactly
    off_policy = not isinstance(model, OnPolicyAlgorithm)
    n_steps = 1 if off_policy else int(model.n_steps)
    rollouts = -(-num_steps // n_steps)
    model.learn(
        total_timesteps=rollouts * n_steps * env.num_envs,
        reset_num_timesteps=False,
        callback=_Hook(),
        progress_bar=False,
    )
    return done_steps
