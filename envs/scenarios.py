"""Named scenarios: documented presets of :class:`EnvConfig`, registered as Gymnasium ids.

Every scenario ``Name`` is registered as ``driftrec/Name-v1`` with a ``vector_entry_point``, so::

    import gymnasium as gym
    import driftrec  # noqa: F401  (registers the ids)

    env = gym.make("driftrec/AbruptShift-v1")
    venv = gym.make_vec("driftrec/AbruptShift-v1", num_envs=1024,
                        vectorization_mode="vector_entry_point")

``gym.make("driftrec.envs:driftrec/AbruptShift-v1")`` works without importing driftrec first.
Keyword arguments override the scenario's config (``gym.make(id, num_items=5000)``). Global
steps count each user slot's steps since the env was seeded (a vector env's slots share one
clock).

**Your own scenarios are data.** A scenario file (JSON or TOML) holds the dict form of an
:class:`EnvConfig` (:meth:`EnvConfig.to_dict`; every key optional), drift processes written by
kind and parameters, plus optional ``name`` and ``description``; :func:`load_scenario_file`
reads it, and its path works wherever a scenario name does (``get_scenario``, ``DriftRecEnv``,
the experiment runner). :func:`scenario_to_dict` (``driftrec scenarios --show NAME``) writes any
scenario in that form. :func:`register_scenario` gives a config, its dict form or a file a name
for the runner and the Gymnasium id ``driftrec/<name>-v1``.

Bump the version suffix whenever a scenario's dynamics change. v1: user slots are seeded from
``SeedSequence(seed).spawn`` instead of ``seed + i``; incremental interest updates saturate
smoothly at the clip; stepping a finished single env raises; the LongTerm scenarios.

The **LongTerm** family is where looking ahead pays (``tests/agents/test_planner_slow.py`` and
``bench/bench_planning.py`` measure it; BENCHMARKS.md has the table):

* ``LongTerm``: items' quality ``q`` enters attraction with a negative weight
  (``quality_weight < 0``): low-quality "clickbait" wins the click now. Every click moves the
  user's satisfaction ``sigma <- (1 - d) sigma + g (q - 1/2)``, and ``w sigma`` is added to every
  item's attraction, so clickbait lowers every later click probability (and, through the
  patience budget, the length of the stay) while quality items restore it. What it rewards is
  undoing the clickbait sign: a *static* re-ranking (the greedy oracle with a fixed quality
  tilt) earns about as much as the privileged planner. It measures whether a learner finds out
  which items are clickbait, not sequential planning.
* ``LongTermBoredom``: LongTerm plus boredom (consumed topics lose appeal and recover at 10%
  per step). Again mostly a static quality tilt; rotating topics adds little on top.
* ``LongTermAversion``: boredom that passes a threshold turns into a lasting loss of interest
  (the ``Aversion`` process). The greedy oracle keeps showing a user's favourite topics and wears
  them out; what pays is spacing each topic's clicks, a decision that depends on what the user
  consumed in the last dozen steps (visible in the observed history) and that no fixed
  re-ranking of items can make: the best static tilt gains a fraction of what the planner gains.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from driftrec.envs.config import (
    CatalogConfig,
    ChoiceConfig,
    DriftConfig,
    EnvConfig,
    SessionConfig,
)
from driftrec.envs.drift import (
    AbruptShift,
    Aversion,
    Boredom,
    ConsumptionDrift,
    GradualDrift,
    PopulationDrift,
    PopulationTrend,
    Satisfaction,
)

__all__ = [
    "Scenario",
    "SCENARIOS",
    "CALIBRATED_SCENARIOS",
    "SCENARIO_FILE_SUFFIXES",
    "list_scenarios",
    "get_scenario",
    "register_scenarios",
    "register_scenario",
    "unregister_scenario",
    "load_scenario_file",
    "scenario_to_dict",
    "scenario_snapshot",
    "install_scenario_snapshot",
    "registered_env_id",
]

VERSION = 1


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named preset: a built-in one, one registered with :func:`register_scenario`, or one
    read from a scenario file (:func:`load_scenario_file`; ``source`` is that file)."""

    name: str  # e.g. "AbruptShift"
    description: str
    config: EnvConfig
    source: str | None = None  # the scenario file it was read from, if any

    @property
    def env_id(self) -> str:
        """The Gymnasium id, ``driftrec/<name>-v<version>``."""
        return f"driftrec/{self.name}-v{VERSION}"


