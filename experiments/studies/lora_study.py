"""Where adapting the text encoder pays, and what it costs the model (``bench/bench_lora.py``).

**The setting (misleading wording).** :func:`decoy_catalog` keeps the latent topics and quality
of a generated catalog but gives every item the title of an item of *another* generated catalog
(a different seed, so its topic words are unrelated to what the item is about) and a short
phrase that tells the true topic by a made-up category code ("Filed under: kazoquo-41."). The
decoy words are real topic words, the code means nothing to the base model, so the frozen
MiniLM embeds items mostly by their misleading wording. Users like topics (the click model's
interest weight is raised to 4 and its quality weight set to 0: no text can tell quality).

**The protocol.** The adapter is trained on a click log of a behaviour agent (default
``random``) on *training* seeds (other users and another world than the evaluation; the same
catalog: adapting to one's own catalog is the use case). The consumer is ``history-similarity``
(scores items by the cosine of their embeddings to the user's recency-weighted click-minus-skip
profile), on separate *evaluation* seeds with the frozen and the adapted embeddings:

* **next-click AUC** (:func:`ranking_metrics`): on the behaviour agent's logs of the evaluation
  seeds, the rank of each clicked item among the items not in the user's history by the
  consumer's own score (0.5 is chance). This is the embedding quality the consumer sees.
* **online normalised reward** (:func:`consumer_rewards`): the consumer acting on the
  evaluation seeds (expected reward / the one-step oracle's). It hardly depends on the
  embedding at all here: once a user clicked an item, recommending that same item again is
  about as good as anything (nothing penalises repeats), and random embeddings score within
  a few hundredths of true topic vectors. It is reported, not claimed.

Nothing is tuned on the evaluation seeds.

**Retention** (:func:`retention_metrics`, no download): on a held-out generated catalog (another
seed, more topics, mixed-topic items; none of its texts is in the training catalog):
embedding drift (mean squared error and mean cosine between the base and the adapted embedding
of each text), topic separation (leave-one-out nearest-centroid accuracy of the items' main
topic), and similarity ranking (Spearman correlation between the cosine of random text pairs
and their relatedness known by construction: the overlap ``<w_a, w_b>`` of their topic
mixtures).

:func:`run_sweep` trains one encoder per setting (LoRA ranks x learning rates, full fine-tuning
as the contrast), and :func:`plot_tradeoff` draws recommendation gain against retention loss.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from numpy.typing import NDArray

from driftrec.agents.lora import (
    ClickLog,
    FinetuneSettings,
    collect_click_log,
    default_anchor_texts,
    finetune_encoder,
    heldout_texts,
    retention_metrics,
)
from driftrec.envs.catalog import _VOCABULARY, Catalog, generate_catalog, save_catalog
from driftrec.envs.config import CatalogConfig, EnvConfig, check_int
from driftrec.experiments.analysis import mean_ci

__all__ = [
    "LoraStudySetting",
    "decoy_catalog",
    "study_env_config",
    "consumer_rewards",
    "retention_texts",
    "retention_metrics",
    "next_click_ranking",
    "SweepRow",
    "run_sweep",
    "format_sweep",
    "plot_tradeoff",
]

_TELL_TEMPLATES = ("Filed under: {w}.", "Shelved with {w}.", "Listed in {w}.")
_SYLLABLES = ("ka", "zo", "vex", "tri", "mu", "quo", "ran", "fel", "dor", "xi", "pla", "sug")


def decoy_catalog(num_items: int, num_topics: int, seed: int, tell: str = "code") -> Catalog:
    """A catalog whose texts mislead: a decoy title plus one short phrase that tells the topic.

    Topics (single-topic items), quality and ids come from ``generate_catalog`` with ``seed``;
    the title of item ``i`` is the title of item ``i`` of the catalog generated with
    ``seed + 7919`` (its topic is unrelated to item ``i``'s), and the description is a phrase
    such as ``"Filed under: kazoquo-41."`` naming the item's true topic by a made-up code, one
    per topic (``tell="code"``: a shelf or category code the base model cannot relate to
    anything), or by a random noun of the topic's vocabulary (``tell="word"``). All draws come
    from ``np.random.default_rng(seed)``.

    Raises:
        ValueError: ``tell`` is not ``"code"`` or ``"word"``.
    """
    if tell not in ("code", "word"):
        raise ValueError(f"'tell' must be 'code' or 'word' (got {tell!r})")
    truth = generate_catalog(
        CatalogConfig(num_items=num_items, num_topics=num_topics, topic_purity=1.0, seed=seed)
    )
    decoy = generate_catalog(
        CatalogConfig(num_items=num_items, num_topics=num_topics, seed=seed + 7919)
    )
    rng = np.random.default_rng(seed)
    main = truth.primary_topic()
    codes = [
        "".join(rng.choice(_SYLLABLES, size=3)) + f"-{int(rng.integers(10, 100))}"
        for _ in range(num_topics)
    ]
    descriptions = []
    for i in range(num_items):
        if tell == "code":
            word = codes[int(main[i])]
        else:
            nouns = _VOCABULARY[int(main[i])][1]
            word = nouns[int(rng.integers(len(nouns)))]
        phrase = _TELL_TEMPLATES[int(rng.integers(len(_TELL_TEMPLATES)))].format(w=word)
        descriptions.append(phrase)
    return dataclasses.replace(truth, titles=decoy.titles, descriptions=tuple(descriptions))


@dataclass(frozen=True)
class LoraStudySetting:
    """Sizes of the study (small: MiniLM trains on one CPU thread).

    Attributes:
        num_items: catalog size.
        num_topics: latent topics.
        catalog_seed: seed of the decoy catalog (the same for training and evaluation).
        scenario: the scenario whose dynamics are used (its catalog is replaced).
        train_seeds: seeds of the logged interactions the encoder trains on.
        eval_seeds: seeds of the evaluation (other users and worlds than training).
        log_steps: global steps logged per training seed.
        eval_steps: global steps per evaluation run.
        num_envs: user slots per run.
        behaviour: the agent whose interactions are logged.
        max_length: tokens per text.
        holdout_items: size of the held-out retention catalog.
        holdout_pairs: random text pairs for the similarity-ranking check.
        interest_weight: the click model's weight of topic match (the scenario's is 1.5).
        quality_weight: the click model's weight of quality (0: no text can tell it, so what
            users like is only the topic the wording misleads about).
    """

    num_items: int = 240
    num_topics: int = 8
    catalog_seed: int = 11
    scenario: str = "Stationary"
    train_seeds: tuple[int, ...] = (100, 101)
    eval_seeds: tuple[int, ...] = (0, 1, 2)
    log_steps: int = 150
    eval_steps: int = 200
    num_envs: int = 32
    behaviour: str = "random"
    max_length: int = 48
    holdout_items: int = 240
    holdout_pairs: int = 600
    interest_weight: float = 4.0
    quality_weight: float = 0.0

    def __post_init__(self) -> None:
        for name in ("num_items", "log_steps", "eval_steps", "num_envs", "max_length"):
            check_int(name, getattr(self, name), 1)
        check_int("num_topics", self.num_topics, 2, 24)
        check_int("holdout_items", self.holdout_items, 24)
        check_int("holdout_pairs", self.holdout_pairs, 10)
        if set(self.train_seeds) & set(self.eval_seeds):
            raise ValueError(
                f"'train_seeds' {self.train_seeds} and 'eval_seeds' {self.eval_seeds} must not "
                "overlap"
            )


def study_env_config(setting: LoraStudySetting, catalog_path: str | Path, seed: int) -> EnvConfig:
    """The scenario's world with the decoy catalog file; world drawn from ``seed``."""
    from driftrec.envs.scenarios import get_scenario

    cfg = get_scenario(setting.scenario).config
    return cfg.with_overrides(
        **{
            "catalog_path": str(catalog_path),
            "world_seed": seed,
            "catalog_seed": seed,
            "choice.interest_weight": setting.interest_weight,
            "choice.quality_weight": setting.quality_weight,
        }
    )


