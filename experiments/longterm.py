"""Long-horizon learning: does a learner beat the greedy oracle over whole stays on fresh users?

``bench/bench_longterm.py`` runs it; ``tests/agents/test_longterm_learner_slow.py`` asserts the
claim. For each seed (its own world and catalog, ``world_seed = catalog_seed = seed``, as
experiment grids draw them with ``vary_world``):

1. every learner in ``agents`` is trained online on ``num_envs`` users for ``steps`` global steps
   (``num_envs * steps`` env-steps; the registry's defaults, or ``agent_kwargs``);
2. every ``eval_every`` steps it is frozen and acts **greedily** (``deterministic=True``, no
   learning) on ``eval_users`` **fresh users**: user streams it never trained on (the eval env is
   reset with ``eval_seed_offset + seed``, the training env with ``seed``; every slot owns its
   own stream, so no eval user appears in training). Each fresh user stays once (at most
   ``max_steps``, leaving included) and the return per user over that stay is recorded: the
   learning curve, against env-steps;
3. on the same fresh users (identical user streams): the greedy one-step oracle and the planner
   (both PRIVILEGED: they read the true interests and satisfaction), and the myopic ``baseline``
   learner (``linucb-discounted``), trained online on the same budget and then, as it always
   does, learning online while it acts on the fresh users (its best mode: it also adapts to each
   fresh user's feedback).

With ``select_users > 0`` the learner keeps the snapshot that earned the most on a *validation*
env of other fresh users (reset with ``select_seed_offset + seed``: neither its training users
nor the test users above), checked at every evaluation after training began, in the spirit of
stable-baselines3's ``EvalCallback``: it reads only the rewards of its own greedy actions, so it
is not privileged. The validation stays are environment steps the learner spends, so they count
in its budget: ``SeedResult.select_env_steps`` holds them, and :attr:`LongTermSetting.budget`
adds their worst case (every validation user stays ``max_steps``) to the training env-steps.
The test users' returns (the learning curve) never choose anything.

Per seed the summary holds each policy's mean return per user, its ratio to the oracle's, the
share of its fresh users lost within :data:`EARLY_LEAVE_STEPS` steps, and paired differences
over the same fresh users (learner minus oracle, learner minus baseline: mean and 95%
Student-t interval over users). Over seeds: the mean of the per-seed values and
the paired interval over seeds (``n = len(seeds)``, Student t). A claim of "beats" needs every
seed above and the over-seed interval above 0.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from numpy.typing import NDArray

from driftrec.envs.config import EnvConfig, check_int
from driftrec.experiments.analysis import Stat, mean_ci

__all__ = [
    "LongTermSetting",
    "SeedResult",
    "world_config",
    "fresh_user_returns",
    "reference_returns",
    "run_seed",
    "run_study",
    "EARLY_LEAVE_STEPS",
    "summarize",
    "format_summary",
    "plot_learning_curves",
]

#: The privileged references run on the fresh users of every seed.
REFERENCES: tuple[str, ...] = ("oracle", "planner")
#: A stay this short counts as a user lost early: with the default patience (20 steps, 1.5 back
#: per click) a user who clicks nothing leaves at step 20. The greedy oracle loses none of the
#: LongTerm test users this early; the long-horizon learner 6-8% (BENCHMARKS.md).
EARLY_LEAVE_STEPS = 30


@dataclass(frozen=True)
class LongTermSetting:
    """What the study trains and how it evaluates.

    Attributes:
        scenario: the long-term scenario.
        agents: the learners (registry names), each trained from scratch on every seed.
        baseline: the myopic learner they must beat (trained on the same budget).
        num_envs: user slots stepped together while training.
        steps: global training steps (``num_envs * steps`` env-steps; 4,096 x 64 = 262,144).
        eval_every: global steps between two greedy evaluations (the learning curve).
        eval_users: fresh users per evaluation, one whole stay each.
        eval_seed_offset: the eval env is reset with ``eval_seed_offset + seed``.
        select_users: validation users per evaluation for keeping the best snapshot (0: the
            final policy counts; see the module docs).
        select_seed_offset: the validation env is reset with ``select_seed_offset + seed``.
        agent_kwargs: per-agent overrides, as for ``driftrec run --agent-kwargs``.
        env_overrides: world overrides (``EnvConfig.with_overrides`` keys, e.g. ``num_items``).
    """

    scenario: str = "LongTerm"
    agents: tuple[str, ...] = ("attention-ppo-long",)
    baseline: str = "linucb-discounted"
    num_envs: int = 64
    steps: int = 4096
    eval_every: int = 512
    eval_users: int = 256
    eval_seed_offset: int = 1_000_000
    select_users: int = 0
    select_seed_offset: int = 2_000_000
    agent_kwargs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    env_overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("num_envs", "steps", "eval_every", "eval_users"):
            check_int(name, getattr(self, name), 1)
        check_int("eval_seed_offset", self.eval_seed_offset, 0)
        check_int("select_users", self.select_users, 0)
        check_int("select_seed_offset", self.select_seed_offset, 0)
        if self.select_users and self.select_seed_offset == self.eval_seed_offset:
            raise ValueError(
                f"'select_seed_offset' must differ from 'eval_seed_offset' (both "
                f"{self.eval_seed_offset}): the validation users must not be the test users"
            )
        if not self.agents:
            raise ValueError("'agents' must name at least one learner (got ())")
        unknown = set(self.agent_kwargs) - set(self.agents) - {self.baseline}
        if unknown:
            raise ValueError(
                f"'agent_kwargs' names agents that are not run: {sorted(unknown)} "
                f"(agents {list(self.agents)}, baseline {self.baseline!r})"
            )

    @property
    def env_steps(self) -> int:
        """Training env-steps per learner and seed (``num_envs * steps``)."""
        return self.num_envs * self.steps

    @property
    def selections(self) -> int:
        """Validation checks per learner and seed (every evaluation after the first)."""
        if not self.select_users:
            return 0
        return -(-self.steps // self.eval_every)  # ceil: one after every training chunk

    def budget(self, max_steps: int) -> int:
        """Worst-case env-steps per learner and seed: training plus every validation user
        staying ``max_steps`` (the session's cap) at every check."""
        return self.env_steps + self.selections * self.select_users * max_steps

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (to tell finished seeds of the same setting apart)."""
        out = asdict(self)
        out["agents"] = list(self.agents)
        out["agent_kwargs"] = {k: dict(v) for k, v in self.agent_kwargs.items()}
        out["env_overrides"] = dict(self.env_overrides)
        return out


@dataclass
class SeedResult:
    """One seed's results (per-user arrays over the same fresh users, in slot order).

    Attributes:
        seed: the run seed (world, catalog and training users).
        returns: policy name -> ``(eval_users,)`` return per fresh user over one stay; the
            learners' entries are their final (greedy) policies.
        lengths: the same for the stay lengths.
        curves: learner -> ``{"env_steps": [...], "user_return": [...]}`` (mean over the fresh
            users after each evaluation; the first point is before any training).
        seconds: learner -> wall seconds of its training (evaluations excluded).
        select_env_steps: learner -> env-steps its validation stays took (0 without
            ``select_users``); they count in its budget.
        selected: learner -> training env-steps of the snapshot kept (the last one without
            ``select_users``).
    """

    seed: int
    returns: dict[str, NDArray[np.float64]]
    lengths: dict[str, NDArray[np.float64]]
    curves: dict[str, dict[str, list[float]]]
    seconds: dict[str, float]
    select_env_steps: dict[str, int] = field(default_factory=dict)
    selected: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (arrays as lists)."""
        return {
            "seed": self.seed,
            "returns": {k: v.tolist() for k, v in self.returns.items()},
            "lengths": {k: v.tolist() for k, v in self.lengths.items()},
            "curves": self.curves,
            "seconds": self.seconds,
            "select_env_steps": self.select_env_steps,
            "selected": self.selected,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SeedResult:
        """Inverse of :meth:`to_dict`."""
        return cls(
            seed=int(data["seed"]),
            returns={k: np.asarray(v, dtype=np.float64) for k, v in data["returns"].items()},
            lengths={k: np.asarray(v, dtype=np.float64) for k, v in data["lengths"].items()},
            curves={k: dict(v) for k, v in data["curves"].items()},
            seconds={k: float(v) for k, v in data["seconds"].items()},
            select_env_steps={k: int(v) for k, v in data.get("select_env_steps", {}).items()},
            selected={k: float(v) for k, v in data.get("selected", {}).items()},
        )


def world_config(scenario: str, seed: int, overrides: Mapping[str, Any] | None = None) -> EnvConfig:
    """The scenario's world for ``seed``: its own world and catalog (``vary_world``), with
    ``overrides`` applied first."""
    from driftrec.envs.scenarios import get_scenario

    config = get_scenario(scenario).config
    if overrides:
        config = config.with_overrides(**overrides)
    return config.with_overrides(world_seed=seed, catalog_seed=seed)


def fresh_user_returns(
    make_agent: Callable[[Any], Any],
    config: EnvConfig,
    seed: int,
    num_users: int,
    *,
    learn: bool = False,
    deterministic: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return and length of one whole stay of each of ``num_users`` fresh users.

    Args:
        make_agent: called with the eval env, returns the policy (a ``Recommender`` or an SB3
            model: anything with ``predict(obs, deterministic=...)``).
        config: the world.
        seed: the eval env's reset seed (slot ``i`` gets its own stream of it).
        num_users: users (slots), each followed to the end of its first stay.
        learn: call the agent's ``update`` after every step (bandit baselines).
        deterministic: passed to ``predict`` (True: greedy).

    Returns:
        ``(returns, lengths)``, each ``(num_users,)``.
    """
    from driftrec.agents.online import StepRecord, run_policy
    from driftrec.envs.gym_env import DriftRecVectorEnv

    env = DriftRecVectorEnv(num_users, config)
    env.reset(seed=seed)
    agent = make_agent(env)
    total = np.zeros(num_users)
    length = np.zeros(num_users)
    alive = np.ones(num_users, dtype=bool)

    def record(step: StepRecord) -> bool:
        total[:] += step.reward * alive
        length[:] += alive
        alive[:] &= ~(step.terminated | step.truncated)
        return bool(alive.any())

    # every stay ends (left or truncated at max_steps): the hook stops the loop
    run_policy(agent, env, sys.maxsize, learn=learn, on_step=record, deterministic=deterministic)
    return total, length


def reference_returns(
    config: EnvConfig, seed: int, num_users: int
) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """``(returns, lengths)`` of each PRIVILEGED reference (:data:`REFERENCES`) over one stay of
    ``num_users`` fresh users of the env reset with ``seed`` (:func:`fresh_user_returns`). The
    references are seeded with ``seed`` too: the planner's rollouts draw random numbers, and
    unseeded its returns moved between runs of the same seed."""
    from driftrec.agents.baselines import make_baseline

    return {
        ref: fresh_user_returns(
            lambda env, ref=ref: make_baseline(ref, env, seed=seed), config, seed, num_users
        )
        for ref in REFERENCES
    }


def run_seed(
    setting: LongTermSetting,
    seed: int,
    *,
    log: Callable[[str], None] | None = None,
) -> SeedResult:
    """Train and evaluate everything of ``setting`` on one seed (see the module docs)."""
    from driftrec.agents.online import run_online
    from driftrec.agents.registry import build_agent

    say = log or (lambda _: None)
    config = world_config(setting.scenario, seed, setting.env_overrides)
    eval_seed = setting.eval_seed_offset + seed
    returns: dict[str, NDArray[np.float64]] = {}
    lengths: dict[str, NDArray[np.float64]] = {}

    def evaluate(name: str, make: Callable[[Any], Any], **kwargs: Any) -> float:
        ret, ln = fresh_user_returns(make, config, eval_seed, setting.eval_users, **kwargs)
        returns[name], lengths[name] = ret, ln
        return float(ret.mean())

    for ref, (ret, ln) in reference_returns(config, eval_seed, setting.eval_users).items():
        returns[ref], lengths[ref] = ret, ln
        say(f"seed {seed}: {ref} (PRIVILEGED) {ret.mean():.2f} per user")
    oracle = float(returns["oracle"].mean())

    base = build_agent(
        setting.baseline,
        config,
        num_envs=setting.num_envs,
        seed=seed,
        agent_kwargs=setting.agent_kwargs.get(setting.baseline),
    )
    run_online(base.agent, base.env, setting.steps)
    value = evaluate(setting.baseline, lambda _: base.agent, learn=True, deterministic=False)
    say(f"seed {seed}: {setting.baseline} {value:.2f} per user (learning on the fresh users)")

    curves: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, float] = {}
    select_steps: dict[str, int] = {}
    selected: dict[str, float] = {}
    for name in setting.agents:
        built = build_agent(
            name,
            config,
            num_envs=setting.num_envs,
            seed=seed,
            agent_kwargs=setting.agent_kwargs.get(name),
        )
        curve: dict[str, list[float]] = {"env_steps": [], "user_return": []}
        done, spent, spent_steps = 0, 0.0, 0
        best: tuple[float, int, Any, Any] | None = None  # validation return, step, weights, test
        while True:
            value = evaluate(name, lambda _, m=built.agent: m)
            curve["env_steps"].append(float(done * setting.num_envs))
            curve["user_return"].append(value)
            note = ""
            if setting.select_users and done > 0:
                check, stays = fresh_user_returns(
                    lambda _, m=built.agent: m,
                    config,
                    setting.select_seed_offset + seed,
                    setting.select_users,
                )
                spent_steps += int(stays.sum())
                note = f"; validation {check.mean():.2f}"
                if best is None or check.mean() > best[0]:
                    weights = copy.deepcopy(built.agent.policy.state_dict())
                    best = (float(check.mean()), done, weights, (returns[name], lengths[name]))
                    note += " (kept)"
            say(
                f"seed {seed}: {name} after {done * setting.num_envs:,} env-steps: "
                f"{value:.2f} per user ({value / oracle:.3f} of the oracle; {spent:.0f} s{note})"
            )
            if done >= setting.steps:
                break
            start = time.perf_counter()
            chunk = min(setting.eval_every, setting.steps - done)
            done += run_online(built.agent, built.env, chunk)
            spent += time.perf_counter() - start
        kept = done
        if best is not None:  # the snapshot the validation users chose, and its test returns
            kept = best[1]
            built.agent.policy.load_state_dict(best[2])
            returns[name], lengths[name] = best[3]
            say(
                f"seed {seed}: {name} keeps the snapshot after {kept * setting.num_envs:,} "
                f"env-steps: {returns[name].mean():.2f} per user "
                f"({returns[name].mean() / oracle:.3f} of the oracle); validation stays took "
                f"{spent_steps:,} env-steps (budget used {done * setting.num_envs + spent_steps:,})"
            )
        curves[name] = curve
        seconds[name] = spent
        select_steps[name] = spent_steps
        selected[name] = float(kept * setting.num_envs)
    return SeedResult(seed, returns, lengths, curves, seconds, select_steps, selected)


def run_study(
    setting: LongTermSetting,
    seeds: Sequence[int],
    *,
    out: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> list[SeedResult]:
    """:func:`run_seed` for every seed; with ``out`` (a JSON file) each finished seed is written
    at once (atomically) and seeds already there with the same setting are reused."""
    from driftrec.experiments.io import atomic_write_json

    done: dict[int, SeedResult] = {}
    path = Path(out) if out is not None else None
    if path is not None and path.exists():
        import json

        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("setting") == setting.to_dict():
            done = {int(r["seed"]): SeedResult.from_dict(r) for r in data.get("seeds", [])}
        else:
            raise ValueError(
                f"{path} holds results of another setting ({data.get('setting')}); pass "
                "another output file or delete it"
            )
    results = []
    for seed in seeds:
        if seed in done:
            if log is not None:
                log(f"seed {seed}: finished in {path}, reused")
            results.append(done[seed])
            continue
        results.append(run_seed(setting, seed, log=log))
        done[seed] = results[-1]
        if path is not None:
            atomic_write_json(
                path,
                {
                    "setting": setting.to_dict(),
                    "seeds": [done[s].to_dict() for s in sorted(done)],
                },
            )
    return results


def _paired(a: NDArray[np.float64], b: NDArray[np.float64]) -> Stat:
    return mean_ci(a - b)


def summarize(results: Sequence[SeedResult], setting: LongTermSetting) -> dict[str, dict[str, Any]]:
    """Per policy: per-seed and over-seed return, ratio to the oracle and paired differences.

    Keys per policy: ``return`` and ``ratio`` (:class:`Stat` over seeds), ``per_seed`` (list of
    per-seed dicts with ``return``, ``ratio``, ``stay``, ``left_early`` (the share of stays of
    at most :data:`EARLY_LEAVE_STEPS` steps), and for learners ``minus_oracle`` and
    ``minus_baseline``, each a :class:`Stat` over the fresh users), and for learners
    ``minus_oracle`` / ``minus_baseline`` (:class:`Stat` over seeds of the per-seed mean
    differences).
    """
    names = [*REFERENCES, setting.baseline, *setting.agents]
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        per_seed = []
        for r in results:
            ret = r.returns[name]
            row: dict[str, Any] = {
                "seed": r.seed,
                "return": float(ret.mean()),
                "ratio": float(ret.mean() / r.returns["oracle"].mean()),
                "stay": float(r.lengths[name].mean()),
                "left_early": float((r.lengths[name] <= EARLY_LEAVE_STEPS).mean()),
            }
            if name in setting.agents:
                row["minus_oracle"] = _paired(ret, r.returns["oracle"])
                row["minus_baseline"] = _paired(ret, r.returns[setting.baseline])
            per_seed.append(row)
        entry: dict[str, Any] = {
            "return": mean_ci([p["return"] for p in per_seed]),
            "ratio": mean_ci([p["ratio"] for p in per_seed]),
            "stay": mean_ci([p["stay"] for p in per_seed]),
            "left_early": mean_ci([p["left_early"] for p in per_seed]),
            "per_seed": per_seed,
        }
        if name in setting.agents:
            for key in ("minus_oracle", "minus_baseline"):
                entry[key] = mean_ci([p[key].mean for p in per_seed])
        out[name] = entry
    return out


def _stat(stat: Stat, decimals: int = 2, sign: bool = False) -> str:
    fmt = f"{{:{'+' if sign else ''}.{decimals}f}}"
    if stat.n < 2:
        return fmt.format(stat.mean)
    return f"{fmt.format(stat.mean)} [{fmt.format(stat.lo)}, {fmt.format(stat.hi)}]"


def format_summary(summary: Mapping[str, Mapping[str, Any]], setting: LongTermSetting) -> str:
    """Markdown: the return table over seeds, then the learners' paired differences per seed."""
    seeds = [p["seed"] for p in next(iter(summary.values()))["per_seed"]]
    lines = [
        f"{setting.scenario}: {setting.num_envs} users x {setting.steps:,} steps = "
        f"{setting.env_steps:,} training env-steps per learner; greedy on {setting.eval_users} "
        f"fresh users per seed (one stay each); seeds {seeds}",
        "",
        "| policy | return per user | per seed | stay (steps) "
        f"| left within {EARLY_LEAVE_STEPS} steps | return / oracle |",
        "|---|---:|---|---:|---:|---:|",
    ]
    labels = {"oracle": "oracle (greedy, PRIVILEGED)", "planner": "planner (PRIVILEGED)"}
    labels[setting.baseline] = f"{setting.baseline} (learning on the fresh users)"
    for name, entry in summary.items():
        per_seed = " / ".join(f"{p['return']:.2f}" for p in entry["per_seed"])
        lines.append(
            f"| {labels.get(name, name + ' (greedy)')} | {_stat(entry['return'])} | {per_seed} | "
            f"{_stat(entry['stay'], 1)} | {_stat(entry['left_early'], 3)} | "
            f"{_stat(entry['ratio'], 3)} |"
        )
    lines.append("")
    lines.append("Paired differences in return per user (same fresh users; 95% intervals):")
    lines.append("")
    lines.append(f"| learner | vs | over seeds | {' | '.join(f'seed {s}' for s in seeds)} |")
    lines.append("|---|---|---|" + "---|" * len(seeds))
    for name in setting.agents:
        for key, ref in (("minus_oracle", "oracle"), ("minus_baseline", setting.baseline)):
            cells = " | ".join(_stat(p[key], sign=True) for p in summary[name]["per_seed"])
            lines.append(f"| {name} | {ref} | {_stat(summary[name][key], sign=True)} | {cells} |")
    return "\n".join(lines) + "\n"


def plot_learning_curves(
    results: Sequence[SeedResult], setting: LongTermSetting, ax: Axes | None = None
) -> Axes:
    """Return ratio (greedy, fresh users) against the oracle vs training env-steps.

    One thin line per seed and learner, the mean over seeds bold; the baseline's and the
    planner's mean ratios as labelled horizontal lines, the oracle at 1.
    """
    from driftrec.experiments.plots import _new_axes, agent_colors

    ax = _new_axes(ax)
    colors = agent_colors(list(setting.agents) + [setting.baseline, "planner"])
    for name in setting.agents:
        curves = []
        for r in results:
            steps = np.asarray(r.curves[name]["env_steps"])
            ratio = np.asarray(r.curves[name]["user_return"]) / r.returns["oracle"].mean()
            ax.plot(steps, ratio, color=colors[name], alpha=0.35, linewidth=1.0)
            curves.append(ratio)
        length = min(len(c) for c in curves)
        mean = np.mean([c[:length] for c in curves], axis=0)
        ax.plot(steps[:length], mean, color=colors[name], linewidth=2.2, label=f"{name} (greedy)")
    right = max(max(r.curves[n]["env_steps"]) for r in results for n in setting.agents)
    for name, style in ((setting.baseline, "--"), ("planner", ":")):
        ratios = [r.returns[name].mean() / r.returns["oracle"].mean() for r in results]
        level = float(np.mean(ratios))
        ax.axhline(level, color=colors[name], linestyle=style, linewidth=1.2)
        ax.annotate(
            f"{name} {level:.2f}",
            (right, level),
            xytext=(-4, 3),
            textcoords="offset points",
            ha="right",
            va="bottom",
            color=colors[name],
            fontsize=8,
        )
    ax.axhline(1.0, color="black", linewidth=1.0)
    ax.annotate(
        "greedy oracle (PRIVILEGED) = 1",
        (0, 1.0),
        xytext=(4, 3),
        textcoords="offset points",
        fontsize=8,
    )
    ax.set_xlabel("training env-steps")
    ax.set_ylabel("return per fresh user / greedy oracle's")
    ax.set_title(
        f"{setting.scenario}: learning curve on fresh users ({len(results)} "
        f"seed{'s' if len(results) != 1 else ''}, "
        f"{setting.eval_users} users each)"
    )
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return ax
