"""What a grid shows while it runs: each run's step count and an ETA weighted by expected cost.

:class:`GridProgress` is fed by the runner: ``start`` and ``finish`` print the ``start`` and
``done`` line of a run; ``advance`` reports how many global steps a running run has done. Runs
in parallel worker processes report through a queue that the parent drains (the workers never
write to the console themselves, so their lines cannot garble the bar).

* On a terminal: one bar over the grid's *work*, with the runs in progress and their step
  counts beside it (``AbruptShift/attention-ppo/0 812/1536``), the elapsed time and the ETA.
* Elsewhere (a log file, CI): one plain line every :data:`PROGRESS_INTERVAL_S` seconds with
  the same facts, instead of a bar that would fill the log with carriage returns.

The ETA divides the time since the first step by the fraction of the *work* done, where
a run's work is its steps times the relative cost of its agent (:data:`RELATIVE_COST`,
measured on the demo's setup): a grid's PPO runs take most of its time, so counting runs would
promise an early end as soon as the cheap baselines are through (or a late one while the PPO
runs, which go first, are still running).
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from tqdm.auto import tqdm

__all__ = [
    "GridProgress",
    "RELATIVE_COST",
    "DEFAULT_COST",
    "PROGRESS_INTERVAL_S",
    "agent_cost",
    "format_duration",
    "run_label",
]

Run = tuple[str, str, int]

PROGRESS_INTERVAL_S = 5.0
"""Seconds between progress lines when the output is not a terminal."""

MIN_FRACTION_FOR_ETA = 0.02
"""No ETA ("?") before this share of the work is done: the first steps of a grid also build
its first world and agent, so an ETA from them would be hours."""

RELATIVE_COST: dict[str, float] = {
    "random": 1.0,
    "popularity": 1.0,
    "oracle": 1.0,
    "population-best": 1.0,
    "planner": 1.2,
    "planner-first-order": 1.2,
    "epsilon-greedy": 1.1,
    "thompson": 1.0,
    "linucb": 1.5,
    "linucb-discounted": 1.5,
    "linucb-window": 1.4,
    "history-similarity": 1.6,
    "attention-ppo": 18.0,
    "attention-a2c": 9.0,
    "attention-maskable-ppo": 20.0,
    "attention-dqn": 18.0,
    "id-ppo": 15.0,
    "mlp-ppo": 5.0,
}
"""CPU time of a run of each agent relative to a random recommender's (same steps, users and
catalog; the simulator and the metrics are the whole cost of the cheap baselines, about equal).
Measured with ``python bench/bench_run_costs.py`` on the demo's world (BENCHMARKS.md, "Progress
and ETA"); ``attention-dqn`` was not measured and is put at attention-ppo's. ``planner`` (the
rollout planner) is the greedy oracle in a world like the demo's, where nothing consumed lasts;
on the long-term scenarios it simulates every user's rest of the session each step and costs far
more (BENCHMARKS.md, "Planning that needs a plan"); ``planner-first-order`` is the old
``planner``, measured at 1.2."""

DEFAULT_COST = 3.0
"""The relative cost assumed for an agent not in :data:`RELATIVE_COST` (a user's agent): a
guess between a Python bandit (about 1.5) and a small torch learner (about 15)."""


def agent_cost(agent: str) -> float:
    """:data:`RELATIVE_COST` of ``agent`` (``-frozen`` variants cost as much as the agent)."""
    from driftrec.experiments.config import split_agent_name

    return RELATIVE_COST.get(split_agent_name(agent)[0], DEFAULT_COST)


def format_duration(seconds: float) -> str:
    """``"0:42"``, ``"12:05"``, ``"1:02:03"``."""
    s = max(0, int(round(seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def run_label(scenario: str, agent: str, seed: int) -> str:
    """``"AbruptShift/attention-ppo/0"``: a scenario file by its scenario's name, not its path."""
    from driftrec.envs.scenarios import get_scenario

    try:
        scenario = get_scenario(scenario).name
    except (TypeError, ValueError, OSError):
        pass
    return f"{scenario}/{agent}/{seed}"


def _label(run: Run) -> str:
    return run_label(*run)


class GridProgress:
    """Start/done lines, per-run step counts and a cost-weighted ETA for the runs of a grid.

    Args:
        name: the experiment's name (the bar's label).
        todo: the runs to do, as ``(scenario, agent, seed)``.
        total_runs: runs of the grid, finished ones included.
        steps: global steps per run.
        cost: the expected cost of one run (default: :func:`agent_cost` of its agent).
        enabled: False shows no bar and no progress lines (``--no-progress``); the start and
            done lines are printed either way.
        stream: where the bar or the progress lines go (default ``sys.stderr``); the start and
            done lines go to ``sys.stdout``.
        interval_s: seconds between progress lines off a terminal (default
            :data:`PROGRESS_INTERVAL_S`).
        clock: the time source (seconds), for tests.
    """

    def __init__(
        self,
        name: str,
        todo: Sequence[Run],
        total_runs: int,
        steps: int,
        *,
        cost: Callable[[Run], float] | None = None,
        enabled: bool = True,
        stream: TextIO | None = None,
        interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        cost_of = cost or (lambda run: agent_cost(run[1]))
        self.name = name
        self.steps = steps
        self.costs = {tuple(run): float(cost_of(tuple(run))) for run in todo}
        self.total_cost = sum(self.costs.values()) or 1.0
        self.total_runs = total_runs
        self.finished = total_runs - len(todo)
        self.done_cost = 0.0
        self.active: dict[Run, int] = {}
        self._started: set[Run] = set()
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s = PROGRESS_INTERVAL_S if interval_s is None else interval_s
        self._clock = clock
        self.t0 = clock()
        self._t_work: float | None = None  # when the first global step was reported
        self._last = self.t0
        self._bar: Any = None
        if enabled and todo and _isatty(self.stream):
            self._bar = tqdm(
                total=1000,
                desc=name,
                file=self.stream,
                bar_format="{desc}: {percentage:3.0f}%|{bar:20}|",
                leave=False,
            )

    # ---------------------------------------------------------------------------- figures
    def fraction(self) -> float:
        """Share of the work (cost-weighted) done, finished and running runs included."""
        running = sum(
            self.costs.get(run, 0.0) * min(n, self.steps) / self.steps
            for run, n in self.active.items()
        )
        return min(1.0, (self.done_cost + running) / self.total_cost)

    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (None before any work is done).

        The rate is measured from the first global step any run reports, so that starting
        the workers and building the first agents (importing torch, a minute on a busy small
        machine) is not taken for the pace of the work.
        """
        f = self.fraction()
        if f < MIN_FRACTION_FOR_ETA or self._t_work is None:
            return None
        return (self._clock() - self._t_work) * (1.0 - f) / f

    def status(self) -> str:
        """``"3/21 runs, 45% of the work, 1:20 elapsed, ETA 1:40; running: ..."``."""
        eta = self.eta_s()
        parts = [
            f"{self.finished}/{self.total_runs} runs",
            f"{100 * self.fraction():.0f}% of the work",
            f"{format_duration(self._clock() - self.t0)} elapsed",
            f"ETA {format_duration(eta) if eta is not None else '?'}",
        ]
        text = ", ".join(parts)
        if self.active:
            running = ", ".join(f"{_label(r)} {n}/{self.steps}" for r, n in self.active.items())
            text += f"; running: {running}"
        return text

    def _bar_text(self, room: int) -> str:
        """What follows the bar, within ``room`` characters: runs and times, then as many of
        the running runs' step counts as fit (one line, however many workers there are)."""
        eta = self.eta_s()
        text = (
            f"{self.finished}/{self.total_runs} runs "
            f"[{format_duration(self._clock() - self.t0)}<"
            f"{format_duration(eta) if eta is not None else '?'}]"
        )
        running = [f"{_label(r)} {n}/{self.steps}" for r, n in self.active.items()]
        for i, item in enumerate(running):
            more = len(running) - i - 1
            tail = f" +{more} more" if more else ""
            if len(text) + 2 + len(item) + len(tail) > room:
                return text + f" +{len(running) - i} more"
            text += f"; {item}" if i == 0 else f", {item}"
        return text

    # ---------------------------------------------------------------------------- events
    def write(self, text: str) -> None:
        """Print a line to stdout without breaking the bar."""
        if self._bar is not None:
            tqdm.write(text, file=sys.stdout)
        else:
            print(text, file=sys.stdout, flush=True)

    def start(self, run: Run) -> None:
        """A run started: print its ``start`` line (once; not after its ``done`` line)."""
        run = tuple(run)  # type: ignore[assignment]
        if run in self.active or run in self._started:
            return
        self._started.add(run)
        self.active[run] = 0
        self.write(f"start  {_label(run)}")
        self._show(force=self._bar is not None)

    def advance(self, run: Run, steps_done: int) -> None:
        """A running run has done ``steps_done`` global steps."""
        run = tuple(run)  # type: ignore[assignment]
        if run in self.active:
            self.active[run] = int(steps_done)
            if self._t_work is None and steps_done > 0:
                self._t_work = self._clock()
        self._show()

    def finish(self, run: Run, line: str) -> None:
        """A run finished: count its work and print its ``done`` line (after its ``start`` line,
        printed now if its worker's start message has not arrived yet)."""
        run = tuple(run)  # type: ignore[assignment]
        if run not in self._started:
            self.start(run)
        if self._t_work is None:  # a run that reported no step (too short): work from here
            self._t_work = self._clock()
        self.active.pop(run, None)
        self.done_cost += self.costs.get(run, 0.0)
        self.finished += 1
        self.write(line)
        self._show(force=self._bar is not None)

    def _show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self._clock()
        if self._bar is not None:
            if force or now - self._last >= 0.5:
                self._last = now
                room = shutil.get_terminal_size((100, 20)).columns - len(self.name) - 31
                text = self._bar_text(room).replace("{", "{{").replace("}", "}}")
                self._bar.bar_format = "{desc}: {percentage:3.0f}%|{bar:20}| " + text
                self._bar.n = round(1000 * self.fraction())
                self._bar.refresh()
            return
        if self.active and now - self._last >= self.interval_s:
            self._last = now
            print(f"progress  {self.status()}", file=self.stream, flush=True)

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
