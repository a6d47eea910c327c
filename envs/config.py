"""Frozen, validated configuration for the simulator.

Every config is a ``@dataclass(frozen=True, slots=True)`` checked in ``__post_init__``; a bad value
raises ``ValueError`` (or ``TypeError`` for a bad type) whose message names the field, the value
and what was expected, e.g. ``"'num_items' must be an integer >= 1 (got 0)"``. Variants come from
``dataclasses.replace`` or :meth:`EnvConfig.with_overrides`.

The drift processes themselves live in :mod:`driftrec.envs.drift`; :class:`DriftConfig` holds a
tuple of them plus the seed of the "world" (the population's mean interest over time).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from driftrec.envs.drift import DriftProcess, drift_process_from_dict

__all__ = [
    "CatalogConfig",
    "UserConfig",
    "ChoiceConfig",
    "RewardConfig",
    "SessionConfig",
    "DriftConfig",
    "EnvConfig",
    "TEXT_STYLES",
    "check_int",
    "check_float",
    "check_choice",
    "check_slate_fits",
    "section_from_dict",
    "section_to_dict",
    "SECTIONS",
]


MAX_WEIGHT = 100.0
"""Upper bound of the choice weights and the interest scale, spread and clip: attraction scores
stay within about +-1e4, so click probabilities and the oracle stay finite (no NaN)."""
MAX_PATIENCE = 1e6
"""Upper bound of the patience parameters."""
MAX_STEP = 10**9
"""Upper bound of global-step counts such as ``release_horizon`` (they must fit int64 sums)."""


# --------------------------------------------------------------------------------------------
# validators (attrs-style messages)
# --------------------------------------------------------------------------------------------
def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> None:
    """Raise unless ``value`` is an int (not bool) within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"'{name}' must be an integer (got {value!r} of type {type(value).__name__})"
        )
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"'{name}' must be an integer {_range(low, high)} (got {value!r})")


def check_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
) -> None:
    """Raise unless ``value`` is a finite number in ``[low, high]`` (or ``(low, high]``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"'{name}' must be a number (got {value!r} of type {type(value).__name__})")
    bad = not math.isfinite(value)
    bad |= low is not None and (value <= low if low_open else value < low)
    bad |= high is not None and value > high
    if bad:
        raise ValueError(
            f"'{name}' must be a finite number {_range(low, high, low_open)} (got {value!r})"
        )


def check_slate_fits(slate_size: int, num_items: int) -> None:
    """Raise unless a slate of ``slate_size`` distinct items fits a catalog of ``num_items``."""
    if slate_size > num_items:
        raise ValueError(
            f"'slate_size' must be <= the number of items ({num_items}) (got {slate_size})"
        )


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"'{name}' must be one of {', '.join(map(repr, choices))} (got {value!r})")


def _range(low: float | None, high: float | None, low_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}]"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"<= {high}"
    return ""


# --------------------------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CatalogConfig:
    """The generated item catalog.

    Args:
        num_items (int, defaults to 1000): number of items N (1 to 10,000,000).
        num_topics (int, defaults to 20): number of latent topics K; the generator has named
            topics with their own vocabularies for up to 24.
        topic_purity (float, defaults to 0.8): mean weight of an item's main topic; the rest goes
            to one secondary topic. 1.0 makes every item single-topic.
        quality_alpha (float, defaults to 2.0): Beta(alpha, beta) shape of item quality in [0, 1].
        quality_beta (float, defaults to 2.0): see ``quality_alpha``.
        new_item_fraction (float, defaults to 0.0): fraction of items that are not released at
            global step 0 but arrive later (cold start).
        release_horizon (int, defaults to 20000): new items are released at global steps spread
            uniformly over ``[1, release_horizon]``.
        seed (int, defaults to 0): seed of the catalog's own random stream. Resets never
            reshuffle the catalog.
        text_style (str, defaults to ``"plain"``): how item texts tell their topic.
            ``"plain"``: in the topic's own words. ``"jargon"``: the words of another topic
            (misleading), plus made-up jargon words of the true topic that every item of that
            topic draws from (see :func:`driftrec.envs.catalog.generate_catalog`).
    """

    num_items: int = 1000
    num_topics: int = 20
    topic_purity: float = 0.8
    quality_alpha: float = 2.0
    quality_beta: float = 2.0
    new_item_fraction: float = 0.0
    release_horizon: int = 20_000
    seed: int = 0
    text_style: str = "plain"

    def __post_init__(self) -> None:
        check_int("num_items", self.num_items, 1, 10_000_000)
        check_int("num_topics", self.num_topics, 2, 24)
        check_float("topic_purity", self.topic_purity, 0.5, 1.0)
        check_float("quality_alpha", self.quality_alpha, 0.0, 1000.0, low_open=True)
        check_float("quality_beta", self.quality_beta, 0.0, 1000.0, low_open=True)
        check_float("new_item_fraction", self.new_item_fraction, 0.0, 0.99)
        check_int("release_horizon", self.release_horizon, 1, MAX_STEP)
        check_int("seed", self.seed, 0)
        check_choice("text_style", self.text_style, TEXT_STYLES)


TEXT_STYLES = ("plain", "jargon")
"""The generated catalog's text styles (:attr:`CatalogConfig.text_style`)."""


