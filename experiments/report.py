"""A Markdown report of an experiment directory: plots per scenario and a summary table.

:func:`write_report` loads the complete runs of ``EXP/`` (skipping interrupted ones with a
warning), draws per scenario the adaptation, regret, recovery, interest-drift and (for attention
agents) attention plots as PNGs, and writes ``report.md`` next to them (by default in ``EXP/``
itself), linking them relatively. :func:`write_figures` writes the PNGs only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from driftrec.experiments.analysis import (
    RECOVERY_EVENT_KINDS,
    RECOVERY_REFERENCE,
    Run,
    aggregate,
    few_seeds_warning,
    format_table,
    load_runs,
    summary_table,
)
from driftrec.experiments.comparison import (
    choose_reference,
    compare_agents,
    comparison_note,
    format_comparison,
)
from driftrec.experiments.config import dir_name_part
from driftrec.experiments.guard import record_outputs
from driftrec.experiments.io import atomic_write_text
from driftrec.experiments.plots import (
    plot_adaptation,
    plot_adaptation_panels,
    plot_attention,
    plot_interest_drift,
    plot_personalization,
    plot_recovery,
    plot_regret,
    save_figure,
)

__all__ = [
    "highlighted_agents",
    "write_report",
    "write_figures",
    "summary_text",
    "return_text",
    "console_text",
    "resolve_compare_to",
    "PREFERRED_AGENT",
]

PREFERRED_AGENT = "attention-ppo"
"""The agent whose interest-drift and attention plots the report shows when it was run."""

_BASELINE_NAMES = ("random", "oracle")


def _save_figure(fig: Any, path: Path) -> Path:
    """Save a report figure, listing it first in its directory's manifest (``--restart``
    deletes only what driftrec listed)."""
    record_outputs(path.parent, [path.name])
    return save_figure(fig, path)


def summary_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary as two narrow aligned plain-text tables (outcome, then behaviour)."""
    return (
        format_table(rows, markdown=False, part="outcome")
        + "\n"
        + format_table(rows, markdown=False, part="behaviour")
    )


def resolve_compare_to(exp_dir: str | Path | None, compare_to: str | None) -> str | None:
    """The reference agent of the paired comparisons: ``compare_to`` when given, else the
    experiment's own ``compare_to`` (its ``experiment.json``), else None (the default rule)."""
    if compare_to is not None or exp_dir is None:
        return compare_to
    path = Path(exp_dir) / "experiment.json"
    try:
        value = json.loads(path.read_text()).get("compare_to")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _check_compare_to(runs: Sequence[Run], compare_to: str | None) -> None:
    if compare_to is not None and not any(r.agent == compare_to for r in runs):
        raise ValueError(
            f"'compare_to' must be one of the experiment's agents "
            f"{sorted({r.agent for r in runs})} (got {compare_to!r})"
        )


def console_text(
    runs: Sequence[Run],
    *,
    compare_to: str | None = None,
    exp_dir: str | Path | None = None,
    fraction: float = 0.9,
    pre_windows: int = 5,
    sustain: int = 2,
) -> str:
    """What ``driftrec report`` / ``run --report`` / ``demo`` print: the paired comparisons
    (the headline), their notes and the few-seeds warning, the return table (each agent's
    level), then the summary tables."""
    reference = resolve_compare_to(exp_dir, compare_to)
    _check_compare_to(runs, reference)
    rows = compare_agents(runs, reference)
    parts = []
    if rows:
        parts += [format_comparison(rows, markdown=False), *comparison_note(rows), ""]
    else:
        warning = few_seeds_warning(min(_seed_counts(runs).values(), default=0))
        if warning:
            parts += [f"WARNING: {warning}.", ""]
    parts.append(return_text(runs))
    summary = summary_table(runs, fraction=fraction, pre_windows=pre_windows, sustain=sustain)
    parts.append(summary_text(summary))
    return "\n".join(parts)


