"""Scenario files and registered scenarios in experiment grids; scoped --shift-at; --env JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftrec.envs import scenarios as sc
from driftrec.envs.config import DriftConfig, EnvConfig
from driftrec.envs.drift import AbruptShift, Boredom, GradualDrift
from driftrec.envs.scenarios import load_scenario_file, register_scenario, unregister_scenario
from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.recorder import TENSORBOARD_TAGS, tensorboard_available
from driftrec.experiments.report import write_report
from driftrec.experiments.runner import run_grid

MY_SCENARIO = {
    "description": "A shift at step 16 and boredom.",
    "catalog": {"num_items": 32},
    "drift": {
        "processes": [{"kind": "AbruptShift", "at_steps": [16]}, {"kind": "Boredom", "gain": 0.3}]
    },
}


def _raises(exc: type[Exception], msg: str) -> Any:
    return pytest.raises(exc, match=f"^{re.escape(msg)}$")


@pytest.fixture(autouse=True)
def _clean_registry(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Scenarios registered by a test are removed after it; one text cache for the session."""
    monkeypatch.setenv("DRIFTREC_CACHE", str(tmp_path_factory.getbasetemp() / "driftrec-cache"))
    before = set(sc._REGISTERED)
    yield
    for name in set(sc._REGISTERED) - before:
        unregister_scenario(name)


def _file(tmp_path: Path, name: str = "my_scenario.json", data: Any = None) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(MY_SCENARIO if data is None else data))
    return path


def _grid(tmp_path: Path, **kwargs: Any) -> ExperimentConfig:
    base: dict[str, Any] = {
        "name": "files",
        "agents": ("random", "popularity"),
        "seeds": (0,),
        "num_envs": 4,
        "steps": 32,
        "log_every": 8,
        "out_dir": str(tmp_path / "runs"),
        "reference_agent": None,
    }
    return ExperimentConfig(**{**base, **kwargs})


def test_file_and_registered_scenarios_run_in_spawned_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A grid of a scenario file and a scenario registered in this process only, run by two
    spawned workers: the run directories, config, events and report name the file's scenario
    and show its own drift events; the workers' step counts reach the parent's console."""
    from driftrec.experiments import progress

    monkeypatch.setattr(progress, "PROGRESS_INTERVAL_S", 0.0)
    path = _file(tmp_path)
    register_scenario("Registered", EnvConfig().with_overrides(num_items=32, max_steps=10))
    cfg = _grid(tmp_path, scenarios=(str(path), "Registered"), workers=2)
    dirs = run_grid(cfg, progress=True)
    out, err = capsys.readouterr()
    starts = sorted(line for line in out.splitlines() if line.startswith("start  "))
    assert starts == sorted(f"start  {d.name.replace('__', '/')}" for d in dirs)
    counts = [line for line in err.splitlines() if line.startswith("progress  ")]
    assert counts and all(re.search(r"running: \S+/\S+/0 \d+/32", line) for line in counts)
    assert sorted(d.name for d in dirs) == sorted(
        f"{s}__{a}__0" for s in ("my_scenario", "Registered") for a in ("random", "popularity")
    )
    for d in dirs:
        conf = json.loads((d / "config.json").read_text())
        events = json.loads((d / "events.json").read_text())["events"]
        if d.name.startswith("my_scenario"):
            assert conf["scenario"] == "my_scenario" and conf["scenario_file"] == str(path)
            assert conf["env_id"] is None  # a file: no Gymnasium id makes it
            assert conf["env_config"]["drift"]["processes"][1] == {
                "kind": "boredom",
                "gain": 0.3,
                "decay": 0.1,
            }
            assert events == [{"step": 16, "kind": "population_shift"}]
        else:
            assert conf["scenario"] == "Registered" and "scenario_file" not in conf
            assert conf["env_id"] == "driftrec/Registered-v1"
            assert conf["env_config"]["session"]["max_steps"] == 10
            assert events == []
    report = write_report(cfg.experiment_dir).read_text()
    assert f"## Scenario `my_scenario` (from `{path}`)" in report
    assert f"- Drift in `my_scenario` (scenario file `{path}`): abrupt (at_steps [16]" in report
    assert "| `my_scenario` | popularity, random | 1 | population shift @ 16 |" in report
    assert "- Drift in `Registered`: none" in report


@pytest.mark.skipif(not tensorboard_available(), reason="needs the tensorboard package")
def test_tensorboard_event_file_for_every_run_baselines_included(tmp_path: Path) -> None:
    """Every run of a grid (baselines and the oracle reference) has an event file with
    driftrec's metrics under driftrec/<metric>, read back by TensorBoard's EventAccumulator."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = _grid(tmp_path, scenarios=("Stationary",), reference_agent="oracle")
    cfg = ExperimentConfig(**{**cfg.__dict__, "env_overrides": {"num_items": 32, "max_steps": 10}})
    dirs = run_grid(cfg, progress=False)
    assert len(dirs) == 3
    for d in dirs:
        assert len(list(d.glob("events.out.tfevents.*"))) == 1
        acc = EventAccumulator(str(d))
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        assert {"driftrec/normalized_reward", "driftrec/user_return", "driftrec/regret"} <= tags
        assert tags <= set(TENSORBOARD_TAGS.values())
        rows = (d / "metrics.csv").read_text().splitlines()
        header = rows[0].split(",")
        values = [float(r.split(",")[header.index("normalized_reward")]) for r in rows[1:]]
        scalars = acc.Scalars("driftrec/normalized_reward")
        assert [s.step for s in scalars] == [8, 16, 24, 32]
        assert [s.value for s in scalars] == pytest.approx(values, rel=1e-6)


