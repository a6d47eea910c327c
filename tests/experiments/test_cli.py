"""Tests of the ``driftrec`` command (driftrec.experiments.cli.main, run in-process)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from driftrec.agents.registry import AGENT_NAMES
from driftrec.envs.scenarios import list_scenarios
from driftrec.experiments.cli import main
from driftrec.experiments.config import ExperimentConfig

SUBCOMMANDS = ("scenarios", "agents", "train", "evaluate", "run", "plot", "report", "bench", "demo")
TINY_ENV = '{"num_items": 32}'
TRAIN = ["--steps", "16", "--num-envs", "4", "--log-every", "8", "--no-progress"]
GRID = ["--agents", "random,popularity", "--seeds", "0,1", "--steps", "16", "--log-every", "8"]
GRID += ["--num-envs", "4", "--shift-at", "8", "--no-progress"]


@pytest.fixture(autouse=True)
def _shared_text_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One text-embedding cache for the session: the packaged MiniLM encodes each catalog once."""
    monkeypatch.setenv("DRIFTREC_CACHE", str(tmp_path_factory.getbasetemp() / "driftrec-cache"))


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny bandit grid written by ``driftrec run`` (read-only for the tests using it)."""
    out = tmp_path_factory.mktemp("cli-exp")
    assert main(["run", *GRID, "--out-dir", str(out), "--name", "exp"]) == 0
    return out / "exp"


# --------------------------------------------------------------------------------------------
def test_scenarios(run_cli: Any) -> None:
    """``scenarios`` lists every scenario's Gymnasium id and description."""
    code, out, _ = run_cli("scenarios")
    assert code == 0
    for s in list_scenarios():
        assert s.env_id in out and s.description[:30] in out
    assert "driftrec/MovieLens-v1" in out and "pip install --no-deps recbole" in out
    lines = out.strip().splitlines()
    assert len(lines) == len(list_scenarios()) + 2  # + the calibrated one, + the --show hint
    assert lines[-1].startswith("(any of them as an editable file: driftrec scenarios --show")


def test_agents(run_cli: Any) -> None:
    """``agents`` lists every agent name."""
    code, out, _ = run_cli("agents")
    assert code == 0
    names = [line.split()[0] for line in out.strip().splitlines() if line.strip()]
    assert set(AGENT_NAMES) <= set(names)


