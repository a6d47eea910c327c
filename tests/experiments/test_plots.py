"""Tests of driftrec.experiments.plots on in-memory runs: PNGs, titles, labels, legends."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.figure import Figure

from driftrec.experiments.analysis import Curve, Recovery, Run, Stat, aggregate, summary_table
from driftrec.experiments.plots import (
    agent_colors,
    plot_adaptation,
    plot_adaptation_panels,
    plot_attention,
    plot_interest_drift,
    plot_personalization,
    plot_recovery,
    plot_regret,
    save_figure,
)

STEPS = np.arange(1, 21, dtype=np.float64) * 50.0  # 20 windows of 50 steps, 50..1000
EVENTS = [{"step": 500, "kind": "population_shift"}]
TOPICS = np.array(["news", "sport", "music", "film", "games", "food", "travel", "tech"])


def make_run(agent: str, seed: int, *, level: float = 0.8, attention: bool = False) -> Run:
    """A hand-made run: reward dips at the event (step 500) and recovers; 8 topics, 2 users."""
    w, k, h = len(STEPS), len(TOPICS), 6
    nr = np.full(w, level) - 0.01 * seed
    nr[10:13] = [level * 0.4, level * 0.6, level * 0.85]  # windows ending 550, 600, 650
    metrics = {
        "step": STEPS.copy(),
        "normalized_reward": nr,
        "cum_regret": np.cumsum(np.full(w, 1.0 - level)) * 50,
    }
    t = np.linspace(0, 1, w)[:, None]
    interest = np.where(np.arange(k) < 4, 1.0 - t, t) + 0.1 * np.arange(k)
    interest /= interest.sum(axis=1, keepdims=True)
    rec = np.roll(interest, 2, axis=0)
    topics = {
        "steps": STEPS.copy(),
        "topic_names": TOPICS,
        "rec_mix": rec,
        "interest_mix": interest,
        "tracked_interest": np.stack([interest, interest[:, ::-1]], axis=1),
        "tracked_rec": np.stack([rec, rec[:, ::-1]], axis=1),
        "tracked_new_user": np.stack([np.arange(w) % 5 == 4, np.zeros(w, dtype=bool)], axis=1),
    }
    att = None
    if attention:
        weights = np.tile(np.linspace(0.05, 0.3, h), (w, 1))
        weights[:3, :2] = 0.0  # padding at the start
        item_topic = np.tile(np.arange(h) % k, (w, 1))
        item_topic[:3, :2] = -1
        item_topic[7] = -1  # window 8: a new user with an empty history
        weights[7] = 0.0
        feedback = (np.add.outer(np.arange(w), np.arange(h)) % 3 == 0).astype(np.float64)
        att = {
            "steps": STEPS.copy(),
            "weights": weights,
            "item_topic": item_topic,
            "feedback": feedback,
            "mask": item_topic >= 0,
            "topic_names": TOPICS,
            "new_user": np.arange(w) == 7,
        }
    config = {"scenario": "shift", "agent": agent, "seed": seed, "log_every": 50}
    return Run(
        path=Path(f"/nonexistent/shift__{agent}__{seed}"),
        config=config,
        metrics=metrics,
        events=list(EVENTS),
        topics=topics,
        attention=att,
    )


@pytest.fixture(scope="module")
def runs() -> list[Run]:
    """Three agents (oracle, random, linucb) x 3 seeds."""
    levels = {"linucb": 0.8, "oracle": 1.0, "random": 0.3}
    return [make_run(a, s, level=lv) for a, lv in levels.items() for s in range(3)]


def check_png(path: Path, min_bytes: int = 5_000) -> None:
    """The PNG exists, is bigger than min_bytes and is not a uniform image."""
    assert path.is_file()
    assert path.stat().st_size > min_bytes
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert float(image[..., :3].var()) > 0.0


def legend_texts(ax) -> list[str]:
    """The texts of the axes' legend."""
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def test_agent_colors_fixed() -> None:
    """oracle black, random grey, others by sorted name regardless of input order."""
    colors = agent_colors(["zeta", "oracle", "alpha", "random"])
    assert colors["oracle"] == "black" and colors["random"] == "#7f7f7f"
    assert colors == agent_colors(["random", "alpha", "zeta", "oracle"])
    assert colors["alpha"] != colors["zeta"]


