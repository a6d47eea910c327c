"""Export logged data for offline RL: roll out a behaviour policy, write a Minari dataset.

:func:`export_minari` builds any registry agent (``driftrec agents``) on a scenario, lets it act
(and, by default, learn online, as in a grid run) in the batched vector env, and cuts the stream
into one episode per user session: a slot's episode starts when its user arrives and ends when
the user leaves (``terminated``) or the session hits its time limit (``truncated``). Sessions
still open when the rollout stops are kept, ending in ``truncated``. Episodes are written with
``minari.create_dataset_from_buffers`` (Minari's ``DataCollector`` wraps one single env and
reseeds it every episode, which would restart driftrec's world each time), in the order they
finish.

The dataset stores the Gymnasium spec of ``driftrec/<Scenario>-v1`` with the overrides as
keyword arguments, so ``minari.load_dataset(id).recover_environment()`` builds the same world
(same catalog and population; fresh users). Chosen ``info`` fields are kept per step
(``click_prob``, ``expected_reward``, ``clicked_item`` by default; the first entry of each
episode, at the user's arrival, is 0 or -1).

Needs the ``offline`` extra: ``pip install "driftrec[offline]"`` (Minari with HDF5 storage).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from driftrec.agents.online import StepRecord, run_online
from driftrec.agents.registry import build_agent
from driftrec.envs.scenarios import get_scenario

__all__ = ["export_minari", "DEFAULT_INFO_KEYS", "OFFLINE_INSTALL_HINT"]

DEFAULT_INFO_KEYS = ("click_prob", "expected_reward", "clicked_item")
OFFLINE_INSTALL_HINT = 'pip install "driftrec[offline]"   (Minari with HDF5 storage)'
_INFO_AT_ARRIVAL = {"clicked_item": -1}  # the value of an info field before the first step


def _import_minari() -> Any:
    try:
        import minari
    except ImportError as err:
        raise ImportError(
            f"driftrec export needs Minari ({err}). Install it with: {OFFLINE_INSTALL_HINT}"
        ) from None
    return minari


@contextlib.contextmanager
def _datasets_path(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Point Minari at ``path`` (its ``MINARI_DATASETS_PATH``) for the duration."""
    if path is None:
        yield
        return
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = os.fspath(os.path.abspath(path))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


class _SlotEpisodes:
    """Per-slot episode buffers cut from a vector env's stream (same-step autoreset)."""

    def __init__(self, num_envs: int, info_keys: Sequence[str]) -> None:
        self.info_keys = tuple(info_keys)
        self.open: list[dict[str, list[Any]] | None] = [None] * num_envs
        self.done: list[dict[str, list[Any]]] = []

    def _start(self, obs: np.ndarray) -> dict[str, list[Any]]:
        ep: dict[str, list[Any]] = {"observations": [obs], "actions": [], "rewards": []}
        ep["terminations"], ep["truncations"] = [], []
        for key in self.info_keys:
            ep["info/" + key] = [_INFO_AT_ARRIVAL.get(key, 0)]
        return ep

    def add(self, record: StepRecord) -> None:
        info = record.info
        missing = [k for k in self.info_keys if k not in info]
        if missing:
            raise ValueError(
                f"'info_keys' must name fields of the env's info (got {missing}; the info has "
                f"{sorted(k for k in info if not k.startswith('_'))})"
            )
        finished = info.get("_final_obs")
        for i in range(len(self.open)):
            ep = self.open[i]
            if ep is None:
                ep = self.open[i] = self._start(np.array(record.observation[i], copy=True))
            ep["actions"].append(np.array(record.actions[i], copy=True))
            ep["rewards"].append(float(record.reward[i]))
            ep["terminations"].append(bool(record.terminated[i]))
            ep["truncations"].append(bool(record.truncated[i]))
            for key in self.info_keys:
                ep["info/" + key].append(np.asarray(info[key][i]).item())
            if finished is not None and finished[i]:
                ep["observations"].append(np.array(info["final_obs"][i], copy=True))
                self.done.append(ep)
                self.open[i] = None  # the next record's observation starts the next user
            else:
                ep["observations"].append(np.array(record.next_observation[i], copy=True))

    def close(self) -> list[dict[str, list[Any]]]:
        """Every episode, the still-open ones ending in ``truncated``."""
        for ep in self.open:
            if ep is not None and ep["actions"]:
                ep["truncations"][-1] = True
                self.done.append(ep)
        self.open = [None] * len(self.open)
        return self.done


