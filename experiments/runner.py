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
``done.json`` records the run's fingerprint (:func:`driftrec.experiments.guard.run_fingerprint`):
a finished run made with other settings is refused (``restart=True`` starts over) rather than
reused next to runs it cannot be compared with. A lock file naming its holder keeps a second
runner out of an experiment (and of a run) while the first is alive; pool workers exit with
their parent, and an interrupt (Ctrl-C, SIGTERM) stops every worker at once.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import hashlib
import json
import os
import queue as pyqueue
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from driftrec.agents.online import run_online
from driftrec.agents.online_lm import swap_item_table
from driftrec.agents.registry import (
    SB3_AGENTS,
    BuiltAgent,
    FirstStepChecked,
    agent_source,
    build_agent,
    check_agent_output,
    ensure_registered,
    is_builtin,
    needs_text_embeddings,
    user_agent_entry_points,
)
from driftrec.atomic import atomic_open
from driftrec.envs.scenarios import (
    get_scenario,
    install_scenario_snapshot,
    registered_env_id,
    scenario_snapshot,
)
from driftrec.experiments.config import ExperimentConfig, split_agent_name
from driftrec.experiments.guard import (
    DirectoryLock,
    SettingsChanged,
    catch_interrupts,
    check_interrupted,
    clear_recorded,
    deferred_interrupts,
    describe_changes,
    exit_with_parent,
    interrupted,
    record_outputs,
    remove_recorded,
    run_fingerprint,
)
from driftrec.experiments.io import atomic_savez, atomic_write_csv, atomic_write_json
from driftrec.experiments.progress import GridProgress, run_label
from driftrec.experiments.recorder import (
    METRIC_COLUMNS,
    StepRecorder,
    TensorBoardWriter,
    tensorboard_available,
    tensorboard_note,
)

__all__ = [
    "run_one",
    "run_grid",
    "open_grid",
    "is_done",
    "warm_text_cache",
    "run_config",
    "check_finished",
    "check_finished_runs",
    "file_digests",
    "RunDamaged",
    "check_user_agents",
    "grid_notes",
]


def is_done(run_dir: Path) -> bool:
    """True when the run finished (its ``done.json`` exists)."""
    return (run_dir / "done.json").is_file()


def _say(text: str) -> None:
    tqdm.write(text)


def run_config(cfg: ExperimentConfig, scenario: str, agent: str, seed: int) -> dict[str, Any]:
    """What a run's ``config.json`` holds (before the agent is built) and its fingerprint covers."""
    from driftrec.envs.core import cached_catalog

    env_config = cfg.run_env_config(scenario, seed)
    base, frozen = split_agent_name(agent)
    import driftrec

    sc = get_scenario(scenario)
    return {
        **cfg.to_dict(),
        "driftrec_version": driftrec.__version__,
        "scenario": sc.name,
        **({"scenario_file": sc.source} if sc.source is not None else {}),
        "env_id": registered_env_id(sc),  # None for an unregistered scenario file
        "agent": agent,
        "agent_kwargs": dict(cfg.agent_kwargs.get(agent, cfg.agent_kwargs.get(base, {}))),
        "seed": seed,
        "total_steps": cfg.steps,
        "frozen_at": cfg.frozen_step(scenario) if frozen else None,
        "env_config": env_config.to_dict(),
        "catalog_fingerprint": cached_catalog(env_config).content_fingerprint(),
        **_adapter_fields(cfg),
        **_agent_fields(base),
        **_finetune_fields(cfg, base),
    }


def _finetune_fields(cfg: ExperimentConfig, agent: str) -> dict[str, Any]:
    """The resolved in-run fine-tuning settings (in the fingerprint), only for a run that
    fine-tunes (``finetune_every`` and an agent whose item table it refreshes)."""
    from driftrec.agents.online_lm import supports_item_refresh

    settings = cfg.finetune_settings()
    if settings is None or not supports_item_refresh(agent):
        return {}
    import dataclasses

    return {
        "finetune_settings": {**dataclasses.asdict(settings), "targets": list(settings.targets)}
    }


def _agent_fields(base: str) -> dict[str, Any]:
    """A user agent's code identity (in the fingerprint), only for user agents."""
    if is_builtin(base):
        return {}
    return {"agent_source": agent_source(base)}


