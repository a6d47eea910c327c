"""Gymnasium adapters over the batched core: a single-user env and a native vector env.

Both only convert types and hold a :class:`~driftrec.envs.core.BatchSimulator`; the dynamics live
in the core. ``DriftRecEnv`` is the core with one user slot, ``DriftRecVectorEnv`` the core with
``num_envs`` slots, so ``DriftRecVectorEnv(num_envs=B)`` reset with seed ``s`` equals ``B`` single
envs reset with seeds ``s, s + 1, ..., s + B - 1`` step for step (the convention of Gymnasium's
``SyncVectorEnv``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.typing import NDArray

from driftrec.envs.config import EnvConfig, check_slate_fits
from driftrec.envs.core import BatchSimulator, StepResult
from driftrec.envs.drift import DriftEvent
from driftrec.envs.rng import slot_seed

__all__ = ["DriftRecEnv", "DriftRecVectorEnv", "resolve_config", "action_space_for"]


def resolve_config(
    config: EnvConfig | None = None, scenario: str | None = None, **overrides: Any
) -> EnvConfig:
    """The config an env is built from: ``config`` or a named scenario's, plus overrides."""
    if config is not None and scenario is not None:
        raise ValueError("pass either 'config' or 'scenario', not both")
    if config is None:
        from driftrec.envs.scenarios import get_scenario

        config = get_scenario(scenario or "stationary").config
    elif not isinstance(config, EnvConfig):
        raise TypeError(f"'config' must be an EnvConfig (got {type(config).__name__})")
    return config.with_overrides(**overrides) if overrides else config


def action_space_for(num_items: int, slate_size: int) -> spaces.Space[Any]:
    """``Discrete(N)`` for single items, ``MultiDiscrete([N] * k)`` for slates of ``k``."""
    if slate_size == 1:
        return spaces.Discrete(num_items)
    return spaces.MultiDiscrete(np.full(slate_size, num_items, dtype=np.int64))


def _observation_space(sim: BatchSimulator) -> spaces.Space[Any]:
    if sim.config.session.observation == "dict":
        return sim.layout.dict_space()
    return sim.layout.flat_space()


def _one_seed(value: Any, what: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(
            f"{what} must be a non-negative integer (got {value!r} of type {type(value).__name__})"
        )
    if value < 0:
        raise ValueError(f"{what} must be a non-negative integer (got {value!r})")
    return int(value)  # numpy integers of any size become Python ints (Gymnasium wants those)


def check_seed(seed: Any, num: int | None = None) -> int | list[int] | None:
    """``reset``'s ``seed``: None, an integer >= 0 (Python or numpy, any size) or, for vector envs
    (``num`` slots), a sequence of ``num`` of them. Returns it with Python ints."""
    if seed is None:
        return None
    if num is not None and isinstance(seed, list | tuple | np.ndarray):
        seeds = [
            _one_seed(s, f"'seed' entry {i}")
            for i, s in enumerate(
                np.asarray(seed).tolist() if isinstance(seed, np.ndarray) else seed
            )
        ]
        if len(seeds) != num:
            raise ValueError(
                f"'seed' must be an int or a list of {num} ints (got {len(seeds)} seeds)"
            )
        return seeds
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, int | np.integer):
        want = "a non-negative integer" + ("" if num is None else f" or a list of {num} of them")
        raise TypeError(
            f"'seed' must be None or {want} (got {seed!r} of type {type(seed).__name__})"
        )
    return _one_seed(seed, "'seed'")


def _seed_list(
    seed: int | list[int] | None, num: int, rng: np.random.Generator, first_slot: int = 0
) -> list[np.random.SeedSequence]:
    """Per-slot seeds: slots ``first_slot ..`` of run ``seed`` for an int, slot 0 of each entry
    of a list, or slot 0 of fresh entropy for None (see :func:`~driftrec.envs.rng.slot_seed`)."""
    if seed is None:
        return [slot_seed(int(x), 0) for x in rng.integers(0, 2**63 - 1, size=num)]
    if isinstance(seed, int | np.integer):
        return [slot_seed(int(seed), first_slot + i) for i in range(num)]
    seeds = [int(s) for s in seed]
    if len(seeds) != num:
        raise ValueError(f"'seed' must be an int or a list of {num} ints (got {len(seeds)} seeds)")
    return [slot_seed(s, 0) for s in seeds]