@dataclass(frozen=True, slots=True)
class UserConfig:
    """How users are drawn and when they leave.

    A new user's interest vector is ``theta = mu(t) + interest_spread * eps`` with
    ``eps ~ N(0, I_K)``, where ``mu(t)`` is the population mean at global step ``t`` (see
    :class:`DriftConfig`). Interests are clipped to ``[-interest_clip, interest_clip]``.

    Patience is a budget: every step costs ``patience_cost``; a step's reward ``r`` returns
    ``patience_gain * r``; the user leaves (``terminated``) when patience reaches 0 or below.

    Args:
        population_scale (float, defaults to 0.7): standard deviation of the population mean's
            entries ``mu_k``.
        interest_spread (float, defaults to 1.0): standard deviation of a user around ``mu``.
        interest_clip (float, defaults to 4.0): interests stay within +-this.
        patience (float, defaults to 20.0): initial patience budget.
        patience_cost (float, defaults to 1.0): patience spent per step.
        patience_gain (float, defaults to 1.5): patience regained per unit of reward.
        max_patience (float, defaults to 50.0): patience never exceeds this.
    """

    population_scale: float = 0.7
    interest_spread: float = 1.0
    interest_clip: float = 4.0
    patience: float = 20.0
    patience_cost: float = 1.0
    patience_gain: float = 1.5
    max_patience: float = 50.0

    def __post_init__(self) -> None:
        check_float("population_scale", self.population_scale, 0.0, MAX_WEIGHT)
        check_float("interest_spread", self.interest_spread, 0.0, MAX_WEIGHT)
        check_float("interest_clip", self.interest_clip, 0.0, MAX_WEIGHT, low_open=True)
        check_float("patience", self.patience, 0.0, MAX_PATIENCE, low_open=True)
        check_float("patience_cost", self.patience_cost, 0.0, MAX_PATIENCE)
        check_float("patience_gain", self.patience_gain, 0.0, MAX_PATIENCE)
        check_float("max_patience", self.max_patience, 0.0, MAX_PATIENCE, low_open=True)
        if self.max_patience < self.patience:
            raise ValueError(
                f"'max_patience' must be >= 'patience' ({self.patience}) (got {self.max_patience})"
            )


