"""An empirical user population: new users are resampled from a table of fitted interests.

The generated worlds draw a new user as ``theta = mu(t) + interest_spread * eps`` around a
population mean. A world calibrated from real data (:mod:`driftrec.envs.movielens`) instead
draws each new user from a table of ``U`` interest vectors fitted to real users, moved by a
linear population trend::

    j ~ Uniform{0, ..., U - 1}                  (one uniform from the slot's own stream)
    theta = interests[j] + trend * t + interest_spread * eps

The table a world draws from is a bootstrap resample of the fitted one, picked by the world seed
(:meth:`EmpiricalPopulation.bootstrap`): worlds of different seeds hold different samples of
the fitted users, as two samples of real users would.

``interests[j]`` is user ``j``'s fitted interest at the start of the log (its fit moved back by
the trend), ``trend`` (K,) the population's drift per global step and ``t`` the global clock,
capped at ``trend_until`` (the trend is only known over the span of the log). The table lives in
an ``.npz`` file named by :attr:`driftrec.envs.config.EnvConfig.population_path`, written with
:func:`save_population`; it is derived data and belongs in a cache directory, not in a
repository.

The generated world's processes keep using the generated population mean: an ``AbruptShift``
jump or a ``PopulationTrend`` moves users toward ``mu(t)`` of :class:`~driftrec.envs.drift.World`,
not toward the table. The calibrated scenario uses neither.
"""

from __future__ import annotations

import functools
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from driftrec.experiments.io import atomic_write_bytes

__all__ = ["EmpiricalPopulation", "load_population", "save_population"]

_BOOTSTRAP_TAG = 0xB0075  # separates the bootstrap's stream from other uses of the world seed


@dataclass(frozen=True, eq=False)
class EmpiricalPopulation:
    """A table of fitted user interests plus a linear population trend.

    Attributes:
        interests: ``(U, K)`` float64 interests of the fitted users, at global step 0.
        trend: ``(K,)`` float64 change of every new user's interests per global step.
        trend_until: the trend stops at this global step (>= 0).
    """

    interests: NDArray[np.float64]
    trend: NDArray[np.float64]
    trend_until: int

    def __post_init__(self) -> None:
        interests = np.asarray(self.interests, dtype=np.float64)
        if interests.ndim != 2 or interests.shape[0] < 1 or interests.shape[1] < 2:
            raise ValueError(
                f"'interests' must have shape (num_users >= 1, num_topics >= 2) "
                f"(got {interests.shape})"
            )
        trend = np.asarray(self.trend, dtype=np.float64)
        if trend.shape != (interests.shape[1],):
            raise ValueError(
                f"'trend' must have shape ({interests.shape[1]},) like the interests' topics "
                f"(got {trend.shape})"
            )
        if not (np.isfinite(interests).all() and np.isfinite(trend).all()):
            raise ValueError("'interests' and 'trend' must be finite")
        if isinstance(self.trend_until, bool) or not isinstance(self.trend_until, int | np.integer):
            raise TypeError(f"'trend_until' must be an integer (got {self.trend_until!r})")
        if self.trend_until < 0:
            raise ValueError(f"'trend_until' must be >= 0 (got {self.trend_until})")
        interests.setflags(write=False)
        trend.setflags(write=False)
        object.__setattr__(self, "interests", interests)
        object.__setattr__(self, "trend", trend)
        object.__setattr__(self, "trend_until", int(self.trend_until))

    @property
    def num_users(self) -> int:
        """The number of fitted users ``U``."""
        return int(self.interests.shape[0])

    @property
    def num_topics(self) -> int:
        """The number of topics ``K``."""
        return int(self.interests.shape[1])

    def bootstrap(self, seed: int) -> EmpiricalPopulation:
        """A bootstrap resample of the table: ``U`` rows drawn with replacement from ``seed``.

        The world seed (:attr:`driftrec.envs.config.DriftConfig.seed`, drawn from the run seed
        under ``vary_world``) picks the resample, so two worlds differ the way two samples of
        real users would, and intervals over seeds include that variance.
        """
        seq = np.random.SeedSequence([int(seed), _BOOTSTRAP_TAG])
        rows = np.random.default_rng(seq).integers(0, self.num_users, self.num_users)
        return EmpiricalPopulation(
            interests=self.interests[rows], trend=self.trend, trend_until=self.trend_until
        )

    def draw(self, uniforms: NDArray[np.float64], clock: int) -> NDArray[np.float64]:
        """Interests of new users: one table row per uniform in ``[0, 1)``, moved to ``clock``.

        Args:
            uniforms: ``(M,)`` uniforms, one per new user (from each slot's own stream).
            clock: the global step the users arrive at.

        Returns:
            ``(M, K)`` interests (before the caller adds spread and clips).
        """
        rows = np.minimum((uniforms * self.num_users).astype(np.int64), self.num_users - 1)
        return self.interests[rows] + self.trend * min(clock, self.trend_until)  # (M, K)


def save_population(population: EmpiricalPopulation, path: str | os.PathLike[str]) -> Path:
    """Write ``population`` to an ``.npz`` file atomically (temporary file, then rename)."""
    target = Path(path)
    if target.suffix != ".npz":
        raise ValueError(f"'path' must end with '.npz' (got {str(path)!r})")
    buf = io.BytesIO()
    np.savez(
        buf,
        interests=population.interests,
        trend=population.trend,
        trend_until=np.int64(population.trend_until),
    )
    atomic_write_bytes(target, buf.getvalue())
    return target


@functools.lru_cache(maxsize=8)
def load_population(path: str) -> EmpiricalPopulation:
    """Read a population written by :func:`save_population` (cached per process)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"interests", "trend", "trend_until"} - set(data.files)
            if missing:
                raise ValueError(
                    f"{path}: not a driftrec population file (missing arrays {sorted(missing)})"
                )
            return EmpiricalPopulation(
                interests=data["interests"],
                trend=data["trend"],
                trend_until=int(data["trend_until"]),
            )
    except FileNotFoundError:
        raise FileNotFoundError(
            f"'population_path' names a file that does not exist (got {path!r}); it is written "
            "by driftrec.envs.movielens (a cache file): rebuild the calibrated scenario"
        ) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if str(exc).startswith(f"{path}:"):
            raise
        raise ValueError(
            f"{path}: not a readable driftrec population file ({type(exc).__name__}: {exc}); "
            "it is written by driftrec.envs.movielens (a cache file): delete it to rebuild"
        ) from None
