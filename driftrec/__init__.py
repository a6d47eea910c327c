"""driftrec: a recommendation simulator whose users' interests drift.

Importing ``driftrec`` (or ``driftrec.envs``) registers every scenario with Gymnasium, so
``gymnasium.make("driftrec/Stationary-v1")`` works from any script. ``driftrec.envs`` needs only
numpy and gymnasium; everything else below is imported on first use (torch, SB3 and matplotlib
only when a name that needs them is used), so ``import driftrec`` stays cheap.

The public surface, in one place::

    env = driftrec.make("AbruptShift")                  # one user (gymnasium.make)
    venv = driftrec.make_vec("AbruptShift", num_envs=64)  # a batch of users, one numpy core
    driftrec.register_scenario("mine", "my_scenario.json")  # a scenario file, by name and id
    driftrec.register_agent("mine", MyAgent)            # then agents=("mine",) / --agents mine
    result = driftrec.evaluate(agent, venv, num_steps=1000, seed=0)   # an EvalResult
    driftrec.save_result(result, "runs/mine", scenario="AbruptShift", seed=0)
    driftrec.run_grid(driftrec.ExperimentConfig(agents=("random", "mymod:MyAgent")))
    runs = driftrec.load_results("runs/experiment")     # the saved runs
    driftrec.plot_adaptation(driftrec.aggregate(runs, "normalized_reward"), runs[0].events)
    driftrec.report("runs/experiment")                  # figures + report.md
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from driftrec import envs as envs
from driftrec.envs.scenarios import register_scenario

__version__ = "0.6.0"
"""Bumped whenever what a run produces changes (it is in every run's fingerprint)."""

if TYPE_CHECKING:
    from driftrec.agents.adapters import FunctionAgent
    from driftrec.agents.base import EvalResult, Recommender, evaluate
    from driftrec.agents.registry import build_agent, register_agent, registered_agents
    from driftrec.envs.sb3 import make_sb3_vec_env
    from driftrec.experiments.analysis import Run, aggregate, load_run, summary_table
    from driftrec.experiments.analysis import load_runs as load_results
    from driftrec.experiments.config import ExperimentConfig, load_config
    from driftrec.experiments.evaluate import evaluate_agent
    from driftrec.experiments.plots import (
        plot_adaptation,
        plot_attention,
        plot_interest_drift,
        plot_personalization,
        plot_recovery,
        plot_regret,
        save_figure,
    )
    from driftrec.experiments.report import write_figures
    from driftrec.experiments.report import write_report as report
    from driftrec.experiments.results import run_from_result, save_result
    from driftrec.experiments.runner import run_grid, run_one

_LAZY: dict[str, str] = {
    # agents: yours and ours
    "Recommender": "driftrec.agents.base:Recommender",
    "EvalResult": "driftrec.agents.base:EvalResult",
    "evaluate": "driftrec.agents.base:evaluate",
    "FunctionAgent": "driftrec.agents.adapters:FunctionAgent",
    "register_agent": "driftrec.agents.registry:register_agent",
    "registered_agents": "driftrec.agents.registry:registered_agents",
    "build_agent": "driftrec.agents.registry:build_agent",
    "make_sb3_vec_env": "driftrec.envs.sb3:make_sb3_vec_env",
    # experiments: compute -> save -> plot
    "ExperimentConfig": "driftrec.experiments.config:ExperimentConfig",
    "load_config": "driftrec.experiments.config:load_config",
    "run_grid": "driftrec.experiments.runner:run_grid",
    "run_one": "driftrec.experiments.runner:run_one",
    "evaluate_agent": "driftrec.experiments.evaluate:evaluate_agent",
    "save_result": "driftrec.experiments.results:save_result",
    "run_from_result": "driftrec.experiments.results:run_from_result",
    "Run": "driftrec.experiments.analysis:Run",
    "load_results": "driftrec.experiments.analysis:load_runs",
    "load_run": "driftrec.experiments.analysis:load_run",
    "aggregate": "driftrec.experiments.analysis:aggregate",
    "summary_table": "driftrec.experiments.analysis:summary_table",
    "plot_adaptation": "driftrec.experiments.plots:plot_adaptation",
    "plot_regret": "driftrec.experiments.plots:plot_regret",
    "plot_personalization": "driftrec.experiments.plots:plot_personalization",
    "plot_recovery": "driftrec.experiments.plots:plot_recovery",
    "plot_interest_drift": "driftrec.experiments.plots:plot_interest_drift",
    "plot_attention": "driftrec.experiments.plots:plot_attention",
    "save_figure": "driftrec.experiments.plots:save_figure",
    "report": "driftrec.experiments.report:write_report",
    "write_figures": "driftrec.experiments.report:write_figures",
}

__all__ = [
    "envs",
    "__version__",
    "make",
    "make_vec",
    "register_scenario",
    "Recommender",
    "EvalResult",
    "evaluate",
    "FunctionAgent",
    "register_agent",
    "registered_agents",
    "build_agent",
    "make_sb3_vec_env",
    "ExperimentConfig",
    "load_config",
    "run_grid",
    "run_one",
    "evaluate_agent",
    "save_result",
    "run_from_result",
    "Run",
    "load_results",
    "load_run",
    "aggregate",
    "summary_table",
    "plot_adaptation",
    "plot_regret",
    "plot_personalization",
    "plot_recovery",
    "plot_interest_drift",
    "plot_attention",
    "save_figure",
    "report",
    "write_figures",
]


def make(scenario: str = "Stationary", **kwargs: Any) -> Any:
    """One simulated user at a time: ``gymnasium.make`` of the scenario's id.

    Args:
        scenario: a scenario name (``"AbruptShift"``; ``driftrec scenarios`` lists them), a
            Gymnasium id (``"driftrec/AbruptShift-v1"``) or a scenario file; a file that was not
            registered (``register_scenario``) has no id, so it gives a plain
            :class:`~driftrec.envs.gym_env.DriftRecEnv` without Gymnasium's wrappers.
        **kwargs: ``gymnasium.make`` keywords and config overrides (``num_items=200``).
    """
    import gymnasium as gym

    from driftrec.envs.scenarios import registered_env_id

    if scenario.startswith("driftrec/"):
        return gym.make(scenario, **kwargs)
    found = envs.get_scenario(scenario)
    env_id = registered_env_id(found)
    if env_id is None:
        return envs.DriftRecEnv(found.config, **kwargs)
    return gym.make(env_id, **kwargs)


def make_vec(scenario: str = "Stationary", num_envs: int = 64, **overrides: Any) -> Any:
    """A batch of ``num_envs`` users stepped by one numpy core: a
    :class:`~driftrec.envs.gym_env.DriftRecVectorEnv` (a ``gymnasium.vector.VectorEnv``).

    Args:
        scenario: a scenario name, Gymnasium id or scenario file.
        num_envs: user slots.
        **overrides: config overrides (``num_items=200``, ``slate_size=10``).
    """
    return envs.DriftRecVectorEnv(num_envs, scenario=scenario, **overrides)


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'driftrec' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