def test_train(tmp_path: Path, run_cli: Any) -> None:
    """``train`` writes one finished run under OUT_DIR/train and prints its summary."""
    code, out, err = run_cli("train", "--scenario", "Stationary", "--agent", "random", *TRAIN,
        "--out-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    run_dir = tmp_path / "train" / "Stationary__random__0"
    assert (run_dir / "done.json").is_file() and (run_dir / "metrics.csv").is_file()
    assert "random" in out and str(run_dir) in out and "64 user-steps" in out
    assert len((run_dir / "metrics.csv").read_text().splitlines()) == 1 + 2


def test_run_with_report(tmp_path: Path, run_cli: Any) -> None:
    """``run --report`` runs the grid, then writes report.md and the PNG figures."""
    code, out, err = run_cli("run", *GRID, "--out-dir", str(tmp_path), "--report")
    assert code == 0, err
    exp = tmp_path / "experiment"
    runs = sorted(p.name for p in exp.iterdir() if p.is_dir())
    # the reference agent (the greedy oracle) runs on the same seeds as its own runs
    agents = ("oracle", "popularity", "random")
    assert runs == [f"AbruptShift__{a}__{s}" for a in agents for s in (0, 1)]
    assert f"6 runs in {exp}" in out
    assert (exp / "report.md").is_file() and f"report: {exp / 'report.md'}" in out
    report = (exp / "report.md").read_text()
    assert "## Return per user" in report and "## Metric definitions" in report
    assert "## Paired comparisons (headline)" in report
    assert "| AbruptShift | oracle | 2 |" in report
    # the console leads with the paired comparison against the best non-privileged baseline
    assert "AbruptShift: each agent minus `" in out and "WARNING: only 2 seeds" in out
    assert len(list(exp.glob("*.png"))) >= 2
    cfg = json.loads((exp / "experiment.json").read_text())
    assert cfg["shift_at"] == 8 and cfg["seeds"] == [0, 1]


def test_plot(tmp_path: Path, experiment: Path, run_cli: Any) -> None:
    """``plot EXP --out DIR`` writes the figures there and prints their paths."""
    code, out, err = run_cli("plot", str(experiment), "--out", str(tmp_path))
    assert code == 0, err
    printed = [Path(line) for line in out.strip().splitlines()]
    assert printed and all(p.suffix == ".png" and p.is_file() for p in printed)
    assert all(p.parent == tmp_path for p in printed)


def test_report(tmp_path: Path, experiment: Path, run_cli: Any) -> None:
    """``report EXP --out DIR`` writes report.md (and figures) and prints the summary table."""
    code, out, err = run_cli("report", str(experiment), "--out", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "report.md").is_file()
    assert "popularity" in out and "random" in out and "report:" in out
    assert list(tmp_path.glob("*.png"))


def test_report_compare_to(tmp_path: Path, experiment: Path, run_cli: Any) -> None:
    """``report --compare-to A`` compares every agent with A; an unknown agent is one line."""
    code, out, err = run_cli(
        "report", str(experiment), "--out", str(tmp_path), "--compare-to", "random"
    )
    assert code == 0, err
    assert "each agent minus `random`" in out and "chosen by the user" in out
    code, out, err = run_cli(
        "report", str(experiment), "--out", str(tmp_path), "--compare-to", "nobody"
    )
    assert code != 0 and "'compare_to' must be one of the experiment's agents" in err


def test_evaluate_sb3_checkpoint(tmp_path: Path, run_cli: Any) -> None:
    """``evaluate`` on a tiny attention-ppo train run prints normalized_reward and friends."""
    code, _, err = run_cli("train", "--scenario", "Stationary", "--agent", "attention-ppo", *TRAIN,
        "--env", TINY_ENV, "--out-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    run_dir = tmp_path / "train" / "Stationary__attention-ppo__0"
    assert (run_dir / "model.zip").is_file()
    code, out, err = run_cli("evaluate", str(run_dir), "--steps", "8", "--deterministic")
    assert code == 0, err
    values = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert values["agent"] == "attention-ppo" and values["user_steps"] == "32"
    assert 0.0 <= float(values["normalized_reward"]) <= 1.0 + 1e-9
    for key in ("reward", "expected_reward", "oracle_reward", "click_rate"):
        float(values[key])


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
        ),
    ],
)
def test_train_attention_ppo_on_a_device(tmp_path: Path, run_cli: Any, device: str) -> None:
    """``train --device D`` runs attention-ppo with its policy on D (the recorder's greedy and
    attention columns included) and saves a model that the safe loader opens on the CPU; the
    CUDA case runs where a CUDA device is present."""
    code, _, err = run_cli("train", "--scenario", "AbruptShift", "--agent", "attention-ppo",
        *TRAIN, "--shift-at", "8", "--env", TINY_ENV, "--device", device,
        "--out-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    run_dir = tmp_path / "train" / "AbruptShift__attention-ppo__0"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["device"] == device
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    last = dict(zip(header, rows[-1].split(","), strict=True))
    assert 0.0 < float(last["greedy_normalized_reward"]) <= 1.0 + 1e-9
    assert (run_dir / "attention.npz").is_file()
    from driftrec.experiments.evaluate import load_run_model, open_run

    cfg, env = open_run(run_dir)  # the safe loader: nothing unpickled, rebuilt on the CPU
    model = load_run_model(run_dir, cfg, env, seed=0)
    assert next(model.policy.parameters()).device.type == "cpu"


def test_evaluate_bandit_run_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_cli: Any
) -> None:
    """``evaluate`` on a bandit run exits 2 saying only SB3 agents save checkpoints."""
    assert main(["train", "--scenario", "Stationary", "--agent", "random", *TRAIN,
                 "--out-dir", str(tmp_path)]) == 0  # fmt: skip
    capsys.readouterr()
    run_dir = tmp_path / "train" / "Stationary__random__0"
    code, _, err = run_cli("evaluate", str(run_dir))
    assert code == 2
    assert f"driftrec evaluate: error: {run_dir / 'model.zip'} does not exist" in err
    assert "only SB3 agents save checkpoints" in err
    code, _, err = run_cli("evaluate", str(tmp_path / "nowhere"))
    assert code == 2 and "is " in err and "a run directory?" in err


