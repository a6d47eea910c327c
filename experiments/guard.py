"""What keeps experiment results from being mixed, doubly written or orphaned.

* :func:`run_fingerprint`: a digest of everything that determines a run's results. ``done.json``
  records it; a finished run whose fingerprint differs from what is asked now is refused
  (:class:`SettingsChanged`) instead of being silently reused next to runs of other settings.
* :class:`DirectoryLock`: a lock file naming its holder (pid, host, start time). Two runners on
  one experiment (or one run) cannot both write: the second gets :class:`LockedError`. The lock is
  an ``flock``, so it is released by the kernel when its holder dies, even by ``kill -9``.
* :func:`exit_with_parent`: pool workers poll their parent and exit when it is gone, so a killed
  runner leaves no worker that keeps (or starts) writing runs.
* :func:`catch_interrupts`: Ctrl-C (SIGINT) and SIGTERM raise ``KeyboardInterrupt`` in the main
  thread, whatever disposition the process inherited (``cmd &`` in a script starts it with
  SIGINT ignored), and the interrupt is *sticky*: an interrupt that some library swallows (one
  raised inside a ``__del__``, a weakref callback or C code that clears errors) is raised again
  at the next :func:`check_interrupted`, and at the latest when the block ends. An interrupt
  that arrives while a module is being imported waits for the import to finish: raised inside
  the initialisation of a C extension (torch takes seconds to import), it could leave the module
  half-made, turn into a ``SystemError`` or be lost (the grid then ran to its end, exit 0).
* :func:`record_outputs` / :func:`clear_recorded`: every entry driftrec creates directly inside an
  experiment directory (run directories, ``experiment.json``, ``report.md``, figures) is listed in
  the directory's manifest (:data:`MANIFEST_NAME`) before it is written; ``--restart`` deletes
  only what the manifest lists, so files of the user's that share the directory are never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "FINGERPRINT_KEYS",
    "SettingsChanged",
    "LockedError",
    "DirectoryLock",
    "run_fingerprint",
    "fingerprint_fields",
    "describe_changes",
    "exit_with_parent",
    "catch_interrupts",
    "deferred_interrupts",
    "check_interrupted",
    "interrupted",
    "reinstall_handlers",
    "MANIFEST_NAME",
    "record_outputs",
    "recorded_outputs",
    "clear_recorded",
    "remove_recorded",
]

FINGERPRINT_KEYS = (
    "driftrec_version",
    "scenario",
    "agent",
    "agent_kwargs",
    "seed",
    "num_envs",
    "steps",
    "log_every",
    "frozen_at",
    "cold_start_window",
    "track_users",
    "text_model",
    "checkpoint",
    "device",
    "env_config",
    "catalog_fingerprint",
)
"""The run config fields that determine a run's results (not: name, out_dir, workers, the rest
of the grid, torch_threads). ``driftrec_version`` is ``driftrec.__version__``: bump it whenever a
change alters what a run produces (a model, the simulator, a metric), so that finished runs of
the older code are refused instead of being mixed with new ones."""

OPTIONAL_FINGERPRINT_KEYS = ("text_adapter_sha256", "agent_source", "finetune_settings")
"""Covered only when present, so runs made before these fields existed keep their fingerprint.
``agent_source`` (user agents only) is the entry point and the SHA-256 of the agent's source
file (or of its ``.zip``): a run of a changed agent is refused like one of changed settings.
``finetune_settings`` (runs that fine-tune their text encoder) are the resolved settings."""


class SettingsChanged(ValueError):
    """A finished run was made with other settings than the ones asked for now."""


class LockedError(RuntimeError):
    """Another live process holds the lock of an experiment or run."""


def fingerprint_fields(run_config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a run config that :func:`run_fingerprint` covers."""
    fields = {k: run_config.get(k) for k in FINGERPRINT_KEYS}
    fields.update({k: run_config[k] for k in OPTIONAL_FINGERPRINT_KEYS if k in run_config})
    return fields


