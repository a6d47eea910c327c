"""Run experiment grids on a Ray cluster: one plain Ray task per run.

:func:`run_grid_ray` is :func:`driftrec.experiments.runner.run_grid` with Ray tasks in place of
the local process pool. Each task is the same single-run function (``run_one``), so a run
writes the same ``<out_dir>/<name>/<scenario>__<agent>__<seed>/`` files, atomically, with
``done.json`` last; finished runs are skipped (resume) and unfinished ones redone from scratch.
Ray Tune is not used: it moves each trial's working directory and costs about a minute per
trial on a small machine, where a plain task costs about a second and a half.

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
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from driftrec.agents.registry import SB3_AGENTS
from driftrec.envs.scenarios import scenario_snapshot
from driftrec.experiments.config import ExperimentConfig, split_agent_name
from driftrec.experiments.io import atomic_write_json
from driftrec.experiments.runner import _worker, check_finished_runs, grid_notes, warm_text_cache

__all__ = ["run_grid_ray", "RAY_INSTALL_HINT"]

RAY_INSTALL_HINT = 'pip install "driftrec[ray]"'
_FORWARDED_ENV = ("DRIFTREC_CACHE", "HF_HUB_OFFLINE", "DRIFTREC_MOVIELENS")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            f"the ray backend needs Ray ({err}). Install it with: {RAY_INSTALL_HINT}"
        ) from None
    return ray


def run_grid_ray(
    cfg: ExperimentConfig,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
    on_run_done: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Run every (scenario, agent, seed) of ``cfg`` not yet done as Ray tasks.

    Args:
        cfg: the grid. ``workers`` is ignored: Ray schedules as many tasks as it has CPUs.
        address: a running Ray cluster (``"auto"`` from one of its nodes, or the head's
            ``"host:6379"``); None starts a local Ray. A Ray already initialised in this
            process is used as it is.
        num_cpus: CPUs of a local Ray started here (None: all of this machine's).
        progress: show a progress bar over runs.
        on_run_done: called on the driver with each finished run's directory.

    Returns:
        Every run directory of the grid (absolute).

    An interruption (Ctrl-C, or an exception from ``on_run_done``) cancels the tasks not yet
    finished; the finished runs are kept, and running again resumes.
    """
    ray = _import_ray()
    cfg = dataclasses.replace(cfg, out_dir=str(Path(cfg.out_dir).resolve()))
    cfg.experiment_dir.mkdir(parents=True, exist_ok=True)
    runs = cfg.runs()
    todo = check_finished_runs(cfg)  # finished runs with other settings: refused, nothing written
    atomic_write_json(cfg.experiment_dir / "experiment.json", cfg.to_dict())
    for note in grid_notes(cfg):
        print(note)
    if todo:
        warm_text_cache(cfg)  # once, here, before the tasks would all encode
        # longest first (SB3 agents), so the tail is short
        todo.sort(key=lambda r: split_agent_name(r[1])[0] not in SB3_AGENTS)
    started_here = False
    if todo and not ray.is_initialized():
        env_vars = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ}
        env_vars.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        init: dict[str, Any] = {"runtime_env": {"env_vars": env_vars}}
        if address is None:  # a local Ray for this grid
            init.update(num_cpus=num_cpus, include_dashboard=False)
        ray.init(address=address, **init)
        started_here = True
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc=cfg.name, unit="run",
               disable=not progress)  # fmt: skip
    try:
        if todo:
            task = ray.remote(num_cpus=1, max_retries=0)(_worker)
            cfg_dict = cfg.to_dict()
            scenarios = scenario_snapshot(cfg.scenarios)  # registered and file scenarios
            pending = [task.remote(cfg_dict, *r, scenarios) for r in todo]
            try:
                while pending:
                    ready, pending = ray.wait(pending, num_returns=1)
                    run_dir = Path(ray.get(ready[0]))
                    bar.update(1)
                    if on_run_done is not None:
                        on_run_done(run_dir)
            except BaseException:
                for ref in pending:
                    ray.cancel(ref, force=True)
                # wait until the cancelled tasks have ended: a killed worker releases its run's
                # lock only when its process is gone, and a resume must not find it held
                with contextlib.suppress(Exception):
                    ray.wait(pending, num_returns=len(pending), timeout=60)
                raise
    finally:
        bar.close()
        if started_here:
            ray.shutdown()
    return [cfg.run_dir(*r) for r in runs]
