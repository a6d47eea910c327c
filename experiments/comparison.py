r"""Paired comparisons: each agent minus a named reference agent, seed by seed.

Runs of different agents with the same seed see the same user streams (and, with
``vary_world``, the same world and catalog), so the honest comparison of two agents is the
*paired* per-seed difference ``d_s = m(agent, s) - m(reference, s)``: the world-to-world
variance that makes each agent's own interval wide cancels in it.

For every agent, measure and scenario:

* **paired t**: ``mean(d) +- t_{0.975, n-1} * sd(d) / sqrt(n)`` (``scipy.stats``), with ``sd``
  floored at the root mean square of each seed's own standard error of ``d_s`` (batch means
  over the run's windows, :func:`~driftrec.experiments.analysis.within_run_se`): at small n the
  sample ``sd`` of a few differences that happen to agree is spuriously small, and the seed
  spread cannot really be below each seed's own sampling noise (``floored`` marks where the
  floor widened an interval);
* **bootstrap**: the seeded percentile bootstrap of the mean difference
  (:func:`~driftrec.experiments.analysis.bootstrap_ci`; stratified by scenario when several
  are pooled, as rliable's), which does not assume normal differences but is too narrow at
  n < 5 (with three seeds it can only take ten values);
* **verdict**: ``higher`` or ``lower`` only when *both* intervals exclude 0, else
  ``not distinguishable``; ``n/a`` with fewer than two common seeds.

The **reference** is named by the user (``compare_to``) or chosen by a rule,
:func:`choose_reference`: the non-privileged baseline (a bandit-style agent of the registry:
``random``, ``popularity``, ``epsilon-greedy``, the LinUCB variants, ``thompson``,
``history-similarity``) with the highest mean return per user (the one-step oracle ratio when
no run has ended stays) over the scenario's seeds, i.e. the strongest simple agent to beat.
Privileged agents (``oracle``, ``planner``, ``population-best``) are compared with it like any
other, but are never chosen.

Measures (:data:`MEASURES`): ``user_return`` (return per user over whole stays, each window
weighted by the stays that ended in it, as :func:`~driftrec.experiments.returns.run_returns`)
and ``normalized_reward`` (the one-step oracle ratio, the mean over windows); any other
``metrics.csv`` column works as an unweighted window mean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftrec.experiments.analysis import (
    Run,
    Stat,
    bootstrap_ci,
    few_seeds_warning,
    mean_ci,
    within_run_se,
)

__all__ = [
    "Measure",
    "MEASURES",
    "HEADLINE_MEASURES",
    "PairedDifference",
    "paired_difference",
    "choose_reference",
    "compare_agents",
    "format_comparison",
    "comparison_note",
    "NOT_DISTINGUISHABLE",
]

NOT_DISTINGUISHABLE = "not distinguishable"

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Measure:
    """A per-run value computed from one ``metrics.csv`` column.

    Attributes:
        column: the column.
        label: how tables name it.
        decimals: digits shown.
        weight_column: the column whose window values weight the windows (``sessions`` for
            per-stay values), or None for a plain mean over windows.
    """

    column: str
    label: str
    decimals: int = 3
    weight_column: str | None = None

    def series(self, run: Run) -> tuple[FloatArray, FloatArray]:
        """``(values, weights)`` per window (weights 1 for unweighted measures); all nan when
        the run has no such column (runs of older versions)."""
        column = run.metrics.get(self.column)
        if column is None:
            return np.full(run.steps.shape, math.nan), np.zeros(run.steps.shape)
        values = np.asarray(column, dtype=np.float64)
        if self.weight_column is None:
            return values, np.ones_like(values)
        weights = run.metrics.get(self.weight_column)
        if weights is None:
            return np.full_like(values, math.nan), np.zeros_like(values)
        return values, np.nan_to_num(np.asarray(weights, dtype=np.float64))

    def value(self, run: Run) -> float:
        """The run's value: the (weighted) mean of its finite windows (nan with none)."""
        values, weights = self.series(run)
        ok = np.isfinite(values) & (weights > 0)
        if not ok.any():
            return math.nan
        return float(np.average(values[ok], weights=weights[ok]))


