"""Fast tests of driftrec.experiments.lora_study (no language model: hand-made embeddings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from driftrec.envs.catalog import load_catalog
from driftrec.experiments import lora_study as ls

SMALL = ls.LoraStudySetting(
    num_items=48, num_topics=4, log_steps=30, num_envs=8, eval_steps=20, eval_seeds=(0, 1)
)


def test_decoy_catalog_is_seeded_and_misleading() -> None:
    one = ls.decoy_catalog(48, 4, seed=5)
    assert one.texts() == ls.decoy_catalog(48, 4, seed=5).texts()
    assert one.texts() != ls.decoy_catalog(48, 4, seed=6).texts()
    main = one.primary_topic()
    codes = [t.rsplit(" ", 1)[-1] for t in one.descriptions]
    for k in range(4):  # one code per topic, and different topics get different codes
        assert len({c for c, m in zip(codes, main, strict=True) if m == k}) == 1
    assert len(set(codes)) == 4
    words = ls.decoy_catalog(48, 4, seed=5, tell="word")
    assert words.titles == one.titles and words.descriptions != one.descriptions
    with pytest.raises(ValueError, match="'tell' must be 'code' or 'word'"):
        ls.decoy_catalog(48, 4, seed=5, tell="tag")


def test_setting_rejects_overlapping_seeds() -> None:
    with pytest.raises(ValueError, match="'train_seeds' .* must not overlap"):
        ls.LoraStudySetting(train_seeds=(0, 1), eval_seeds=(1, 2))


def test_retention_metrics_known_values() -> None:
    rng = np.random.default_rng(0)
    topics = np.eye(4)[np.arange(40) % 4] * 0.7 + 0.3 / 4  # mixed, main topic = i % 4
    clean = topics / np.linalg.norm(topics, axis=1, keepdims=True)
    same = ls.retention_metrics(clean, clean, topics)
    assert same["mse"] == 0.0 and same["cosine"] == pytest.approx(1.0)
    assert same["topic_acc"] == 1.0 and same["spearman"] > 0.9
    noise = rng.standard_normal(clean.shape)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    moved = ls.retention_metrics(clean, noise, topics)
    assert moved["mse"] > 0 and moved["cosine"] < 0.9
    assert moved["topic_acc"] < 0.6 and abs(moved["spearman"]) < 0.3
    assert moved["base_topic_acc"] == 1.0


def test_ranking_metrics_tell_good_features_from_random(tmp_path: Path) -> None:
    path = ls.write_decoy_catalog(SMALL, tmp_path)
    catalog = load_catalog(path)
    logs = ls.eval_logs(SMALL, path)
    assert [len(g) for g in logs] == [8 * 30, 8 * 30]
    truth = np.asarray(catalog.topics, dtype=np.float32)
    truth += np.random.default_rng(0).normal(0, 1e-3, truth.shape).astype(np.float32)
    rand = np.random.default_rng(1).standard_normal((48, 16)).astype(np.float32)
    good = ls.ranking_metrics(SMALL, path, truth, logs)
    bad = ls.ranking_metrics(SMALL, path, rand, logs)
    assert all(0.0 <= v <= 1.0 for v in good["auc"] + good["hit10"])
    assert min(good["auc"]) > max(bad["auc"]) + 0.05
    assert abs(np.mean(bad["auc"]) - 0.5) < 0.08  # random features: about chance


def test_consumer_rewards_one_per_eval_seed(tmp_path: Path) -> None:
    path = ls.write_decoy_catalog(SMALL, tmp_path)
    rewards = ls.consumer_rewards(SMALL, path, np.eye(48, dtype=np.float32))
    assert len(rewards) == 2 and all(0.0 < r <= 1.5 for r in rewards)


def test_plot_tradeoff_has_a_legend_and_labels_that_do_not_overlap() -> None:
    """Method by marker in a legend (not the title); every point labelled, no two labels
    overlapping, on both panels."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    from driftrec.experiments.lora_study import SweepRow, plot_tradeoff

    def row(method: str, rank: int, lr: float, retain: float, gain: float, cos: float) -> SweepRow:
        settings = {"method": method, "learning_rate": lr, "retain_weight": retain}
        return SweepRow(
            label="x", settings={**settings, "lora": {"rank": rank}}, rewards=[0.0] * 3,
            base_rewards=[0.0] * 3, auc=[gain - 0.01, gain, gain + 0.01], base_auc=[0.0] * 3,
            retention={"base_topic_acc": 0.79, "topic_acc": 0.79 - (1 - cos) / 10, "cosine": cos},
            train_seconds=0.0, catalog_encode_seconds=0.0, trainable_params=0, final_loss=0.0,
            first_loss=0.0,
        )  # fmt: skip

    rows = [
        row("lora", 8, 1e-3, 0.0, 0.043, 0.566),
        row("lora", 8, 1e-3, 1.0, 0.043, 0.987),
        row("lora", 8, 1e-3, 10.0, 0.042, 0.997),
        row("lora", 4, 3e-3, 0.0, 0.030, 0.331),
        row("lora", 8, 3e-3, 0.0, 0.034, 0.338),
        row("full", 0, 1e-5, 0.0, 0.050, 0.911),
    ]
    fig = plot_tradeoff(rows)
    FigureCanvasAgg(fig)
    # drawn as save_figure writes it (120 dpi, tight box): with offsets in pixels, labels kept
    # apart at the screen's dpi overlapped there (the docs' figure did)
    fig.savefig(io.BytesIO(), format="png", dpi=120, bbox_inches="tight")
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "LoRA",
        "LoRA + retention term",
        "full fine-tuning",
        "95% interval over the evaluation seeds",
    ]
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = [t for t in ax.texts]
        assert sorted(t.get_text() for t in labels) == sorted(
            ["r8 1e-3", "r8 1e-3 ret 1", "r8 1e-3 ret 10", "r4 3e-3", "r8 3e-3", "full 1e-5"]
        )
        boxes = [Text.get_window_extent(t, renderer) for t in labels]  # without leader lines
        assert not any(
            boxes[i].overlaps(boxes[j]) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
        )