def _adapter_fields(cfg: ExperimentConfig) -> dict[str, Any]:
    """The adapter's weight hash (in the fingerprint), only when a run uses an adapter."""
    if cfg.text_adapter is None:
        return {}
    from driftrec.agents.lora import adapter_identity

    return {"text_adapter_sha256": adapter_identity(cfg.text_adapter)}


class RunDamaged(ValueError):
    """A finished run's files no longer match what its ``done.json`` recorded."""


def file_digests(run_dir: Path) -> dict[str, str]:
    """sha256 of every file of a run (relative POSIX paths; not ``done.json``, not hidden)."""
    out = {}
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if not path.is_file() or rel.as_posix() == "done.json":
            continue
        if any(part.startswith(".") for part in rel.parts):  # a writer's temporary file
            continue
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        out[rel.as_posix()] = digest.hexdigest()
    return out


def _check_files(run_dir: Path, done: dict[str, Any]) -> None:
    """:class:`RunDamaged` unless every file ``done.json`` lists is there, unchanged."""
    recorded = done.get("files")
    if not isinstance(recorded, dict):  # a run of a driftrec that did not record them
        return
    now = file_digests(run_dir)
    for name, digest in recorded.items():
        if name not in now:
            raise RunDamaged(f"{run_dir / name} is missing")
        if now[name] != digest:
            raise RunDamaged(f"{run_dir / name} differs from what its done.json recorded")


