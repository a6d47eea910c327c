"""The drifting-user simulator (numpy and gymnasium only; no torch).

Importing this package registers every scenario as a Gymnasium id ``driftrec/<Name>-v1``.
The stable-baselines3 ``VecEnv`` lives in :mod:`driftrec.envs.sb3` (it imports SB3, hence torch).
"""

from __future__ import annotations

from driftrec.envs.catalog import Catalog, CatalogError, generate_catalog, load_catalog
from driftrec.envs.config import (
    CatalogConfig,
    ChoiceConfig,
    DriftConfig,
    EnvConfig,
    RewardConfig,
    SessionConfig,
    UserConfig,
)
from driftrec.envs.core import BatchSimulator
from driftrec.envs.drift import (
    AbruptShift,
    Boredom,
    ConsumptionDrift,
    DriftEvent,
    GradualDrift,
    PopulationTrend,
)
from driftrec.envs.gym_env import DriftRecEnv, DriftRecVectorEnv
from driftrec.envs.observation import ObservationLayout
from driftrec.envs.scenarios import (
    SCENARIOS,
    Scenario,
    get_scenario,
    list_scenarios,
    load_scenario_file,
    register_scenario,
    register_scenarios,
)

register_scenarios()

__all__ = [
    "AbruptShift",
    "BatchSimulator",
    "Boredom",
    "Catalog",
    "CatalogConfig",
    "CatalogError",
    "ChoiceConfig",
    "ConsumptionDrift",
    "DriftConfig",
    "DriftEvent",
    "DriftRecEnv",
    "DriftRecVectorEnv",
    "EnvConfig",
    "GradualDrift",
    "ObservationLayout",
    "PopulationTrend",
    "RewardConfig",
    "SCENARIOS",
    "Scenario",
    "SessionConfig",
    "UserConfig",
    "generate_catalog",
    "get_scenario",
    "list_scenarios",
    "load_catalog",
    "load_scenario_file",
    "register_scenario",
    "register_scenarios",
]