MEASURES: dict[str, Measure] = {
    "user_return": Measure("user_return", "return per user", 2, "sessions"),
    "normalized_reward": Measure("normalized_reward", "reward / one-step oracle", 3),
    "greedy_personal_gain": Measure("greedy_personal_gain", "personal gain (greedy)", 3),
    "greedy_normalized_reward": Measure(
        "greedy_normalized_reward", "greedy reward / one-step oracle", 3
    ),
}
"""The measures with their labels; other ``metrics.csv`` columns get a plain window mean."""

HEADLINE_MEASURES: tuple[str, ...] = ("user_return", "normalized_reward")
"""What ``report.md`` and the console compare: return per user, then the one-step oracle ratio."""


def _measure(name: str | Measure) -> Measure:
    if isinstance(name, Measure):
        return name
    return MEASURES.get(name) or Measure(name, name.replace("_", " "))


@dataclass(frozen=True)
class PairedDifference:
    """``agent - reference`` on one measure over the seeds both were run with.

    Attributes:
        agent, reference, measure: what is compared.
        seeds: the common seeds with a finite value for both (sorted by scenario, then seed;
            a seed recurs when several scenarios are pooled).
        diffs: ``(n,)`` per-seed differences ``d_s``.
        within_se: ``(n,)`` each seed's own standard error of ``d_s`` (batch means; nan when
            the runs are too short).
        t: the paired-t :class:`~driftrec.experiments.analysis.Stat` of the mean difference
            (``floored`` when the within-seed floor widened it).
        bootstrap: the bootstrap 95% interval ``(lo, hi)`` of the mean difference.
        reference_mean: the reference's mean value over those seeds (for relative figures).
    """

    agent: str
    reference: str
    measure: Measure
    seeds: tuple[int, ...]
    diffs: FloatArray
    within_se: FloatArray
    t: Stat
    bootstrap: tuple[float, float]
    reference_mean: float = math.nan
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Common seeds."""
        return len(self.seeds)

    @property
    def ahead(self) -> int:
        """Seeds on which the agent's value is above the reference's."""
        return int((self.diffs > 0).sum())

    @property
    def verdict(self) -> str:
        """``higher`` / ``lower`` when both intervals exclude 0, else ``not distinguishable``
        (``n/a`` below two seeds)."""
        if self.n < 2 or not math.isfinite(self.t.mean):
            return "n/a"
        lo = min(self.t.lo, self.bootstrap[0])  # the union of the two intervals
        hi = max(self.t.hi, self.bootstrap[1])
        if lo > 0:
            return "higher"
        if hi < 0:
            return "lower"
        return NOT_DISTINGUISHABLE

    def interval_text(self, decimals: int | None = None) -> str:
        """``+4.15 [-1.21, +9.51]``: the mean difference and its paired-t interval."""
        d = self.measure.decimals if decimals is None else decimals
        if self.n == 0 or not math.isfinite(self.t.mean):
            return "–"
        text = f"{self.t.mean:+.{d}f}"
        if self.n > 1:
            text += f" [{self.t.lo:+.{d}f}, {self.t.hi:+.{d}f}]"
            if self.t.floored:
                text += "†"
        return text

    def bootstrap_text(self, decimals: int | None = None) -> str:
        """``[-0.52, +8.90]``: the bootstrap interval."""
        d = self.measure.decimals if decimals is None else decimals
        lo, hi = self.bootstrap
        if self.n < 2 or not (math.isfinite(lo) and math.isfinite(hi)):
            return "–"
        return f"[{lo:+.{d}f}, {hi:+.{d}f}]"


def _diff_series(measure: Measure, a: Run, b: Run) -> tuple[FloatArray, FloatArray]:
    """Per-window differences ``a - b`` and their weights (windows where both are defined)."""
    va, wa = measure.series(a)
    vb, wb = measure.series(b)
    if va.shape != vb.shape or not np.array_equal(a.steps, b.steps):
        return np.full(1, math.nan), np.zeros(1)  # different window grids: no per-window SE
    weights = np.minimum(wa, wb)
    ok = np.isfinite(va) & np.isfinite(vb) & (weights > 0)
    return np.where(ok, va - vb, math.nan), np.where(ok, weights, 0.0)


def paired_difference(
    runs: Sequence[Run],
    agent: str,
    reference: str,
    measure: str | Measure = "user_return",
    *,
    reps: int = 10_000,
    seed: int = 0,
) -> PairedDifference:
    """``agent - reference`` on ``measure``, paired by seed, over the runs of *one* scenario
    (or several: then the bootstrap is stratified by scenario and a seed is a (scenario,
    seed) pair).

    Raises:
        ValueError: either agent has no run.
    """
    m = _measure(measure)
    by_key: dict[tuple[str, str, int], Run] = {(r.scenario, r.agent, r.seed): r for r in runs}
    for name in (agent, reference):
        if not any(k[1] == name for k in by_key):
            agents = sorted({k[1] for k in by_key})
            raise ValueError(f"no runs of agent {name!r} to compare (agents: {agents})")
    pairs = sorted(
        (scen, s) for scen, name, s in by_key if name == agent and (scen, reference, s) in by_key
    )
    diffs, ses, refs, strata, kept = [], [], [], [], []
    for scen, s in pairs:
        a, b = by_key[(scen, agent, s)], by_key[(scen, reference, s)]
        va, vb = m.value(a), m.value(b)
        if not (math.isfinite(va) and math.isfinite(vb)):
            continue
        d_series, d_weights = _diff_series(m, a, b)
        diffs.append(va - vb)
        ses.append(within_run_se(d_series, d_weights))
        refs.append(vb)
        strata.append(scen)
        kept.append(s)
    diffs_a = np.asarray(diffs, dtype=np.float64)
    ses_a = np.asarray(ses, dtype=np.float64)
    strata_codes = np.unique(np.asarray(strata, dtype=str), return_inverse=True)[1]
    stat = mean_ci(diffs_a, ses_a)
    boot = (
        bootstrap_ci(diffs_a, strata_codes, reps=reps, seed=seed)
        if diffs_a.size > 1
        else (math.nan, math.nan)
    )
    return PairedDifference(
        agent=agent,
        reference=reference,
        measure=m,
        seeds=tuple(kept),
        diffs=diffs_a,
        within_se=ses_a,
        t=stat,
        bootstrap=boot,
        reference_mean=float(np.mean(refs)) if refs else math.nan,
    )


def _is_candidate(agent: str) -> bool:
    from driftrec.agents.baselines import BASELINE_NAMES, PRIVILEGED_AGENTS

    return agent in BASELINE_NAMES and agent not in PRIVILEGED_AGENTS


def choose_reference(runs: Sequence[Run], measure: str | Measure = "user_return") -> str | None:
    """The default reference of a scenario's comparisons (the rule in the module docs).

    Among the non-privileged baselines with runs, the one with the highest mean of ``measure``
    over its seeds (ties: the first name); when no run of theirs has a finite value of it,
    the one-step oracle ratio decides. None when the runs hold no such baseline.
    """
    candidates = sorted({r.agent for r in runs if _is_candidate(r.agent)})
    if not candidates:
        return None
    for m in (_measure(measure), MEASURES["normalized_reward"]):
        means = {}
        for agent in candidates:
            values = [m.value(r) for r in runs if r.agent == agent and m.column in r.metrics]
            finite = [v for v in values if math.isfinite(v)]
            if finite:
                means[agent] = float(np.mean(finite))
        if means:
            return max(candidates, key=lambda a: (means.get(a, -math.inf), -candidates.index(a)))
    return candidates[0]


def compare_agents(
    runs: Sequence[Run],
    reference: str | None = None,
    measures: Sequence[str | Measure] = HEADLINE_MEASURES,
    *,
    reps: int = 10_000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Per scenario, every other agent minus the reference on each measure.

    Args:
        runs: the experiment's runs.
        reference: the agent to compare with; None chooses per scenario by
            :func:`choose_reference`. A scenario without runs of it gets no rows.
        measures: measure names (keys of :data:`MEASURES` or ``metrics.csv`` columns).
        reps, seed: the bootstrap's replicates and seed.

    Returns:
        One dict per (scenario, agent), sorted by scenario then by the agent's mean
        difference on the first measure (best first): ``scenario``, ``agent``,
        ``reference``, ``chosen`` (True when the rule picked the reference), ``n`` (common
        seeds) and ``diffs`` (``{measure name: PairedDifference}``). Agents with runs of
        measures that are missing everywhere are skipped for those measures.
    """
    out: list[dict[str, Any]] = []
    for scenario in sorted({r.scenario for r in runs}):
        group = [r for r in runs if r.scenario == scenario]
        ref = reference if reference is not None else choose_reference(group)
        if ref is None or not any(r.agent == ref for r in group):
            continue
        rows = []
        for agent in sorted({r.agent for r in group} - {ref}):
            diffs = {}
            for name in measures:
                m = _measure(name)
                if not any(m.column in r.metrics for r in group):
                    continue
                diffs[m.column] = paired_difference(group, agent, ref, m, reps=reps, seed=seed)
            if diffs:
                n = max(d.n for d in diffs.values())
                rows.append(
                    {
                        "scenario": scenario,
                        "agent": agent,
                        "reference": ref,
                        "chosen": reference is None,
                        "n": n,
                        "diffs": diffs,
                    }
                )

        def order(row: Mapping[str, Any]) -> float:
            first = next(iter(row["diffs"].values()))
            return -first.t.mean if math.isfinite(first.t.mean) else math.inf

        out += sorted(rows, key=order)
    return out