def _drift(*processes: object) -> DriftConfig:
    return DriftConfig(processes=tuple(processes))  # type: ignore[arg-type]


_MIXED_CATALOG = CatalogConfig(new_item_fraction=0.2, release_horizon=10_000)
_MIXED_DRIFT = _drift(
    ConsumptionDrift(pull=0.1, push=0.05),
    Boredom(gain=0.5, decay=0.1),
    GradualDrift(sigma=0.03, reversion=0.01),
    AbruptShift(at_steps=(5000,), rate=0.0005),
    PopulationTrend(amplitude=0.5, period=20_000),
)
_SLATE = ChoiceConfig(slate_size=10, no_click_score=3.0)
_CLICKBAIT = ChoiceConfig(quality_weight=-1.0)
_CLICKBAIT_STRONG = ChoiceConfig(quality_weight=-1.5)
_LONG = SessionConfig(max_steps=200)

_ALL = (
    Scenario(
        "Stationary",
        "No drift: fixed population and interests. The control condition.",
        EnvConfig(),
    ),
    Scenario(
        "GradualDrift",
        "Each user's interests follow a random walk (sigma 0.05 per topic per step) during "
        "200-step sessions.",
        EnvConfig(session=_LONG, drift=_drift(GradualDrift(sigma=0.05))),
    ),
    Scenario(
        "OUDrift",
        "Ornstein-Uhlenbeck drift: interests wander (sigma 0.1) but revert to the user's anchor "
        "(reversion 0.02 per step).",
        EnvConfig(session=_LONG, drift=_drift(GradualDrift(sigma=0.1, reversion=0.02))),
    ),
    Scenario(
        "AbruptShift",
        "At global step 5,000 the population's tastes jump to a fresh draw and every user "
        "follows; individual users also jump at rate 1/2000 per step.",
        EnvConfig(drift=_drift(AbruptShift(at_steps=(5000,), rate=0.0005))),
    ),
    Scenario(
        "ConsumptionDrift",
        "Endogenous drift: clicked items pull interests toward their topics when liked "
        "(quality >= 0.5) and push them away otherwise (a filter-bubble feedback loop).",
        EnvConfig(session=_LONG, drift=_drift(ConsumptionDrift(pull=0.2, push=0.1))),
    ),
    Scenario(
        "Boredom",
        "Satiation: each click adds boredom to the item's topics (gain 1.0), which decays 10% "
        "per step; repeating a topic loses appeal.",
        EnvConfig(drift=_drift(Boredom(gain=1.0, decay=0.1))),
    ),
    Scenario(
        "PopulationTrend",
        "The population new users come from moves along a closed orbit with period 20,000 "
        "global steps; current users keep their tastes.",
        EnvConfig(drift=_drift(PopulationTrend(amplitude=1.0, period=20_000))),
    ),
    Scenario(
        "NewItems",
        "Cold start: 30% of the catalog is released over the first 10,000 global steps; "
        "unreleased items are masked.",
        EnvConfig(catalog=CatalogConfig(new_item_fraction=0.3, release_horizon=10_000)),
    ),
    Scenario(
        "Mixed",
        "Everything at once: Ornstein-Uhlenbeck drift, consumption drift, boredom, a population "
        "trend, a scheduled shift at step 5,000 with Poisson jumps, and new items arriving.",
        EnvConfig(
            catalog=_MIXED_CATALOG,
            session=_LONG,
            drift=_MIXED_DRIFT,
        ),
    ),
    Scenario(
        "SlateStationary",
        "Slates of 10 with position bias 0.85 and no drift.",
        EnvConfig(choice=_SLATE, session=SessionConfig(history_len=30)),
    ),
    Scenario(
        "SlateMixed",
        "Slates of 10 under the Mixed scenario's drift and new items.",
        EnvConfig(
            catalog=_MIXED_CATALOG,
            choice=_SLATE,
            session=SessionConfig(max_steps=200, history_len=30),
            drift=_MIXED_DRIFT,
        ),
    ),
    Scenario(
        "UserJumps",
        "Individual users' tastes jump to a fresh draw from the (stable) population at rate "
        "1/50 per step, about twice a session: in-context adaptation without a population shift.",
        EnvConfig(drift=_drift(AbruptShift(rate=0.02))),
    ),
    Scenario(
        "PopulationDrift",
        "The population's mean interest takes a random walk (sigma 0.02 per topic per step) and "
        "every current user moves with it: gradual drift at the population level.",
        EnvConfig(session=_LONG, drift=_drift(PopulationDrift(sigma=0.02))),
    ),
    Scenario(
        "LongTerm",
        "Planning pays: low-quality items attract more (quality weight -1, clickbait), and "
        "every click moves a satisfaction (gain 0.2 x (q - 0.5), decay 5%) that adds 1.5 x "
        "satisfaction to every later attraction.",
        EnvConfig(
            choice=_CLICKBAIT,
            drift=_drift(Satisfaction(gain=0.2, decay=0.05, weight=1.5)),
        ),
    ),
    Scenario(
        "LongTermBoredom",
        "LongTerm with stronger clickbait (quality weight -1.5), satisfaction (gain 0.15, "
        "weight 2) and boredom (gain 0.5, decay 10%): rotating topics matters too.",
        EnvConfig(
            choice=_CLICKBAIT_STRONG,
            drift=_drift(
                Satisfaction(gain=0.15, decay=0.05, weight=2.0), Boredom(gain=0.5, decay=0.1)
            ),
        ),
    ),
    Scenario(
        "LongTermAversion",
        "Over-exposure backfires: clicks make a topic boring (gain 1, decay 10%), and boredom "
        "above 1.0 turns into a lasting loss of interest in that topic (rate 1 per unit per "
        "step). A topic takes about one click every 14-16 steps without harm, so a plan spaces "
        "each user's topics; a fixed re-ranking cannot.",
        EnvConfig(
            drift=_drift(Boredom(gain=1.0, decay=0.1), Aversion(threshold=1.0, rate=1.0)),
        ),
    ),
)