@dataclass(frozen=True, slots=True)
class ChoiceConfig:
    """The click model (multinomial logit with a no-click option and position bias).

    The attraction of item ``i`` to user ``u`` is::

        s_ui = interest_weight * <theta_u, z_i> + quality_weight * (q_i - 0.5)
               - boredom_weight * <b_u, z_i>
               - staleness_weight * (1 - 2 ** (-age_i / staleness_halflife))

    where ``z_i`` is the item's topic vector (on the simplex), ``q_i`` its quality, ``b_u`` the
    user's boredom and ``age_i = t - release_i`` the global steps since the item was released
    (the staleness term is off by default: news-like items lose their appeal as they age).
    With ``no_repeat`` an item a user has clicked cannot be clicked again by that user during
    the same session (showing it is a no-op, like an unreleased item); each user slot keeps one
    bit per item for it (``ceil(N / 8)`` bytes per slot), cleared when a new user arrives.

    A slate ``(i_0, ..., i_{k-1})`` is clicked at position ``j`` with probability
    ``w_j exp(s_j) / (exp(no_click_score) + sum_l w_l exp(s_l))`` with ``w_j = position_bias**j``;
    otherwise nothing is clicked. With ``slate_size == 1`` this is ``sigmoid(s - no_click_score)``.

    Args:
        slate_size (int, defaults to 1): 1 gives single-item actions ``Discrete(N)``; k > 1 gives
            slates ``MultiDiscrete([N] * k)``.
        interest_weight (float, defaults to 1.5): weight of interest match.
        quality_weight (float, defaults to 1.0): weight of item quality, in [-100, 100]; negative
            makes low-quality items the more attractive ones ("clickbait", see the LongTerm
            scenarios).
        boredom_weight (float, defaults to 1.0): weight of boredom (only matters with a
            boredom drift process).
        no_click_score (float, defaults to 1.5): attraction of not clicking.
        position_bias (float, defaults to 0.85): geometric attention decay down the slate, in
            ``(0, 1]``.
        no_repeat (bool, defaults to False): a clicked item is consumed: the same user cannot
            click it again in this session.
        staleness_weight (float, defaults to 0.0): attraction an item loses as it ages (the
            limit for old items), in [0, 100].
        staleness_halflife (float, defaults to 100.0): global steps after its release at which
            an item has lost half of ``staleness_weight``, > 0.
    """

    slate_size: int = 1
    interest_weight: float = 1.5
    quality_weight: float = 1.0
    boredom_weight: float = 1.0
    no_click_score: float = 1.5
    position_bias: float = 0.85
    no_repeat: bool = False
    staleness_weight: float = 0.0
    staleness_halflife: float = 100.0

    def __post_init__(self) -> None:
        check_int("slate_size", self.slate_size, 1, 100)
        check_float("interest_weight", self.interest_weight, 0.0, MAX_WEIGHT)
        check_float("quality_weight", self.quality_weight, -MAX_WEIGHT, MAX_WEIGHT)
        check_float("boredom_weight", self.boredom_weight, 0.0, MAX_WEIGHT)
        check_float("no_click_score", self.no_click_score, -20.0, 20.0)
        check_float("position_bias", self.position_bias, 0.0, 1.0, low_open=True)
        if not isinstance(self.no_repeat, bool):
            raise TypeError(f"'no_repeat' must be a bool (got {self.no_repeat!r})")
        check_float("staleness_weight", self.staleness_weight, 0.0, MAX_WEIGHT)
        check_float("staleness_halflife", self.staleness_halflife, 0.0, MAX_STEP, low_open=True)


@dataclass(frozen=True, slots=True)
class RewardConfig:
    """What the agent is paid.

    Args:
        kind (str, defaults to ``"click"``): ``"click"`` pays 1 per click; ``"engagement"`` pays
            ``click * watch_time`` with watch time equal to the clicked item's quality in [0, 1].
    """

    kind: str = "click"

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, ("click", "engagement"))


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Episode length and what the agent observes.

    Args:
        max_steps (int, defaults to 100): a session is truncated after this many steps.
        history_len (int, defaults to 20): number of recent impressions in the observation
            (a slate of k items adds k impressions per step; must be >= ``slate_size``).
        observation (str, defaults to ``"flat"``): ``"flat"`` (one float32 ``Box``) or ``"dict"``
            (a flat ``Dict`` of ``Box`` es); see :mod:`driftrec.envs.observation`.
        oracle_info (bool, defaults to True): put the privileged oracle fields in ``info``
            (costs one ``(B, K) @ (K, N)`` product per step).
    """

    max_steps: int = 100
    history_len: int = 20
    observation: str = "flat"
    oracle_info: bool = True

    def __post_init__(self) -> None:
        check_int("max_steps", self.max_steps, 1, 10_000_000)
        check_int("history_len", self.history_len, 1, 10_000)
        check_choice("observation", self.observation, ("flat", "dict"))
        if not isinstance(self.oracle_info, bool):
            raise TypeError(f"'oracle_info' must be a bool (got {self.oracle_info!r})")


@dataclass(frozen=True, slots=True)
class DriftConfig:
    """The drift processes applied every step, in order, and the world's seed.

    Args:
        processes (tuple of DriftProcess, defaults to ()): e.g.
            ``(GradualDrift(sigma=0.05), AbruptShift(at_steps=(5000,)))``; see
            :mod:`driftrec.envs.drift` for each process's equation.
        seed (int, defaults to 0): seed of the world stream that draws the population mean
            ``mu``, the means after scheduled shifts and the trend directions; with a fitted
            population (``EnvConfig.population_path``), which fitted users make it up (a
            bootstrap resample of the table).
    """

    processes: tuple[DriftProcess, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.processes, tuple):
            raise TypeError(
                f"'processes' must be a tuple of drift processes (got {self.processes!r})"
            )
        for p in self.processes:
            if not isinstance(p, DriftProcess):
                raise TypeError(f"'processes' must contain drift processes (got {p!r})")
        kinds = [type(p).__name__ for p in self.processes]
        dup = {k for k in kinds if kinds.count(k) > 1}
        if dup:
            raise ValueError(f"'processes' may hold each kind once (got {sorted(dup)} twice)")
        if "Aversion" in kinds and "Boredom" not in kinds[: kinds.index("Aversion")]:
            raise ValueError(
                "'processes' must list Boredom before Aversion (Aversion reads the boredom "
                f"that Boredom updates) (got {kinds})"
            )
        check_int("seed", self.seed, 0)

    def get(self, kind: type) -> Any:
        """Return the process of type ``kind`` or ``None``."""
        for p in self.processes:
            if isinstance(p, kind):
                return p
        return None


_SECTIONS = {
    "catalog": CatalogConfig,
    "users": UserConfig,
    "choice": ChoiceConfig,
    "reward": RewardConfig,
    "session": SessionConfig,
    "drift": DriftConfig,
}

SECTIONS = tuple(_SECTIONS)
"""The names of :class:`EnvConfig`'s sections, in order."""

