"""Tests of scenarios as data: scenario files, their round trip, and register_scenario."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import driftrec
from driftrec.envs import scenarios as sc
from driftrec.envs.config import DriftConfig, EnvConfig
from driftrec.envs.drift import AbruptShift, Boredom, GradualDrift
from driftrec.envs.gym_env import DriftRecEnv, DriftRecVectorEnv
from driftrec.envs.scenarios import (
    get_scenario,
    list_scenarios,
    load_scenario_file,
    register_scenario,
    scenario_to_dict,
    unregister_scenario,
)

ISSUE_EXAMPLE = {
    "drift": {
        "processes": [{"kind": "AbruptShift", "at_steps": [96]}, {"kind": "Boredom", "gain": 0.3}]
    }
}


def _raises(exc: type[Exception], msg: str) -> Any:
    return pytest.raises(exc, match=f"^{re.escape(msg)}$")


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    """Scenarios registered by a test are removed after it."""
    before = set(sc._REGISTERED)
    yield
    for name in set(sc._REGISTERED) - before:
        unregister_scenario(name)


def _rollout(config: EnvConfig, steps: int = 100) -> list[Any]:
    env = DriftRecVectorEnv(2, config)
    obs, info = env.reset(seed=3)
    env.action_space.seed(0)
    out = [obs, info["interests"]]
    for _ in range(steps):
        action = env.action_space.sample()
        obs, reward, terminated, truncated, info = env.step(action)
        out += [obs, reward, terminated, truncated, info["interests"], info["drift_events"]]
    return out


@pytest.mark.parametrize("scenario", list_scenarios(), ids=lambda s: s.name)
def test_every_scenario_round_trips_through_a_file(scenario: Any, tmp_path: Path) -> None:
    """A scenario written as a JSON file and read back has an identical config and first 100
    steps (actions sampled from the action space seeded alike)."""
    path = _write(tmp_path / "copy.json", scenario_to_dict(scenario))
    back = load_scenario_file(path)
    assert back.config == scenario.config
    assert (back.name, back.description, back.source) == ("copy", scenario.description, str(path))
    a, b = _rollout(scenario.config), _rollout(back.config)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_issue_example_file(tmp_path: Path) -> None:
    """Processes are written by kind (class names work) and parameters; the file names it."""
    s = load_scenario_file(_write(tmp_path / "my_scenario.json", ISSUE_EXAMPLE))
    assert s.name == "my_scenario" and s.source == str(tmp_path / "my_scenario.json")
    assert s.config == EnvConfig(
        drift=DriftConfig(processes=(AbruptShift(at_steps=(96,)), Boredom(gain=0.3)))
    )
    assert get_scenario(str(tmp_path / "my_scenario.json")) is s  # cached until it changes
    env = DriftRecEnv(scenario=str(tmp_path / "my_scenario.json"))
    assert env.config == s.config


def test_toml_file_and_metadata(tmp_path: Path) -> None:
    """A TOML file works too; 'name' and 'description' are optional metadata keys."""
    path = tmp_path / "anything.toml"
    path.write_text(
        'name = "Wander"\ndescription = "A slow random walk."\n'
        "[session]\nmax_steps = 30\n"
        '[[drift.processes]]\nkind = "gradual"\nsigma = 0.01\n'
    )
    s = load_scenario_file(path)
    assert (s.name, s.description) == ("Wander", "A slow random walk.")
    assert s.config.session.max_steps == 30
    assert s.config.drift.processes == (GradualDrift(sigma=0.01),)


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    """The cache is keyed by the file's modification time and size."""
    path = _write(tmp_path / "x.json", {"catalog": {"num_items": 50}})
    assert load_scenario_file(path).config.catalog.num_items == 50
    _write(path, {"catalog": {"num_items": 500}})
    assert load_scenario_file(path).config.catalog.num_items == 500


def test_relative_catalog_path_is_relative_to_the_file(tmp_path: Path) -> None:
    """A relative catalog_path in a scenario file is taken from the file's folder."""
    (tmp_path / "sub").mkdir()
    path = _write(tmp_path / "sub" / "c.json", {"catalog_path": "items.csv"})
    assert load_scenario_file(path).config.catalog_path == str(tmp_path / "sub" / "items.csv")


