"""Run experiment grids on a Ray cluster: one plain Ray task per run.

:func:`run_grid_ray` is :func:`driftrec.experiments.runner.run_grid` with Ray tasks in place of
the local process pool. Each task is the same single-run function (``run_one``), so a run
writes the same ``<out_dir>/<name>/<scenario>__<agent>__<seed>/`` files, atomically, with
``done.json`` last; finished runs are skipped (resume) and unfinished ones redone from scratch.
Around the tasks, the driver does what the local backend does
(:func:`~driftrec.experiments.runner.open_grid`): it takes the experiment's lock (a local grid
and a Ray grid on the same ``--name`` cannot both run), checks finished runs against the
settings (``restart=True`` deletes them first) and treats Ctrl-C and SIGTERM alike: the pending
tasks are cancelled, finished runs are kept, and ``KeyboardInterrupt`` is raised (the CLI
exits with code 130). Ray Tune is not used: it moves each trial's working directory and costs
about a minute per trial on a small machine, where a plain task costs about a second and a half.

* Without an address a new local Ray is started (``ray.init(address="local")``): a cluster
  that ``RAY_ADDRESS`` or Ray's record of the last cluster (``/tmp/ray/ray_current_cluster``)
  names is never joined by accident. With an address (``"auto"``, ``"host:port"``), the
  cluster must answer within ``connect_timeout_s``: the address is resolved and its port
  probed first, so a stale record or a stopped cluster is one clear error instead of Ray's
  silent retries. What is started or joined is printed.
* The output directory is made absolute on the driver, so every worker writes to the same
  place. On a cluster it must be on storage that every node mounts at the same path (NFS, a
  shared volume).
* Item-text embeddings are encoded once on the driver before any task starts
  (``warm_text_cache``); tasks read them from the cache (``$DRIFTREC_CACHE``, else
  ``~/.cache/driftrec``). On a cluster, point ``DRIFTREC_CACHE`` at shared storage on the driver;
  it is forwarded to the tasks.
* Each task asks Ray for one CPU (``num_cpus=1``), and runs with one torch and one BLAS thread,
  as the local runner's workers do.

Needs the ``ray`` extra: ``pip install "driftrec[ray]"``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from driftrec.agents.registry import SB3_AGENTS, is_builtin
from driftrec.envs.scenarios import scenario_snapshot
from driftrec.experiments.config import ExperimentConfig, split_agent_name
from driftrec.experiments.guard import deferred_interrupts, interrupted, reinstall_handlers
from driftrec.experiments.runner import _registered, _say, _worker, open_grid

__all__ = ["run_grid_ray", "RAY_INSTALL_HINT", "CONNECT_TIMEOUT_S"]

RAY_INSTALL_HINT = 'pip install "driftrec[ray]"'
CONNECT_TIMEOUT_S = 60.0
"""How long starting or joining Ray may take before it is an error."""
_FORWARDED_ENV = ("DRIFTREC_CACHE", "HF_HUB_OFFLINE", "DRIFTREC_MOVIELENS")
_CANCEL_WAIT_S = 30.0


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            f"the ray backend needs Ray ({err}). Install it with: {RAY_INSTALL_HINT}"
        ) from None
    return ray


def _resolve(address: str) -> tuple[str, str]:
    """``(host:port, where it came from)`` of the cluster ``address`` names (``"auto"``
    reads ``RAY_ADDRESS`` or Ray's record of the last cluster started on this machine)."""
    from ray._private import services

    if os.environ.get("RAY_ADDRESS") and address == "auto":
        source = f" (--address auto: from RAY_ADDRESS={os.environ['RAY_ADDRESS']!r})"
    elif address == "auto":
        source = " (--address auto: Ray's record of the last cluster on this machine)"
    else:
        source = ""
    try:
        target = services.canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError) as exc:
        raise ConnectionError(
            f"--address {address!r}: no Ray cluster to join ({' '.join(str(exc).split())}); "
            "start one with 'ray start --head', or leave out --address to start a local Ray"
        ) from None
    if target is None:  # pragma: no cover - "auto" either resolves or raises
        raise ConnectionError(f"--address {address!r} names no Ray cluster")
    return target, source