def test_bench_wiring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any) -> None:
    """``bench --quick --json F`` passes its options to the benchmark (one cell here: fast)."""
    from driftrec.experiments import cli

    assert cli.BENCH_SCRIPT.parent.name == "bench"  # the benchmark lives in bench/, not the package
    bench = cli.load_bench()
    seen: list[list[str]] = []
    real_main = bench.main

    def one_cell(argv: list[str] | None = None) -> int:
        seen.append(list(argv or []))
        only = ["--no-sardine", "--only", "vector/Stationary/B=64/N=1000/no-oracle"]
        return real_main([*(argv or []), *only])

    monkeypatch.setattr(bench, "main", one_cell)
    monkeypatch.setattr(cli, "load_bench", lambda: bench)
    path = tmp_path / "bench.json"
    code, out, err = run_cli("bench", "--quick", "--json", str(path))
    assert code == 0, err
    assert seen == [["--quick", "--json", str(path)]]
    assert "driftrec simulator benchmark" in out
    assert json.loads(path.read_text())["cells"]


@pytest.mark.slow
def test_bench_quick_full(tmp_path: Path, run_cli: Any) -> None:
    """The whole ``bench --quick`` runs and writes its JSON (about 15 s)."""
    path = tmp_path / "bench.json"
    code, out, err = run_cli("bench", "--quick", "--json", str(path))
    assert code == 0, err
    assert "Targets:" in out and path.is_file()


def test_demo_wiring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any) -> None:
    """``demo`` passes --quick/--out-dir/--workers to get_config, runs the grid and reports."""
    from driftrec.experiments.configs import demo

    quick = demo.get_config(quick=True, out_dir="x", workers=1)
    assert (quick.num_envs, quick.steps, quick.shift_at) == (8, 128, 64)
    assert len(quick.agents) == 7 and quick.seeds == (0, 1) and quick.name == "demo-quick"
    full = demo.get_config()
    assert (full.num_envs, full.steps, full.shift_at, full.workers) == (32, 1536, 768, 2)
    assert full.seeds == (0, 1, 2, 3, 4)  # five seeds: intervals at small n are wide enough
    seen: list[dict[str, Any]] = []

    def tiny(**kwargs: Any) -> ExperimentConfig:
        seen.append(kwargs)
        return ExperimentConfig(
            name="demo-tiny", agents=("random",), seeds=(0,), num_envs=4, steps=16, log_every=8,
            shift_at=8, env_overrides={"num_items": 32}, out_dir=kwargs["out_dir"],
            workers=kwargs["workers"],
        )  # fmt: skip

    monkeypatch.setattr(demo, "get_config", tiny)
    code, out, err = run_cli(
        "demo", "--quick", "--workers", "1", "--out-dir", str(tmp_path), "--no-progress"
    )
    assert code == 0, err
    assert seen == [{"quick": True, "out_dir": str(tmp_path), "workers": 1}]
    exp = tmp_path / "demo-tiny"
    assert (exp / "report.md").is_file() and (exp / "AbruptShift__random__0" / "done.json").exists()
    assert "driftrec demo: agents random x seeds [0] on AbruptShift" in out
    assert "shift at step 8" in out and "demo finished in" in out

    # runs of another driftrec version are refused, naming --restart, which starts over
    import driftrec

    monkeypatch.setattr(driftrec, "__version__", "99.0.0")
    args = ("demo", "--workers", "1", "--out-dir", str(tmp_path), "--no-progress")
    code, out, err = run_cli(*args)
    assert code != 0 and "driftrec_version" in err and "--restart" in err
    code, out, err = run_cli(*args, "--restart")
    assert code == 0, err
    config = json.loads((exp / "AbruptShift__random__0" / "config.json").read_text())
    assert config["driftrec_version"] == "99.0.0"


@pytest.mark.slow
def test_demo_quick_full(tmp_path: Path, run_cli: Any) -> None:
    """The real ``demo --quick --workers 1``: 5 agents x 2 seeds, report and figures (~1 min)."""
    code, out, err = run_cli(
        "demo", "--quick", "--workers", "1", "--out-dir", str(tmp_path), "--no-progress"
    )
    assert code == 0, err
    exp = tmp_path / "demo-quick"
    assert len([d for d in exp.iterdir() if (d / "done.json").is_file()]) == 10
    assert (exp / "report.md").is_file() and list(exp.glob("*.png"))


