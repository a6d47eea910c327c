"""Run experiment grids: compute -> save (atomically) -> (plots read only the files).

Each run of a grid writes ``<out_dir>/<name>/<scenario>__<agent>__<seed>/``:

* ``config.json``: the resolved run config (the experiment fields, the full env config, the
  agent's name and overrides);
* ``metrics.csv``: one row per ``log_every`` global steps (columns in
  :mod:`driftrec.experiments.recorder`);
* ``events.json``: the population-level drift events (steps) and counts of the others;
* ``topics.npz``: recommended vs preferred topic mixes over time; ``attention.npz`` for
  attention agents (what the user token attends to in tracked user 0's history);
* ``model.zip``: the SB3 checkpoint (SB3 agents, ``checkpoint=True``);
* ``done.json``: written last. A run directory without it is incomplete.

Every file is written atomically. An interrupted grid keeps every finished run; running the
same grid again skips runs with ``done.json`` (resume) and redoes unfinished ones from scratch.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from driftrec.agents.online import run_online
from driftrec.agents.registry import SB3_AGENTS, build_agent, needs_text_embeddings
from driftrec.envs.scenarios import get_scenario
from driftrec.experiments.config import ExperimentConfig, split_agent_name
from driftrec.experiments.io import atomic_savez, atomic_write_csv, atomic_write_json
from driftrec.experiments.recorder import METRIC_COLUMNS, StepRecorder

__all__ = ["run_one", "run_grid", "is_done", "warm_text_cache"]


def is_done(run_dir: Path) -> bool:
    """True when the run finished (its ``done.json`` exists)."""
    return (run_dir / "done.json").is_file()


def _text_encoder(cfg: ExperimentConfig) -> Any:
    if cfg.text_model is None:
        return None
    from driftrec.agents.text_encoder import TextEncoderConfig

    return TextEncoderConfig(model=cfg.text_model)


def warm_text_cache(cfg: ExperimentConfig) -> None:
    """Encode every scenario's item texts once (before parallel workers would all do it)."""
    if not any(needs_text_embeddings(split_agent_name(a)[0]) for a in cfg.agents):
        return
    from driftrec.agents.text_encoder import TextEncoderConfig, encode_catalog
    from driftrec.envs.core import cached_catalog

    encoder = _text_encoder(cfg) or TextEncoderConfig()
    for scenario in cfg.scenarios:
        for seed in cfg.seeds:  # one catalog per seed with vary_world
            encode_catalog(cached_catalog(cfg.run_env_config(scenario, seed)).texts(), encoder)


def run_one(
    cfg: ExperimentConfig,
    scenario: str,
    agent: str,
    seed: int,
    *,
    progress: bool = True,
    on_window: Callable[[dict[str, float]], None] | None = None,
) -> Path:
    """Run (or skip, when done) one scenario x agent x seed and write its files.

    numpy's BLAS is limited to one thread for the run: the products here are small, and with
    parallel runs on a small machine extra BLAS threads only spin against each other.

    Returns:
        The run directory.
    """
    run_dir = cfg.run_dir(scenario, agent, seed)
    if is_done(run_dir):
        return run_dir
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        _run(cfg, scenario, agent, seed, run_dir, progress, on_window)
    return run_dir


