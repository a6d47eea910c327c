"""Tests of the frozen, validated configs: messages, overrides and the dict round trip."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from driftrec.envs.config import (
    SECTIONS,
    CatalogConfig,
    ChoiceConfig,
    DriftConfig,
    EnvConfig,
    RewardConfig,
    SessionConfig,
    UserConfig,
)
from driftrec.envs.drift import (
    DRIFT_PROCESSES,
    AbruptShift,
    Aversion,
    Boredom,
    ConsumptionDrift,
    DriftEvent,
    GradualDrift,
    PopulationDrift,
    PopulationTrend,
    Satisfaction,
    drift_process_from_dict,
)
from driftrec.envs.scenarios import list_scenarios


def _raises(exc: type[Exception], msg: str) -> Any:
    return pytest.raises(exc, match=f"^{re.escape(msg)}$")


# --------------------------------------------------------------------------------------------
# section validation: exact messages
# --------------------------------------------------------------------------------------------
VALUE_ERRORS = [
    (CatalogConfig, {"num_items": 0}, "'num_items' must be an integer in [1, 10000000] (got 0)"),
    (CatalogConfig, {"num_topics": 1}, "'num_topics' must be an integer in [2, 24] (got 1)"),
    (CatalogConfig, {"num_topics": 25}, "'num_topics' must be an integer in [2, 24] (got 25)"),
    (
        CatalogConfig,
        {"topic_purity": 0.3},
        "'topic_purity' must be a finite number in [0.5, 1.0] (got 0.3)",
    ),
    (
        CatalogConfig,
        {"topic_purity": float("nan")},
        "'topic_purity' must be a finite number in [0.5, 1.0] (got nan)",
    ),
    (
        CatalogConfig,
        {"quality_alpha": 0},
        "'quality_alpha' must be a finite number in (0.0, 1000.0] (got 0)",
    ),
    (
        CatalogConfig,
        {"new_item_fraction": 1.0},
        "'new_item_fraction' must be a finite number in [0.0, 0.99] (got 1.0)",
    ),
    (
        CatalogConfig,
        {"release_horizon": 0},
        "'release_horizon' must be an integer in [1, 1000000000] (got 0)",
    ),
    (CatalogConfig, {"seed": -1}, "'seed' must be an integer >= 0 (got -1)"),
    (
        UserConfig,
        {"interest_clip": 0.0},
        "'interest_clip' must be a finite number in (0.0, 100.0] (got 0.0)",
    ),
    (
        UserConfig,
        {"population_scale": float("inf")},
        "'population_scale' must be a finite number in [0.0, 100.0] (got inf)",
    ),
    (
        UserConfig,
        {"patience": 20.0, "max_patience": 10.0},
        "'max_patience' must be >= 'patience' (20.0) (got 10.0)",
    ),
    (ChoiceConfig, {"slate_size": 0}, "'slate_size' must be an integer in [1, 100] (got 0)"),
    (
        ChoiceConfig,
        {"position_bias": 0.0},
        "'position_bias' must be a finite number in (0.0, 1.0] (got 0.0)",
    ),
    (
        ChoiceConfig,
        {"no_click_score": 21.0},
        "'no_click_score' must be a finite number in [-20.0, 20.0] (got 21.0)",
    ),
    (
        RewardConfig,
        {"kind": "clicks"},
        "'kind' must be one of 'click', 'engagement' (got 'clicks')",
    ),
    (
        SessionConfig,
        {"observation": "nested"},
        "'observation' must be one of 'flat', 'dict' (got 'nested')",
    ),
    (SessionConfig, {"max_steps": 0}, "'max_steps' must be an integer in [1, 10000000] (got 0)"),
    (GradualDrift, {"sigma": -1}, "GradualDrift: 'sigma' must be in [0.0, 10.0] (got -1)"),
    (GradualDrift, {"reversion": 1.5}, "GradualDrift: 'reversion' must be in [0.0, 1.0] (got 1.5)"),
    (
        AbruptShift,
        {"at_steps": (5, 3)},
        "AbruptShift: 'at_steps' must be strictly increasing (got (5, 3))",
    ),
    (
        AbruptShift,
        {"at_steps": (3, 3)},
        "AbruptShift: 'at_steps' must be strictly increasing (got (3, 3))",
    ),
    (
        AbruptShift,
        {"at_steps": (0,)},
        "AbruptShift: 'at_steps' must be a tuple of integers >= 1 (got (0,))",
    ),
    (AbruptShift, {"rate": 2.0}, "AbruptShift: 'rate' must be in [0.0, 1.0] (got 2.0)"),
    (
        ConsumptionDrift,
        {"pull": -0.1},
        "ConsumptionDrift: 'pull' must be in [0.0, 10.0] (got -0.1)",
    ),
    (Boredom, {"decay": 1.1}, "Boredom: 'decay' must be in [0.0, 1.0] (got 1.1)"),
    (
        PopulationTrend,
        {"period": 0},
        "PopulationTrend: 'period' must be an integer >= 1 (got 0)",
    ),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "msg"),
    VALUE_ERRORS,
    ids=[f"{c.__name__}-{m[:30]}" for c, _, m in VALUE_ERRORS],
)
def test_bad_values_raise_value_error_with_exact_message(
    cls: type, kwargs: dict[str, Any], msg: str
) -> None:
    """A bad value raises ValueError naming the field, the expected range and the value."""
    with _raises(ValueError, msg):
        cls(**kwargs)


TYPE_ERRORS = [
    (CatalogConfig, {"num_items": 1.5}, "'num_items' must be an integer (got 1.5 of type float)"),
    (CatalogConfig, {"num_items": True}, "'num_items' must be an integer (got True of type bool)"),
    (
        CatalogConfig,
        {"topic_purity": "0.8"},
        "'topic_purity' must be a number (got '0.8' of type str)",
    ),
    (UserConfig, {"patience": None}, "'patience' must be a number (got None of type NoneType)"),
    (SessionConfig, {"oracle_info": 1}, "'oracle_info' must be a bool (got 1)"),
    (GradualDrift, {"sigma": "a"}, "GradualDrift: 'sigma' must be a finite number (got 'a')"),
    (Boredom, {"gain": float("nan")}, "Boredom: 'gain' must be a finite number (got nan)"),
    (
        DriftConfig,
        {"processes": [GradualDrift()]},
        "'processes' must be a tuple of drift processes "
        "(got [GradualDrift(sigma=0.05, reversion=0.0)])",
    ),
    (
        DriftConfig,
        {"processes": ("gradual",)},
        "'processes' must contain drift processes (got 'gradual')",
    ),
    (
        EnvConfig,
        {"users": CatalogConfig()},
        f"'users' must be a UserConfig (got {CatalogConfig()!r})",
    ),
    (EnvConfig, {"catalog_path": 3}, "'catalog_path' must be a str or None (got 3)"),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "msg"), TYPE_ERRORS, ids=[f"{c.__name__}-{m[:30]}" for c, _, m in TYPE_ERRORS]
)
def test_bad_types_raise_type_error_with_exact_message(
    cls: type, kwargs: dict[str, Any], msg: str
) -> None:
    """A value of the wrong type raises TypeError naming the field, the value and its type."""
    with _raises(TypeError, msg):
        cls(**kwargs)


def test_history_shorter_than_slate_is_rejected() -> None:
    """EnvConfig checks across sections: history_len must hold at least one slate."""
    with _raises(ValueError, "'history_len' must be >= 'slate_size' (5) (got 3)"):
        EnvConfig(choice=ChoiceConfig(slate_size=5), session=SessionConfig(history_len=3))


def test_duplicate_drift_kinds_are_rejected() -> None:
    """DriftConfig holds each process kind at most once."""
    with _raises(ValueError, "'processes' may hold each kind once (got ['GradualDrift'] twice)"):
        DriftConfig(processes=(GradualDrift(), Boredom(), GradualDrift(sigma=0.1)))


def test_abrupt_shift_accepts_a_list_of_steps() -> None:
    """AbruptShift turns a list of steps into a tuple (so it stays hashable and frozen)."""
    shift = AbruptShift(at_steps=[3, 7])  # type: ignore[arg-type]
    assert shift.at_steps == (3, 7)
    hash(shift)


def test_defaults_are_valid_and_configs_are_frozen() -> None:
    """Every default config validates, and assigning a field raises FrozenInstanceError."""
    cfg = EnvConfig()
    assert cfg.catalog.num_items == 1000 and cfg.choice.slate_size == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.catalog.num_items = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        GradualDrift().sigma = 1.0  # type: ignore[misc]


def test_drift_config_get_returns_the_process_of_a_kind() -> None:
    """DriftConfig.get finds a process by type and returns None when absent."""
    g = GradualDrift(sigma=0.2)
    drift = DriftConfig(processes=(Boredom(), g))
    assert drift.get(GradualDrift) is g
    assert drift.get(AbruptShift) is None


def test_drift_event_names() -> None:
    """DriftEvent.names lists the set bits in declaration order, also beyond the cached range."""
    assert DriftEvent.names(0) == ()
    assert DriftEvent.names(1) == ("population_shift",)
    assert DriftEvent.names(6) == ("interest_jump", "new_items")
    assert DriftEvent.names(7 | 8) == ("population_shift", "interest_jump", "new_items")


# --------------------------------------------------------------------------------------------
# with_overrides
# --------------------------------------------------------------------------------------------
def test_with_overrides_shortcuts() -> None:
    """Shortcut keys set the field of their section and leave the original untouched."""
    base = EnvConfig()
    cfg = base.with_overrides(
        num_items=50,
        num_topics=6,
        catalog_seed=3,
        new_item_fraction=0.25,
        slate_size=4,
        max_steps=7,
        history_len=9,
        observation="dict",
        oracle_info=False,
        world_seed=11,
    )
    assert cfg.catalog == CatalogConfig(num_items=50, num_topics=6, seed=3, new_item_fraction=0.25)
    assert cfg.choice.slate_size == 4
    assert cfg.session == SessionConfig(
        max_steps=7, history_len=9, observation="dict", oracle_info=False
    )
    assert cfg.drift.seed == 11
    assert base == EnvConfig()


def test_with_overrides_dotted_paths_and_sections() -> None:
    """Dotted paths set one field; a section name replaces the whole section; catalog_path too."""
    users = UserConfig(patience=3.0, max_patience=4.0)
    cfg = EnvConfig().with_overrides(
        **{"users.patience_cost": 0.5, "choice.position_bias": 0.5},
        drift=DriftConfig(processes=(Boredom(),)),
        catalog_path="items.csv",
    )
    assert cfg.users.patience_cost == 0.5
    assert cfg.choice.position_bias == 0.5
    assert cfg.drift.processes == (Boredom(),)
    assert cfg.catalog_path == "items.csv"
    assert EnvConfig().with_overrides(users=users).users is users


def test_with_overrides_validates() -> None:
    """Overridden values go through the same validation as the constructor."""
    with _raises(ValueError, "'num_items' must be an integer in [1, 10000000] (got 0)"):
        EnvConfig().with_overrides(num_items=0)
    with _raises(ValueError, "'session.history_len' must be >= 'slate_size' (30) (got 20)"):
        EnvConfig().with_overrides(slate_size=30)
    with _raises(TypeError, "'users' must be a UserConfig (got 3)"):
        EnvConfig().with_overrides(users=3)


def test_with_overrides_unknown_key() -> None:
    """An unknown override key raises ValueError listing the known keys."""
    known = [
        "catalog",
        "catalog_path",
        "catalog_seed",
        "choice",
        "drift",
        "history_len",
        "max_steps",
        "new_item_fraction",
        "num_items",
        "num_topics",
        "observation",
        "oracle_info",
        "population_path",
        "reward",
        "session",
        "slate_size",
        "users",
        "world_seed",
    ]
    msg = (
        f"unknown config override 'patience'; expected one of {known} "
        "or a dotted path such as 'users.patience'"
    )
    with _raises(ValueError, msg):
        EnvConfig().with_overrides(patience=3.0)
    with _raises(ValueError, msg.replace("'patience'", "'people.patience'", 1)):
        EnvConfig().with_overrides(**{"people.patience": 3.0})


def test_with_overrides_unknown_dotted_field() -> None:
    """A dotted path to a missing field names the section class and the field."""
    with _raises(ValueError, "unknown config field 'users.speed': UserConfig has no field 'speed'"):
        EnvConfig().with_overrides(**{"users.speed": 1.0})


def test_with_overrides_reward_shortcut() -> None:
    """The documented shortcut reward='engagement' sets reward.kind."""
    cfg = EnvConfig().with_overrides(reward="engagement")
    assert cfg.reward == RewardConfig(kind="engagement")


def test_with_overrides_is_independent_of_keyword_order() -> None:
    """Overrides that are valid together apply in any keyword order."""
    cfg = EnvConfig().with_overrides(slate_size=30, history_len=40)
    assert (cfg.choice.slate_size, cfg.session.history_len) == (30, 40)


def test_with_overrides_other_order_works() -> None:
    """history_len then slate_size gives the valid combination (the order that works today)."""
    cfg = EnvConfig().with_overrides(history_len=40, slate_size=30)
    assert (cfg.choice.slate_size, cfg.session.history_len) == (30, 40)


# --------------------------------------------------------------------------------------------
# to_dict / from_dict
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", list_scenarios(), ids=lambda s: s.name)
def test_dict_round_trip_through_json(scenario: Any) -> None:
    """from_dict(json(to_dict(cfg))) == cfg for every registered scenario."""
    cfg = scenario.config
    data = json.loads(json.dumps(cfg.to_dict()))
    assert EnvConfig.from_dict(data) == cfg


def test_to_dict_layout() -> None:
    """to_dict has one entry per section, drift processes carry their kind, tuples become lists."""
    cfg = EnvConfig(
        drift=DriftConfig(processes=(AbruptShift(at_steps=(4, 9), rate=0.1),), seed=5),
        catalog_path="x.jsonl",
    )
    data = cfg.to_dict()
    assert sorted(data) == [
        "catalog",
        "catalog_path",
        "choice",
        "drift",
        "reward",
        "session",
        "users",
    ]
    assert data["drift"] == {
        "processes": [{"kind": "abrupt", "at_steps": [4, 9], "rate": 0.1, "mix": 1.0}],
        "seed": 5,
    }
    assert data["reward"] == {"kind": "click"}
    assert data["catalog_path"] == "x.jsonl"


def test_from_dict_partial_uses_defaults() -> None:
    """Missing sections take their defaults; an empty dict gives EnvConfig()."""
    assert EnvConfig.from_dict({}) == EnvConfig()
    cfg = EnvConfig.from_dict({"catalog": {"num_items": 7}, "drift": {"processes": []}})
    assert cfg == EnvConfig(catalog=CatalogConfig(num_items=7))


def test_from_dict_unknown_keys() -> None:
    """Unknown top-level, section and drift keys raise ValueError naming their key paths."""
    top = sorted([*SECTIONS, "catalog_path", "population_path"])
    with _raises(ValueError, f"unknown key 'bogus'; expected one of {top}"):
        EnvConfig.from_dict({"bogus": {}, "users": {}})
    fields = sorted(f.name for f in dataclasses.fields(RewardConfig))
    with _raises(ValueError, f"unknown key 'reward.weight'; expected one of {fields}"):
        EnvConfig.from_dict({"reward": {"kind": "click", "weight": 2}})
    with _raises(
        ValueError, "unknown keys 'drift.speed', 'drift.x'; expected one of ['processes', 'seed']"
    ):
        EnvConfig.from_dict({"drift": {"processes": [], "speed": 1, "x": 2}})
    with _raises(TypeError, "env config must be a mapping (got list)"):
        EnvConfig.from_dict([])  # type: ignore[arg-type]
    with _raises(TypeError, "'users' must be a mapping (got 3)"):
        EnvConfig.from_dict({"users": 3})


def test_from_dict_errors_name_the_key_path() -> None:
    """A bad value names its key path (with the process's class), the expectation and the value."""
    bad_gain = {"drift": {"processes": [{"kind": "AbruptShift"}, {"kind": "Boredom", "gain": -1}]}}
    msg = "'drift.processes[1].gain' (Boredom) must be in [0.0, 100.0] (got -1)"
    with _raises(ValueError, msg):
        EnvConfig.from_dict(bad_gain)
    with _raises(TypeError, "'catalog.num_items' must be an integer (got 1.5 of type float)"):
        EnvConfig.from_dict({"catalog": {"num_items": 1.5}})
    kinds = sorted(DRIFT_PROCESSES)
    classes = [cls.__name__ for cls in DRIFT_PROCESSES.values()]
    with _raises(
        ValueError,
        f"'drift.processes[0].kind' must be one of {kinds} or a class name {classes} (got 'Chaos')",
    ):
        EnvConfig.from_dict({"drift": {"processes": [{"kind": "Chaos"}]}})
    with _raises(
        ValueError,
        "drift.processes[0]: unknown 'abrupt' drift parameters ['at']; "
        "expected ['at_steps', 'mix', 'rate']",
    ):
        EnvConfig.from_dict({"drift": {"processes": [{"kind": "abrupt", "at": [3]}]}})
    with _raises(
        TypeError,
        "'drift.processes' must be a list of drift processes such as "
        '{"kind": "AbruptShift", "at_steps": [500]} (got {\'kind\': \'abrupt\'})',
    ):
        EnvConfig.from_dict({"drift": {"processes": {"kind": "abrupt"}}})
    with _raises(ValueError, "'drift.processes' may hold each kind once (got ['Boredom'] twice)"):
        EnvConfig.from_dict({"drift": {"processes": [{"kind": "boredom"}, {"kind": "Boredom"}]}})
    with _raises(ValueError, "'choice.slate_size' must be <= the number of items (3) (got 5)"):
        EnvConfig.from_dict(
            {"catalog": {"num_items": 3}, "choice": {"slate_size": 5}, "session": {}}
        )


def test_with_overrides_takes_sections_in_dict_form() -> None:
    """A section given as a mapping replaces only the fields it names (drift: the processes)."""
    base = EnvConfig(drift=DriftConfig(processes=(GradualDrift(),), seed=4))
    cfg = base.with_overrides(
        drift={"processes": [{"kind": "Boredom", "gain": 0.3}]}, users={"patience": 9.0}
    )
    assert cfg.drift == DriftConfig(processes=(Boredom(gain=0.3),), seed=4)
    assert cfg.users == dataclasses.replace(base.users, patience=9.0)
    assert base.with_overrides(reward={"kind": "engagement"}).reward.kind == "engagement"
    assert base.with_overrides(reward="engagement").reward.kind == "engagement"
    with _raises(
        ValueError, "'users.patience' must be a finite number in (0.0, 1000000.0] (got -1)"
    ):
        base.with_overrides(users={"patience": -1})
    fields = sorted(f.name for f in dataclasses.fields(UserConfig))
    with _raises(ValueError, f"unknown key 'users.speed'; expected one of {fields}"):
        base.with_overrides(users={"speed": 1})


def test_drift_process_from_dict() -> None:
    """drift_process_from_dict builds each kind and rejects unknown kinds and parameters."""
    assert drift_process_from_dict({"kind": "gradual", "sigma": 0.2}) == GradualDrift(sigma=0.2)
    assert drift_process_from_dict({"kind": "abrupt", "at_steps": [2, 5]}) == AbruptShift(
        at_steps=(2, 5)
    )
    for proc in (
        ConsumptionDrift(),
        Boredom(gain=2.0),
        PopulationTrend(period=10),
        PopulationDrift(sigma=0.1),
        Satisfaction(gain=0.3, weight=2.0),
        Aversion(threshold=1.5, rate=0.5),
    ):
        assert drift_process_from_dict(proc.to_dict()) == proc
    kinds = sorted(DRIFT_PROCESSES)
    assert kinds == [
        "abrupt",
        "aversion",
        "boredom",
        "consumption",
        "gradual",
        "population_walk",
        "satisfaction",
        "trend",
    ]
    classes = [cls.__name__ for cls in DRIFT_PROCESSES.values()]
    with _raises(
        ValueError, f"'kind' must be one of {kinds} or a class name {classes} (got 'nope')"
    ):
        drift_process_from_dict({"kind": "nope"})
    with _raises(ValueError, "a drift process must be a mapping with a 'kind' key (got {})"):
        drift_process_from_dict({})
    with _raises(
        ValueError,
        "unknown 'gradual' drift parameters ['speed']; expected ['reversion', 'sigma']",
    ):
        drift_process_from_dict({"kind": "gradual", "speed": 1})


def test_aversion_needs_boredom_before_it() -> None:
    """Aversion reads the boredom that Boredom updates: Boredom must come first."""
    msg = (
        "'processes' must list Boredom before Aversion (Aversion reads the boredom that Boredom "
        "updates) (got ['Aversion', 'Boredom'])"
    )
    with _raises(ValueError, msg):
        DriftConfig(processes=(Aversion(), Boredom()))
    with _raises(ValueError, msg.replace("['Aversion', 'Boredom']", "['Aversion']")):
        DriftConfig(processes=(Aversion(),))
    assert DriftConfig(processes=(Boredom(), Aversion())).get(Aversion) == Aversion()
    with _raises(ValueError, "Aversion: 'threshold' must be in [0.0, 100.0] (got -1.0)"):
        Aversion(threshold=-1.0)