_ALL += (
    Scenario(
        "JargonNews",
        "Text is the bottleneck: 90% of 1,200 items arrive over the first 1,200 steps and go "
        "stale (half their appeal gone 100 steps after release); a clicked item cannot be "
        "clicked again in the session; texts use another topic's words and tell the true "
        "topic only by made-up jargon shared within the topic.",
        EnvConfig(
            catalog=CatalogConfig(
                num_items=1200,
                num_topics=12,
                topic_purity=1.0,
                new_item_fraction=0.9,
                release_horizon=1200,
                text_style="jargon",
            ),
            choice=ChoiceConfig(
                interest_weight=3.0,
                quality_weight=0.5,
                no_repeat=True,
                staleness_weight=3.0,
                staleness_halflife=100.0,
            ),
            session=SessionConfig(max_steps=50),
        ),
    ),
)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in _ALL}

# Scenarios calibrated from real data that is not shipped: name -> (description, builder).
# The builder (``module:function``) reads the data and fits the world on first use, so these are
# registered and listed but not in SCENARIOS (which holds worlds that always build).
CALIBRATED_SCENARIOS: dict[str, tuple[str, str]] = {
    "MovieLens": (
        "Calibrated from MovieLens-100k at run time (1,682 movies over genres and 16 learnt "
        "taste topics, their fitted appeal, 943 fitted users bootstrapped per world seed, the "
        "fitted click level, within-user drift); needs the data: pip install --no-deps recbole",
        "driftrec.envs.movielens:movielens_config",
    ),
}


