"""What looking ahead is worth on the long-term scenarios (slow: prints the table).

Run with ``python3 dev.py test -m slow -s tests/agents/test_planner_slow.py``. Every policy serves
the same 32 users per seed (one complete stay each), five seeds, each its own world and catalog;
the best static tilt is chosen on 64 other users of the world (the table also shows the best on
the scored users themselves). BENCHMARKS.md ("Planning that needs a plan") has the figures.
"""

from __future__ import annotations

import pytest

from driftrec.agents.planner import tilt_family
from driftrec.experiments.planning import (
    LONG_TERM_SCENARIOS,
    format_planning_table,
    planning_table,
)


@pytest.mark.slow
def test_planner_is_a_ceiling_and_aversion_needs_a_plan() -> None:
    """The planner earns at least the best static tilt on every long-term scenario (paired
    difference not below 0 beyond its interval); on LongTermAversion the best static tilt gains
    less than half of what the planner gains over the greedy oracle."""
    results = planning_table(
        LONG_TERM_SCENARIOS,
        seeds=(0, 1, 2, 3, 4),
        num_users=32,
        family=tilt_family(spaces=("logit", "log")),
        planner_kwargs={"samples": 4},
    )
    print("\n" + format_planning_table(results))
    for res in results:
        diff = res.paired("planner", "static-tilt")
        assert diff.high >= 0.0, f"{res.scenario}: planner below the best static tilt {diff}"
        assert res.stat("planner").mean > res.stat("oracle").mean
    aversion = {r.scenario: r for r in results}["LongTermAversion"]
    share = aversion.static_share()
    assert share.mean < 0.5 and share.high < 0.5, share
