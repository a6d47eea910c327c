"""A user's own agent through the whole pipeline: grid, resume, workers, CLI, report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftrec.agents import registry
from driftrec.agents.base import EvalResult
from driftrec.envs.drift import DriftEvent
from driftrec.experiments.analysis import load_runs, summary_table
from driftrec.experiments.config import ExperimentConfig, dir_name_part, from_dir_name_part
from driftrec.experiments.guard import SettingsChanged
from driftrec.experiments.results import result_rows, run_from_result, save_result
from driftrec.experiments.runner import run_grid

MODULE = '''
import numpy as np

import driftrec


class MyAgent:
    """Click counts plus noise: the most clicked items so far."""

    def __init__(self, env, seed=0):
        self.num_items = env.single_action_space.n
        self.rng = np.random.default_rng(seed)
        self.clicks = np.zeros(self.num_items)

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        noise = self.rng.random((obs.shape[0], self.num_items))
        return (self.clicks + noise).argmax(axis=1), None

    def update(self, obs, action, reward, next_obs, done, info):
        np.add.at(self.clicks, action, reward)


def bad(obs):
    return np.zeros((obs.shape[0], 3), dtype=np.int64)


driftrec.register_agent("my-counts", MyAgent, description="click counts")
'''


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``pipeagents`` importable from ``tmp_path/src`` (also by spawned workers)."""
    src = tmp_path / "src"
    src.mkdir()
    path = src / "pipeagents.py"
    path.write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(src))
    sys.modules.pop("pipeagents", None)
    saved = dict(registry._REGISTRY)
    yield path
    sys.modules.pop("pipeagents", None)
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def _grid(out: Path, **kwargs: Any) -> ExperimentConfig:
    base: dict[str, Any] = {
        "name": "mine",
        "scenarios": ("Stationary",),
        "agents": ("random", "pipeagents:MyAgent"),
        "seeds": (0, 1),
        "num_envs": 4,
        "steps": 24,
        "log_every": 8,
        "env_overrides": {"num_items": 32},
        "out_dir": str(out),
        "reference_agent": None,
    }
    return ExperimentConfig(**{**base, **kwargs})


def test_dir_names_round_trip() -> None:
    """Agent names become directory names without '/' or ':' and come back exactly."""
    for name in ("random", "my_agent", "pkg.mod:Agent", "models/ppo v2.zip", "a%3Ab", r"C:\m.zip"):
        part = dir_name_part(name)
        assert not set(part) & set('<>:"/\\|?* ') and from_dir_name_part(part) == name
    assert dir_name_part("attention-ppo-frozen") == "attention-ppo-frozen"
    assert dir_name_part("pkg.mod:Agent") == "pkg.mod%3AAgent"


def test_grid_with_a_user_agent(user_module: Path, tmp_path: Path) -> None:
    """Runs, config, fingerprint source and report name the user's agent."""
    cfg = _grid(tmp_path / "out")
    dirs = run_grid(cfg, progress=False)
    names = sorted(d.name for d in dirs)
    assert names == [
        "Stationary__pipeagents%3AMyAgent__0",
        "Stationary__pipeagents%3AMyAgent__1",
        "Stationary__random__0",
        "Stationary__random__1",
    ]
    config = json.loads(
        (cfg.run_dir("Stationary", "pipeagents:MyAgent", 0) / "config.json").read_text()
    )
    assert config["agent"] == "pipeagents:MyAgent"
    assert config["agent_source"]["entry_point"] == "pipeagents:MyAgent"
    assert config["agent_source"]["file"] == "pipeagents.py"
    runs = load_runs(cfg.experiment_dir)
    assert {r.agent for r in runs} == {"random", "pipeagents:MyAgent"}
    rows = summary_table(runs)
    assert [r["agent"] for r in rows] == ["pipeagents:MyAgent", "random"]
    from driftrec.experiments.report import write_report

    report = write_report(cfg.experiment_dir).read_text()
    assert "pipeagents:MyAgent" in report
    assert not any(":" in p.name for p in cfg.experiment_dir.iterdir())  # figure names too
    from driftrec.experiments.recorder import tensorboard_available

    if tensorboard_available():  # driftrec's metrics in TensorBoard, for the user's agent too
        user_run = cfg.run_dir("Stationary", "pipeagents:MyAgent", 0)
        assert list(user_run.glob("events.out.tfevents.*"))

    # resume: the same code is reused; changed code is refused naming the change
    assert run_grid(cfg, progress=False) == dirs
    user_module.write_text(user_module.read_text() + "\n# tuned\n")
    with pytest.raises(SettingsChanged, match="the agent's code changed \\(sha256 '"):
        run_grid(cfg, progress=False)