def comparison_note(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The lines that go under a comparison table: how the reference was chosen, the
    intervals, the symbols and the few-seeds warning."""
    lines = []
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        row = next(r for r in rows if r["scenario"] == scenario)
        how = (
            "the non-privileged baseline with the highest mean return per user (default rule)"
            if row["chosen"]
            else "chosen by the user"
        )
        lines.append(f"{scenario}: reference `{row['reference']}`, {how}.")
    lines.append(
        "Each cell is the mean over seeds of the per-seed difference (agent minus reference, "
        "same seed = same users, world and catalog) and its 95% paired-t interval; "
        "'bootstrap' is the seeded percentile bootstrap interval of the same mean. A verdict "
        "says higher or lower only when both intervals exclude 0. † the interval was widened "
        "to the seeds' own within-run standard errors (the seed spread was smaller than each "
        "run's sampling noise)."
    )
    n_min = min((r["n"] for r in rows), default=0)
    warning = few_seeds_warning(n_min) if rows else None
    if warning:
        lines.append(f"WARNING: {warning}.")
    return lines


def format_comparison(
    rows: Sequence[Mapping[str, Any]],
    *,
    markdown: bool = True,
    measures: Sequence[str] | None = None,
) -> str:
    """Render :func:`compare_agents` rows as Markdown (or aligned plain text), one table per
    scenario; each measure gets the difference with its t interval, the bootstrap interval,
    the seeds ahead and the verdict."""
    if not rows:
        return ""
    names = list(measures) if measures is not None else list(rows[0]["diffs"])
    blocks = []
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        group = [r for r in rows if r["scenario"] == scenario]
        ref = group[0]["reference"]
        headers = ["agent", "seeds"]
        for name in names:
            label = _measure(name).label
            if markdown:
                headers += [f"{label}: minus {ref} [95% t]", "bootstrap 95%", "ahead", "verdict"]
            else:  # narrow: the reference is in the title line
                headers += [f"{label} [95% t]", "bootstrap", "ahead", "verdict"]
        cells = []
        for row in group:
            line = [str(row["agent"]), str(row["n"])]
            for name in names:
                d = row["diffs"].get(name)
                if d is None:
                    line += ["–", "–", "–", "–"]
                else:
                    line += [d.interval_text(), d.bootstrap_text(), f"{d.ahead}/{d.n}", d.verdict]
            cells.append(line)
        title = f"{scenario}: each agent minus `{ref}`, paired by seed"
        blocks.append(_render(title, headers, cells, markdown))
    return "\n".join(blocks)


def _render(title: str, headers: list[str], cells: list[list[str]], markdown: bool) -> str:
    if markdown:

        def esc(text: str) -> str:
            return text.replace("|", "\\|")

        lines = [f"**{title}**", "", "| " + " | ".join(esc(h) for h in headers) + " |"]
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|")
        lines += ["| " + " | ".join(esc(c) for c in line) + " |" for line in cells]
        return "\n".join(lines) + "\n"
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]

    def render(values: Sequence[str]) -> str:
        return "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    body = [render(headers), render(["-" * w for w in widths])] + [render(c) for c in cells]
    return title + "\n" + "\n".join(body) + "\n"
