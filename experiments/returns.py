"""Return metrics: what an agent earns per user over a whole stay, against a reference policy.

The one-step oracle ratio (``normalized_reward``) divides by the myopic oracle re-evaluated in
the state the agent created, so it cannot exceed about 1 and cannot credit planning. The
headline metrics here can:

===================  =========================================================================
``user_return``      mean return (summed reward) per user over a whole stay, leaving included:
                     every stay that ended during the run counts once (stays still running
                     when the run stops are not counted)
``stay_length``      mean number of steps of those stays (``session_length`` in metrics.csv)
``retention``        share of those stays that lasted to the time limit (the user did not leave)
``return_ratio``     ``user_return`` of the agent / ``user_return`` of the reference agent
                     (default the greedy one-step oracle) on the same scenario and seed, i.e.
                     the same user streams, world and catalog; computed per seed, then
                     averaged. Above 1: the agent plans better than the myopic oracle.
===================  =========================================================================

Every value is per run first (stays pooled over the run), then a mean and 95% Student-t
interval over seeds (:func:`~driftrec.experiments.analysis.mean_ci`, floored at the runs'
within-run standard errors and cut to each value's range).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from driftrec.experiments.analysis import Run, Stat, format_stat, mean_ci, within_run_se

__all__ = ["run_returns", "return_table", "format_return_table", "METRIC_DEFINITIONS"]


def _run_return_se(run: Run) -> dict[str, float]:
    """Within-run standard errors of the per-stay values (batch means over windows)."""
    sessions = run.metrics.get("sessions")
    out = {"user_return": math.nan, "stay_length": math.nan, "retention": math.nan}
    if sessions is None:
        return out
    weights = np.nan_to_num(np.asarray(sessions, dtype=np.float64))
    for key, column in (
        ("user_return", "user_return"),
        ("stay_length", "session_length"),
        ("retention", "retention"),
    ):
        values = run.metrics.get(column)
        if values is not None:
            out[key] = within_run_se(values, weights)
    return out


def run_returns(run: Run) -> dict[str, float]:
    """Per-run ``user_return``, ``stay_length`` and ``retention`` over every stay that ended.

    Window values are weighted by the stays that ended in each window, so each stay counts once.
    Runs written before these columns existed give nan.
    """
    sessions = run.metrics.get("sessions")
    out = {"user_return": math.nan, "stay_length": math.nan, "retention": math.nan}
    if sessions is None:
        return out
    weights = np.nan_to_num(np.asarray(sessions, dtype=np.float64))
    total = float(weights.sum())
    if total <= 0:
        return out
    for key, column in (
        ("user_return", "user_return"),
        ("stay_length", "session_length"),
        ("retention", "retention"),
    ):
        values = run.metrics.get(column)
        if values is None:
            continue
        ok = weights > 0
        out[key] = float((np.asarray(values)[ok] * weights[ok]).sum() / weights[ok].sum())
    return out


def return_table(runs: Sequence[Run], reference: str | None = "oracle") -> list[dict[str, Any]]:
    """One row per (scenario, agent): :class:`Stat` s over seeds of the return metrics.

    Keys: ``scenario``, ``agent``, ``n`` (seeds), ``user_return``, ``stay_length``,
    ``retention``, ``return_ratio`` (None without reference runs), ``reference``.
    """
    per_run = {(r.scenario, r.agent, r.seed): run_returns(r) for r in runs}
    per_run_se = {(r.scenario, r.agent, r.seed): _run_return_se(r) for r in runs}
    groups: dict[tuple[str, str], list[int]] = {}
    for scenario, agent, seed in per_run:
        groups.setdefault((scenario, agent), []).append(seed)
    rows = []
    for (scenario, agent), seeds in sorted(groups.items()):
        seeds = sorted(seeds)
        values = [per_run[(scenario, agent, s)] for s in seeds]
        row: dict[str, Any] = {
            "scenario": scenario,
            "agent": agent,
            "n": len(seeds),
            "reference": reference,
        }
        ses = [per_run_se[(scenario, agent, s)] for s in seeds]
        for key in ("user_return", "stay_length", "retention"):
            row[key] = mean_ci(
                [v[key] for v in values],
                [e[key] for e in ses],
                bounds=(0.0, 1.0) if key == "retention" else (0.0, math.inf),
            )
        ratios = []
        for s, v in zip(seeds, values, strict=True):
            ref = per_run.get((scenario, reference, s)) if reference is not None else None
            if ref is not None and ref["user_return"] > 0:
                ratios.append(v["user_return"] / ref["user_return"])
        row["return_ratio"] = mean_ci(ratios, bounds=(0.0, math.inf)) if ratios else None
        rows.append(row)
    return rows


def _fmt(stat: Stat | None, decimals: int) -> str:
    return format_stat(stat, decimals)


def format_return_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The return table as Markdown: mean ± half-width of the 95% interval over seeds."""
    ref = next((r["reference"] for r in rows if r.get("reference")), None)
    ratio = f"return / {ref}" if ref else "return ratio"
    lines = [
        f"| scenario | agent | seeds | return per user | stay (steps) | retention | {ratio} |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['scenario']} | {row['agent']} | {row['n']} | "
            f"{_fmt(row['user_return'], 2)} | {_fmt(row['stay_length'], 1)} | "
            f"{_fmt(row['retention'], 3)} | {_fmt(row['return_ratio'], 3)} |"
        )
    return "\n".join(lines) + "\n"


METRIC_DEFINITIONS = """## Metric definitions

Per user-step quantities are means over the users of a logging window; per-run values are
means over the run's windows (or its stays); every table cell is a mean ± the half-width of
the 95% Student-t interval over seeds.

- **return per user** (`user_return`): reward summed over one user's whole stay, leaving
  included, averaged over every stay that ended during the run. The headline metric: an
  agent that keeps users longer, or avoids clickbait that drains them, earns more here.
- **stay (steps)** (`session_length`): steps per ended stay. **retention**: share of stays
  that reached the time limit (the user did not leave); `churn` is `1 - retention`.
- **return / reference** (*return ratio*): the agent's return per user divided by the
  reference agent's (the greedy one-step oracle unless the experiment says otherwise) on the
  same scenario and seed: the same user streams, world and catalog. It exceeds 1 when the
  agent plans better than the myopic oracle.
- **reward/oracle** (`normalized_reward`, the *one-step oracle ratio*): expected reward of the
  shown items / expected reward of the privileged one-step oracle in the same user states.
  The oracle is re-evaluated in whatever state the agent created, so this is at most about 1
  and cannot credit planning (a policy that beats the oracle over a stay can score below 1).
- **regret** (one meaning everywhere): one-step regret, the oracle's expected reward minus the
  shown action's, per user-step; **cum. regret** (`cum_regret`, and `EvalResult.regret`) is
  its sum over global steps, i.e. per user slot, not summed over users.
- **click rate**, **diversity**, **coverage**, **cold-start share**, **tracking error**: see
  the column table in `driftrec.experiments.recorder`.
- **recovery**: see "How to read the adaptation plot" above.
"""
