"""Tests of driftrec.experiments.config: validation messages, resolved worlds and JSON loading."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from driftrec.agents.registry import AGENT_NAMES
from driftrec.envs.drift import AbruptShift
from driftrec.envs.scenarios import get_scenario
from driftrec.experiments.config import (
    ExperimentConfig,
    load_config,
    split_agent_name,
)

SCENARIO_NAMES = [
    "Stationary", "GradualDrift", "OUDrift", "AbruptShift", "ConsumptionDrift", "Boredom",
    "PopulationTrend", "NewItems", "Mixed", "SlateStationary", "SlateMixed", "UserJumps",
    "PopulationDrift", "LongTerm", "LongTermBoredom", "LongTermAversion", "JargonNews",
    "MovieLens",
]  # fmt: skip


def _small(**kwargs: Any) -> ExperimentConfig:
    base: dict[str, Any] = {"agents": ("random",), "seeds": (0,), "steps": 10, "log_every": 5}
    return ExperimentConfig(**{**base, **kwargs})


def _raises(exc: type[Exception], msg: str) -> Any:
    return pytest.raises(exc, match=f"^{re.escape(msg)}$")


# --------------------------------------------------------------------------------------------
def test_defaults_are_valid() -> None:
    """The default config validates and lists its runs scenario x agent x seed in order."""
    cfg = ExperimentConfig()
    assert cfg.reference_agent == "oracle" and cfg.vary_world
    assert cfg.all_agents == (*cfg.agents, "oracle")  # the reference runs as its own run
    assert len(cfg.runs()) == len(cfg.scenarios) * (len(cfg.agents) + 1) * len(cfg.seeds)
    assert cfg.runs()[0] == ("AbruptShift", "random", 0)
    assert cfg.run_dir("AbruptShift", "random", 0) == Path("runs/experiment/AbruptShift__random__0")


def test_split_agent_name() -> None:
    """'-frozen' is split off the agent name."""
    assert split_agent_name("attention-ppo-frozen") == ("attention-ppo", True)
    assert split_agent_name("attention-ppo") == ("attention-ppo", False)


def test_unknown_agent_message() -> None:
    """An unknown agent names the valid agents and the bad entry."""
    msg = (
        f"unknown agent 'nope' in 'agents': expected one of {list(AGENT_NAMES)}, a name "
        "registered with driftrec.register_agent, an import path 'package.module:NAME' or a "
        "stable-baselines3 model '.zip', optionally with '-frozen'"
    )
    with _raises(ValueError, msg):
        _small(agents=("random", "nope"))
    with pytest.raises(ValueError, match="unknown agent 'nope' in 'agents'"):
        _small(agents=("nope-frozen",))


def test_compare_to_must_be_an_agent_of_the_grid() -> None:
    """compare_to names one of the grid's agents (the reference run counts); else one line."""
    assert _small(compare_to="oracle").compare_to == "oracle"  # the reference agent runs too
    msg = "'compare_to' must be None or one of the grid's agents ['random', 'oracle'] (got 'x')"
    with _raises(ValueError, msg):
        _small(compare_to="x")


def test_unknown_scenario_message() -> None:
    """An unknown scenario names the valid scenarios and the bad entry."""
    with _raises(
        ValueError,
        f"'scenario' must be one of {SCENARIO_NAMES} or a scenario file (.json/.toml) (got 'Nope')",
    ):
        _small(scenarios=("Nope",))


def test_integer_field_messages() -> None:
    """steps, log_every, shift_at, frozen_at and seeds report the field, range and value."""
    with _raises(ValueError, "'steps' must be an integer >= 1 (got 0)"):
        _small(steps=0)
    with _raises(ValueError, "'log_every' must be an integer in [1, 10] (got 20)"):
        _small(log_every=20)
    with _raises(ValueError, "'shift_at' must be an integer in [1, 10] (got 11)"):
        _small(shift_at=11)
    with _raises(ValueError, "'frozen_at' must be an integer in [1, 10] (got 0)"):
        _small(frozen_at=0)
    with _raises(ValueError, "'seeds' must be an integer >= 0 (got -1)"):
        _small(seeds=(-1,))
    with _raises(TypeError, "'steps' must be an integer (got 1.5 of type float)"):
        _small(steps=1.5)
    with _raises(ValueError, "'num_envs' must be an integer in [1, 65536] (got 0)"):
        _small(num_envs=0)