SCENARIO_FILE_SUFFIXES = (".json", ".toml")
"""A scenario name ending in one of these is read from that file."""

_METADATA_KEYS = ("name", "description")
"""Scenario-file keys besides those of :meth:`EnvConfig.to_dict`."""

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")

_REGISTERED: dict[str, Scenario] = {}
"""Scenarios registered with :func:`register_scenario`, by name."""

_FILE_CACHE: dict[str, tuple[tuple[int, int], Scenario]] = {}
"""Scenario files already read: resolved path -> ((mtime_ns, size), scenario)."""

_PINNED: dict[str, Scenario] = {}
"""Scenarios handed to a worker process (:func:`install_scenario_snapshot`), by the name or path
the grid gives; they win over everything else, so a worker runs what its parent resolved."""


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def list_scenarios() -> list[Scenario]:
    """Every named scenario in a stable order: the built-in ones, then the registered ones."""
    return [*SCENARIOS.values(), *_REGISTERED.values()]


def _is_file_name(name: str) -> bool:
    return name.lower().endswith(SCENARIO_FILE_SUFFIXES)


def get_scenario(name: str) -> Scenario:
    """Look up a scenario by name (``"AbruptShift"``, ``"abrupt-shift"``), Gymnasium id, a name
    given to :func:`register_scenario`, or the path of a scenario file (``.json``/``.toml``,
    see :func:`load_scenario_file`)."""
    if not isinstance(name, str):
        raise TypeError(f"'scenario' must be a str (got {name!r})")
    if name in _PINNED:
        return _PINNED[name]
    if _is_file_name(name):
        return load_scenario_file(name)
    base = name.split("/")[-1].split("-v")[0] if "/" in name else name
    for s in _ALL:
        if _key(s.name) == _key(base):
            return s
    for cname, (description, builder) in CALIBRATED_SCENARIOS.items():
        if _key(cname) == _key(base):
            module, _, func = builder.partition(":")
            config = getattr(importlib.import_module(module), func)()  # cached by the builder
            return Scenario(cname, description, config)
    for s in _REGISTERED.values():
        if _key(s.name) == _key(base):
            return s
    names = [s.name for s in _ALL] + list(CALIBRATED_SCENARIOS) + list(_REGISTERED)
    raise ValueError(
        f"'scenario' must be one of {names} or a scenario file "
        f"({'/'.join(SCENARIO_FILE_SUFFIXES)}) (got {name!r})"
    )


def _builtin_clash(name: str) -> str | None:
    for other in [s.name for s in _ALL] + list(CALIBRATED_SCENARIOS):
        if _key(other) == _key(name):
            return other
    return None


def _check_name(name: Any, where: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name) or "__" in name:
        raise ValueError(
            f"{where} must be a name of letters, digits, '_', '-' and '.' that starts with a "
            f"letter and has no '__' (got {name!r})"
        )


def scenario_to_dict(scenario: Scenario | str) -> dict[str, Any]:
    """The scenario-file form of a scenario: ``description`` plus :meth:`EnvConfig.to_dict`.

    ``json.dumps`` of it is a scenario file (``driftrec scenarios --show NAME`` prints it); the
    file's name becomes the scenario's name, so the output of a built-in can be saved under a
    new name and edited. Reading it back gives the same config.
    """
    s = get_scenario(scenario) if isinstance(scenario, str) else scenario
    return {"description": s.description, **s.config.to_dict()}


def _read_data(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"scenario file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"scenario file {path}: cannot be read ({exc})") from None
    if path.suffix.lower() == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"scenario file {path}: not valid TOML ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"scenario file {path}: not valid JSON ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno})"
        ) from None


def _resolve_paths(data: dict[str, Any], folder: Path) -> None:
    """Relative ``catalog_path`` / ``population_path`` are relative to the scenario file."""
    for key in ("catalog_path", "population_path"):
        value = data.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            data[key] = str(folder / value)