BAD_FILES = [
    (
        "gain.json",
        {"drift": {"processes": [{"kind": "AbruptShift"}, {"kind": "Boredom", "gain": -1}]}},
        "'drift.processes[1].gain' (Boredom) must be in [0.0, 100.0] (got -1)",
    ),
    (
        "typo.json",
        {"catalog": {"num_itemz": 5}},
        "unknown key 'catalog.num_itemz'; expected one of ['new_item_fraction', 'num_items', "
        "'num_topics', 'quality_alpha', 'quality_beta', 'release_horizon', 'seed', "
        "'text_style', 'topic_purity']",
    ),
    ("broken.json", '{"drift": ', "not valid JSON (Expecting value at line 1 column 11)"),
    (
        "list.json",
        [1],
        'expected an object of env config sections such as {"drift": {"processes": [...]}} '
        "(got list)",
    ),
    (
        "AbruptShift.json",
        {},
        "'name' 'AbruptShift' is the built-in scenario 'AbruptShift'; give the file another "
        "name (or set its 'name' key)",
    ),
    (
        "a__b.json",
        {},
        "the file's name (or a 'name' key) must be a name of letters, digits, '_', '-' and '.' "
        "that starts with a letter and has no '__' (got 'a__b')",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_say_file_key_path_and_expectation(
    tmp_path: Path, name: str, content: Any, message: str
) -> None:
    """Each bad file gets one line: the file, the key path and what was expected."""
    p = _write(tmp_path / name, content)
    with _raises(ValueError, f"scenario file {p}: {message}"):
        get_scenario(str(p))


def test_missing_file_names_it(tmp_path: Path) -> None:
    """A scenario file that does not exist is named in the error."""
    with _raises(FileNotFoundError, f"scenario file {str(tmp_path / 'no.json')!r} does not exist"):
        get_scenario(str(tmp_path / "no.json"))


def test_register_scenario_for_the_runner_and_gymnasium(tmp_path: Path) -> None:
    """register_scenario takes a config, its dict form or a file; get_scenario and gym.make
    find it, and the id's spec names it."""
    cfg = EnvConfig().with_overrides(num_items=40, max_steps=7)
    s = driftrec.register_scenario("Mine", cfg, description="my world")
    assert get_scenario("Mine") is s and get_scenario("mine") is s
    assert s in list_scenarios()
    assert gym.spec("driftrec/Mine-v1").kwargs == {"scenario": "Mine"}
    env = gym.make("driftrec/Mine-v1")
    assert env.unwrapped.config == cfg
    venv = gym.make_vec("driftrec/Mine-v1", num_envs=3, vectorization_mode="vector_entry_point")
    assert venv.unwrapped.config == cfg
    from_dict = register_scenario("FromDict", {**ISSUE_EXAMPLE, "description": "d"})
    assert from_dict.description == "d" and from_dict.config.drift.get(Boredom) == Boredom(0.3)
    path = _write(tmp_path / "f.json", ISSUE_EXAMPLE)
    from_file = register_scenario("FromFile", path)
    assert from_file.config == from_dict.config and from_file.source == str(path)


def test_registration_clashes(tmp_path: Path) -> None:
    """A built-in name, or a registered name with another config, is refused in one line;
    the same config again is fine; overwrite=True replaces."""
    with _raises(
        ValueError,
        "'name' 'abrupt-shift' is the built-in scenario 'AbruptShift'; choose another name",
    ):
        register_scenario("abrupt-shift", EnvConfig())
    register_scenario("Twice", EnvConfig())
    register_scenario("Twice", EnvConfig())  # the same config: no error
    other = EnvConfig().with_overrides(num_items=10)
    with _raises(
        ValueError,
        "scenario 'Twice' is already registered with another config; pass overwrite=True to "
        "replace it (or choose another name)",
    ):
        register_scenario("Twice", other)
    assert get_scenario("Twice").config == EnvConfig()
    register_scenario("Twice", other, overwrite=True)
    assert get_scenario("Twice").config == other
    assert gym.make("driftrec/Twice-v1").unwrapped.config == other
    with _raises(
        ValueError,
        "'name' must be a name of letters, digits, '_', '-' and '.' that starts with a letter "
        "and has no '__' (got 'a/b')",
    ):
        register_scenario("a/b", EnvConfig())
    p = _write(tmp_path / "bad.json", {"users": {"patience": 0}})
    with _raises(
        ValueError,
        f"scenario file {p}: 'users.patience' must be a finite number in (0.0, 1000000.0] (got 0)",
    ):
        register_scenario("Bad", p)
    assert "Bad" not in sc._REGISTERED


def test_snapshot_pins_scenarios_in_another_process_state(tmp_path: Path) -> None:
    """scenario_snapshot + install_scenario_snapshot carry registered and file scenarios."""
    register_scenario("Snap", EnvConfig().with_overrides(num_items=33))
    path = str(_write(tmp_path / "f.json", ISSUE_EXAMPLE))
    snap = sc.scenario_snapshot(["AbruptShift", "Snap", path])
    assert sorted(snap) == sorted(["Snap", path])
    json.dumps(snap)  # JSON-ready
    unregister_scenario("Snap")
    _write(tmp_path / "f.json", {})  # the file changes after the snapshot
    try:
        sc.install_scenario_snapshot(snap)
        assert get_scenario("Snap").config.catalog.num_items == 33
        assert get_scenario(path).config.drift.get(Boredom) == Boredom(gain=0.3)
    finally:
        sc._PINNED.clear()
