"""Tests of the grid's progress display: step counts per run and a cost-weighted ETA.

That spawned workers' step counts reach the parent is tested with the parallel grid in
test_user_scenarios.py (one spawned grid for both)."""

from __future__ import annotations

import io

import pytest

from driftrec.experiments import progress
from driftrec.experiments.progress import GridProgress, agent_cost, format_duration


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_eta_weights_runs_by_expected_cost() -> None:
    """With the cheap runs done first, the ETA counts the expensive work still to do.

    Costs: four runs of cost 1 and one of cost 8 (12 in all). After the four cheap runs (4/12 of
    the work) in 40 s, the ETA is 40 * (8/12) / (4/12) = 80 s; counting runs (4 of 5 done)
    would say 10 s.
    """
    clock = Clock()
    runs = [("S", "random", s) for s in range(4)] + [("S", "attention-ppo", 0)]
    costs = {"random": 1.0, "attention-ppo": 8.0}
    show = GridProgress(
        "g", runs, 5, 100, cost=lambda r: costs[r[1]], stream=io.StringIO(), clock=clock
    )
    assert show.eta_s() is None
    for run in runs[:4]:
        show.start(run)
        show.finish(run, f"done {run}")
    clock.t += 40.0
    assert show.fraction() == pytest.approx(4 / 12)
    assert show.eta_s() == pytest.approx(80.0)
    show.start(runs[4])
    show.advance(runs[4], 50)  # half of the expensive run: 8/12 of the work done
    assert show.fraction() == pytest.approx(8 / 12)
    assert show.eta_s() == pytest.approx(40.0 * (4 / 12) / (8 / 12))
    assert show.status() == (
        "4/5 runs, 67% of the work, 0:40 elapsed, ETA 0:20; running: S/attention-ppo/0 50/100"
    )


def test_progress_lines_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    """Off a terminal: start/done lines on stdout, a progress line per interval on the stream."""
    clock = Clock()
    stream = io.StringIO()
    run = ("S", "random", 0)
    show = GridProgress("g", [run], 1, 10, stream=stream, interval_s=5.0, clock=clock)
    show.start(run)
    show.advance(run, 3)  # < 5 s since the start: nothing yet
    clock.t += 6.0
    show.advance(run, 4)
    clock.t += 1.0
    show.advance(run, 5)  # 1 s after the last line: nothing
    show.finish(run, "done   S/random/0 in 7 s")
    show.close()
    assert stream.getvalue().splitlines() == [
        "progress  0/1 runs, 40% of the work, 0:06 elapsed, ETA 0:09; running: S/random/0 4/10"
    ]
    assert capsys.readouterr().out.splitlines() == ["start  S/random/0", "done   S/random/0 in 7 s"]


def test_disabled_progress_prints_only_start_and_done(capsys: pytest.CaptureFixture[str]) -> None:
    """--no-progress: no bar, no progress lines; the start and done lines stay."""
    clock = Clock()
    stream = io.StringIO()
    run = ("S", "random", 0)
    show = GridProgress("g", [run], 1, 10, enabled=False, stream=stream, clock=clock)
    show.start(run)
    clock.t += 60.0
    show.advance(run, 5)
    show.finish(run, "done")
    assert stream.getvalue() == ""
    assert capsys.readouterr().out.splitlines() == ["start  S/random/0", "done"]


def test_cost_table_and_durations() -> None:
    """PPO agents cost more than bandits; -frozen costs as much; unknown agents get the default."""
    assert agent_cost("attention-ppo") > agent_cost("linucb-discounted") > agent_cost("random")
    assert agent_cost("attention-ppo-frozen") == agent_cost("attention-ppo")
    assert agent_cost("mypkg.mod:Agent") == progress.DEFAULT_COST
    assert [format_duration(s) for s in (0, 61.4, 3725)] == ["0:00", "1:01", "1:02:05"]


def test_bar_text_fits_one_line() -> None:
    """On a terminal the text after the bar keeps to its room: runs beyond it are counted."""
    clock = Clock()
    runs = [("AbruptShift", "attention-ppo", s) for s in range(4)]
    show = GridProgress("g", runs, 4, 1536, stream=io.StringIO(), clock=clock)
    for i, run in enumerate(runs):
        show.start(run)
        show.advance(run, 100 * (i + 1))
    clock.t += 30.0
    head = "0/4 runs [0:30<2:34]"  # 1000 of 6144 steps of equal runs: 30 s * 5144 / 1000 left
    first = "AbruptShift/attention-ppo/0 100/1536"
    assert show._bar_text(200) == (
        f"{head}; {first}, AbruptShift/attention-ppo/1 200/1536, "
        "AbruptShift/attention-ppo/2 300/1536, AbruptShift/attention-ppo/3 400/1536"
    )
    assert show._bar_text(70) == f"{head}; {first} +3 more"
    assert show._bar_text(30) == f"{head} +4 more"


def test_a_late_start_message_never_revives_a_finished_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A worker's start message that arrives after its run's result: start then done, once."""
    show = GridProgress("g", [("S", "random", 0)], 1, 10, stream=io.StringIO(), clock=Clock())
    show.finish(("S", "random", 0), "done   S/random/0 in 1 s")
    show.start(("S", "random", 0))  # late
    assert show.active == {} and show.finished == 1
    assert capsys.readouterr().out.splitlines() == ["start  S/random/0", "done   S/random/0 in 1 s"]


def test_eta_does_not_count_the_start_up_as_work() -> None:
    """The rate is measured from the first reported step (workers and the first agents take a
    while to start): 49 steps in the 10 s after step 1 leave 50 steps, about 10 s."""
    clock = Clock()
    run = ("S", "random", 0)
    show = GridProgress("g", [run], 1, 100, stream=io.StringIO(), clock=clock)
    clock.t += 30.0  # spawning and importing
    show.start(run)
    clock.t += 30.0  # building the agent
    show.advance(run, 1)
    clock.t += 10.0
    show.advance(run, 50)
    assert show.eta_s() == pytest.approx(10.0)  # not (30 + 30 + 10) * 1