def load_scenario_file(path: str | os.PathLike[str]) -> Scenario:
    """Read a scenario file: a JSON (or TOML) object whose keys mirror :class:`EnvConfig`.

    Example (every key is optional; missing ones take :class:`EnvConfig`'s defaults)::

        {"description": "A shift at step 96 and boredom",
         "session": {"max_steps": 50},
         "drift": {"processes": [{"kind": "AbruptShift", "at_steps": [96]},
                                 {"kind": "Boredom", "gain": 0.3}]}}

    Drift processes are written by ``kind`` (``"abrupt"`` or the class name ``"AbruptShift"``)
    and their parameters (:mod:`driftrec.envs.drift`). ``name`` (default: the file's stem) and
    ``description`` are optional. A relative ``catalog_path`` is relative to the file.
    ``driftrec scenarios --show NAME`` prints any scenario in this form.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError, TypeError: one line naming the file, the key path
            (``drift.processes[1].gain``) and what was expected.
    """
    p = Path(path)
    try:
        st = p.stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None
    resolved = str(p.resolve())
    cached = _FILE_CACHE.get(resolved)
    if cached is not None and stamp is not None and cached[0] == stamp:
        return cached[1]
    scenario = _parse_scenario_file(p)
    if stamp is not None:
        _FILE_CACHE[resolved] = (stamp, scenario)
    return scenario


def _parse_scenario_file(p: Path, name: str | None = None) -> Scenario:
    """Read ``p``; ``name`` (a registration's) replaces the file's own name and its checks."""
    data = _read_data(p)
    if not isinstance(data, dict):
        raise ValueError(
            f"scenario file {p}: expected an object of env config sections such as "
            f'{{"drift": {{"processes": [...]}}}} (got {type(data).__name__})'
        )
    data = dict(data)
    meta = {k: data.pop(k) for k in _METADATA_KEYS if k in data}
    try:
        if name is None:
            name = meta.get("name", p.stem)
            _check_name(name, "'name'" if "name" in meta else "the file's name (or a 'name' key)")
            clash = _builtin_clash(name)
            if clash is not None:
                raise ValueError(
                    f"'name' {name!r} is the built-in scenario {clash!r}; give the file another "
                    "name (or set its 'name' key)"
                )
        description = meta.get("description", f"Read from {p.name}.")
        if not isinstance(description, str):
            raise TypeError(f"'description' must be a string (got {description!r})")
        _resolve_paths(data, p.resolve().parent)
        config = EnvConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"scenario file {p}: {exc}") from None
    return Scenario(name, description, config, source=str(p))


def _env_id(name: str) -> str:
    return f"driftrec/{name}-v{VERSION}"


def register_scenario(
    name: str,
    config_or_path: EnvConfig | Mapping[str, Any] | str | os.PathLike[str],
    *,
    description: str | None = None,
    overwrite: bool = False,
) -> Scenario:
    """Register a scenario for the experiment runner and as the Gymnasium id
    ``driftrec/<name>-v1``, like :func:`gymnasium.register`.

    Args:
        name: letters, digits, ``_``, ``-``, ``.`` (no ``__``: run directories use it); not a
            built-in scenario's name.
        config_or_path: an :class:`EnvConfig`, its dict form (a scenario file's content), or
            the path of a scenario file (:func:`load_scenario_file`).
        description: one line for ``driftrec scenarios`` (default: the file's, or a stock one).
        overwrite: replace a scenario already registered under ``name`` with another config
            (registering the same config again is always allowed and changes nothing).

    Returns:
        The registered :class:`Scenario`; ``get_scenario(name)`` and
        ``gymnasium.make("driftrec/<name>-v1")`` now find it. Worker processes of a grid get
        the registered scenarios from the runner (no need to register them there again).

    Raises:
        ValueError: a bad name, a built-in name, a name registered with another config (without
            ``overwrite``), or a bad config (naming the key path).
    """
    _check_name(name, "'name'")
    clash = _builtin_clash(name)
    if clash is not None:
        raise ValueError(f"'name' {name!r} is the built-in scenario {clash!r}; choose another name")
    source = None
    if isinstance(config_or_path, EnvConfig):
        config = config_or_path
    elif isinstance(config_or_path, Mapping):
        data = dict(config_or_path)
        file_description = data.pop("description", None)
        data.pop("name", None)
        config = EnvConfig.from_dict(data)
        description = description if description is not None else file_description
    elif isinstance(config_or_path, str | os.PathLike):
        from_file = _parse_scenario_file(Path(config_or_path), name)
        config, source = from_file.config, from_file.source
        description = description if description is not None else from_file.description
    else:
        raise TypeError(
            "'config_or_path' must be an EnvConfig, a mapping or a scenario file path "
            f"(got {type(config_or_path).__name__})"
        )
    if description is None:
        description = f"Registered with driftrec.register_scenario({name!r}, ...)."
    if not isinstance(description, str):
        raise TypeError(f"'description' must be a string (got {description!r})")
    old = next((s for s in _REGISTERED.values() if _key(s.name) == _key(name)), None)
    if old is not None and old.config != config and not overwrite:
        raise ValueError(
            f"scenario {old.name!r} is already registered with another config; pass "
            "overwrite=True to replace it (or choose another name)"
        )
    if old is not None:
        unregister_scenario(old.name)
    scenario = Scenario(name, description, config, source=source)
    _REGISTERED[name] = scenario
    _register_id(name)
    return scenario


