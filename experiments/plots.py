"""Plots of saved runs: adaptation, regret, recovery, interest drift and attention.

Headless: the Agg backend is selected on import and nothing is ever shown. Every function draws
on the ``Axes`` it is given (or on a new figure when None) with the object-oriented API and
returns it; :func:`save_figure` writes a PNG atomically and closes the figure. Agents get fixed
the same colour in every figure (:func:`agent_colors`): ``"oracle"`` black, ``"random"`` grey.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from driftrec.atomic import atomic_open  # noqa: E402
from driftrec.experiments.analysis import (  # noqa: E402
    Curve,
    Recovery,
    Run,
    censored_median,
    mean_ci,
)

__all__ = [
    "agent_colors",
    "seeds_note",
    "plot_adaptation",
    "plot_adaptation_panels",
    "plot_regret",
    "plot_personalization",
    "plot_recovery",
    "plot_interest_drift",
    "plot_attention",
    "save_figure",
    "place_labels",
]

_PALETTE = (
    "#1f77b4",  # blue
    "#ff7f0e",  # orange
    "#2ca02c",  # green
    "#d62728",  # red
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#bcbd22",  # olive
    "#17becf",  # cyan
    "#393b79",  # navy
    "#637939",  # dark olive
    "#843c39",  # dark red
    "#7b4173",  # plum
    "#e7ba52",  # mustard
    "#5254a3",  # indigo
    "#ad494a",  # brick
)  # tab10 without its grey, then darker tab20b shades
_FIXED_COLORS = {"oracle": "black", "random": "#7f7f7f"}
_PREFERRED_COLORS = {
    "attention-ppo": "#1f5fbf",  # strong blue: the recommender the project is about
    "linucb-discounted": "#ff7f0e",  # orange
    "population-best": "#2ca02c",  # green
    "history-similarity": "#9467bd",  # purple
    "id-ppo": "#d62728",  # red
    "popularity": "#8c564b",  # brown
    "planner": "#17becf",  # cyan
    "thompson": "#e377c2",  # pink
    "epsilon-greedy": "#bcbd22",  # olive
}
"""The agents most figures show get colours far apart (blue, orange, green, purple, red)."""
_CONTEXT_COLOR = "#b0b0b0"  # agents drawn for context in highlight mode and small multiples
_TOPIC_PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")
_EVENT_STYLE = {"color": "#555555", "linestyle": "--", "linewidth": 1.0}


def _registered_colors() -> dict[str, str]:
    """One palette colour per registered agent, in registry order: the same in every figure."""
    from driftrec.agents.registry import AGENT_NAMES

    colors = {a: c for a, c in _PREFERRED_COLORS.items() if a in AGENT_NAMES}
    names = [a for a in AGENT_NAMES if a not in _FIXED_COLORS and a not in colors]
    palette = [c for c in _PALETTE if c not in set(colors.values())]
    if len(names) > len(palette):  # a longer registry: more shades, never a repeated colour
        extra = matplotlib.colormaps["tab20b"].colors + matplotlib.colormaps["tab20c"].colors
        palette += [
            matplotlib.colors.to_hex(c)
            for c in extra
            if matplotlib.colors.to_hex(c) not in palette + list(colors.values())
        ]
    colors.update({a: palette[i % len(palette)] for i, a in enumerate(names)})
    return colors


def _darker(color: str, amount: float = 0.45) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(c * (1 - amount)):02x}" for c in (r, g, b))


def agent_colors(agents: Sequence[str]) -> dict[str, str]:
    """Colour per agent, the same in every figure whatever else is drawn: "oracle" black,
    "random" grey, registered agents a palette colour by registry position, their ``-frozen``
    variants a darker shade of it, other names the remaining palette colours by sorted name."""
    fixed = _registered_colors()
    colors: dict[str, str] = {}
    unknown = []
    for agent in sorted(set(agents)):
        base = agent.removesuffix("-frozen")
        if agent in _FIXED_COLORS:
            colors[agent] = _FIXED_COLORS[agent]
        elif agent in fixed:
            colors[agent] = fixed[agent]
        elif base != agent and (base in fixed or base in _FIXED_COLORS):
            colors[agent] = _darker(
                fixed.get(base) or _FIXED_COLORS[base].replace("black", "#000000")
            )
        else:
            unknown.append(agent)
    spare = [c for c in _PALETTE if c not in set(fixed.values())]
    if len(spare) < len(unknown):  # more names than free colours: keep the unknown ones apart
        spare = list(_PALETTE)
    for i, agent in enumerate(unknown):
        colors[agent] = spare[i % len(spare)]
    return colors


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = (8.0, 4.5)) -> Axes:
    if ax is not None:
        return ax
    fig = Figure(figsize=figsize)
    return fig.add_subplot()


def _event_label(kind: str) -> str:
    return str(kind).replace("_", " ")


def _mark_events(ax: Axes, events: Sequence[Mapping[str, Any]], *, label: bool = True) -> None:
    """Dashed vertical lines at the events; one legend entry per kind; text labels at the top."""
    seen_kinds: set[str] = set()
    seen_steps: set[float] = set()
    for event in sorted(events, key=lambda e: float(e["step"])):
        step = float(event["step"])
        kind = str(event.get("kind", "event"))
        legend = f"{_event_label(kind)}" if kind not in seen_kinds else None
        seen_kinds.add(kind)
        ax.axvline(step, label=legend if label else None, zorder=1, **_EVENT_STYLE)
        if label and step not in seen_steps:
            ax.annotate(
                _event_label(kind),
                xy=(step, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -3),
                textcoords="offset points",
                rotation=90,
                va="top",
                ha="left",
                fontsize=7,
                color=_EVENT_STYLE["color"],
            )
        seen_steps.add(step)


MIN_BAND_SEEDS = 3
"""Bands (95% intervals over seeds) are drawn only from this many seeds on: with two, the
t interval is 12.7 standard errors wide and fills the axis."""


def seeds_note(ax: Axes, n: int, *, min_band_seeds: int = MIN_BAND_SEEDS) -> str | None:
    """Write the few-seeds warning in the axes' lower left corner (nothing from 5 seeds on);
    return the text."""
    from driftrec.experiments.analysis import MIN_SEEDS

    if n >= MIN_SEEDS or n < 1:
        return None
    text = f"n = {n} seed{'s' if n != 1 else ''} per agent (< {MIN_SEEDS}): intervals unreliable"
    if n < min_band_seeds:
        text += f"; no bands below {min_band_seeds}"
    ax.text(
        0.01, 0.01, text, transform=ax.transAxes, fontsize=7, color="#b22222",
        ha="left", va="bottom", zorder=6,
        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.8, "linewidth": 0},
    )  # fmt: skip
    return text


def _flat_value(curve: Curve, tol: float = 1e-9) -> float | None:
    """The constant value of a curve whose finite means never move (the oracle's ratio)."""
    finite = curve.mean[np.isfinite(curve.mean)]
    if finite.size and float(finite.max() - finite.min()) <= tol:
        return float(finite[0])
    return None


def _is_zero(curve: Curve) -> bool:
    """A curve that is 0 in every window (rounding aside): the oracle's regret, a one-item
    policy's personalisation gain."""
    value = _flat_value(curve)
    return value is not None and abs(value) < 1e-9


def _split_flat(
    curves: Mapping[str, Curve], flat_reference: str | None
) -> tuple[dict[str, Curve], float | None]:
    """``curves`` without ``flat_reference`` when its curve is flat, and its value."""
    curves = dict(curves)
    if flat_reference is None or flat_reference not in curves:
        return curves, None
    value = _flat_value(curves[flat_reference])
    if value is None:
        return curves, None
    del curves[flat_reference]
    return curves, value


def _reference_line(ax: Axes, value: float, label: str) -> None:
    """A flat reference: a thin horizontal line labelled on the axes, not in the legend."""
    ax.axhline(value, color="black", linewidth=0.9, alpha=0.6, zorder=1)
    ax.annotate(
        label, xy=(1.0, value), xycoords=("axes fraction", "data"), xytext=(-3, 3),
        textcoords="offset points", ha="right", va="bottom", fontsize=7, color="#333333",
    )  # fmt: skip


def _spread(values: Sequence[float], gap: float) -> list[float]:
    """Positions as close to ``values`` as possible, at least ``gap`` apart, order kept."""
    order = np.argsort(values, kind="stable")
    placed = np.asarray(values, dtype=np.float64)[order].copy()
    for i in range(1, placed.size):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    shift = (placed - np.asarray(values)[order]).mean()  # center the block on the originals
    placed -= max(shift, 0.0) / 2
    for i in range(1, placed.size):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    out = np.empty_like(placed)
    out[order] = placed
    return out.tolist()


def _end_labels(ax: Axes, ends: Sequence[tuple[str, float, float, str]]) -> None:
    """Label lines just outside the right edge of the axes, at their end values ``(label,
    x, y, colour)``, pushed apart vertically so that no two overlap."""
    if not ends:
        return
    lo, hi = ax.get_ylim()
    ys = _spread([y for _, _, y, _ in ends], gap=0.045 * (hi - lo))
    for (label, _x, y, color), y_text in zip(ends, ys, strict=True):
        ax.annotate(
            label, xy=(1.0, y), xycoords=("axes fraction", "data"), xytext=(1.01, y_text),
            textcoords=("axes fraction", "data"), fontsize=7, color=color, ha="left",
            va="center", annotation_clip=False, zorder=5,
        )  # fmt: skip


def _plot_curves(
    ax: Axes,
    curves: Mapping[str, Curve],
    *,
    highlight: Sequence[str] | None = None,
    bands: bool = True,
    min_band_seeds: int = MIN_BAND_SEEDS,
    bounds: tuple[float, float] | None = None,
) -> tuple[float, float, list[tuple[str, float, float, str]]]:
    """Draw mean lines (and bands); return the range of the means and the context labels.

    With ``highlight``, only those agents get their colour, a band and a legend entry; the
    others are thin grey context lines, labelled at their right ends by the caller.
    """
    colors = agent_colors(list(curves))
    lo_all, hi_all = math.inf, -math.inf
    context: list[tuple[str, float, float, str]] = []
    wanted = None if highlight is None else set(highlight)
    for agent in sorted(curves, key=lambda a: (wanted is not None and a in wanted, a)):
        curve = curves[agent]
        finite = np.isfinite(curve.mean)
        if finite.any():
            lo_all = min(lo_all, float(curve.mean[finite].min()))
            hi_all = max(hi_all, float(curve.mean[finite].max()))
        if wanted is not None and agent not in wanted:
            ax.plot(curve.steps, curve.mean, color=_CONTEXT_COLOR, linewidth=1.0, zorder=2)
            if finite.any():
                last = int(np.flatnonzero(finite)[-1])
                context.append(
                    (agent, float(curve.steps[last]), float(curve.mean[last]), "#777777")
                )
            continue
        color = colors[agent]
        label = agent if curve.n <= 1 else f"{agent} (n={curve.n})"
        ax.plot(curve.steps, curve.mean, color=color, linewidth=1.8, label=label, zorder=4)
        if bands and curve.n >= min_band_seeds:
            low, high = curve.lo, curve.hi
            if bounds is not None:
                low, high = np.clip(low, *bounds), np.clip(high, *bounds)
            ax.fill_between(curve.steps, low, high, color=color, alpha=0.18, linewidth=0, zorder=3)
    return lo_all, hi_all, context


def _min_seeds(curves: Mapping[str, Curve]) -> int:
    return min((c.n for c in curves.values()), default=0)


def _finish(ax: Axes, context: list[tuple[str, float, float, str]], n: int, legend: bool) -> None:
    _end_labels(ax, context)  # grey context lines: names right of the axes
    seeds_note(ax, n)
    if legend and context:  # the right margin holds the names: the legend goes below
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8, frameon=False,
            ncols=min(4, len(ax.get_legend_handles_labels()[0])),
        )  # fmt: skip
    elif legend:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)