def check_finished(run_dir: Path, config: dict[str, Any]) -> None:
    """Raise :class:`SettingsChanged` unless the finished run in ``run_dir`` matches ``config``,
    and :class:`RunDamaged` if its files changed since it finished (truncated, edited, lost)."""
    try:
        done = json.loads((run_dir / "done.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDamaged(f"{run_dir / 'done.json'} cannot be read ({exc})") from None
    if isinstance(done, dict) and done.get("fingerprint") == run_fingerprint(config):
        _check_files(run_dir, done)
        return
    try:
        old = json.loads((run_dir / "config.json").read_text())
        changes = describe_changes(old, config) if isinstance(old, dict) else "settings differ"
    except (OSError, ValueError):
        changes = "its config.json cannot be read"
    if not isinstance(done, dict) or "fingerprint" not in done:
        changes = "it has no run fingerprint: an older driftrec made it"
    raise SettingsChanged(
        f"{run_dir} was finished with other settings ({changes}); to start over run with "
        "--restart (restart=True), or give this experiment another --name"
    )


def check_finished_runs(cfg: ExperimentConfig) -> list[tuple[str, str, int]]:
    """Check every finished run of the grid against ``cfg`` (:class:`SettingsChanged` on the
    first mismatch, before any work starts), say how many are reused; return the runs to do.

    A finished run whose files changed since (:class:`RunDamaged`: a truncated ``metrics.csv``,
    a lost ``model.zip``) is done again, and said so: its results are not reused.
    """
    runs = cfg.runs()
    done = [r for r in runs if is_done(cfg.run_dir(*r))]
    for r in list(done):
        try:
            check_finished(cfg.run_dir(*r), run_config(cfg, *r))
        except RunDamaged as exc:
            _say(f"damaged {'/'.join(map(str, r))}: {exc}; running it again")
            done.remove(r)
    if done:
        _say(f"{len(done)} of {len(runs)} runs already done, skipped")
    return [r for r in runs if r not in done]


def _make_dir(cfg: ExperimentConfig, path: Path) -> None:
    """Create ``path`` (under ``cfg.out_dir``) or say in one line why it cannot hold results."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    except OSError as exc:
        raise ValueError(
            f"'out_dir' {cfg.out_dir!r} cannot hold the results ({exc.strerror}: "
            f"{exc.filename or path}); expected a writable directory"
        ) from None


def _attach_sb3_logger(model: Any, folder: Path) -> None:
    """Keep SB3's training diagnostics: ``progress.csv`` always, TensorBoard when installed."""
    from stable_baselines3.common.logger import configure

    formats = ["csv"]
    if tensorboard_available():
        formats.append("tensorboard")
    model.set_logger(configure(str(folder), formats))


def _text_encoder(cfg: ExperimentConfig) -> Any:
    if cfg.text_model is None and cfg.text_adapter is None:
        return None
    from driftrec.agents.text_encoder import TextEncoderConfig

    return TextEncoderConfig(model=cfg.text_model, adapter=cfg.text_adapter)


def warm_text_cache(cfg: ExperimentConfig, *, progress: bool = True) -> None:
    """Encode every scenario's item texts once (before parallel workers would all do it);
    ``progress`` says so, with a bar, when they are not cached yet; ``progress=False``
    silences the model-loading and encoding bars."""
    if not any(needs_text_embeddings(split_agent_name(a)[0]) for a in cfg.agents):
        return
    import dataclasses

    from driftrec.agents.text_encoder import TextEncoderConfig, encode_catalog
    from driftrec.envs.core import cached_catalog

    encoder = dataclasses.replace(_text_encoder(cfg) or TextEncoderConfig(), show_progress=progress)
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
    restart: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    greedy_columns: bool = True,
    check_agent: bool = True,
) -> Path:
    """Run (or skip, when done with the same settings) one scenario x agent x seed.

    ``greedy_columns=False`` leaves the ``greedy_*`` columns of ``metrics.csv`` empty (nan)
    instead of asking the agent for its greedy choices once per window; every other file and
    column is the same either way (the greedy choices never touch the run's random streams).

    numpy's BLAS is limited to one thread for the run: the products here are small, and with
    parallel runs on a small machine extra BLAS threads only spin against each other.
    ``progress`` shows a bar of the run's steps; ``on_progress(steps_done, steps)`` is called
    after every global step (the grid's display uses it); ``on_window(row)`` with every
    metrics row. A user's agent is first built once and its first ``predict`` checked
    (:func:`check_user_agents`), so a broken one leaves nothing behind; ``check_agent=False``
    skips that (the grid has checked it already).

    Raises:
        SettingsChanged: the run is finished, with other settings (``restart=True`` redoes it).
        LockedError: another live process is writing this run.

    Returns:
        The run directory.
    """
    run_dir = cfg.run_dir(scenario, agent, seed)
    if check_agent and (restart or not is_done(run_dir)):
        check_user_agents(cfg, [(scenario, agent, seed)])
    config = run_config(cfg, scenario, agent, seed)
    _make_dir(cfg, run_dir.parent)
    lock = DirectoryLock(run_dir.with_name(f".{run_dir.name}.lock"), what=f"run {run_dir}")
    with lock:
        if restart:
            remove_recorded(run_dir)
        if is_done(run_dir):
            try:
                check_finished(run_dir, config)
                return run_dir
            except RunDamaged:  # its files changed since it finished: do it again
                pass
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            _run(cfg, scenario, config, run_dir, progress, on_window, on_progress, greedy_columns)
    return run_dir


def _run(
    cfg: ExperimentConfig,
    scenario: str,
    config: dict[str, Any],
    run_dir: Path,
    progress: bool,
    on_window: Callable[[dict[str, float]], None] | None,
    on_progress: Callable[[int, int], None] | None = None,
    greedy_columns: bool = True,
) -> None:
    t0 = time.perf_counter()
    agent, seed = config["agent"], config["seed"]  # scenario: as the grid names it
    env_config = cfg.run_env_config(scenario, seed)
    base, _ = split_agent_name(agent)
    kwargs = dict(config["agent_kwargs"])
    built = _build(cfg, base, env_config, seed, kwargs)  # before the run directory exists
    venv = built.env.venv if built.is_sb3 else built.env
    sim = venv.sim
    freeze = config["frozen_at"]
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
        greedy_fn=built.greedy_actions if greedy_columns else None,
    )

    def open_run_dir() -> None:
        remove_recorded(run_dir)  # an interrupted run: start it over
        record_outputs(run_dir.parent, [run_dir.name])  # before it exists: a restart may delete it
        run_dir.mkdir(parents=True)
        if built.is_sb3:
            _attach_sb3_logger(built.agent, run_dir / "sb3_log")
        atomic_write_json(run_dir / "config.json", {**config, "rollout_steps": built.rollout_steps})
        if tensorboard_available():  # its writer creates files: only once the directory is ours
            recorder.tensorboard = TensorBoardWriter(run_dir)

    acting: Any = built.agent
    if is_builtin(base) or built.is_sb3:
        open_run_dir()
    else:  # a user's agent: its first predict is checked before the directory is written
        acting = FirstStepChecked(built, open_run_dir)
    bar = tqdm(
        total=cfg.steps,
        desc=run_label(scenario, agent, seed),
        unit="step",
        disable=not progress,
        leave=False,
    )
    steps_done = 0

    def on_step(record: Any) -> bool:
        nonlocal steps_done
        before = len(recorder.rows)
        check_interrupted()  # an interrupt swallowed on the way stops the run here
        recorder.record(record)
        steps_done += 1
        bar.update(1)
        if on_window is not None and len(recorder.rows) > before:
            on_window(recorder.rows[-1])
        if on_progress is not None:
            on_progress(steps_done, cfg.steps)
        return steps_done < cfg.steps

    finetuner = _finetuner(cfg, built, sim, seed)
    if finetuner is not None:
        record_step = on_step

        def on_step(record: Any) -> bool:
            finetuner.observe(record)
            return record_step(record)

    # phases: learn until the freeze step (whole rollouts for SB3), then act without learning;
    # with in-run fine-tuning the learning phase stops at every refresh
    learn_steps = cfg.steps if freeze is None else min(cfg.steps, freeze)
    if not built.learns:  # a user agent without update(): it acts the whole run
        learn_steps = 0
    while steps_done < learn_steps:
        stop = learn_steps if finetuner is None else min(learn_steps, finetuner.next_step)
        if run_online(acting, built.env, stop - steps_done, learn=True, on_step=on_step) == 0:
            break
        if finetuner is not None and finetuner.next_step <= steps_done < cfg.steps:
            table = finetuner.refresh(sim.state.clock)
            if table is not None:
                swap_item_table(built, table)
    if steps_done < cfg.steps:
        run_online(acting, built.env, cfg.steps - steps_done, learn=False, on_step=on_step)
    bar.close()
    recorder.close()
    finetune = None if finetuner is None else _finish_finetune(finetuner, run_dir, t0)

    atomic_write_csv(run_dir / "metrics.csv", recorder.rows, METRIC_COLUMNS)
    atomic_write_json(
        run_dir / "events.json", {"events": recorder.events, "counts": recorder.event_counts}
    )
    atomic_savez(run_dir / "topics.npz", **recorder.topics_arrays())
    attention = recorder.attention_arrays()
    if attention is not None:
        atomic_savez(run_dir / "attention.npz", **attention)
    if built.is_sb3:  # SB3 dumps a rollout's training figures at the next rollout: flush them
        built.agent.logger.dump(built.agent.num_timesteps)
        built.agent.logger.close()
    if built.is_sb3 and cfg.checkpoint:
        built.agent.catalog_fingerprint = config["catalog_fingerprint"]  # saved in the zip
        with atomic_open(run_dir / "model.zip", "wb") as fh:
            built.agent.save(fh)
    last = recorder.rows[-1] if recorder.rows else {}
    atomic_write_json(
        run_dir / "done.json",
        {
            "wall_time_s": round(time.perf_counter() - t0, 3),
            "env_steps": steps_done * cfg.num_envs,
            "global_steps": steps_done,
            "env_steps_per_s": round(steps_done * cfg.num_envs / (time.perf_counter() - t0), 1),
            "final_cum_regret": last.get("cum_regret"),
            "fingerprint": run_fingerprint(config),
            "catalog_fingerprint": config["catalog_fingerprint"],
            **({"finetune": finetune} if finetune is not None else {}),
            "files": file_digests(run_dir),  # a resume checks them: damaged runs are redone
        },
    )