def _seed_counts(runs: Sequence[Run]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for r in runs:
        counts[(r.scenario, r.agent)] = counts.get((r.scenario, r.agent), 0) + 1
    return counts


METRIC_DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("click rate", "share of user-steps with a click."),
    (
        "coverage",
        "distinct items recommended in a metrics window divided by the items released by then "
        "(1 = every available item was shown at least once in the window).",
    ),
    (
        "diversity",
        "intra-list diversity: for each user, the mean pairwise topic distance 1 - cos(z_i, z_j) "
        "between the items in the user's recent history, averaged over users (0 = all the same "
        "topic mix).",
    ),
    (
        "cold-start share",
        "share of recommended items released recently (within the cold-start window); the "
        "oracle's share is the reference.",
    ),
    (
        "churn",
        "share of the sessions ending in a window that ended because the user left (patience ran "
        "out) rather than reaching the session length.",
    ),
    (
        "tracking error",
        "total-variation distance between the topic mix of what was recommended and the topic "
        "mix the user prefers, softmax(interest_weight x interests); 0 = recommendations follow "
        "the user's current tastes exactly, 1 = no overlap.",
    ),
    (
        "personal gain",
        "personalisation gain of the agent's greedy choices (exploration off) on each window's "
        "last observations: the mean over users u of R(u, a_u) minus the mean over pairs u != v "
        "of R(u, a_v), with R the true expected reward; 0 for a policy that gives everyone the "
        "same thing (population-best), about 0.4 for the oracle on the demo world.",
    ),
    (
        "distinct items",
        "distinct items among those greedy choices for the B users of a step (1 for "
        "population-best).",
    ),
)
"""What the behaviour columns of the summary mean (written into report.md)."""


def _featured_agent(agents: Sequence[str]) -> str:
    """attention-ppo if present, else the first agent that is neither random nor the oracle."""
    agents = sorted(agents)
    if PREFERRED_AGENT in agents:
        return PREFERRED_AGENT
    for candidates in (
        [a for a in agents if a not in _BASELINE_NAMES],
        [a for a in agents if a != "random"],
        agents,
    ):
        if candidates:
            return candidates[0]
    raise ValueError("no agents")


