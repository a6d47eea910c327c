"""What looking ahead is worth on the long-term scenarios: a paired per-user-return table.

For each scenario and seed (each seed draws its own world and catalog, as experiment grids do
with ``vary_world``), every policy serves the same users for one complete stay each (same user
streams: ``stay_returns`` resets the env with the seed), so returns pair user by user and seed by
seed:

* ``random``; the greedy oracle (``oracle``);
* the best **static tilt**: every policy of a :func:`~driftrec.agents.planner.tilt_family` is run
  on these very users and the best is reported (chosen in-sample, which favours it);
* ``planner-first-order`` (the closed-form lookahead) and ``planner`` (rollouts on the true
  model, :class:`~driftrec.agents.planner.RolloutPlanner`);
* optional learners (``linucb-discounted``, ``history-similarity``): they learn online during
  the stay, from nothing, so they show what a few hundred users' feedback buys, not a ceiling.

:func:`planning_table` computes it and :func:`format_planning_table` prints it; the headline
per scenario is the **static share**: the best static tilt's gain over the greedy oracle divided
by the planner's gain (per seed, then a mean and 95% interval over seeds).
``bench/bench_planning.py`` and ``tests/agents/test_planner_slow.py`` run it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftrec.agents.baselines import make_baseline
from driftrec.agents.planner import StaticTiltAgent, Tilt, stay_returns, tilt_family
from driftrec.envs.gym_env import DriftRecVectorEnv
from driftrec.envs.scenarios import get_scenario
from driftrec.experiments.analysis import Stat, mean_ci

__all__ = [
    "LONG_TERM_SCENARIOS",
    "PolicyResult",
    "ScenarioResult",
    "planning_table",
    "format_planning_table",
]

LONG_TERM_SCENARIOS = ("LongTerm", "LongTermBoredom", "LongTermAversion")


@dataclass
class PolicyResult:
    """One policy on one scenario: per-seed mean return and stay length per user."""

    name: str
    returns: list[float] = field(default_factory=list)  # per seed
    lengths: list[float] = field(default_factory=list)  # per seed
    seconds: list[float] = field(default_factory=list)  # per seed: CPU time of the stay
    labels: list[str] = field(default_factory=list)  # per seed (the static tilt chosen)


@dataclass
class ScenarioResult:
    """Every policy on one scenario, seeds in the same order."""

    scenario: str
    seeds: list[int]
    num_users: int
    policies: dict[str, PolicyResult]

    def stat(self, name: str) -> Stat:
        """Mean and 95% interval over seeds of a policy's per-user return."""
        return mean_ci(self.policies[name].returns)

    def paired(self, name: str, reference: str) -> Stat:
        """Mean and 95% interval over seeds of ``name``'s return minus ``reference``'s."""
        a, b = self.policies[name].returns, self.policies[reference].returns
        return mean_ci(np.subtract(a, b))

    def ratio(self, name: str, reference: str = "oracle") -> Stat:
        """Per-seed return ratio to ``reference``, mean and interval over seeds."""
        a, b = self.policies[name].returns, self.policies[reference].returns
        return mean_ci(np.divide(a, b))

    def static_share(self) -> Stat:
        """Per seed: (best static - greedy) / (planner - greedy); mean and interval."""
        g = np.asarray(self.policies["oracle"].returns)
        s = np.asarray(self.policies["static-tilt"].returns)
        p = np.asarray(self.policies["planner"].returns)
        return mean_ci((s - g) / np.where(p - g != 0, p - g, math.nan))


def _run(agent_factory: Callable[[DriftRecVectorEnv], Any], env: DriftRecVectorEnv, seed: int):
    start = time.process_time()
    agent = agent_factory(env)
    ret, length = stay_returns(agent, env, seed)
    return float(ret.mean()), float(length.mean()), time.process_time() - start


