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
``mean +- t_{0.975, n-1} * sd / sqrt(n)`` (``sd`` with ``ddof=1``, the quantile from
``scipy.stats``); with one seed the interval collapses to the mean. ``nan`` values (a metric
undefined in a window) are ignored. Where each run's own standard error is known
(:func:`within_run_se`), ``sd`` is at least their root mean square, so three seeds that happen
to agree do not give a spuriously narrow interval; intervals are cut to the metric's range
(:data:`METRIC_BOUNDS`). :func:`bootstrap_ci` is the seeded (stratified) percentile bootstrap;
paired comparisons between agents are in :mod:`driftrec.experiments.comparison`.
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
    "METRIC_BOUNDS",
    "load_run",
    "load_runs",
    "MIN_SEEDS",
    "few_seeds_warning",
    "t_quantile_975",
    "mean_ci",
    "clip_stat",
    "within_run_se",
    "bootstrap_ci",
    "moving_average",
    "aggregate",
    "recovery_time",
    "reference_levels",
    "censored_median",
    "RECOVERY_REFERENCE",
    "summary_table",
    "format_table",
    "format_stat",
]

FloatArray = NDArray[np.float64]

RECOVERY_EVENT_KINDS: tuple[str, ...] = ("population_shift",)
"""Kinds of ``events.json`` events that :func:`summary_table` measures recovery from."""

RECOVERY_REFERENCE = "population-best"
"""The privileged non-learning agent whose level before and after an event sets the recovery
target (:func:`recovery_time`) and whose own recovery is the noise floor; when a grid has no
runs of it, recovery is relative to the agent's own pre-event level and has no floor."""

NO_RECOVERY_AGENTS: tuple[str, ...] = ("oracle",)
"""Agents whose recovery is not measured: the one-step oracle ratio of the oracle is 1 by
definition."""

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

_UNIT = (0.0, 1.0)
METRIC_BOUNDS: dict[str, tuple[float, float]] = {
    "normalized_reward": (0.0, 1.0),
    "greedy_normalized_reward": (0.0, 1.0),
    "click_rate": _UNIT,
    "coverage": _UNIT,
    "diversity": (0.0, 2.0),
    "cold_start_share": _UNIT,
    "oracle_cold_start_share": _UNIT,
    "churn": _UNIT,
    "retention": _UNIT,
    "tracking_error": _UNIT,
    "personal_gain": (-1.0, 1.0),
    "greedy_personal_gain": (-1.0, 1.0),
    "distinct_items": (1.0, math.inf),
    "greedy_distinct_items": (1.0, math.inf),
    "regret": (0.0, math.inf),
    "cum_regret": (0.0, math.inf),
    "reward": (0.0, math.inf),
    "user_return": (0.0, math.inf),
    "session_length": (0.0, math.inf),
}
"""The range each metric can take: intervals (table cells, figure bands) are cut to it. The
one-step oracle ratio is at most 1 for single items (the oracle is the best single item); a
slate can beat the greedy top-k slightly, which the bound then hides."""


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
    """Mean and 95% confidence interval ``[lo, hi]`` of ``n`` finite values.

    ``floored`` is True when the interval was widened to the values' own (within-seed)
    standard errors (see :func:`mean_ci`); ``clipped`` when it was cut to the metric's range.
    """

    mean: float
    lo: float
    hi: float
    n: int
    floored: bool = False
    clipped: bool = False

    @property
    def half_width(self) -> float:
        """``hi - mean`` (0 with one value, nan with none; the upper half when clipped)."""
        return self.hi - self.mean


MIN_SEEDS = 5
"""Fewer seeds than this get a warning in reports, console tables and figures: 95% intervals
from 2-4 runs are too wide to decide most comparisons, and their own width is unreliable
(Agarwal et al., "Deep RL at the edge of the statistical precipice", NeurIPS 2021)."""