@pytest.mark.parametrize("command", ["train", "run"])
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--steps", "0"], "'steps' must be an integer >= 1 (got 0)"),
        (["--env", '{"num_items": 0}'], "'num_items' must be an integer in [1, 10000000] (got 0)"),
        (["--env", "notjson"], "argument --env: expected a JSON object (got 'notjson'"),
        (["--env", "[1]"], "argument --env: expected a JSON object (got '[1]')"),
        (["--log-every", "99"], "'log_every' must be an integer in [1, 16] (got 99)"),
    ],
    ids=["steps0", "num_items0", "notjson", "jsonlist", "log_every"],
)
def test_bad_input_exits_2_without_runs(
    tmp_path: Path,
    run_cli: Any,
    command: str,
    flags: list[str],
    message: str,
) -> None:
    """Bad values exit with code 2, a message naming the field and value, and no run directory."""
    base = ["--steps", "16", "--log-every", "8", "--num-envs", "4", "--no-progress"]
    code, out, err = run_cli(command, *base, *flags, "--out-dir", str(tmp_path / "out"))
    assert code == 2
    assert message in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--agents", "nope"], "unknown agent 'nope' in 'agents': expected one of"),
        (["train", "--agent", "nope"], "unknown agent 'nope' in 'agents': expected one of"),
        (["train", "--scenario", "Nope"], "'scenario' must be one of"),
        (["run", "--seeds", "a,b"], "argument --seeds: expected a comma-separated list of int"),
        (["run", "--shift-at", "99", "--steps", "16", "--log-every", "8"], "'shift_at' must be"),
    ],
    ids=["agents", "agent", "scenario", "seeds", "shift_at"],
)
def test_bad_names_exit_2_without_runs(
    tmp_path: Path, run_cli: Any, argv: list[str], message: str
) -> None:
    """Unknown agents or scenarios and malformed lists exit 2 naming the value; nothing is run."""
    code, _, err = run_cli(*argv, "--no-progress", "--out-dir", str(tmp_path / "out"))
    assert code == 2
    assert message in err
    assert not (tmp_path / "out").exists()


def test_run_config_file_and_bad_config_file(tmp_path: Path, run_cli: Any) -> None:
    """``run --config F`` reads F (flags override it); a malformed F exits 2 naming the file."""
    path = tmp_path / "exp.json"
    path.write_text(
        json.dumps({"name": "cfg", "scenarios": ["Stationary"], "agents": ["random"],
                    "seeds": [3], "steps": 99, "log_every": 8, "num_envs": 4})
    )  # fmt: skip
    code, _, err = run_cli(
        "run", "--config", str(path), "--steps", "16", "--out-dir", str(tmp_path), "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    run_dir = tmp_path / "cfg" / "Stationary__random__3"
    assert json.loads((run_dir / "done.json").read_text())["global_steps"] == 16
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    code, _, err = run_cli("run", "--config", str(bad), "--out-dir", str(tmp_path / "o"))
    assert code == 2 and f"{bad}: not valid JSON" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_of_every_subcommand(capsys: pytest.CaptureFixture[str], command: str) -> None:
    """``driftrec COMMAND --help`` exits 0 and lists the command's options."""
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: driftrec {command}")
    assert "-h, --help" in out
    expected = {
        "train": ["--scenario", "--agent", "--seed", "--steps", "--num-envs", "--env"],
        "run": ["--config", "--agents", "--seeds", "--workers", "--shift-at", "--report"],
        "evaluate": ["run_dir", "--steps", "--seed", "--deterministic"],
        "plot": ["exp_dir", "--out"],
        "report": ["exp_dir", "--out"],
        "bench": ["--quick", "--json"],
        "demo": ["--out-dir", "--quick", "--workers", "--no-progress"],
    }.get(command, [])
    for option in expected:
        assert option in out, option


def test_top_level_help_and_missing_command(
    capsys: pytest.CaptureFixture[str], run_cli: Any
) -> None:
    """``driftrec --help`` lists every subcommand; no subcommand is a usage error (exit 2)."""
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert command in out
    code, _, err = run_cli()
    assert code == 2 and "usage: driftrec" in err


def test_console_script_help() -> None:
    """The installed ``driftrec`` console script runs and prints its help."""
    exe = Path(sys.executable).parent / "driftrec"
    script = str(exe) if exe.is_file() else shutil.which("driftrec")
    assert script is not None, "the driftrec console script is not installed"
    proc = subprocess.run(
        [script, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: driftrec")
    assert "train" in proc.stdout and "demo" in proc.stdout
