"""Tests for driftrec.agents.online_lm: the click log a run keeps, the refresh, the table swap
(a tiny random BERT stands in for MiniLM)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pytest

pytest.importorskip("peft")
import torch

from driftrec.agents import text_encoder as te
from driftrec.agents.online import StepRecord, run_online
from driftrec.agents.online_lm import (
    ClickLogBuffer,
    InRunFinetuner,
    InRunFinetuneSettings,
    swap_item_table,
)
from driftrec.agents.registry import build_agent
from driftrec.agents.text_encoder import TextEncoderConfig, encode_catalog
from driftrec.envs.config import EnvConfig
from driftrec.envs.core import cached_catalog
from driftrec.envs.observation import ObservationLayout

torch.set_num_threads(1)

ENV = EnvConfig().with_overrides(
    num_items=40, num_topics=4, history_len=6, new_item_fraction=0.5, **{
        "catalog.release_horizon": 30
    }
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, save_tiny_bert: Any) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert", 0, max_position_embeddings=512)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(te.CACHE_ENV_VAR, str(tmp_path / "cache"))


def _record(layout: ObservationLayout, ids: Any, fb: Any, mask: Any, clicked: Any) -> StepRecord:
    b = len(clicked)
    obs = np.zeros((b, layout.size), dtype=np.float32)
    h = layout.history_len
    obs[:, :h], obs[:, h : 2 * h], obs[:, 2 * h : 3 * h] = ids, fb, mask
    z = np.zeros(b)
    info = {"clicked_item": np.asarray(clicked)}
    return StepRecord(1, obs, np.zeros(b, dtype=np.int64), z, z > 0, z > 0, obs, info)


def test_click_log_keeps_clicks_of_users_who_clicked_before() -> None:
    """Only impressions that were clicked, by a user whose observed history holds a click, are
    kept, with that history; nothing else (no interests, no probabilities) is read."""
    layout = ObservationLayout(3, 10)
    buf = ClickLogBuffer(layout)
    ids = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 1, 1]]
    fb = [[0, 1, 0], [0, 0, 0], [1, 0, 0], [0, 0, 1]]
    mask = [[1, 1, 1], [1, 1, 1], [1, 1, 1], [0, 0, 0]]  # row 3: its click is not real history
    buf.add(_record(layout, ids, fb, mask, [5, 2, -1, 3]))
    buf.add(_record(layout, ids, fb, mask, [-1, -1, 4, -1]))
    log = buf.log()
    # step 1: row 0 kept; row 1 had no click before, row 2 did not click, row 3 had no history
    # step 2: row 2 clicked item 4 after its click on item 7
    assert len(buf) == 2 and log.items.tolist() == [5, 4]
    np.testing.assert_array_equal(log.history_items, [[1, 2, 3], [7, 8, 9]])
    np.testing.assert_array_equal(log.click_examples(), [0, 1])
    assert len(ClickLogBuffer(layout).log()) == 0


def test_settings_check_their_fields() -> None:
    """Bad settings name the field; unknown keys of the config dict are named."""
    with pytest.raises(ValueError, match=r"^'every' must be an integer >= 1 \(got 0\)$"):
        InRunFinetuneSettings(every=0)
    with pytest.raises(ValueError, match=r"^'rank' must be an integer in \[1, 256\] \(got 0\)$"):
        InRunFinetuneSettings(every=4, rank=0)
    with pytest.raises(ValueError, match=r"^'window' must be an integer >= 1 \(got 0\)$"):
        InRunFinetuneSettings(every=4, window=0)
    with pytest.raises(ValueError, match=r"^unknown 'finetune' setting 'rnak'; expected one of "):
        InRunFinetuneSettings.from_config(4, {"rnak": 2})
    with pytest.raises(ValueError, match=r"^'in_batch' false needs 'negatives' >= 1 \(got 0\)"):
        InRunFinetuneSettings.from_config(4, {"in_batch": False, "negatives": 0})
    with pytest.raises(ValueError, match=r"^'in_batch' false needs 'negatives' >= 1 \(got 0\)"):
        InRunFinetuneSettings.from_config(4, {"negatives": 0})  # in_batch is false by default
    s = InRunFinetuneSettings.from_config(4, {"rank": 2, "targets": ["query"]})
    assert s.targets == ("query",) and s.finetune_settings(7).seed == 7
    # a run's own log: its clicks contrast with the same users' skips only (since 0.5.0)
    assert s.finetune_settings(7).in_batch is False
    both = InRunFinetuneSettings.from_config(4, {"in_batch": True, "negatives": 0})
    assert both.finetune_settings(0).in_batch is True and both.negatives == 0


def _finetuner(tiny: Path, **settings: Any) -> tuple[InRunFinetuner, Any]:
    built = build_agent(
        "history-similarity", ENV, num_envs=8, seed=1, agent_kwargs={"epsilon": 0.5}
    )
    sim = built.env.sim
    cfg = TextEncoderConfig(model=str(tiny), show_progress=False)
    texts = sim.catalog.texts()
    ft = InRunFinetuner(
        InRunFinetuneSettings(every=10, rank=2, steps=3, batch_size=4, **settings),
        texts,
        sim.catalog.release_step,
        encode_catalog(texts, cfg),
        sim.layout,
        cfg,
        seed=5,
        anchor_texts=["a story of cake", "music and war", "space film", "the long war"],
        horizon=25,
    )
    run_online(built.agent, built.env, 10, on_step=ft.observe)
    return ft, built


def test_refresh_trains_reencodes_what_can_be_shown_and_is_deterministic(tiny: Path) -> None:
    """A refresh trains the adapter on the run's log and re-encodes exactly the items released
    by the next refresh (capped at the run's end): the other rows keep the frozen embedding.
    The same seed and log give the same table."""
    ft, _ = _finetuner(tiny)
    before = ft.table.copy()
    table = ft.refresh(10)
    picked = ft.to_encode(10)
    release = np.asarray(cached_catalog(ENV).release_step)
    np.testing.assert_array_equal(picked, np.flatnonzero(release <= 20))
    assert not np.allclose(table[picked], before[picked], atol=1e-6)
    np.testing.assert_array_equal(table[release > 20], before[release > 20])
    np.testing.assert_allclose(np.linalg.norm(table, axis=1), 1.0, atol=1e-5)
    (rec,) = ft.refreshes
    assert rec.step == 10 and rec.texts_encoded == picked.size and rec.train_seconds > 0
    assert ft.next_step == 20 and ft.trained
    again, _ = _finetuner(tiny)
    np.testing.assert_array_equal(again.refresh(10), table)
    summary = ft.summary(100.0)
    assert summary["refresh_steps"] == [10] and summary["trainable_params"] > 0
    assert summary["share_of_run"] == pytest.approx(summary["seconds"] / 100.0, abs=1e-4)
    assert ft.to_encode(20).tolist() == np.flatnonzero(release <= 25).tolist()  # the run's end


def test_window_leaves_old_items_alone(tiny: Path) -> None:
    """With window W, items released before clock - W keep their previous embedding."""
    ft, _ = _finetuner(tiny, window=5)
    release = np.asarray(ft.release_step)
    picked = ft.to_encode(10)
    np.testing.assert_array_equal(picked, np.flatnonzero((release <= 20) & (release >= 5)))


def test_too_few_clicks_skip_the_refresh(tiny: Path) -> None:
    """A refresh before 2 usable clicks trains nothing and says so."""
    ft, _ = _finetuner(tiny)
    ft.buffer = ClickLogBuffer(ft.layout)
    assert ft.refresh(10) is None and not ft.trained
    assert ft.refreshes[0].skipped == "too few clicks"


def test_swap_item_table_reaches_the_agents(tiny: Path) -> None:
    """history-similarity scores with the new features; the attention policy's recommender
    (and its content-match table) takes the new table; the id-only policy refuses."""
    ft, built = _finetuner(tiny)
    table = ft.refresh(10)
    swap_item_table(built, table)
    np.testing.assert_allclose(built.agent.features, table, atol=1e-6)
    from stable_baselines3 import PPO

    from driftrec.agents.sb3_policy import recommender_policy_kwargs
    from driftrec.envs.sb3 import DriftRecSB3VecEnv

    emb = np.random.default_rng(0).standard_normal((40, 32)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    path = Path(os.environ[te.CACHE_ENV_VAR]) / "emb.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, emb)
    env = DriftRecSB3VecEnv(4, ENV, seed=0)
    kwargs = recommender_policy_kwargs(env, embeddings_file=str(path))
    model = PPO("AttentionRecommenderPolicy", env, policy_kwargs=kwargs, n_steps=4, batch_size=16)
    attention = SimpleNamespace(agent=model, is_sb3=True)
    new = np.roll(emb, 1, axis=0)
    swap_item_table(attention, new)
    rec = model.policy.recommender
    np.testing.assert_allclose(rec.item_table.numpy(), new, atol=1e-6)
    model.learn(16)  # it keeps training on the new table
    ids = build_agent("id-ppo", ENV, num_envs=4, seed=0)
    with pytest.raises(TypeError, match="the id-only policy has no text table to refresh"):
        swap_item_table(ids, new)
    rand = build_agent("random", ENV, num_envs=4, seed=0)
    with pytest.raises(TypeError, match="RandomAgent has no item features to refresh"):
        swap_item_table(rand, new)


RUN_ENV = {"num_items": 40, "num_topics": 4, "history_len": 6}


def _grid(tiny: Path, tmp_path: Path, **over: Any) -> Any:
    from driftrec.experiments.config import ExperimentConfig

    fields: dict[str, Any] = {
        "name": "ft",
        "scenarios": ("Stationary",),
        "agents": ("history-similarity", "attention-ppo"),
        "seeds": (0,),
        "num_envs": 8,
        "steps": 16,
        "log_every": 4,
        "env_overrides": RUN_ENV,
        "agent_kwargs": {"attention-ppo": {"n_steps": 4, "batch_size": 32}},
        "text_model": str(tiny),
        "finetune_every": 8,
        "finetune": {"rank": 2, "steps": 2, "batch_size": 4},
        "out_dir": str(tmp_path / "runs"),
        "reference_agent": None,
        **over,
    }
    return ExperimentConfig(**fields)


def test_a_run_fine_tunes_reports_its_cost_and_keeps_the_adapter(
    tiny: Path, tmp_path: Path
) -> None:
    """With finetune_every the run refreshes at every multiple of it (not at its end), writes
    the refresh costs, their share of the run and the retention check into done.json, keeps
    the final adapter, and its checkpoint evaluates with that adapter. Other fine-tuning
    settings are a different run (refused on resume)."""
    import json

    from driftrec.agents.lora import MANIFEST_NAME
    from driftrec.experiments.evaluate import evaluate_checkpoint
    from driftrec.experiments.guard import SettingsChanged
    from driftrec.experiments.runner import run_grid

    cfg = _grid(tiny, tmp_path)
    dirs = run_grid(cfg, progress=False)
    for run_dir in dirs:
        done = json.loads((run_dir / "done.json").read_text())
        ft = done["finetune"]
        assert ft["refresh_steps"] == [8], ft
        assert ft["seconds_per_refresh"] > 0 and 0 < ft["share_of_run"] < 1
        assert ft["refreshes"][0]["texts_encoded"] == 40 and ft["logged_clicks"] > 0
        assert {"cosine", "topic_acc", "base_topic_acc"} <= set(ft["retention"])
        assert (run_dir / "text_adapter" / MANIFEST_NAME).is_file()
        config = json.loads((run_dir / "config.json").read_text())
        assert config["finetune_every"] == 8 and config["finetune"]["rank"] == 2
    from driftrec.experiments.report import write_report

    report = write_report(cfg.experiment_dir).read_text()
    assert "## The text encoder fine-tuned during the runs" in report
    assert "| `Stationary__attention-ppo__0` | 8 | 40 |" in report
    ppo = next(d for d in dirs if "attention-ppo" in d.name)
    result = evaluate_checkpoint(ppo, steps=4)
    assert 0 <= result["normalized_reward"] <= 1.5
    with pytest.raises(SettingsChanged, match="finetune_settings.rank: 2 -> 3"):
        run_grid(_grid(tiny, tmp_path, finetune={"rank": 3, "steps": 2, "batch_size": 4}))


def test_finetune_config_errors(tiny: Path, tmp_path: Path) -> None:
    """Fine-tuning settings are checked before any work, each error naming the field."""
    with pytest.raises(ValueError, match=r"^'finetune' settings \['rank'\] need 'finetune_every'"):
        _grid(tiny, tmp_path, finetune_every=None, finetune={"rank": 2})
    with pytest.raises(ValueError, match=r"^unknown 'finetune' setting 'rnak'"):
        _grid(tiny, tmp_path, finetune={"rnak": 2})
    with pytest.raises(ValueError, match=r"^'finetune_every' must be an integer in \[1, 16\]"):
        _grid(tiny, tmp_path, finetune_every=17)
    with pytest.raises(ValueError, match="'linucb' reads the text embeddings but cannot take"):
        _grid(tiny, tmp_path, agents=("linucb",))
    _grid(tiny, tmp_path, agents=("random", "id-ppo"))  # agents without text: nothing to tune