def planning_table(
    scenarios: Sequence[str] = LONG_TERM_SCENARIOS,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    *,
    num_users: int = 64,
    family: Sequence[Tilt] | None = None,
    planner_kwargs: Mapping[str, Any] | None = None,
    learners: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
) -> list[ScenarioResult]:
    """Run every policy on every scenario and seed (see the module docs).

    Args:
        scenarios: scenario names.
        seeds: each seed is one world, catalog and set of ``num_users`` users.
        num_users: users per seed (one complete stay each).
        family: the static tilts searched (default :func:`tilt_family` over the three score
            spaces).
        planner_kwargs: passed to the ``planner`` (e.g. ``{"samples": 4, "horizon": 20}``).
        learners: non-privileged agents to add (learning online during the stay).
        progress: called with a line after each policy (e.g. ``print``).
    """
    family = list(tilt_family(spaces=("logit", "log", "linear")) if family is None else family)
    out = []
    for name in scenarios:
        base = get_scenario(name).config
        policies: dict[str, PolicyResult] = {}

        def record(key: str, value: tuple[float, float, float], label: str = "") -> None:
            res = policies.setdefault(key, PolicyResult(key))
            res.returns.append(value[0])
            res.lengths.append(value[1])
            res.seconds.append(value[2])
            res.labels.append(label)
            if progress is not None:
                progress(
                    f"{name} seed {seed} {key}{' ' + label if label else ''}: "
                    f"{value[0]:.2f} per user, stay {value[1]:.1f}, {value[2]:.1f} CPU-s"
                )

        for seed in seeds:
            cfg = base.with_overrides(world_seed=int(seed), catalog_seed=int(seed))
            env = DriftRecVectorEnv(num_users, config=cfg)
            for agent in ("random", "oracle"):
                record(agent, _run(lambda e, a=agent: make_baseline(a, e, seed=seed), env, seed))
            best: tuple[float, float, float] | None = None
            best_tilt = Tilt()
            start = time.process_time()
            for tilt in family:
                value = _run(
                    lambda e, t=tilt: StaticTiltAgent(
                        e, weight=t.weight, direction=t.direction, space=t.space
                    ),
                    env,
                    seed,
                )
                if best is None or value[0] > best[0]:
                    best, best_tilt = value, tilt
            assert best is not None
            record("static-tilt", (best[0], best[1], time.process_time() - start), best_tilt.label)
            record(
                "planner-first-order",
                _run(lambda e: make_baseline("planner-first-order", e), env, seed),
            )
            kwargs = dict(planner_kwargs or {})
            planner_label: list[str] = []

            def make_planner(e: DriftRecVectorEnv, kw: dict[str, Any] = kwargs) -> Any:
                agent = make_baseline("planner", e, seed=seed, **kw)
                planner_label.append(agent.base.label)
                return agent

            record("planner", _run(make_planner, env, seed), f"base: {planner_label[-1]}")
            for agent in learners:
                record(agent, _run(lambda e, a=agent: make_baseline(a, e, seed=seed), env, seed))
        out.append(ScenarioResult(name, [int(s) for s in seeds], num_users, policies))
    return out


def _fmt(stat: Stat, decimals: int = 2) -> str:
    if stat.n == 0 or not math.isfinite(stat.mean):
        return "–"
    text = f"{stat.mean:.{decimals}f}"
    if stat.n > 1:
        text += f" ± {stat.half_width:.{decimals}f}"
    return text


def format_planning_table(results: Sequence[ScenarioResult]) -> str:
    """Markdown: per scenario and policy the return per user, the ratio to the greedy oracle,
    the paired difference to the best static tilt, the stay, and CPU time; then the static
    share per scenario. Intervals are 95% Student-t over seeds."""
    lines = [
        "| scenario | policy | return per user | / greedy oracle | − best static tilt (paired) "
        "| stay | CPU s per seed |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        for name, pol in res.policies.items():
            diff = "–" if name == "static-tilt" else _fmt(res.paired(name, "static-tilt"))
            lines.append(
                f"| {res.scenario} | {name} | {_fmt(res.stat(name))} | "
                f"{_fmt(res.ratio(name), 3)} | {diff} | {np.mean(pol.lengths):.1f} | "
                f"{np.mean(pol.seconds):.1f} |"
            )
    lines.append("")
    lines.append("| scenario | seeds × users | static share of the planner's gain | best static tilt per seed | planner's base per seed |")
    lines.append("|---|---|---:|---|---|")
    for res in results:
        lines.append(
            f"| {res.scenario} | {len(res.seeds)} × {res.num_users} | "
            f"{_fmt(res.static_share(), 3)} | {'; '.join(res.policies['static-tilt'].labels)} | "
            f"{'; '.join(l.removeprefix('base: ') for l in res.policies['planner'].labels)} |"
        )
    return "\n".join(lines) + "\n"
