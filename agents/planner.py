r"""A PRIVILEGED planning reference: a first-order lookahead on the simulator's true model.

The greedy :class:`~driftrec.agents.baselines.OracleAgent` maximises the click probability of
the current step. In scenarios with long-term state (``Satisfaction``, ``Boredom``; see the
``LongTerm`` scenarios) that is not the best policy over a user's stay: a clickbait item wins the
click now and lowers every later click probability. :class:`PlannerAgent` scores every item by
its immediate expected reward plus the first-order effect of a click on it on the rest of the
session, using the true model:

.. math::

    v_i = p_i \Big(1 + \lambda\, p^*(1 - p^*) \big[\, w_s g_s (q_i - n_s) H_s
          - w_b g_b \langle z_i, z^* \rangle H_b \big]\Big)

* ``p_i = sigmoid(s_i - s_0)``: the click probability of item ``i`` now (times the quality
  ``q_i`` under the engagement reward); ``p^*`` and ``z^*`` are those of the greedy best item;
* ``w_s g_s (q_i - n_s)``: the change in every later attraction that one click on ``i`` causes
  through satisfaction (weight, gain, neutral quality of the ``Satisfaction`` process); it
  fades at rate ``d_s``, so over the ``R`` steps left in the session it counts
  ``H_s = sum_{t=1..R} (1 - d_s)^t`` times;
* ``w_b g_b <z_i, z^*>``: the boredom a click on ``i`` adds to the topics of the item the user
  would be shown next (the greedy best), counted ``H_b`` times with the boredom decay;
* ``p^*(1 - p^*)``: the slope of the click probability, turning an attraction change into a
  change in the chance of a click.

``lambda = 1`` (the default) is the plain first-order expansion; it ignores that extra clicks also
keep the user from leaving, so it under-credits the future. With neither process in the
scenario the planner is the greedy oracle. It reads the env's hidden state at ``predict`` time
and is not an achievable policy: it is the reference that shows how much planning is worth.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftrec.agents.baselines import OracleAgent, SeedLike
from driftrec.envs.drift import Boredom, Satisfaction

__all__ = ["PlannerAgent"]


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

    name = "planner"
    privileged = True

    def __init__(self, env: Any, *, seed: SeedLike = None, lookahead: float = 1.0) -> None:
        super().__init__(env, seed=seed)
        if isinstance(lookahead, bool) or not isinstance(lookahead, int | float):
            raise TypeError(f"'lookahead' must be a number (got {lookahead!r})")
        if not np.isfinite(lookahead) or lookahead < 0:
            raise ValueError(f"'lookahead' must be a finite number >= 0 (got {lookahead!r})")
        self.lookahead = float(lookahead)
        cfg = self.sim.config
        self._satisfaction: Satisfaction | None = cfg.drift.get(Satisfaction)
        self._boredom: Boredom | None = cfg.drift.get(Boredom)
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
        slope = (p_best * (1.0 - p_best))[:, None]  # (B, 1)
        return now * (1.0 + self.lookahead * slope * future)

    def _actions(self) -> NDArray[np.int64]:
        """The highest-value released item(s) for every user of the env now."""
        values = self.values()  # (B, N), -inf for unreleased items
        released = self.sim.released()
        mask = None if released.all() else np.broadcast_to(released, values.shape)
        return self._select(values, mask, deterministic=True)  # fills short slates with repeats
