"""Cold start: where the language-model item tower matters (``bench/bench_cold_start.py``).

The setting is the ``NewItems`` scenario with a growing catalog: a fraction of the items is
released uniformly over the whole run (masked until then), and the learning agents are also run
*frozen* from ``frozen_at`` on (no updates after it), so every item released later can reach a
frozen policy only through what it can compute from the item without training: for the LM item
tower its text embedding (content match and the projected text), for the id-only ablation
nothing (an unseen id has an untrained embedding and a neutral prior).

Per run and phase (``train``: windows ending at or before ``frozen_at``; ``after``: the rest) the
summary holds the normalised reward (expected reward / the one-step oracle's) and the share of
recommendations that go to items released within the last ``cold_start_window`` steps, next to
the oracle's share in the same run (the recorder's ``cold_start_share`` and
``oracle_cold_start_share``). ``relative`` is the pooled ratio of the two (1 = new items are
recommended as often as the oracle would; random sits near 1 by construction, so the share
is read together with the reward).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from driftrec.envs.config import check_float, check_int
from driftrec.experiments.analysis import Run, aggregate, load_run, mean_ci
from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.plots import _end_labels, _plot_curves, seeds_note

__all__ = [
    "COLD_START_AGENTS",
    "ColdStartSetting",
    "cold_start_config",
    "load_cold_start_runs",
    "phase_summary",
    "format_summary",
    "freeze_losses",
    "plot_cold_start",
]

#: The agents compared: the LM tower and its id-only ablation, learning throughout and frozen,
#: and the references.
COLD_START_AGENTS: tuple[str, ...] = (
    "attention-ppo",
    "id-ppo",
    "attention-ppo-frozen",
    "id-ppo-frozen",
    "history-similarity",
    "linucb-discounted",
    "population-best",
    "random",
)


@dataclass(frozen=True)
class ColdStartSetting:
    """Sizes of the cold-start experiment.

    Attributes:
        steps: global steps per run (each steps every user slot once).
        num_envs: user slots per run.
        new_item_fraction: share of the catalog released during the run.
        frozen_at: the ``-frozen`` agents stop learning here.
        cold_start_window: an item counts as new for this many steps after its release.
        log_every: global steps per metrics window.
    """

    steps: int = 1024
    num_envs: int = 32
    new_item_fraction: float = 0.5
    frozen_at: int = 512
    cold_start_window: int = 192
    log_every: int = 32

    def __post_init__(self) -> None:
        for name in ("steps", "num_envs", "cold_start_window", "log_every"):
            check_int(name, getattr(self, name), 1)
        check_int("frozen_at", self.frozen_at, 1, self.steps - 1)
        check_float("new_item_fraction", self.new_item_fraction, 0.0, 1.0, low_open=True)


def cold_start_config(
    setting: ColdStartSetting,
    *,
    agents: Sequence[str] = COLD_START_AGENTS,
    seeds: Sequence[int] = (0, 1, 2),
    out_dir: str | Path = "runs",
    name: str = "cold_start",
    workers: int = 1,
) -> ExperimentConfig:
    """The experiment grid of ``setting`` (``NewItems``, releases spread over the whole run)."""
    return ExperimentConfig(
        name=name,
        scenarios=("NewItems",),
        agents=tuple(agents),
        seeds=tuple(seeds),
        num_envs=setting.num_envs,
        steps=setting.steps,
        log_every=setting.log_every,
        frozen_at=setting.frozen_at,
        cold_start_window=setting.cold_start_window,
        env_overrides={
            "catalog.new_item_fraction": setting.new_item_fraction,
            "catalog.release_horizon": setting.steps,
        },
        out_dir=str(out_dir),
        workers=workers,
        checkpoint=False,
    )


def load_cold_start_runs(cfg: ExperimentConfig) -> dict[str, list[Run]]:
    """The finished runs of ``cfg`` by agent (seed order)."""
    out: dict[str, list[Run]] = {}
    for scenario, agent, seed in cfg.runs():
        out.setdefault(agent, []).append(load_run(cfg.run_dir(scenario, agent, seed)))
    return out


def _phase_mask(run: Run, frozen_at: int, phase: str) -> np.ndarray:
    steps = np.asarray(run.metrics["step"], dtype=float)
    if phase == "train":
        return steps <= frozen_at
    if phase == "after":
        return steps > frozen_at
    raise ValueError(f"'phase' must be 'train' or 'after' (got {phase!r})")


def _mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def phase_summary(
    runs: Mapping[str, Sequence[Run]], frozen_at: int
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per agent and phase: per-seed normalised reward, share, oracle's share and the pooled
    relative share (sum of shares / sum of the oracle's shares over the seeds)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for agent, group in runs.items():
        out[agent] = {}
        for phase in ("train", "after"):
            reward, share, oracle = [], [], []
            for run in group:
                mask = _phase_mask(run, frozen_at, phase)
                reward.append(_mean(np.asarray(run.metrics["normalized_reward"])[mask]))
                share.append(_mean(np.asarray(run.metrics["cold_start_share"])[mask]))
                oracle.append(_mean(np.asarray(run.metrics["oracle_cold_start_share"])[mask]))
            total = float(np.nansum(oracle))
            out[agent][phase] = {
                "reward": reward,
                "share": share,
                "oracle_share": oracle,
                "relative": float(np.nansum(share)) / total if total > 0 else float("nan"),
            }
    return out


def _fmt_seeds(values: Sequence[float], digits: int = 3) -> str:
    stat = mean_ci(np.asarray(values, dtype=float))
    per = " / ".join(f"{v:.{digits}f}" for v in values)
    return f"{stat.mean:.{digits}f} ± {(stat.hi - stat.lo) / 2:.{digits}f} ({per})"


def format_summary(summary: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """A markdown table: agent, normalised reward and relative new-item share, per phase."""
    header = (
        "| agent | normalised reward, training phase | normalised reward, after frozen_at | "
        "new-item share after | oracle's share after | share / oracle's after |\n"
        "|---|---:|---:|---:|---:|---:|"
    )
    rows = [header]
    for agent, phases in summary.items():
        tr, af = phases["train"], phases["after"]
        rows.append(
            f"| {agent} | {_fmt_seeds(tr['reward'])} | {_fmt_seeds(af['reward'])} | "
            f"{np.mean(af['share']):.3f} | {np.mean(af['oracle_share']):.3f} | "
            f"{af['relative']:.2f} |"
        )
    return "\n".join(rows)


def plot_cold_start(
    runs: Mapping[str, Sequence[Run]],
    release_steps: np.ndarray,
    frozen_at: int,
    *,
    smooth: int = 4,
) -> Figure:
    """Two panels over global steps, mean and 95% interval over seeds: the normalised reward,
    and the share of recommendations going to newly released items (the oracle's share of the
    same runs dotted); a rug marks every release, a dashed line ``frozen_at``.

    The LM tower and its id-only ablation (learning and frozen) are highlighted with bands
    (from 3 seeds, cut to the metric's range); the references are grey lines named at their
    ends, so four overlapping bands stay readable.
    """
    fig = Figure(figsize=(10.5, 7.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    flat = [r for group in runs.values() for r in group]
    rewards = aggregate(flat, "normalized_reward", smooth=smooth)
    shares = aggregate(flat, "cold_start_share", smooth=smooth)
    highlight = [a for a in rewards if a.removesuffix("-frozen") in ("attention-ppo", "id-ppo")]
    highlight = highlight or None
    _, _, context = _plot_curves(top, rewards, highlight=highlight, bounds=(0.0, 1.0))
    _end_labels(top, context)
    _, share_hi, context = _plot_curves(bottom, shares, highlight=highlight, bounds=(0.0, 1.0))
    _end_labels(bottom, context)
    seeds_note(top, min((c.n for c in rewards.values()), default=0))
    oracle_runs = [r for r in flat if r.config["agent"] == "attention-ppo"] or flat
    oracle = aggregate(oracle_runs, "oracle_cold_start_share", smooth=smooth)
    for curve in oracle.values():
        bottom.plot(
            curve.steps,
            curve.mean,
            color="black",
            linestyle=":",
            linewidth=1.4,
            label="oracle (in attention-ppo's runs)",
            zorder=4,
        )
    released = np.sort(release_steps[release_steps > 0])
    for ax in (top, bottom):
        ax.axvline(frozen_at, color="#555555", linestyle="--", linewidth=1.0, label="frozen_at")
        ax.plot(
            released,
            np.zeros_like(released, dtype=float),
            "|",
            color="#555555",
            markersize=6,
            alpha=0.5,
            transform=ax.get_xaxis_transform(),
            label=f"item releases ({released.size})",
        )
        ax.grid(alpha=0.3)
    bottom.set_ylim(0.0, 1.3 * share_hi)  # means in view; wide 3-seed intervals are clipped
    top.set_ylabel("normalised reward (expected / oracle's)")
    bottom.set_ylabel("share of recommendations to new items")
    bottom.set_xlabel("global step")
    top.set_title("Cold start: LM item tower vs id-only ablation (NewItems, growing catalog)")
    top.legend(fontsize=7, ncol=2, loc="lower right")
    handles, labels = bottom.get_legend_handles_labels()
    keep = [i for i, lab in enumerate(labels) if "oracle" in lab or "release" in lab]
    bottom.legend([handles[i] for i in keep], [labels[i] for i in keep], fontsize=7)
    return fig


def freeze_losses(
    summary: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> dict[str, list[float]]:
    """Per learning agent with a ``-frozen`` twin in ``summary``: per seed, its normalised
    reward after ``frozen_at`` minus the frozen twin's (what the updates after ``frozen_at``
    were worth; in a growing catalog, chiefly learning the items released since)."""
    out: dict[str, list[float]] = {}
    for agent, phases in summary.items():
        twin = summary.get(f"{agent}-frozen")
        if twin is None:
            continue
        out[agent] = [
            a - b for a, b in zip(phases["after"]["reward"], twin["after"]["reward"], strict=True)
        ]
    return out
