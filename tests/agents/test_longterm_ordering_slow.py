"""Slow: the return ordering random < myopic learner < long-horizon RL on LongTerm.

Runs one real grid (LongTerm, 32 users, 3 seeds, each seed its own world and catalog, the
greedy oracle as the reference run) and prints the return table of ``report.md``. Run it on
purpose::

    python3 dev.py test -m slow -s tests/agents/test_longterm_ordering_slow.py

The claim "attention PPO (gamma 0.9) earns more per user than discounted LinUCB" did not hold
when this was written; it is asserted unchanged under a non-strict ``xfail`` whose reason gives
the measured figures, so an XPASS means it holds now. What bounds it is in BENCHMARKS.md
("Changelog v1").
"""

from __future__ import annotations

import os

import pytest

from driftrec.experiments.analysis import load_runs
from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.returns import format_return_table, return_table
from driftrec.experiments.runner import run_grid

pytestmark = pytest.mark.slow

STEPS = int(1536 * float(os.environ.get("DRIFTREC_SLOW_SCALE", "1.0")))


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    cfg = ExperimentConfig(
        name="longterm",
        scenarios=("LongTerm",),
        agents=("random", "linucb-discounted", "attention-ppo"),
        seeds=(0, 1, 2),
        num_envs=32,
        steps=STEPS,
        log_every=64,
        checkpoint=False,
        out_dir=str(tmp_path_factory.mktemp("longterm")),
    )
    run_grid(cfg, progress=False)
    table = return_table(load_runs(cfg.experiment_dir))
    print(f"\nLongTerm, 32 users x {STEPS} steps, seeds 0-2 (own worlds), online learning:")
    print(format_return_table(table))
    return {r["agent"]: r for r in table}


def test_random_is_below_the_learners(rows: dict[str, dict]) -> None:
    """Both learners earn more per user than random, with non-overlapping 95% intervals."""
    rand = rows["random"]["user_return"]
    for agent in ("linucb-discounted", "attention-ppo"):
        assert rows[agent]["user_return"].lo > rand.hi, agent


@pytest.mark.xfail(
    strict=False,
    reason="measured at 1,536 steps: attention-ppo 28.6 +- 14.9 per user vs linucb-discounted "
    "41.6 +- 2.1 (greedy oracle 66.5, planner 91.1); see BENCHMARKS.md Changelog v1",
)
def test_long_horizon_rl_beats_the_myopic_learner(rows: dict[str, dict]) -> None:
    """attention-ppo (gamma 0.9) earns more per user than discounted LinUCB."""
    assert rows["attention-ppo"]["user_return"].mean > rows["linucb-discounted"]["user_return"].mean