def _register_id(name: str) -> None:
    env_id = _env_id(name)
    if env_id in gym.registry:
        del gym.registry[env_id]  # re-registered with a new config: no "overriding" warning
    gym.register(
        id=env_id,
        entry_point="driftrec.envs.gym_env:DriftRecEnv",
        vector_entry_point="driftrec.envs.gym_env:DriftRecVectorEnv",
        kwargs={"scenario": name},
    )


def unregister_scenario(name: str) -> None:
    """Remove a scenario registered with :func:`register_scenario` (and its Gymnasium id)."""
    scenario = _REGISTERED.pop(name, None)
    if scenario is None:
        raise ValueError(f"'name' must be a registered scenario {list(_REGISTERED)} (got {name!r})")
    gym.registry.pop(_env_id(name), None)


def registered_env_id(scenario: Scenario) -> str | None:
    """The Gymnasium id that makes ``scenario``: its ``env_id`` for a built-in or registered
    scenario, None for a scenario file that was not registered (``gym.make`` cannot make it)."""
    if scenario.source is None or _REGISTERED.get(scenario.name) is scenario:
        return scenario.env_id
    return None


def scenario_snapshot(names: Any) -> dict[str, dict[str, Any]]:
    """The registered and file scenarios among ``names``, in a JSON-ready form that
    :func:`install_scenario_snapshot` installs in another process (a grid's workers)."""
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        s = get_scenario(name)
        registered = _REGISTERED.get(s.name) is s
        if s.source is not None or registered:
            out[name] = {
                "name": s.name,
                "description": s.description,
                "source": s.source,
                "config": s.config.to_dict(),
                "registered": registered,
            }
    return out


def install_scenario_snapshot(snapshot: Mapping[str, Mapping[str, Any]]) -> None:
    """Make ``get_scenario`` return exactly the scenarios of :func:`scenario_snapshot` (in a
    worker process, before the grid's config is rebuilt there)."""
    for given, s in snapshot.items():
        scenario = Scenario(
            s["name"], s["description"], EnvConfig.from_dict(s["config"]), source=s["source"]
        )
        _PINNED[given] = scenario
        if s.get("registered", s["source"] is None):
            _REGISTERED[s["name"]] = scenario
            _register_id(s["name"])


def register_scenarios() -> None:
    """Register every scenario with Gymnasium (idempotent), the calibrated ones included."""
    for name in [s.name for s in _ALL] + list(CALIBRATED_SCENARIOS):
        env_id = _env_id(name)
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="driftrec.envs.gym_env:DriftRecEnv",
            vector_entry_point="driftrec.envs.gym_env:DriftRecVectorEnv",
            kwargs={"scenario": name},
        )
