"""The agent protocol and the one online evaluation loop that every agent shares.

A recommender is anything with stable-baselines3's ``predict`` (so SB3 models fit) plus an online
``update`` that sees one batched transition per vector step::

    actions, state = agent.predict(obs)                      # (B, D) -> (B,) or (B, k)
    next_obs, reward, terminated, truncated, info = env.step(actions)
    agent.update(obs, actions, reward, next_obs_with_final_obs, terminated | truncated, info)

:func:`evaluate` runs exactly this loop on a :class:`~driftrec.envs.gym_env.DriftRecVectorEnv`
(or anything with the same API) and records per-step metrics in an :class:`EvalResult`.

Privileged information: the env's ``info`` carries the simulator's ground truth for evaluation
(the true interests, the shown action's click probability and expected reward, the drift events
and the oracle). Only agents whose class sets ``privileged = True`` may read it;
:func:`privileged_info_guard` removes it from the ``info`` handed to every other agent, so a
baseline cannot cheat by accident.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from driftrec.envs.config import check_int

__all__ = [
    "Recommender",
    "EvalCallback",
    "EvalResult",
    "evaluate",
    "privileged_info_guard",
    "final_observation",
    "PRIVILEGED_INFO_KEYS",
    "PRIVILEGED_INFO_PREFIX",
]

PRIVILEGED_INFO_KEYS: frozenset[str] = frozenset(
    {"interests", "click_prob", "expected_reward", "drift_events"}
)
"""``info`` keys that only privileged agents see (plus their ``_key`` masks)."""

PRIVILEGED_INFO_PREFIX = "oracle_"
"""Every ``info`` key starting with this (``oracle_action``, ...) is privileged too."""


@runtime_checkable
class Recommender(Protocol):
    """What :func:`evaluate` needs from an agent.

    Attributes:
        name: a short label for logs and result files (``"linucb"``).
        privileged: True only for agents that may read the simulator's ground truth in
            ``info`` (the oracle); every other agent gets ``info`` through
            :func:`privileged_info_guard`.

    An agent may also define ``reset_state()``, which forgets everything it has learned (it is
    optional, so it is not part of the protocol, and :func:`evaluate` never calls it).
    """

    name: str
    privileged: bool

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: NDArray[np.bool_] | None = None,
        deterministic: bool = False,
    ) -> tuple[NDArray[np.int64], Any]:
        """Recommend for a batch of users (SB3's ``predict`` signature).

        Args:
            observation: ``(B, D)`` flat observations (or the dict variant); a single ``(D,)``
                observation gives a single action.
            state: recurrent state returned by the previous call (None for stateless agents).
            episode_start: ``(B,)`` True where a new user starts (for recurrent agents).
            deterministic: act without exploration noise where the agent has a choice.

        Returns:
            ``(actions, state)``: ``(B,)`` item ids, or ``(B, k)`` distinct items per slate.
        """
        ...

    def update(
        self,
        observation: Any,
        action: NDArray[np.int64],
        reward: NDArray[np.float64],
        next_observation: Any,
        done: NDArray[np.bool_],
        info: Mapping[str, Any],
    ) -> None:
        """Learn from one batched transition.

        Args:
            observation: ``(B, D)`` observations the actions were chosen from.
            action: ``(B,)`` or ``(B, k)`` the actions taken.
            reward: ``(B,)`` rewards.
            next_observation: ``(B, D)`` the observations that followed; for a finished user
                this is its last observation (``info["final_obs"]``), not the next user's first.
            done: ``(B,)`` terminated or truncated.
            info: the vector env's info dict of arrays (privileged keys removed unless the
                agent is privileged).
        """
        ...


def _is_privileged_key(key: str) -> bool:
    base = key[1:] if key.startswith("_") else key  # Gymnasium's "_key" validity masks
    return base in PRIVILEGED_INFO_KEYS or base.startswith(PRIVILEGED_INFO_PREFIX)


def privileged_info_guard(agent: Any, info: Mapping[str, Any]) -> dict[str, Any]:
    """The ``info`` an agent may see: everything for privileged agents, else no ground truth.

    Removes ``interests``, ``click_prob``, ``expected_reward``, ``drift_events``, every
    ``oracle_*`` key and their ``_key`` masks unless ``agent.privileged`` is True. What stays
    (``clicked_item``, ``final_obs``, ...) is observable by a real recommender.

    Args:
        agent: the agent the info is for (its ``privileged`` attribute defaults to False).
        info: a vector env's info dict.

    Returns:
        A new dict (the input is not modified).
    """
    if getattr(agent, "privileged", False) is True:
        return dict(info)
    return {k: v for k, v in info.items() if not _is_privileged_key(k)}


def final_observation(next_obs: Any, info: Mapping[str, Any]) -> Any:
    """``next_obs`` with finished users' rows replaced by their last observation.

    With same-step autoreset the vector env returns the next user's first observation for a
    finished slot and puts the finished user's last one in ``info["final_obs"]`` (where
    ``info["_final_obs"]`` is True). Learning needs the latter.

    Args:
        next_obs: ``(B, D)`` observations from ``env.step`` (or the dict variant).
        info: the step's info dict.

    Returns:
        ``next_obs`` itself when nobody finished, else a patched copy.
    """
    mask = info.get("_final_obs")
    if mask is None or not np.any(mask):
        return next_obs
    idx = np.flatnonzero(mask)
    final = info["final_obs"]
    if isinstance(next_obs, Mapping):
        out = {k: np.array(v, copy=True) for k, v in next_obs.items()}
        for key, value in out.items():
            value[idx] = np.stack([np.asarray(final[i][key]) for i in idx])
        return out
    out_flat = np.array(next_obs, copy=True)
    out_flat[idx] = np.stack([np.asarray(final[i]) for i in idx])
    return out_flat


def _num_envs(env: Any) -> int:
    num = getattr(env, "num_envs", None)
    if num is None:
        raise TypeError(
            f"'env' must be a vector env with a 'num_envs' attribute, such as "
            f"DriftRecVectorEnv (got {type(env).__name__})"
        )
    return int(num)


@dataclass
class EvalResult:
    """Per-step metrics of one :func:`evaluate` run; every array has one entry per vector step.

    Per-step values are means over the ``num_envs`` users of that step.

    Attributes:
        agent: the agent's ``name``.
        num_envs: users per step ``B``.
        reward: ``(T,)`` mean reward.
        expected_reward: ``(T,)`` mean expected reward of the shown actions (privileged).
        oracle_expected_reward: ``(T,)`` mean expected reward of the one-step oracle, or None
            when the env reports no oracle (``oracle_info=False``).
        click_rate: ``(T,)`` fraction of users who clicked.
        sessions_finished: ``(T,)`` number of users whose session ended (terminated or
            truncated).
        terminated: ``(T,)`` number of users who left (patience ran out).
        drift_events: ``(T,)`` ``DriftEvent`` bits OR-ed over the users.
        actions: ``(T, B)`` or ``(T, B, k)`` the actions, when ``record_actions=True``.
        wall_time_s: seconds the loop took (predict, step and update).
    """

    agent: str
    num_envs: int
    reward: NDArray[np.float64]
    expected_reward: NDArray[np.float64]
    oracle_expected_reward: NDArray[np.float64] | None
    click_rate: NDArray[np.float64]
    sessions_finished: NDArray[np.int64]
    terminated: NDArray[np.int64]
    drift_events: NDArray[np.int32]
    actions: NDArray[np.int64] | None = None
    wall_time_s: float = 0.0

    @property
    def num_steps(self) -> int:
        """Number of vector steps ``T``."""
        return int(self.reward.shape[0])

    @property
    def total_reward(self) -> float:
        """Sum of all rewards over every user and step."""
        return float(self.reward.sum() * self.num_envs)

    @property
    def instant_regret(self) -> NDArray[np.float64] | None:
        """``(T,)`` mean one-step regret ``oracle_expected_reward - expected_reward``."""
        if self.oracle_expected_reward is None:
            return None
        return self.oracle_expected_reward - self.expected_reward

    @property
    def regret(self) -> float | None:
        """Cumulative one-step regret per user slot: the sum over steps of the mean over users
        of ``oracle_expected_reward - expected_reward`` (the ``cum_regret`` of
        ``metrics.csv``; before v1 this summed over users too, ``num_envs`` times larger)."""
        inst = self.instant_regret
        return None if inst is None else float(inst.sum())

    @property
    def normalized_reward(self) -> float | None:
        """The one-step oracle ratio: mean expected reward divided by the one-step oracle's in
        the same states (1.0 = as good as the myopic oracle; it cannot credit planning)."""
        if self.oracle_expected_reward is None:
            return None
        denom = float(self.oracle_expected_reward.mean())
        return float(self.expected_reward.mean()) / denom if denom > 0 else float("nan")

    @property
    def steps_per_second(self) -> float:
        """Vector steps per second of wall time."""
        return self.num_steps / self.wall_time_s if self.wall_time_s > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the arrays as lists plus the summary numbers."""

        def _list(a: NDArray[Any] | None) -> list[Any] | None:
            return None if a is None else a.tolist()

        return {
            "agent": self.agent,
            "num_envs": self.num_envs,
            "num_steps": self.num_steps,
            "total_reward": self.total_reward,
            "regret": self.regret,
            "normalized_reward": self.normalized_reward,
            "wall_time_s": self.wall_time_s,
            "reward": _list(self.reward),
            "expected_reward": _list(self.expected_reward),
            "oracle_expected_reward": _list(self.oracle_expected_reward),
            "click_rate": _list(self.click_rate),
            "sessions_finished": _list(self.sessions_finished),
            "terminated": _list(self.terminated),
            "drift_events": _list(self.drift_events),
            "actions": _list(self.actions),
        }

    def _head(self, n: int) -> EvalResult:
        """The first ``n`` steps (views, no copies)."""

        def cut(a: NDArray[Any] | None) -> NDArray[Any] | None:
            return None if a is None else a[:n]

        return EvalResult(
            agent=self.agent,
            num_envs=self.num_envs,
            reward=self.reward[:n],
            expected_reward=self.expected_reward[:n],
            oracle_expected_reward=cut(self.oracle_expected_reward),
            click_rate=self.click_rate[:n],
            sessions_finished=self.sessions_finished[:n],
            terminated=self.terminated[:n],
            drift_events=self.drift_events[:n],
            actions=cut(self.actions),
            wall_time_s=self.wall_time_s,
        )