def _run(
    cfg: ExperimentConfig,
    scenario: str,
    agent: str,
    seed: int,
    run_dir: Path,
    progress: bool,
    on_window: Callable[[dict[str, float]], None] | None,
) -> None:
    if run_dir.exists():  # an interrupted run: start it over
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    t0 = time.perf_counter()
    env_config = cfg.run_env_config(scenario, seed)
    base, frozen = split_agent_name(agent)
    kwargs = dict(cfg.agent_kwargs.get(agent, cfg.agent_kwargs.get(base, {})))
    built = build_agent(
        base,
        env_config,
        num_envs=cfg.num_envs,
        seed=seed,
        agent_kwargs=kwargs,
        text_encoder=_text_encoder(cfg),
        torch_threads=cfg.torch_threads,
        device=cfg.device,
    )
    venv = built.env.venv if built.is_sb3 else built.env
    sim = venv.sim
    freeze = cfg.frozen_step(scenario) if frozen else None
    atomic_write_json(
        run_dir / "config.json",
        {
            **cfg.to_dict(),
            "scenario": scenario,
            "env_id": get_scenario(scenario).env_id,
            "agent": agent,
            "agent_kwargs": kwargs,
            "seed": seed,
            "total_steps": cfg.steps,
            "frozen_at": freeze,
            "env_config": env_config.to_dict(),
            "rollout_steps": built.rollout_steps,
        },
    )
    recorder = StepRecorder(
        sim.catalog,
        cfg.num_envs,
        sim.layout,
        interest_weight=env_config.choice.interest_weight,
        log_every=cfg.log_every,
        cold_start_window=cfg.cold_start_window,
        track_users=cfg.track_users,
        attention_fn=built.attention_fn,
        sim=sim,
        greedy_fn=built.greedy_actions,
    )
    bar = tqdm(
        total=cfg.steps,
        desc=f"{scenario}/{agent}/{seed}",
        unit="step",
        disable=not progress,
        leave=False,
    )
    steps_done = 0

    def on_step(record: Any) -> bool:
        nonlocal steps_done
        before = len(recorder.rows)
        recorder.record(record)
        steps_done += 1
        bar.update(1)
        if on_window is not None and len(recorder.rows) > before:
            on_window(recorder.rows[-1])
        return steps_done < cfg.steps

    # phases: learn until the freeze step (whole rollouts for SB3), then act without learning
    learn_steps = cfg.steps if freeze is None else min(cfg.steps, freeze)
    run_online(built.agent, built.env, learn_steps, learn=True, on_step=on_step)
    if steps_done < cfg.steps:
        run_online(built.agent, built.env, cfg.steps - steps_done, learn=False, on_step=on_step)
    bar.close()

    atomic_write_csv(run_dir / "metrics.csv", recorder.rows, METRIC_COLUMNS)
    atomic_write_json(
        run_dir / "events.json", {"events": recorder.events, "counts": recorder.event_counts}
    )
    atomic_savez(run_dir / "topics.npz", **recorder.topics_arrays())
    attention = recorder.attention_arrays()
    if attention is not None:
        atomic_savez(run_dir / "attention.npz", **attention)
    if built.is_sb3 and cfg.checkpoint:
        tmp = run_dir / ".model.tmp.zip"
        built.save(str(tmp))
        tmp.replace(run_dir / "model.zip")
    last = recorder.rows[-1] if recorder.rows else {}
    atomic_write_json(
        run_dir / "done.json",
        {
            "wall_time_s": round(time.perf_counter() - t0, 3),
            "env_steps": steps_done * cfg.num_envs,
            "global_steps": steps_done,
            "env_steps_per_s": round(steps_done * cfg.num_envs / (time.perf_counter() - t0), 1),
            "final_cum_regret": last.get("cum_regret"),
        },
    )


def _worker(cfg_dict: dict[str, Any], scenario: str, agent: str, seed: int) -> str:
    cfg = ExperimentConfig.from_dict(cfg_dict)
    return str(run_one(cfg, scenario, agent, seed, progress=False))


def run_grid(cfg: ExperimentConfig, *, progress: bool = True) -> list[Path]:
    """Run every (scenario, agent, seed) of ``cfg`` not yet done; return all run dirs.

    With ``workers > 1`` runs go to a process pool (spawned, one torch thread each). An
    interruption (Ctrl-C) keeps the runs already finished; running again resumes.
    """
    cfg.experiment_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cfg.experiment_dir / "experiment.json", cfg.to_dict())
    todo = [r for r in cfg.runs() if not is_done(cfg.run_dir(*r))]
    if todo:
        warm_text_cache(cfg)
    bar = tqdm(
        total=len(cfg.runs()),
        initial=len(cfg.runs()) - len(todo),
        desc=cfg.name,
        unit="run",
        disable=not progress,
    )
    if cfg.workers == 1 or len(todo) <= 1:
        for scenario, agent, seed in todo:
            run_one(cfg, scenario, agent, seed, progress=progress)
            bar.update(1)
    else:
        # longest first (SB3 agents), so the pool's tail is short
        todo.sort(key=lambda r: split_agent_name(r[1])[0] not in SB3_AGENTS)
        ctx = get_context("spawn")
        with ProcessPoolExecutor(max_workers=cfg.workers, mp_context=ctx) as pool:
            futures = [pool.submit(_worker, cfg.to_dict(), *r) for r in todo]
            try:
                for fut in as_completed(futures):
                    fut.result()
                    bar.update(1)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    bar.close()
    return [cfg.run_dir(*r) for r in cfg.runs()]
