"""The observation layout, shared by the envs and by every agent that reads observations.

The default observation is one flat, finite ``float32`` vector, so any off-the-shelf PPO script
accepts it. With history length ``H`` it is laid out as::

    [0, H)        item_ids   ids of the last H impressions, oldest first (0 where padded)
    [H, 2H)       feedback   reward each impression earned (0 for an unclicked slate slot)
    [2H, 3H)      mask       1.0 for a real impression, 0.0 for padding
    3H            progress   session step / max_steps, in [0, 1]
    3H + 1        clock      global step since the world was seeded / CLOCK_SCALE (2**14 =
                             16,384 steps per unit; the step is capped at 2**24, so the value
                             stays in [0, 1024])

An impression is one shown item: a single-item step adds one, a slate of k adds k (in slate
order). The clock is scaled so that a scenario's time scale (shifts at 5,000, trends over
20,000 steps) is of order 1 for a network, by a power of two so that ``value * CLOCK_SCALE``
gives the step back exactly (``ObservationLayout.split`` returns steps).

The ``"dict"`` observation mode carries the same five parts as a flat ``Dict`` of
``Box`` es. The true interests of the user are never part of the observation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

CLOCK_CAP = float(2**24)  # float32 counts integers exactly up to here
CLOCK_SCALE = float(2**14)  # global steps per unit of the observed clock (exact in float32)

__all__ = ["ObservationLayout", "SplitObservation", "CLOCK_CAP", "CLOCK_SCALE", "encode_clock"]


def encode_clock(steps: float) -> float:
    """The observed clock of global step ``steps``: ``min(steps, CLOCK_CAP) / CLOCK_SCALE``."""
    return min(float(steps), CLOCK_CAP) / CLOCK_SCALE


class SplitObservation(NamedTuple):
    """The parts of one or more observations (leading batch axes kept)."""

    item_ids: NDArray[np.int64]  # (..., H)
    feedback: NDArray[np.float32]  # (..., H)
    mask: NDArray[np.bool_]  # (..., H)
    progress: NDArray[np.float32]  # (...,)
    clock: NDArray[np.float32]  # (...,) global steps (decoded from the observed scale)


@dataclass(frozen=True, slots=True)
class ObservationLayout:
    """Slices of the flat observation for a history length and catalog size."""

    history_len: int
    num_items: int

    @property
    def size(self) -> int:
        """Length of the flat observation vector."""
        return 3 * self.history_len + 2

    @property
    def item_ids(self) -> slice:
        return slice(0, self.history_len)

    @property
    def feedback(self) -> slice:
        return slice(self.history_len, 2 * self.history_len)

    @property
    def mask(self) -> slice:
        return slice(2 * self.history_len, 3 * self.history_len)

    @property
    def progress(self) -> int:
        return 3 * self.history_len

    @property
    def clock(self) -> int:
        return 3 * self.history_len + 1

    def flat_space(self) -> spaces.Box:
        """The flat ``Box`` observation space (finite bounds)."""
        low = np.zeros(self.size, dtype=np.float32)
        high = np.ones(self.size, dtype=np.float32)
        high[self.item_ids] = self.num_items - 1
        high[self.clock] = CLOCK_CAP / CLOCK_SCALE
        return spaces.Box(low=low, high=high, dtype=np.float32)

    def dict_space(self) -> spaces.Dict:
        """The flat ``Dict`` observation space (same parts, no nesting)."""
        h = self.history_len
        return spaces.Dict(
            {
                "item_ids": spaces.Box(0.0, float(self.num_items - 1), (h,), np.float32),
                "feedback": spaces.Box(0.0, 1.0, (h,), np.float32),
                "mask": spaces.Box(0.0, 1.0, (h,), np.float32),
                "progress": spaces.Box(0.0, 1.0, (1,), np.float32),
                "clock": spaces.Box(0.0, CLOCK_CAP / CLOCK_SCALE, (1,), np.float32),
            }
        )

    def to_dict(self, flat: NDArray[np.float32]) -> dict[str, NDArray[np.float32]]:
        """Flat observation(s) ``(..., size)`` -> the dict variant (views where possible)."""
        return {
            "item_ids": flat[..., self.item_ids],
            "feedback": flat[..., self.feedback],
            "mask": flat[..., self.mask],
            "progress": flat[..., self.progress : self.progress + 1],
            "clock": flat[..., self.clock : self.clock + 1],
        }

    def split(self, obs: Any) -> SplitObservation:
        """Split flat observation(s) ``(..., size)`` or a dict observation into typed parts."""
        if isinstance(obs, dict):
            return SplitObservation(
                np.asarray(obs["item_ids"]).astype(np.int64),
                np.asarray(obs["feedback"], dtype=np.float32),
                np.asarray(obs["mask"]) > 0.5,
                np.asarray(obs["progress"], dtype=np.float32)[..., 0],
                np.asarray(obs["clock"], dtype=np.float32)[..., 0] * np.float32(CLOCK_SCALE),
            )
        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape[-1] != self.size:
            raise ValueError(
                f"observation must have last dimension {self.size} for history_len="
                f"{self.history_len} (got shape {obs.shape})"
            )
        return SplitObservation(
            obs[..., self.item_ids].astype(np.int64),
            obs[..., self.feedback],
            obs[..., self.mask] > 0.5,
            obs[..., self.progress],
            obs[..., self.clock] * np.float32(CLOCK_SCALE),
        )