def _probe(target: str, source: str, timeout_s: float) -> None:
    """Raise a clear ``ConnectionError`` unless something listens at ``target``."""
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ConnectionError(
            f"no Ray cluster answers at {target}{source}: {why}. Is the cluster running "
            "('ray status')? A record left by a cluster that was stopped names it still; leave "
            "out --address to start a local Ray"
        ) from None


class _QuietThreadWarning(logging.Filter):
    """Drop Ray's note that it sets no SIGTERM handler outside the main thread (on purpose:
    the driver keeps driftrec's, so SIGTERM stops the grid like Ctrl-C)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def _start_local(ray: Any, kwargs: dict[str, Any], what: str) -> None:
    """``ray.init`` of a new local Ray, in the main thread: the processes it starts die with the
    thread that started them. Its SIGTERM handler (exit status 15) is replaced by driftrec's."""
    try:
        ray.init(**kwargs)
    except SystemExit as exc:  # Ray's SIGTERM handler, while it was starting
        if exc.code == signal.SIGTERM:
            raise KeyboardInterrupt(f"signal {signal.SIGTERM}") from None
        raise
    except (RuntimeError, OSError, ValueError) as exc:
        raise ConnectionError(
            f"Ray did not start ({what}): {type(exc).__name__}: {' '.join(str(exc).split())}"
        ) from None
    finally:
        reinstall_handlers()


def _join(ray: Any, kwargs: dict[str, Any], what: str, timeout_s: float) -> None:
    """``ray.init(**kwargs)`` joining a cluster, that an interrupt stops at once and that gives up
    after ``timeout_s`` with one clear error (Ray itself retries an unreachable cluster for ever,
    in C++, where no signal handler runs)."""
    box: dict[str, BaseException] = {}

    def init() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as exc:  # handed to the driver's thread
            box["error"] = exc

    log = logging.getLogger("ray._private.worker")
    quiet = _QuietThreadWarning()
    log.addFilter(quiet)
    thread = threading.Thread(target=init, name="driftrec-ray-init", daemon=True)
    deadline = time.monotonic() + timeout_s
    try:
        thread.start()
        while thread.is_alive():
            thread.join(0.1)
            if interrupted() is not None:
                raise KeyboardInterrupt("interrupted while Ray was starting")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no answer from {what} within {timeout_s:g} s; nothing was run. "
                    "Check the cluster ('ray status'), or raise the limit (--ray-timeout)"
                )
    finally:
        log.removeFilter(quiet)
    if "error" in box:
        exc = box["error"]
        raise ConnectionError(
            f"Ray did not start ({what}): {type(exc).__name__}: {' '.join(str(exc).split())}"
        ) from None


def _connect(
    ray: Any, cfg: ExperimentConfig, address: str | None, num_cpus: int | None, timeout_s: float
) -> None:
    env_vars = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ}
    env_vars.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if not all(is_builtin(split_agent_name(a)[0]) for a in cfg.all_agents):
        # users' modules: importable in the tasks as here (PYTHONPATH, working directory)
        paths = [os.getcwd(), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        env_vars["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in paths)
    kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env_vars}}
    if address is None or address == "local":
        cpus = num_cpus if num_cpus is not None else os.cpu_count()
        what = f"a new local Ray with {cpus} CPUs"
        kwargs.update(address="local", num_cpus=num_cpus, include_dashboard=False)
        _say(f"ray: starting {what}")
        _start_local(ray, kwargs, what)
        return
    if "://" in address:  # Ray Client: Ray connects, within the same time limit
        what = f"the Ray cluster at {address}"
        kwargs.update(address=address)
        _say(f"ray: connecting to {what}")
    else:
        target, source = _resolve(address)
        what = f"the Ray cluster at {target}{source}"
        _probe(target, source, min(timeout_s, 10.0))
        kwargs.update(address=address)  # as given: Ray enables token auth only for "auto"
        _say(f"ray: connecting to {what}")
    _join(ray, kwargs, what, timeout_s)


def _result(ray: Any, ref: Any) -> Path:
    """A finished task's run directory; a run's own error is raised as itself (one line in the
    CLI), not as Ray's wrapper with the remote traceback."""
    try:
        return Path(ray.get(ref))
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise


def run_grid_ray(
    cfg: ExperimentConfig,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
    restart: bool = False,
    on_run_done: Callable[[Path], None] | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> list[Path]:
    """Run every (scenario, agent, seed) of ``cfg`` not yet done as Ray tasks.

    Args:
        cfg: the grid. ``workers`` is ignored: Ray schedules as many tasks as it has CPUs.
        address: a running Ray cluster (``"auto"`` from one of its nodes, or the head's
            ``"host:6379"``); None (or ``"local"``) starts a new local Ray. A Ray already
            initialised in this process is used as it is.
        num_cpus: CPUs of a local Ray started here (None: all of this machine's).
        progress: show a progress bar over runs (and over the item-text encoding).
        restart: delete the experiment's finished runs first (as ``run_grid``).
        on_run_done: called on the driver with each finished run's directory.
        connect_timeout_s: how long starting or joining Ray may take.

    Returns:
        Every run directory of the grid (absolute).

    Raises:
        LockedError: another runner (any backend) is working on this experiment.
        SettingsChanged: a finished run has other settings.
        ConnectionError, TimeoutError: Ray could not be started or joined (nothing was run).

    An interruption (Ctrl-C, SIGTERM, or an exception from ``on_run_done``) cancels the tasks
    not yet finished; the finished runs are kept, and running again resumes.
    """
    ray = _import_ray()
    if isinstance(connect_timeout_s, bool) or not isinstance(connect_timeout_s, int | float):
        raise TypeError(f"'connect_timeout_s' must be a number (got {connect_timeout_s!r})")
    if not connect_timeout_s > 0:
        raise ValueError(f"'connect_timeout_s' must be > 0 (got {connect_timeout_s!r})")
    cfg = dataclasses.replace(cfg, out_dir=str(Path(cfg.out_dir).resolve()))
    runs = cfg.runs()
    with open_grid(cfg, restart=restart, progress=progress) as todo:
        if todo:
            # longest first (SB3 agents), so the tail is short
            todo.sort(key=lambda r: split_agent_name(r[1])[0] not in SB3_AGENTS)
            _run_tasks(ray, cfg, todo, len(runs), address, num_cpus, progress, on_run_done,
                       connect_timeout_s)  # fmt: skip
    return [cfg.run_dir(*r) for r in runs]


def _run_tasks(
    ray: Any,
    cfg: ExperimentConfig,
    todo: list[tuple[str, str, int]],
    total: int,
    address: str | None,
    num_cpus: int | None,
    progress: bool,
    on_run_done: Callable[[Path], None] | None,
    connect_timeout_s: float,
) -> None:
    started_here = not ray.is_initialized()
    try:
        if started_here:
            _connect(ray, cfg, address, num_cpus, connect_timeout_s)
        bar = tqdm(total=total, initial=total - len(todo), desc=cfg.name, unit="run",
                   disable=not progress)  # fmt: skip
        task = ray.remote(num_cpus=1, max_retries=0)(_worker)
        cfg_dict = cfg.to_dict()
        scenarios = scenario_snapshot(cfg.scenarios)  # registered and file scenarios
        registered = _registered(cfg)  # registered agents, by entry point
        pending = [task.remote(cfg_dict, *r, scenarios, registered) for r in todo]
        try:
            while pending:
                with deferred_interrupts():  # never raised inside Ray's calls
                    ready, pending = ray.wait(pending, num_returns=1, timeout=0.2)
                if interrupted() is not None:
                    raise KeyboardInterrupt("interrupted")
                for ref in ready:
                    run_dir = _result(ray, ref)
                    bar.update(1)
                    if on_run_done is not None:
                        on_run_done(run_dir)
        except BaseException:
            with deferred_interrupts():  # a second Ctrl-C must not break the cancelling
                for ref in pending:
                    ray.cancel(ref, force=True)
                # wait until the cancelled tasks have ended: a killed worker releases its run's
                # lock only when its process is gone, and a resume must not find it held
                if pending:
                    ray.wait(pending, num_returns=len(pending), timeout=_CANCEL_WAIT_S)
            raise
        finally:
            bar.close()
    finally:
        if started_here:  # also after an interrupted start: it stops the processes Ray made
            with deferred_interrupts(), contextlib.suppress(Exception):
                ray.shutdown()