def plot_adaptation(
    curves: Mapping[str, Curve],
    events: Sequence[Mapping[str, Any]],
    ax: Axes | None = None,
    *,
    title: str | None = None,
    ylabel: str = "reward / one-step oracle",
    highlight: Sequence[str] | None = None,
    bands: bool = True,
    min_band_seeds: int = MIN_BAND_SEEDS,
    flat_reference: str | None = "oracle",
) -> Axes:
    """Normalized reward over global steps, with dashed lines at the drift events.

    Each agent is its mean over seeds with a shaded 95% interval (cut to [0, 1]; only with
    ``bands`` and at least ``min_band_seeds`` seeds). With ``highlight`` (agent names) it is a
    *highlight mode*: those agents get colours, bands and the legend, every other agent is a
    thin grey line labelled at its end. ``flat_reference`` (the oracle, whose ratio is 1 by
    definition) is drawn as a labelled line instead of a curve and a legend entry. Fewer than
    five seeds are flagged in the corner. y spans 0 to 1.05, more if a mean leaves that range.
    """
    ax = _new_axes(ax)
    curves, flat = _split_flat(curves, flat_reference)
    lo, hi, context = _plot_curves(
        ax, curves, highlight=highlight, bands=bands, min_band_seeds=min_band_seeds,
        bounds=(0.0, 1.0),
    )  # fmt: skip
    _mark_events(ax, events)
    if flat is not None:
        _reference_line(ax, flat, f"{flat_reference} (one-step, privileged) = {flat:g}")
    else:
        ax.axhline(1.0, color="black", linewidth=0.6, alpha=0.4, zorder=1)
    bottom = min(0.0, lo) if math.isfinite(lo) else 0.0
    top = max(1.05, hi + 0.02) if math.isfinite(hi) else 1.05
    ax.set_ylim(bottom, top)
    ax.set_xlabel("global step")
    ax.set_ylabel(ylabel)
    ax.set_title(title if title is not None else "Adaptation to drift")
    ax.grid(True, alpha=0.3)
    _finish(ax, context, _min_seeds(curves), legend=True)
    return ax