def write_decoy_catalog(setting: LoraStudySetting, directory: str | Path) -> Path:
    """Save :func:`decoy_catalog` of ``setting`` as JSONL in ``directory``; return the path."""
    path = Path(directory) / f"decoy-{setting.num_items}-{setting.catalog_seed}.jsonl"
    save_catalog(decoy_catalog(setting.num_items, setting.num_topics, setting.catalog_seed), path)
    return path


def _logs(
    setting: LoraStudySetting, catalog_path: str | Path, seeds: Sequence[int]
) -> list[ClickLog]:
    return [
        collect_click_log(
            study_env_config(setting, catalog_path, seed),
            agent=setting.behaviour,
            num_envs=setting.num_envs,
            steps=setting.log_steps,
            seed=seed,
        )
        for seed in seeds
    ]


def training_log(setting: LoraStudySetting, catalog_path: str | Path) -> ClickLog:
    """The behaviour agent's impressions on every training seed, concatenated."""
    return ClickLog.concatenate(_logs(setting, catalog_path, setting.train_seeds))


def consumer_rewards(
    setting: LoraStudySetting,
    catalog_path: str | Path,
    item_features: NDArray[np.float32] | None,
    *,
    agent: str = "history-similarity",
) -> list[float]:
    """Normalised reward of ``agent`` (learning online) on every evaluation seed."""
    from driftrec.agents.base import evaluate
    from driftrec.agents.registry import build_agent

    out = []
    for seed in setting.eval_seeds:
        kwargs = {} if item_features is None else {"item_features": item_features}
        built = build_agent(
            agent,
            study_env_config(setting, catalog_path, seed),
            num_envs=setting.num_envs,
            seed=seed,
            agent_kwargs=kwargs,
        )
        result = evaluate(built.agent, built.env, setting.eval_steps, learn=True)
        out.append(float(result.normalized_reward))
    return out