def test_plot_adaptation(runs: list[Run], tmp_path: Path) -> None:
    """Adaptation plot: labels, legend per agent plus the event, y from 0 to 1.05, a PNG."""
    curves = aggregate(runs, "normalized_reward")
    ax = plot_adaptation(curves, EVENTS, title="Adaptation: shift")
    assert ax.get_title() == "Adaptation: shift"
    assert ax.get_xlabel() == "global step"
    assert ax.get_ylabel() == "reward / one-step oracle"
    texts = legend_texts(ax)
    assert texts == ["linucb (n=3)", "oracle (n=3)", "random (n=3)", "population shift"]
    assert ax.get_ylim() == pytest.approx((0.0, 1.05))
    oracle_line = [ln for ln in ax.get_lines() if ln.get_label() == "oracle (n=3)"][0]
    assert oracle_line.get_color() == "black"
    assert any(ln.get_xdata()[0] == 500 and ln.get_linestyle() == "--" for ln in ax.get_lines())
    check_png(save_figure(ax.figure, tmp_path / "adaptation.png"))


def test_plot_adaptation_default_title_and_existing_axes() -> None:
    """Draws on a given Axes and sets the default title."""
    fig = Figure()
    ax = fig.add_subplot()
    curve = Curve(STEPS, np.full(20, 0.5), np.full(20, 0.4), np.full(20, 0.6), 2, np.full(20, 2))
    assert plot_adaptation({"x": curve}, [], ax=ax, ylabel="ratio") is ax
    assert ax.get_title() == "Adaptation to drift" and ax.get_ylabel() == "ratio"


def _flat(value: float, n: int = 3) -> Curve:
    return Curve(STEPS, np.full(20, value), np.full(20, value), np.full(20, value), n)


def _wide(level: float, n: int) -> Curve:
    """A curve whose 95% band is wider than the axis (a few seeds)."""
    return Curve(STEPS, np.full(20, level), np.full(20, level - 2), np.full(20, level + 2), n)


def test_plot_adaptation_flat_oracle_is_a_labelled_line_and_bands_are_cut(tmp_path: Path) -> None:
    """The oracle's ratio (1 everywhere) is a labelled line, not a legend entry; bands stay in
    [0, 1]; three seeds get the few-seeds note."""
    curves = {"oracle": _flat(1.0), "linucb": _wide(0.7, 3)}
    ax = plot_adaptation(curves, EVENTS)
    assert legend_texts(ax) == ["linucb (n=3)", "population shift"]
    assert "oracle (one-step, privileged) = 1" in [t.get_text() for t in ax.texts]
    (band,) = ax.collections
    ys = np.concatenate([p.vertices[:, 1] for p in band.get_paths()])
    assert ys.min() >= 0.0 and ys.max() <= 1.0
    note = [t.get_text() for t in ax.texts if t.get_text().startswith("n = 3")]
    assert note == ["n = 3 seeds per agent (< 5): intervals unreliable"]
    check_png(save_figure(ax.figure, tmp_path / "flat.png"))


def test_plot_adaptation_no_bands_below_three_seeds() -> None:
    """With two seeds the band (t = 12.7) is not drawn, and the note says so."""
    ax = plot_adaptation({"linucb": _wide(0.7, 2)}, EVENTS)
    assert not ax.collections
    assert any("no bands below 3" in t.get_text() for t in ax.texts)
    five = plot_adaptation({"linucb": _wide(0.7, 5)}, EVENTS, bands=False)
    assert not five.collections and not [t for t in five.texts if "seeds" in t.get_text()]


def test_plot_adaptation_highlight_mode(tmp_path: Path) -> None:
    """Highlighted agents get colours, bands and the legend; the others are grey lines
    labelled at their ends (not in the legend)."""
    levels = [("a", 0.8), ("b", 0.7), ("c", 0.69), ("d", 0.68)]
    curves = {name: _wide(lv, 5) for name, lv in levels}
    ax = plot_adaptation(curves, EVENTS, highlight=["a", "b"])
    assert legend_texts(ax) == ["a (n=5)", "b (n=5)", "population shift"]
    assert len(ax.collections) == 2  # two bands
    labels = {t.get_text(): t for t in ax.texts}
    assert {"c", "d"} <= set(labels)
    grey = [ln for ln in ax.get_lines() if ln.get_color() == "#b0b0b0"]
    assert len(grey) == 2
    # c (0.69) and d (0.68) end 0.01 apart: their labels are pushed at least 0.045 of the
    # y range apart, so they do not overlap
    assert abs(labels["c"].xyann[1] - labels["d"].xyann[1]) >= 0.045 * 1.05 - 1e-9
    check_png(save_figure(ax.figure, tmp_path / "highlight.png"))


