"""Tests of the named scenarios and their Gymnasium registration."""

from __future__ import annotations

import re

import gymnasium as gym
import pytest

from driftrec.envs.config import EnvConfig
from driftrec.envs.drift import AbruptShift
from driftrec.envs.gym_env import DriftRecEnv
from driftrec.envs.scenarios import SCENARIOS, Scenario, get_scenario, list_scenarios

NAMES = [
    "Stationary",
    "GradualDrift",
    "OUDrift",
    "AbruptShift",
    "ConsumptionDrift",
    "Boredom",
    "PopulationTrend",
    "NewItems",
    "Mixed",
    "SlateStationary",
    "SlateMixed",
]


def test_list_scenarios() -> None:
    """At least 11 scenarios with unique names and ids, valid configs and real descriptions."""
    scenarios = list_scenarios()
    assert len(scenarios) >= 11
    assert [s.name for s in scenarios][: len(NAMES)] == NAMES
    assert len({s.name for s in scenarios}) == len({s.env_id for s in scenarios}) == len(scenarios)
    for s in scenarios:
        assert isinstance(s, Scenario) and isinstance(s.config, EnvConfig)
        assert s.env_id == f"driftrec/{s.name}-v1"
        assert len(s.description.strip()) > 20
        assert SCENARIOS[s.name] is s


@pytest.mark.parametrize(
    "name",
    ["abrupt-shift", "AbruptShift", "driftrec/AbruptShift-v1", "abrupt_shift", "ABRUPTSHIFT"],
)
def test_get_scenario_accepts_names_and_ids(name: str) -> None:
    """get_scenario accepts the name in any case/separator style and the Gymnasium id."""
    scenario = get_scenario(name)
    assert scenario.name == "AbruptShift"
    assert scenario.config.drift.get(AbruptShift) == AbruptShift(at_steps=(5000,), rate=0.0005)


def test_get_scenario_unknown_name() -> None:
    """An unknown name raises ValueError listing the scenarios; a non-str raises TypeError."""
    names = [s.name for s in list_scenarios()] + ["MovieLens"]
    msg = f"'scenario' must be one of {names} or a scenario file (.json/.toml) (got 'Chaos')"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        get_scenario("Chaos")
    type_msg = "'scenario' must be a str (got 3)"
    with pytest.raises(TypeError, match=f"^{re.escape(type_msg)}$"):
        get_scenario(3)  # type: ignore[arg-type]


def test_every_scenario_is_registered() -> None:
    """Each scenario id is registered with both entry points and its scenario as kwarg."""
    for s in list_scenarios():
        spec = gym.spec(s.env_id)
        assert spec.entry_point == "driftrec.envs.gym_env:DriftRecEnv"
        assert spec.vector_entry_point == "driftrec.envs.gym_env:DriftRecVectorEnv"
        assert spec.kwargs == {"scenario": s.name}


def test_env_uses_the_scenario_config() -> None:
    """DriftRecEnv(scenario=...) and the default env use the scenario's config."""
    assert DriftRecEnv(scenario="slate-mixed").config == get_scenario("SlateMixed").config
    assert DriftRecEnv().config == get_scenario("Stationary").config
    slate = get_scenario("SlateMixed").config
    assert slate.choice.slate_size == 10 and slate.session.history_len >= 10
