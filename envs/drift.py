r"""Drift processes: how users' interests change, each behind one interface.

A scenario composes several processes in :class:`~driftrec.envs.config.DriftConfig`; every step
they run in the order given, after the user has reacted to the recommendation. Notation:
``theta`` (B, K) interests, ``a`` (B, K) the user's anchor (the interests it reverts to), ``b``
(B, K) boredom, ``z`` (K,) the topic vector of the item the user clicked (on the simplex),
``mu(t)`` (K,) the population mean at global step ``t``, ``eps ~ N(0, I)`` from the user's own
stream. After all processes, ``theta`` is clipped to ``[-interest_clip, interest_clip]``.

==================  ==========================================================================
process             equation (per user, per step)
==================  ==========================================================================
GradualDrift        ``theta <- theta + reversion * (a - theta) + sigma * eps``: a random walk
                    (``reversion = 0``, ``Var[theta_t - theta_0] = t sigma^2``) or an
                    Ornstein-Uhlenbeck process around the anchor (stationary variance
                    ``sigma^2 / (1 - (1 - reversion)^2)``).
AbruptShift         At each global step in ``at_steps`` the population mean jumps to a fresh
                    draw and every user moves: ``theta <- (1 - mix) theta + mix theta'``, with
                    ``theta' = mu(t) + spread * eps``; ``a <- theta``. Independently, each user
                    jumps the same way with probability ``1 - exp(-rate)`` per step (a Poisson
                    process of intensity ``rate``).
ConsumptionDrift    On a click: ``theta <- theta + pull (z - 1/K)`` when the item's quality is
                    at least ``like_threshold`` (liked), else ``theta <- theta - push (z - 1/K)``.
Boredom             ``b <- (1 - decay) b + gain * z * clicked``; boredom lowers attraction by
                    ``boredom_weight <b, z_i>`` (see ChoiceConfig), so repeated topics lose
                    appeal and recover at rate ``decay``.
PopulationTrend     The population mean moves along a closed orbit with the global clock,
                    ``mu(t) = mu_r + amplitude ((cos(2 pi t / period) - 1) c + sin(2 pi t /
                    period) d)``; only users drawn after ``t`` see it (the whole population drifts
                    across episodes, current users do not).
PopulationDrift     The population mean takes a Gaussian random walk with the global clock,
                    ``mu(t + 1) = mu(t) + sigma * xi_t`` (``xi_t ~ N(0, I)`` from the world's
                    own stream, the same for every user), and every current user moves with
                    it: ``theta <- theta + sigma * xi_t``, ``a <- a + sigma * xi_t``. The
                    population-level counterpart of GradualDrift: forgetting old data helps.
Satisfaction        A per-user satisfaction ``sigma`` (scalar, starts at 0):
                    ``sigma <- (1 - decay) sigma + gain * clicked * (q - neutral)``, and every
                    item's attraction is raised by ``weight * sigma`` (so only the click
                    probability changes, not which item is best now). Clicking low-quality items
                    (``q < neutral``) lowers every future click probability, and with it the
                    patience the user regains; high-quality clicks restore it. With a
                    negative ``quality_weight`` (ChoiceConfig) low-quality items are also the
                    most attractive now: "clickbait" that wins the click and drains the user.
Aversion            Over-exposure turns into lasting dislike: after this step's boredom update,
                    ``theta <- theta - rate * max(b - threshold, 0)`` per topic, so a topic whose
                    boredom passes ``threshold`` loses interest for the rest of the stay (boredom
                    fades, the lost interest does not). Needs a Boredom process before it. A
                    greedy recommender that keeps showing a user's favourite topic wears it out;
                    spacing a topic's clicks keeps its boredom under the threshold.
==================  ==========================================================================

Interest updates of the incremental processes (GradualDrift, ConsumptionDrift,
PopulationDrift) saturate smoothly at the clip: the part of the change ``d = theta' - theta``
that they make together in a step (consecutive in the process order; an AbruptShift between
them, which sets interests, ends a run) that moves an entry away from 0 is scaled by
``max(0, 1 - (theta / interest_clip)^4)`` (0.996 at a quarter of the clip, 0.94 at half, 0.68 at
three quarters): entries approach the bound smoothly, and a greedy feedback loop no longer pins
them to it; the hard clip stays as a guard.

New items arriving over time are a property of the catalog (``CatalogConfig.new_item_fraction``
and ``release_horizon``): an item cannot be recommended before its release step.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from driftrec.envs.rng import UserStreams

__all__ = [
    "DriftEvent",
    "DriftProcess",
    "GradualDrift",
    "AbruptShift",
    "ConsumptionDrift",
    "Boredom",
    "PopulationTrend",
    "PopulationDrift",
    "Satisfaction",
    "Aversion",
    "DRIFT_PROCESSES",
    "DriftContext",
    "World",
    "drift_process_from_dict",
    "drift_process_kind",
]


class DriftEvent(enum.IntFlag):
    """Bits of the per-user ``drift_events`` mask reported in ``info``."""

    NONE = 0
    POPULATION_SHIFT = 1  # a scheduled abrupt shift of the whole population
    INTEREST_JUMP = 2  # this user's interests jumped (Poisson)
    NEW_ITEMS = 4  # items were released this step

    @classmethod
    def names(cls, mask: int) -> tuple[str, ...]:
        """Lower-case names of the bits set in ``mask``."""
        return _EVENT_NAMES[mask] if 0 <= mask < len(_EVENT_NAMES) else _names(mask)


def _names(mask: int) -> tuple[str, ...]:
    return tuple(e.name.lower() for e in DriftEvent if e and mask & e)  # type: ignore[union-attr]


_EVENT_NAMES = tuple(_names(m) for m in range(8))


@dataclass
class DriftContext:
    """What a drift process sees during one step (arrays are updated in place)."""

    interest: NDArray[np.float64]  # (B, K)
    anchor: NDArray[np.float64]  # (B, K)
    boredom: NDArray[np.float64]  # (B, K)
    clicked: NDArray[np.bool_]  # (B,)
    clicked_topics: NDArray[np.float64]  # (B, K), zeros where nothing was clicked
    clicked_quality: NDArray[np.float64]  # (B,), zeros where nothing was clicked
    new_clock: int  # the global step the world moves to
    world: World
    streams: UserStreams
    interest_spread: float
    events: NDArray[np.int32]  # (B,) DriftEvent bits, OR-ed in place
    satisfaction: NDArray[np.float64] | None = None  # (B,) used by Satisfaction


def _check(cls_name: str, name: str, value: Any, low: float, high: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"{cls_name}: '{name}' must be a finite number (got {value!r})")
    if value < low or (high is not None and value > high):
        rng = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{cls_name}: '{name}' must be {rng} (got {value!r})")


@dataclass(frozen=True, slots=True)
class DriftProcess:
    """Base class: a frozen, validated set of parameters plus the step it applies."""

    kind: ClassVar[str] = "base"
    saturates: ClassVar[bool] = False  # True: its interest changes saturate at the clip
    sets_interest: ClassVar[bool] = False  # True: it moves interests without saturation

    def apply(self, ctx: DriftContext) -> None:
        """Update ``ctx`` in place for one step."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters with a ``"kind"`` key."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


