r"""Loading saved runs and turning them into curves, recovery times and summary tables.

An experiment directory ``EXP/`` holds one directory per run, ``EXP/<scenario>__<agent>__<seed>/``,
written by the runner:

=====================  =========================================================================
file                   contents
=====================  =========================================================================
``config.json``        ``scenario``, ``agent``, ``seed``, ``total_steps``, ``log_every``, ...
``metrics.csv``        one row per window of ``log_every`` global steps (``step`` = the window's
                       end), columns such as ``normalized_reward``, ``regret``, ``cum_regret``
``events.json``        ``{"events": [{"step", "kind"}, ...], "counts": {...}}``: the
                       population-level drift events
``topics.npz``         topic mixes of recommendations and interests per window (optional)
``attention.npz``      what tracked user 0's next recommendation reads from its history, per
                       impression (attention agents only; ``source`` names the weights)
``done.json``          written last; a run without it was interrupted and is skipped
=====================  =========================================================================

Statistics over seeds are a mean with a 95% Student-t confidence interval,
``mean +- t_{0.975, n-1} * sd / sqrt(n)`` (``sd`` with ``ddof=1``); with one seed the interval
collapses to the mean. ``nan`` values (a metric undefined in a window) are ignored.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "Run",
    "Curve",
    "Stat",
    "Recovery",
    "IncompleteRunError",
    "NoRunsError",
    "RECOVERY_EVENT_KINDS",
    "SUMMARY_METRICS",
    "load_run",
    "load_runs",
    "t_quantile_975",
    "mean_ci",
    "moving_average",
    "aggregate",
    "recovery_time",
    "summary_table",
    "format_table",
]

FloatArray = NDArray[np.float64]

RECOVERY_EVENT_KINDS: tuple[str, ...] = ("population_shift",)
"""Kinds of ``events.json`` events that :func:`summary_table` measures recovery from."""

SUMMARY_METRICS: tuple[tuple[str, str], ...] = (
    ("click_rate", "click rate"),
    ("coverage", "coverage"),
    ("diversity", "diversity"),
    ("cold_start_share", "cold-start share"),
    ("oracle_cold_start_share", "oracle cold-start share"),
    ("churn", "churn"),
    ("tracking_error", "tracking error"),
    ("greedy_personal_gain", "personal gain"),
    ("greedy_distinct_items", "distinct items"),
)
"""``(metrics.csv column, label)`` of the per-window metrics :func:`summary_table` averages."""

_T_975 = (
    12.7062,
    4.3027,
    3.1824,
    2.7764,
    2.5706,
    2.4469,
    2.3646,
    2.3060,
    2.2622,
    2.2281,
    2.2010,
    2.1788,
    2.1604,
    2.1448,
    2.1314,
    2.1199,
    2.1098,
    2.1009,
    2.0930,
    2.0860,
    2.0796,
    2.0739,
    2.0687,
    2.0639,
    2.0595,
    2.0555,
    2.0518,
    2.0484,
    2.0452,
    2.0423,
)  # t_{0.975, df} for df = 1..30
_Z_975 = 1.959963984540054


class IncompleteRunError(ValueError):
    """A run directory without ``done.json``: the run was interrupted."""


class NoRunsError(FileNotFoundError):
    """An experiment directory without any complete run (matching the filters)."""


# --------------------------------------------------------------------------------------------
# loading


@dataclass(eq=False)
class Run:
    """One saved run: its config, per-window metrics, drift events and optional recordings.

    Attributes:
        path: the run directory.
        config: the contents of ``config.json``.
        metrics: ``metrics.csv`` as one float array per column (``nan`` for empty cells).
        events: the population-level events of ``events.json``, sorted by step.
        topics: the arrays of ``topics.npz``, or None when absent.
        attention: the arrays of ``attention.npz``, or None when absent.
        event_counts: the ``counts`` of ``events.json`` (e.g. ``interest_jump``, ``new_items``).
        done: the contents of ``done.json`` (``wall_time_s``, ``env_steps``, ...).
    """

    path: Path
    config: dict[str, Any]
    metrics: dict[str, FloatArray]
    events: list[dict[str, Any]]
    topics: dict[str, np.ndarray] | None = None
    attention: dict[str, np.ndarray] | None = None
    event_counts: dict[str, int] = field(default_factory=dict)
    done: dict[str, Any] = field(default_factory=dict)

    @property
    def scenario(self) -> str:
        """The scenario name (``config["scenario"]``)."""
        return str(self.config["scenario"])

    @property
    def agent(self) -> str:
        """The agent name (``config["agent"]``)."""
        return str(self.config["agent"])

    @property
    def seed(self) -> int:
        """The seed (``config["seed"]``)."""
        return int(self.config["seed"])

    @property
    def name(self) -> str:
        """The run directory's name, ``<scenario>__<agent>__<seed>``."""
        return self.path.name

    @property
    def steps(self) -> FloatArray:
        """The global step at the end of each window (the ``step`` column)."""
        return self.metric("step")

    def metric(self, name: str) -> FloatArray:
        """One ``metrics.csv`` column; KeyError naming the available ones when missing."""
        try:
            return self.metrics[name]
        except KeyError:
            raise KeyError(
                f"run {self.name}: no metric {name!r} in metrics.csv "
                f"(columns: {', '.join(self.metrics)})"
            ) from None

    def event_steps(self, kinds: Iterable[str] | None = RECOVERY_EVENT_KINDS) -> list[int]:
        """Sorted distinct steps of the events of the given kinds (all kinds with None)."""
        wanted = None if kinds is None else set(kinds)
        return sorted(
            {int(e["step"]) for e in self.events if wanted is None or e.get("kind") in wanted}
        )

    def __repr__(self) -> str:
        return (
            f"Run({self.name!r}, windows={len(self.steps)}, events={len(self.events)}, "
            f"topics={self.topics is not None}, attention={self.attention is not None})"
        )