def _scenario_events(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """The distinct (step, kind) events of the runs of one scenario, sorted by step."""
    seen: dict[tuple[int, str], dict[str, Any]] = {}
    for run in runs:
        for event in run.events:
            seen.setdefault((int(event["step"]), str(event.get("kind", "event"))), event)
    return [seen[k] for k in sorted(seen)]


def _values(runs: Sequence[Run], key: str) -> list[Any]:
    out: list[Any] = []
    for run in runs:
        value = run.config.get(key)
        if value not in out:
            out.append(value)
    return out


def _fmt_value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return f"`{value}`"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _join(values: Sequence[Any]) -> str:
    return ", ".join(_fmt_value(v) for v in values)


def _what_was_run(exp_dir: Path, runs: Sequence[Run]) -> list[str]:
    scenarios = sorted({r.scenario for r in runs})
    agents = sorted({r.agent for r in runs})
    seeds = sorted({r.seed for r in runs})
    lines = [
        "## What was run",
        "",
        f"- Experiment directory: `{exp_dir}` ({len(runs)} complete runs)",
        f"- Scenarios: {_join(scenarios)}",
        f"- Agents: {_join(agents)}",
        f"- Seeds: {_join(seeds)}",
        f"- Global steps per run: {_join(_values(runs, 'total_steps'))}; "
        f"users per step (num_envs): {_join(_values(runs, 'num_envs'))}; "
        f"metrics logged every {_join(_values(runs, 'log_every'))} global steps",
        f"- Environment: {_join([v for v in _values(runs, 'env_id') if v is not None])}",
    ]
    for scenario in scenarios:
        run = next(r for r in runs if r.scenario == scenario)
        source = run.config.get("scenario_file")
        origin = f" (scenario file `{source}`)" if source else ""
        lines.append(f"- Drift in `{scenario}`{origin}: {_drift_text(run.config)}")
    frozen = [v for v in _values(runs, "frozen_at") if v is not None]
    if frozen:
        lines.append(f"- Learning frozen at global step: {_join(frozen)}")
    lines += [
        "",
        "| scenario | agents | seeds per agent | population events (step) |",
        "|---|---|---:|---|",
    ]
    for scenario in scenarios:
        group = [r for r in runs if r.scenario == scenario]
        per_agent: dict[str, int] = {}
        for r in group:
            per_agent[r.agent] = per_agent.get(r.agent, 0) + 1
        counts = sorted(set(per_agent.values()))
        events = _scenario_events(group)
        ev_text = (
            ", ".join(f"{e['kind'].replace('_', ' ')} @ {int(e['step']):,}" for e in events)
            or "none"
        )
        lines.append(
            f"| `{scenario}` | {', '.join(sorted(per_agent))} | "
            f"{'/'.join(str(c) for c in counts)} | {ev_text} |"
        )
    lines.append("")
    return lines


def _drift_text(config: dict[str, Any]) -> str:
    """``"abrupt (at_steps [96], rate 0.0, mix 1.0); boredom (gain 0.3, decay 0.1)"``."""
    processes = config.get("env_config", {}).get("drift", {}).get("processes", [])
    parts = []
    for p in processes:
        params = ", ".join(f"{k} {v}" for k, v in p.items() if k != "kind")
        parts.append(f"{p.get('kind')} ({params})" if params else str(p.get("kind")))
    return "; ".join(parts) or "none"


def _how_to_read(
    fraction: float, pre_windows: int, sustain: int, recovery_reference: str | None
) -> list[str]:
    if recovery_reference is not None:
        recovery = (
            "*Recovery time* after an event is the number of global steps from the event "
            "to the start of the first logging window from which the normalized reward stays, "
            f"for {sustain} consecutive windows, at or above {fraction:g} × the agent's pre-event "
            f"standing carried into the new world: its level over the last {pre_windows} "
            f"windows before the event, times `{recovery_reference}`'s level after the event "
            "over its level before it (the privileged reference, same seed). The event can "
            "make the new world easier or harder for everyone; this target moves with what "
            "is achievable there. The reference's own recovery on the same seeds is the "
            "*noise floor*, reported beside every agent: it re-optimises every step, so it "
            "is at the target from the first window on (0 steps) unless the event sets off a "
            "transient every policy faces (on the demo setup, one window on some seeds: the "
            "users it serves badly after the shift leave and are replaced); a learner's "
            "recovery within the floor is not a measured recovery. A run that never gets there "
            "(before the next event or the end of the run) is *censored*: its cell shows "
            "a lower bound (`>`, the longest time its windows could have shown), and the "
            "median is the time by which "
            "half the seeds had recovered. The oracle is left out (its ratio is 1)."
        )
    else:
        recovery = (
            "*Recovery time* after an event is the number of global steps from the event "
            "to the start of the first logging window from which the normalized reward stays "
            f"at or above {fraction:g} × its pre-event level (the mean over the last {pre_windows} "
            f"windows ending at or before the event) for {sustain} consecutive windows. This "
            f"grid has no `{RECOVERY_REFERENCE}` runs, so the target cannot follow the new "
            "world's achievable level and there is no noise floor: read it with care. A run "
            "that never gets there is *censored* (shown as a lower bound, `>`)."
        )
    return [
        "## How to read the figures",
        "",
        "The adaptation plot shows, for each agent, the *one-step oracle ratio* (column "
        "`normalized_reward`) over global steps: "
        "the expected reward of the agent's recommendations divided by the expected reward of "
        "the privileged one-step oracle (which sees the users' hidden interests and picks the "
        "best item for the next step) in the same window. 1.0 means as good as the oracle "
        "(the labelled line); the random agent shows the floor. It cannot credit planning "
        "(the oracle is re-evaluated in the states the agent created): the return table "
        "does. Lines are means over seeds; shaded bands are 95% Student-t intervals, cut to "
        "the ratio's range [0, 1] and drawn only with 3 seeds or more. Dashed vertical lines "
        "mark population-level drift events. " + recovery + " The regret plot shows the "
        "cumulative expected-reward gap to the oracle.",
        "",
    ]


def _finite(run: Run, metric: str) -> bool:
    """True when ``run`` has at least one finite value of ``metric``."""
    import numpy as np

    values = run.metrics.get(metric)
    return values is not None and bool(np.isfinite(values).any())


def _reference(runs: Sequence[Run]) -> str | None:
    refs = [v for v in _values(runs, "reference_agent") if v is not None]
    return refs[0] if refs else ("oracle" if any(r.agent == "oracle" for r in runs) else None)


def return_text(runs: Sequence[Run]) -> str:
    """The headline return table (return per user, stay, retention, ratio to the reference)
    as printed on the console by ``driftrec report`` / ``run --report`` / ``demo``."""
    from driftrec.experiments.returns import format_return_table, return_table

    reference = _reference(runs)
    return "Return per user (each agent's level; mean ± 95% interval over seeds):\n" + (
        format_return_table(return_table(runs, reference))
    )


def _return_section(runs: Sequence[Run]) -> list[str]:
    """The headline return table and the metric definitions (see ``returns.py``)."""
    from driftrec.experiments.returns import (
        METRIC_DEFINITIONS,
        format_return_table,
        return_table,
    )

    reference = _reference(runs)
    if not any("reference_agent" in r.config or _finite(r, "user_return") for r in runs):
        return []  # no stays measured and no grid's reference: runs saved from an EvalResult
    return [
        "## Return per user",
        "",
        "Each agent's own level: mean ± 95% interval over seeds of what it earns per user over "
        f"a whole stay; the ratio divides by `{reference}` on the same seeds (same user "
        "streams, world and catalog). These intervals include the world-to-world variance "
        "that the paired comparisons above cancel: rank agents by those, not by overlapping "
        "intervals here. See the definitions below.",
        "",
        format_return_table(return_table(runs, reference)),
        METRIC_DEFINITIONS,
    ]


def highlighted_agents(agents: Sequence[str], reference: str | None) -> list[str]:
    """The agents a highlight-mode figure colours: the featured learner, the comparison
    reference and the privileged one-item policy (when run); the rest are grey context."""
    from driftrec.experiments.analysis import RECOVERY_REFERENCE

    featured = _featured_agent(agents)
    wanted = [featured, reference, RECOVERY_REFERENCE]
    return [a for a in dict.fromkeys(wanted) if a is not None and a in agents]


def _write_figures(
    runs: Sequence[Run],
    rows: Sequence[Mapping[str, Any]],
    out: Path,
    *,
    smooth: int,
    compare_to: str | None = None,
) -> dict[str, list[tuple[str, Path]]]:
    """Draw and save every figure; ``{scenario: [(caption, png path), ...]}``."""
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, list[tuple[str, Path]]] = {}
    for scenario in sorted({r.scenario for r in runs}):
        group = [r for r in runs if r.scenario == scenario]
        events = _scenario_events(group)
        images = figures.setdefault(scenario, [])
        agents = sorted({r.agent for r in group})
        reference = compare_to if compare_to is not None else choose_reference(group)
        highlight = highlighted_agents(agents, reference) if len(agents) > 4 else None

        curves = aggregate(group, "normalized_reward", smooth=smooth)
        ax = plot_adaptation(
            curves, events, title=f"Adaptation to drift: {scenario}", highlight=highlight
        )
        path = _save_figure(ax.figure, out / f"adaptation_{scenario}.png")
        what = (
            f"highlighted: {', '.join(highlight)}; the others in grey"
            if highlight
            else "every agent"
        )
        images.append(
            (f"One-step oracle ratio (reward / one-step oracle) over global steps ({what})", path)
        )
        if len(curves) > 2:
            fig = plot_adaptation_panels(
                curves, events, reference=reference, title=f"Adaptation to drift: {scenario}"
            )
            path = _save_figure(fig, out / f"adaptation_panels_{scenario}.png")
            images.append(("The same, one panel per agent (small multiples)", path))

        if all("cum_regret" in r.metrics for r in group):
            ax = plot_regret(
                aggregate(group, "cum_regret"),
                events,
                title=f"Cumulative regret: {scenario}",
                highlight=highlight,
            )
            path = _save_figure(ax.figure, out / f"regret_{scenario}.png")
            images.append(("Cumulative regret over global steps", path))

        if all("greedy_personal_gain" in r.metrics for r in group) and any(
            _finite(r, "greedy_personal_gain") for r in group
        ):
            ax = plot_personalization(
                aggregate(group, "greedy_personal_gain"),
                events,
                title=f"Personalisation: {scenario}",
                highlight=highlight,
            )
            path = _save_figure(ax.figure, out / f"personalization_{scenario}.png")
            images.append(("Personalisation gain of the greedy choices over global steps", path))

        scen_rows = [r for r in rows if r["scenario"] == scenario]
        measured = any(
            e["n_recovered"] + e["n_censored"] > 0 for r in scen_rows for e in r["recovery"]
        )  # else no event had enough windows before it: every cell reads n/a
        if measured and any(e.get("kind") in RECOVERY_EVENT_KINDS for e in events):
            ax = plot_recovery(scen_rows, title=f"Recovery after population events: {scenario}")
            path = _save_figure(ax.figure, out / f"recovery_{scenario}.png")
            images.append(("Recovery time per agent and event", path))

        featured = _featured_agent(sorted({r.agent for r in group}))
        with_topics = [r for r in group if r.agent == featured and r.topics is not None]
        if with_topics:
            run = min(with_topics, key=lambda r: r.seed)
            axes = plot_interest_drift(run)
            name = f"interest_drift_{scenario}__{dir_name_part(featured)}.png"
            path = _save_figure(axes[0].figure, out / name)
            images.append(
                (f"Interest drift vs recommendations ({featured}, seed {run.seed})", path)
            )

        with_attention = [r for r in group if r.attention is not None]
        if with_attention:
            run = min(with_attention, key=lambda r: (r.agent != PREFERRED_AGENT, r.agent, r.seed))
            title = f"Attention over user 0's history: {scenario} / {run.agent}"
            ax = plot_attention(run, title=title)
            path = _save_figure(ax.figure, out / f"attention_{scenario}.png")
            images.append((f"Attention over the history ({run.agent}, seed {run.seed})", path))
    return figures