def run_fingerprint(run_config: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of :func:`fingerprint_fields` of ``run_config``."""
    from driftrec.experiments.io import strict_json

    text = json.dumps(
        strict_json(fingerprint_fields(run_config)), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _change(key: str, old: Any, new: Any) -> str:
    if key == "agent_source.sha256":  # a user agent's source file (or .zip): say so, briefly
        short = [v[:12] if isinstance(v, str) else v for v in (old, new)]
        return f"the agent's code changed (sha256 {short[0]!r} -> {short[1]!r})"
    return f"{key}: {old!r} -> {new!r}"


def describe_changes(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 3) -> str:
    """``"steps: 100 -> 200, env_config.num_items: ..."`` for the fingerprinted fields."""
    from driftrec.experiments.io import strict_json

    a = _flatten(strict_json(fingerprint_fields(old)))
    b = _flatten(strict_json(fingerprint_fields(new)))
    diffs = [
        _change(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
    ]
    if not diffs:
        return "settings differ"
    more = f" and {len(diffs) - limit} more" if len(diffs) > limit else ""
    return ", ".join(diffs[:limit]) + more


class DirectoryLock:
    """An exclusive lock on ``path`` (a file) that names its holder.

    Acquire with ``with DirectoryLock(path, what="experiment runs/x"):``. If a live process holds
    it, :class:`LockedError` says which (pid, host, since when). A lock left by a dead process is
    free again (``flock`` is released with its holder). On platforms without ``fcntl`` the lock
    file is written for information only.
    """

    def __init__(self, path: str | os.PathLike[str], *, what: str) -> None:
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on the supported Linux/macOS
            fcntl = None  # type: ignore[assignment]
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if fcntl is None:
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = self._holder(fd)
                os.close(fd)
                raise LockedError(
                    f"{self.what} is in use by another driftrec ({holder}); wait for it to finish "
                    f"or stop it (its lock file is {self.path})"
                ) from None
            # the previous holder may have removed the file between our open and flock
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(holder) + "\n").encode())
        self._fd = fd

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            data = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
            return f"pid {data['pid']} on {data['host']}, since {data['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "holder unknown"

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # before unlocking: a waiter re-checks the inode
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> DirectoryLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def exit_with_parent(poll_s: float = 0.5) -> None:
    """In a worker process: exit at once (no cleanup) when the parent process is gone.

    Without it, a runner killed by SIGTERM or ``kill -9`` leaves pool workers that finish their
    run and even take new ones. The worker also ignores SIGINT: Ctrl-C reaches every process of
    the terminal's group, and the parent alone decides what stops (it terminates the workers).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # tqdm makes a multiprocessing lock (a named semaphore, registered with the resource
    # tracker) for its first bar or write; a terminated worker never unregisters it, and the
    # tracker then warns of "leaked semaphore objects" at exit. A thread lock does here.
    with contextlib.suppress(ImportError):
        from tqdm import tqdm

        tqdm.set_lock(threading.RLock())
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="driftrec-parent-watch", daemon=True).start()


class _Interrupts:
    """The interrupt state of this process (main thread)."""

    signum: int | None = None  # the first signal received inside catch_interrupts (sticky)
    depth = 0  # nesting of catch_interrupts
    deferred = 0  # > 0: the handler only records; the caller polls check_interrupted
    resend: threading.Timer | None = None


_STATE = _Interrupts()
_RESEND_S = 0.05
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))


def _importing(frame: Any) -> bool:
    """Whether the interrupted code runs inside an ``import`` statement."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _resend(signum: int) -> None:
    _STATE.resend = None
    with contextlib.suppress(OSError):
        os.kill(os.getpid(), signum)


def _on_signal(signum: int, frame: Any) -> None:
    if _STATE.signum is None:
        _STATE.signum = signum
    if _STATE.deferred:
        return
    if _importing(frame):  # raise once the import is done: deliver the signal again soon
        if _STATE.resend is None:
            _STATE.resend = threading.Timer(_RESEND_S, _resend, (signum,))
            _STATE.resend.daemon = True
            _STATE.resend.start()
        return
    raise KeyboardInterrupt(f"signal {signum}")


def interrupted() -> int | None:
    """The signal number of the interrupt received inside the :func:`catch_interrupts` block
    that is running, if any (None outside such a block)."""
    return _STATE.signum if _STATE.depth > 0 else None


def check_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if an interrupt was received inside the running
    :func:`catch_interrupts` block (even one that was swallowed); outside one, do nothing.

    Cheap (two attribute reads): call it wherever work can stop, e.g. once per step.
    """
    if _STATE.signum is not None and _STATE.depth > 0 and not _STATE.deferred:
        raise KeyboardInterrupt(f"signal {_STATE.signum}")


@contextlib.contextmanager
def catch_interrupts() -> Iterator[None]:
    """Inside the block, SIGINT and SIGTERM raise ``KeyboardInterrupt`` (main thread only).

    The handlers are installed whatever the inherited disposition: a grid started with ``cmd &``
    from a script inherits SIGINT as ignored, yet ``kill -INT`` (or Ctrl-C to the script's
    process group) is meant to stop it, as it stops the local process pool. The interrupt is
    recorded (:func:`interrupted`) and raised again by :func:`check_interrupted` and when the
    block ends, if something swallowed it. The previous handlers come back afterwards; nested
    blocks share the state of the outermost one.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _STATE.depth == 0:
        _STATE.signum = None
    previous = {sig: signal.signal(sig, _on_signal) for sig in _SIGNALS}
    _STATE.depth += 1
    try:
        yield
        if _STATE.signum is not None:  # swallowed on the way: the block must not look finished
            raise KeyboardInterrupt(f"signal {_STATE.signum}")
    finally:
        _STATE.depth -= 1
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if _STATE.depth == 0 and _STATE.resend is not None:
            _STATE.resend.cancel()
            _STATE.resend = None


def reinstall_handlers() -> None:
    """Put driftrec's handlers back inside :func:`catch_interrupts` after a library replaced
    them (``ray.init`` installs a SIGTERM handler that exits with status 15)."""
    if _STATE.depth > 0 and threading.current_thread() is threading.main_thread():
        for sig in _SIGNALS:
            signal.signal(sig, _on_signal)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Inside the block, an interrupt is only recorded; the code polls :func:`interrupted`.

    For code that must not be broken at an arbitrary point: waiting on ``concurrent.futures``
    (an interrupt raised while it holds a future's lock leaves the lock held), stopping workers,
    cancelling Ray tasks. :func:`check_interrupted` raises after the block.
    """
    _STATE.deferred += 1
    try:
        yield
    finally:
        _STATE.deferred -= 1