@dataclass(frozen=True, slots=True)
class GradualDrift(DriftProcess):
    """Random walk (``reversion = 0``) or Ornstein-Uhlenbeck drift of each user's interests.

    Args:
        sigma (float, defaults to 0.05): per-step noise standard deviation per topic.
        reversion (float, defaults to 0.0): pull toward the anchor per step, in [0, 1].
    """

    kind: ClassVar[str] = "gradual"
    saturates: ClassVar[bool] = True
    sigma: float = 0.05
    reversion: float = 0.0

    def __post_init__(self) -> None:
        _check("GradualDrift", "sigma", self.sigma, 0.0, 10.0)
        _check("GradualDrift", "reversion", self.reversion, 0.0, 1.0)

    def apply(self, ctx: DriftContext) -> None:
        k = ctx.interest.shape[1]
        noise = ctx.streams.normal(k)  # (B, K)
        if self.reversion:
            ctx.interest += self.reversion * (ctx.anchor - ctx.interest)
        ctx.interest += self.sigma * noise


@dataclass(frozen=True, slots=True)
class AbruptShift(DriftProcess):
    """Sudden interest jumps: scheduled for the whole population and/or Poisson per user.

    Args:
        at_steps (tuple of int, defaults to ()): global steps (>= 1, increasing) at which the
            population mean jumps to a fresh draw and every current user moves toward it.
        rate (float, defaults to 0.0): per-user Poisson intensity of individual jumps per step.
        mix (float, defaults to 1.0): how far a jump moves a user (1 = entirely new interests).
    """

    kind: ClassVar[str] = "abrupt"
    sets_interest: ClassVar[bool] = True
    at_steps: tuple[int, ...] = ()
    rate: float = 0.0
    mix: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.at_steps, list):
            object.__setattr__(self, "at_steps", tuple(self.at_steps))
        if not isinstance(self.at_steps, tuple) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in self.at_steps
        ):
            raise ValueError(
                f"AbruptShift: 'at_steps' must be a tuple of integers >= 1 (got {self.at_steps!r})"
            )
        if list(self.at_steps) != sorted(set(self.at_steps)):
            raise ValueError(
                f"AbruptShift: 'at_steps' must be strictly increasing (got {self.at_steps!r})"
            )
        _check("AbruptShift", "rate", self.rate, 0.0, 1.0)
        _check("AbruptShift", "mix", self.mix, 0.0, 1.0)

    def _jump(self, ctx: DriftContext, idx: NDArray[np.int64] | None) -> None:
        k = ctx.interest.shape[1]
        eps = ctx.streams.normal(k, idx)  # (jumpers, K)
        fresh = ctx.world.population_mean(ctx.new_clock) + ctx.interest_spread * eps
        sel = slice(None) if idx is None else idx
        ctx.interest[sel] = (1.0 - self.mix) * ctx.interest[sel] + self.mix * fresh
        ctx.anchor[sel] = ctx.interest[sel]

    def apply(self, ctx: DriftContext) -> None:
        if ctx.new_clock in self.at_steps:
            self._jump(ctx, None)
            ctx.events |= DriftEvent.POPULATION_SHIFT
        if self.rate > 0.0:
            u = ctx.streams.uniform(1)[:, 0]  # (B,)
            jumpers = np.flatnonzero(u < -math.expm1(-self.rate))
            if jumpers.size:
                self._jump(ctx, jumpers)
                ctx.events[jumpers] |= DriftEvent.INTEREST_JUMP