ADAPTER_DIR = "text_adapter"
"""Where a run that fine-tuned its text encoder keeps the final LoRA adapter."""


def _finetuner(cfg: ExperimentConfig, built: Any, sim: Any, seed: int) -> Any:
    """The run's :class:`~driftrec.agents.online_lm.InRunFinetuner` (None without
    ``finetune_every``, or for an agent that reads no text embeddings)."""
    settings = cfg.finetune_settings()
    from driftrec.agents.online_lm import InRunFinetuner, supports_item_refresh

    if settings is None or not supports_item_refresh(built.name):
        return None
    import dataclasses

    from driftrec.agents.lora import default_anchor_texts
    from driftrec.agents.text_encoder import TextEncoderConfig, encode_catalog

    encoder = dataclasses.replace(_text_encoder(cfg) or TextEncoderConfig(), show_progress=False)
    texts = sim.catalog.texts()
    return InRunFinetuner(
        settings,
        texts,
        np.asarray(sim.catalog.release_step),
        encode_catalog(texts, encoder),  # the frozen table (from the cache)
        sim.layout,
        encoder,
        seed=seed,
        anchor_texts=default_anchor_texts() if settings.retain_weight > 0 else None,
        horizon=cfg.steps,
    )


def _finish_finetune(finetuner: Any, run_dir: Path, t0: float) -> dict[str, Any]:
    """Save the adapter (LoRA) into the run directory; the costs and the retention check on
    held-out general texts (``done.json``'s ``finetune``)."""
    summary = finetuner.summary(time.perf_counter() - t0)
    if not finetuner.trained:
        return summary
    from driftrec.agents.lora import heldout_texts, retention_metrics, save_adapter
    from driftrec.agents.text_encoder import encode_catalog, model_identity

    held, topics = heldout_texts()
    base = encode_catalog(held, finetuner.encoder.config)  # the base model's (cached)
    summary["retention"] = {
        k: round(v, 4) for k, v in retention_metrics(base, finetuner.encode(held), topics).items()
    }
    if finetuner.settings.method == "lora":
        save_adapter(
            finetuner.encoder.model,
            run_dir / ADAPTER_DIR,
            base_model=finetuner.encoder.name,
            base_identity=model_identity(finetuner.text_encoder.model),
            settings=finetuner.trainer.settings.lora,
            extra={"trained_in_run": str(run_dir.name), "refresh_steps": summary["refresh_steps"]},
        )
        summary["adapter"] = ADAPTER_DIR
    return summary