def write_figures(
    exp_dir: str | Path,
    *,
    out_dir: str | Path | None = None,
    smooth: int = 1,
    fraction: float = 0.9,
    pre_windows: int = 5,
    sustain: int = 2,
    compare_to: str | None = None,
) -> list[Path]:
    """Write the PNGs of :func:`write_report` (without ``report.md``); return their paths.

    ``out_dir`` defaults to ``exp_dir``.
    """
    exp_dir = Path(exp_dir)
    runs = load_runs(exp_dir)
    rows = summary_table(runs, fraction=fraction, pre_windows=pre_windows, sustain=sustain)
    out = Path(out_dir) if out_dir is not None else exp_dir
    reference = resolve_compare_to(exp_dir, compare_to)
    _check_compare_to(runs, reference)
    figures = _write_figures(runs, rows, out, smooth=smooth, compare_to=reference)
    return [path for images in figures.values() for _, path in images]


def _comparison_section(runs: Sequence[Run], compare_to: str | None) -> list[str]:
    rows = compare_agents(runs, compare_to)
    if not rows:
        return [
            "## Paired comparisons (headline)",
            "",
            "No comparison: the experiment has no non-privileged baseline to compare with "
            "(name one with `compare_to`).",
            "",
        ]
    return [
        "## Paired comparisons (headline)",
        "",
        "Every agent minus one reference agent, seed by seed: runs with the same seed see the "
        "same users, world and catalog, so the difference cancels what makes each agent's "
        "own interval wide. An agent is called higher or lower only where the 95% intervals "
        "exclude 0; otherwise it is *not distinguishable* from the reference at this number "
        "of seeds.",
        "",
        format_comparison(rows),
        *[f"{line}  " for line in comparison_note(rows)],
        "",
    ]