def test_list_field_messages() -> None:
    """Empty, repeated or mistyped lists are rejected with the field and the value."""
    with _raises(ValueError, "'seeds' must not be empty (got ())"):
        _small(seeds=())
    with _raises(ValueError, "'agents' must not repeat entries (got ['random', 'random'])"):
        _small(agents=["random", "random"])
    with _raises(TypeError, "'scenarios' must be a list of str (got 'Stationary')"):
        _small(scenarios="Stationary")
    with _raises(TypeError, "'seeds' must be a list of int (got [True])"):
        _small(seeds=[True])


def test_frozen_needs_a_shift_or_frozen_at() -> None:
    """'-frozen' agents need frozen_at or a scheduled shift; either one makes them valid."""
    msg = (
        "'-frozen' agents need 'frozen_at' or a scheduled shift in every scenario "
        "(got none for 'Stationary')"
    )
    with _raises(ValueError, msg):
        _small(scenarios=("Stationary",), agents=("random-frozen",))
    cfg = _small(scenarios=("Stationary",), agents=("random-frozen",), frozen_at=4)
    assert cfg.frozen_step("Stationary") == 4
    cfg = _small(scenarios=("Stationary",), agents=("random-frozen",), shift_at=6)
    assert cfg.frozen_step("Stationary") == 6
    assert _small(scenarios=("AbruptShift",), agents=("random-frozen",), steps=6000, log_every=10)


def test_frozen_check_covers_every_scenario() -> None:
    """A '-frozen' agent with a scenario lacking a scheduled shift (and no frozen_at) is refused."""
    with pytest.raises(ValueError, match="'-frozen' agents need"):
        _small(scenarios=("AbruptShift", "Stationary"), agents=("random-frozen",))


def test_other_messages() -> None:
    """Bad name, bad env overrides and unknown agent_kwargs keys are reported."""
    for bad in ("a/b", "..", ".", "", ".hidden", "a\nb", "x" * 129, "a\\b", "~"):
        with _raises(
            ValueError,
            "'name' must be a folder name of 1-128 letters, digits and . _ - + = @ , that "
            f"starts with a letter or digit (got {bad!r}); it names the experiment's folder "
            "inside 'out_dir'",
        ):
            _small(name=bad)
    with _raises(TypeError, "'name' must be a string (got 5)"):
        _small(name=5)
    assert _small(name="my-exp_2.v1+b=c@d,e").name == "my-exp_2.v1+b=c@d,e"
    with _raises(ValueError, "'num_items' must be an integer in [1, 10000000] (got 0)"):
        _small(env_overrides={"num_items": 0})
    with pytest.raises(ValueError, match="^unknown config override 'bogus'"):
        _small(env_overrides={"bogus": 1})
    with _raises(ValueError, "'agent_kwargs' has an unknown agent 'nope'"):
        _small(agent_kwargs={"nope": {}})
    assert _small(agent_kwargs={"popularity": {"decay": 0.5}})  # any known agent is fine


def test_from_dict_unknown_key() -> None:
    """from_dict names the unknown keys and lists the expected ones."""
    names = sorted(f.name for f in dataclasses.fields(ExperimentConfig))
    msg = f"unknown experiment config keys ['bogus', 'zzz']; expected {names}"
    with _raises(ValueError, msg):
        ExperimentConfig.from_dict({"steps": 3, "bogus": 1, "zzz": 2})


