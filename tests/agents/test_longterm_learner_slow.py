"""Slow: a long-horizon learner beats the greedy oracle over whole stays, on fresh users.

The claim of the issue on learner speed and quality (item 1): on ``LongTerm``, the registry's
``attention-ppo-long``, trained online for at most 262,144 env-steps (64 users x 4,096 steps)
and then acting greedily, earns a higher return per user over complete stays than the
PRIVILEGED greedy one-step oracle on users it never trained on, in every one of 3 seeds (each
its own world and catalog), and beats ``linucb-discounted`` (same budget, learning online on
the fresh users too) by a paired interval over seeds that excludes 0. The learner keeps the
snapshot that earned most on 32 validation users (other fresh users; rewards only), checked after
every 512 training steps; those stays count in its budget, so it trains 3,648 steps (233,472
env-steps) and the worst case of training plus validation is 259,072 env-steps. Run it on
purpose::

    python3 dev.py test -m slow -s tests/agents/test_longterm_learner_slow.py

It prints the table of ``bench/bench_longterm.py`` (the same code,
:mod:`driftrec.experiments.longterm`); figures and the learning curve are in BENCHMARKS.md.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from driftrec.experiments.longterm import (
    LongTermSetting,
    SeedResult,
    format_summary,
    run_study,
    summarize,
)

pytestmark = pytest.mark.slow

SCALE = float(os.environ.get("DRIFTREC_SLOW_SCALE", "1.0"))
LEARNER = "attention-ppo-long"
SETTING = LongTermSetting(
    agents=(LEARNER,),
    num_envs=64,
    steps=int(3648 * SCALE),
    eval_every=512,
    eval_users=256,
    select_users=32,
)
MAX_STEPS = 100  # LongTerm's session cap: a validation stay is at most this long


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[SeedResult]:
    out = tmp_path_factory.mktemp("longterm") / "results.json"
    return run_study(SETTING, (0, 1, 2), out=out, log=lambda m: print(m, flush=True))


@pytest.fixture(scope="module")
def summary(results: list[SeedResult]) -> dict[str, Any]:
    table = summarize(results, SETTING)
    print("\n" + format_summary(table, SETTING))
    return table


def test_the_budget_is_the_issues() -> None:
    """At most 262,144 env-steps per seed, training and validation stays together."""
    from driftrec.experiments.longterm import world_config

    assert world_config(SETTING.scenario, 0).session.max_steps == MAX_STEPS
    assert SETTING.budget(MAX_STEPS) <= 262_144


def test_each_seed_spent_at_most_the_budget(results: list[SeedResult]) -> None:
    """Measured: training env-steps plus the validation stays actually taken, per seed."""
    for r in results:
        assert SETTING.env_steps + r.select_env_steps[LEARNER] <= 262_144, r.seed


def test_beats_the_greedy_oracle_on_every_seed(summary: dict[str, Any]) -> None:
    """Greedy on fresh users, the learner's return per user exceeds the oracle's on each seed.

    Measured with 0.5.0 (twice-skipped items masked): +0.34 / +7.30 / +5.65 per user on seeds
    0 / 1 / 2. Seed 0's margin is thin (its interval over the users, [-3.22, +3.89], holds 0):
    a change in float order or in the preset can flip this test."""
    for learner, oracle in zip(
        summary[LEARNER]["per_seed"], summary["oracle"]["per_seed"], strict=True
    ):
        assert learner["return"] > oracle["return"], learner["seed"]


def test_beats_linucb_by_a_paired_interval(summary: dict[str, Any]) -> None:
    """Learner minus linucb-discounted, paired by seed (same fresh users): 95% interval > 0."""
    assert summary[LEARNER]["minus_baseline"].lo > 0