# EnvConfig fields outside the sections
_TOP_LEVEL = ("catalog_path", "population_path")

# Shortcut keyword -> (section, field) for EnvConfig.with_overrides and env constructors.
SHORTCUTS: dict[str, tuple[str, str]] = {
    "num_items": ("catalog", "num_items"),
    "num_topics": ("catalog", "num_topics"),
    "catalog_seed": ("catalog", "seed"),
    "new_item_fraction": ("catalog", "new_item_fraction"),
    "slate_size": ("choice", "slate_size"),
    "reward": ("reward", "kind"),
    "max_steps": ("session", "max_steps"),
    "history_len": ("session", "history_len"),
    "observation": ("session", "observation"),
    "oracle_info": ("session", "oracle_info"),
    "world_seed": ("drift", "seed"),
}


FILE_CATALOG_IGNORES = frozenset(
    {"num_items", "num_topics", "topic_purity", "quality_alpha", "quality_beta"}
)
"""The catalog fields a catalog file (``catalog_path``) decides: overriding one is an error."""


def _catalog_field(key: str) -> str | None:
    """The catalog field an override key sets (``"num_items"``, ``"catalog.num_items"``)."""
    section, name = SHORTCUTS.get(key, key.partition(".")[::2])
    return name if section == "catalog" else None