@dataclass(frozen=True, slots=True)
class ConsumptionDrift(DriftProcess):
    """Endogenous drift: what a user clicks pulls its interests toward (or away from) the item.

    Args:
        pull (float, defaults to 0.2): step toward a liked item's topics.
        push (float, defaults to 0.1): step away from a disliked item's topics.
        like_threshold (float, defaults to 0.5): items with quality >= this are liked.
    """

    kind: ClassVar[str] = "consumption"
    saturates: ClassVar[bool] = True
    pull: float = 0.2
    push: float = 0.1
    like_threshold: float = 0.5

    def __post_init__(self) -> None:
        _check("ConsumptionDrift", "pull", self.pull, 0.0, 10.0)
        _check("ConsumptionDrift", "push", self.push, 0.0, 10.0)
        _check("ConsumptionDrift", "like_threshold", self.like_threshold, 0.0, 1.0)

    def apply(self, ctx: DriftContext) -> None:
        k = ctx.interest.shape[1]
        liked = ctx.clicked_quality >= self.like_threshold
        step = np.where(liked, self.pull, -self.push) * ctx.clicked  # (B,)
        ctx.interest += step[:, None] * (ctx.clicked_topics - 1.0 / k)


@dataclass(frozen=True, slots=True)
class Boredom(DriftProcess):
    """Satiation: consumed topics become boring, and boredom decays geometrically.

    Args:
        gain (float, defaults to 1.0): boredom added per click, times the item's topic vector.
        decay (float, defaults to 0.1): fraction of boredom that fades per step, in [0, 1].
    """

    kind: ClassVar[str] = "boredom"
    gain: float = 1.0
    decay: float = 0.1

    def __post_init__(self) -> None:
        _check("Boredom", "gain", self.gain, 0.0, 100.0)
        _check("Boredom", "decay", self.decay, 0.0, 1.0)

    def apply(self, ctx: DriftContext) -> None:
        ctx.boredom *= 1.0 - self.decay
        ctx.boredom += self.gain * ctx.clicked_topics


