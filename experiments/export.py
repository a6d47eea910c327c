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

The dataset id is checked before anything is created (``[namespace/]name-v<version>``, each part
letters, digits, ``-`` and ``_``: an id cannot leave Minari's datasets directory). The dataset is
written under a temporary hidden directory of the datasets root and moved into place at the end,
so an interrupted export (Ctrl-C, SIGTERM, even ``kill -9``) leaves no half-written dataset that
Minari cannot open or that blocks the next try; an existing dataset of the same id is refused
unless ``overwrite=True`` (``--overwrite``), and is replaced only once the new one is complete.

Needs the ``offline`` extra: ``pip install "driftrec[offline]"`` (Minari with HDF5 storage).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import socket
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from driftrec.agents.online import StepRecord, run_online
from driftrec.agents.registry import FirstStepChecked, build_agent
from driftrec.envs.scenarios import get_scenario
from driftrec.experiments.guard import check_interrupted

__all__ = ["export_minari", "check_dataset_id", "DEFAULT_INFO_KEYS", "OFFLINE_INSTALL_HINT"]

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


_ID_PART = r"[A-Za-z0-9_][A-Za-z0-9_-]*"
_DATASET_ID = re.compile(rf"(?:{_ID_PART}/)*{_ID_PART}-v(?P<version>[0-9]+)")
_TMP_PREFIX = ".driftrec-export-"


def check_dataset_id(dataset_id: Any) -> str:
    """``dataset_id`` if it is a Minari id that stays inside the datasets directory, else a
    ``ValueError`` naming it and what was expected (before anything is created)."""
    expected = (
        "expected '[namespace/]name-v<version>', each part letters, digits, '-' and '_', such "
        "as 'driftrec/AbruptShift/random-v0'"
    )
    if not isinstance(dataset_id, str):
        raise TypeError(f"'dataset_id' must be a string (got {dataset_id!r}); {expected}")
    if _DATASET_ID.fullmatch(dataset_id) is None:
        why = ""
        if re.fullmatch(rf"(?:{_ID_PART}/)*{_ID_PART}", dataset_id):
            why = ": it has no '-v<version>' at the end"
        elif ".." in dataset_id.split("/") or dataset_id.startswith("/"):
            why = ": it would leave the datasets directory"
        raise ValueError(f"'dataset_id' {dataset_id!r} is not a dataset id{why}; {expected}")
    return dataset_id


def _datasets_root(path: str | os.PathLike[str] | None) -> Path:
    """The Minari datasets root that ``path`` (or ``$MINARI_DATASETS_PATH``, or Minari's
    default) names, absolute."""
    if path is not None:
        return Path(os.path.abspath(path))
    env = os.environ.get("MINARI_DATASETS_PATH")
    return Path(os.path.abspath(env)) if env else Path.home() / ".minari" / "datasets"


def _remove_stale_temporaries(root: Path) -> None:
    """Delete temporary export directories whose process is gone (a ``kill -9`` leaves them)."""
    host = socket.gethostname()
    for entry in root.glob(f"{_TMP_PREFIX}*"):
        parts = entry.name[len(_TMP_PREFIX) :].split("-")
        if len(parts) < 3 or not parts[1].isdigit() or parts[0] != host.replace("-", "_"):
            continue
        try:
            os.kill(int(parts[1]), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            pass


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
    overwrite: bool = False,
    trust_checkpoint: bool = False,
) -> Any:
    """Roll out ``agent`` on ``scenario`` and write a Minari dataset (one episode per session).

    Args:
        dataset_id: Minari id, ``"driftrec/AbruptShift/random-v0"`` style.
        scenario: a scenario name (``driftrec scenarios``) or a scenario file.
        agent: the behaviour policy: an agent name (``driftrec agents``), a registered name,
            an import path ``package.module:NAME`` or an SB3 ``.zip`` (see
            :func:`driftrec.agents.registry.resolve_agent`).
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
        overwrite: replace an existing dataset of the same id (once the new one is complete).
        trust_checkpoint: allow a ``.zip`` agent to be loaded with SB3's ``load`` (unpickling).

    Returns:
        The ``minari.MinariDataset``.

    Raises:
        ValueError: a malformed ``dataset_id`` (nothing is created).
        FileExistsError: the dataset exists and ``overwrite`` is False (before any work).
    """
    check_dataset_id(dataset_id)
    minari = _import_minari()
    import gymnasium as gym

    if not isinstance(overwrite, bool):
        raise TypeError(f"'overwrite' must be a bool (got {overwrite!r})")
    root = _datasets_root(data_path)
    final = root / dataset_id
    if final.exists() and not overwrite:
        raise FileExistsError(
            f"dataset {dataset_id!r} already exists ({final}); pass --overwrite "
            "(overwrite=True) to replace it, or choose another --dataset-id"
        )

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
        trust_checkpoint=trust_checkpoint,
    )
    acting = built.agent if built.is_sb3 else FirstStepChecked(built)
    slots = _SlotEpisodes(num_envs, info_keys)
    count = 0

    def on_step(record: StepRecord) -> bool:
        nonlocal count
        check_interrupted()  # an interrupt swallowed on the way stops the export here
        slots.add(record)
        count += 1
        return count < steps

    run_online(acting, built.env, steps, learn=learn and built.learns, on_step=on_step)
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
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(root)
    host = socket.gethostname().replace("-", "_")
    tmp_root = Path(tempfile.mkdtemp(dir=root, prefix=f"{_TMP_PREFIX}{host}-{os.getpid()}-"))
    try:
        with _datasets_path(tmp_root), warnings.catch_warnings():
            # Minari recommends a code link and an e-mail; neither is known here
            warnings.filterwarnings("ignore", "`(code_permalink|author_email)` is set to None")
            minari.create_dataset_from_buffers(
                dataset_id,
                buffers,
                env=spec,
                eval_env=spec,
                algorithm_name=f"driftrec:{agent}" + ("" if learn else " (frozen)"),
                author=author or "driftrec export",
                description=(
                    f"{agent} on {sc.env_id}, {num_envs} users x {steps} global steps, seed "
                    f"{seed}, {'learning' if learn else 'not learning'}; one episode per user "
                    "session"
                ),
            )
        _move_into_place(tmp_root / dataset_id, final, root, dataset_id, overwrite)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    with _datasets_path(root):
        return minari.load_dataset(dataset_id)


def _move_into_place(
    built: Path, final: Path, root: Path, dataset_id: str, overwrite: bool
) -> None:
    """Rename the finished dataset over ``final`` (the old one, if any, only then deleted)."""
    from minari import namespace as namespaces

    namespace = dataset_id.rpartition("/")[0]
    if namespace:  # Minari lists a namespace only where it finds its metadata file
        with _datasets_path(root):
            if namespace not in namespaces.list_local_namespaces():
                with contextlib.suppress(ValueError):  # made meanwhile by another export
                    namespaces.create_namespace(namespace)
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        if not overwrite:  # appeared while this export ran
            raise FileExistsError(
                f"dataset {dataset_id!r} already exists ({final}); pass --overwrite "
                "(overwrite=True) to replace it, or choose another --dataset-id"
            )
        old = built.parent / f".old-{final.name}"
        os.replace(final, old)
    os.replace(built, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