@dataclass(frozen=True, slots=True)
class EnvConfig:
    """Everything that defines a simulated world. Sections are documented on their classes.

    Args:
        catalog (CatalogConfig): the generated catalog (ignored when ``catalog_path`` is set,
            except ``seed``, ``new_item_fraction`` and ``release_horizon``).
        users (UserConfig): user population and leaving.
        choice (ChoiceConfig): click model and slate size.
        reward (RewardConfig): click or engagement reward.
        session (SessionConfig): time limit and observation.
        drift (DriftConfig): drift processes.
        catalog_path (str or None, defaults to None): a CSV or JSONL catalog to load instead of
            generating one (see :func:`driftrec.envs.catalog.load_catalog`).
        population_path (str or None, defaults to None): an ``.npz`` table of fitted user
            interests that new users are resampled from instead of ``mu(t) + spread * eps``
            (see :mod:`driftrec.envs.population`; written by :mod:`driftrec.envs.movielens`).
    """

    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    users: UserConfig = field(default_factory=UserConfig)
    choice: ChoiceConfig = field(default_factory=ChoiceConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    catalog_path: str | None = None
    population_path: str | None = None

    def __post_init__(self) -> None:
        for name, cls in _SECTIONS.items():
            value = getattr(self, name)
            if not isinstance(value, cls):
                raise TypeError(f"'{name}' must be a {cls.__name__} (got {value!r})")
        if self.catalog_path is not None and not isinstance(self.catalog_path, str):
            raise TypeError(f"'catalog_path' must be a str or None (got {self.catalog_path!r})")
        if self.catalog_path is None:  # a catalog file is checked when it is loaded
            check_slate_fits(self.choice.slate_size, self.catalog.num_items)
        if self.population_path is not None and not isinstance(self.population_path, str):
            raise TypeError(
                f"'population_path' must be a str or None (got {self.population_path!r})"
            )
        if self.session.history_len < self.choice.slate_size:
            raise ValueError(
                f"'history_len' must be >= 'slate_size' ({self.choice.slate_size}) "
                f"(got {self.session.history_len})"
            )

    def with_overrides(self, **overrides: Any) -> EnvConfig:
        """Return a copy with fields replaced.

        Keys are shortcuts (``num_items``, ``slate_size``, ``reward``, ``max_steps``,
        ``history_len``, ``observation``, ``oracle_info``, ``num_topics``, ``catalog_seed``,
        ``new_item_fraction``, ``world_seed``), dotted paths (``"users.patience"``), section
        names with a config object (``users=UserConfig(...)``) or with a mapping in the form of
        :meth:`to_dict` that replaces only the fields it names
        (``drift={"processes": [{"kind": "Boredom", "gain": 0.3}]}`` replaces the processes and
        keeps the world seed), or ``catalog_path``. Errors name the key path
        (``'drift.processes[0].gain' (Boredom) must be ...``).
        """
        sections: dict[str, Any] = {name: getattr(self, name) for name in _SECTIONS}
        fields: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
        top: dict[str, Any] = {}
        given: dict[str, str] = {}
        for key, value in overrides.items():
            section_object = key in _SECTIONS and (
                key not in SHORTCUTS or isinstance(value, _SECTIONS[key] | Mapping)
            )  # "reward" is a section and a shortcut: a RewardConfig (or its mapping) or its kind
            if section_object and isinstance(value, Mapping):  # merged into the current section
                value = section_from_dict(key, value, base=sections[key])
            if key in _TOP_LEVEL or section_object:
                top[key] = value
                continue
            section, _, name = key.partition(".")
            if key in SHORTCUTS:
                section, name = SHORTCUTS[key]
            elif not name or section not in _SECTIONS:
                known = sorted({*SHORTCUTS, *_SECTIONS, *_TOP_LEVEL})
                raise ValueError(
                    f"unknown config override {key!r}; expected one of {known} "
                    "or a dotted path such as 'users.patience'"
                )
            sub = sections[section]
            if name not in {f.name for f in dataclasses.fields(sub)}:
                raise ValueError(
                    f"unknown config field {key!r}: {type(sub).__name__} has no field {name!r}"
                )
            fields[section][name] = value
            if key in SHORTCUTS:  # an error names the field as it was given
                given[f"{section}.{name}"] = key
        catalog_path = top.get("catalog_path", self.catalog_path)
        ignored = [k for k in overrides if _catalog_field(k) in FILE_CATALOG_IGNORES]
        if catalog_path is not None and ignored:
            raise ValueError(
                f"{ignored[0]!r} cannot be set with 'catalog_path' {catalog_path!r} (got "
                f"{overrides[ignored[0]]!r}): the catalog file decides the items and their "
                "topics; expected no such override (edit the file instead)"
            )
        # replace every section first and validate the whole config once, so that the order of
        # the keywords never matters (e.g. slate_size and history_len together)
        for name, changes in fields.items():
            base = top.pop(name, sections[name])
            try:
                sections[name] = dataclasses.replace(base, **changes) if changes else base
            except (TypeError, ValueError) as exc:
                raise _at(name, exc, given) from None
        try:
            return dataclasses.replace(self, **sections, **top)
        except (TypeError, ValueError) as exc:
            raise _at("", exc, given) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (drift processes carry a ``"kind"`` key)."""
        out: dict[str, Any] = {name: section_to_dict(getattr(self, name)) for name in _SECTIONS}
        out["catalog_path"] = self.catalog_path
        if self.population_path is not None:  # absent for generated worlds, as before
            out["population_path"] = self.population_path
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnvConfig:
        """Inverse of :meth:`to_dict`; missing sections and fields take their defaults.

        This is the scenario-file form (:mod:`driftrec.envs.scenarios`): drift processes are
        ``{"kind": ..., **params}`` with ``kind`` a kind (``"abrupt"``) or a class name
        (``"AbruptShift"``). Errors name the key path and what was expected, e.g.
        ``'drift.processes[1].gain' (Boredom) must be in [0.0, 100.0] (got -1)`` or
        ``unknown key 'catalog.num_itemz'; expected one of [...]``.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"env config must be a mapping (got {type(data).__name__})")
        _check_keys("", data, [*_SECTIONS, *_TOP_LEVEL])
        kwargs: dict[str, Any] = {
            name: section_from_dict(name, data[name]) for name in _SECTIONS if name in data
        }
        kwargs.update({key: data[key] for key in _TOP_LEVEL if key in data})
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise _at("", exc) from None


