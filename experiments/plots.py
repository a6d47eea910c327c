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
    Stat,
    mean_ci,
)

__all__ = [
    "agent_colors",
    "plot_adaptation",
    "plot_regret",
    "plot_personalization",
    "plot_recovery",
    "plot_interest_drift",
    "plot_attention",
    "save_figure",
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
_TOPIC_PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")
_OTHER_COLOR = "#d0d0d0"
_EVENT_STYLE = {"color": "#555555", "linestyle": "--", "linewidth": 1.0}


def _registered_colors() -> dict[str, str]:
    """One palette colour per registered agent, in registry order: the same in every figure."""
    from driftrec.agents.registry import AGENT_NAMES

    names = [a for a in AGENT_NAMES if a not in _FIXED_COLORS]
    palette = list(_PALETTE)
    if len(names) > len(palette):  # a longer registry: more shades, never a repeated colour
        extra = matplotlib.colormaps["tab20b"].colors + matplotlib.colormaps["tab20c"].colors
        palette += [
            matplotlib.colors.to_hex(c) for c in extra if matplotlib.colors.to_hex(c) not in palette
        ]
    return {a: palette[i % len(palette)] for i, a in enumerate(names)}


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


def _plot_curves(ax: Axes, curves: Mapping[str, Curve]) -> tuple[float, float]:
    colors = agent_colors(list(curves))
    lo_all, hi_all = math.inf, -math.inf
    for agent in sorted(curves):
        curve = curves[agent]
        color = colors[agent]
        label = agent if curve.n <= 1 else f"{agent} (n={curve.n})"
        ax.plot(curve.steps, curve.mean, color=color, linewidth=1.6, label=label, zorder=3)
        if curve.n > 1:
            ax.fill_between(
                curve.steps, curve.lo, curve.hi, color=color, alpha=0.15, linewidth=0, zorder=2
            )
        finite = curve.mean[np.isfinite(curve.mean)]
        if finite.size:
            lo_all = min(lo_all, float(finite.min()))
            hi_all = max(hi_all, float(finite.max()))
    return lo_all, hi_all  # range of the means (wide intervals of few seeds may be clipped)


def plot_adaptation(
    curves: Mapping[str, Curve],
    events: Sequence[Mapping[str, Any]],
    ax: Axes | None = None,
    *,
    title: str | None = None,
    ylabel: str = "reward / one-step oracle",
) -> Axes:
    """Normalized reward over global steps: mean and shaded 95% interval per agent, with
    dashed lines at the drift events. y spans 0 to 1.05, more if a mean curve leaves that range
    (intervals are clipped to it: with few seeds they can be very wide)."""
    ax = _new_axes(ax)
    lo, hi = _plot_curves(ax, curves)
    _mark_events(ax, events)
    ax.axhline(1.0, color="black", linewidth=0.6, alpha=0.4, zorder=1)
    bottom = min(0.0, lo) if math.isfinite(lo) else 0.0
    top = max(1.05, hi + 0.02) if math.isfinite(hi) else 1.05
    ax.set_ylim(bottom, top)
    ax.set_xlabel("global step")
    ax.set_ylabel(ylabel)
    ax.set_title(title if title is not None else "Adaptation to drift")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return ax


def plot_regret(
    curves: Mapping[str, Curve],
    events: Sequence[Mapping[str, Any]],
    ax: Axes | None = None,
    *,
    title: str | None = None,
    ylabel: str = "cumulative regret",
) -> Axes:
    """Cumulative regret over global steps: mean and shaded 95% interval per agent."""
    ax = _new_axes(ax)
    _plot_curves(ax, curves)
    _mark_events(ax, events)
    ax.set_xlabel("global step")
    ax.set_ylabel(ylabel)
    ax.set_title(title if title is not None else "Cumulative regret")
    ax.set_ylim(bottom=0.0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return ax


def plot_personalization(
    curves: Mapping[str, Curve],
    events: Sequence[Mapping[str, Any]],
    ax: Axes | None = None,
    *,
    title: str | None = None,
    ylabel: str = "personalisation gain (greedy)",
) -> Axes:
    """Personalisation gain over global steps: mean and shaded 95% interval per agent.

    0 (the thin line) is what a policy that gives every user the same item earns.
    """
    ax = _new_axes(ax)
    _plot_curves(ax, curves)
    _mark_events(ax, events)
    ax.axhline(0.0, color="black", linewidth=0.6, alpha=0.4, zorder=1)
    ax.set_xlabel("global step")
    ax.set_ylabel(ylabel)
    ax.set_title(title if title is not None else "Personalisation")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
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
    a hollow triangle at the steps observed after the event, a lower bound, never a short bar.
    The mean and its 95% interval (clipped at 0) are drawn only when every measured seed
    recovered; otherwise "k/n censored" is written under the markers. Seeds without a
    recovery (too few windows before the event, or a pre-event level below ``min_level``: the
    agent never reached a level to recover) draw nothing and read "n/a".
    """
    ax = _new_axes(ax)
    groups = _recovery_entries(rows_or_recoveries)
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
    for g, (label, entries) in enumerate(groups):
        color = colors[label]
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
            stat: Stat = entry["steps"]
            if n_rec > 0 and n_cens == 0 and math.isfinite(stat.mean):
                # every measured seed recovered: the mean and its interval, clipped at 0
                lo = max(stat.lo, 0.0) if stat.n > 1 else stat.mean
                hi = stat.hi if stat.n > 1 else stat.mean
                ax.errorbar(
                    x, stat.mean, yerr=[[stat.mean - lo], [hi - stat.mean]], fmt="_",
                    color="black", markersize=14, capsize=3, zorder=4,
                )  # fmt: skip
                top = max(top, hi)
            note = ""
            if n_cens:
                note = f"{n_cens}/{n_rec + n_cens}\ncensored"
            elif n_rec == 0:
                note = "n/a"
            if note:
                ax.annotate(
                    note, xy=(x, 0.0), xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7, color="#444444",
                )  # fmt: skip
            key = f"event {k + 1} @ {entry['event_step']:,}"
            if n_events > 1 and key not in handles:
                handles[key] = Patch(facecolor="none", edgecolor="none", label=key)
    handles["recovered (one seed)"] = Line2D(
        [], [], marker="o", color="#555555", linestyle="none", label="recovered (one seed)"
    )
    handles["censored: not recovered by the end (>=)"] = Line2D(
        [], [], marker="^", markerfacecolor="white", markeredgecolor="#555555",
        linestyle="none", label="censored: not recovered by the end (>=)",
    )  # fmt: skip
    handles["mean, 95% interval (all recovered)"] = Line2D(
        [], [], marker="_", color="black", linestyle="none", markersize=12,
        label="mean, 95% interval (all recovered)",
    )  # fmt: skip
    ax.set_xticks(range(len(groups)), [label for label, _ in groups], rotation=20, ha="right")
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylim(0.0, top * 1.2 if top > 0 else 1.0)  # every marker and interval on the axes
    ax.grid(True, axis="y", alpha=0.3)
    if handles:
        ax.legend(
            handles=list(handles.values()), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0)
        )
    return ax


def _top_topics(mixes: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Indices of the ``k`` topics with the largest mean share over the given (W, K) mixes."""
    importance = sum(np.nan_to_num(m, nan=0.0).mean(axis=0) for m in mixes)
    order = np.argsort(-np.asarray(importance), kind="stable")
    return np.sort(order[:k])


def _stack(
    ax: Axes, steps: np.ndarray, mix: np.ndarray, top: np.ndarray, names: Sequence[str]
) -> None:
    mix = np.nan_to_num(np.asarray(mix, dtype=np.float64), nan=0.0)
    layers = [mix[:, t] for t in top]
    labels = [names[t] for t in top]
    colors = [_TOPIC_PALETTE[i % len(_TOPIC_PALETTE)] for i in range(len(top))]
    rest = np.setdiff1d(np.arange(mix.shape[1]), top)
    if rest.size:
        layers.append(mix[:, rest].sum(axis=1))
        labels.append("other")
        colors.append(_OTHER_COLOR)
    ax.stackplot(steps, *layers, labels=labels, colors=colors, alpha=0.9, linewidth=0)
    if len(steps) > 1:
        ax.set_xlim(steps[0], steps[-1])
    ax.set_ylim(0.0, max(1.0, float(mix.sum(axis=1).max(initial=0.0))))


def plot_interest_drift(
    run: Run,
    axes: Sequence[Axes] | np.ndarray | None = None,
    *,
    max_users: int = 3,
    top_k: int = 6,
) -> np.ndarray:
    """What users want vs what the agent recommends, over global steps.

    Axes (returned as an array): [0] the population's preferred topic mix (``interest_mix``),
    [1] the topic mix of the agent's recommendations (``rec_mix``), both as stacked areas of the
    ``top_k`` most important topics (the rest as "other"), and, when the run tracked users,
    [2] each tracked user's dominant preferred topic (line) and the dominant topic of what it
    was recommended (markers). Events are marked on all axes. ``axes`` may give 2 or 3 axes.
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
    _stack(ax_i, steps, interest, top, names)
    _stack(ax_r, steps, rec, top, names)
    ax_i.set_title("population's preferred topics")
    ax_r.set_title(f"recommended topics ({run.agent})")
    for ax in (ax_i, ax_r):
        ax.set_xlabel("global step")
        ax.set_ylabel("share")
        _mark_events(ax, run.events, label=False)
    handles, labels = ax_r.get_legend_handles_labels()
    ax_r.legend(  # top of the stack first
        handles[::-1],
        labels[::-1],
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        fontsize=8,
        title="topic",
    )
    if n_users:
        ax_u = axes_arr[2]
        user_colors = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"]
        used: set[int] = set()
        offsets = np.linspace(-0.15, 0.15, n_users) if n_users > 1 else np.zeros(1)
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
                label=f"user {u}: preferred",
            )
            ax_u.plot(
                steps[got_valid],
                got[got_valid] + offsets[u],
                linestyle="none",
                marker="x",
                markersize=4,
                color=color,
                label=f"user {u}: recommended",
            )
        ticks = sorted(used)
        ax_u.set_yticks(ticks, [names[i] for i in ticks])
        ax_u.set_ylim(min(ticks, default=0) - 0.5, max(ticks, default=0) + 0.5)
        ax_u.set_title("tracked users: dominant topic")
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

    y: history position, oldest (bottom) to newest (top); x: global step; padding blank. Dots
    mark positions whose feedback was positive (clicks) when ``annotate_clicks``.

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
    ax = _new_axes(ax, figsize=(9.0, 4.5))
    mesh = ax.pcolormesh(
        _edges(steps),
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
            ax.legend(loc="upper left", fontsize=8, framealpha=0.8)
    for event in run.events:
        ax.axvline(float(event["step"]), color="red", linestyle="--", linewidth=1.0, zorder=4)
    ax.set_ylim(-0.5, horizon - 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("global step")
    ax.set_ylabel("history position (oldest → newest)")
    ax.set_title(
        title if title is not None else f"Attention over the history ({run.agent}, user 0)"
    )
    return ax


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
