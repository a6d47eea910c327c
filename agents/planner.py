r"""PRIVILEGED planning references on the simulator's true model.

The greedy :class:`~driftrec.agents.baselines.OracleAgent` maximises the expected reward of the
current step. Where what a user consumes changes later steps (``Satisfaction``, ``Boredom``,
``Aversion``; the ``LongTerm`` scenarios) that is not the best policy over a stay. Three
references bracket how much looking ahead is worth; all read the env's hidden state at
``predict`` time, so none is an achievable policy:

* :class:`StaticTiltAgent` (``"static-tilt"``): the greedy oracle's score plus a *fixed* per-item
  tilt, ``argmax_i f(r_i) + w d_i``, where ``r_i`` is item ``i``'s expected one-step reward now,
  ``f`` a monotone transform (:data:`SCORE_SPACES`) and ``d_i`` a fixed item feature
  (:data:`TILT_DIRECTIONS`, e.g. quality). It re-ranks but never plans: its choice depends on
  the state only through the greedy score. :func:`search_static_tilts` searches the family.
* :class:`RolloutPlanner` (``"planner"``): the ceiling. Every step it scores a few candidate
  items per user by Monte Carlo rollouts of the true simulator (the candidate now, then a base
  policy to the end of the session) and recommends the best. The base policy is the best of
  the static-tilt family for the world (and, where ``Aversion`` exists, of the same tilts with
  *spacing*: items whose click would start aversion go last), searched once at construction
  on simulated users of its own; by the rollout argument (Bertsekas' policy improvement) it
  earns at least what its base earns, up to the rollouts' noise, and so about what the best
  static tilt earns or more.
* :class:`PlannerAgent` (``"planner-first-order"``): a closed-form first-order lookahead (fast,
  no rollouts), kept as a cheap reference:

.. math::

    v_i = p_i \Big(1 + \lambda\, p^*(1 - p^*) \big[\, w_s g_s (q_i - n_s) H_s
          - w_b g_b \langle z_i, z^* \rangle H_b \big]\Big)

  with ``p_i`` the click probability of item ``i`` now (times the quality under the engagement
  reward), ``p^*`` and ``z^*`` those of the greedy best item, ``w_s g_s (q_i - n_s)`` the change
  in every later attraction one click on ``i`` causes through satisfaction, fading at rate
  ``d_s`` so that it counts ``H_s = sum_{t=1..R} (1 - d_s)^t`` times over the ``R`` steps left,
  ``w_b g_b <z_i, z^*>`` the boredom a click on ``i`` adds to the topics of the item the user
  would be shown next, counted ``H_b`` times, and ``p^*(1 - p^*)`` the slope of the click
  probability; where Aversion exists, the interest a click would cost through it is counted
  the same way (:meth:`PlannerAgent._aversion_damage`). ``lambda = 1`` is the plain expansion;
  it ignores leaving.

Cost of the rollout planner per step: ``C * S * B`` simulated users (``C`` candidates,
``S = samples`` rollouts each, ``B`` real users) stepped to the end of the session (``horizon``
caps it), each step scoring a short list of ``K * shortlist`` items per user
(``O(C S B R K^2 shortlist)`` for ``R`` steps left); measured figures are in BENCHMARKS.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftrec.agents.baselines import OracleAgent, SeedLike, _top_k
from driftrec.envs.config import EnvConfig, check_float, check_int
from driftrec.envs.core import BatchSimulator, SimState
from driftrec.envs.drift import Aversion, Boredom, ConsumptionDrift, Satisfaction

__all__ = [
    "TILT_DIRECTIONS",
    "SCORE_SPACES",
    "Tilt",
    "RolloutBase",
    "TiltResult",
    "tilt_vector",
    "greedy_scores",
    "tilt_family",
    "family_returns",
    "search_static_tilts",
    "stay_returns",
    "StaticTiltAgent",
    "RolloutPlanner",
    "PlannerAgent",
]

TILT_DIRECTIONS: tuple[str, ...] = ("quality", "purity", "population")
"""Fixed item features a static tilt can add to the greedy score (each centred over items):
``quality`` (``q_i``), ``purity`` (the weight of the item's main topic, ``max_k z_ik``: positive
tilts favour single-topic items, negative ones mixtures) and ``population`` (``<mu, z_i>``, the
item's appeal to the population mean at global step 0)."""

SCORE_SPACES: tuple[str, ...] = ("logit", "log", "linear")
"""Monotone transforms ``f`` of the expected one-step reward ``r`` that the tilt is added to:
``logit`` (``log r - log(1 - r)``; for the click reward this is the attraction minus the
no-click score, so a quality tilt there is a change of the quality weight), ``log`` and
``linear`` (``r`` itself)."""


@dataclass(frozen=True, slots=True)
class Tilt:
    """A static re-ranking of the greedy oracle: recommend ``argmax_i f(r_i) + weight * d_i``.

    Args:
        weight (float, defaults to 0.0): the tilt's weight; 0 is the greedy oracle.
        direction (str, defaults to ``"quality"``): the item feature ``d``, one of
            :data:`TILT_DIRECTIONS`.
        space (str, defaults to ``"logit"``): the transform ``f``, one of :data:`SCORE_SPACES`.
    """

    weight: float = 0.0
    direction: str = "quality"
    space: str = "logit"

    def __post_init__(self) -> None:
        check_float("weight", self.weight, -1e6, 1e6)
        if self.direction not in TILT_DIRECTIONS:
            raise ValueError(
                f"'direction' must be one of {list(TILT_DIRECTIONS)} (got {self.direction!r})"
            )
        if self.space not in SCORE_SPACES:
            raise ValueError(f"'space' must be one of {list(SCORE_SPACES)} (got {self.space!r})")

    @property
    def label(self) -> str:
        """``"greedy"`` or e.g. ``"quality +1.5 (logit)"``."""
        if self.weight == 0:
            return "greedy"
        return f"{self.direction} {self.weight:+g} ({self.space})"


def tilt_vector(sim: BatchSimulator, direction: str) -> NDArray[np.float64]:
    """``(N,)`` the item feature ``d`` of ``direction``, centred over the catalog."""
    topics = np.asarray(sim.catalog.topics, dtype=np.float64)  # (N, K)
    if direction == "quality":
        d = np.asarray(sim.catalog.quality, dtype=np.float64)
    elif direction == "purity":
        d = topics.max(axis=1)
    elif direction == "population":
        d = topics @ sim.world.population_mean(0)
    else:
        raise ValueError(f"'direction' must be one of {list(TILT_DIRECTIONS)} (got {direction!r})")
    return d - d.mean()


def greedy_scores(
    sim: BatchSimulator,
    space: str = "logit",
    items: NDArray[np.int64] | None = None,
    shared: int = 1,
) -> NDArray[np.float64]:
    """PRIVILEGED: ``(B, N)`` ``f(r_i)`` for every user and item now; ``-inf`` if unreleased.

    ``r_i`` is the expected one-step reward of showing item ``i`` alone (click probability,
    times the quality under the engagement reward); its argmax is the greedy oracle's choice.
    With ``items`` only listed items are scored: ``(B, L)``, row ``r`` of ``items`` for
    ``shared`` consecutive users (:meth:`~driftrec.envs.core.BatchSimulator.attraction_of`).
    """
    s = sim.attraction_all() if items is None else sim.attraction_of(items, shared)
    x = s - sim.config.choice.no_click_score  # logit of the click probability
    engagement = sim.config.reward.kind == "engagement"
    if not engagement and space == "logit":
        return x
    with np.errstate(divide="ignore", over="ignore"):
        e = np.exp(-x)  # inf for unreleased items
        if not engagement:
            if space == "log":
                return -np.log1p(e)  # log sigmoid(x)
            out = 1.0 / (1.0 + e)  # linear: sigmoid(x)
            out[~np.isfinite(s)] = -np.inf
            return out
        quality = np.asarray(sim.catalog.quality)
        if items is not None:
            quality = np.repeat(quality[items], shared, axis=0)  # (B, L)
        log_r = np.log(quality) - np.log1p(e)  # log(p q)
        if space == "log":
            return log_r
        if space == "linear":
            out = np.exp(log_r)
            out[~np.isfinite(s)] = -np.inf
            return out
        return log_r - np.log1p(-np.exp(log_r))  # logit of r = p q


def _tilted(sim: BatchSimulator, tilt: Tilt, vector: NDArray[np.float64]) -> NDArray[np.float64]:
    scores = greedy_scores(sim, tilt.space)
    if tilt.weight:
        scores += tilt.weight * vector  # -inf stays -inf
    return scores


@dataclass(frozen=True, slots=True)
class RolloutBase:
    """A base policy for :class:`RolloutPlanner`: a static tilt, optionally with spacing.

    Args:
        tilt (Tilt, defaults to the greedy oracle): the re-ranking.
        spacing (bool, defaults to False): in a world with an ``Aversion`` process, demote every
            item whose click would take one of its topics' boredom over the aversion threshold
            (a model-aware rule; it depends on the state, so it is not a static re-ranking).
    """

    tilt: Tilt = Tilt()
    spacing: bool = False

    @property
    def label(self) -> str:
        """The tilt's label, plus ``" + spacing"``."""
        return self.tilt.label + (" + spacing" if self.spacing else "")


class _Spacing:
    """Which items a click would push over the Aversion threshold, from the boredom ``(U, K)``."""

    def __init__(self, sim: BatchSimulator) -> None:
        bor, av = sim.config.drift.get(Boredom), sim.config.drift.get(Aversion)
        if bor is None or av is None:
            raise ValueError("'spacing' needs a world with Boredom and Aversion processes")
        topics = np.asarray(sim.catalog.topics, dtype=np.float64)  # (N, K)
        width = max(1, int((topics > 0).sum(axis=1).max()))
        self.topic = np.argsort(-topics, axis=1, kind="stable")[:, :width]  # (N, m) nonzero first
        weight = np.take_along_axis(topics, self.topic, axis=1)  # (N, m)
        # a click on i takes topic k to (1 - d) b_k + g z_ik: over when b_k > limit_ik
        self.limit = np.where(weight > 0, (av.threshold - bor.gain * weight), np.inf)
        self.limit /= 1.0 - bor.decay if bor.decay < 1.0 else 1.0
        if bor.decay >= 1.0:  # boredom is forgotten at once: only the click itself counts
            self.limit = np.where(
                weight > 0, np.where(bor.gain * weight > av.threshold, -np.inf, np.inf), np.inf
            )

    def unsafe(
        self, boredom: NDArray[np.float64], items: NDArray[np.int64] | None = None, shared: int = 1
    ) -> NDArray[np.bool_]:
        """``(U, N)`` True where a click would start aversion; ``(U, L)`` for item lists
        (row ``r`` of ``items`` for ``shared`` consecutive users)."""
        if items is None:
            return (boredom[:, self.topic] > self.limit).any(axis=2)  # (U, N, m) -> (U, N)
        rows, width = items.shape
        m = self.topic.shape[1]
        b = boredom.reshape(rows, shared, -1)  # (rows, shared, K)
        idx = self.topic[items].reshape(rows, 1, width * m)  # (rows, 1, L m)
        over = np.take_along_axis(b, np.broadcast_to(idx, (rows, shared, width * m)), axis=2)
        over = over > self.limit[items].reshape(rows, 1, width * m)  # (rows, shared, L m)
        return over.reshape(rows * shared, width, m).any(axis=2)


def _one_step_reward(
    sim: BatchSimulator, items: NDArray[np.int64], shared: int = 1
) -> NDArray[np.float64]:
    """``(U, L)`` expected one-step reward of showing each listed item alone, now."""
    p = 1.0 / (1.0 + np.exp(sim.config.choice.no_click_score - sim.attraction_of(items, shared)))
    if sim.config.reward.kind == "engagement":
        p *= np.repeat(np.asarray(sim.catalog.quality)[items], shared, axis=0)
    return p


def _base_scores(
    sim: BatchSimulator,
    base: RolloutBase,
    vector: NDArray[np.float64],
    spacing: _Spacing | None,
    items: NDArray[np.int64] | None = None,
    shared: int = 1,
) -> NDArray[np.float64]:
    """``(U, N)`` the base policy's scores now (``(U, L)`` for item lists, as in
    :func:`greedy_scores`)."""
    if items is None:
        scores = _tilted(sim, base.tilt, vector)
    else:
        scores = greedy_scores(sim, base.tilt.space, items, shared)
        if base.tilt.weight:
            scores += np.repeat(base.tilt.weight * vector[items], shared, axis=0)
    if base.spacing and spacing is not None:
        state = sim.state
        assert state is not None
        scores = np.where(spacing.unsafe(state.boredom, items, shared), scores - 1e6, scores)
    return scores


# ----------------------------------------------------------------------------------------------
# complete stays: the per-user return of a policy on simulated users
# ----------------------------------------------------------------------------------------------
def _search_seeds(seed: int, num_users: int) -> list[np.random.SeedSequence]:
    """User streams for a search, disjoint from every env's (``SeedSequence([seed, 7919])``)."""
    return np.random.SeedSequence([int(seed), 7919]).spawn(num_users)


def tilt_family(
    weights: Sequence[float] = (-2.0, -1.0, -0.5, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 8.0),
    directions: Sequence[str] = TILT_DIRECTIONS,
    spaces: Sequence[str] = ("logit",),
) -> list[Tilt]:
    """The greedy oracle plus every ``Tilt(w, direction, space)`` of the grid.

    In the ``linear`` space (where scores are probabilities) the weights are divided by 10.
    """
    family = [Tilt()]
    for space in spaces:
        scale = 0.1 if space == "linear" else 1.0
        for direction in directions:
            family += [Tilt(w * scale, direction, space) for w in weights if w != 0]
    return family


@dataclass(frozen=True, slots=True)
class TiltResult:
    """One policy's mean per-user return over complete stays, in a search."""

    tilt: Tilt
    mean_return: float
    spacing: bool = False

    @property
    def base(self) -> RolloutBase:
        """The policy as a :class:`RolloutBase`."""
        return RolloutBase(self.tilt, self.spacing)


def family_returns(
    config: EnvConfig,
    family: Sequence[Tilt | RolloutBase],
    seeds: Sequence[Any],
    *,
    block: int = 32,
) -> NDArray[np.float64]:
    """PRIVILEGED: ``(len(family), len(seeds))`` per-user return of every policy of ``family``.

    Every policy serves the same users, one complete stay per user slot (to leaving or the time
    limit): slot ``i`` is seeded with ``seeds[i]`` for every policy (``slot_seeds(s, n)`` gives
    the users of an env reset with seed ``s``). Up to ``block`` policies are stepped together in
    one batch (a batch of ``block * len(seeds)`` slots), which is what makes a search of dozens
    of policies cheap; the result is the same as running them one by one.
    """
    check_int("block", block, 1)
    bases = [b if isinstance(b, RolloutBase) else RolloutBase(b) for b in family]
    # batch policies of one score space together (each space is one transform of the catalog)
    order = sorted(range(len(bases)), key=lambda i: SCORE_SPACES.index(bases[i].tilt.space))
    bases = [bases[i] for i in order]
    probe = BatchSimulator(config, 1)
    vectors = {d: tilt_vector(probe, d) for d in {b.tilt.direction for b in bases}}
    spacing = _Spacing(probe) if any(b.spacing for b in bases) else None
    users = len(seeds)
    k = config.choice.slate_size
    out = np.empty((len(bases), users))
    starts = [
        lo
        for i, space in enumerate(SCORE_SPACES)
        for lo in range(
            sum(b.tilt.space in SCORE_SPACES[:i] for b in bases),
            sum(b.tilt.space in SCORE_SPACES[: i + 1] for b in bases),
            block,
        )
    ]
    ends = starts[1:] + [len(bases)]
    for lo, hi in zip(starts, ends, strict=True):
        group = bases[lo:hi]
        sim = BatchSimulator(config, len(group) * users, catalog=probe.catalog)
        sim.seed(list(seeds) * len(group))  # block j, slot i: the user of seeds[i]
        total = np.zeros(len(group) * users)
        alive = np.ones(len(group) * users, dtype=bool)
        while alive.any():
            by_space = {space: greedy_scores(sim, space) for space in {b.tilt.space for b in group}}
            unsafe = None
            if spacing is not None and any(b.spacing for b in group):
                unsafe = spacing.unsafe(sim.state.boredom)  # type: ignore[union-attr]
            actions = np.empty((len(group) * users, k), dtype=np.int64)
            for j, b in enumerate(group):
                rows = slice(j * users, (j + 1) * users)
                scores = by_space[b.tilt.space][rows]  # (U, N)
                if b.tilt.weight:
                    scores = scores + b.tilt.weight * vectors[b.tilt.direction]
                if b.spacing and unsafe is not None:
                    scores = np.where(unsafe[rows], scores - 1e6, scores)
                actions[rows] = _top_k(scores, k)
            result = sim.step(actions[:, 0] if k == 1 else actions, validate=False)
            total += result.reward * alive
            alive &= ~(result.terminated | result.truncated)
        out[lo : lo + len(group)] = total.reshape(len(group), users)
    result = np.empty_like(out)
    result[order] = out  # back to the family's order
    return result


def search_static_tilts(
    config: EnvConfig,
    family: Sequence[Tilt | RolloutBase] | None = None,
    *,
    num_users: int = 64,
    seed: int = 0,
) -> list[TiltResult]:
    """PRIVILEGED: every policy of ``family`` on the same ``num_users`` simulated users.

    ``family`` holds static tilts (default :func:`tilt_family`) or :class:`RolloutBase` s. Each
    runs one complete stay per user slot (:func:`family_returns`) on user streams drawn from
    ``seed`` but disjoint from any env's streams, so a search never sees the users it is later
    evaluated on. Returns the results best first (ties keep the family's order).
    """
    check_int("num_users", num_users, 1)
    bases = [
        b if isinstance(b, RolloutBase) else RolloutBase(b)
        for b in (tilt_family() if family is None else family)
    ]
    means = family_returns(config, bases, _search_seeds(seed, num_users)).mean(axis=1)
    out = [TiltResult(b.tilt, float(m), b.spacing) for b, m in zip(bases, means, strict=True)]
    return sorted(out, key=lambda r: -r.mean_return)


def stay_returns(
    agent: Any,
    env: Any,
    seed: int,
    *,
    learn: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-user return and length of the first complete stay of every slot of ``env``.

    ``env`` (a :class:`~driftrec.envs.gym_env.DriftRecVectorEnv`) is reset with ``seed``, so two
    agents evaluated with the same seed face the same users (same streams, world and catalog):
    their returns pair user by user. The agent acts until every slot's first user has left or
    reached the time limit (replacement users that arrive meanwhile are served but not
    counted); with ``learn`` it also learns online from every transition (``update``).

    Returns:
        ``(returns, lengths)``, each ``(num_envs,)``.
    """
    from driftrec.agents.base import final_observation, privileged_info_guard

    obs, _ = env.reset(seed=seed)
    b = env.num_envs
    total = np.zeros(b)
    length = np.zeros(b)
    alive = np.ones(b, dtype=bool)
    while alive.any():
        action, _ = agent.predict(obs, deterministic=False)
        nxt, reward, terminated, truncated, info = env.step(action)
        done = terminated | truncated
        total += reward * alive
        length += alive
        alive &= ~done
        if learn and hasattr(agent, "update"):
            info = privileged_info_guard(agent, info)
            agent.update(obs, action, reward, final_observation(nxt, info), done, info)
        obs = nxt
    return total, length


# ----------------------------------------------------------------------------------------------
# agents
# ----------------------------------------------------------------------------------------------
class StaticTiltAgent(OracleAgent):
    """PRIVILEGED: the greedy oracle re-ranked by a fixed per-item tilt (see the module docs).

    Args:
        env: the driftrec env it will act in (it must be the env that is stepped).
        seed: unused (deterministic); accepted for a uniform signature.
        weight (float, defaults to 0.0): the tilt's weight (0: the greedy oracle).
        direction (str, defaults to ``"quality"``): one of :data:`TILT_DIRECTIONS`.
        space (str, defaults to ``"logit"``): one of :data:`SCORE_SPACES`.
    """

    name = "static-tilt"
    privileged = True

    def __init__(
        self,
        env: Any,
        *,
        seed: SeedLike = None,
        weight: float = 0.0,
        direction: str = "quality",
        space: str = "logit",
    ) -> None:
        super().__init__(env, seed=seed)
        self.tilt = Tilt(weight, direction, space)
        self._vector = tilt_vector(self.sim, direction)

    def _actions(self) -> NDArray[np.int64]:
        scores = _tilted(self.sim, self.tilt, self._vector)  # (B, N)
        return self._select(scores, self._mask(), deterministic=True)

    def _mask(self) -> NDArray[np.bool_] | None:
        released = self.sim.released()
        return (
            None
            if released.all()
            else np.broadcast_to(released, (self.sim.num_users,) + released.shape)
        )


class _CommonStreams:
    """Random numbers shared by the candidates of a rollout batch (common random numbers).

    Simulated user ``v = (u * C + c) * S + j`` (real user ``u``, candidate ``c``, sample ``j``)
    draws what ``(u, c', j)`` draws for every other candidate ``c'``, so candidates are compared
    on the same clicks, jumps and noise.
    """

    def __init__(self, rng: np.random.Generator, users: int, copies: int, samples: int) -> None:
        self.rng, self.users, self.copies, self.samples = rng, users, copies, samples

    def _spread(self, block: NDArray[np.float64], idx: Any) -> NDArray[np.float64]:
        u, s, n = self.users, self.samples, block.shape[-1]
        full = np.broadcast_to(block[:, None], (u, self.copies, s, n)).reshape(-1, n)
        return full if idx is None else full[np.asarray(idx)]

    def uniform(self, n: int, idx: Any = None) -> NDArray[np.float64]:
        return self._spread(self.rng.random((self.users, self.samples, n)), idx)

    def normal(self, n: int, idx: Any = None) -> NDArray[np.float64]:
        return self._spread(self.rng.standard_normal((self.users, self.samples, n)), idx)


class RolloutPlanner(OracleAgent):
    """PRIVILEGED: Monte Carlo rollouts of the true simulator (see the module docs).

    Every step, for each user: the candidates are the base policy's best item in each of its
    ``candidates`` best main topics (so that moving to another topic is always on the table) and
    the greedy oracle's top ``greedy_candidates`` items (for slates: the base's and the greedy
    slate). Each candidate is shown in ``samples`` copies of the user's exact state, after which
    the base policy acts for up to ``horizon - 1`` more steps (never beyond the session's time
    limit), adding up each step's expected reward; a copy stops counting when its user leaves
    (``tail`` adds the rest of the session). Copies of different candidates share their random
    numbers. The base policy's choice is recommended unless another candidate beats it clearly
    (:meth:`choose`).

    In a world without a process through which what a user consumes changes its later steps
    (``Satisfaction``, ``Boredom``, ``Aversion``, ``ConsumptionDrift``) the greedy oracle is
    optimal, and the planner is the greedy oracle (no search, no rollouts).

    Args:
        env: the driftrec env it will act in (it must be the env that is stepped).
        seed: seed of the rollouts' random numbers and of the base search.
        base (``"auto"``, :class:`RolloutBase`, :class:`Tilt` or None, defaults to ``"auto"``):
            the rollout policy; ``"auto"`` searches :func:`tilt_family` (and, in a world with
            Aversion, the same tilts with ``spacing``) with :func:`search_static_tilts` on
            ``search_users`` simulated users of the env's world and takes the best; None is the
            greedy oracle.
        candidates (int, defaults to 4): main topics whose best item (by the base policy's
            score) is tried per user.
        greedy_candidates (int, defaults to 1): the greedy oracle's top items tried as well.
        samples (int, defaults to 4): rollouts per candidate.
        horizon (int or None, defaults to None): steps per rollout, the candidate's included;
            None rolls out to the end of the session (no truncation bias; shorter horizons are
            cheaper, and ``tail`` then estimates the rest).
        search_users (int, defaults to 64): users per tilt in the ``"auto"`` search.
        margin (float, defaults to 2.0): a candidate replaces the base policy's choice only if
            its paired gain exceeds this many standard errors (guards against noise).
        tail (bool, defaults to True): when a rollout stops before the session's end, add the
            steps left times the expected reward of the base policy's choice in the final
            state (so lasting damage counts to the end of the session, not to the horizon).
        shortlist (int or None, defaults to 4): in the rollouts the base policy picks from each
            user's ``shortlist`` best items of every main topic (ranked by the base policy now)
            and the candidates, instead of the whole catalog (single items only; None: the
            whole catalog). It is what makes the rollouts cheap: ``K * shortlist`` items per
            user instead of ``N``.

    Attributes:
        plans: False in a world where the greedy oracle is optimal (see above).
        base: the :class:`RolloutBase` the rollouts follow.
        search: the ``"auto"`` search's results, best first (empty otherwise).
    """

    name = "planner"
    privileged = True

    def __init__(
        self,
        env: Any,
        *,
        seed: SeedLike = None,
        base: str | Tilt | RolloutBase | None = "auto",
        candidates: int = 4,
        greedy_candidates: int = 1,
        samples: int = 4,
        horizon: int | None = None,
        search_users: int = 64,
        margin: float = 2.0,
        tail: bool = True,
        shortlist: int | None = 4,
    ) -> None:
        super().__init__(env, seed=seed)
        check_float("margin", margin, 0.0, 100.0)
        if not isinstance(tail, bool):
            raise TypeError(f"'tail' must be a bool (got {tail!r})")
        self.margin = float(margin)
        self.tail = tail
        if shortlist is not None:
            check_int("shortlist", shortlist, 1)
        self.shortlist = shortlist
        check_int("candidates", candidates, 1, 1000)
        check_int("greedy_candidates", greedy_candidates, 0, 1000)
        check_int("samples", samples, 1, 10_000)
        if horizon is not None:
            check_int("horizon", horizon, 1, 10_000_000)
        check_int("search_users", search_users, 1)
        self.candidates = candidates
        self.greedy_candidates = greedy_candidates
        self.samples = samples
        self.horizon = horizon
        self.search: list[TiltResult] = []
        cfg = self.sim.config
        has_aversion = cfg.drift.get(Aversion) is not None and cfg.drift.get(Boredom) is not None
        # what a user consumes changes its later steps only through these processes; without
        # them the greedy oracle is optimal and the planner is the greedy oracle
        self.plans = any(
            cfg.drift.get(kind) is not None
            for kind in (Satisfaction, Boredom, Aversion, ConsumptionDrift)
        )
        if base == "auto" and not self.plans:
            base = None
        if base == "auto":
            family = [RolloutBase(t) for t in tilt_family()]
            if has_aversion:
                family += [RolloutBase(t, spacing=True) for t in tilt_family()]
            search_seed = int(self.rng.integers(2**31))
            self.search = search_static_tilts(cfg, family, num_users=search_users, seed=search_seed)
            base = self.search[0].base
        elif base is None:
            base = RolloutBase()
        elif isinstance(base, Tilt):
            base = RolloutBase(base)
        elif not isinstance(base, RolloutBase):
            raise TypeError(f"'base' must be 'auto', a Tilt, a RolloutBase or None (got {base!r})")
        self.base: RolloutBase = base
        self._vector = tilt_vector(self.sim, base.tilt.direction)
        self._spacing = _Spacing(self.sim) if base.spacing else None
        self._clone: BatchSimulator | None = None
        main = np.asarray(self.sim.catalog.topics).argmax(axis=1)  # (N,) each item's main topic
        self._groups = [np.flatnonzero(main == j) for j in np.unique(main)]

    # ------------------------------------------------------------------ acting
    def _base_actions(
        self,
        sim: BatchSimulator,
        top: int,
        items: NDArray[np.int64] | None = None,
        shared: int = 1,
    ) -> NDArray[np.int64]:
        """``(U, top)`` items from the base policy's ranking (of item lists if given)."""
        scores = _base_scores(sim, self.base, self._vector, self._spacing, items, shared)
        best = _top_k(scores, top)  # (U, top) columns
        if items is None:
            return best
        rows = np.arange(scores.shape[0])[:, None] // shared  # (U, 1) the list of each user
        return items[rows, best]

    def _real_base_scores(self) -> NDArray[np.float64]:
        return _base_scores(self.sim, self.base, self._vector, self._spacing)

    def _topic_top(self, scores: NDArray[np.float64], per_topic: int) -> NDArray[np.int64]:
        """``(B, G * per_topic)``: each user's best-scored items of every main topic."""
        parts = []
        for items in self._groups:
            m = min(per_topic, items.size)
            parts.append(items[_top_k(scores[:, items], m)])  # (B, m)
        return np.concatenate(parts, axis=1)

    def _topic_best(self, scores: NDArray[np.float64], top: int) -> NDArray[np.int64]:
        """``(B, top)``: the best-scored item of each of the ``top`` best main topics per user."""
        groups = self._groups
        best = np.empty((scores.shape[0], len(groups)), dtype=np.int64)  # (B, K') per topic
        for j, items in enumerate(groups):
            best[:, j] = items[scores[:, items].argmax(axis=1)]
        best_scores = np.take_along_axis(scores, best, axis=1)  # (B, K')
        order = _top_k(best_scores, min(top, len(groups)))  # (B, top) topics, best first
        return np.take_along_axis(best, order, axis=1)

    def _candidates(self) -> NDArray[np.int64]:
        """``(B, C, k)`` candidate actions, the base policy's own choice first."""
        sim = self.sim
        k = sim.slate_size
        if k == 1:
            base = _base_scores(sim, self.base, self._vector, self._spacing)  # (B, N)
            parts = [self._topic_best(base, self.candidates)]
            if self.greedy_candidates:
                parts.append(_top_k(greedy_scores(sim), min(self.greedy_candidates, sim.num_items)))
            return np.concatenate(parts, axis=1)[:, :, None]  # (B, C, 1)
        released = sim.released()
        mask = None if released.all() else np.broadcast_to(released, (sim.num_users, sim.num_items))
        base = _base_scores(sim, self.base, self._vector, self._spacing)
        slates = [self._select(base, mask, deterministic=True)]  # fills short slates
        if self.greedy_candidates:
            slates.append(self._select(greedy_scores(sim), mask, deterministic=True))
        return np.stack(slates, axis=1)  # (B, C, k)

    def _rollout_sim(self, users: int) -> BatchSimulator:
        if self._clone is None or self._clone.num_users != users:
            self._clone = BatchSimulator(self.sim.config, users, catalog=self.sim.catalog)
            self._clone.world = self.sim.world  # the same deterministic world, shared
        return self._clone

    def values(self, candidates: NDArray[np.int64]) -> NDArray[np.float64]:
        """``(B, C, S)`` rollout returns of each candidate action ``(B, C, k)`` now."""
        real = self.sim
        s = real.state
        assert s is not None
        b, c, k = candidates.shape
        r = self.samples
        shared = c * r  # simulated users per real user: (u * C + c) * S + j

        def rep(a: NDArray[Any]) -> NDArray[Any]:
            return np.repeat(a, shared, axis=0)  # (B, ...) -> (B * C * S, ...)

        sim = self._rollout_sim(b * shared)
        sim.state = SimState(
            interest=rep(s.interest),
            anchor=rep(s.anchor),
            boredom=rep(s.boredom),
            patience=rep(s.patience),
            satisfaction=rep(s.satisfaction),
            t=rep(s.t),
            obs=rep(s.obs),
            clock=s.clock,
            consumed=None if s.consumed is None else rep(s.consumed),
        )
        sim.streams = _CommonStreams(self.rng, b, c, r)  # type: ignore[assignment]
        first = np.repeat(candidates, r, axis=1).reshape(b * shared, k)  # (V, k)
        items = None
        if self.shortlist is not None and k == 1:
            # the base policy picks from each user's best items per main topic (and the
            # candidates): a short list per user instead of the catalog
            short = self._topic_top(self._real_base_scores(), self.shortlist)  # (B, L)
            items = np.concatenate([short, candidates[:, :, 0]], axis=1)  # (B, L + C)
        left = real.config.session.max_steps - int(s.t.min())
        steps = max(1, left if self.horizon is None else min(self.horizon, left))
        total = np.zeros(b * shared)
        alive = np.ones(b * shared, dtype=bool)
        action = first[:, 0] if k == 1 else first
        for step in range(steps):
            if step:
                top = self._base_actions(sim, k, items, shared)  # (V, k)
                action = top[:, 0] if k == 1 else top
            result = sim.step(action, validate=False)
            # the expected reward of each step (not the sampled click) has the same mean and
            # less noise; clicks, leaving and the state still follow the sampled outcomes
            total += result.expected_reward * alive
            alive &= ~(result.terminated | result.truncated)
            if not alive.any():
                break
        if self.tail and alive.any():
            # the rest of the session at the rate the base policy earns in the final state:
            # lasting changes (aversion, satisfaction) count to the end, not to the horizon
            left_v = np.maximum(real.config.session.max_steps - sim.state.t, 0)  # (V,)
            if items is None:
                best = self._base_actions(sim, 1)  # (V, 1)
                rate = _one_step_reward(sim, best)[:, 0]  # (V,)
            else:
                scores = _base_scores(sim, self.base, self._vector, self._spacing, items, shared)
                col = scores.argmax(axis=1)[:, None]  # (V, 1)
                p = _one_step_reward(sim, items, shared)  # (V, L)
                rate = np.take_along_axis(p, col, axis=1)[:, 0]
            total += alive * left_v * rate
        return total.reshape(b, c, r)  # (B, C, S)

    def choose(
        self, returns: NDArray[np.float64], allowed: NDArray[np.bool_] | None = None
    ) -> NDArray[np.int64]:
        """``(B,)`` the candidate to recommend, from rollout returns ``(B, C, S)``.

        Candidate 0 is the base policy's choice. Another candidate (where ``allowed``, ``(B,
        C)``) wins only if its mean paired gain over candidate 0 (same random numbers, sample
        by sample) exceeds ``margin`` standard errors; among those the largest mean gain wins.
        """
        gain = returns - returns[:, :1, :]  # (B, C, S) paired differences
        mean = gain.mean(axis=2)  # (B, C)
        s = returns.shape[2]
        se = gain.std(axis=2, ddof=1) / math.sqrt(s) if s > 1 else np.zeros_like(mean)
        ok = (mean > 0) & (mean > self.margin * se)
        if allowed is not None:
            ok &= allowed
        ok[:, 0] = True
        return np.where(ok, mean, -np.inf).argmax(axis=1)

    def _actions(self) -> NDArray[np.int64]:
        if not self.plans:
            return super()._actions()
        cand = self._candidates()  # (B, C, k)
        returns = self.values(cand)  # (B, C, S)
        released = self.sim.released()
        # never recommend an unreleased candidate (candidate 0, the base's choice, is kept)
        allowed = None if released.all() else released[cand].all(axis=2)  # (B, C)
        best = self.choose(returns, allowed)
        chosen = cand[np.arange(cand.shape[0]), best]  # (B, k)
        return chosen[:, 0] if self.sim.slate_size == 1 else chosen


def _horizon(decay: float, remaining: NDArray[np.int64]) -> NDArray[np.float64]:
    """``sum_{t=1..R} (1 - decay)^t`` for each user's remaining steps ``R``."""
    keep = 1.0 - decay
    if decay == 0.0:
        return remaining.astype(np.float64)
    return keep * (1.0 - keep ** remaining.astype(np.float64)) / decay


class PlannerAgent(OracleAgent):
    """PRIVILEGED: first-order lookahead on the true model (see the module docs).

    Args:
        env: the driftrec env it will act in (it must be the env that is stepped).
        seed: unused (deterministic); accepted for a uniform signature.
        lookahead (float, defaults to 1.0): ``lambda``, the weight of the future term; 0 gives
            the greedy oracle.
    """

    name = "planner-first-order"
    privileged = True

    def __init__(self, env: Any, *, seed: SeedLike = None, lookahead: float = 1.0) -> None:
        super().__init__(env, seed=seed)
        if isinstance(lookahead, bool) or not isinstance(lookahead, int | float):
            raise TypeError(f"'lookahead' must be a number (got {lookahead!r})")
        if not math.isfinite(lookahead) or lookahead < 0:
            raise ValueError(f"'lookahead' must be a finite number >= 0 (got {lookahead!r})")
        self.lookahead = float(lookahead)
        cfg = self.sim.config
        self._satisfaction: Satisfaction | None = cfg.drift.get(Satisfaction)
        self._boredom: Boredom | None = cfg.drift.get(Boredom)
        self._aversion: Aversion | None = cfg.drift.get(Aversion)
        self._engagement = cfg.reward.kind == "engagement"

    def values(self) -> NDArray[np.float64]:
        """``(B, N)`` the planner's value ``v_i`` of every item for every user now."""
        sim = self.sim
        cfg = sim.config
        scores = sim.attraction_all()  # (B, N), -inf for unreleased items
        p = 1.0 / (1.0 + np.exp(cfg.choice.no_click_score - scores))  # (B, N)
        quality = np.asarray(sim.catalog.quality, dtype=np.float64)  # (N,)
        now = p * quality if self._engagement else p
        rows = np.arange(p.shape[0])
        best = p.argmax(axis=1)  # (B,)
        p_best = p[rows, best]
        remaining = np.maximum(cfg.session.max_steps - sim.state.t, 0)  # type: ignore[union-attr]
        future = np.zeros_like(p)
        if self._satisfaction is not None:
            sat = self._satisfaction
            per_click = sat.weight * sat.gain * (quality - sat.neutral)  # (N,)
            future += per_click[None, :] * _horizon(sat.decay, remaining)[:, None]
        if self._boredom is not None and cfg.choice.boredom_weight:
            bor = self._boredom
            topics = np.asarray(sim.catalog.topics, dtype=np.float64)  # (N, K)
            overlap = topics[best] @ topics.T  # (B, N) <z*, z_i>
            weight = cfg.choice.boredom_weight * bor.gain
            future -= weight * overlap * _horizon(bor.decay, remaining)[:, None]
        if self._aversion is not None and self._boredom is not None:
            topics = np.asarray(sim.catalog.topics, dtype=np.float64)  # (N, K)
            damage = self._aversion_damage(sim.state.boredom, topics)  # type: ignore[union-attr]
            # (B, N): interest lost by a click on i, seen through the topics of the item the user
            # would be shown next, for every remaining step
            seen = np.einsum("bnk,bk->bn", damage, topics[best])
            future -= cfg.choice.interest_weight * seen * remaining[:, None]
        slope = (p_best * (1.0 - p_best))[:, None]  # (B, 1)
        return now * (1.0 + self.lookahead * slope * future)

    def _aversion_damage(
        self, boredom: NDArray[np.float64], topics: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """``(B, N, K)`` extra interest a click on each item costs through Aversion.

        ``D(b) = rate * sum_{t >= 0} max(b (1 - d)^t - threshold, 0)`` is what a topic at boredom
        ``b`` loses until its boredom fades below the threshold (no more clicks on it); a click
        on item ``i`` costs ``D((1 - d) b + g z_i) - D((1 - d) b)``.
        """
        bor, av = self._boredom, self._aversion
        assert bor is not None and av is not None
        keep = (1.0 - bor.decay) * boredom  # (B, K) boredom after this step without a click
        after = keep[:, None, :] + bor.gain * topics[None, :, :]  # (B, N, K)
        return self._total_damage(after) - self._total_damage(keep)[:, None, :]

    def _total_damage(self, b: NDArray[np.float64]) -> NDArray[np.float64]:
        bor, av = self._boredom, self._aversion
        assert bor is not None and av is not None
        keep = 1.0 - bor.decay
        over = b > av.threshold
        if not over.any():
            return np.zeros_like(b)
        if keep <= 0.0:
            return av.rate * np.where(over, b - av.threshold, 0.0)
        ratio = np.where(over, av.threshold / np.where(over, b, 1.0), 1.0)
        if keep >= 1.0:  # boredom never fades: the damage goes on for the rest of the stay
            return np.where(over, av.rate * (b - av.threshold), 0.0) * 1e3
        # steps with b keep^t > threshold: t < log(threshold / b) / log(keep)
        n = np.where(over, np.ceil(np.log(ratio) / math.log(keep) - 1e-12), 0.0)
        series = b * (1.0 - keep**n) / (1.0 - keep)
        return av.rate * np.where(over, series - av.threshold * n, 0.0)

    def _actions(self) -> NDArray[np.int64]:
        """The highest-value released item(s) for every user of the env now."""
        values = self.values()  # (B, N), -inf for unreleased items
        released = self.sim.released()
        mask = None if released.all() else np.broadcast_to(released, values.shape)
        return self._select(values, mask, deterministic=True)  # fills short slates with repeats