class DriftRecEnv(gym.Env):
    """One simulated user at a time whose interests drift; the agent recommends items.

    ## Description
    A catalog of N items (text, topic mixture, quality, release step) and a stream of users with
    hidden interest vectors over K topics. Each step the agent recommends one item (or a slate);
    the user clicks at most one item under a multinomial-logit model with a no-click option and
    position bias, and its interests, boredom and patience evolve under the scenario's drift
    processes (``driftrec.envs.drift``).

    ## Action Space
    ``Discrete(N)`` (single item) or ``MultiDiscrete([N] * k)`` (slate). Recommending an item
    that is not yet released is a no-op that cannot be clicked; ``action_masks()`` gives the
    released items (for sb3-contrib's ``MaskablePPO``). A duplicate inside a slate counts once.

    ## Observation Space
    A flat ``Box(float32)`` of size ``3H + 2`` (``H = history_len``): the ids, feedback and
    valid mask of the last ``H`` impressions, session progress, and the global clock; see
    ``driftrec.envs.observation.ObservationLayout`` (``observation="dict"`` gives a flat Dict).
    The user's true interests are never observed.

    ## Rewards
    1 per click (``reward="click"``), or the clicked item's quality as watch time
    (``reward="engagement"``).

    ## Starting State
    A new user with interests ``mu(t) + spread * eps`` around the population mean at the current
    global step (or, with ``population_path``, a resampled fitted user moved by the population
    trend), zero boredom, full patience, an empty history.

    ## Episode End
    Terminated when the user's patience runs out (it leaves); truncated after ``max_steps``.
    Stepping again before ``reset`` raises ``RuntimeError`` (the user is gone; ``progress``
    never leaves ``[0, 1]``). The time limit is the env's own (``max_steps``), so no
    ``TimeLimit`` wrapper is needed or registered.

    ## Info
    Privileged, for evaluation only: ``interests`` (K,), ``click_prob`` and ``expected_reward`` of
    the shown action, ``clicked_item`` (-1 for none), ``drift_events`` (names), ``clock`` and, with
    ``oracle_info=True``, ``oracle_action`` and ``oracle_expected_reward`` (the best one-step
    choice; exact for click reward, greedy top-k for engagement slates).

    ## Arguments
    ``config`` (EnvConfig) or ``scenario`` (a name from ``driftrec.envs.list_scenarios()``), plus
    keyword overrides such as ``num_items=5000``, ``slate_size=10``, ``reward="engagement"`` or
    ``"users.patience"`` paths (``EnvConfig.with_overrides``). ``user_slot`` (int, defaults to
    0): which slot of a run this env's user stream is (see Seeding).

    Seeding: ``reset(seed=s)`` restarts the world (global clock 0, the user stream
    ``slot_seed(s, user_slot)``, i.e. child ``user_slot`` of ``SeedSequence(s)``, so this env
    equals slot ``user_slot`` of a vector env reset with ``s``);
    ``reset()`` without a seed draws the next user and keeps the clock running, so population
    trends, scheduled shifts and item releases unfold across episodes.

    ## Version History
    * v0: initial release.
    * v1: slot streams from ``SeedSequence(seed).spawn``; incremental interest updates saturate
      at the clip; stepping past the end raises; Satisfaction, PopulationDrift and the LongTerm
      scenarios.
    """

    metadata = {"render_modes": [], "render_fps": 1}

    def __init__(
        self,
        config: EnvConfig | None = None,
        *,
        scenario: str | None = None,
        render_mode: str | None = None,
        user_slot: int = 0,
        **overrides: Any,
    ) -> None:
        if render_mode is not None:
            raise ValueError(
                f"'render_mode' must be None: DriftRecEnv does not render (got {render_mode!r})"
            )
        if isinstance(user_slot, bool) or not isinstance(user_slot, int) or user_slot < 0:
            raise ValueError(f"'user_slot' must be an integer >= 0 (got {user_slot!r})")
        self.user_slot = user_slot
        self.config = resolve_config(config, scenario, **overrides)
        self.sim = BatchSimulator(self.config, num_users=1)
        check_slate_fits(self.sim.slate_size, self.sim.num_items)
        self.catalog = self.sim.catalog
        self.layout = self.sim.layout
        self.action_space = action_space_for(self.sim.num_items, self.sim.slate_size)
        self.observation_space = _observation_space(self.sim)
        self._dict_obs = self.config.session.observation == "dict"
        self._oracle = self.config.session.oracle_info
        self._finished = False

    def _obs(self) -> Any:
        flat = self.sim.state.obs[0].copy()  # type: ignore[union-attr]
        return self.layout.to_dict(flat) if self._dict_obs else flat

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start a session with a new user (see the class docstring for seeding)."""
        seed = check_seed(seed)  # type: ignore[assignment]
        super().reset(seed=seed)
        if options:
            raise ValueError(f"DriftRecEnv.reset takes no options (got {sorted(options)})")
        if seed is not None or self.sim.state is None:
            self.sim.seed(_seed_list(seed, 1, self.np_random, self.user_slot))
        else:
            self.sim.reset_users(np.zeros(1, dtype=np.int64))
        self._finished = False
        s = self.sim.state
        return self._obs(), {"interests": s.interest[0].copy(), "clock": s.clock}  # type: ignore[union-attr]

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Recommend ``action`` to the current user."""
        if self.sim.state is None:
            raise RuntimeError("Call reset before using step method.")
        if self._finished:
            raise RuntimeError(
                "the episode has ended (terminated or truncated): call reset before stepping again"
            )
        if not self._valid_action(action):
            raise ValueError(
                f"{action!r} ({type(action)}) invalid: expected an element of {self.action_space}"
            )
        r = self.sim.step(
            np.asarray(action, dtype=np.int64).reshape(1, -1),
            with_oracle=self._oracle,
            validate=False,
        )
        info: dict[str, Any] = {
            "interests": r.interest[0],
            "click_prob": float(r.click_prob[0]),
            "expected_reward": float(r.expected_reward[0]),
            "clicked_item": int(r.clicked_item[0]),
            "drift_events": DriftEvent.names(int(r.drift_events[0])),
            "clock": self.sim.state.clock,
        }
        if r.oracle is not None:
            act = r.oracle.action[0]
            info["oracle_action"] = int(act) if np.ndim(act) == 0 else act.copy()
            info["oracle_expected_reward"] = float(r.oracle.expected_reward[0])
        self._finished = bool(r.terminated[0] or r.truncated[0])
        return (
            self._obs(),
            float(r.reward[0]),
            bool(r.terminated[0]),
            bool(r.truncated[0]),
            info,
        )

    def _valid_action(self, action: Any) -> bool:
        if self.sim.slate_size == 1 and isinstance(action, int | np.integer):
            return 0 <= action < self.sim.num_items  # Discrete.contains, without its overhead
        return self.action_space.contains(action)

    def action_masks(self) -> NDArray[np.bool_]:
        """Released items now: ``(N,)`` bools, or ``(k * N,)`` for slates (MaskablePPO's format)."""
        released = self.sim.released()
        return np.tile(released, self.sim.slate_size) if self.sim.slate_size > 1 else released

    def oracle_action(self) -> Any:
        """The privileged best one-step action for the current user (before stepping)."""
        act = self.sim.oracle().action[0]
        return int(act) if np.ndim(act) == 0 else act


