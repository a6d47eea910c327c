"""Where the language model learning from feedback pays online (``bench/bench_lm_online.py``).

**The world** is :data:`SCENARIO` (``driftrec/JargonNews-v1``): items keep arriving and go
stale, a clicked item is consumed, and the texts use another topic's words while the true topic
is told only by made-up jargon that every item of the topic shares (see
:mod:`driftrec.envs.scenarios`). The frozen MiniLM embeds the misleading words; what users like
is in the jargon, which only feedback can teach.

**The protocol** (paired by seed: the same users, world and catalog): every seed runs each agent
twice, with the frozen encoder (experiment ``<name>-frozen``) and with in-run fine-tuning
(``<name>-finetuned``, ``finetune_every``; :mod:`driftrec.agents.online_lm`). The gain of an
agent is its fine-tuned minus its frozen online normalised reward over the *second half* of
the run (after the early refreshes had data to learn from), per seed; the table gives its mean
and the 95% Student-t interval over the seeds. Retention (held-out general texts, base vs
adapted) and the refresh costs come from each fine-tuned run's ``done.json``.

**The references** that say how weak the frozen encoder is there:

* :func:`next_click_auc`: how well ``history-similarity``'s score ranks the item a user clicks
  next, with the frozen MiniLM, with the catalog's true topic vectors (what perfect text would
  give) and with a run's adapter, on a random behaviour agent's log of each seed;
* the frozen grid can also run ``random`` and ``id-ppo`` (item ids, no text): an id embedding
  learns nothing about an item before it is shown, and here items are new all the time;
* :func:`run_topics_bound`: each agent frozen, with the catalog's true topic vectors as its item
  table instead of the encoder's embeddings (PRIVILEGED: what perfect text would give). Its
  paired difference to the frozen run bounds what any fine-tuning of the text model can earn
  for that agent, and says whether the text is its bottleneck at all.

Nothing is tuned on the seeds of the claim; :data:`PILOT_SEEDS` were used to choose settings.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from driftrec.experiments.analysis import Run, Stat, load_runs, mean_ci
from driftrec.experiments.config import ExperimentConfig

__all__ = [
    "SCENARIO",
    "PILOT_SEEDS",
    "StudySetting",
    "grid_configs",
    "run_study",
    "load_study",
    "half_mean",
    "paired_gain",
    "GainRow",
    "gain_rows",
    "format_gains",
    "plot_online",
    "next_click_auc",
    "topics_bound_config",
    "run_topics_bound",
    "load_topics_bound",
]

SCENARIO = "JargonNews"
PILOT_SEEDS = (0,)
"""The seed the world and the fine-tuning settings were chosen on (not used for the claim)."""


@dataclass(frozen=True)
class StudySetting:
    """One paired study: the same grid with the frozen and the fine-tuned encoder.

    Attributes:
        name: experiments ``<name>-frozen`` and ``<name>-finetuned`` under ``out_dir``.
        agents: the agents compared (text agents whose table can be refreshed).
        frozen_only: agents run in the frozen grid only (references: ``random``, ``id-ppo``).
        seeds: the paired seeds.
        steps: global steps per run.
        num_envs: users per run.
        log_every: global steps per metrics window.
        every: global steps between refreshes (``finetune_every``).
        finetune: the fine-tuning settings (``ExperimentConfig.finetune``).
        scenario: the world.
        out_dir: the results root.
        workers: parallel run processes.
    """

    name: str = "lm-online"
    agents: tuple[str, ...] = ("history-similarity", "attention-ppo")
    frozen_only: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    steps: int = 1024
    num_envs: int = 32
    log_every: int = 32
    every: int = 256
    finetune: Mapping[str, Any] = field(default_factory=lambda: {"window": 256})
    scenario: str = SCENARIO
    out_dir: str = "runs"
    workers: int = 1

    @property
    def half(self) -> int:
        """The first step of the second half."""
        return self.steps // 2


def grid_configs(setting: StudySetting) -> tuple[ExperimentConfig, ExperimentConfig]:
    """The frozen and the fine-tuned :class:`ExperimentConfig` of ``setting``."""
    common = {
        "scenarios": (setting.scenario,),
        "seeds": tuple(setting.seeds),
        "steps": setting.steps,
        "num_envs": setting.num_envs,
        "log_every": setting.log_every,
        "out_dir": setting.out_dir,
        "workers": setting.workers,
        "reference_agent": None,
    }
    frozen = ExperimentConfig(
        name=f"{setting.name}-frozen",
        agents=tuple(dict.fromkeys((*setting.agents, *setting.frozen_only))),
        **common,
    )
    tuned = ExperimentConfig(
        name=f"{setting.name}-finetuned",
        agents=tuple(setting.agents),
        finetune_every=setting.every,
        finetune=dict(setting.finetune),
        **common,
    )
    return frozen, tuned


def run_study(
    setting: StudySetting, *, progress: bool = True, restart: bool = False
) -> tuple[list[Run], list[Run]]:
    """Run (or resume) both grids; their runs, frozen first."""
    from driftrec.experiments.runner import run_grid

    for cfg in grid_configs(setting):
        run_grid(cfg, progress=progress, restart=restart)
    return load_study(setting)


def _topics_path(setting: StudySetting, seed: int) -> Path:
    return Path(setting.out_dir) / f"{setting.name}-topics-seed{seed}.topics.npy"


def topics_bound_config(setting: StudySetting, seed: int) -> ExperimentConfig:
    """The frozen grid of ``seed`` alone, every agent's item table the seed's true topic
    vectors (``policy_kwargs.embeddings_file``; a catalog is drawn per seed, hence one
    experiment ``<name>-topics-seed<seed>`` per seed, the table written beside it)."""
    frozen, _ = grid_configs(setting)
    table = str(_topics_path(setting, seed))
    kwargs = {a: {"policy_kwargs": {"embeddings_file": table}} for a in setting.agents}
    return dataclasses.replace(
        frozen,
        name=f"{setting.name}-topics-seed{seed}",
        seeds=(seed,),
        agents=tuple(setting.agents),
        agent_kwargs=kwargs,
    )


def _write_topics(setting: StudySetting, seed: int) -> Path:
    """Write the true topic vectors of the catalog that ``seed``'s runs use; return the path."""
    from driftrec.atomic import atomic_open
    from driftrec.envs.core import cached_catalog

    env = topics_bound_config(setting, seed).run_env_config(setting.scenario, seed)
    table = np.asarray(cached_catalog(env).topics, dtype=np.float32)  # (N, topics)
    path = _topics_path(setting, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        np.save(f, table, allow_pickle=False)
    return path


def run_topics_bound(
    setting: StudySetting, *, progress: bool = True, restart: bool = False
) -> tuple[list[Run], list[Run]]:
    """Run (or resume) the frozen grid and, per seed, the same agents with the true topic
    vectors as their item table (:func:`topics_bound_config`); their runs, frozen first."""
    from driftrec.experiments.runner import run_grid

    frozen, _ = grid_configs(setting)
    frozen = dataclasses.replace(frozen, agents=tuple(setting.agents))
    run_grid(frozen, progress=progress, restart=restart)
    for seed in setting.seeds:
        if restart or not _topics_path(setting, seed).exists():
            _write_topics(setting, seed)
        run_grid(topics_bound_config(setting, seed), progress=progress, restart=restart)
    return load_topics_bound(setting)


def load_topics_bound(setting: StudySetting) -> tuple[list[Run], list[Run]]:
    """The finished frozen runs and true-topic runs of :func:`run_topics_bound`."""
    frozen, _ = grid_configs(setting)
    topics = [
        r
        for seed in setting.seeds
        for r in load_runs(topics_bound_config(setting, seed).experiment_dir)
    ]
    return load_runs(frozen.experiment_dir, agents=setting.agents), topics


def load_study(setting: StudySetting) -> tuple[list[Run], list[Run]]:
    """The finished runs of both grids (frozen, fine-tuned)."""
    frozen, tuned = grid_configs(setting)
    return load_runs(frozen.experiment_dir), load_runs(tuned.experiment_dir)


def half_mean(run: Run, start: int, column: str = "normalized_reward") -> float:
    """Mean of ``column`` over the windows that end after ``start``."""
    steps = run.steps
    values = run.metric(column)
    keep = (steps > start) & np.isfinite(values)
    return float(values[keep].mean()) if keep.any() else math.nan


def paired_gain(
    frozen: Sequence[Run], tuned: Sequence[Run], agent: str, start: int
) -> tuple[dict[int, tuple[float, float]], Stat]:
    """Per seed ``(frozen, fine-tuned)`` second-half means of ``agent``, and the mean and 95%
    Student-t interval of the paired differences (seeds present in both)."""
    a = {r.seed: r for r in frozen if r.agent == agent}
    b = {r.seed: r for r in tuned if r.agent == agent}
    pairs = {s: (half_mean(a[s], start), half_mean(b[s], start)) for s in sorted(a) if s in b}
    return pairs, mean_ci(np.array([t - f for f, t in pairs.values()]))


@dataclass
class GainRow:
    """One agent's paired result and what its fine-tuning cost and kept."""

    agent: str
    pairs: dict[int, tuple[float, float]]
    gain: Stat
    retention_cosine: list[float]
    topic_acc_change: list[float]
    seconds_per_refresh: list[float]
    share_of_run: list[float]

    @property
    def frozen_mean(self) -> float:
        return float(np.mean([f for f, _ in self.pairs.values()]))

    @property
    def tuned_mean(self) -> float:
        return float(np.mean([t for _, t in self.pairs.values()]))


def _finetune_done(run: Run) -> dict[str, Any]:
    return dict(run.done.get("finetune") or {})


def gain_rows(
    frozen: Sequence[Run], tuned: Sequence[Run], agents: Sequence[str], start: int
) -> list[GainRow]:
    """:class:`GainRow` of every agent."""
    rows = []
    for agent in agents:
        pairs, stat = paired_gain(frozen, tuned, agent, start)
        mine = [r for r in tuned if r.agent == agent and r.seed in pairs]
        facts = [_finetune_done(r) for r in mine]
        ret = [f.get("retention", {}) for f in facts]
        rows.append(
            GainRow(
                agent=agent,
                pairs=pairs,
                gain=stat,
                retention_cosine=[x["cosine"] for x in ret if "cosine" in x],
                topic_acc_change=[
                    x["topic_acc"] - x["base_topic_acc"] for x in ret if "topic_acc" in x
                ],
                seconds_per_refresh=[
                    f["seconds_per_refresh"] for f in facts if f.get("seconds_per_refresh")
                ],
                share_of_run=[f["share_of_run"] for f in facts if f.get("share_of_run")],
            )
        )
    return rows


def _ci(stat: Stat, digits: int = 3) -> str:
    return f"{stat.mean:+.{digits}f} [{stat.lo:+.{digits}f}, {stat.hi:+.{digits}f}]"


def format_gains(rows: Sequence[GainRow], *, start: int) -> str:
    """A markdown table of :func:`gain_rows`."""
    lines = [
        f"| agent | frozen (steps > {start}) | fine-tuned | gain [95% CI] | per seed | "
        "retention: mean cos (min) | topic acc change (worst) | s / refresh | share of run |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        seeds = ", ".join(f"{s}: {t - f:+.3f}" for s, (f, t) in r.pairs.items())
        cos = r.retention_cosine
        acc = r.topic_acc_change
        lines.append(
            f"| {r.agent} | {r.frozen_mean:.3f} | {r.tuned_mean:.3f} | {_ci(r.gain)} | {seeds} | "
            + (f"{np.mean(cos):.3f} ({min(cos):.3f})" if cos else "n/a")
            + " | "
            + (f"{np.mean(acc) * 100:+.1f} pt ({min(acc) * 100:+.1f})" if acc else "n/a")
            + " | "
            + (f"{np.mean(r.seconds_per_refresh):.0f}" if r.seconds_per_refresh else "n/a")
            + " | "
            + (f"{np.mean(r.share_of_run):.0%}" if r.share_of_run else "n/a")
            + " |"
        )
    return "\n".join(lines)


_COLORS = {"history-similarity": "#1a9850", "attention-ppo": "#2c7fb8", "id-ppo": "#888888"}


def plot_online(
    frozen: Sequence[Run],
    tuned: Sequence[Run],
    agents: Sequence[str],
    *,
    start: int | None = None,
    smooth: int = 3,
) -> Figure:
    """Online normalised reward over global steps: each agent frozen (dashed) and fine-tuned
    in the run (solid), mean over seeds with a 95% band, the refreshes marked (dotted lines)
    and the second half (the claim's window) shaded."""
    from driftrec.experiments.analysis import aggregate

    fig = Figure(figsize=(9.0, 4.8), layout="constrained")
    ax = fig.subplots()
    refresh: set[int] = set()
    for agent in agents:
        color = _COLORS.get(agent)
        for runs, style, what in ((frozen, "--", "frozen MiniLM"), (tuned, "-", "fine-tuned")):
            mine = [r for r in runs if r.agent == agent]
            if not mine:
                continue
            curve = aggregate(mine, "normalized_reward", smooth=smooth)[agent]
            line = ax.plot(curve.steps, curve.mean, style, color=color, label=f"{agent}, {what}")
            ax.fill_between(
                curve.steps, curve.lo, curve.hi, color=line[0].get_color(), alpha=0.12, lw=0
            )
            for r in mine:
                refresh |= set(_finetune_done(r).get("refresh_steps", []))
    for i, step in enumerate(sorted(refresh)):
        ax.axvline(step, color="#555555", linestyle=":", linewidth=1.0,
                   label="refresh (fine-tune, re-encode, swap)" if i == 0 else None)  # fmt: skip
    if start is not None:
        ax.axvspan(start, ax.get_xlim()[1], color="#f0e442", alpha=0.08, lw=0)
        ax.text(start, 0.02, " second half (the claim)", transform=ax.get_xaxis_transform(),
                fontsize=8, color="#555555")  # fmt: skip
    ax.set_xlabel("global step")
    ax.set_ylabel("reward / one-step oracle (online, 95% band over seeds)")
    n = len({r.seed for r in frozen})
    ax.set_title(
        f"{SCENARIO}: the text encoder learning from the run's own clicks ({n} seeds)", fontsize=10
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def next_click_auc(
    scenario: str,
    seeds: Sequence[int],
    tables: Mapping[str, str | Mapping[int, str | Path]],
    *,
    steps: int = 256,
    num_envs: int = 32,
) -> dict[str, list[float]]:
    """``history-similarity``'s next-click AUC per seed, for each named item table.

    The log of each seed is a ``random`` agent's in that seed's world (``world_seed =
    catalog_seed = seed``; the users of the seed's runs). ``tables`` maps a label to
    ``"frozen"`` (the base encoder), ``"topics"`` (the catalog's true topic vectors: what
    perfect text would give) or ``{seed: adapter directory}`` (an adapter per seed, e.g. the
    one a fine-tuned run of that seed kept).
    """
    from driftrec.agents.lora import collect_click_log
    from driftrec.agents.text_encoder import TextEncoderConfig, encode_catalog
    from driftrec.envs.core import cached_catalog
    from driftrec.envs.scenarios import get_scenario
    from driftrec.experiments.studies.lora_study import next_click_ranking

    out: dict[str, list[float]] = {k: [] for k in tables}
    base = get_scenario(scenario).config
    for seed in seeds:
        env = base.with_overrides(world_seed=seed, catalog_seed=seed)
        log = collect_click_log(env, agent="random", num_envs=num_envs, steps=steps, seed=seed)
        texts = cached_catalog(env).texts()
        for label, what in tables.items():
            if what == "topics":
                table = np.asarray(cached_catalog(env).topics, dtype=np.float32)
            else:
                adapter = None if what == "frozen" else str(what[seed])  # type: ignore[index]
                cfg = TextEncoderConfig(adapter=adapter, show_progress=False)
                table = encode_catalog(texts, cfg)
            out[label].append(next_click_ranking(env, table, [log])["auc"][0])
    return out


def run_facts(run: Run) -> dict[str, Any]:
    """The fine-tuning facts of one run (``done.json``), JSON-ready."""
    return json.loads(json.dumps(_finetune_done(run)))
