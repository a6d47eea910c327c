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