def eval_logs(setting: LoraStudySetting, catalog_path: str | Path) -> list[ClickLog]:
    """The behaviour agent's impressions on each evaluation seed (held-out users and worlds)."""
    return _logs(setting, catalog_path, setting.eval_seeds)


def ranking_metrics(
    setting: LoraStudySetting,
    catalog_path: str | Path,
    item_features: NDArray[np.float32],
    logs: Sequence[ClickLog],
) -> dict[str, list[float]]:
    """How well ``history-similarity``'s score ranks the next clicked item, per evaluation log
    (:func:`next_click_ranking` on the study's world)."""
    env_config = study_env_config(setting, catalog_path, setting.eval_seeds[0])
    return next_click_ranking(env_config, item_features, logs)


def next_click_ranking(
    env_config: EnvConfig, item_features: NDArray[np.float32], logs: Sequence[ClickLog]
) -> dict[str, list[float]]:
    """How well ``history-similarity``'s score ranks the next clicked item, per log.

    For every click by a user who had clicked before, the item the user clicked is ranked
    among all items not in the user's observed history by ``history-similarity``'s own score
    (cosine to the recency-weighted click-minus-skip profile of the history, with
    ``item_features`` as the item embeddings).

    Returns:
        ``auc`` (1 - the clicked item's rank / the number of candidates; 0.5 is chance) and
        ``hit10`` (share ranked in the top 10), one value per log.
    """
    from driftrec.agents.registry import build_agent
    from driftrec.envs.observation import SplitObservation

    agent = build_agent(
        "history-similarity",
        env_config,
        num_envs=1,
        seed=0,
        agent_kwargs={"item_features": item_features},
    ).agent
    out: dict[str, list[float]] = {"auc": [], "hit10": []}
    for log in logs:
        rows = log.click_examples()
        zeros = np.zeros(rows.shape[0], dtype=np.float32)
        obs = SplitObservation(
            log.history_items[rows], log.history_feedback[rows], log.history_mask[rows],
            zeros, zeros,
        )  # fmt: skip
        profile = agent._profile(obs)  # (b, E), the agent's own profile
        scores = profile @ agent.features.T  # (b, N); the norm of the profile does not rank
        seen = np.zeros_like(scores, dtype=bool)
        np.put_along_axis(seen, log.history_items[rows], log.history_mask[rows], axis=1)
        target = scores[np.arange(rows.shape[0]), log.items[rows]]
        seen[np.arange(rows.shape[0]), log.items[rows]] = False  # a re-click counts too
        better = ((scores > target[:, None]) & ~seen).sum(axis=1)
        candidates = (~seen).sum(axis=1)
        out["auc"].append(float(np.mean(1.0 - better / candidates)))
        out["hit10"].append(float(np.mean(better < 10)))
    return out


