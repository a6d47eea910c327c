"""Adapters that turn what a user already has into a :class:`~driftrec.agents.base.Recommender`.

* :class:`FunctionAgent`: a plain policy function ``obs -> actions`` (the batch of ``(B, D)``
  observations in, ``(B,)`` or ``(B, k)`` item ids out). It does not learn.
* :func:`load_sb3_zip`: a stable-baselines3 model saved as a ``.zip`` (any algorithm that
  :func:`sb3_algorithm_of` recognises), loaded onto the env it will act in.
* :func:`check_actions`: what every user agent's ``predict`` must return, checked on the first
  step so that a wrong shape, dtype or item id is one line naming the agent.

Loading a ``.zip`` with SB3's own ``load`` unpickles Python objects stored in it, which can run
arbitrary code. driftrec never does that implicitly: :func:`load_sb3_zip` refuses unless the
caller passes ``trust=True`` (``--trust-checkpoint`` on the command line), and then warns.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FunctionAgent",
    "check_actions",
    "file_sha256",
    "load_sb3_zip",
    "sb3_algorithm_of",
    "TRUST_HINT",
    "UntrustedCheckpointError",
]

TRUST_HINT = "--trust-checkpoint (trust_checkpoint=True in Python)"
"""How a user vouches for a ``.zip`` checkpoint (named in the refusal)."""


class UntrustedCheckpointError(ValueError):
    """A ``.zip`` checkpoint would have to be unpickled and the caller did not trust it."""


class FunctionAgent:
    """A policy function ``fn(obs) -> actions`` as a :class:`~driftrec.agents.base.Recommender`.

    Args:
        fn: called with the ``(B, D)`` observations of every user slot; returns ``(B,)`` item
            ids (``(B, k)`` for slates). It is called once per step and never learns.
        name: the label in logs and reports (default: the function's ``__qualname__``).
    """

    privileged = False

    def __init__(self, fn: Callable[[Any], Any], name: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"'fn' must be callable (got {fn!r})")
        self.fn = fn
        self.name = name if name is not None else getattr(fn, "__qualname__", repr(fn))

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: NDArray[np.bool_] | None = None,
        deterministic: bool = False,
    ) -> tuple[NDArray[np.int64], None]:
        """``(fn(observation), None)``; the other arguments are ignored."""
        return np.asarray(self.fn(observation)), None

    def __repr__(self) -> str:
        return f"FunctionAgent({self.name!r})"


def check_actions(label: str, out: Any, action_space: Any, num_envs: int) -> None:
    """Raise one ``ValueError`` naming ``label`` unless ``out`` is a valid ``predict`` result.

    Args:
        label: the agent as the user named it (``"mymod:MyAgent"``).
        out: what ``predict(obs)`` returned: ``(actions, state)`` as in stable-baselines3.
        action_space: the env's single-user action space (``Discrete(N)`` or
            ``MultiDiscrete([N] * k)``).
        num_envs: users ``B`` in the batch.
    """
    if not isinstance(out, tuple) or len(out) != 2:
        got = (
            f"a tuple of {len(out)}"
            if isinstance(out, tuple)
            else f"{type(out).__name__}{_shape_text(out)}"
        )
        raise ValueError(
            f"agent {label!r}: predict must return (actions, state) as stable-baselines3's "
            f"predict does (got {got}); return (actions, None) for a stateless agent"
        )
    actions = np.asarray(out[0])
    space_shape = tuple(getattr(action_space, "shape", ()) or ())
    expected = (num_envs, *space_shape)
    per_user = (
        "one item id per user"
        if not space_shape
        else f"a slate of {space_shape[0]} item ids per user"
    )
    if actions.shape != expected:
        raise ValueError(
            f"agent {label!r}: predict returned actions of shape {actions.shape}; expected "
            f"{expected} ({per_user} for the {num_envs} users of the batch, action space "
            f"{action_space})"
        )
    if actions.dtype.kind not in "iu":
        raise ValueError(
            f"agent {label!r}: predict returned actions of dtype {actions.dtype}; expected "
            "integer item ids (e.g. np.int64)"
        )
    num_items = int(np.max(getattr(action_space, "nvec", getattr(action_space, "n", 0))))
    if actions.size and (actions.min() < 0 or actions.max() >= num_items):
        bad = actions[(actions < 0) | (actions >= num_items)].ravel()[0]
        raise ValueError(
            f"agent {label!r}: predict returned item id {int(bad)}; expected ids in "
            f"[0, {num_items - 1}] (the catalog has {num_items} items)"
        )


def _shape_text(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return f" of shape {tuple(shape)}" if shape is not None else ""


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_ALGORITHMS = ("PPO", "A2C", "DQN", "MaskablePPO")


def _zip_data(path: Path) -> dict[str, Any]:
    """The JSON ``data`` member of an SB3 ``.zip`` (read as text: nothing is unpickled)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "data" not in names or "policy.pth" not in names:
                raise ValueError(
                    f"{path}: not a stable-baselines3 checkpoint (it has no 'data' and "
                    f"'policy.pth' members; members: {', '.join(names[:6]) or 'none'})"
                )
            data = json.loads(archive.read("data").decode("utf-8"))
    except zipfile.BadZipFile:
        raise ValueError(
            f"{path}: not a zip file; expected a stable-baselines3 model saved with model.save()"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(
            f"{path}: its 'data' member is not JSON; expected a stable-baselines3 checkpoint"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: its 'data' member is not a JSON object")
    return data


def sb3_algorithm_of(path: str | os.PathLike[str]) -> str:
    """Which algorithm saved the SB3 ``.zip`` at ``path`` (``"PPO"``, ``"A2C"``, ``"DQN"`` or
    ``"MaskablePPO"``), read from its JSON ``data`` without unpickling anything.

    SB3 stores no algorithm name, so it is told from the saved hyperparameters: DQN has an
    exploration schedule, PPO a clip range (MaskablePPO: PPO with sb3-contrib's maskable
    policy), A2C neither.
    """
    path = Path(path)
    data = _zip_data(path)
    policy = data.get("policy_class")
    policy_text = json.dumps(policy) if policy is not None else ""
    if "exploration_initial_eps" in data or "target_update_interval" in data:
        return "DQN"
    if "clip_range" in data:
        return "MaskablePPO" if "Maskable" in policy_text else "PPO"
    if "gae_lambda" in data and "normalize_advantage" in data:
        return "A2C"
    raise ValueError(
        f"{path}: cannot tell which stable-baselines3 algorithm saved it (supported: "
        f"{', '.join(_ALGORITHMS)})"
    )


def _algorithm_class(name: str) -> Any:
    if name == "MaskablePPO":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    import stable_baselines3

    return getattr(stable_baselines3, name)


def load_sb3_zip(
    path: str | os.PathLike[str], env: Any, *, trust: bool = False, device: str = "cpu"
) -> Any:
    """Load the SB3 model at ``path`` onto ``env`` (a ``DriftRecSB3VecEnv``).

    Args:
        path: a ``.zip`` written by ``model.save(...)``.
        env: the env the model will act (and keep learning) in; its spaces must equal the ones
            the model was trained with.
        trust: load with SB3's ``load``, which unpickles objects stored in the file (it can run
            arbitrary code: only for files from a source you trust). Without it the load is
            refused with :class:`UntrustedCheckpointError`.
        device: torch device.

    Raises:
        UntrustedCheckpointError: ``trust`` is False.
        ValueError: the file is missing, not an SB3 checkpoint, or made for other spaces.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"agent {str(path)!r}: the SB3 checkpoint {path} does not exist")
    algorithm = sb3_algorithm_of(path)  # a non-SB3 file is refused before any unpickling
    if not trust:
        raise UntrustedCheckpointError(
            f"agent {str(path)!r}: loading this stable-baselines3 .zip would unpickle Python "
            "objects stored in it, which can run arbitrary code, and driftrec never does that "
            f"implicitly; if you trust the file's source, pass {TRUST_HINT}"
        )
    warnings.warn(
        f"loading {path} with stable-baselines3's load(), which unpickles it: trusted on "
        "request (--trust-checkpoint)",
        UserWarning,
        stacklevel=2,
    )
    import driftrec.agents.sb3_policy  # noqa: F401  (registers the attention policy's name)

    cls = _algorithm_class(algorithm)
    try:
        return cls.load(path, env=env, device=device)
    except Exception as exc:  # zipfile, pickle, torch and SB3 all raise their own errors
        text = " ".join(str(exc).split())
        if "spaces do not match" in text:
            text = (
                f"it was trained for other observation/action spaces than this world's "
                f"(observation {env.observation_space.shape}, action {env.action_space})"
            )
        elif len(text) > 200:
            text = text[:200] + "..."
        raise ValueError(
            f"agent {str(path)!r}: cannot be loaded as a {algorithm} checkpoint "
            f"({type(exc).__name__}: {text})"
        ) from None