def _parse_float(text: str) -> float:
    text = text.strip()
    if not text or text.lower() in ("nan", "none", "null"):
        return math.nan
    return float(text)


def _read_metrics(path: Path) -> dict[str, FloatArray]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ValueError(f"{path}: empty file (expected a header row)") from None
        columns: list[list[float]] = [[] for _ in header]
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"{path}:{line_no}: {len(row)} fields, the header has {len(header)}"
                )
            for col, text in zip(columns, row, strict=True):
                try:
                    col.append(_parse_float(text))
                except ValueError:
                    raise ValueError(f"{path}:{line_no}: not a number: {text!r}") from None
    return {h: np.asarray(c, dtype=np.float64) for h, c in zip(header, columns, strict=True)}


def _read_npz(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:  # no pickles: an object array is refused, never unpickled
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{path}: not an array file driftrec wrote ({type(exc).__name__}: {exc})"
        ) from None


def _read_json_object(path: Path) -> dict[str, Any]:
    """A run's JSON file as driftrec wrote it (an object), or one error naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{path}: not valid JSON ({exc}); expected the file as driftrec wrote it (run the "
            "grid again: a damaged run is done again)"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object (got {type(data).__name__})")
    return data


def load_run(path: str | Path) -> Run:
    """Load one run directory.

    Raises:
        IncompleteRunError: the directory has no ``done.json`` (the run was interrupted).
        FileNotFoundError: ``config.json`` or ``metrics.csv`` is missing.
    """
    path = Path(path)
    if not (path / "done.json").is_file():
        raise IncompleteRunError(f"run {path} is incomplete (no done.json): interrupted?")
    config = _read_json_object(path / "config.json")
    done = _read_json_object(path / "done.json")
    for key in ("scenario", "agent", "seed"):
        if key not in config:
            raise ValueError(f"{path / 'config.json'}: missing key {key!r}")
    metrics = _read_metrics(path / "metrics.csv")
    if "step" not in metrics:
        raise ValueError(f"{path / 'metrics.csv'}: no 'step' column")
    events_path = path / "events.json"
    events_doc = _read_json_object(events_path) if events_path.is_file() else {}
    events = sorted((dict(e) for e in events_doc.get("events", [])), key=lambda e: int(e["step"]))
    return Run(
        path=path,
        config=config,
        metrics=metrics,
        events=events,
        topics=_read_npz(path / "topics.npz"),
        attention=_read_npz(path / "attention.npz"),
        event_counts={str(k): int(v) for k, v in events_doc.get("counts", {}).items()},
        done=done,
    )


def _looks_like_run(path: Path) -> bool:
    return path.is_dir() and (
        (path / "config.json").is_file() or (path / "metrics.csv").is_file() or "__" in path.name
    )


def load_runs(
    exp_dir: str | Path,
    *,
    scenario: str | None = None,
    agents: Iterable[str] | None = None,
) -> list[Run]:
    """Load the complete runs of an experiment directory, sorted by (scenario, agent, seed).

    A run directory is a sub-directory with a ``config.json`` or ``metrics.csv`` (or a name of
    the form ``<scenario>__<agent>__<seed>``); one without ``done.json`` is skipped with a
    warning naming it. ``scenario`` and ``agents`` keep only the matching runs.

    Raises:
        FileNotFoundError: ``exp_dir`` is not a directory.
        NoRunsError: no complete run matches.
    """
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"experiment directory {exp_dir} does not exist")
    wanted_agents = None if agents is None else {str(a) for a in agents}
    runs: list[Run] = []
    skipped: list[str] = []
    for sub in sorted(exp_dir.iterdir()):
        if not _looks_like_run(sub):
            continue
        cfg_path = sub / "config.json"
        if cfg_path.is_file():
            try:
                cfg = json.loads(cfg_path.read_text())
            except json.JSONDecodeError:
                cfg = {}
        else:
            cfg = {}
        parts = sub.name.split("__")
        run_scenario = cfg.get("scenario", parts[0] if len(parts) == 3 else None)
        # the agent part of a directory name is percent-encoded (config.dir_name_part)
        run_agent = cfg.get("agent", unquote(parts[1]) if len(parts) == 3 else None)
        if scenario is not None and run_scenario != scenario:
            continue
        if wanted_agents is not None and run_agent not in wanted_agents:
            continue
        try:
            runs.append(load_run(sub))
        except IncompleteRunError:
            skipped.append(sub.name)
            warnings.warn(
                f"skipping incomplete run {sub} (no done.json: interrupted?)", stacklevel=2
            )
    if not runs:
        filters = []
        if scenario is not None:
            filters.append(f"scenario={scenario!r}")
        if wanted_agents is not None:
            filters.append(f"agents={sorted(wanted_agents)}")
        raise NoRunsError(
            f"no complete runs in {exp_dir}"
            + (f" matching {', '.join(filters)}" if filters else "")
            + " (expected <scenario>__<agent>__<seed>/ directories with config.json, metrics.csv"
            + " and done.json"
            + (f"; skipped incomplete: {', '.join(skipped)}" if skipped else "")
            + ")"
        )
    runs.sort(key=lambda r: (r.scenario, r.agent, r.seed))
    return runs


# --------------------------------------------------------------------------------------------
# statistics


class Stat(NamedTuple):
    """Mean and 95% confidence interval ``[lo, hi]`` of ``n`` finite values."""

    mean: float
    lo: float
    hi: float
    n: int

    @property
    def half_width(self) -> float:
        """``hi - mean`` (0 with one value, nan with none)."""
        return self.hi - self.mean


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df >= 1`` degrees of freedom.

    Tabulated (4 decimals) for ``df <= 30``; beyond, the Cornish-Fisher expansion
    ``z + (z^3 + z) / (4 df) + (5 z^5 + 16 z^3 + 3 z) / (96 df^2)`` (error < 1e-4), which tends
    to 1.96.
    """
    if df < 1:
        raise ValueError(f"t_quantile_975: df must be >= 1 (got {df})")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = _Z_975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_ci(values: ArrayLike) -> Stat:
    """Mean and 95% Student-t interval of the finite values (``nan`` Stat with none)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Stat(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Stat(mean, mean, mean, 1)
    half = t_quantile_975(n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return Stat(mean, mean - half, mean + half, n)


def moving_average(x: ArrayLike, window: int) -> FloatArray:
    """Trailing moving average over ``window`` entries, same length (shorter at the start).

    ``y[i] = mean(x[max(0, i - window + 1) : i + 1])``, ignoring ``nan`` entries (``nan`` when
    all of them are).
    """
    if window < 1:
        raise ValueError(f"moving_average: window must be >= 1 (got {window})")
    x = np.asarray(x, dtype=np.float64)
    if window == 1 or x.size == 0:
        return x.copy()
    finite = np.isfinite(x)
    csum = np.concatenate([[0.0], np.cumsum(np.where(finite, x, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(finite)])
    idx = np.arange(x.size)
    start = np.maximum(0, idx - window + 1)
    total = csum[idx + 1] - csum[start]
    count = ccount[idx + 1] - ccount[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@dataclass(frozen=True, eq=False)
class Curve:
    """A metric over global steps aggregated over seeds: mean and 95% interval per window.

    Attributes:
        steps: ``(W,)`` global step at the end of each window.
        mean, lo, hi: ``(W,)`` mean over seeds and the 95% Student-t interval.
        n: number of runs (seeds) aggregated.
        count: ``(W,)`` number of runs with a finite value in each window (None when unknown).
    """

    steps: FloatArray
    mean: FloatArray
    lo: FloatArray
    hi: FloatArray
    n: int
    count: NDArray[np.int64] | None = None


def _curve(steps: FloatArray, values: FloatArray) -> Curve:
    """Aggregate ``values`` (R, W) over its first axis."""
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    safe = np.where(finite, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, safe.sum(axis=0) / np.maximum(count, 1), np.nan)
        dev = np.where(finite, values - mean, 0.0)
        var = (dev**2).sum(axis=0) / np.maximum(count - 1, 1)
        t = np.array([t_quantile_975(int(c) - 1) if c > 1 else 0.0 for c in count])
        half = np.where(count > 1, t * np.sqrt(var) / np.sqrt(np.maximum(count, 1)), 0.0)
    half = np.where(count > 0, half, np.nan)
    return Curve(
        steps=steps.copy(),
        mean=mean,
        lo=mean - half,
        hi=mean + half,
        n=int(values.shape[0]),
        count=count.astype(np.int64),
    )


def aggregate(runs: Sequence[Run], metric: str, *, smooth: int = 1) -> dict[str, Curve]:
    """Mean and 95% interval over seeds of one metric, per agent (sorted by agent name).

    Args:
        runs: runs of one scenario.
        metric: a ``metrics.csv`` column, e.g. ``"normalized_reward"`` or ``"cum_regret"``.
        smooth: trailing moving average over this many windows, applied to each run before
            aggregating (see :func:`moving_average`); 1 = none.

    Raises:
        ValueError: no runs, runs of several scenarios, or runs of one agent whose ``step``
            columns differ (the message names them).
        KeyError: a run has no such metric.
    """
    if not runs:
        raise ValueError("aggregate: no runs")
    scenarios = sorted({r.scenario for r in runs})
    if len(scenarios) > 1:
        raise ValueError(f"aggregate: runs of one scenario at a time (got {scenarios})")
    by_agent: dict[str, list[Run]] = {}
    for run in runs:
        by_agent.setdefault(run.agent, []).append(run)
    curves: dict[str, Curve] = {}
    for agent in sorted(by_agent):
        group = sorted(by_agent[agent], key=lambda r: r.seed)
        steps = group[0].steps
        mismatched = [r.name for r in group[1:] if not np.array_equal(r.steps, steps)]
        if mismatched:
            raise ValueError(
                f"aggregate: runs of agent {agent!r} have different step grids: "
                f"{group[0].name} ({len(steps)} windows) vs {', '.join(mismatched)}"
            )
        values = np.stack([moving_average(r.metric(metric), smooth) for r in group])
        curves[agent] = _curve(steps, values)
    return curves


# --------------------------------------------------------------------------------------------
# recovery


class Recovery(NamedTuple):
    """The outcome of :func:`recovery_time` for one run and one event.

    Attributes:
        steps: recovery time in global steps; ``nan`` when censored or undefined.
        censored: True when the reward never recovered within the examined windows.
        pre_level: the pre-event level ``L`` (``nan`` when undefined).
        dip: the lowest normalized reward after the event as a fraction of ``L``.
        observed: global steps examined after the event (last examined window end minus the
            event step): a censored run's recovery time exceeds it.
    """

    steps: float
    censored: bool
    pre_level: float
    dip: float
    observed: float = math.nan
    below_level: bool = False  # the pre-event level was below ``min_level``: nothing to recover

    @property
    def defined(self) -> bool:
        """Whether there is a recovery to measure: enough pre-event windows and a pre-event
        level of at least ``min_level``."""
        return math.isfinite(self.pre_level) and not self.below_level


def recovery_time(
    steps: ArrayLike,
    normalized_reward: ArrayLike,
    event_step: float,
    *,
    pre_windows: int = 5,
    fraction: float = 0.9,
    sustain: int = 2,
    horizon: float | None = None,
    min_level: float = 0.0,
) -> Recovery:
    """How long the normalized reward takes to come back after a drift event.

    Definition, with windows indexed by their end step ``s_i`` (increasing) and normalized
    reward ``r_i``:

    1. Pre-event level ``L``: the mean of ``r_i`` over the last ``pre_windows`` windows with
       ``s_i <= event_step`` (a window ending at the event step was measured before the event
       took effect; ``nan`` entries are ignored). Undefined when there are fewer than
       ``pre_windows`` such windows or none of them is finite: then
       ``Recovery(nan, False, nan, nan)``.
    2. Examined windows: those with ``s_i > event_step`` (and ``s_i <= horizon`` when given,
       e.g. the next event's step).
    3. Recovery time: ``s_j - event_step`` for the first examined window ``j`` such that
       ``r_j, ..., r_{j + sustain - 1}`` are all examined windows with ``r >= fraction * L``
       (``nan`` fails the test). A recovery already in the first window after the event counts
       as that window's length, not 0.
    4. Censored: no such ``j`` (including a run that ends, or reaches ``horizon``, before
       ``sustain`` good windows in a row): ``steps = nan``, ``censored = True``.

    5. Below level: when ``L < min_level`` the agent never reached a level worth recovering
       (e.g. the random agent at ~0.3 of the oracle, which "recovers" at once because it never
       fell): ``Recovery(nan, False, L, nan, nan, below_level=True)``, undefined.

    ``dip`` is ``min(r_i) / L`` over the examined windows (``nan`` with none), and
    ``observed`` is the last examined window end minus ``event_step`` (0 with none).
    """
    if pre_windows < 1 or sustain < 1:
        raise ValueError("recovery_time: pre_windows and sustain must be >= 1")
    s = np.asarray(steps, dtype=np.float64)
    r = np.asarray(normalized_reward, dtype=np.float64)
    if s.shape != r.shape or s.ndim != 1:
        raise ValueError(
            f"recovery_time: steps {s.shape} and normalized_reward {r.shape} must be equal 1-D"
        )
    pre = np.flatnonzero(s <= event_step)
    if pre.size < pre_windows:
        return Recovery(math.nan, False, math.nan, math.nan, math.nan)
    pre_vals = r[pre[-pre_windows:]]
    pre_vals = pre_vals[np.isfinite(pre_vals)]
    if pre_vals.size == 0:
        return Recovery(math.nan, False, math.nan, math.nan, math.nan)
    level = float(pre_vals.mean())
    if level < min_level:
        return Recovery(math.nan, False, level, math.nan, math.nan, below_level=True)
    after = s > event_step
    if horizon is not None:
        after &= s <= horizon
    post = np.flatnonzero(after)
    if post.size == 0:
        return Recovery(math.nan, True, level, math.nan, 0.0)
    post_r = r[post]
    finite_post = post_r[np.isfinite(post_r)]
    dip = float(finite_post.min() / level) if finite_post.size and level != 0 else math.nan
    observed = float(s[post[-1]] - event_step)
    with np.errstate(invalid="ignore"):
        good = post_r >= fraction * level  # nan -> False
    run_length = 0
    for k, ok in enumerate(good):
        run_length = run_length + 1 if ok else 0
        if run_length == sustain:
            first = post[k - sustain + 1]
            return Recovery(float(s[first] - event_step), False, level, dip, observed)
    return Recovery(math.nan, True, level, dip, observed)


# --------------------------------------------------------------------------------------------
# summary


def _run_mean(run: Run, metric: str, mask: NDArray[np.bool_] | None = None) -> float:
    values = run.metrics.get(metric)
    if values is None:
        return math.nan
    if mask is not None:
        values = values[mask]
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def _last_finite(values: FloatArray | None) -> float:
    if values is None:
        return math.nan
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else math.nan


def summary_table(
    runs: Sequence[Run],
    *,
    fraction: float = 0.9,
    pre_windows: int = 5,
    sustain: int = 2,
    min_level: float = 0.5,
) -> list[dict[str, Any]]:
    """One row per (scenario, agent), sorted, summarising its seeds.

    Recovery is measured only for runs whose pre-event one-step oracle ratio is at least
    ``min_level`` (default 0.5); below it the run counts as undefined (``n_undefined``).

    Every statistic is a :class:`Stat` over seeds of a per-run value:

    ``normalized_reward``           mean of the window values over the whole run
    ``normalized_reward_before``    ... over windows ending at or before the first population
                                    event (the whole run when there is none)
    ``normalized_reward_after``     ... over windows after it (None when there is no event)
    ``final_cum_regret``            the last finite ``cum_regret``
    ``click_rate`` ... ``tracking_error``  run means of the :data:`SUMMARY_METRICS` columns

    ``recovery`` is a list with one dict per population event (kinds
    :data:`RECOVERY_EVENT_KINDS`, matched across seeds by order): ``event_step``, ``steps``
    (Stat of the uncensored recovery times, see :func:`recovery_time`; each event's horizon is
    the next event), ``n_recovered``, ``n_censored``, ``n_undefined`` (too few pre-event
    windows), ``dip`` (Stat), ``observed`` (mean steps examined after the event) and
    ``recoveries`` (the per-seed :class:`Recovery` values, in seed order).
    Other keys: ``scenario``, ``agent``, ``n`` (seeds), ``seeds``, ``fraction``.
    """
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.scenario, run.agent), []).append(run)
    rows: list[dict[str, Any]] = []
    for (scenario, agent), group in sorted(groups.items()):
        group = sorted(group, key=lambda r: r.seed)
        whole, before, after, regret = [], [], [], []
        per_event: dict[int, list[tuple[int, Recovery]]] = {}
        any_event = False
        for run in group:
            steps = run.steps
            nr = run.metrics.get("normalized_reward", np.full(steps.shape, np.nan))
            events = run.event_steps()
            whole.append(_run_mean(run, "normalized_reward"))
            if events:
                any_event = True
                before.append(_run_mean(run, "normalized_reward", steps <= events[0]))
                after.append(_run_mean(run, "normalized_reward", steps > events[0]))
            else:
                before.append(whole[-1])
            regret.append(_last_finite(run.metrics.get("cum_regret")))
            for k, ev in enumerate(events):
                horizon = events[k + 1] if k + 1 < len(events) else None
                rec = recovery_time(
                    steps,
                    nr,
                    ev,
                    pre_windows=pre_windows,
                    fraction=fraction,
                    sustain=sustain,
                    horizon=horizon,
                    min_level=min_level,
                )
                per_event.setdefault(k, []).append((ev, rec))
        recovery = []
        for k in sorted(per_event):
            recs = [rec for _, rec in per_event[k]]
            recovery.append(
                {
                    "event": k,
                    "event_step": per_event[k][0][0],
                    "steps": mean_ci([r.steps for r in recs if not r.censored]),
                    "n_recovered": sum(r.defined and not r.censored for r in recs),
                    "n_censored": sum(r.censored for r in recs),
                    "n_undefined": sum(not r.defined for r in recs),
                    "dip": mean_ci([r.dip for r in recs]),
                    "observed": float(np.nanmean([r.observed for r in recs]))
                    if any(math.isfinite(r.observed) for r in recs)
                    else math.nan,
                    "recoveries": recs,
                }
            )
        row: dict[str, Any] = {
            "scenario": scenario,
            "agent": agent,
            "n": len(group),
            "seeds": [r.seed for r in group],
            "fraction": fraction,
            "normalized_reward": mean_ci(whole),
            "normalized_reward_before": mean_ci(before),
            "normalized_reward_after": mean_ci(after) if any_event else None,
            "final_cum_regret": mean_ci(regret),
            "recovery": recovery,
        }
        for metric, _ in SUMMARY_METRICS:
            row[metric] = mean_ci([_run_mean(r, metric) for r in group])
        rows.append(row)
    return rows


def _decimals(x: float) -> int:
    ax = abs(x)
    if ax >= 100:
        return 0
    if ax >= 10:
        return 1
    if ax >= 1:
        return 2
    return 3


def _fmt_stat(stat: Stat | None, decimals: int | None = None) -> str:
    if stat is None or stat.n == 0 or not math.isfinite(stat.mean):
        return "–"
    d = _decimals(stat.mean) if decimals is None else decimals
    text = f"{stat.mean:,.{d}f}"
    if stat.n > 1 and math.isfinite(stat.half_width):
        text += f" ± {stat.half_width:,.{d}f}"
    return text


def _fmt_recovery(entry: Mapping[str, Any] | None) -> str:
    if entry is None:
        return "–"
    stat: Stat = entry["steps"]
    text = _fmt_stat(stat, 0) if entry["n_recovered"] else ""
    censored, total = entry["n_censored"], entry["n_recovered"] + entry["n_censored"]
    if censored:
        note = f"{censored}/{total} not recovered"
        text = f"{text} ({note})" if text else note
    return text or "n/a"


def _table_cells(
    rows: Sequence[Mapping[str, Any]], part: str = "all"
) -> tuple[list[str], list[list[str]]]:
    n_events = max((len(r["recovery"]) for r in rows), default=0)
    headers = [
        "scenario",
        "agent",
        "seeds",
        "reward/oracle",
        "before event",
        "after event",
        "final cum. regret",
    ]
    headers += [f"recovery #{k + 1} (steps)" for k in range(n_events)]
    headers += [label for _, label in SUMMARY_METRICS]
    cells = []
    for row in rows:
        line = [
            str(row["scenario"]),
            str(row["agent"]),
            str(row["n"]),
            _fmt_stat(row["normalized_reward"], 3),
            _fmt_stat(row["normalized_reward_before"], 3),
            _fmt_stat(row["normalized_reward_after"], 3),
            _fmt_stat(row["final_cum_regret"]),
        ]
        rec = row["recovery"]
        line += [_fmt_recovery(rec[k] if k < len(rec) else None) for k in range(n_events)]
        line += [
            _fmt_stat(row[m], None if m == "tracking_error" else 3) for m, _ in SUMMARY_METRICS
        ]
        cells.append(line)
    # metric columns that are zero (or undefined) for every agent say nothing: leave them out
    first_metric = len(headers) - len(SUMMARY_METRICS)
    keep = list(range(first_metric))
    for j, (metric, _) in enumerate(SUMMARY_METRICS):
        stats = [row.get(metric) for row in rows]
        if any(st is not None and st.n and st.mean != 0 and math.isfinite(st.mean) for st in stats):
            keep.append(first_metric + j)
    if part == "outcome":
        keep = [i for i in keep if i < first_metric]
    elif part == "behaviour":
        keep = [i for i in keep if i < 2 or i >= first_metric]
    elif part != "all":
        raise ValueError(f"'part' must be 'all', 'outcome' or 'behaviour' (got {part!r})")
    return [headers[i] for i in keep], [[line[i] for i in keep] for line in cells]


def format_table(
    rows: Sequence[Mapping[str, Any]], *, markdown: bool = True, part: str = "all"
) -> str:
    """Render :func:`summary_table` rows as a Markdown table (or aligned plain text).

    Cells read ``mean ± half-width of the 95% interval`` (no ``±`` with one seed, ``–`` when
    undefined); a recovery cell adds ``(k/n not recovered)`` for censored seeds and reads
    ``n/a`` when no seed had enough windows before the event (``–``: no such event).
    ``part`` picks the columns: ``"outcome"`` (reward, regret, recovery), ``"behaviour"``
    (the :data:`SUMMARY_METRICS`) or ``"all"``; metric columns that are zero or undefined for
    every row are left out.
    """
    headers, cells = _table_cells(rows, part)
    if markdown:

        def esc(text: str) -> str:
            return text.replace("|", "\\|")

        lines = ["| " + " | ".join(esc(h) for h in headers) + " |"]
        lines.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(headers))) + "|")
        lines += ["| " + " | ".join(esc(c) for c in line) + " |" for line in cells]
        return "\n".join(lines) + "\n"
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]

    def render(values: Sequence[str]) -> str:
        return "  ".join(
            v.ljust(w) if i < 2 else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return (
        "\n".join([render(headers), render(["-" * w for w in widths])] + [render(c) for c in cells])
        + "\n"
    )