# --------------------------------------------------------------------------------------------
# retention
# --------------------------------------------------------------------------------------------
def retention_texts(setting: LoraStudySetting) -> tuple[list[str], NDArray[np.float64]]:
    """Held-out texts (a generated catalog, seed 9001, mixed topics) and their topic mixtures
    (:func:`~driftrec.agents.lora.heldout_texts`)."""
    return heldout_texts(setting.holdout_items, min(24, max(12, setting.num_topics)))


def anchor_texts(setting: LoraStudySetting) -> list[str]:
    """Texts for the retention term of training (:func:`default_anchor_texts`, seed 4242): from
    the same generator as the held-out texts of :func:`retention_texts` but none of the same."""
    return default_anchor_texts(setting.holdout_items, seed=4242)


# --------------------------------------------------------------------------------------------
# the sweep
# --------------------------------------------------------------------------------------------
@dataclass
class SweepRow:
    """One trained encoder: its settings, rewards per evaluation seed, retention and costs."""

    label: str
    settings: dict[str, Any]
    rewards: list[float]
    base_rewards: list[float]
    auc: list[float]
    base_auc: list[float]
    retention: dict[str, float]
    train_seconds: float
    catalog_encode_seconds: float
    trainable_params: int
    final_loss: float
    first_loss: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gains(self) -> list[float]:
        """Per evaluation seed: adapted minus frozen normalised reward (paired by seed)."""
        return [a - b for a, b in zip(self.rewards, self.base_rewards, strict=True)]

    @property
    def auc_gains(self) -> list[float]:
        """Per evaluation seed: adapted minus frozen next-click ranking AUC (paired by seed)."""
        return [a - b for a, b in zip(self.auc, self.base_auc, strict=True)]


def _label(s: FinetuneSettings) -> str:
    what = f"full lr={s.learning_rate:g}"
    if s.method == "lora":
        what = f"lora r={s.lora.rank} lr={s.learning_rate:g}"
    return what + (f" retain={s.retain_weight:g}" if s.retain_weight > 0 else "")