EvalCallback = Callable[[int, EvalResult, Mapping[str, Any]], bool | None]


def evaluate(
    agent: Any,
    env: Any,
    num_steps: int,
    *,
    learn: bool = True,
    seed: int | None = None,
    deterministic: bool = False,
    record_actions: bool = False,
    callback: EvalCallback | None = None,
) -> EvalResult:
    """Run ``agent`` online on a vector env for ``num_steps`` vector steps.

    Each step calls ``agent.predict``, then ``env.step``, then (if ``learn``)
    ``agent.update`` with the finished users' ``info["final_obs"]`` patched into the next
    observation (see :func:`final_observation`) and the info passed through
    :func:`privileged_info_guard`. The env is reset first with ``seed``; without a seed a
    driftrec env keeps its global clock running (a warm world) and draws fresh users.

    Args:
        agent: a :class:`Recommender` (an SB3 model works too with ``learn=False``).
        env: a :class:`~driftrec.envs.gym_env.DriftRecVectorEnv` or anything with its API
            (``num_envs``, ``reset``, ``step``, same-step autoreset and its info keys).
        num_steps: vector steps to run (each steps every user once).
        learn: call ``agent.update`` after every step.
        seed: passed to ``env.reset``.
        deterministic: passed to ``agent.predict``.
        record_actions: keep every action in :attr:`EvalResult.actions`.
        callback: called as ``callback(step, result_so_far, info)`` after every step with the
            metrics of steps ``0..step`` and the step's full info; returning ``False`` stops
            the run early (the result then holds the steps done).

    Returns:
        The per-step metrics.
    """
    check_int("num_steps", num_steps, 0)
    b = _num_envs(env)
    update = getattr(agent, "update", None)
    if learn and not callable(update):
        raise TypeError(
            f"agent {type(agent).__name__} has no update() method; pass learn=False to "
            "evaluate a fixed policy"
        )
    reward = np.zeros(num_steps)
    expected = np.full(num_steps, np.nan)
    oracle = np.full(num_steps, np.nan)
    has_oracle = False
    click_rate = np.full(num_steps, np.nan)
    finished = np.zeros(num_steps, dtype=np.int64)
    terminated_n = np.zeros(num_steps, dtype=np.int64)
    events = np.zeros(num_steps, dtype=np.int32)
    actions_log: NDArray[np.int64] | None = None
    result = EvalResult(
        agent=str(getattr(agent, "name", type(agent).__name__)),
        num_envs=b,
        reward=reward,
        expected_reward=expected,
        oracle_expected_reward=oracle,
        click_rate=click_rate,
        sessions_finished=finished,
        terminated=terminated_n,
        drift_events=events,
    )

    t0 = time.perf_counter()
    obs, _ = env.reset(seed=seed)
    state: Any = None
    episode_start = np.ones(b, dtype=bool)
    done_steps = num_steps
    for t in range(num_steps):
        action, state = agent.predict(
            obs, state=state, episode_start=episode_start, deterministic=deterministic
        )
        action = np.asarray(action)
        next_obs, r, term, trunc, info = env.step(action)
        term = np.asarray(term, dtype=bool)
        done = term | np.asarray(trunc, dtype=bool)
        r = np.asarray(r, dtype=np.float64)

        reward[t] = r.mean()
        if "expected_reward" in info:
            expected[t] = np.mean(info["expected_reward"])
        if "oracle_expected_reward" in info:
            oracle[t] = np.mean(info["oracle_expected_reward"])
            has_oracle = True
        if "clicked_item" in info:
            click_rate[t] = np.mean(np.asarray(info["clicked_item"]) >= 0)
        finished[t] = int(done.sum())
        terminated_n[t] = int(term.sum())
        if "drift_events" in info:
            events[t] = int(np.bitwise_or.reduce(np.asarray(info["drift_events"], np.int32)))
        if record_actions:
            if actions_log is None:
                actions_log = np.zeros((num_steps, *action.shape), dtype=np.int64)
                result.actions = actions_log
            actions_log[t] = action

        if learn:
            update(  # type: ignore[misc]
                obs,
                action,
                r,
                final_observation(next_obs, info),
                done,
                privileged_info_guard(agent, info),
            )
        obs = next_obs
        episode_start = done
        if callback is not None:
            result.wall_time_s = time.perf_counter() - t0
            result.oracle_expected_reward = oracle if has_oracle else None
            if callback(t, result._head(t + 1), info) is False:
                done_steps = t + 1
                break

    result.wall_time_s = time.perf_counter() - t0
    result.oracle_expected_reward = oracle if has_oracle else None
    return result._head(done_steps) if done_steps < num_steps else result