def few_seeds_warning(n: int) -> str | None:
    """The warning for ``n`` seeds below :data:`MIN_SEEDS` (None from :data:`MIN_SEEDS` on)."""
    if n >= MIN_SEEDS:
        return None
    return (
        f"only {n} seed{'s' if n != 1 else ''} (fewer than {MIN_SEEDS}): intervals over so few "
        "runs are wide and their width is itself unreliable; run at least "
        f"{MIN_SEEDS} seeds before ranking agents"
    )


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df >= 1`` degrees of freedom (``scipy.stats``)."""
    if df < 1:
        raise ValueError(f"t_quantile_975: df must be >= 1 (got {df})")
    from scipy import stats

    return float(stats.t.ppf(0.975, df))


def mean_ci(
    values: ArrayLike,
    within_se: ArrayLike | None = None,
    *,
    bounds: tuple[float, float] | None = None,
) -> Stat:
    """Mean and 95% Student-t interval of the finite values (``nan`` Stat with none).

    ``mean +- t_{0.975, n-1} * sd / sqrt(n)``, ``sd`` with ``ddof=1``; one value gives a
    zero-width interval.

    Args:
        values: one value per seed (``nan`` entries are ignored).
        within_se: the standard error of each value within its own run (e.g.
            :func:`within_run_se`), aligned with ``values``. Seed-to-seed spread includes
            each run's own sampling noise, so ``sd`` cannot really be below the root mean
            square of these; with few seeds the sample ``sd`` often is (three values that
            happen to agree), and the interval would be spuriously narrow. The interval uses
            ``max(sd, rms(within_se))`` and the Stat says ``floored`` when that widened it.
        bounds: the metric's range ``(low, high)``: an interval reaching past it is cut to
            it and the Stat says ``clipped`` (a ratio in [0, 1] never reads ``0.61 +- 1.03``).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(x)
    se = None
    if within_se is not None:
        se = np.asarray(within_se, dtype=np.float64).ravel()
        if se.shape != x.shape:
            raise ValueError(
                f"mean_ci: within_se has {se.size} entries for {x.size} values (expected one "
                "standard error per value)"
            )
        se = se[finite]
    x = x[finite]
    n = int(x.size)
    if n == 0:
        return Stat(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Stat(mean, mean, mean, 1)
    sd = float(x.std(ddof=1))
    floored = False
    if se is not None and np.isfinite(se).any():
        floor = float(np.sqrt(np.nanmean(se**2)))
        if floor > sd:
            sd, floored = floor, True
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return clip_stat(Stat(mean, mean - half, mean + half, n, floored), bounds)


def clip_stat(stat: Stat, bounds: tuple[float, float] | None) -> Stat:
    """``stat`` with its interval cut to ``bounds`` (``clipped`` set when that changed it)."""
    if bounds is None or stat.n < 2:
        return stat
    low, high = min(bounds[0], stat.mean), max(bounds[1], stat.mean)
    lo, hi = max(stat.lo, low), min(stat.hi, high)
    if lo == stat.lo and hi == stat.hi:
        return stat
    tol = 1e-6 * (1.0 + abs(stat.mean))  # rounding past a bound is cut silently
    clipped = (lo - stat.lo) > tol or (stat.hi - hi) > tol
    return stat._replace(lo=lo, hi=hi, clipped=clipped)


def within_run_se(
    values: ArrayLike, weights: ArrayLike | None = None, *, batches: int = 8
) -> float:
    """Standard error of a run's mean of per-window ``values``, by batch means.

    The finite windows are cut into ``batches`` contiguous batches (at least 2 windows each,
    fewer batches when there are not enough windows); each batch's (``weights``-weighted) mean
    is one observation, and the variance of one batch mean is estimated from *successive*
    differences, ``sum (m_{b+1} - m_b)^2 / (2 (nb - 1))`` (von Neumann), which a smooth
    learning trend barely inflates, unlike the plain variance of the batch means. The
    standard error of the run's mean is ``sqrt(that / nb)``. Windows are autocorrelated, which
    batching absorbs as long as a batch is longer than the correlation. ``nan`` with fewer
    than 2 batches.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(w) & (w > 0)
    x, w = x[ok], w[ok]
    nb = min(batches, x.size // 2)
    if nb < 2:
        return math.nan
    edges = np.linspace(0, x.size, nb + 1).round().astype(int)
    means = np.array(
        [np.average(x[a:b], weights=w[a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    )
    var = float(np.sum(np.diff(means) ** 2) / (2 * (nb - 1)))
    return math.sqrt(var / nb)


def bootstrap_ci(
    values: ArrayLike,
    strata: ArrayLike | None = None,
    *,
    reps: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, stratified as rliable's (seeded).

    Each of ``reps`` replicates resamples the values with replacement *within each stratum*
    (e.g. a scenario; one stratum when None), keeping each stratum's size, and takes the
    mean; the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those
    means. The draws come from ``numpy.random.default_rng(seed)``, so the same values give the
    same interval. With n values a stratum has at most ``C(2n - 1, n)`` distinct resamples
    (10 for n = 3), so at small n this interval is too narrow: read it beside the t interval.
    ``(nan, nan)`` without finite values.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    labels = np.zeros(x.size, dtype=np.int64) if strata is None else np.asarray(strata).ravel()
    if labels.shape != x.shape:
        raise ValueError(f"bootstrap_ci: {labels.size} strata labels for {x.size} values")
    ok = np.isfinite(x)
    x, labels = x[ok], labels[ok]
    if x.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    total = np.zeros(reps)
    for label in np.unique(labels):
        group = x[labels == label]
        idx = rng.integers(0, group.size, size=(reps, group.size))  # (reps, n_k)
        total += group[idx].sum(axis=1)
    means = total / x.size
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


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
        mean, lo, hi: ``(W,)`` mean over seeds and the 95% Student-t interval (cut to the
            metric's range, :data:`METRIC_BOUNDS`).
        n: number of runs (seeds) aggregated.
        count: ``(W,)`` number of runs with a finite value in each window (None when unknown).
    """

    steps: FloatArray
    mean: FloatArray
    lo: FloatArray
    hi: FloatArray
    n: int
    count: NDArray[np.int64] | None = None


def _curve(
    steps: FloatArray, values: FloatArray, bounds: tuple[float, float] | None = None
) -> Curve:
    """Aggregate ``values`` (R, W) over its first axis; the band is cut to ``bounds``."""
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    safe = np.where(finite, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, safe.sum(axis=0) / np.maximum(count, 1), np.nan)
        dev = np.where(finite, values - mean, 0.0)
        var = (dev**2).sum(axis=0) / np.maximum(count - 1, 1)
        quantiles = {int(c): t_quantile_975(int(c) - 1) for c in np.unique(count) if c > 1}
        t = np.array([quantiles.get(int(c), 0.0) for c in count])
        half = np.where(count > 1, t * np.sqrt(var) / np.sqrt(np.maximum(count, 1)), 0.0)
    half = np.where(count > 0, half, np.nan)
    lo, hi = mean - half, mean + half
    if bounds is not None:  # never past the mean itself (a value outside the range stays)
        lo = np.maximum(lo, np.minimum(bounds[0], mean))
        hi = np.minimum(hi, np.maximum(bounds[1], mean))
    return Curve(
        steps=steps.copy(),
        mean=mean,
        lo=lo,
        hi=hi,
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
        curves[agent] = _curve(steps, values, METRIC_BOUNDS.get(metric))
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
        observed: for a censored run, a lower bound on its recovery time: the recovery time
            the last ``sustain`` examined windows could have shown (their start minus the
            event step; 0 with fewer). For a recovered run, the last examined window end minus
            the event step.
        below_level: the pre-event level was below ``min_level``: nothing to recover.
        target: the level the reward had to reach (``nan`` when undefined).
    """

    steps: float
    censored: bool
    pre_level: float
    dip: float
    observed: float = math.nan
    below_level: bool = False
    target: float = math.nan

    @property
    def defined(self) -> bool:
        """Whether there is a recovery to measure: enough pre-event windows and a pre-event
        level of at least ``min_level``."""
        return math.isfinite(self.pre_level) and not self.below_level


def reference_levels(
    steps: ArrayLike,
    reference_reward: ArrayLike,
    event_step: float,
    *,
    pre_windows: int = 5,
    horizon: float | None = None,
) -> tuple[float, float]:
    """``(A_pre, A_post)``: a reference run's level before and after an event.

    ``A_pre`` is the mean of its normalized reward over the last ``pre_windows`` windows
    ending at or before the event (the windows :func:`recovery_time` takes ``L`` from),
    ``A_post`` the mean over the windows after it (up to ``horizon``): what the reference
    achieves in the old and in the new world. ``nan`` where there are no such windows.
    """
    s = np.asarray(steps, dtype=np.float64)
    r = np.asarray(reference_reward, dtype=np.float64)
    pre = np.flatnonzero(s <= event_step)[-pre_windows:]
    after = s > event_step
    if horizon is not None:
        after &= s <= horizon
    pre_vals, post_vals = r[pre], r[after]
    pre_vals, post_vals = pre_vals[np.isfinite(pre_vals)], post_vals[np.isfinite(post_vals)]
    return (
        float(pre_vals.mean()) if pre_vals.size else math.nan,
        float(post_vals.mean()) if post_vals.size else math.nan,
    )


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
    reference: tuple[float, float] | None = None,
) -> Recovery:
    """How long the normalized reward takes to come back after a drift event.

    Definition, with windows indexed by their end step ``s_i`` (increasing) and normalized
    reward ``r_i``:

    1. Pre-event level ``L``: the mean of ``r_i`` over the last ``pre_windows`` windows with
       ``s_i <= event_step`` (a window ending at the event step was measured before the event
       took effect; ``nan`` entries are ignored). Undefined when there are fewer than
       ``pre_windows`` such windows or none of them is finite: then
       ``Recovery(nan, False, nan, nan)``.
    2. Target: with ``reference = (A_pre, A_post)`` (a privileged non-learning reference's
       level before and after the event on the same seed, :func:`reference_levels`), the
       agent's pre-event *standing* ``L / A_pre`` carried into the new world:
       ``T = fraction * L * A_post / A_pre``. The event can make the new world easier or
       harder for everyone; the target moves with what is achievable there instead of asking
       for the old level. Without a reference, ``T = fraction * L``.
    3. Examined windows: those with ``s_i > event_step`` (and ``s_i <= horizon`` when given,
       e.g. the next event's step).
    4. Recovery time: the time from the event to the *start* of the first examined window
       ``j`` such that ``r_j, ..., r_{j + sustain - 1}`` are all examined windows with
       ``r >= T`` (``nan`` fails the test), i.e. ``max(s_{j-1} - event_step, 0)``: the time
       spent below the target before the sustained stretch. A policy that is at the target in
       the first window after the event has recovery time 0; one that needs the second window
       has one window's length. (Before driftrec 0.4.0 the end of window ``j`` was reported,
       one window more.)
    5. Censored: no such ``j`` (including a run that ends, or reaches ``horizon``, before
       ``sustain`` good windows in a row): ``steps = nan``, ``censored = True``, and
       ``observed`` is a lower bound: the recovery time the last ``sustain`` examined windows
       could have shown (their start minus ``event_step``; 0 with fewer windows).
    6. Below level: when ``L < min_level`` the agent never reached a level worth recovering
       (e.g. the random agent at ~0.3 of the oracle, which "recovers" at once because it never
       fell): ``Recovery(nan, False, L, nan, nan, below_level=True)``, undefined.

    The reference itself has ``L = A_pre`` and so the target ``fraction * A_post``: its
    recovery measures only how far its own windows scatter around its new level, the *noise
    floor* of the statistic (0 for a reference that re-optimises every step, unless the event
    sets off a transient that every policy faces).
    ``dip`` is ``min(r_i) / L`` over the examined windows (``nan`` with none).
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
    target = fraction * level
    if reference is not None:
        a_pre, a_post = reference
        if not (math.isfinite(a_pre) and math.isfinite(a_post) and a_pre > 0):
            return Recovery(math.nan, False, math.nan, math.nan, math.nan)
        target = fraction * level * a_post / a_pre
    after = s > event_step
    if horizon is not None:
        after &= s <= horizon
    post = np.flatnonzero(after)
    if post.size == 0:
        return Recovery(math.nan, True, level, math.nan, 0.0, target=target)
    post_r = r[post]
    finite_post = post_r[np.isfinite(post_r)]
    dip = float(finite_post.min() / level) if finite_post.size and level != 0 else math.nan
    with np.errstate(invalid="ignore"):
        good = post_r >= target  # nan -> False
    run_length = 0
    for k, ok in enumerate(good):
        run_length = run_length + 1 if ok else 0
        if run_length == sustain:
            first = post[k - sustain + 1]
            observed = float(s[post[-1]] - event_step)
            return Recovery(
                _window_start(s, first, event_step), False, level, dip, observed, target=target
            )
    bound = _window_start(s, post[-sustain], event_step) if post.size >= sustain else 0.0
    return Recovery(math.nan, True, level, dip, bound, target=target)


def _window_start(steps: NDArray[np.float64], index: int, event_step: float) -> float:
    """Steps from ``event_step`` to the start of window ``index`` (the previous window's end;
    0 for the first window after the event)."""
    start = float(steps[index - 1]) if index > 0 else event_step
    return max(start - event_step, 0.0)


def censored_median(recoveries: Sequence[Recovery]) -> tuple[float, bool]:
    """``(median, is_lower_bound)``: the time by which half of the defined runs had recovered.

    Censored runs count as longer than any observed time, and the median is the lower one
    (``sorted(times)[(n - 1) // 2]``, as Kaplan-Meier's: the first time at which at least
    half have recovered), so it exists while fewer than half are censored; otherwise it is
    longer than the shortest censored run's lower bound, which is returned with True.
    ``(nan, False)`` without defined runs."""
    defined = [r for r in recoveries if r.defined]
    if not defined:
        return (math.nan, False)
    times = sorted(math.inf if r.censored else r.steps for r in defined)
    mid = times[(len(times) - 1) // 2]
    if math.isfinite(mid):
        return (float(mid), False)
    observed = [r.observed for r in defined if r.censored and math.isfinite(r.observed)]
    return (float(min(observed)) if observed else math.nan, True)


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


def _run_se(run: Run, metric: str, mask: NDArray[np.bool_] | None = None) -> float:
    values = run.metrics.get(metric)
    if values is None:
        return math.nan
    return within_run_se(values if mask is None else values[mask])


def _seed_stat(
    group: Sequence[Run], metric: str, masks: Sequence[NDArray[np.bool_] | None] | None = None
) -> Stat:
    """Stat over seeds of a run mean of ``metric`` with its within-run floor and range."""
    masks = masks if masks is not None else [None] * len(group)
    values = [_run_mean(r, metric, m) for r, m in zip(group, masks, strict=True)]
    ses = [_run_se(r, metric, m) for r, m in zip(group, masks, strict=True)]
    return mean_ci(values, ses, bounds=METRIC_BOUNDS.get(metric))


def _last_finite(values: FloatArray | None) -> float:
    if values is None:
        return math.nan
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else math.nan


def _run_recoveries(
    run: Run,
    reference: Run | None,
    *,
    fraction: float,
    pre_windows: int,
    sustain: int,
    min_level: float,
) -> list[tuple[int, Recovery]]:
    """``[(event step, Recovery)]`` for each population event of ``run``."""
    steps = run.steps
    nr = run.metrics.get("normalized_reward", np.full(steps.shape, np.nan))
    events = run.event_steps()
    out = []
    for k, ev in enumerate(events):
        horizon = events[k + 1] if k + 1 < len(events) else None
        levels = None
        if reference is not None:
            ref_nr = reference.metrics.get("normalized_reward")
            if ref_nr is not None and np.array_equal(reference.steps, steps):
                levels = reference_levels(
                    steps, ref_nr, ev, pre_windows=pre_windows, horizon=horizon
                )
            else:
                levels = (math.nan, math.nan)  # no usable reference: undefined, not guessed
        rec = recovery_time(
            steps,
            nr,
            ev,
            pre_windows=pre_windows,
            fraction=fraction,
            sustain=sustain,
            horizon=horizon,
            min_level=min_level,
            reference=levels,
        )
        out.append((ev, rec))
    return out


def _recovery_entry(k: int, event_step: int, recs: list[Recovery]) -> dict[str, Any]:
    median, lower_bound = censored_median(recs)
    return {
        "event": k,
        "event_step": event_step,
        "steps": mean_ci([r.steps for r in recs if not r.censored]),
        "median": median,
        "median_is_lower_bound": lower_bound,
        "n_recovered": sum(r.defined and not r.censored for r in recs),
        "n_censored": sum(r.censored for r in recs),
        "n_undefined": sum(not r.defined for r in recs),
        "dip": mean_ci([r.dip for r in recs]),
        "observed": float(np.nanmean([r.observed for r in recs]))
        if any(math.isfinite(r.observed) for r in recs)
        else math.nan,
        "recoveries": recs,
    }


def summary_table(
    runs: Sequence[Run],
    *,
    fraction: float = 0.9,
    pre_windows: int = 5,
    sustain: int = 2,
    min_level: float = 0.5,
    recovery_reference: str | None = RECOVERY_REFERENCE,
) -> list[dict[str, Any]]:
    """One row per (scenario, agent), sorted, summarising its seeds.

    Recovery (:func:`recovery_time`) is measured against ``recovery_reference`` (the
    privileged ``population-best`` by default) run on the same seed: its level before and
    after each event sets the target, and its own recovery on the agent's seeds is the noise
    floor. Without runs of it in the scenario, recovery is relative to the agent's own
    pre-event level and has no floor. Recovery is measured only for runs whose pre-event
    one-step oracle ratio is at least ``min_level`` (default 0.5); below it the run counts as
    undefined (``n_undefined``). The oracle's recovery is not measured (its ratio is 1).

    Every statistic is a :class:`Stat` over seeds of a per-run value, with the interval
    floored at the runs' own standard errors and cut to the metric's range (:func:`mean_ci`):

    ``normalized_reward``           mean of the window values over the whole run
    ``normalized_reward_before``    ... over windows ending at or before the first population
                                    event (the whole run when there is none)
    ``normalized_reward_after``     ... over windows after it (None when there is no event)
    ``final_cum_regret``            the last finite ``cum_regret``
    ``click_rate`` ... ``tracking_error``  run means of the :data:`SUMMARY_METRICS` columns

    ``recovery`` is a list with one dict per population event (kinds
    :data:`RECOVERY_EVENT_KINDS`, matched across seeds by order): ``event_step``, ``median``
    (the time by which half the seeds had recovered, censored ones counted as longer; a lower
    bound when
    ``median_is_lower_bound``, see :func:`censored_median`), ``steps`` (Stat of the
    uncensored recovery times; each event's horizon is the next event), ``n_recovered``,
    ``n_censored``, ``n_undefined`` (too few pre-event windows or below ``min_level``),
    ``dip`` (Stat), ``observed`` (mean of the runs' ``Recovery.observed``), ``recoveries`` (the
    per-seed :class:`Recovery` values, in seed order) and ``floor`` (the reference's entry of
    the same form over the same seeds, or None).
    Other keys: ``scenario``, ``agent``, ``n`` (seeds), ``seeds``, ``fraction``,
    ``recovery_reference`` (None when recovery had no reference).
    """
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.scenario, run.agent), []).append(run)
    by_seed = {(r.scenario, r.agent, r.seed): r for r in runs}
    options = {
        "fraction": fraction,
        "pre_windows": pre_windows,
        "sustain": sustain,
        "min_level": min_level,
    }
    rows: list[dict[str, Any]] = []
    for (scenario, agent), group in sorted(groups.items()):
        group = sorted(group, key=lambda r: r.seed)
        has_ref = recovery_reference is not None and (scenario, recovery_reference) in groups
        ref_name = recovery_reference if has_ref else None
        before_masks: list[NDArray[np.bool_] | None] = []
        after_masks: list[NDArray[np.bool_] | None] = []
        regret = []
        per_event: dict[int, list[tuple[int, Recovery]]] = {}
        floor_event: dict[int, list[Recovery]] = {}
        any_event = False
        for run in group:
            steps = run.steps
            events = run.event_steps()
            if events:
                any_event = True
                before_masks.append(steps <= events[0])
                after_masks.append(steps > events[0])
            else:
                before_masks.append(None)
                after_masks.append(np.zeros(steps.shape, dtype=bool))
            regret.append(_last_finite(run.metrics.get("cum_regret")))
            if agent in NO_RECOVERY_AGENTS:
                continue
            ref_run = by_seed.get((scenario, ref_name, run.seed)) if ref_name else None
            if ref_name is not None and ref_run is None:  # this seed lacks a reference run
                ref_run = Run(run.path, {}, {}, [])  # -> undefined, never the old rule
            for k, (ev, rec) in enumerate(_run_recoveries(run, ref_run, **options)):
                per_event.setdefault(k, []).append((ev, rec))
                if ref_run is not None and ref_run.metrics:
                    floor = _run_recoveries(ref_run, ref_run, **options)
                    if k < len(floor):
                        floor_event.setdefault(k, []).append(floor[k][1])
        recovery = []
        for k in sorted(per_event):
            entry = _recovery_entry(k, per_event[k][0][0], [rec for _, rec in per_event[k]])
            entry["floor"] = (
                _recovery_entry(k, per_event[k][0][0], floor_event[k])
                if floor_event.get(k)
                else None
            )
            recovery.append(entry)
        row: dict[str, Any] = {
            "scenario": scenario,
            "agent": agent,
            "n": len(group),
            "seeds": [r.seed for r in group],
            "fraction": fraction,
            "recovery_reference": ref_name,
            "normalized_reward": _seed_stat(group, "normalized_reward"),
            "normalized_reward_before": _seed_stat(group, "normalized_reward", before_masks),
            "normalized_reward_after": _seed_stat(group, "normalized_reward", after_masks)
            if any_event
            else None,
            "final_cum_regret": mean_ci(regret),
            "recovery": recovery,
        }
        for metric, _ in SUMMARY_METRICS:
            row[metric] = _seed_stat(group, metric)
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


def _number(x: float, d: int) -> str:
    """``x`` with ``d`` decimals; no minus sign on a value that rounds to zero (``-0.000``)."""
    text = f"{x:,.{d}f}"
    if text.startswith("-") and not any(c in "123456789" for c in text):
        return text[1:]
    return text


def format_stat(stat: Stat | None, decimals: int | None = None) -> str:
    """``mean ± half-width``; ``mean [lo, hi]‡`` when cut to the range; ``†`` when floored."""
    if stat is None or stat.n == 0 or not math.isfinite(stat.mean):
        return "–"
    d = _decimals(stat.mean) if decimals is None else decimals
    text = _number(stat.mean, d)
    if stat.n > 1 and math.isfinite(stat.half_width):
        if stat.clipped:
            text += f" [{_number(stat.lo, d)}, {_number(stat.hi, d)}]‡"
        else:
            text += f" ± {stat.half_width:,.{d}f}"
        if stat.floored:
            text += "†"
    return text


def _fmt_recovery(entry: Mapping[str, Any] | None) -> str:
    """``median (shortest–longest)`` over the seeds, ``>`` for censored spans, then
    ``k/n censored`` and ``k/n n/a`` (seeds without a recovery to measure); ``n/a`` when no
    seed had one."""
    if entry is None:
        return "–"
    recs = [r for r in entry.get("recoveries", []) if r.defined]
    if not recs:
        return "n/a"
    median = entry.get("median", math.nan)
    if not math.isfinite(median):
        return "n/a"
    text = f"{'>' if entry.get('median_is_lower_bound') else ''}{median:,.0f}"
    spans = [(r.observed if r.censored else r.steps, r.censored) for r in recs]
    spans = [(v, c) for v, c in spans if math.isfinite(v)]
    if len(spans) > 1:
        lo, hi = min(spans), max(spans, key=lambda x: (x[1], x[0]))
        text += f" ({'>' if lo[1] else ''}{lo[0]:,.0f}–{'>' if hi[1] else ''}{hi[0]:,.0f})"
    total = len(entry.get("recoveries", []))
    censored, undefined = entry["n_censored"], total - len(recs)
    if censored:
        text += f", {censored}/{total} censored"
    if undefined:
        text += f", {undefined}/{total} n/a"
    return text


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
    floors = [
        k
        for k in range(n_events)
        if any(k < len(r["recovery"]) and r["recovery"][k].get("floor") for r in rows)
    ]
    ref = next((r.get("recovery_reference") for r in rows if r.get("recovery_reference")), None)
    headers += [f"recovery #{k + 1} (steps)" for k in range(n_events)]
    headers += [f"noise floor #{k + 1} ({ref})" for k in floors]
    headers += [label for _, label in SUMMARY_METRICS]
    cells = []
    for row in rows:
        line = [
            str(row["scenario"]),
            str(row["agent"]),
            str(row["n"]),
            format_stat(row["normalized_reward"], 3),
            format_stat(row["normalized_reward_before"], 3),
            format_stat(row["normalized_reward_after"], 3),
            format_stat(row["final_cum_regret"]),
        ]
        rec = row["recovery"]
        line += [_fmt_recovery(rec[k] if k < len(rec) else None) for k in range(n_events)]
        line += [_fmt_recovery(rec[k].get("floor") if k < len(rec) else None) for k in floors]
        line += [
            format_stat(row[m], None if m in ("tracking_error", "greedy_distinct_items") else 3)
            for m, _ in SUMMARY_METRICS
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
    undefined); ``mean [lo, hi]‡`` when the interval was cut to the metric's range, ``†``
    when it was widened to the runs' own standard errors (:func:`mean_ci`). A recovery cell
    reads ``median (shortest–longest)`` over the seeds with ``>`` marking censored spans and
    ``, k/n censored`` when some never recovered, ``n/a`` when no seed had a recovery to
    measure (``–``: no such event); the noise-floor column is the same statistic for the
    recovery reference on the same seeds.
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