def _build(
    cfg: ExperimentConfig, base: str, env_config: Any, seed: int, kwargs: dict[str, Any]
) -> BuiltAgent:
    """Build one run's agent; a built-in's rejected setting is one line naming the agent."""
    try:
        return build_agent(
            base,
            env_config,
            num_envs=cfg.num_envs,
            seed=seed,
            agent_kwargs=kwargs,
            text_encoder=_text_encoder(cfg),
            torch_threads=cfg.torch_threads,
            device=cfg.device,
            trust_checkpoint=cfg.trust_checkpoint,
        )
    except (AssertionError, TypeError, ValueError) as exc:  # SB3 checks its kwargs with assert
        if not is_builtin(base):
            raise  # the user-agent errors already name the agent and the problem
        raise ValueError(
            f"agent {base!r} rejected its settings (agent_kwargs {kwargs}): "
            f"{' '.join(str(exc).split())}"
        ) from exc


def _registered(cfg: ExperimentConfig) -> dict[str, str]:
    """Entry points of the grid's registered agents, for worker processes."""
    return user_agent_entry_points(split_agent_name(a)[0] for a in cfg.all_agents)


def check_user_agents(cfg: ExperimentConfig, runs: list[tuple[str, str, int]]) -> None:
    """Build each user agent of ``runs`` once per scenario (first seed) and check its first
    ``predict``, so that a broken agent is one line before any run of the grid starts."""
    seen: set[tuple[str, str]] = set()
    for scenario, agent, seed in runs:
        base = split_agent_name(agent)[0]
        if is_builtin(base) or (scenario, base) in seen:
            continue
        seen.add((scenario, base))
        kwargs = dict(cfg.agent_kwargs.get(agent, cfg.agent_kwargs.get(base, {})))
        built = _build(cfg, base, cfg.run_env_config(scenario, seed), seed, kwargs)
        check_agent_output(built)


_PROGRESS_QUEUE: Any = None
"""In a pool worker: the queue its runs report their start and step counts to."""


def _init_worker(
    scenarios: dict[str, Any], queue: Any, registered: dict[str, str] | None = None
) -> None:
    """Pool worker start-up: exit with the parent, know the grid's scenarios and registered
    agents, keep the queue."""
    global _PROGRESS_QUEUE
    exit_with_parent()
    install_scenario_snapshot(scenarios)
    ensure_registered(registered or {})  # agents registered in the parent (by entry point)
    _PROGRESS_QUEUE = queue