def _check_keys(path: str, data: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        names = ", ".join(repr(f"{path}.{k}" if path else str(k)) for k in unknown)
        raise ValueError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {names}; "
            f"expected one of {sorted(allowed)}"
        )


_FIELD_MESSAGE = re.compile(r"^(?:(?P<cls>[A-Z]\w*): )?'(?P<field>\w+)'(?P<rest>.*)$", re.S)
_SECTION_OF = {
    f.name: name
    for name, cls in _SECTIONS.items()
    for f in dataclasses.fields(cls)
    if sum(f.name in {g.name for g in dataclasses.fields(c)} for c in _SECTIONS.values()) == 1
}


def _at(path: str, exc: BaseException, given: Mapping[str, str] | None = None) -> BaseException:
    """``exc`` (a validator's ``"'field' must ..."``) with the field named by its key path.

    ``path`` is where the validated object sits (``"users"``, ``"drift.processes[1]"``; ``""``
    for a whole :class:`EnvConfig`, whose cross-section checks name a field of one section).
    ``given`` maps key paths to the name a caller used for them (a shortcut such as
    ``num_items``), which the message then uses.
    """
    text = str(exc)
    m = _FIELD_MESSAGE.match(text)
    if m is None:
        return type(exc)(f"{path}: {text}" if path else text)
    field_name = m["field"]
    prefix = path or _SECTION_OF.get(field_name, "")
    key = f"{prefix}.{field_name}" if prefix else field_name
    key = (given or {}).get(key, key)
    kind = f" ({m['cls']})" if m["cls"] else ""
    return type(exc)(f"'{key}'{kind}{m['rest']}")


def section_to_dict(section: Any) -> dict[str, Any]:
    """The JSON-ready dict of one config section (the form :func:`section_from_dict` reads)."""
    if isinstance(section, DriftConfig):
        return {"processes": [p.to_dict() for p in section.processes], "seed": section.seed}
    if not isinstance(section, tuple(_SECTIONS.values())):
        raise TypeError(f"expected a config section such as UserConfig (got {section!r})")
    return dataclasses.asdict(section)


def section_from_dict(name: str, data: Any, base: Any = None) -> Any:
    """Build the config section ``name`` (``"users"``, ``"drift"``, ...) from its dict form.

    Fields missing from ``data`` come from ``base`` (a section object) or the defaults; the
    ``drift`` section's ``processes`` list replaces the base's processes as a whole.

    Raises:
        ValueError, TypeError: naming the key path, e.g. ``'users.patience' must be ...``.
    """
    cls = _SECTIONS[name]
    if not isinstance(data, Mapping):
        raise TypeError(f"'{name}' must be a mapping (got {data!r})")
    if name == "drift":
        _check_keys(name, data, ["processes", "seed"])
        processes = base.processes if base is not None else ()
        if "processes" in data:
            raw = data["processes"]
            if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Sequence):
                raise TypeError(
                    "'drift.processes' must be a list of drift processes such as "
                    f'{{"kind": "AbruptShift", "at_steps": [500]}} (got {raw!r})'
                )
            built = []
            for i, p in enumerate(raw):
                try:
                    built.append(drift_process_from_dict(p))
                except (TypeError, ValueError) as exc:
                    raise _at(f"drift.processes[{i}]", exc) from None
            processes = tuple(built)
        kwargs: dict[str, Any] = {
            "processes": processes,
            "seed": data.get("seed", base.seed if base is not None else 0),
        }
    else:
        _check_keys(name, data, [f.name for f in dataclasses.fields(cls)])
        kwargs = {f.name: getattr(base, f.name) for f in dataclasses.fields(cls)} if base else {}
        kwargs.update(data)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise _at(name, exc) from None