def test_plot_adaptation_panels(tmp_path: Path) -> None:
    """One panel per agent (not the flat oracle), the reference dashed in the others."""
    curves = {"oracle": _flat(1.0), "a": _wide(0.8, 5), "b": _wide(0.6, 5), "c": _wide(0.4, 5)}
    fig = plot_adaptation_panels(curves, EVENTS, reference="b", ncols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["a", "b", "c"]
    assert len(fig.axes) == 4 and not fig.axes[3].get_visible()
    dashed = [ln for ax in visible for ln in ax.get_lines() if ln.get_label() == "b"]
    assert len(dashed) == 2  # in a's and c's panels
    assert visible[0].get_ylim() == visible[2].get_ylim()  # shared axes
    assert "dashed: b" in fig.get_suptitle() and "line at 1: oracle" in fig.get_suptitle()
    check_png(save_figure(fig, tmp_path / "panels.png"))
    with pytest.raises(ValueError, match="no curves"):
        plot_adaptation_panels({"oracle": _flat(1.0)}, EVENTS)


def test_plot_personalization_zero_agents_are_the_labelled_zero_line() -> None:
    """Agents whose gain is exactly 0 are named on the 0 line instead of drawn as curves."""
    curves = {"population-best": _flat(0.0), "popularity": _flat(0.0), "linucb": _wide(0.1, 5)}
    ax = plot_personalization(curves, EVENTS)
    assert legend_texts(ax) == ["linucb (n=5)", "population shift"]
    texts = [t.get_text() for t in ax.texts]
    assert "0: one item for everyone (popularity, population-best)" in texts


def test_plot_regret(runs: list[Run], tmp_path: Path) -> None:
    """Regret plot: labels, legend, a PNG."""
    ax = plot_regret(aggregate(runs, "cum_regret"), EVENTS)
    assert ax.get_title() == "Cumulative regret"
    assert ax.get_xlabel() == "global step" and ax.get_ylabel() == "cumulative regret"
    assert "linucb (n=3)" in legend_texts(ax)
    check_png(save_figure(ax.figure, tmp_path / "regret.png"))


def _markers(ax: Any, marker: str) -> list[float]:
    """y values of the single-point markers of one kind (one per seed)."""
    return [
        float(line.get_ydata()[0])
        for line in ax.get_lines()
        if line.get_marker() == marker and len(line.get_ydata()) == 1
    ]


def test_plot_recovery_from_rows(runs: list[Run], tmp_path: Path) -> None:
    """Recovery from summary rows: one dot per recovered seed, labels and a PNG; agents below
    the minimum pre-event level get no recovery ("n/a")."""
    rows = summary_table(runs, pre_windows=5)
    assert rows[0]["recovery"][0]["n_recovered"] == 3
    ax = plot_recovery(rows)
    assert ax.get_title() == "Recovery after drift events"
    assert ax.get_xlabel() == "agent"
    assert ax.get_ylabel() == "recovery time (global steps)"
    # the oracle (ratio 1 by definition) is not drawn; random never reached the minimum
    # level, so it has nothing to recover: "n/a" under its name
    assert [t.get_text() for t in ax.get_xticklabels()] == ["linucb", "random\nn/a"]
    recovered = sum(e["n_recovered"] for r in rows for e in r["recovery"] if r["agent"] != "oracle")
    assert len(_markers(ax, "o")) == recovered > 0
    check_png(save_figure(ax.figure, tmp_path / "recovery.png"))


def test_plot_recovery_censored_is_drawn_as_censored(tmp_path: Path) -> None:
    """Censored seeds are hollow triangles at the observed horizon (a lower bound), never
    short bars; no mean is drawn for an agent with censored seeds."""
    never = Recovery(math.nan, True, 0.8, 0.4, 500.0)
    data = {
        "a": {500: [Recovery(150.0, False, 0.8, 0.5, 500.0), never]},
        "b": {500: [never, never]},
    }
    ax = plot_recovery(data, title="Recovery: shift")
    assert ax.get_title() == "Recovery: shift"
    assert not ax.patches  # no bars at all
    assert _markers(ax, "o") == [150.0]
    assert _markers(ax, "^") == [500.0, 500.0, 500.0]
    # a's median is 150 (the other seed counts as longer); b has none: both never recovered
    medians = [
        ln for ln in ax.get_lines() if ln.get_linewidth() == 2.0 and len(ln.get_xdata()) == 2
    ]
    assert [ln.get_ydata()[0] for ln in medians] == [150.0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["a\n1/2 censored", "b\n2/2 censored"]  # under the names: no collisions
    assert "censored: not recovered by the end (>=)" in legend_texts(ax)
    assert ax.get_ylim()[1] >= 500.0
    check_png(save_figure(ax.figure, tmp_path / "recovery_censored.png"))


def test_plot_recovery_without_events() -> None:
    """Rows without events give a note instead of markers."""
    row = {"scenario": "calm", "agent": "x", "recovery": []}
    ax = plot_recovery([row])
    assert [t.get_text() for t in ax.texts] == ["no population events"]


def test_plot_recovery_two_events_median_on_the_axes() -> None:
    """Two events, every seed recovered: a median bar per event inside the y range, and a
    legend naming the event steps."""
    recs = [Recovery(x, False, 0.8, 0.5, 900.0) for x in (20.0, 30.0, 250.0)]
    entry = {
        "steps": Stat(100.0, -50.0, 250.0, 3), "n_recovered": 3, "n_censored": 0,
        "recoveries": recs,
    }  # fmt: skip
    row = {
        "scenario": "s",
        "agent": "x",
        "recovery": [dict(entry, event_step=500), dict(entry, event_step=1500)],
    }
    ax = plot_recovery([row])
    medians = [
        ln for ln in ax.get_lines() if ln.get_linewidth() == 2.0 and len(ln.get_xdata()) == 2
    ]
    assert [ln.get_ydata()[0] for ln in medians] == [30.0, 30.0]  # one per event
    bottom, top = ax.get_ylim()
    assert bottom == 0.0 and top >= 250.0
    labels = legend_texts(ax)
    assert labels[:2] == ["event 1 @ 500", "event 2 @ 1,500"]


def test_plot_interest_drift(tmp_path: Path) -> None:
    """Three panels; one line per top-6 topic (no catch-all 'other'), the same y scale in
    both mix panels; new users in a slot are marked."""
    run = make_run("linucb", 0)
    axes = plot_interest_drift(run)
    assert len(axes) == 3
    assert axes[0].get_title() == "population's preferred topics (6 of 8 shown)"
    assert axes[1].get_title() == "recommended topics (linucb)"
    assert axes[2].get_title().startswith("tracked user slots: dominant topic")
    assert all(ax.get_xlabel() == "global step" for ax in axes)
    assert axes[0].get_ylabel() == "share of the topic mix" and axes[2].get_ylabel() == "topic"
    texts = legend_texts(axes[1])
    assert len(texts) == 6 and "other" not in texts
    assert axes[1].get_legend().get_title().get_text() == "topic (+2 not drawn)"
    assert len(axes[0].get_lines()) >= 6 and axes[0].get_ylim() == axes[1].get_ylim()
    assert axes[0].get_ylim()[1] < 0.5  # scaled to the topics' shares, not to a stack of 1
    assert legend_texts(axes[2])[:3] == [
        "slot 0: preferred",
        "slot 0: recommended",
        "new user in the slot",
    ]
    marks = [ln for ln in axes[2].get_lines() if ln.get_marker() == "|"]
    assert len(marks) == 1 and len(marks[0].get_xdata()) == 4  # windows 5, 10, 15, 20
    check_png(save_figure(axes[0].figure, tmp_path / "interest.png"))


def test_plot_interest_drift_without_users_or_topics() -> None:
    """No tracked users: two panels; no topics: ValueError."""
    run = make_run("linucb", 0)
    assert run.topics is not None
    run.topics["tracked_interest"] = np.zeros((len(STEPS), 0, len(TOPICS)))
    run.topics["tracked_rec"] = np.zeros((len(STEPS), 0, len(TOPICS)))
    assert len(plot_interest_drift(run)) == 2
    run.topics = None
    with pytest.raises(ValueError, match="no topics"):
        plot_interest_drift(run)


def test_plot_attention(tmp_path: Path) -> None:
    """Attention heatmap: labels, click legend, a PNG."""
    ax = plot_attention(make_run("attention-ppo", 0, attention=True))
    assert ax.get_title() == "Attention over the history (attention-ppo, user 0)"
    assert ax.get_xlabel() == "global step"
    assert ax.get_ylabel() == "history position (oldest → newest)"
    assert legend_texts(ax) == [
        "no impression yet (short history)",
        "empty history",
        "click",
        "population shift",
        "new user in slot 0",
    ]
    check_png(save_figure(ax.figure, tmp_path / "attention.png"))


def test_plot_attention_without_data_raises() -> None:
    """A run without attention data is a clear ValueError."""
    with pytest.raises(ValueError, match="no attention.npz"):
        plot_attention(make_run("linucb", 0))


def test_save_figure_is_atomic_and_closes(tmp_path: Path) -> None:
    """save_figure leaves only the PNG (no temp file) and creates parent dirs."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    out = save_figure(fig, tmp_path / "sub" / "line.png")
    assert out == tmp_path / "sub" / "line.png"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["line.png"]
    assert not plt.fignum_exists(fig.number)
    check_png(out, min_bytes=1_000)


def test_plot_recovery_undefined_is_na() -> None:
    """An event without enough pre-event windows shows 'n/a' instead of a bar."""
    entry = {"steps": Stat(math.nan, math.nan, math.nan, 0), "n_recovered": 0, "n_censored": 0}
    row = {"scenario": "s", "agent": "x", "recovery": [dict(entry, event_step=20)]}
    ax = plot_recovery([row])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x\nn/a"]


def test_agent_colors_do_not_depend_on_the_other_agents() -> None:
    """An agent keeps its colour whether a figure shows all agents or a subset (recovery plot)."""
    every = agent_colors(["random", "popularity", "linucb-discounted", "id-ppo", "attention-ppo"])
    assert agent_colors(["attention-ppo"])["attention-ppo"] == every["attention-ppo"]
    assert agent_colors(["id-ppo", "linucb"])["id-ppo"] == every["id-ppo"]
    assert len(set(every.values())) == len(every)
    frozen = agent_colors(["attention-ppo", "attention-ppo-frozen"])
    assert frozen["attention-ppo-frozen"] not in (frozen["attention-ppo"], every["id-ppo"])
    from driftrec.agents.registry import AGENT_NAMES

    registered = agent_colors(list(AGENT_NAMES))
    assert len(set(registered.values())) == len(AGENT_NAMES)  # no two registered agents alike


def test_place_labels_never_overlap() -> None:
    """Twelve labels on points that nearly coincide end up with disjoint boxes, each at
    its own point (moved ones with a leader line)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    from driftrec.experiments.plots import place_labels

    fig = Figure(figsize=(5, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = [0.0, 0.001, 0.002, 0.5, 0.5, 0.5, 0.9, 0.9, 0.3, 0.31, 0.32, 0.33]
    ys = [0.50, 0.50, 0.51, 0.2, 0.21, 0.22, 0.8, 0.8, 0.5, 0.5, 0.5, 0.5]
    ax.plot(xs, ys, "o")
    ax.set_xlim(-0.1, 1.1)
    ax.set_ylim(0, 1)
    texts = place_labels(ax, xs, ys, [f"label {i}" for i in range(12)])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    # the text itself, without the leader line (Annotation's extent includes the arrow)
    boxes = [Text.get_window_extent(t, renderer) for t in texts]
    for i in range(12):
        assert texts[i].xy == (xs[i], ys[i])
        for j in range(i + 1, 12):
            assert not boxes[i].overlaps(boxes[j]), (i, j)


def test_plot_recovery_draws_the_noise_floor_and_leaves_out_the_oracle() -> None:
    """With population-best in the rows, its own recovery is a labelled grey band."""
    runs = [make_run(a, s, level=lv) for a, lv in [("linucb", 0.8), ("population-best", 0.9),
            ("oracle", 1.0)] for s in range(3)]  # fmt: skip
    ax = plot_recovery(summary_table(runs, pre_windows=5))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["linucb", "population-best"]
    (note,) = [t.get_text() for t in ax.texts if t.get_text().startswith("noise floor")]
    # the hand-made dip: windows of 50 steps at 0.4, 0.6 and 0.85 of the level; the target
    # (0.9 x its mean level after the event) is above the first two only: 2 windows below
    assert note == "noise floor: population-best recovers within 100 steps on every seed"
    assert len(ax.patches) == 1  # the band


def test_plot_recovery_counts_undefined_seeds_beside_censored_ones() -> None:
    """One seed recovered, one censored, one below the minimum level: all three counted."""
    data = {
        "a": {
            500: [
                Recovery(150.0, False, 0.8, 0.5, 500.0),
                Recovery(math.nan, True, 0.8, 0.4, 500.0),
                Recovery(math.nan, False, 0.3, math.nan, math.nan, below_level=True),
            ]
        }
    }
    ax = plot_recovery(data)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a\n1/3 censored, 1/3 n/a"]