def test_broken_agent_writes_nothing(user_module: Path, tmp_path: Path) -> None:
    """A predict of the wrong shape is refused before the experiment directory exists."""
    cfg = _grid(tmp_path / "out", agents=("random", "pipeagents:bad"))
    with pytest.raises(
        ValueError,
        match=re.escape("agent 'pipeagents:bad': predict returned actions of shape (4, 3)"),
    ):
        run_grid(cfg, progress=False)
    assert not (tmp_path / "out").exists()
    from driftrec.experiments.runner import run_one

    with pytest.raises(ValueError, match=re.escape("agent 'pipeagents:bad': predict returned")):
        run_one(cfg, "Stationary", "pipeagents:bad", 0, progress=False)  # as driftrec train does
    assert not (tmp_path / "out").exists()


def test_registered_agents_in_parallel_workers(user_module: Path, tmp_path: Path) -> None:
    """Names registered by an 'imports' module, or only in this process, run in spawned
    workers exactly as in one process."""
    import pipeagents

    registry.register_agent("parent-only", pipeagents.MyAgent)  # never registered in a worker
    agents = ("my-counts", "parent-only")
    one = run_grid(_grid(tmp_path / "one", agents=agents, imports=("pipeagents",)), progress=False)
    two = run_grid(
        _grid(tmp_path / "two", agents=agents, imports=("pipeagents",), workers=2),
        progress=False,
    )
    assert [d.name for d in two] == [
        "Stationary__my-counts__0",
        "Stationary__my-counts__1",
        "Stationary__parent-only__0",
        "Stationary__parent-only__1",
    ]
    for a, b in zip(one, two, strict=True):
        assert (a / "metrics.csv").read_text() == (b / "metrics.csv").read_text()


def test_cli_run_import_and_agents(user_module: Path, tmp_path: Path, run_cli: Any) -> None:
    """--import makes a registered name known to 'agents', 'run' and 'evaluate --agent'."""
    code, out, err = run_cli("agents", "--import", "pipeagents")
    assert code == 0, err
    assert re.search(r"^my-counts +click counts$", out, re.M)
    code, out, err = run_cli(
        "run", "--import", "pipeagents", "--agents", "my-counts,pipeagents:MyAgent",
        "--scenarios", "Stationary", "--seeds", "0", "--steps", "16", "--log-every", "8",
        "--num-envs", "4", "--env", '{"num_items": 32}', "--out-dir", str(tmp_path),
        "--no-progress", "--report",
    )  # fmt: skip
    assert code == 0, err
    assert "my-counts" in out and "pipeagents:MyAgent" in out
    code, out, err = run_cli(
        "evaluate", "--agent", "pipeagents:MyAgent", "--scenario", "Stationary", "--steps", "8",
        "--num-envs", "4", "--env", '{"num_items": 32}',
    )  # fmt: skip
    assert code == 0, err
    assert re.search(r"^agent +pipeagents:MyAgent$", out, re.M)
    assert re.search(r"^user_steps +32$", out, re.M)
    code, _, err = run_cli("run", "--import", "nosuchpkg", "--agents", "random")
    assert code == 2 and "'imports': module 'nosuchpkg' not found" in err


def test_version_flag(run_cli: Any) -> None:
    """driftrec --version prints the package version."""
    import driftrec

    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"driftrec {driftrec.__version__}"


# --------------------------------------------------------------------------------------------
# EvalResults into the pipeline's files


def _result() -> EvalResult:
    """Five steps of two users; a population shift on step index 2."""
    return EvalResult(
        agent="mine:Agent",
        num_envs=2,
        reward=np.array([0.0, 1.0, 0.5, 0.5, 1.0]),
        expected_reward=np.array([0.2, 0.4, 0.3, 0.5, 0.6]),
        oracle_expected_reward=np.array([0.8, 0.8, 0.6, 1.0, 1.0]),
        click_rate=np.array([0.0, 1.0, 0.5, 0.5, 1.0]),
        sessions_finished=np.array([0, 1, 0, 2, 0]),
        terminated=np.array([0, 1, 0, 0, 0]),
        drift_events=np.array([0, 0, int(DriftEvent.POPULATION_SHIFT), 0, 0], dtype=np.int32),
    )