# The twelve encoders of BENCHMARKS' LoRA trade-off (bench_lora.py's three calls): method, rank,
# learning rate, retention weight, AUC gain per evaluation seed, topic accuracy lost, mean cosine
_SWEEP_FIGURE = [
    ("lora", 8, 1e-3, 1, [0.0306, 0.043, 0.0566], 0.0, 0.987),
    ("lora", 8, 1e-3, 10, [0.0308, 0.0414, 0.054], 0.0, 0.9974),
    ("lora", 4, 1e-3, 0, [0.0484, 0.0496, 0.0616], 0.0417, 0.6031),
    ("lora", 8, 1e-3, 0, [0.0389, 0.0367, 0.0533], 0.0417, 0.5665),
    ("lora", 16, 1e-3, 0, [0.036, 0.0174, 0.0462], 0.0458, 0.4633),
    ("lora", 4, 3e-3, 0, [0.0362, 0.0093, 0.0453], 0.0833, 0.3307),
    ("lora", 8, 3e-3, 0, [0.0355, 0.0161, 0.0499], 0.0833, 0.3377),
    ("lora", 16, 3e-3, 0, [0.0259, 0.0218, 0.0363], 0.1042, 0.3158),
    ("full", 8, 1e-5, 0, [0.0449, 0.0483, 0.0568], -0.0125, 0.9106),
    ("full", 8, 3e-5, 0, [0.0357, 0.0228, 0.0474], 0.0042, 0.7965),
    ("lora", 8, 1e-4, 0, [0.0296, 0.0405, 0.0385], 0.0083, 0.9696),
    ("lora", 8, 3e-4, 0, [0.0505, 0.0636, 0.0701], 0.0292, 0.7486),
]


def test_the_docs_tradeoff_figure_has_no_overlapping_labels_as_saved() -> None:
    """The figure of the docs, from its measured points, rendered as ``save_figure`` writes it
    (120 dpi, a tight box after constrained layout): no two labels overlap. With offsets in
    pixels, placed before the layout ran, 'r8 1e-3 ret 1' covered 'r8 1e-3 ret 10' in the PNG
    although the two were apart on the screen."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    from driftrec.experiments.lora_study import SweepRow, plot_tradeoff

    rows = [
        SweepRow(
            label="x",
            settings={"method": m, "learning_rate": lr, "retain_weight": w, "lora": {"rank": r}},
            rewards=[0.0] * 3,
            base_rewards=[0.0] * 3,
            auc=gains,
            base_auc=[0.0] * 3,
            retention={"base_topic_acc": 0.8, "topic_acc": 0.8 - lost, "cosine": cos},
            train_seconds=0.0,
            catalog_encode_seconds=0.0,
            trainable_params=0,
            final_loss=0.0,
            first_loss=0.0,
        )  # fmt: skip
        for m, r, lr, w, gains, lost, cos in _SWEEP_FIGURE
    ]
    fig = plot_tradeoff(rows)
    FigureCanvasAgg(fig)
    fig.savefig(io.BytesIO(), format="png", dpi=120, bbox_inches="tight")
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = list(ax.texts)
        assert len(labels) == len(rows)
        boxes = [Text.get_window_extent(t, renderer) for t in labels]  # without leader lines
        pairs = [
            (labels[i].get_text(), labels[j].get_text())
            for i in range(len(boxes))
            for j in range(i + 1, len(boxes))
            if boxes[i].overlaps(boxes[j])
        ]
        assert not pairs, pairs
