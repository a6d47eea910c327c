"""Results computed in Python, into the same figures and report as the command line's.

:func:`~driftrec.agents.base.evaluate` returns an :class:`~driftrec.agents.base.EvalResult` with
one value per vector step. :func:`run_from_result` cuts it into the windows of ``metrics.csv``
(the same column names and definitions as :mod:`driftrec.experiments.recorder`) and returns an
in-memory :class:`~driftrec.experiments.analysis.Run`; :func:`save_result` writes it as a run
directory, so ``driftrec report EXP`` (or :func:`driftrec.report`) draws it next to grid runs::

    result = driftrec.evaluate(agent, env, num_steps=1536, seed=0)
    driftrec.save_result(result, "runs/mine", scenario="AbruptShift", seed=0)
    driftrec.report("runs/mine")

An ``EvalResult`` holds per-step means, so the columns it cannot give (diversity, coverage,
the personalisation and return columns, ...) are empty (``nan``) and the report leaves them
out. ``step`` counts the steps of the evaluation (the global clock when the env was reset with a
seed just before, as :func:`~driftrec.agents.base.evaluate` does when given one). Population
shifts among the per-step drift events become the events the figures mark.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from driftrec.agents.base import EvalResult
from driftrec.envs.config import check_int
from driftrec.envs.drift import DriftEvent
from driftrec.experiments.analysis import Run
from driftrec.experiments.config import dir_name_part
from driftrec.experiments.io import atomic_write_csv, atomic_write_json
from driftrec.experiments.recorder import METRIC_COLUMNS

__all__ = ["run_from_result", "save_result", "result_rows"]


def result_rows(result: EvalResult, log_every: int = 32) -> list[dict[str, float]]:
    """The ``metrics.csv`` rows of ``result``: one per ``log_every`` steps (a last, shorter
    window keeps the remainder)."""
    if not isinstance(result, EvalResult):
        raise TypeError(f"'result' must be an EvalResult (got {type(result).__name__})")
    check_int("log_every", log_every, 1)
    t = result.num_steps
    oracle = result.oracle_expected_reward
    regret = None if oracle is None else oracle - result.expected_reward  # (T,)
    cum = None if regret is None else np.cumsum(regret)
    rows: list[dict[str, float]] = []
    nan = float("nan")
    for start in range(0, t, log_every):
        w = slice(start, min(start + log_every, t))
        end = w.stop
        expected = float(np.mean(result.expected_reward[w]))
        ora = nan if oracle is None else float(np.mean(oracle[w]))
        sessions = int(result.sessions_finished[w].sum())
        left = int(result.terminated[w].sum())
        row = dict.fromkeys(METRIC_COLUMNS, nan)
        row.update(
            step=end,
            env_steps=end * result.num_envs,
            reward=float(np.mean(result.reward[w])),
            expected_reward=expected,
            oracle_reward=ora,
            normalized_reward=expected / ora if oracle is not None and ora > 0 else nan,
            regret=ora - expected,
            cum_regret=nan if cum is None else float(cum[end - 1]),
            click_rate=float(np.nanmean(result.click_rate[w])),
            sessions=sessions,
            churn=left / sessions if sessions else nan,
            retention=1.0 - left / sessions if sessions else nan,
            drift_event=int(np.bitwise_or.reduce(result.drift_events[w])),
        )
        rows.append(row)
    return rows


def _events(result: EvalResult) -> list[dict[str, Any]]:
    shifts = np.flatnonzero(result.drift_events & int(DriftEvent.POPULATION_SHIFT))
    return [{"step": int(t) + 1, "kind": "population_shift"} for t in shifts]


def _config(result: EvalResult, scenario: str, seed: int, log_every: int) -> dict[str, Any]:
    from driftrec.envs.scenarios import get_scenario

    try:
        env_id = get_scenario(scenario).env_id
    except ValueError:  # a label of the user's own
        env_id = None
    return {
        "scenario": scenario,
        "env_id": env_id,
        "agent": result.agent,
        "seed": seed,
        "num_envs": result.num_envs,
        "total_steps": result.num_steps,
        "log_every": log_every,
        "frozen_at": None,
        "source": "driftrec.save_result (an EvalResult)",
    }


def _check_names(scenario: Any, seed: Any) -> None:
    if not isinstance(scenario, str) or not scenario:
        raise ValueError(f"'scenario' must be a non-empty string (got {scenario!r})")
    check_int("seed", seed, 0)


def run_from_result(
    result: EvalResult, *, scenario: str, seed: int = 0, log_every: int = 32
) -> Run:
    """``result`` as an in-memory :class:`~driftrec.experiments.analysis.Run` (for
    :func:`~driftrec.experiments.analysis.aggregate`, the plots and the summary table)."""
    _check_names(scenario, seed)
    rows = result_rows(result, log_every)
    metrics = {c: np.asarray([r[c] for r in rows], dtype=np.float64) for c in METRIC_COLUMNS}
    name = f"{scenario}__{dir_name_part(result.agent)}__{seed}"
    return Run(
        path=Path(name),
        config=_config(result, scenario, seed, log_every),
        metrics=metrics,
        events=_events(result),
        done={"wall_time_s": result.wall_time_s, "env_steps": result.num_steps * result.num_envs},
    )


def save_result(
    result: EvalResult,
    exp_dir: str | os.PathLike[str],
    *,
    scenario: str,
    seed: int = 0,
    log_every: int = 32,
    overwrite: bool = False,
) -> Path:
    """Write ``result`` as the run directory ``exp_dir/<scenario>__<agent>__<seed>/``.

    It holds ``config.json``, ``metrics.csv``, ``events.json`` and, last, ``done.json``, each
    written atomically, so ``driftrec report exp_dir`` reads it like a grid's run.

    Args:
        result: what :func:`~driftrec.agents.base.evaluate` returned.
        exp_dir: the experiment directory (created if missing).
        scenario: the scenario's name, for the report (e.g. ``"AbruptShift"``).
        seed: the seed the env was reset with (one run directory per seed).
        log_every: steps per metrics window.
        overwrite: replace an existing run directory of the same name; without it that is an
            error, so nothing already written is lost.

    Returns:
        The run directory.
    """
    _check_names(scenario, seed)
    rows = result_rows(result, log_every)
    run_dir = Path(exp_dir) / f"{scenario}__{dir_name_part(result.agent)}__{seed}"
    if run_dir.exists() and not overwrite:
        raise FileExistsError(
            f"{run_dir} already exists; pass overwrite=True to replace it, or another seed or "
            "experiment directory"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "done.json").unlink(missing_ok=True)  # incomplete until rewritten last
    atomic_write_json(run_dir / "config.json", _config(result, scenario, seed, log_every))
    atomic_write_csv(run_dir / "metrics.csv", rows, METRIC_COLUMNS)
    events = _events(result)
    atomic_write_json(run_dir / "events.json", {"events": events, "counts": {}})
    atomic_write_json(
        run_dir / "done.json",
        {
            "wall_time_s": round(result.wall_time_s, 3),
            "env_steps": result.num_steps * result.num_envs,
            "global_steps": result.num_steps,
            "final_cum_regret": rows[-1]["cum_regret"] if rows else None,
        },
    )
    return run_dir