def test_without_tensorboard_a_note_and_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the tensorboard package the grid runs, says so in one line, writes no events."""
    from driftrec.experiments import recorder, runner

    monkeypatch.setattr(recorder, "tensorboard_available", lambda: False)
    monkeypatch.setattr(runner, "tensorboard_available", lambda: False)
    cfg = _grid(tmp_path, scenarios=("Stationary",), env_overrides={"num_items": 32})
    dirs = run_grid(cfg, progress=False)
    out = capsys.readouterr().out
    note = (
        "note: no TensorBoard logs (the tensorboard package is not installed); for them: "
        'pip install "driftrec[tensorboard]"'
    )
    assert out.splitlines().count(note) == 1
    assert [list(d.glob("events.out.tfevents.*")) for d in dirs] == [[], []]


@pytest.mark.skipif(not tensorboard_available(), reason="needs the tensorboard package")
def test_a_redone_run_leaves_no_stale_event_file(tmp_path: Path) -> None:
    """A run interrupted before its done.json is redone from scratch: only the new run's event
    file is left in its directory."""
    cfg = _grid(
        tmp_path, scenarios=("Stationary",), agents=("random",), env_overrides={"num_items": 32}
    )
    (d,) = run_grid(cfg, progress=False)
    (old,) = d.glob("events.out.tfevents.*")
    (d / "done.json").unlink()  # as if interrupted just before the end
    run_grid(cfg, progress=False)
    (new,) = d.glob("events.out.tfevents.*")
    assert new.name != old.name and (d / "done.json").is_file()


def test_bad_scenario_file_fails_before_any_run_directory(tmp_path: Path, run_cli: Any) -> None:
    """driftrec run with a bad scenario file: one line naming the file and key path, exit 2,
    nothing written."""
    bad = _file(tmp_path, "bad.json", {"drift": {"processes": [{"kind": "boredom", "gain": -2}]}})
    out_dir = tmp_path / "runs"
    code, out, err = run_cli(
        "run", "--scenarios", str(bad), "--agents", "random", "--out-dir", str(out_dir)
    )
    assert code == 2
    assert err.splitlines()[0] == (
        f"driftrec run: error: scenario file {bad}: 'drift.processes[0].gain' (Boredom) must be "
        "in [0.0, 100.0] (got -2)"
    )
    assert not out_dir.exists()


def test_scenarios_show_prints_an_editable_file(tmp_path: Path, run_cli: Any) -> None:
    """`driftrec scenarios --show NAME` prints JSON that, saved as a file, is the same world."""
    code, out, _ = run_cli("scenarios", "--show", "Mixed")
    assert code == 0
    path = tmp_path / "edited.json"
    path.write_text(out)
    assert load_scenario_file(path).config == sc.get_scenario("Mixed").config
    assert json.loads(out)["description"] == sc.get_scenario("Mixed").description
    code, out, _ = run_cli("scenarios", "--show", str(path))
    assert code == 0 and load_scenario_file(path).config == sc.get_scenario("Mixed").config
    code, out, _ = run_cli("scenarios")
    assert "driftrec scenarios --show NAME > my.json" in out


def test_shift_at_scoped_to_named_scenarios(tmp_path: Path) -> None:
    """shift_at={scenario: step} changes only the scenarios it names; a file by path or name."""
    path = _file(tmp_path)
    cfg = _grid(
        tmp_path,
        scenarios=("AbruptShift", "Stationary", str(path)),
        steps=2000,
        shift_at={"AbruptShift": 1500, "my_scenario": 700},
    )
    assert cfg.env_config("AbruptShift").drift.get(AbruptShift).at_steps == (1500,)
    assert cfg.env_config("Stationary").drift.get(AbruptShift) is None
    assert cfg.env_config(str(path)).drift.get(AbruptShift).at_steps == (700,)
    assert cfg.shift_at_note() is None
    assert ExperimentConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with _raises(
        ValueError,
        "'shift_at' names 'Boredom', which is not a scenario of this grid; expected one of "
        "['AbruptShift', 'Stationary']",
    ):
        _grid(tmp_path, scenarios=("AbruptShift", "Stationary"), shift_at={"Boredom": 5})
    with _raises(ValueError, "'shift_at['AbruptShift']' must be an integer in [1, 32] (got 40)"):
        _grid(tmp_path, scenarios=("AbruptShift",), shift_at={"AbruptShift": 40})


def test_plain_shift_at_keeps_its_meaning_and_warns_in_a_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bare shift_at still applies to every scenario; with several the grid says so."""
    cfg = _grid(tmp_path, scenarios=("AbruptShift", "Stationary"), shift_at=16)
    assert cfg.env_config("Stationary").drift.get(AbruptShift).at_steps == (16,)
    note = (
        "note: --shift-at 16 (shift_at=16) applies to every scenario of the grid (AbruptShift, "
        "Stationary): each gets a population shift at step 16 in place of its own schedule; to "
        "change one scenario only, use --shift-at AbruptShift=16 (shift_at={'AbruptShift': 16})"
    )
    assert cfg.shift_at_note() == note
    assert _grid(tmp_path, scenarios=("AbruptShift",), shift_at=16).shift_at_note() is None
    run_grid(
        _grid(
            tmp_path,
            scenarios=("AbruptShift", "Stationary"),
            agents=("random",),
            shift_at=16,
            env_overrides={"num_items": 32},
        ),
        progress=False,
    )
    assert note in capsys.readouterr().out.splitlines()


