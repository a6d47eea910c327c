"""Per-user random streams, drawn in batches.

Every user slot ``u`` owns a ``numpy.random.Generator`` (PCG64, seeded from a ``SeedSequence``),
so what happens to a user depends only on its own seed — never on how many other users are
simulated beside it. That is what makes the batched core with ``B`` users equal ``B`` single
environments step for step.

Drawing one number per user from ``B`` generators in a Python loop would be slow, so each stream
keeps a buffer of pre-drawn uniforms and standard normals; a draw gathers from all buffers at
once with array indexing and advances per-user cursors. A user's buffer is refilled (one
generator call for that user) only when it runs low, i.e. once every ``chunk / n`` draws, so the
refill loop is amortised over many steps. Splitting a draw into several calls gives the same
numbers as one call (numpy guarantees this for ``random`` and ``standard_normal``), so the
refill points never change a stream.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["UserStreams", "SeedLike", "slot_seed", "slot_seeds"]

SeedLike = int | np.random.SeedSequence


def slot_seed(run_seed: int, slot: int) -> np.random.SeedSequence:
    """The seed of user slot ``slot`` in a run seeded ``run_seed``.

    It is child ``slot`` of ``SeedSequence(run_seed)`` (what ``SeedSequence(run_seed).spawn(n)``
    returns at position ``slot``), so slots of one run, and slots of different run seeds, have
    statistically independent streams: runs seeded 0 and 1 share no user. (Before v1 slot ``i``
    got the integer seed ``run_seed + i``, so runs 0 and 1 shared all users but one.)
    """
    if isinstance(run_seed, bool) or not isinstance(run_seed, int | np.integer) or run_seed < 0:
        raise ValueError(f"'seed' must be an integer >= 0 (got {run_seed!r})")
    if isinstance(slot, bool) or not isinstance(slot, int | np.integer) or slot < 0:
        raise ValueError(f"'slot' must be an integer >= 0 (got {slot!r})")
    return np.random.SeedSequence(int(run_seed), spawn_key=(int(slot),))


def slot_seeds(run_seed: int, num_slots: int) -> list[np.random.SeedSequence]:
    """Seeds of slots ``0 .. num_slots - 1``: ``SeedSequence(run_seed).spawn(num_slots)``."""
    return [slot_seed(run_seed, i) for i in range(num_slots)]


class _Buffer:
    """Pre-drawn values of one distribution for every slot, with per-slot cursors."""

    def __init__(self, num_slots: int, chunk: int, normal: bool) -> None:
        self.chunk = chunk
        self.normal = normal
        self.values = np.empty((num_slots, chunk), dtype=np.float64)
        self.cursor = np.full(num_slots, chunk, dtype=np.int64)  # empty: refill on first draw
        self.rows = np.arange(num_slots)

    def invalidate(self, idx: NDArray[np.int64]) -> None:
        self.cursor[idx] = self.chunk

    def draw(
        self, gens: list[np.random.Generator], idx: NDArray[np.int64] | None, n: int
    ) -> NDArray[np.float64]:
        if n > self.chunk:
            raise ValueError(f"cannot draw {n} values at once (buffer chunk is {self.chunk})")
        cursor = self.cursor if idx is None else self.cursor[idx]
        if cursor.size and int(cursor.max()) + n > self.chunk:
            low = np.flatnonzero(cursor + n > self.chunk)
            slots = low if idx is None else idx[low]
            for u in slots.tolist():  # amortised: a slot refills once per chunk // n draws
                c = int(self.cursor[u])
                keep = self.values[u, c:].copy()
                gen = gens[u]
                fresh = gen.standard_normal(c) if self.normal else gen.random(c)
                self.values[u, : keep.size] = keep
                self.values[u, keep.size :] = fresh
                self.cursor[u] = 0
            cursor = self.cursor if idx is None else self.cursor[idx]
        rows = self.rows if idx is None else idx
        # (num_drawn_slots, n)
        if n == 1:
            out = self.values[rows, cursor][:, None]
        else:
            out = self.values[rows[:, None], cursor[:, None] + np.arange(n)]
        if idx is None:
            self.cursor += n
        else:
            self.cursor[idx] += n
        return out


class UserStreams:
    """Independent seeded random streams for ``num_slots`` user slots.

    Args:
        seeds: one seed (int or ``SeedSequence``) per slot.
        uniform_chunk: buffered uniforms per slot.
        normal_chunk: buffered standard normals per slot (must be at least the largest single
            draw, e.g. the number of topics).
    """

    def __init__(
        self, seeds: Sequence[SeedLike], uniform_chunk: int = 256, normal_chunk: int = 512
    ):
        self.num_slots = len(seeds)
        self._gens = [self._make(s) for s in seeds]
        self._uniform = _Buffer(self.num_slots, uniform_chunk, normal=False)
        self._normal = _Buffer(self.num_slots, normal_chunk, normal=True)

    @staticmethod
    def _make(seed: SeedLike) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(seed))

    def reseed(self, idx: Sequence[int] | NDArray[np.int64], seeds: Sequence[SeedLike]) -> None:
        """Restart the streams of slots ``idx`` from ``seeds``."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size != len(seeds):
            raise ValueError(f"got {idx.size} slots but {len(seeds)} seeds")
        for u, s in zip(idx.tolist(), seeds, strict=True):
            self._gens[u] = self._make(s)
        self._uniform.invalidate(idx)
        self._normal.invalidate(idx)

    def uniform(self, n: int, idx: NDArray[np.int64] | None = None) -> NDArray[np.float64]:
        """``n`` uniforms in [0, 1) for every slot (or the slots ``idx``): shape ``(slots, n)``."""
        return self._uniform.draw(self._gens, idx, n)

    def normal(self, n: int, idx: NDArray[np.int64] | None = None) -> NDArray[np.float64]:
        """``n`` standard normals for every slot (or the slots ``idx``): shape ``(slots, n)``."""
        return self._normal.draw(self._gens, idx, n)