MANIFEST_NAME = ".driftrec-manifest.json"
"""The file in an experiment (or report) directory that lists what driftrec created there."""


def _manifest_lock(directory: Path) -> int:
    """An exclusive ``flock`` on ``directory`` itself, so that read-modify-write of its manifest
    is atomic between processes (no lock file is left behind); returns the fd to close."""
    import fcntl

    fd = os.open(directory, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _is_child_name(name: Any) -> bool:
    """True for a plain entry name inside one directory (no separator, not ``.``/``..``)."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
    )


def recorded_outputs(directory: str | os.PathLike[str]) -> list[str] | None:
    """The entry names the manifest of ``directory`` lists, or None when it has no manifest.

    Raises:
        ValueError: the manifest exists but is not what driftrec writes (names the file).
    """
    path = Path(directory) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(
            f"{path} cannot be read ({exc}); expected the JSON list of outputs driftrec writes "
            "(delete the experiment's files yourself or pick another --name)"
        ) from None
    names = data.get("outputs") if isinstance(data, dict) else None
    if not isinstance(names, list) or not all(_is_child_name(n) for n in names):
        raise ValueError(
            f'{path} is not a driftrec manifest (expected {{"outputs": [entry names]}}); '
            "delete the experiment's files yourself or pick another --name"
        )
    return list(names)


def record_outputs(directory: str | os.PathLike[str], names: Iterable[str]) -> None:
    """Add entry ``names`` (directly inside ``directory``) to its manifest, before writing them.

    Recording first means an interrupted write leaves nothing that a restart would not know of.
    """
    from driftrec.experiments.io import atomic_write_json

    directory = Path(directory)
    new = list(names)
    for name in new:
        if not _is_child_name(name):
            raise ValueError(f"output name {name!r} is not a plain entry name inside {directory}")
    directory.mkdir(parents=True, exist_ok=True)
    fd = _manifest_lock(directory)
    try:
        old = recorded_outputs(directory) or []
        merged = old + [n for n in dict.fromkeys(new) if n not in old]
        if merged != old or not (directory / MANIFEST_NAME).exists():
            atomic_write_json(
                directory / MANIFEST_NAME,
                {"written_by": "driftrec", "outputs": merged},
            )
    finally:
        os.close(fd)


def _is_run_dir(path: Path) -> bool:
    """True when ``path`` holds a driftrec run config (``config.json`` with a run's fields)."""
    try:
        run = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(run, dict) and {"env_config", "agent", "seed"} <= run.keys()


def remove_recorded(path: str | os.PathLike[str]) -> None:
    """Delete the run directory ``path`` if driftrec made it; refuse to touch anything else.

    Made by driftrec: listed in its parent's manifest, or (older driftrec) holding a run's
    ``config.json``, or empty.

    Raises:
        ValueError: ``path`` exists and is not driftrec's (names it and what to do).
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    listed = recorded_outputs(path.parent) or []
    ours = path.name in listed or (
        path.is_dir() and not path.is_symlink() and (_is_run_dir(path) or not any(path.iterdir()))
    )
    if not ours:
        raise ValueError(
            f"{path} exists and was not written by driftrec; move it away or pick another --name "
            "(driftrec deletes only what it created)"
        )
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)


def _legacy_outputs(directory: Path) -> list[str]:
    """What an experiment directory made before manifests existed holds of driftrec's own.

    Only when ``experiment.json`` there is a driftrec experiment config: the run directories whose
    ``config.json`` is a driftrec run config, plus ``experiment.json`` and ``report.md``.
    """
    try:
        exp = json.loads((directory / "experiment.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return []
    if not (isinstance(exp, dict) and {"scenarios", "agents", "seeds"} <= exp.keys()):
        return []
    names = ["experiment.json", "report.md"]
    for entry in sorted(directory.iterdir()):
        if entry.is_dir() and not entry.is_symlink() and _is_run_dir(entry):
            names.append(entry.name)
    return names


def clear_recorded(directory: str | os.PathLike[str]) -> list[str]:
    """Delete what driftrec created in ``directory`` (its manifest's entries); return the names.

    Nothing else is touched: a file or folder of the user's in the same directory stays. A
    directory made by an older driftrec (no manifest) is cleared of its recognisable run
    directories, ``experiment.json`` and ``report.md`` only. Symbolic links are removed as links,
    never followed.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    names = recorded_outputs(directory)
    if names is None:
        names = _legacy_outputs(directory)
    removed = []
    for name in names:
        path = directory / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        else:
            continue
        removed.append(name)
    manifest = directory / MANIFEST_NAME
    if manifest.exists():
        from driftrec.experiments.io import atomic_write_json

        atomic_write_json(manifest, {"written_by": "driftrec", "outputs": []})
    return removed