@dataclass(frozen=True, slots=True)
class PopulationTrend(DriftProcess):
    """The distribution new users come from moves with the global clock (see module docs).

    Args:
        amplitude (float, defaults to 1.0): size of the orbit, relative to ``population_scale``.
        period (int, defaults to 20000): global steps per full orbit.
    """

    kind: ClassVar[str] = "trend"
    amplitude: float = 1.0
    period: int = 20_000

    def __post_init__(self) -> None:
        _check("PopulationTrend", "amplitude", self.amplitude, 0.0, 100.0)
        if isinstance(self.period, bool) or not isinstance(self.period, int) or self.period < 1:
            raise ValueError(
                f"PopulationTrend: 'period' must be an integer >= 1 (got {self.period!r})"
            )


@dataclass(frozen=True, slots=True)
class PopulationDrift(DriftProcess):
    """Gradual drift of the whole population: ``mu`` walks, and every current user with it.

    Args:
        sigma (float, defaults to 0.02): per-step noise standard deviation per topic of the
            population mean's random walk.
    """

    kind: ClassVar[str] = "population_walk"
    saturates: ClassVar[bool] = True
    sigma: float = 0.02

    def __post_init__(self) -> None:
        _check("PopulationDrift", "sigma", self.sigma, 0.0, 10.0)

    def apply(self, ctx: DriftContext) -> None:
        step = ctx.world.walk(ctx.new_clock) - ctx.world.walk(ctx.new_clock - 1)  # (K,)
        ctx.interest += step
        ctx.anchor += step


@dataclass(frozen=True, slots=True)
class Satisfaction(DriftProcess):
    """Long-term satisfaction: what a user consumed changes every future click probability.

    Args:
        gain (float, defaults to 1.0): satisfaction added per click, times ``q - neutral``.
        decay (float, defaults to 0.05): fraction of satisfaction that fades per step.
        neutral (float, defaults to 0.5): quality that leaves satisfaction unchanged.
        weight (float, defaults to 1.0): attraction added per unit of satisfaction.
    """

    kind: ClassVar[str] = "satisfaction"
    gain: float = 1.0
    decay: float = 0.05
    neutral: float = 0.5
    weight: float = 1.0

    def __post_init__(self) -> None:
        _check("Satisfaction", "gain", self.gain, 0.0, 100.0)
        _check("Satisfaction", "decay", self.decay, 0.0, 1.0)
        _check("Satisfaction", "neutral", self.neutral, 0.0, 1.0)
        _check("Satisfaction", "weight", self.weight, 0.0, 100.0)

    def apply(self, ctx: DriftContext) -> None:
        if ctx.satisfaction is None:
            raise ValueError("Satisfaction needs the context's 'satisfaction' array")
        ctx.satisfaction *= 1.0 - self.decay
        ctx.satisfaction += self.gain * ctx.clicked * (ctx.clicked_quality - self.neutral)


@dataclass(frozen=True, slots=True)
class Aversion(DriftProcess):
    """Over-exposure: boredom above a threshold becomes a lasting loss of interest.

    Every step, after the Boredom process has updated ``b`` (so it must come after Boredom in
    :class:`~driftrec.envs.config.DriftConfig`), each topic ``k`` with ``b_k > threshold``
    loses interest: ``theta_k <- theta_k - rate * (b_k - threshold)``. Boredom fades at its own
    rate; the interest lost does not come back during the stay. The change is an incremental
    interest update (it saturates at the clip like consumption drift).

    Args:
        threshold (float, defaults to 1.0): boredom a topic can reach without harm.
        rate (float, defaults to 1.0): interest lost per unit of boredom above the threshold
            and per step.
    """

    kind: ClassVar[str] = "aversion"
    saturates: ClassVar[bool] = True
    threshold: float = 1.0
    rate: float = 1.0

    def __post_init__(self) -> None:
        _check("Aversion", "threshold", self.threshold, 0.0, 100.0)
        _check("Aversion", "rate", self.rate, 0.0, 100.0)

    def apply(self, ctx: DriftContext) -> None:
        excess = ctx.boredom - self.threshold  # (B, K)
        np.maximum(excess, 0.0, out=excess)
        excess *= self.rate
        ctx.interest -= excess


DRIFT_PROCESSES: dict[str, type[DriftProcess]] = {
    cls.kind: cls
    for cls in (
        GradualDrift,
        AbruptShift,
        ConsumptionDrift,
        Boredom,
        PopulationTrend,
        PopulationDrift,
        Satisfaction,
        Aversion,
    )
}


_CLASS_NAMES: dict[str, str] = {cls.__name__.lower(): kind for kind, cls in DRIFT_PROCESSES.items()}