class DriftRecVectorEnv(VectorEnv):
    """``num_envs`` users stepped together by the batched core (a native Gymnasium vector env).

    Same dynamics, spaces and arguments as :class:`DriftRecEnv`. Autoreset happens in the same
    step (``AutoresetMode.SAME_STEP``): a finished user's last observation is in
    ``info["final_obs"]`` (masked by ``info["_final_obs"]``) and the returned observation is the
    next user's first. ``info`` holds arrays with a leading ``num_envs`` axis: ``interests``,
    ``click_prob``, ``expected_reward``, ``clicked_item``, ``drift_events`` (``DriftEvent`` bits)
    and, with ``oracle_info=True``, ``oracle_action`` and ``oracle_expected_reward``.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 64,
        config: EnvConfig | None = None,
        *,
        scenario: str | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"'render_mode' must be None (got {render_mode!r})")
        self.config = resolve_config(config, scenario, **overrides)
        self.sim = BatchSimulator(self.config, num_users=num_envs)
        check_slate_fits(self.sim.slate_size, self.sim.num_items)
        self.num_envs = num_envs
        self.catalog = self.sim.catalog
        self.layout = self.sim.layout
        self.single_action_space = action_space_for(self.sim.num_items, self.sim.slate_size)
        self.single_observation_space = _observation_space(self.sim)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._dict_obs = self.config.session.observation == "dict"
        self._oracle = self.config.session.oracle_info
        self._np_random: np.random.Generator | None = None

    def _obs(self, flat: NDArray[np.float32]) -> Any:
        return self.layout.to_dict(flat) if self._dict_obs else flat

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every slot. An int seed ``s`` gives slot ``i`` the stream ``slot_seed(s, i)``;
        a list gives slot ``i`` the stream of a single env seeded with its entry ``i``."""
        seed = check_seed(seed, self.num_envs)
        if options:
            raise ValueError(f"DriftRecVectorEnv.reset takes no options (got {sorted(options)})")
        if seed is not None or self._np_random is None:
            first = seed if isinstance(seed, int | np.integer) or seed is None else None
            self._np_random, _ = gym.utils.seeding.np_random(first)
        if seed is not None or self.sim.state is None:
            self.sim.seed(_seed_list(seed, self.num_envs, self._np_random))
        else:
            self.sim.reset_users(np.arange(self.num_envs))
        s = self.sim.state
        return self._obs(s.obs.copy()), {"interests": s.interest.copy()}  # type: ignore[union-attr]

    def step(
        self, actions: Any
    ) -> tuple[Any, NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_], dict[str, Any]]:
        """Step every slot; finished users are replaced in the same step."""
        if self.sim.state is None:
            raise RuntimeError("Call reset before using step method.")
        actions = np.asarray(actions)
        if actions.shape != self.action_space.shape:  # sizes alike, shapes not: never reshape
            raise ValueError(
                f"'actions' must have shape {self.action_space.shape} ({self.num_envs} users, "
                f"slate size {self.sim.slate_size}) (got shape {actions.shape})"
            )
        r = self.sim.step(actions, with_oracle=self._oracle)
        infos = self._infos(r)
        obs = self.sim.state.obs.copy()
        done = r.terminated | r.truncated
        if done.any():
            idx = np.flatnonzero(done)
            final = np.full(self.num_envs, None, dtype=object)
            last = obs[idx]  # one copy; each final obs is a row view of it
            for j, i in enumerate(idx.tolist()):  # only finished users
                final[i] = self._obs(last[j])
            infos["final_obs"] = final
            infos["_final_obs"] = done
            self.sim.reset_users(idx)
            obs[idx] = self.sim.state.obs[idx]
        return self._obs(obs), r.reward, r.terminated, r.truncated, infos

    def _infos(self, r: StepResult) -> dict[str, Any]:
        infos: dict[str, Any] = {
            "interests": r.interest,
            "click_prob": r.click_prob,
            "expected_reward": r.expected_reward,
            "clicked_item": r.clicked_item,
            "drift_events": r.drift_events,
        }
        if r.oracle is not None:
            infos["oracle_action"] = r.oracle.action
            infos["oracle_expected_reward"] = r.oracle.expected_reward
        return infos

    def action_masks(self) -> NDArray[np.bool_]:
        """``(num_envs, N)`` (or ``(num_envs, k * N)``) released-item masks."""
        released = self.sim.released()
        if self.sim.slate_size > 1:
            released = np.tile(released, self.sim.slate_size)
        return np.broadcast_to(released, (self.num_envs, released.size)).copy()