def run_sweep(
    setting: LoraStudySetting,
    grid: Sequence[FinetuneSettings],
    work_dir: str | Path,
    *,
    model: str | None = None,
    log: ClickLog | None = None,
    progress: bool = True,
) -> tuple[dict[str, list[float]], list[SweepRow]]:
    """Train one encoder per entry of ``grid`` on the training log; evaluate each.

    Returns:
        The frozen encoder's ``reward`` and ``auc`` per evaluation seed, and one
        :class:`SweepRow` per setting.
    """
    from driftrec.agents.text_encoder import TextEncoder, TextEncoderConfig

    enc_cfg = TextEncoderConfig(model=model, max_length=setting.max_length, show_progress=False)
    path = write_decoy_catalog(setting, work_dir)
    from driftrec.envs.catalog import load_catalog

    texts = load_catalog(path).texts()
    held_texts, held_topics = retention_texts(setting)
    click_log = log if log is not None else training_log(setting, path)
    anchors = anchor_texts(setting)
    base_enc = TextEncoder(enc_cfg)
    t0 = time.perf_counter()
    base_items = base_enc.encode(texts)
    base_encode_s = time.perf_counter() - t0
    base_held = base_enc.encode(held_texts)
    base_rewards = consumer_rewards(setting, path, base_items)
    held_out_logs = eval_logs(setting, path)
    base_auc = ranking_metrics(setting, path, base_items, held_out_logs)["auc"]
    base = {"reward": base_rewards, "auc": base_auc}
    if progress:
        print(
            f"frozen: reward {np.mean(base_rewards):.3f}, AUC {np.mean(base_auc):.3f} "
            f"({len(click_log)} logged impressions, {click_log.clicked.sum()} clicks; "
            f"catalog encoded in {base_encode_s:.1f} s)",
            flush=True,
        )
    rows = []
    for s in grid:
        enc = TextEncoder(enc_cfg)
        result = finetune_encoder(enc, texts, click_log, s, anchor_texts=anchors)
        t1 = time.perf_counter()
        items = enc.encode(texts)
        encode_s = time.perf_counter() - t1
        held = enc.encode(held_texts)
        row = SweepRow(
            label=_label(s),
            settings={**dataclasses.asdict(s), "lora": dataclasses.asdict(s.lora)},
            rewards=consumer_rewards(setting, path, items),
            base_rewards=base_rewards,
            auc=ranking_metrics(setting, path, items, held_out_logs)["auc"],
            base_auc=base_auc,
            retention=retention_metrics(base_held, held, held_topics, pairs=setting.holdout_pairs),
            train_seconds=result.train_seconds,
            catalog_encode_seconds=encode_s,
            trainable_params=result.trainable_params,
            final_loss=float(np.mean(result.losses[-10:])),
            first_loss=float(np.mean(result.losses[:10])),
        )
        rows.append(row)
        if progress:
            print(format_sweep(base, [row], header=False), flush=True)
    return base, rows


def _fmt(values: Sequence[float], digits: int = 3) -> str:
    stat = mean_ci(np.asarray(values, dtype=float))
    return f"{stat.mean:+.{digits}f} [{stat.lo:+.{digits}f}, {stat.hi:+.{digits}f}]"


def format_sweep(
    base: dict[str, list[float]], rows: Sequence[SweepRow], *, header: bool = True
) -> str:
    """A markdown table: next-click AUC and online reward of ``history-similarity``, their gains
    over the frozen encoder (mean [95% interval] over the evaluation seeds), retention metrics,
    trainable parameters and costs."""
    lines = []
    if header:
        lines += [
            "| encoder | next-click AUC | AUC gain [95% CI] | online reward gain [95% CI] | "
            "drift MSE | mean cos | topic acc (base) | pair Spearman (base) | "
            "trainable params | train s | catalog re-encode s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| frozen MiniLM | {np.mean(base['auc']):.3f} | 0 | 0 (reward "
            f"{np.mean(base['reward']):.3f}) | 0 | 1 | | | 0 | 0 | |",
        ]
    for r in rows:
        ret = r.retention
        lines.append(
            f"| {r.label} | {np.mean(r.auc):.3f} | {_fmt(r.auc_gains)} | {_fmt(r.gains)} | "
            f"{ret['mse']:.2e} | {ret['cosine']:.3f} | {ret['topic_acc']:.3f} "
            f"({ret['base_topic_acc']:.3f}) | {ret['spearman']:.3f} ({ret['base_spearman']:.3f})"
            f" | {r.trainable_params:,} | {r.train_seconds:.0f} | "
            f"{r.catalog_encode_seconds:.1f} |"
        )
    return "\n".join(lines)