def drift_process_kind(kind: Any) -> str:
    """The registry key of ``kind``: a kind (``"abrupt"``) or a class name (``"AbruptShift"``,
    any case); ``ValueError`` listing both otherwise."""
    if isinstance(kind, str):
        if kind in DRIFT_PROCESSES:
            return kind
        if kind.lower() in _CLASS_NAMES:
            return _CLASS_NAMES[kind.lower()]
    classes = [cls.__name__ for cls in DRIFT_PROCESSES.values()]
    raise ValueError(
        f"'kind' must be one of {sorted(DRIFT_PROCESSES)} or a class name {classes} (got {kind!r})"
    )


def drift_process_from_dict(data: Mapping[str, Any]) -> DriftProcess:
    """Build a process from ``{"kind": ..., **params}`` (see :data:`DRIFT_PROCESSES`).

    ``kind`` is the process's kind (``"abrupt"``, what :meth:`DriftProcess.to_dict` writes) or
    its class name (``"AbruptShift"``); lists become tuples.
    """
    if not isinstance(data, Mapping) or "kind" not in data:
        raise ValueError(f"a drift process must be a mapping with a 'kind' key (got {data!r})")
    kind = drift_process_kind(data["kind"])
    cls = DRIFT_PROCESSES[kind]
    params = {k: v for k, v in data.items() if k != "kind"}
    names = {f.name for f in dataclasses.fields(cls)}
    extra = set(params) - names
    if extra:
        raise ValueError(
            f"unknown {kind!r} drift parameters {sorted(extra)}; expected {sorted(names)}"
        )
    if isinstance(params.get("at_steps"), list):
        params["at_steps"] = tuple(params["at_steps"])
    return cls(**params)


class World:
    """The population's mean interest ``mu(t)`` as a deterministic function of the global clock.

    Drawn once from the drift seed: the initial mean, one fresh mean per scheduled shift, and the
    two orbit directions of a population trend, each from its own child stream so adding one
    process never changes the others' draws.
    """

    def __init__(
        self,
        num_topics: int,
        population_scale: float,
        seed: int,
        shift_steps: tuple[int, ...] = (),
        trend: PopulationTrend | None = None,
        walk_sigma: float = 0.0,
    ) -> None:
        base, regimes, orbit, walk = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
        )
        self.num_topics = num_topics
        self.shift_steps = np.asarray(shift_steps, dtype=np.int64)
        # (num_regimes, K): regime r holds from shift_steps[r-1] on
        self.means = np.concatenate(
            [
                base.normal(0.0, population_scale, (1, num_topics)),
                regimes.normal(0.0, population_scale, (len(shift_steps), num_topics)),
            ]
        )
        self.trend = trend
        self.orbit = orbit.normal(0.0, population_scale, (2, num_topics))  # (2, K): c and d
        self.walk_sigma = walk_sigma
        self._walk_rng = walk
        self._walk = np.zeros((1, num_topics))  # (T + 1, K): the walk's offset at clock 0..T

    def walk(self, clock: int) -> NDArray[np.float64]:
        """The population random walk's offset at global step ``clock`` (0 at clock 0), ``(K,)``.

        Increments are drawn in order from the world's own stream and kept, so the offset is a
        fixed function of the clock whatever order it is asked in.
        """
        if clock >= self._walk.shape[0]:
            need = max(clock + 1, 2 * self._walk.shape[0]) - self._walk.shape[0]
            steps = self.walk_sigma * self._walk_rng.standard_normal((need, self.num_topics))
            # accumulate sequentially from the last offset: the same sums as one long cumsum
            tail = np.cumsum(np.concatenate([self._walk[-1:], steps]), axis=0)[1:]
            self._walk = np.concatenate([self._walk, tail])
        return self._walk[clock]

    def regime(self, clock: int) -> int:
        """Index of the population regime in force at global step ``clock``."""
        return int(np.searchsorted(self.shift_steps, clock, side="right"))

    def population_mean(self, clock: int) -> NDArray[np.float64]:
        """``mu(clock)``, shape ``(K,)``."""
        mu = self.means[self.regime(clock)]
        if self.walk_sigma:
            mu = mu + self.walk(clock)
        if self.trend is not None and self.trend.amplitude:
            phase = 2.0 * math.pi * clock / self.trend.period
            c, d = self.orbit
            mu = mu + self.trend.amplitude * ((math.cos(phase) - 1.0) * c + math.sin(phase) * d)
        return mu