def export_minari(
    dataset_id: str,
    *,
    scenario: str = "AbruptShift",
    agent: str = "random",
    num_envs: int = 64,
    steps: int = 400,
    seed: int = 0,
    learn: bool = True,
    agent_kwargs: Mapping[str, Any] | None = None,
    env_overrides: Mapping[str, Any] | None = None,
    info_keys: Sequence[str] = DEFAULT_INFO_KEYS,
    data_path: str | os.PathLike[str] | None = None,
    text_encoder: Any = None,
    author: str | None = None,
) -> Any:
    """Roll out ``agent`` on ``scenario`` and write a Minari dataset (one episode per session).

    Args:
        dataset_id: Minari id, ``"driftrec/AbruptShift/random-v0"`` style.
        scenario: a scenario name (``driftrec scenarios``) or a scenario file.
        agent: a registry agent name (``driftrec agents``): the behaviour policy.
        num_envs: user slots stepped together.
        steps: global steps (each steps every slot once).
        seed: seeds the users and the agent.
        learn: let the agent learn online while it collects (False: act only).
        agent_kwargs: overrides for the agent (as in a grid's ``agent_kwargs``).
        env_overrides: env config overrides (``{"num_items": 200}``); stored in the dataset's
            env spec, so the recovered environment has them too.
        info_keys: ``info`` fields kept per step.
        data_path: Minari's dataset root (default: ``$MINARI_DATASETS_PATH`` or
            ``~/.minari/datasets``).
        text_encoder: a ``TextEncoderConfig`` for agents that read item texts.
        author: stored in the dataset's metadata.

    Returns:
        The ``minari.MinariDataset``.
    """
    minari = _import_minari()
    import gymnasium as gym

    for name, value in (("num_envs", num_envs), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"'{name}' must be an integer >= 1 (got {value!r})")
    sc = get_scenario(scenario)
    overrides = dict(env_overrides or {})
    env_config = sc.config.with_overrides(**overrides) if overrides else sc.config
    if env_config.session.observation != "flat":
        raise ValueError(f"'observation' must be 'flat' to export (got {overrides})")
    built = build_agent(
        agent,
        env_config,
        num_envs=num_envs,
        seed=seed,
        agent_kwargs=agent_kwargs,
        text_encoder=text_encoder,
    )
    slots = _SlotEpisodes(num_envs, info_keys)
    count = 0

    def on_step(record: StepRecord) -> bool:
        nonlocal count
        slots.add(record)
        count += 1
        return count < steps

    run_online(built.agent, built.env, steps, learn=learn, on_step=on_step)
    episodes = slots.close()

    from minari.data_collector import EpisodeBuffer

    buffers = []
    for n, ep in enumerate(episodes):
        infos = {key: np.asarray(ep["info/" + key]) for key in info_keys}  # (T + 1,) per field
        buffers.append(
            EpisodeBuffer(
                id=n,
                observations=np.stack(ep["observations"]).astype(np.float32),  # (T + 1, D)
                actions=np.stack(ep["actions"]).astype(np.int64),  # (T,) or (T, k)
                rewards=ep["rewards"],
                terminations=ep["terminations"],
                truncations=ep["truncations"],
                infos=infos,
            )
        )
    if sc.source is None:
        spec = gym.spec(sc.env_id)
    else:  # a scenario file: the spec names the file (Minari stores the spec as JSON)
        spec = gym.envs.registration.EnvSpec(
            id=sc.env_id,
            entry_point="driftrec.envs.gym_env:DriftRecEnv",
            vector_entry_point="driftrec.envs.gym_env:DriftRecVectorEnv",
            kwargs={"scenario": sc.source},
        )
    # the session limit as max_episode_steps too: d3rlpy.datasets.get_minari needs one
    spec = dataclasses.replace(
        spec,
        kwargs={**spec.kwargs, **overrides},
        max_episode_steps=env_config.session.max_steps,
    )
    with _datasets_path(data_path), warnings.catch_warnings():
        # Minari recommends a code link and an e-mail; neither is known here
        warnings.filterwarnings("ignore", "`(code_permalink|author_email)` is set to None")
        return minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=spec,
            eval_env=spec,
            algorithm_name=f"driftrec:{agent}" + ("" if learn else " (frozen)"),
            author=author or "driftrec export",
            description=(
                f"{agent} on {sc.env_id}, {num_envs} users x {steps} global steps, seed {seed}, "
                f"{'learning' if learn else 'not learning'}; one episode per user session"
            ),
        )
