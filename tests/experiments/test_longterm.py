"""The long-horizon study (driftrec.experiments.longterm) on a tiny world: the pipeline runs,
fresh users are fresh, results resume from their file and the summary is paired."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from driftrec.agents.baselines import make_baseline
from driftrec.experiments.longterm import (
    EARLY_LEAVE_STEPS,
    LongTermSetting,
    SeedResult,
    format_summary,
    fresh_user_returns,
    plot_learning_curves,
    reference_returns,
    run_study,
    summarize,
    world_config,
)

TINY_WORLD = {"num_items": 32, "num_topics": 4, "history_len": 4, "max_steps": 12}


@pytest.fixture(autouse=True)
def _shared_text_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTREC_CACHE", str(tmp_path_factory.getbasetemp() / "driftrec-cache"))


def _setting(**kwargs: object) -> LongTermSetting:
    base: dict[str, object] = {
        "agents": ("attention-ppo-long",),
        "num_envs": 4,
        "steps": 32,
        "eval_every": 16,
        "eval_users": 8,
        "env_overrides": TINY_WORLD,
        "agent_kwargs": {"attention-ppo-long": {"n_steps": 16, "n_epochs": 1}},
    }
    return LongTermSetting(**{**base, **kwargs})  # type: ignore[arg-type]


def test_fresh_users_stay_once_and_are_not_the_training_users() -> None:
    """Every fresh user is followed through one whole stay; another seed gives other users."""
    config = world_config("LongTerm", 0, TINY_WORLD)
    ret, length = fresh_user_returns(lambda env: make_baseline("oracle", env), config, 5, 16)
    assert ret.shape == length.shape == (16,)
    assert (length >= 1).all() and (length <= 12).all() and (ret <= length).all()
    again, _ = fresh_user_returns(lambda env: make_baseline("oracle", env), config, 5, 16)
    np.testing.assert_array_equal(ret, again)  # same seed, same users
    other, _ = fresh_user_returns(lambda env: make_baseline("oracle", env), config, 6, 16)
    assert not np.array_equal(ret, other)


def test_study_runs_summarizes_plots_and_resumes(tmp_path: Path) -> None:
    """Seed 0 (the catalog of the tiny fixtures, whose text embeddings the session has cached):
    curves from 0 env-steps to the budget, paired differences over the same users, the
    results file written per seed and reused on a second call; another setting is refused."""
    setting = _setting()
    out = tmp_path / "results.json"
    lines: list[str] = []
    results = run_study(setting, (0,), out=out, log=lines.append)
    assert [r.seed for r in results] == [0]
    for r in results:
        assert set(r.returns) == {"oracle", "planner", "linucb-discounted", "attention-ppo-long"}
        assert all(v.shape == (8,) for v in r.returns.values())
        curve = r.curves["attention-ppo-long"]
        assert curve["env_steps"] == [0.0, 64.0, 128.0]
        assert curve["user_return"][-1] == pytest.approx(r.returns["attention-ppo-long"].mean())
    summary = summarize(results, setting)
    learner = summary["attention-ppo-long"]
    first = learner["per_seed"][0]
    diff = results[0].returns["attention-ppo-long"] - results[0].returns["oracle"]
    assert first["minus_oracle"].mean == pytest.approx(diff.mean())
    assert learner["minus_oracle"].n == 1
    assert learner["minus_baseline"].mean == pytest.approx(
        np.mean([p["minus_baseline"].mean for p in learner["per_seed"]])
    )
    assert summary["oracle"]["ratio"].mean == pytest.approx(1.0)
    text = format_summary(summary, setting)
    assert "| attention-ppo-long | oracle |" in text and "seed 0" in text
    ax = plot_learning_curves(results, setting)
    assert ax.get_xlabel() == "training env-steps"
    data = json.loads(out.read_text())
    assert [s["seed"] for s in data["seeds"]] == [0]
    lines.clear()
    again = run_study(setting, (0,), out=out, log=lines.append)
    assert lines == [f"seed 0: finished in {out}, reused"]
    np.testing.assert_array_equal(again[0].returns["planner"], results[0].returns["planner"])
    fresh = run_study(setting, (0,))  # computed again: same seed, same result
    for name, returns in results[0].returns.items():
        np.testing.assert_array_equal(fresh[0].returns[name], returns, err_msg=name)
    with pytest.raises(ValueError, match=f"^{re.escape(str(out))} holds results of another"):
        run_study(_setting(steps=16), (0,), out=out)


def test_the_references_are_seeded() -> None:
    """The planner's rollouts draw random numbers: the references take the eval seed, so the
    same seed gives the same returns (unseeded, 16 LongTerm users of 24 steps differed)."""
    config = world_config("LongTerm", 0, {"max_steps": 24})
    first = reference_returns(config, 5, 16)
    again = reference_returns(config, 5, 16)
    assert set(first) == {"oracle", "planner"}
    for name, (returns, lengths) in first.items():
        np.testing.assert_array_equal(again[name][0], returns, err_msg=name)
        np.testing.assert_array_equal(again[name][1], lengths, err_msg=name)
        assert returns.shape == (16,) and (lengths <= 24).all()


def test_the_summary_counts_users_lost_early() -> None:
    """``left_early`` is the share of stays of at most EARLY_LEAVE_STEPS steps, per seed and
    over seeds, and the table prints it in its own column."""
    setting = LongTermSetting(agents=("attention-ppo-long",))
    names = ("oracle", "planner", setting.baseline, "attention-ppo-long")
    short = EARLY_LEAVE_STEPS
    stays = {
        0: [short - 10, short, short + 1, 100.0],  # two of four at most EARLY_LEAVE_STEPS
        1: [100.0, 100.0, short, 100.0],  # one of four
    }
    results = [
        SeedResult(
            seed,
            returns={n: np.arange(4, dtype=np.float64) + 1.0 for n in names},
            lengths={n: np.asarray(v if n == "attention-ppo-long" else [100.0] * 4) for n in names},
            curves={},
            seconds={},
        )
        for seed, v in stays.items()
    ]
    summary = summarize(results, setting)
    learner = summary["attention-ppo-long"]
    assert [p["left_early"] for p in learner["per_seed"]] == [0.5, 0.25]
    assert learner["left_early"].mean == pytest.approx(0.375)
    assert summary["oracle"]["left_early"].mean == 0.0
    text = format_summary(summary, setting)
    header = next(line for line in text.splitlines() if line.startswith("| policy |"))
    column = header.split(" | ").index(f"left within {EARLY_LEAVE_STEPS} steps")
    row = next(line for line in text.splitlines() if line.startswith("| attention-ppo-long ("))
    assert row.split(" | ")[column].startswith("0.375 [")


def test_setting_validation() -> None:
    """Counts must be positive; agent_kwargs may only name agents that run."""
    with pytest.raises(ValueError, match=r"^'steps' must be"):
        LongTermSetting(steps=0)
    msg = "'agent_kwargs' names agents that are not run: ['attention-ppo']"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}"):
        LongTermSetting(agent_kwargs={"attention-ppo": {}})
    assert LongTermSetting().env_steps == 262_144


def test_the_kept_snapshot_is_the_validation_users_best_and_counts_in_the_budget() -> None:
    """With select_users the learner keeps the snapshot with the best return on validation
    users (other fresh users than the test ones); its test returns are that snapshot's point on
    the learning curve, and the validation stays are counted (within the worst-case budget)."""
    setting = _setting(select_users=4, steps=48)
    lines: list[str] = []
    (result,) = run_study(setting, (0,), log=lines.append)
    name = "attention-ppo-long"
    curve = result.curves[name]
    kept = result.selected[name]
    assert kept in curve["env_steps"][1:]  # never the untrained policy
    at = curve["env_steps"].index(kept)
    assert result.returns[name].mean() == pytest.approx(curve["user_return"][at])
    found = map(re.compile(r"validation ([\d.]+)").search, lines)
    checked = [float(m.group(1)) for m in found if m]
    assert len(checked) == setting.selections == 3
    assert checked.index(max(checked)) == at - 1
    spent = result.select_env_steps[name]
    assert 3 * 4 <= spent <= 3 * 4 * TINY_WORLD["max_steps"]
    assert setting.env_steps + spent <= setting.budget(TINY_WORLD["max_steps"])
    assert setting.budget(12) == 48 * 4 + 3 * 4 * 12
    assert LongTermSetting(select_users=0).budget(100) == 262_144
    again = type(result).from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.selected == result.selected and again.select_env_steps == result.select_env_steps


def test_validation_users_must_not_be_the_test_users() -> None:
    """The validation env's seed offset must differ from the test env's."""
    msg = "'select_seed_offset' must differ from 'eval_seed_offset' (both 7)"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}"):
        LongTermSetting(select_users=8, select_seed_offset=7, eval_seed_offset=7)
