"""Slow: the return ordering random < myopic learner < long-horizon RL on LongTerm.

Runs one real grid (LongTerm, 32 users, 3 seeds, each seed its own world and catalog, the
greedy oracle as the reference run) and prints the return table of ``report.md``. Run it on
purpose::

    python3 dev.py test -m slow -s tests/agents/test_longterm_ordering_slow.py

The order is asserted on the means over seeds; the fixture also prints the per-seed returns
and the paired (same seed: same world, catalog and user streams) difference between attention
PPO and discounted LinUCB with its 95% interval, which says whether that step of the order is
more than seed-to-seed noise. Figures and what bounds RL are in BENCHMARKS.md ("Changelog v1").
"""

from __future__ import annotations

import os

import pytest

from driftrec.experiments.analysis import load_runs, mean_ci
from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.returns import format_return_table, return_table, run_returns
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
    runs = load_runs(cfg.experiment_dir)
    table = return_table(runs)
    print(f"\nLongTerm, 32 users x {STEPS} steps, seeds 0-2 (own worlds), online learning:")
    print(format_return_table(table))
    per_seed = {(r.agent, r.seed): run_returns(r)["user_return"] for r in runs}
    for agent in ("random", "linucb-discounted", "attention-ppo", "oracle"):
        print(f"{agent:18s} per seed: {[round(per_seed[(agent, s)], 2) for s in cfg.seeds]}")
    diff = [per_seed[("attention-ppo", s)] - per_seed[("linucb-discounted", s)] for s in cfg.seeds]
    stat = mean_ci(diff)
    print(
        f"attention-ppo - linucb-discounted, paired by seed: {stat.mean:+.2f} "
        f"[{stat.lo:+.2f}, {stat.hi:+.2f}] per user"
    )
    return {r["agent"]: r for r in table}


def test_random_is_below_the_learners(rows: dict[str, dict]) -> None:
    """Both learners earn more per user than random, with non-overlapping 95% intervals."""
    rand = rows["random"]["user_return"]
    for agent in ("linucb-discounted", "attention-ppo"):
        assert rows[agent]["user_return"].lo > rand.hi, agent


def test_long_horizon_rl_beats_the_myopic_learner(rows: dict[str, dict]) -> None:
    """attention-ppo (gamma 0.9) earns more per user than discounted LinUCB."""
    assert rows["attention-ppo"]["user_return"].mean > rows["linucb-discounted"]["user_return"].mean