def finetune_section(runs: Sequence[Run]) -> list[str]:
    """The cost and retention of the runs that fine-tuned their text encoder (``done.json``'s
    ``finetune``; empty when none did)."""
    tuned = [r for r in runs if r.done.get("finetune")]
    if not tuned:
        return []
    lines = [
        "## The text encoder fine-tuned during the runs",
        "",
        "Every `finetune_every` global steps the run trained its LoRA adapter on its own click "
        "log and swapped the re-encoded item table into the agent. *s / refresh*: training and "
        "re-encoding wall seconds per refresh; *share*: their part of the run's wall time; "
        "*retention*: mean cosine between the base and the adapted embedding of held-out general "
        "texts, and their nearest-centroid topic accuracy (base in brackets).",
        "",
        "| run | refreshes at | texts re-encoded | s / refresh | share | retention cos | "
        "topic acc (base) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in tuned:
        ft = r.done["finetune"]
        ret = ft.get("retention") or {}
        texts = [x.get("texts_encoded", 0) for x in ft.get("refreshes", [])]
        per = ft.get("seconds_per_refresh")
        share = ft.get("share_of_run")
        lines.append(
            f"| `{r.name}` | {', '.join(str(s) for s in ft.get('refresh_steps', [])) or 'none'} "
            f"| {sum(texts):,} | {'n/a' if per is None else f'{per:.1f}'} | "
            f"{'n/a' if share is None else f'{share:.0%}'} | "
            + (
                f"{ret['cosine']:.3f} | {ret['topic_acc']:.3f} ({ret['base_topic_acc']:.3f}) |"
                if ret
                else "n/a | n/a |"
            )
        )
    return [*lines, ""]


def write_report(
    exp_dir: str | Path,
    *,
    out_dir: str | Path | None = None,
    title: str | None = None,
    smooth: int = 1,
    fraction: float = 0.9,
    pre_windows: int = 5,
    sustain: int = 2,
    compare_to: str | None = None,
) -> Path:
    """Write ``report.md`` and its PNGs for the experiment in ``exp_dir``; return its path.

    The headline is the paired comparison of every agent with ``compare_to`` (default: the
    experiment's ``compare_to``, else the best non-privileged baseline; see
    :mod:`driftrec.experiments.comparison`), then the figures per scenario, the return
    table and the summary. Per scenario: ``adaptation_<scenario>.png``,
    ``regret_<scenario>.png``, ``recovery_<scenario>.png`` (when the scenario has population
    events with enough windows before them to measure recovery),
    ``interest_drift_<scenario>__<agent>.png`` (agent ``attention-ppo`` if run, else the first
    agent other than random/oracle; when its run recorded topics) and
    ``attention_<scenario>.png`` (when a run recorded attention). ``out_dir`` (defaults to
    ``exp_dir``) receives the PNGs and ``report.md``; ``smooth`` is the moving-average window
    of the adaptation curves; ``fraction``, ``pre_windows`` and ``sustain`` define recovery
    (see :func:`~driftrec.experiments.analysis.recovery_time`). Incomplete runs are skipped
    with a warning.

    Raises:
        ValueError: ``compare_to`` names no agent of the experiment.
    """
    exp_dir = Path(exp_dir)
    runs = load_runs(exp_dir)
    reference = resolve_compare_to(exp_dir, compare_to)
    _check_compare_to(runs, reference)
    out = Path(out_dir) if out_dir is not None else exp_dir
    rows = summary_table(runs, fraction=fraction, pre_windows=pre_windows, sustain=sustain)
    figures = _write_figures(runs, rows, out, smooth=smooth, compare_to=reference)
    report = out / "report.md"
    sections: list[str] = []
    files = {r.scenario: r.config["scenario_file"] for r in runs if r.config.get("scenario_file")}
    for scenario, images in figures.items():
        origin = f" (from `{files[scenario]}`)" if scenario in files else ""
        sections += [f"## Scenario `{scenario}`{origin}", ""]
        for caption, path in images:
            link = Path(os.path.relpath(path, report.parent)).as_posix()
            sections += [f"![{caption}]({link})", ""]

    heading = title if title is not None else f"driftrec experiment: {exp_dir.resolve().name}"
    lines = [f"# {heading}", ""]
    warning = few_seeds_warning(min(_seed_counts(runs).values()))
    if warning:
        lines += [f"> **Warning:** {warning}.", ""]
    lines += _what_was_run(exp_dir, runs)
    lines += _comparison_section(runs, reference)
    recovery_ref = next((r["recovery_reference"] for r in rows if r["recovery_reference"]), None)
    lines += _how_to_read(fraction, pre_windows, sustain, recovery_ref)
    lines += sections
    lines += _return_section(runs)
    lines += finetune_section(runs)
    lines += [
        "## Summary",
        "",
        "Mean ± 95% confidence interval over seeds (‡: cut to the metric's range; †: widened "
        "to the runs' own within-run standard errors). *reward/oracle*: normalized reward over "
        "the whole run, before the first population event and after it. *recovery #k*: steps "
        "to recover after the k-th population event, the median over seeds (shortest–longest; "
        "`>`: censored, a lower bound); *noise floor*: the same statistic for the privileged "
        f"reference on the same seeds (n/a: fewer than {pre_windows} windows before the event "
        "or a level below 0.5 of the oracle).",
        "",
        format_table(rows, part="outcome"),
        "Behaviour of the recommendations (run means; columns that are zero for every agent "
        "are left out):",
        "",
        format_table(rows, part="behaviour"),
        "",
        *[f"* *{name}*: {text}" for name, text in METRIC_DEFINITIONS],
        "",
    ]
    record_outputs(report.parent, [report.name])
    atomic_write_text(report, "\n".join(lines))
    return report