def plot_adaptation_panels(
    curves: Mapping[str, Curve],
    events: Sequence[Mapping[str, Any]],
    *,
    reference: str | None = None,
    title: str | None = None,
    ylabel: str = "reward / one-step oracle",
    ncols: int = 3,
    min_band_seeds: int = MIN_BAND_SEEDS,
    flat_reference: str | None = "oracle",
) -> Figure:
    """Small multiples: one panel per agent (mean and 95% band), each with ``reference``'s
    mean as a grey dashed line for comparison, the events and the flat reference line;
    shared axes, so panels compare at a glance. Returns the figure."""
    curves, flat = _split_flat(curves, flat_reference)
    agents = sorted(curves)
    if not agents:
        raise ValueError("plot_adaptation_panels: no curves")
    ncols = max(1, min(ncols, len(agents)))
    nrows = -(-len(agents) // ncols)
    fig = Figure(figsize=(3.6 * ncols + 0.6, 2.5 * nrows + 0.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True)).ravel()
    colors = agent_colors(agents)
    ref_curve = curves.get(reference) if reference is not None else None
    hi_all = 1.05
    for ax, agent in zip(axes, agents, strict=False):
        curve = curves[agent]
        if ref_curve is not None and agent != reference:
            ax.plot(ref_curve.steps, ref_curve.mean, color="#666666", linewidth=1.0,
                    linestyle="--", zorder=2, label=reference)  # fmt: skip
        ax.plot(curve.steps, curve.mean, color=colors[agent], linewidth=1.6, zorder=4)
        if curve.n >= min_band_seeds:
            ax.fill_between(
                curve.steps, np.clip(curve.lo, 0.0, 1.0), np.clip(curve.hi, 0.0, 1.0),
                color=colors[agent], alpha=0.2, linewidth=0, zorder=3,
            )  # fmt: skip
        finite = curve.mean[np.isfinite(curve.mean)]
        if finite.size:
            hi_all = max(hi_all, float(finite.max()) + 0.02)
        for event in events:
            ax.axvline(float(event["step"]), zorder=1, **_EVENT_STYLE)
        ax.axhline(1.0 if flat is None else flat, color="black", linewidth=0.7, alpha=0.5)
        ax.set_title(agent, fontsize=9, color=colors[agent])
        ax.grid(True, alpha=0.3)
    for ax in axes[len(agents) :]:
        ax.set_visible(False)
    axes[0].set_ylim(0.0, hi_all)
    for ax in axes[::ncols]:
        ax.set_ylabel(ylabel, fontsize=8)
    for col in range(ncols):  # the lowest visible panel of each column gets the x axis
        lowest = axes[: len(agents)][col::ncols][-1]
        lowest.tick_params(labelbottom=True)
        lowest.set_xlabel("global step", fontsize=8)
    if ref_curve is not None:
        first = next(ax for ax, a in zip(axes, agents, strict=False) if a != reference)
        first.legend(loc="lower right", fontsize=7, handlelength=1.5)
    n = _min_seeds(curves)
    parts = [f"mean and 95% band over {n} seeds" if n >= min_band_seeds else f"mean of {n} seeds"]
    if ref_curve is not None:
        parts.append(f"dashed: {reference}")
    if flat is not None:
        parts.append(f"line at {flat:g}: {flat_reference}")
    if events:
        parts.append("vertical: " + ", ".join(sorted({_event_label(e["kind"]) for e in events})))
    heading = title if title is not None else "Adaptation to drift, one panel per agent"
    fig.suptitle(f"{heading}\n({'; '.join(parts)})", fontsize=10)
    seeds_note(axes[0], n, min_band_seeds=min_band_seeds)
    return fig


def plot_regret(
    curves: Mapping[str, Curve],
    events: Sequence[Mapping[str, Any]],
    ax: Axes | None = None,
    *,
    title: str | None = None,
    ylabel: str = "cumulative regret",
    highlight: Sequence[str] | None = None,
    bands: bool = True,
) -> Axes:
    """Cumulative regret over global steps: mean and shaded 95% interval per agent (the
    oracle's, 0 by definition, is left out); ``highlight`` as :func:`plot_adaptation`."""
    ax = _new_axes(ax)
    curves = {a: c for a, c in curves.items() if not _is_zero(c)}
    _, _, context = _plot_curves(ax, curves, highlight=highlight, bands=bands, bounds=(0, np.inf))
    _mark_events(ax, events)
    ax.set_xlabel("global step")
    ax.set_ylabel(ylabel)
    ax.set_title(title if title is not None else "Cumulative regret")
    ax.set_ylim(bottom=0.0)
    ax.grid(True, alpha=0.3)
    _finish(ax, context, _min_seeds(curves), legend=True)
    return ax


def plot_personalization(
    curves: Mapping[str, Curve],
    events: Sequence[Mapping[str, Any]],
    ax: Axes | None = None,
    *,
    title: str | None = None,
    ylabel: str = "personalisation gain (greedy)",
    highlight: Sequence[str] | None = None,
    bands: bool = True,
) -> Axes:
    """Personalisation gain over global steps: mean and shaded 95% interval per agent;
    ``highlight`` as :func:`plot_adaptation`.

    0 (the thin line) is what a policy that gives every user the same item earns; agents
    whose gain is exactly 0 throughout (population-best, popularity) are that line, labelled.
    """
    ax = _new_axes(ax)
    zero = sorted(a for a, c in curves.items() if _is_zero(c))
    curves = {a: c for a, c in curves.items() if a not in zero}
    _, _, context = _plot_curves(ax, curves, highlight=highlight, bands=bands, bounds=(-1.0, 1.0))
    _mark_events(ax, events)
    if zero:
        _reference_line(ax, 0.0, f"0: one item for everyone ({', '.join(zero)})")
    else:
        ax.axhline(0.0, color="black", linewidth=0.6, alpha=0.4, zorder=1)
    ax.set_xlabel("global step")
    ax.set_ylabel(ylabel)
    ax.set_title(title if title is not None else "Personalisation")
    ax.grid(True, alpha=0.3)
    _finish(ax, context, _min_seeds(curves), legend=True)
    return ax


def _recovery_entries(data: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """Normalise plot_recovery's input to [(label, [entry per event])]."""
    if isinstance(data, Mapping):
        out = []
        for agent in sorted(data):
            entries = []
            for k, (step, recs) in enumerate(sorted(data[agent].items())):
                recs = list(recs)
                if not all(isinstance(r, Recovery) for r in recs):
                    raise TypeError("plot_recovery: expected Recovery values per event")
                observed = [r.observed for r in recs if math.isfinite(r.observed)]
                entries.append(
                    {
                        "event": k,
                        "event_step": step,
                        "steps": mean_ci([r.steps for r in recs if not r.censored]),
                        "n_recovered": sum(r.defined and not r.censored for r in recs),
                        "n_censored": sum(r.censored for r in recs),
                        "observed": float(np.mean(observed)) if observed else math.nan,
                        "recoveries": recs,
                    }
                )
            out.append((str(agent), entries))
        return out
    rows = list(data)
    scenarios = {r["scenario"] for r in rows}
    return [
        (r["agent"] if len(scenarios) <= 1 else f"{r['scenario']}: {r['agent']}", r["recovery"])
        for r in rows
    ]


def plot_recovery(
    rows_or_recoveries: Sequence[Mapping[str, Any]]
    | Mapping[str, Mapping[int, Sequence[Recovery]]],
    ax: Axes | None = None,
    *,
    title: str | None = None,
) -> Axes:
    """Recovery time per agent and event, one marker per seed (censoring drawn as such).

    Accepts :func:`~driftrec.experiments.analysis.summary_table` rows (usually of one
    scenario) or ``{agent: {event_step: [Recovery per seed]}}``. A recovered seed is a dot at
    its recovery time; a censored seed (never recovered before the next event or the end) is
    a hollow triangle at its lower bound (the longest time its windows could have shown), never
    a short bar.
    A black bar is the median over the seeds, censored ones counted as longer (the time by
    which half of them had recovered; not drawn when more than half never did). The rows'
    noise floor (the privileged reference's own recovery on the same seeds) is a grey band
    from 0 to its longest value, labelled: a recovery inside it is not distinguishable from
    noise. The oracle (ratio 1 by definition) is not drawn. How many
    seeds were censored, or ``n/a`` (too few windows before the event, or a level below
    ``min_level``), is written under each agent's name, so labels never collide.
    """
    from driftrec.experiments.analysis import NO_RECOVERY_AGENTS

    groups = [
        (g, e) for g, e in _recovery_entries(rows_or_recoveries) if g not in NO_RECOVERY_AGENTS
    ]
    ax = _new_axes(ax, figsize=(max(8.0, 1.3 * len(groups) + 1.0), 4.5))
    ax.set_xlabel("agent")
    ax.set_ylabel("recovery time (global steps)")
    ax.set_title(title if title is not None else "Recovery after drift events")
    n_events = max((len(e) for _, e in groups), default=0)
    if n_events == 0:
        ax.text(
            0.5,
            0.5,
            "no population events",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="#555555",
        )
        ax.set_xticks([])
        return ax
    colors = agent_colors([label for label, _ in groups])
    width = 0.8 / n_events
    handles: dict[str, Any] = {}
    top = 0.0
    tick_labels = []
    floor_top, floor_censored = 0.0, 0
    for g, (label, entries) in enumerate(groups):
        color = colors[label]
        notes = []
        for k, entry in enumerate(entries):
            x = g - 0.4 + width * (k + 0.5)
            recs: list[Recovery] = list(entry.get("recoveries", []))
            n_rec, n_cens = int(entry["n_recovered"]), int(entry["n_censored"])
            jitter = np.linspace(-0.25, 0.25, max(len(recs), 1)) * width
            for j, r in enumerate(recs):
                if r.defined and not r.censored:  # one dot per recovered seed
                    ax.plot(x + jitter[j], r.steps, "o", color=color, markersize=5, zorder=3)
                    top = max(top, r.steps)
                elif r.censored and math.isfinite(r.observed):  # at least this long
                    ax.plot(
                        x + jitter[j], r.observed, "^", markerfacecolor="white",
                        markeredgecolor=color, markersize=7, zorder=3,
                    )  # fmt: skip
                    top = max(top, r.observed)
            median, lower_bound = censored_median(recs)
            if n_rec > 0 and math.isfinite(median) and not lower_bound:
                # the time by which half the seeds had recovered (censored ones count longer)
                ax.plot(
                    [x - 0.3 * width, x + 0.3 * width], [median, median], color="black",
                    linewidth=2.0, zorder=4, solid_capstyle="butt",
                )  # fmt: skip
                top = max(top, median)
            prefix = f"#{k + 1}: " if n_events > 1 else ""
            n_undef = len(recs) - n_rec - n_cens
            if n_rec == 0 and n_cens == 0:
                notes.append(f"{prefix}n/a")
            else:
                parts = [f"{n_cens}/{len(recs)} censored"] if n_cens else []
                parts += [f"{n_undef}/{len(recs)} n/a"] if n_undef else []
                if parts:
                    notes.append(prefix + ", ".join(parts))
            floor = entry.get("floor")
            if floor:
                defined = [r for r in floor.get("recoveries", []) if r.defined]
                times = [r.steps for r in defined if not r.censored]
                floor_censored = max(floor_censored, sum(r.censored for r in defined))
                if times:
                    floor_top = max(floor_top, max(times))
            key = f"event {k + 1} @ {entry['event_step']:,}"
            if n_events > 1 and key not in handles:
                handles[key] = Patch(facecolor="none", edgecolor="none", label=key)
        tick_labels.append("\n".join([label, *notes]))
    if floor_top > 0:
        ax.axhspan(0.0, floor_top, color="#d9d9d9", alpha=0.6, zorder=0, linewidth=0)
        who = _floor_agent(rows_or_recoveries) or "the privileged reference"
        where = "on every seed" if not floor_censored else f"({floor_censored} seeds never)"
        ax.annotate(
            f"noise floor: {who} recovers within {floor_top:,.0f} steps {where}",
            xy=(1.0, floor_top), xycoords=("axes fraction", "data"), xytext=(-4, 3),
            textcoords="offset points", ha="right", va="bottom", fontsize=7, color="#444444",
        )  # fmt: skip
        top = max(top, floor_top)
    handles["recovered (one seed)"] = Line2D(
        [], [], marker="o", color="#555555", linestyle="none", label="recovered (one seed)"
    )
    handles["censored: not recovered by the end (>=)"] = Line2D(
        [], [], marker="^", markerfacecolor="white", markeredgecolor="#555555",
        linestyle="none", label="censored: not recovered by the end (>=)",
    )  # fmt: skip
    handles["median over seeds (censored count as longer)"] = Line2D(
        [], [], color="black", linewidth=2.0,
        label="median over seeds (censored count as longer)",
    )  # fmt: skip
    ax.set_xticks(range(len(groups)), tick_labels, rotation=0, fontsize=8)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylim(0.0, top * 1.2 if top > 0 else 1.0)  # every marker and interval on the axes
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(
        handles=list(handles.values()), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0)
    )
    return ax


def _floor_agent(data: Any) -> str | None:
    if isinstance(data, Mapping):
        return None
    return next((r.get("recovery_reference") for r in data if r.get("recovery_reference")), None)


def _top_topics(mixes: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Indices of the ``k`` topics whose share peaks highest in any of the (W, K) mixes
    (so a topic that only rises after a shift is kept), sorted."""
    peak = np.max([np.nan_to_num(m, nan=0.0).max(axis=0) for m in mixes], axis=0)
    order = np.argsort(-np.asarray(peak), kind="stable")
    return np.sort(order[:k])


def _topic_lines(
    ax: Axes, steps: np.ndarray, mix: np.ndarray, top: np.ndarray, names: Sequence[str]
) -> None:
    mix = np.asarray(mix, dtype=np.float64)
    for i, t in enumerate(top):
        ax.plot(
            steps, mix[:, t], color=_TOPIC_PALETTE[i % len(_TOPIC_PALETTE)], linewidth=1.5,
            label=names[t],
        )  # fmt: skip
    if len(steps) > 1:
        ax.set_xlim(steps[0], steps[-1])


def plot_interest_drift(
    run: Run,
    axes: Sequence[Axes] | np.ndarray | None = None,
    *,
    max_users: int = 3,
    top_k: int = 6,
) -> np.ndarray:
    """What users want vs what the agent recommends, over global steps.

    Axes (returned as an array): [0] the population's preferred topic mix (``interest_mix``)
    and [1] the topic mix of the agent's recommendations (``rec_mix``), each as one line per
    topic for the ``top_k`` topics whose share peaks highest in either (the other topics are
    not drawn, so no catch-all band dwarfs them; both panels share the y scale), and, when
    the run tracked users, [2] each tracked user's dominant preferred topic (line) and the
    dominant topic of what it was recommended (markers), with a black tick where a new user
    took over the slot (``tracked_new_user``). Events are marked on all axes. ``axes`` may
    give 2 or 3 axes.
    """
    if run.topics is None:
        raise ValueError(f"run {run.name} has no topics.npz: nothing to plot")
    t = run.topics
    steps = np.asarray(t["steps"], dtype=np.float64)
    if steps.size == 0:
        raise ValueError(f"run {run.name}: topics.npz has no windows")
    names = [str(n) for n in t["topic_names"]]
    interest, rec = np.asarray(t["interest_mix"]), np.asarray(t["rec_mix"])
    tracked_i = np.asarray(t.get("tracked_interest", np.zeros((len(steps), 0, len(names)))))
    tracked_r = np.asarray(t.get("tracked_rec", np.zeros((len(steps), 0, len(names)))))
    n_users = min(max_users, tracked_i.shape[1] if tracked_i.ndim == 3 else 0)
    new_user = t.get("tracked_new_user")
    if axes is None:
        fig = Figure(figsize=(12.0, 7.5 if n_users else 4.2), layout="constrained")
        if n_users:
            mosaic = fig.subplot_mosaic([["interest", "rec"], ["users", "users"]], sharex=True)
            axes_arr = np.array([mosaic["interest"], mosaic["rec"], mosaic["users"]], dtype=object)
        else:
            axes_arr = np.array(fig.subplots(1, 2, sharex=True), dtype=object)
    else:
        axes_arr = np.asarray(list(axes), dtype=object)
        if len(axes_arr) < (3 if n_users else 2):
            raise ValueError(
                f"plot_interest_drift: need {3 if n_users else 2} axes (got {len(axes_arr)})"
            )
    top = _top_topics([interest, rec], top_k)
    ax_i, ax_r = axes_arr[0], axes_arr[1]
    _topic_lines(ax_i, steps, interest, top, names)
    _topic_lines(ax_r, steps, rec, top, names)
    peak = max(
        float(np.nan_to_num(interest[:, top]).max(initial=0.0)),
        float(np.nan_to_num(rec[:, top]).max(initial=0.0)),
    )
    rest = len(names) - len(top)
    ax_i.set_title(f"population's preferred topics ({len(top)} of {len(names)} shown)")
    ax_r.set_title(f"recommended topics ({run.agent})")
    for ax in (ax_i, ax_r):
        ax.set_xlabel("global step")
        ax.set_ylabel("share of the topic mix")
        ax.set_ylim(0.0, max(peak * 1.1, 1e-3))
        ax.grid(True, alpha=0.3)
        _mark_events(ax, run.events, label=False)
    handles, labels = ax_r.get_legend_handles_labels()
    ax_r.legend(
        handles,
        labels,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        fontsize=8,
        title=f"topic (+{rest} not drawn)" if rest else "topic",
        title_fontsize=8,
    )
    if n_users:
        ax_u = axes_arr[2]
        user_colors = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"]
        used: set[int] = set()
        offsets = np.linspace(-0.15, 0.15, n_users) if n_users > 1 else np.zeros(1)
        marked_new = False
        for u in range(n_users):
            color = user_colors[u % len(user_colors)]
            want = np.argmax(np.nan_to_num(tracked_i[:, u], nan=-np.inf), axis=1)
            got_valid = np.isfinite(tracked_r[:, u]).any(axis=1) & (
                np.nan_to_num(tracked_r[:, u]).sum(axis=1) > 0
            )
            got = np.argmax(np.nan_to_num(tracked_r[:, u], nan=-np.inf), axis=1)
            used.update(want.tolist())
            used.update(got[got_valid].tolist())
            ax_u.step(
                steps,
                want + offsets[u],
                where="post",
                color=color,
                linewidth=1.6,
                label=f"slot {u}: preferred",
            )
            ax_u.plot(
                steps[got_valid],
                got[got_valid] + offsets[u],
                linestyle="none",
                marker="x",
                markersize=4,
                color=color,
                label=f"slot {u}: recommended",
            )
            if new_user is not None and np.asarray(new_user).shape[1] > u:
                changed = np.flatnonzero(np.asarray(new_user)[:, u])
                if changed.size:
                    ax_u.plot(
                        steps[changed], want[changed] + offsets[u], linestyle="none",
                        marker="|", markersize=11, markeredgewidth=1.6, color="black",
                        zorder=4, label=None if marked_new else "new user in the slot",
                    )  # fmt: skip
                    marked_new = True
        ticks = sorted(used)
        ax_u.set_yticks(ticks, [names[i] for i in ticks])
        ax_u.set_ylim(min(ticks, default=0) - 0.5, max(ticks, default=0) + 0.5)
        ax_u.set_title(
            "tracked user slots: dominant topic (a slot gets a new user when one leaves)"
        )
        ax_u.set_xlabel("global step")
        ax_u.set_ylabel("topic")
        ax_u.grid(True, axis="y", alpha=0.3)
        _mark_events(ax_u, run.events)
        ax_u.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, ncols=1)
    for ax in axes_arr:
        ax.tick_params(labelbottom=True)
    if axes is None:
        axes_arr[0].figure.suptitle(
            f"Interest drift: {run.scenario} / {run.agent} (seed {run.seed})"
        )
    return axes_arr


def _edges(steps: np.ndarray) -> np.ndarray:
    """Cell edges around sample points (midpoints; half a gap beyond each end)."""
    if steps.size == 1:
        return np.array([steps[0] - 0.5, steps[0] + 0.5])
    mid = (steps[1:] + steps[:-1]) / 2
    return np.concatenate([[2 * steps[0] - mid[0]], mid, [2 * steps[-1] - mid[-1]]])


def plot_attention(
    run: Run,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    annotate_clicks: bool = True,
) -> Axes:
    """Heatmap of the recommender's attention over the history of tracked user 0 (slot 0).

    The weights are what the run recorded (``attention.npz``'s ``source`` names them, the
    colour bar's label): for the attention recommender with its content match, the dynamic
    weights of each impression in the profile that scores the next recommendation
    (``AttentionRecommender.match_attention``); otherwise the encoder's last-layer attention of
    the query (mean over heads).

    y: history position, oldest (bottom) to newest (top); x: global step. Positions without
    an impression (a new user's history is short) are light grey, a window whose history was
    empty is hatched, and a triangle above the map marks each window in which a new user took
    over slot 0 (``new_user``, recorded since the recorder has it). Dots mark positions whose
    feedback was positive (clicks) when ``annotate_clicks``; dashed white lines are the
    population events.

    Raises:
        ValueError: the run has no attention data (not an attention agent).
    """
    if run.attention is None:
        raise ValueError(
            f"run {run.name} (agent {run.agent!r}) has no attention.npz: only attention agents "
            "record attention"
        )
    a = run.attention
    steps = np.asarray(a["steps"], dtype=np.float64)
    weights = np.asarray(a["weights"], dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] != steps.size or steps.size == 0:
        raise ValueError(
            f"run {run.name}: attention weights {weights.shape} do not match steps {steps.shape}"
        )
    horizon = weights.shape[1]
    if "item_topic" in a:
        valid = np.asarray(a["item_topic"]) >= 0
    elif "mask" in a:
        valid = np.asarray(a["mask"], dtype=bool)
    else:
        valid = np.ones_like(weights, dtype=bool)
    shown = np.ma.masked_where(~valid | ~np.isfinite(weights), weights)
    # the colour scale stops at the 98th percentile: a history of one or two impressions puts
    # all the weight on them and would otherwise wash out every longer history
    finite = weights[valid & np.isfinite(weights)]
    top = float(np.percentile(finite, 98)) if finite.size else 1.0
    ax = _new_axes(ax, figsize=(9.0, 4.8))
    ax.set_facecolor("#e6e6e6")  # no impression at this position (masked cells)
    edges = _edges(steps)
    handles: list[Any] = [
        Patch(facecolor="#e6e6e6", edgecolor="#999999", label="no impression yet (short history)")
    ]
    empty = ~valid.any(axis=1)
    for i in np.flatnonzero(empty):
        ax.axvspan(edges[i], edges[i + 1], facecolor="none", edgecolor="#888888", hatch="///",
                   linewidth=0, zorder=2)  # fmt: skip
    if empty.any():
        handles.append(
            Patch(facecolor="none", edgecolor="#888888", hatch="///", label="empty history")
        )
    mesh = ax.pcolormesh(
        edges,
        np.arange(horizon + 1) - 0.5,
        shown.T,
        cmap="viridis",
        shading="flat",
        vmin=0.0,
        vmax=max(top, 1e-9),
    )
    label = str(a["source"]) if "source" in a else "attention weight"
    ax.figure.colorbar(mesh, ax=ax, label=label, fraction=0.046, pad=0.02, extend="max")
    if annotate_clicks and "feedback" in a:
        clicked = (np.nan_to_num(np.asarray(a["feedback"], dtype=np.float64)) > 0) & valid
        si, hi = np.nonzero(clicked)
        if si.size:
            handles.append(
                ax.scatter(
                    steps[si],
                    hi,
                    s=6,
                    c="white",
                    edgecolors="black",
                    linewidths=0.3,
                    label="click",
                    zorder=3,
                )
            )
    kinds = set()
    for event in run.events:
        ax.axvline(float(event["step"]), color="white", linestyle="--", linewidth=1.3, zorder=4)
        kinds.add(_event_label(str(event.get("kind", "event"))))
    if kinds:
        handles.append(
            Line2D([], [], color="#444444", linestyle="--", label=", ".join(sorted(kinds)))
        )
    if "new_user" in a:
        changed = np.flatnonzero(np.asarray(a["new_user"], dtype=bool))
        if changed.size:
            handles.append(
                ax.scatter(
                    steps[changed],
                    np.full(changed.size, horizon - 0.5),
                    marker="v",
                    s=22,
                    c="#d62728",
                    clip_on=False,
                    zorder=5,
                    label="new user in slot 0",
                )  # fmt: skip
            )
    ax.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=len(handles),
        fontsize=7, frameon=False,
    )  # fmt: skip
    ax.set_ylim(-0.5, horizon - 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("global step")
    ax.set_ylabel("history position (oldest → newest)")
    ax.set_title(
        title if title is not None else f"Attention over the history ({run.agent}, user 0)"
    )
    return ax


def place_labels(
    ax: Axes,
    xs: Sequence[float],
    ys: Sequence[float],
    labels: Sequence[str],
    *,
    fontsize: float = 7,
    colors: Sequence[str] | None = None,
    max_iter: int = 400,
) -> list[Any]:
    """Label points ``(xs, ys)`` without overlapping labels; return the annotations.

    Each label starts just right of and above its point; overlapping labels (their rendered
    boxes, with a little padding) are pushed apart vertically, and a label moved away from its
    point gets a thin leader line. Call it after the axes' limits are final. The figure's
    layout engine (constrained layout) runs first, so the points sit where they will be drawn,
    and the offsets are in points, so they scale with the text when the figure is saved at
    another dpi (in pixels, labels kept apart on screen overlapped in a 120-dpi PNG).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = ax.figure
    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    engine = fig.get_layout_engine()  # type: ignore[union-attr]
    if engine is not None:
        engine.execute(fig)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    px = 72.0 / fig.dpi  # points per display pixel
    start = (5.0 * px, 4.0 * px)
    texts = [
        ax.annotate(
            label,
            (x, y),
            xytext=start,
            textcoords="offset points",
            fontsize=fontsize,
            color=None if colors is None else colors[i],
            zorder=5,
        )  # fmt: skip
        for i, (x, y, label) in enumerate(zip(xs, ys, labels, strict=True))
    ]
    pad = 1.5
    marker = 6.0  # half the size of a marker, in pixels: labels keep off every point too

    def resolve() -> None:
        points = ax.transData.transform(np.column_stack([xs, ys])) if texts else np.zeros((0, 2))
        for _ in range(max_iter):
            boxes = [t.get_window_extent(renderer).expanded(1.0, 1.0) for t in texts]
            moved = False
            for i, box in enumerate(boxes):
                for px_, py in points:
                    if box.x1 < px_ - marker or box.x0 > px_ + marker:
                        continue
                    if box.y1 < py - marker or box.y0 > py + marker:
                        continue
                    dx, dy = texts[i].xyann
                    up = (box.y0 + box.y1) / 2 >= py
                    step = (py + marker - box.y0 + 0.5) if up else -(box.y1 - (py - marker) + 0.5)
                    texts[i].xyann = (dx, dy + step * px)
                    moved = True
                    break
            for i in range(len(texts)):
                for j in range(i + 1, len(texts)):
                    a, b = boxes[i], boxes[j]
                    if a.x1 + pad < b.x0 or b.x1 + pad < a.x0:
                        continue
                    overlap = min(a.y1, b.y1) - max(a.y0, b.y0) + pad
                    if overlap <= 0:
                        continue
                    upper, lower = (i, j) if (a.y0 + a.y1, j) >= (b.y0 + b.y1, i) else (j, i)
                    for k, sign in ((upper, 1.0), (lower, -1.0)):
                        dx, dy = texts[k].xyann
                        texts[k].xyann = (dx, dy + sign * (overlap / 2 + 0.5) * px)
                    moved = True
            if not moved:
                break
        # what the pushes left (they can undo each other in a crowd): stack from the bottom up,
        # each label above every lower one it shares columns with, so none overlaps another
        boxes = [t.get_window_extent(renderer).expanded(1.0, 1.0) for t in texts]
        order = sorted(range(len(texts)), key=lambda k: (boxes[k].y0, k))
        placed: list[int] = []
        for k in order:
            box = boxes[k]
            lift = 0.0
            for j in placed:
                other = boxes[j]
                if box.x1 + pad < other.x0 or other.x1 + pad < box.x0:
                    continue
                lift = max(lift, other.y1 + pad - box.y0)  # its bottom above that top
            if lift > 0:
                dx, dy = texts[k].xyann
                texts[k].xyann = (dx, dy + lift * px)
                boxes[k] = texts[k].get_window_extent(renderer).expanded(1.0, 1.0)
            placed.append(k)

    resolve()
    if engine is not None:  # the labels take room too: lay out again, then settle once more
        engine.execute(fig)
        resolve()
    for k, t in enumerate(texts):
        if abs(t.xyann[1] - start[1]) > 8.0 * px:  # moved away from its point: add a leader
            t.remove()
            texts[k] = ax.annotate(
                t.get_text(), t.xy, xytext=t.xyann, textcoords="offset points",
                fontsize=fontsize, color=t.get_color(), zorder=5,
                arrowprops={"arrowstyle": "-", "color": "#999999", "linewidth": 0.5,
                            "shrinkA": 0, "shrinkB": 2},
            )  # fmt: skip
            texts[k].update_positions(renderer)
    return texts


def save_figure(fig: Figure | Axes, path: str | Path, *, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG atomically (temp file + os.replace) and close it."""
    if isinstance(fig, Axes):
        fig = fig.figure
    path = Path(path)
    try:
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