def test_cli_shift_at_forms(run_cli: Any, tmp_path: Path) -> None:
    """--shift-at takes STEP or SCENARIO=STEP[,...]; a malformed value is refused by argparse."""
    from driftrec.experiments.cli import _shift_at

    assert _shift_at("1500") == 1500
    assert _shift_at("AbruptShift=1500, my.json=800") == {"AbruptShift": 1500, "my.json": 800}
    code, _, err = run_cli("run", "--shift-at", "AbruptShift=soon")
    assert code == 2
    assert (
        "argument --shift-at: expected STEP or SCENARIO=STEP[,SCENARIO=STEP] (got "
        "'AbruptShift=soon')" in err
    )


def test_env_overrides_take_the_file_form_and_objects(tmp_path: Path) -> None:
    """--env's JSON may hold sections in the file form; DriftConfig objects become that form."""
    processes = [{"kind": "Boredom", "gain": 0.3}]
    by_json = _grid(
        tmp_path, scenarios=("AbruptShift",), env_overrides={"drift": {"processes": processes}}
    )
    by_object = _grid(
        tmp_path,
        scenarios=("AbruptShift",),
        env_overrides={"drift": DriftConfig(processes=(Boredom(gain=0.3),))},
    )
    assert by_json.env_config("AbruptShift").drift.processes == (Boredom(gain=0.3),)
    assert by_object.env_config("AbruptShift").drift.processes == (Boredom(gain=0.3),)
    data = json.loads(json.dumps(by_object.to_dict()))  # no longer "cannot write DriftConfig"
    assert data["env_overrides"]["drift"]["processes"] == [
        {"kind": "boredom", "gain": 0.3, "decay": 0.1}
    ]
    assert ExperimentConfig.from_dict(data).env_config("AbruptShift") == by_object.env_config(
        "AbruptShift"
    )
    seeded = _grid(
        tmp_path,
        scenarios=("AbruptShift",),
        env_overrides={"drift": {"seed": 5, "processes": [GradualDrift().to_dict()]}},
    )
    assert seeded.run_env_config("AbruptShift", 3).drift.seed == 5  # explicit seed wins
    with _raises(
        ValueError, "'drift.processes[0].gain' (Boredom) must be in [0.0, 100.0] (got -1)"
    ):
        _grid(
            tmp_path,
            scenarios=("AbruptShift",),
            env_overrides={"drift": {"processes": [{"kind": "Boredom", "gain": -1}]}},
        )


def test_scenarios_with_one_name_are_refused(tmp_path: Path) -> None:
    """Two entries that are the same scenario (alias or same file stem) would share run dirs."""
    with _raises(
        ValueError,
        "'scenarios' 'AbruptShift' and 'abrupt-shift' are both the scenario 'AbruptShift' (their "
        "run directories would be the same); give one of them another name",
    ):
        _grid(tmp_path, scenarios=("AbruptShift", "abrupt-shift"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = _file(tmp_path / "a", "x.json"), _file(tmp_path / "b", "x.json")
    with pytest.raises(ValueError, match="are both the scenario 'x'"):
        _grid(tmp_path, scenarios=(str(a), str(b)))