def test_to_dict_from_dict_roundtrip_through_json() -> None:
    """to_dict is JSON-ready and from_dict(json) rebuilds an equal config."""
    cfg = _small(
        scenarios=("AbruptShift", "Stationary"),
        agents=("random", "popularity"),
        seeds=(0, 3),
        shift_at=5,
        env_overrides={"num_items": 32},
        agent_kwargs={"popularity": {"decay": 0.5}},
    )
    again = ExperimentConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_env_config_applies_shift_at_and_overrides() -> None:
    """shift_at replaces the scheduled shifts (keeping the rate) or adds one; overrides apply."""
    cfg = _small(
        scenarios=("AbruptShift", "Stationary"),
        shift_at=7,
        env_overrides={"num_items": 32, "users.patience": 5.0},
    )
    abrupt = cfg.env_config("AbruptShift")
    original = get_scenario("AbruptShift").config.drift.get(AbruptShift)
    shift = abrupt.drift.get(AbruptShift)
    assert original.at_steps == (5000,)
    assert shift.at_steps == (7,) and shift.rate == original.rate and shift.mix == original.mix
    assert abrupt.catalog.num_items == 32 and abrupt.users.patience == 5.0
    stationary = cfg.env_config("Stationary")
    assert stationary.drift.processes == (AbruptShift(at_steps=(7,)),)
    assert stationary.catalog.num_items == 32
    assert cfg.frozen_step("AbruptShift") == 7
    # without shift_at or overrides: the scenario's own config
    plain = _small(scenarios=("AbruptShift",), steps=6000, log_every=10)
    assert plain.env_config("AbruptShift") == get_scenario("AbruptShift").config
    assert plain.frozen_step("AbruptShift") == 5000


def test_env_config_keeps_drift_process_order() -> None:
    """shift_at replaces AbruptShift's at_steps in place, keeping the processes' order."""
    cfg = _small(scenarios=("Mixed",), shift_at=5)
    original = get_scenario("Mixed").config.drift.processes
    expected = tuple(
        dataclasses.replace(p, at_steps=(5,)) if isinstance(p, AbruptShift) else p for p in original
    )
    assert cfg.env_config("Mixed").drift.processes == expected


def test_load_config_with_overrides(tmp_path: Path) -> None:
    """load_config reads a JSON object; non-None overrides win; None overrides are ignored."""
    path = tmp_path / "exp.json"
    path.write_text(
        json.dumps(
            {
                "name": "from-file",
                "scenarios": ["Stationary"],
                "agents": ["random", "popularity"],
                "seeds": [1, 2],
                "steps": 40,
                "log_every": 8,
                "env_overrides": {"num_items": 32},
            }
        )
    )
    cfg = load_config(path, steps=16, log_every=None, out_dir=str(tmp_path))
    assert cfg.name == "from-file"
    assert cfg.agents == ("random", "popularity") and cfg.seeds == (1, 2)
    assert cfg.steps == 16 and cfg.log_every == 8
    assert cfg.experiment_dir == tmp_path / "from-file"
    assert cfg.env_config("Stationary").catalog.num_items == 32
    with pytest.raises(ValueError, match=r"'log_every' must be an integer in \[1, 4\] \(got 8\)"):
        load_config(path, steps=4)


def test_load_config_errors_name_the_file(tmp_path: Path) -> None:
    """Bad JSON, a non-object and a missing file raise errors naming the file."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"steps": 3,,}')
    with pytest.raises(ValueError, match=f"^{re.escape(str(bad))}: not valid JSON .* line 1"):
        load_config(bad)
    arr = tmp_path / "list.json"
    arr.write_text("[1, 2]")
    with _raises(ValueError, f"{arr}: expected a JSON object of experiment settings"):
        load_config(arr)
    missing = tmp_path / "missing.json"
    with _raises(FileNotFoundError, f"experiment config file {str(missing)!r} does not exist"):
        load_config(missing)
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"stepz": 3}')
    with pytest.raises(ValueError, match=r"unknown experiment config keys \['stepz'\]"):
        load_config(unknown)
