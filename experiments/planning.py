"""What looking ahead is worth on the long-term scenarios: a paired per-user-return table.

For each scenario and seed (each seed draws its own world and catalog, as experiment grids do
with ``vary_world``), every policy serves the same users for one complete stay each (same user
streams: ``stay_returns`` resets the env with the seed), so returns pair user by user and seed by
seed:

* ``random``; the greedy oracle (``oracle``);
* the best **static tilt** of a :func:`~driftrec.agents.planner.tilt_family`, chosen on
  ``search_users`` other users of the same world (``static-tilt``), and the best on these very
  users (``static-tilt (in-sample)``: chosen on the users it is scored on, so it is optimistic);
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
from driftrec.agents.planner import (
    StaticTiltAgent,
    Tilt,
    family_returns,
    search_static_tilts,
    stay_returns,
    tilt_family,
)
from driftrec.envs.gym_env import DriftRecVectorEnv
from driftrec.envs.rng import slot_seeds
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


def _stay(agent: Any, env: DriftRecVectorEnv, seed: int, start: float) -> tuple[float, ...]:
    """Mean return and stay per user, and the CPU seconds since ``start`` (building included)."""
    ret, length = stay_returns(agent, env, seed)
    return float(ret.mean()), float(length.mean()), time.process_time() - start


def _one_seed(
    env: DriftRecVectorEnv,
    seed: int,
    family: Sequence[Tilt],
    planner_kwargs: Mapping[str, Any],
    learners: Sequence[str],
    search_users: int,
) -> dict[str, tuple[tuple[float, ...], str]]:
    """``{policy: ((return, stay, cpu seconds), label)}`` on the users of one seed."""
    out: dict[str, tuple[tuple[float, ...], str]] = {}
    for name in ("random", "oracle"):
        start = time.process_time()
        out[name] = (_stay(make_baseline(name, env, seed=seed), env, seed, start), "")
    start = time.process_time()
    # the static tilt a user of this world would pick: the best on other users of the world
    picked = search_static_tilts(env.config, family, num_users=search_users, seed=seed)[0].tilt
    agent = StaticTiltAgent(
        env, weight=picked.weight, direction=picked.direction, space=picked.space
    )
    out["static-tilt"] = (_stay(agent, env, seed, start), picked.label)
    # and the best tilt on these very users (chosen in-sample: an optimistic bound)
    start = time.process_time()
    means = family_returns(env.config, family, slot_seeds(seed, env.num_envs)).mean(axis=1)
    best = family[int(np.argmax(means))]  # the first of the best
    agent = StaticTiltAgent(env, weight=best.weight, direction=best.direction, space=best.space)
    value = _stay(agent, env, seed, start)
    if not math.isclose(value[0], float(means.max()), rel_tol=1e-9, abs_tol=1e-9):
        raise RuntimeError(
            f"static tilt {best.label}: {value[0]} in the env, {means.max()} batched"
        )
    out["static-tilt (in-sample)"] = (value, best.label)
    start = time.process_time()
    first = make_baseline("planner-first-order", env)
    out["planner-first-order"] = (_stay(first, env, seed, start), "")
    start = time.process_time()
    planner = make_baseline("planner", env, seed=seed, **planner_kwargs)
    out["planner"] = (_stay(planner, env, seed, start), f"base: {planner.base.label}")
    for name in learners:
        start = time.process_time()
        out[name] = (_stay(make_baseline(name, env, seed=seed), env, seed, start), "")
    return out


def planning_table(
    scenarios: Sequence[str] = LONG_TERM_SCENARIOS,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    *,
    num_users: int = 64,
    family: Sequence[Tilt] | None = None,
    planner_kwargs: Mapping[str, Any] | None = None,
    learners: Sequence[str] = (),
    search_users: int = 64,
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
        search_users: users (of the same world, not the evaluated ones) on which the static
            tilt is chosen.
        progress: called with a line after each seed (e.g. ``print``).
    """
    family = list(tilt_family(spaces=("logit", "log", "linear")) if family is None else family)
    out = []
    for name in scenarios:
        base = get_scenario(name).config
        policies: dict[str, PolicyResult] = {}
        for seed in seeds:
            # no oracle in info: nothing here reads it, and it costs a catalog product per step
            cfg = base.with_overrides(
                world_seed=int(seed), catalog_seed=int(seed), oracle_info=False
            )
            env = DriftRecVectorEnv(num_users, config=cfg)
            found = _one_seed(env, int(seed), family, planner_kwargs or {}, learners, search_users)
            for key, ((ret, length, cpu), label) in found.items():
                res = policies.setdefault(key, PolicyResult(key))
                res.returns.append(ret)
                res.lengths.append(length)
                res.seconds.append(cpu)
                res.labels.append(label)
                if progress is not None:
                    progress(
                        f"{name} seed {seed} {key}{' ' + label if label else ''}: "
                        f"{ret:.2f} per user, stay {length:.1f}, {cpu:.1f} CPU-s"
                    )
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
    lines += [
        "",
        "| scenario | seeds × users | static share of the planner's gain "
        "| best static tilt per seed | planner's base per seed |",
        "|---|---|---:|---|---|",
    ]
    for res in results:
        bases = [label.removeprefix("base: ") for label in res.policies["planner"].labels]
        lines.append(
            f"| {res.scenario} | {len(res.seeds)} × {res.num_users} | "
            f"{_fmt(res.static_share(), 3)} | {'; '.join(res.policies['static-tilt'].labels)} | "
            f"{'; '.join(bases)} |"
        )
    return "\n".join(lines) + "\n"