def _worker(
    cfg_dict: dict[str, Any],
    scenario: str,
    agent: str,
    seed: int,
    scenarios: dict[str, Any] | None = None,
    registered: dict[str, str] | None = None,
) -> str:
    """One run in a worker process; ``scenarios`` is :func:`scenario_snapshot` of the grid's
    registered and file scenarios, ``registered`` the entry points of the agents registered
    in the parent (when the worker was not started with them)."""
    if scenarios:
        install_scenario_snapshot(scenarios)
    ensure_registered(registered or {})
    cfg = ExperimentConfig.from_dict(cfg_dict)
    run = (scenario, agent, seed)
    queue = _PROGRESS_QUEUE
    if queue is None:
        _say(f"start  {run_label(scenario, agent, seed)}")
        return str(run_one(cfg, scenario, agent, seed, progress=False, check_agent=False))
    queue.put(("start", run, 0))
    last = 0.0

    def report(steps_done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= _REPORT_EVERY_S or steps_done == total:
            last = now
            queue.put(("steps", run, steps_done))

    return str(
        run_one(cfg, scenario, agent, seed, progress=False, on_progress=report, check_agent=False)
    )


_REPORT_EVERY_S = 0.5
"""How often a worker's run reports its step count to the parent."""


def _finished_line(run_dir: Path, scenario: str, agent: str, seed: int, t0: float) -> str:
    try:
        took = float(json.loads((run_dir / "done.json").read_text())["wall_time_s"])
    except (OSError, ValueError, KeyError, TypeError):
        took = time.perf_counter() - t0
    return f"done   {run_label(scenario, agent, seed)} in {took:.0f} s"


def _completed(
    futures: list[Future[Any]],
    poll_s: float = 0.2,
    on_poll: Callable[[], None] | None = None,
) -> Iterator[Future[Any]]:
    """Yield ``futures`` as they finish; Ctrl-C or SIGTERM raises ``KeyboardInterrupt`` here.
    ``on_poll`` is called every ``poll_s`` (the parent drains its workers' progress there).

    While waiting, the signals only record the interrupt, checked every ``poll_s``
    (:func:`~driftrec.experiments.guard.deferred_interrupts`): raised from the signal handler,
    the interrupt could land inside ``concurrent.futures`` while it holds a future's lock
    (``as_completed`` takes them all), and stopping the pool, which takes the same locks to
    cancel, would then wait forever.
    """
    pending = set(futures)
    while pending:
        with deferred_interrupts():  # never raised inside concurrent.futures or the queue
            done, pending = wait(pending, timeout=poll_s, return_when=FIRST_COMPLETED)
        if interrupted() is not None:
            raise KeyboardInterrupt("interrupted")
        yield from done  # first: a finished run's done line before the next one's start
        if on_poll is not None:
            with deferred_interrupts():
                on_poll()
            if interrupted() is not None:
                raise KeyboardInterrupt("interrupted")


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop at once: terminate the workers (their runs stay unfinished); queued runs never start.

    The queued futures are not cancelled here: the pool's manager thread fails them itself when
    it finds its workers gone, and a future cancelled at that moment makes it raise
    ``InvalidStateError`` (a race in ``concurrent.futures``).
    """
    with deferred_interrupts():  # a second Ctrl-C or SIGTERM must not break the stopping
        procs = list((getattr(pool, "_processes", None) or {}).values())
        for proc in procs:
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=False)
        deadline = time.monotonic() + 5.0
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        # drop the process objects while interrupts are deferred: their finalizers (closing
        # pipes) run when the last reference goes, and a second Ctrl-C raised inside one is
        # printed as an ignored exception instead of stopping anything
        procs.clear()
        gc.collect()


@contextlib.contextmanager
def open_grid(
    cfg: ExperimentConfig, *, restart: bool = False, progress: bool = True
) -> Iterator[list[tuple[str, str, int]]]:
    """What every backend does around running a grid; yields the runs still to do.

    Inside the block the experiment is locked (a second runner on the same ``out_dir/name``,
    whatever its backend, gets :class:`LockedError`), Ctrl-C and SIGTERM raise
    ``KeyboardInterrupt`` (:func:`~driftrec.experiments.guard.catch_interrupts`), finished runs
    have been checked against ``cfg`` (``restart=True`` deletes them first),
    ``experiment.json`` is written and the item texts are encoded once.
    """
    exp_dir = cfg.experiment_dir
    if restart or not all(is_done(cfg.run_dir(*r)) for r in cfg.runs()):
        check_user_agents(cfg, cfg.runs())  # a broken user agent: nothing is written
    _make_dir(cfg, exp_dir)
    with catch_interrupts(), DirectoryLock(exp_dir / ".lock", what=f"experiment {exp_dir}"):
        if restart:
            clear_recorded(exp_dir)  # only what driftrec listed as its own there
        todo = check_finished_runs(cfg)
        record_outputs(exp_dir, ["experiment.json"])
        atomic_write_json(exp_dir / "experiment.json", cfg.to_dict())
        for note in grid_notes(cfg):
            _say(note)
        if todo:
            warm_text_cache(cfg, progress=progress)
        yield todo


def run_grid(cfg: ExperimentConfig, *, progress: bool = True, restart: bool = False) -> list[Path]:
    """Run every (scenario, agent, seed) of ``cfg`` not yet done; return all run dirs.

    With ``workers > 1`` runs go to a process pool (spawned, one torch thread each); every run's
    start and finish are printed. An interruption (Ctrl-C, SIGTERM) stops the workers at once and
    keeps the runs already finished; running again resumes. Finished runs must have been made
    with the same settings (:class:`SettingsChanged` otherwise); ``restart=True`` deletes the
    experiment's runs first.

    Raises:
        SettingsChanged: a finished run has other settings (nothing is run or written).
        LockedError: another live runner is working on this experiment.
    """
    with open_grid(cfg, restart=restart, progress=progress) as todo:
        _run_todo(cfg, todo, len(cfg.runs()), progress)
    return [cfg.run_dir(*r) for r in cfg.runs()]


def grid_notes(cfg: ExperimentConfig) -> list[str]:
    """One-line notes a grid prints before it starts (settings that may surprise)."""
    notes = []
    shift = cfg.shift_at_note()
    if shift is not None:
        notes.append(shift)
    tb = tensorboard_note()
    if tb is not None:
        notes.append(tb)
    return notes


def _run_todo(
    cfg: ExperimentConfig, todo: list[tuple[str, str, int]], total: int, progress: bool
) -> None:
    show = GridProgress(cfg.name, todo, total, cfg.steps, enabled=progress)
    t0 = time.perf_counter()
    try:
        if cfg.workers == 1 or len(todo) <= 1:
            for run in todo:
                check_interrupted()
                show.start(run)
                run_dir = run_one(
                    cfg,
                    *run,
                    progress=False,
                    on_progress=lambda n, _, r=run: show.advance(r, n),
                    check_agent=False,  # run_grid has checked the user agents
                )
                show.finish(run, _finished_line(run_dir, *run, t0))
        else:
            _run_pool(cfg, todo, show, t0)
    finally:
        show.close()


def _run_pool(
    cfg: ExperimentConfig, todo: list[tuple[str, str, int]], show: GridProgress, t0: float
) -> None:
    # longest first (SB3 agents), so the pool's tail is short
    todo = sorted(todo, key=lambda r: split_agent_name(r[1])[0] not in SB3_AGENTS)
    ctx = get_context("spawn")
    queue = ctx.Queue()
    pool = ProcessPoolExecutor(
        max_workers=cfg.workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(scenario_snapshot(cfg.scenarios), queue, _registered(cfg)),
    )

    def drain() -> None:
        while True:
            try:
                what, run, steps_done = queue.get_nowait()
            except (pyqueue.Empty, OSError, ValueError, EOFError):
                return
            if what == "start":
                show.start(run)
            else:
                show.advance(run, steps_done)

    futures = [pool.submit(_worker, cfg.to_dict(), *r) for r in todo]
    which = dict(zip(futures, todo, strict=True))
    try:
        for fut in _completed(futures, on_poll=drain):
            run_dir = Path(fut.result())
            show.finish(which[fut], _finished_line(run_dir, *which[fut], t0))
    except BaseException:
        _stop_pool(pool)
        queue.close()
        queue.cancel_join_thread()
        raise
    pool.shutdown()
    queue.close()