_TRADEOFF_STYLES = {
    "lora": {"marker": "o", "color": "#2c7fb8", "label": "LoRA"},
    "retain": {"marker": "^", "color": "#1a9850", "label": "LoRA + retention term"},
    "full": {"marker": "s", "color": "#c0392b", "label": "full fine-tuning"},
}


def _tradeoff_kind(row: SweepRow) -> str:
    if row.settings["method"] == "full":
        return "full"
    return "retain" if row.settings.get("retain_weight", 0.0) > 0 else "lora"


def _short_label(row: SweepRow) -> str:
    """``r8 1e-3`` / ``r8 1e-3 ret 10`` / ``full 1e-5``: the settings that differ."""
    s = row.settings
    lr = f"{s['learning_rate']:.0e}".replace("e-0", "e-")
    if s["method"] == "full":
        return f"full {lr}"
    text = f"r{s['lora']['rank']} {lr}"
    if s.get("retain_weight", 0.0) > 0:
        text += f" ret {s['retain_weight']:g}"
    return text


def plot_tradeoff(rows: Sequence[SweepRow]) -> Figure:
    """Two panels: next-click AUC gain (mean and 95% interval over evaluation seeds) against
    the loss of held-out topic accuracy, and against 1 - mean cosine (embedding drift).

    Marker and colour say the method (a legend, not the title); each point is labelled with
    its rank and learning rate, labels pushed apart so none overlaps another.
    """
    from driftrec.experiments.plots import place_labels

    fig = Figure(figsize=(12.0, 5.2), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    points: dict[int, list[tuple[float, float, str, str]]] = {0: [], 1: []}
    for r in rows:
        stat = mean_ci(np.asarray(r.auc_gains, dtype=float))
        err = [[stat.mean - stat.lo], [stat.hi - stat.mean]]
        kind = _tradeoff_kind(r)
        style = {k: v for k, v in _TRADEOFF_STYLES[kind].items() if k != "label"}
        xs = (
            r.retention["base_topic_acc"] - r.retention["topic_acc"],
            1.0 - r.retention["cosine"],
        )
        for i, (ax, x) in enumerate(zip((left, right), xs, strict=True)):
            ax.errorbar(
                [x], [stat.mean], yerr=err, capsize=3, linestyle="none", alpha=0.85,
                elinewidth=1.0, **style,
            )  # fmt: skip
            points[i].append((x, stat.mean, _short_label(r), style["color"]))
    for ax in (left, right):
        ax.axhline(0.0, color="#555555", linewidth=0.8)
        ax.grid(alpha=0.3)
    left.set_xlabel("held-out topic accuracy lost (base - adapted)")
    right.set_xlabel("embedding drift on held-out texts (1 - mean cosine to base)")
    left.set_ylabel("next-click AUC gain over frozen MiniLM\n(history-similarity's score)")
    kinds = [k for k in _TRADEOFF_STYLES if any(_tradeoff_kind(r) == k for r in rows)]
    handles = [
        Line2D(
            [],
            [],
            linestyle="none",
            marker=_TRADEOFF_STYLES[k]["marker"],
            color=_TRADEOFF_STYLES[k]["color"],
            label=_TRADEOFF_STYLES[k]["label"],
        )  # fmt: skip
        for k in kinds
    ]
    handles.append(
        Line2D(
            [],
            [],
            color="#555555",
            marker="|",
            linestyle="-",
            label="95% interval over the evaluation seeds",
        )  # fmt: skip
    )
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    fig.suptitle("Adapting MiniLM from clicks: recommendation gain vs what it forgets", fontsize=11)
    for i, ax in enumerate((left, right)):
        xs_, ys_, labels, colors = zip(*points[i], strict=True) if points[i] else ((), (), (), ())
        place_labels(ax, xs_, ys_, labels, colors=colors)
    return fig