def test_result_rows_by_hand() -> None:
    """Windows of 2 steps: means, ratio of means, cumulative regret, sessions and churn."""
    rows = result_rows(_result(), log_every=2)
    assert [r["step"] for r in rows] == [2, 4, 5]
    assert [r["env_steps"] for r in rows] == [4, 8, 10]
    # window 1: expected (0.2 + 0.4) / 2 = 0.3, oracle 0.8 -> ratio 0.375; regret 0.5
    assert rows[0]["normalized_reward"] == pytest.approx(0.375)
    assert rows[0]["regret"] == pytest.approx(0.5)
    # cumulative regret after 4 steps: 0.6 + 0.4 + 0.3 + 0.5 = 1.8
    assert rows[1]["cum_regret"] == pytest.approx(1.8)
    # window 2: 2 sessions ended, none by leaving; window 1: 1 of 1 left
    assert (rows[0]["churn"], rows[1]["churn"], rows[1]["sessions"]) == (1.0, 0.0, 2)
    assert rows[1]["drift_event"] == int(DriftEvent.POPULATION_SHIFT)
    assert np.isnan(rows[2]["churn"]) and np.isnan(rows[0]["diversity"])


def test_save_result_then_report(tmp_path: Path) -> None:
    """A saved EvalResult is a run the report reads; the shift is marked; no overwrite."""
    run_dir = save_result(_result(), tmp_path / "exp", scenario="AbruptShift", seed=3, log_every=2)
    assert run_dir.name == "AbruptShift__mine%3AAgent__3"
    run = load_runs(tmp_path / "exp")[0]
    assert (run.agent, run.seed, run.event_steps()) == ("mine:Agent", 3, [3])
    memory = run_from_result(_result(), scenario="AbruptShift", seed=3, log_every=2)
    for key in ("step", "normalized_reward", "cum_regret"):
        assert np.array_equal(memory.metric(key), run.metric(key))
    from driftrec.experiments.report import write_report

    text = write_report(tmp_path / "exp").read_text()
    assert "mine:Agent" in text and "population shift @ 3" in text
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        save_result(_result(), tmp_path / "exp", scenario="AbruptShift", seed=3)


# --------------------------------------------------------------------------------------------
# the public surface


def test_import_driftrec_is_cheap() -> None:
    """import driftrec loads neither torch, SB3 nor matplotlib; each name then resolves."""
    code = (
        "import sys, driftrec; heavy = [m for m in ('torch', 'stable_baselines3', 'matplotlib', "
        "'transformers') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
    import driftrec

    for name in driftrec.__all__:
        assert getattr(driftrec, name) is not None, name
    with pytest.raises(AttributeError, match="module 'driftrec' has no attribute 'nope'"):
        driftrec.nope  # noqa: B018


def test_make_and_make_vec() -> None:
    """make is gymnasium.make of the scenario id; make_vec a batched vector env."""
    import driftrec

    env = driftrec.make("AbruptShift", num_items=40)
    assert env.spec.id == "driftrec/AbruptShift-v1"
    assert env.action_space.n == 40
    venv = driftrec.make_vec("abrupt-shift", num_envs=3, num_items=40)
    obs, _ = venv.reset(seed=0)
    assert obs.shape[0] == 3 and venv.single_action_space.n == 40


def test_make_a_scenario_file(tmp_path: Path) -> None:
    """An unregistered scenario file has no Gymnasium id: make gives a plain DriftRecEnv."""
    import driftrec

    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps({"drift": {"processes": [{"kind": "AbruptShift", "at_steps": [9]}]}})
    )
    env = driftrec.make(str(path), num_items=40)
    assert type(env).__name__ == "DriftRecEnv" and env.action_space.n == 40
    assert driftrec.make_vec(str(path), num_envs=2, num_items=40).reset(seed=1)[0].shape[0] == 2


def test_a_runs_model_zip_needs_no_trust(tmp_path: Path) -> None:
    """A driftrec run's model.zip is an agent on another scenario without trust: the model is
    rebuilt from the run's config.json and gets the saved weights (nothing unpickled)."""
    from driftrec.agents.registry import build_agent
    from driftrec.experiments.evaluate import read_checkpoint

    small = {"seeds": (0,), "steps": 16, "log_every": 8, "vary_world": False}
    [trained] = run_grid(_grid(tmp_path / "train", agents=("mlp-ppo",), **small), progress=False)
    path = str(trained / "model.zip")
    cfg = _grid(tmp_path / "eval", scenarios=("AbruptShift",), agents=(path,), **small)
    [run_dir] = run_grid(cfg, progress=False)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["agent"] == path and config["agent_source"]["kind"] == "sb3-zip"
    assert run_dir.name == f"AbruptShift__{dir_name_part(path)}__0"
    built = build_agent(path, cfg.run_env_config("AbruptShift", 0), num_envs=4, seed=5)
    saved, _ = read_checkpoint(path)
    for key, value in built.agent.policy.state_dict().items():
        assert np.array_equal(value.numpy(), saved[key].numpy()), key
