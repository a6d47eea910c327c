#!/usr/bin/env python
"""Simulator throughput benchmark: user-steps/s of driftrec's envs (and SARDINE's, for scale).

A benchmark, not a test::

    python bench/bench_env.py       # full table (several minutes); also `driftrec bench`
    python bench/bench_env.py --quick                 # smoke run (< 20 s)
    python bench/bench_env.py --json out.json --seconds 2 --repeats 3

Methodology (also printed by the script):

* random policy: every action is pre-sampled from a seeded ``numpy.random.Generator`` into a
  pool *before* the timed loop, and the loop cycles through the pool, so sampling is not timed;
* ``DriftRecEnv`` (one user) is stepped with one action per call and ``reset()`` is called when
  the session ends (inside the timed loop); ``DriftRecVectorEnv`` (``B`` users) autoresets
  inside ``step`` (Gymnasium SAME_STEP); SARDINE's env is stepped exactly like ``DriftRecEnv``;
* user-steps/s = ``B`` x (``step`` calls) / wall time; each cell runs for at least
  ``--seconds`` per repeat after a short warm-up, and the best of ``--repeats`` is reported;
  cells whose single step takes longer than ``SLOW_STEP_S`` (100,000 items with the oracle) get
  one repeat of a single timed step, so they are measured once and no longer than needed;
* memory: a separate short pass per cell under ``tracemalloc`` (numpy reports its buffers to
  it) measures what building + resetting the env allocates (minus the arrays of length ``N``
  the core derives from the catalog, which are per env, not per user) and the peak of what the
  steps allocate on top; both are divided by ``B``. The catalog is built and cached before the
  pass (it is shared by every env of the process) and reported separately;
* faults/step: minor page faults per ``step`` call in the best repeat (``getrusage``); freshly
  mapped temporaries that are faulted in on every step show up here;
* SARDINE (``sardine-rec``; ``sardine/SingleItem-Static-v0`` and ``sardine/SlateTopK-Bored-v0``,
  both N = 1000, its shipped catalog; the raw env, ``gym.make(id).unwrapped``, as driftrec's
  envs are used without wrappers) is timed in a *paired block* after the table: SARDINE and
  the driftrec cells its ratios use (single env and B = 4096, N = 1000, with and without the
  oracle) take their repeats round-robin, so the load drift of a shared host hits both sides
  alike; the ratios use that block, the absolute targets the best repeat of the configuration
  anywhere in the run. Without ``sardine`` importable, the script prints a skip line.

Diagnostics (off by default, printed in the header when on): ``--blas-threads N`` sets the BLAS
thread count before numpy loads (only when run as ``python bench/bench_env.py``, which applies it
before importing anything; set ``OPENBLAS_NUM_THREADS`` yourself otherwise); ``--malloc-tune``
raises glibc's trim/mmap thresholds so large step temporaries are reused instead of being
unmapped and faulted in again.

Nothing here imports torch: the simulator is numpy-only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

if __name__ == "__main__":  # --blas-threads must reach the environment before numpy loads
    for _i, _arg in enumerate(sys.argv):
        _value = None
        if _arg == "--blas-threads" and _i + 1 < len(sys.argv):
            _value = sys.argv[_i + 1]
        elif _arg.startswith("--blas-threads="):
            _value = _arg.split("=", 1)[1]
        if _value is not None:
            for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[_var] = _value

import numpy as np  # noqa: E402

from driftrec.atomic import atomic_open  # noqa: E402

_BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

SLOW_STEP_S = 0.25  # a cell whose step takes longer gets one repeat of one timed step
ORACLE_BIG_N_SECONDS = 1.0  # time cap per repeat for 100,000-item cells with the oracle
WARMUP_S = 0.2
ACTION_SEED = 12345
ENV_SEED = 0
BIG_N = 100_000
SMALL_N = 1_000
BATCHES = (1, 64, 1024, 4096)
SCENARIOS = ("Stationary", "SlateStationary")  # single item, slate of 10
SARDINE_IDS = (
    ("sardine/SingleItem-Static-v0", "Stationary"),  # compared with driftrec single-item
    ("sardine/SlateTopK-Bored-v0", "SlateStationary"),  # compared with driftrec slate-10
)

TARGET_VEC_NO_ORACLE = 1_000_000.0
TARGET_VEC_ORACLE = 200_000.0
TARGET_VEC_OVER_SARDINE = 100.0
TARGET_SINGLE_OVER_SARDINE = 2.0
MEMORY_GROWTH_TOLERANCE = 1.05  # bytes/user at N=100k may be at most this times N=1k (+64 B)


# ------------------------------------------------------------------------------- machine info
def machine_info() -> dict[str, Any]:
    cpu_model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import gymnasium

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "cpu_model": cpu_model,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "gymnasium": gymnasium.__version__,
        "platform": platform.platform(),
        "loadavg_at_start": _loadavg(),
        "blas_env": {v: os.environ.get(v) for v in _BLAS_VARS},
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _minflt() -> int:
    """Minor page faults of this process so far (0 where unavailable)."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    except (ImportError, OSError):
        return 0


def malloc_tune() -> str:
    """Diagnostic: stop glibc from returning freed heap/mmap memory to the OS after every step.

    Sets ``M_TRIM_THRESHOLD`` and ``M_MMAP_THRESHOLD`` (fixed, 256 MiB / 64 MiB) with
    ``mallopt``, like ``MALLOC_TRIM_THRESHOLD_``/``MALLOC_MMAP_THRESHOLD_`` would at start-up.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return "unavailable (no libc found)"
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt"):
        return "unavailable (libc has no mallopt)"
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = libc.mallopt(m_trim_threshold, 256 << 20) and libc.mallopt(m_mmap_threshold, 64 << 20)
    return "on (M_TRIM_THRESHOLD=256MiB, M_MMAP_THRESHOLD=64MiB)" if ok else "mallopt failed"


# ------------------------------------------------------------------------------- cells
@dataclass
class Cell:
    env: str  # "single" | "vector" | "sardine"
    scenario: str  # driftrec scenario, or the SARDINE id
    batch: int
    num_items: int
    oracle: bool
    slate_size: int = 1
    # results
    user_steps_per_s: float = float("nan")
    env_steps_per_s: float = float("nan")
    repeats: int = 0
    seconds_per_repeat: float = 0.0
    timed_env_steps: int = 0  # in the best repeat
    all_user_steps_per_s: list[float] = field(default_factory=list)
    first_step_s: float = float("nan")
    slow: bool = False
    minflt_per_step: float = float("nan")  # minor page faults per env.step in the best repeat
    env_bytes: int = 0  # tracemalloc: build + reset
    n_dependent_bytes: int = 0  # per-env arrays of length N derived from the catalog
    state_bytes_per_user: float = float("nan")
    step_peak_bytes: int = 0  # tracemalloc peak during steps, over what was live before
    step_peak_bytes_per_user: float = float("nan")
    state_array_bytes_per_user: float = float("nan")  # SimState arrays only (nbytes)
    stream_buffer_bytes_per_user: float = float("nan")  # pre-drawn uniforms/normals (nbytes)
    catalog_array_bytes: int = 0  # the shared catalog's numpy arrays (nbytes)

    @property
    def label(self) -> str:
        if self.env == "sardine":
            return f"sardine:{self.scenario.split('/')[-1]}"
        o = "oracle" if self.oracle else "no-oracle"
        return f"{self.env}/{self.scenario}/B={self.batch}/N={self.num_items}/{o}"


def plan_cells(quick: bool) -> list[Cell]:
    cells: list[Cell] = []
    if quick:
        for oracle in (False, True):
            cells.append(Cell("single", "Stationary", 1, SMALL_N, oracle))
            cells.append(Cell("vector", "Stationary", 64, SMALL_N, oracle))
            cells.append(Cell("vector", "Stationary", 4096, SMALL_N, oracle))
        cells.append(Cell("single", "SlateStationary", 1, SMALL_N, False))
        cells.append(Cell("vector", "SlateStationary", 1024, SMALL_N, False))
        cells.append(Cell("vector", "Stationary", 64, BIG_N, False))
        cells.append(Cell("vector", "Stationary", 64, BIG_N, True))
        return cells
    for scenario in SCENARIOS:
        for n in (SMALL_N, BIG_N):
            for oracle in (False, True):
                cells.append(Cell("single", scenario, 1, n, oracle))
                for b in BATCHES:
                    cells.append(Cell("vector", scenario, b, n, oracle))
    return cells


# ------------------------------------------------------------------------------- actions
def action_pool(rng: np.random.Generator, batch: int, slate: int, n: int) -> np.ndarray:
    """Random actions for a cycle of steps: ``(P, B)`` or ``(P, B, k)`` ints in ``[0, n)``."""
    steps = max(8, min(4096, 4_000_000 // (batch * slate)))
    shape = (steps, batch) if slate == 1 else (steps, batch, slate)
    return rng.integers(0, n, size=shape, dtype=np.int64)


# ------------------------------------------------------------------------------- stepping
StepBlock = Callable[[int], None]  # runs that many env.step calls


def single_stepper(env: Any, actions: list[Any]) -> StepBlock:
    """Steps a single (non-vector) env with pre-sampled actions, resetting when done."""
    cyc = itertools.cycle(actions)
    islice = itertools.islice

    def run(n: int) -> None:
        step, reset = env.step, env.reset
        for a in islice(cyc, n):
            _, _, terminated, truncated, _ = step(a)
            if terminated or truncated:
                reset()

    return run


def vector_stepper(env: Any, actions: list[np.ndarray]) -> StepBlock:
    """Steps a vector env (it autoresets inside ``step``) with pre-sampled batched actions."""
    cyc = itertools.cycle(actions)
    islice = itertools.islice

    def run(n: int) -> None:
        step = env.step
        for a in islice(cyc, n):
            step(a)

    return run


def warm_up(cell: Cell, run: StepBlock) -> int | None:
    """Untimed warm-up; returns the step block size, or None if the cell was slow and measured.

    The env has already taken one (untimed) step. If the next step takes longer than
    ``SLOW_STEP_S``, that step is the measurement (one repeat of one step): measured once, no
    longer than needed.
    """
    f0 = _minflt()
    t0 = time.perf_counter()
    run(1)
    el = time.perf_counter() - t0
    if el > SLOW_STEP_S:
        cell.all_user_steps_per_s = [cell.batch / el]
        cell.user_steps_per_s = cell.batch / el
        cell.env_steps_per_s = 1.0 / el
        cell.repeats, cell.seconds_per_repeat, cell.timed_env_steps = 1, 0.0, 1
        cell.slow = True
        cell.minflt_per_step = float(_minflt() - f0)
        return None
    n = 1  # doubling blocks until WARMUP_S, which also estimates the step time
    while el < WARMUP_S:
        run(n)
        n *= 2
        el = time.perf_counter() - t0
    per_step = el / n  # 1 + 1 + 2 + ... + n/2 steps ran
    return max(1, int(0.02 / max(per_step, 1e-9)))  # check the clock about every 20 ms


def timed_repeat(cell: Cell, run: StepBlock, block: int, seconds: float) -> None:
    """One timed repeat of at least ``seconds``; keeps the best in ``cell``."""
    steps = 0
    f0 = _minflt()
    t0 = time.perf_counter()
    while True:
        run(block)
        steps += block
        el = time.perf_counter() - t0
        if el >= seconds:
            break
    faults = _minflt() - f0
    rate = cell.batch * steps / el
    cell.all_user_steps_per_s.append(rate)
    cell.repeats += 1
    cell.seconds_per_repeat = seconds
    if not rate <= cell.user_steps_per_s:  # first repeat (NaN) or a new best
        cell.user_steps_per_s = rate
        cell.env_steps_per_s = rate / cell.batch
        cell.timed_env_steps = steps
        cell.minflt_per_step = faults / steps


def cell_seconds(cell: Cell, seconds: float) -> float:
    if cell.env != "sardine" and cell.oracle and cell.num_items >= BIG_N:
        return min(seconds, ORACLE_BIG_N_SECONDS)
    return seconds


def time_cell(cell: Cell, run: StepBlock, seconds: float, repeats: int) -> None:
    """Best-of-``repeats`` user-steps/s, each repeat at least ``seconds`` long (after warm-up)."""
    block = warm_up(cell, run)
    if block is None:
        return
    for _ in range(repeats):
        timed_repeat(cell, run, block, cell_seconds(cell, seconds))


# ------------------------------------------------------------------------------- driftrec
def _n_dependent_bytes(sim: Any, n: int) -> int:
    """Bytes of arrays of length ``n`` the core owns (derived from the catalog, per env)."""
    cat = [v for v in vars(sim.catalog).values() if isinstance(v, np.ndarray)]
    total = 0
    for v in vars(sim).values():
        if not isinstance(v, np.ndarray) or v.ndim == 0 or v.shape[0] != n:
            continue
        if any(np.may_share_memory(v, c) for c in cat):
            continue  # a view of the (shared, already counted) catalog
        total += v.nbytes
    return total


def prepare_driftrec(cell: Cell) -> tuple[Any, StepBlock]:
    """Build the env of ``cell``, run its memory pass (and first step); return env and stepper."""
    from driftrec.envs import DriftRecEnv, DriftRecVectorEnv
    from driftrec.envs.core import cached_catalog
    from driftrec.envs.gym_env import resolve_config

    overrides = {"num_items": cell.num_items, "oracle_info": cell.oracle}
    config = resolve_config(scenario=cell.scenario, **overrides)
    catalog = cached_catalog(config)  # build and cache outside the memory pass
    cell.catalog_array_bytes = sum(
        v.nbytes for v in vars(catalog).values() if isinstance(v, np.ndarray)
    )
    cell.slate_size = config.choice.slate_size
    rng = np.random.default_rng(ACTION_SEED)
    actions = action_pool(rng, cell.batch, cell.slate_size, cell.num_items)

    # first-use costs (imports, caches, space objects) out of the memory pass: a throwaway env
    # of the same kind and config with one user, reset and stepped twice
    if cell.env == "single":
        warm: Any = DriftRecEnv(scenario=cell.scenario, **overrides)
        warm.reset(seed=ENV_SEED)
        single_stepper(warm, list(actions[:2, 0]))(2)
    else:
        warm = DriftRecVectorEnv(1, scenario=cell.scenario, **overrides)
        warm.reset(seed=ENV_SEED)
        vector_stepper(warm, list(actions[:2, :1]))(2)
        warm.close()
    del warm

    # the action pool's Python objects exist before the memory pass starts
    if cell.env == "single":
        pool: Any = list(actions[:, 0])  # np.int64 scalars or (k,) arrays, as a policy gives
    else:
        pool = list(actions)  # (B,) or (B, k) views

    # memory pass (also the first, untimed steps) ------------------------------------------
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    if cell.env == "single":
        env: Any = DriftRecEnv(scenario=cell.scenario, **overrides)
    else:
        env = DriftRecVectorEnv(cell.batch, scenario=cell.scenario, **overrides)
    env.reset(seed=ENV_SEED)
    live = tracemalloc.get_traced_memory()[0]
    cell.env_bytes = live - base
    run = (single_stepper if cell.env == "single" else vector_stepper)(env, pool)
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    run(1)
    first = time.perf_counter() - t0
    if first <= SLOW_STEP_S:
        run(2)
    cell.step_peak_bytes = tracemalloc.get_traced_memory()[1] - live
    tracemalloc.stop()
    cell.first_step_s = first

    sim = env.sim
    b = cell.batch
    cell.n_dependent_bytes = _n_dependent_bytes(sim, cell.num_items)
    cell.state_bytes_per_user = (cell.env_bytes - cell.n_dependent_bytes) / b
    cell.step_peak_bytes_per_user = cell.step_peak_bytes / b
    st = sim.state
    cell.state_array_bytes_per_user = (
        sum(v.nbytes for v in vars(st).values() if isinstance(v, np.ndarray)) / b
    )
    bufs = [sim.streams._uniform, sim.streams._normal]  # noqa: SLF001 (benchmark accounting)
    cell.stream_buffer_bytes_per_user = (
        sum(x.values.nbytes + x.cursor.nbytes + x.rows.nbytes for x in bufs) / b
    )

    return env, run


def bench_driftrec(cell: Cell, seconds: float, repeats: int) -> None:
    env, run = prepare_driftrec(cell)
    time_cell(cell, run, seconds, repeats)
    env.close()


# ------------------------------------------------------------------------------- SARDINE
def sardine_available() -> tuple[bool, str]:
    try:
        import sardine  # noqa: F401  (registers the sardine/* ids)
    except Exception as e:  # noqa: BLE001  (any import failure means: skip)
        return False, f"{type(e).__name__}: {e}"
    return True, getattr(sys.modules["sardine"], "__version__", "?")


def prepare_sardine(cell: Cell) -> tuple[Any, StepBlock]:
    import gymnasium as gym

    env = gym.make(cell.scenario).unwrapped  # the raw simulator, like DriftRecEnv (no wrappers)
    cell.num_items = int(env.num_items)
    cell.slate_size = int(env.slate_size)
    rng = np.random.default_rng(ACTION_SEED)
    actions = action_pool(rng, 1, cell.slate_size, cell.num_items).reshape(-1, cell.slate_size)
    env.reset(seed=ENV_SEED)
    run = single_stepper(env, list(actions))  # SARDINE's action is an array even for k = 1
    t0 = time.perf_counter()
    run(1)
    cell.first_step_s = time.perf_counter() - t0
    return env, run


# ------------------------------------------------------------------------------- paired block
def paired_cells(quick: bool) -> list[Cell]:
    """SARDINE and the driftrec cells its ratios use, measured round-robin in one block."""
    out: list[Cell] = []
    for sid, scenario in SARDINE_IDS[:1] if quick else SARDINE_IDS:
        out.append(Cell("sardine", sid, 1, 0, False))
        for oracle in (False,) if quick else (False, True):
            out.append(Cell("single", scenario, 1, SMALL_N, oracle))
            out.append(Cell("vector", scenario, 4096, SMALL_N, oracle))
    return out


def run_paired(cells: list[Cell], seconds: float, repeats: int) -> list[Cell]:
    """Interleave the repeats (round-robin) so that a shared host's load drift hits every cell
    alike; each cell keeps its best repeat. Returns the cells that could be measured."""
    prepared: list[tuple[Cell, Any, StepBlock, int | None]] = []
    for c in cells:
        try:
            env, run = prepare_sardine(c) if c.env == "sardine" else prepare_driftrec(c)
        except Exception as e:  # noqa: BLE001  (a broken SARDINE must not kill the run)
            print(f"  {c.label}: SKIPPED ({type(e).__name__}: {e})")
            continue
        prepared.append((c, env, run, warm_up(c, run)))
    for _ in range(repeats):
        for c, _env, run, block in prepared:
            if block is not None:
                timed_repeat(c, run, block, cell_seconds(c, seconds))
    for c, env, _run, _block in prepared:
        env.close()
        print(f"  {c.label:<52} {fmt_rate(c.user_steps_per_s):>13} user-steps/s", flush=True)
    return [c for c, *_ in prepared]


# ------------------------------------------------------------------------------- reporting
def fmt_rate(x: float) -> str:
    return "n/a" if x != x else f"{x:,.0f}"


def fmt_bytes(x: float) -> str:
    if x != x:
        return "n/a"
    for unit, div in (("MB", 1e6), ("kB", 1e3)):
        if abs(x) >= 10 * div:
            return f"{x / div:,.1f} {unit}"
    return f"{x:,.0f} B"


def print_table(cells: list[Cell]) -> None:
    head = (
        f"{'env':<7} {'scenario':<16} {'B':>5} {'N':>7} {'oracle':>6} "
        f"{'user-steps/s':>13} {'calls/s':>10} {'rep x s':>8} {'steps':>7} "
        f"{'state/user':>11} {'step-peak/user':>15} {'faults/step':>11}"
    )
    print(head)
    print("-" * len(head))
    for c in cells:
        rep = f"{c.repeats}x{c.seconds_per_repeat:g}" if not c.slow else "1x1step"
        state = fmt_bytes(c.state_bytes_per_user) if c.env != "sardine" else "-"
        peak = fmt_bytes(c.step_peak_bytes_per_user) if c.env != "sardine" else "-"
        print(
            f"{c.env:<7} {c.scenario.split('/')[-1][:16]:<16} {c.batch:>5} {c.num_items:>7} "
            f"{'yes' if c.oracle else 'no':>6} {fmt_rate(c.user_steps_per_s):>13} "
            f"{fmt_rate(c.env_steps_per_s):>10} {rep:>8} {c.timed_env_steps:>7} "
            f"{state:>11} {peak:>15} {c.minflt_per_step:>11.1f}"
        )


def find(cells: list[Cell], **kw: Any) -> Cell | None:
    for c in cells:
        if all(getattr(c, k) == v for k, v in kw.items()) and c.repeats > 0:
            return c
    return None


def evaluate(
    cells: list[Cell], paired: list[Cell]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Ratios (from the paired block) and the PASS/FAIL list of the targets.

    Absolute targets use the best repeat of that configuration anywhere in the run (main table
    or paired block); ratios use the paired block only, where both sides ran interleaved.
    """
    ratios: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    sar = {c.scenario: c for c in paired if c.env == "sardine" and c.repeats > 0}
    sar_single = sar.get(SARDINE_IDS[0][0])
    sar_slate = sar.get(SARDINE_IDS[1][0])

    def ratio(name: str, num: Cell | None, den: Cell | None, target: float | None) -> None:
        if num is None or den is None:
            ratios.append({"name": name, "ratio": None, "target": target, "status": "n/a"})
            return
        r = num.user_steps_per_s / den.user_steps_per_s
        status = "info" if target is None else ("PASS" if r >= target else "FAIL")
        ratios.append(
            {
                "name": name,
                "numerator": num.label,
                "numerator_rate": num.user_steps_per_s,
                "denominator": den.label,
                "denominator_rate": den.user_steps_per_s,
                "ratio": r,
                "target": target,
                "status": status,
            }
        )

    def vec(src: list[Cell], scenario: str, oracle: bool) -> Cell | None:
        return find(
            src, env="vector", scenario=scenario, batch=4096, num_items=SMALL_N, oracle=oracle
        )

    def one(src: list[Cell], scenario: str, oracle: bool) -> Cell | None:
        return find(src, env="single", scenario=scenario, num_items=SMALL_N, oracle=oracle)

    v1, v1o = vec(paired, "Stationary", False), vec(paired, "Stationary", True)
    vs, vso = vec(paired, "SlateStationary", False), vec(paired, "SlateStationary", True)
    s1, s1o = one(paired, "Stationary", False), one(paired, "Stationary", True)
    ss, sso = one(paired, "SlateStationary", False), one(paired, "SlateStationary", True)

    ratio(
        "vector B=4096 single-item no-oracle / SARDINE SingleItem",
        v1,
        sar_single,
        TARGET_VEC_OVER_SARDINE,
    )
    ratio("vector B=4096 single-item oracle / SARDINE SingleItem", v1o, sar_single, None)
    ratio("vector B=4096 slate-10 no-oracle / SARDINE SlateTopK", vs, sar_slate, None)
    ratio("vector B=4096 slate-10 oracle / SARDINE SlateTopK", vso, sar_slate, None)
    ratio(
        "single env single-item no-oracle / SARDINE SingleItem",
        s1,
        sar_single,
        TARGET_SINGLE_OVER_SARDINE,
    )
    ratio("single env single-item oracle / SARDINE SingleItem", s1o, sar_single, None)
    ratio(
        "single env slate-10 no-oracle / SARDINE SlateTopK",
        ss,
        sar_slate,
        TARGET_SINGLE_OVER_SARDINE,
    )
    ratio("single env slate-10 oracle / SARDINE SlateTopK", sso, sar_slate, None)

    def best(*cs: Cell | None) -> Cell | None:
        got = [c for c in cs if c is not None]
        return max(got, key=lambda c: c.user_steps_per_s) if got else None

    def absolute(name: str, c: Cell | None, target: float) -> None:
        if c is None:
            checks.append({"name": name, "status": "n/a", "target": target})
            return
        checks.append(
            {
                "name": name,
                "value": c.user_steps_per_s,
                "cell": c.label,
                "target": target,
                "status": "PASS" if c.user_steps_per_s >= target else "FAIL",
            }
        )

    v1_best = best(vec(cells, "Stationary", False), v1)
    v1o_best = best(vec(cells, "Stationary", True), v1o)

    absolute(
        "vector B=4096 single-item N=1000 no-oracle >= 1,000,000 user-steps/s",
        v1_best,
        TARGET_VEC_NO_ORACLE,
    )
    absolute(
        "vector B=4096 single-item N=1000 oracle >= 200,000 user-steps/s",
        v1o_best,
        TARGET_VEC_ORACLE,
    )
    for r in ratios:
        if r["target"] is not None:
            checks.append(
                {
                    "name": f"{r['name']} >= {r['target']:g}x",
                    "value": r["ratio"],
                    "target": r["target"],
                    "status": r["status"],
                }
            )

    # memory per user must not grow with N (no oracle: the oracle's (rows, N) scratch grows
    # with N by design and is reported separately)
    pairs = []
    growth_oracle = []
    for c in cells:
        if c.env == "sardine" or c.num_items != SMALL_N or c.repeats == 0:
            continue
        big = find(
            cells, env=c.env, scenario=c.scenario, batch=c.batch, num_items=BIG_N, oracle=c.oracle
        )
        if big is None:
            continue
        (growth_oracle if c.oracle else pairs).append((c, big))
    if pairs:
        worst = []
        ok = True
        for small, big in pairs:
            for attr in ("state_bytes_per_user", "step_peak_bytes_per_user"):
                a, b = getattr(small, attr), getattr(big, attr)
                good = b <= a * MEMORY_GROWTH_TOLERANCE + 64
                ok &= good
                worst.append((b / a if a else float("inf"), small.label, attr, a, b))
        worst.sort(reverse=True)
        w = worst[0]
        checks.append(
            {
                "name": "memory per user does not grow with N (no oracle; N=100k vs N=1k, "
                "state and step peak, every B)",
                "value": w[0],
                "worst": {"cell": w[1], "what": w[2], "bytes_n1k": w[3], "bytes_n100k": w[4]},
                "target": MEMORY_GROWTH_TOLERANCE,
                "status": "PASS" if ok else "FAIL",
            }
        )
    else:
        checks.append({"name": "memory per user does not grow with N", "status": "n/a"})
    for small, big in growth_oracle:
        checks.append(
            {
                "name": f"(info) with oracle, step peak/user N=100k vs 1k: {small.env} "
                f"{small.scenario} B={small.batch}",
                "value": big.step_peak_bytes_per_user / max(small.step_peak_bytes_per_user, 1),
                "status": "info",
            }
        )
    return ratios, checks


def write_json_atomic(path: str, payload: dict[str, Any]) -> None:
    with atomic_open(path, "w") as f:
        json.dump(payload, f, indent=2, default=float)
        f.write("\n")


# ------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny subset for a smoke run (< 20 s)")
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="minimum timed wall time per repeat per cell (default 2.0; 0.3 quick)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="repeats per cell, best reported (default 3; 1 quick)",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results to PATH (atomically)")
    p.add_argument("--no-sardine", action="store_true", help="skip the SARDINE comparison")
    p.add_argument(
        "--blas-threads",
        metavar="N",
        help="diagnostic: set OPENBLAS/OMP/MKL_NUM_THREADS=N before numpy loads; only "
        "effective through bench/bench_env.py (default: leave the environment as it is)",
    )
    p.add_argument(
        "--malloc-tune",
        action="store_true",
        help="diagnostic: raise glibc's trim/mmap thresholds (mallopt) so freed step "
        "temporaries are not returned to the OS and faulted in again",
    )
    p.add_argument(
        "--only",
        metavar="REGEX",
        help="only cells whose label (e.g. vector/Stationary/B=4096/N=1000/no-oracle) "
        "matches REGEX",
    )
    args = p.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (0.3 if args.quick else 2.0)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if seconds < 0 or repeats < 1:
        p.error("--seconds must be >= 0 and --repeats >= 1")

    t_start = time.perf_counter()
    info = machine_info()
    info["malloc_tune"] = malloc_tune() if args.malloc_tune else "off"
    print("driftrec simulator benchmark")
    print(
        f"machine: {info['cpu_model']}, {info['cpu_count']} CPUs ({info['cpus_usable']} usable); "
        f"python {info['python']}, numpy {info['numpy']}, gymnasium {info['gymnasium']}; "
        f"{info['platform']}"
    )
    print(
        f"load average at start: {info['loadavg_at_start']}; BLAS threads env: "
        + ", ".join(f"{k}={v}" for k, v in info["blas_env"].items())
        + f"; malloc tuning: {info['malloc_tune']}"
    )
    print(
        "method: random policy, actions pre-sampled from numpy default_rng"
        f"({ACTION_SEED}) before the timed loop (sampling is not timed); single envs reset() "
        "on done inside the loop, the vector env autoresets in step; "
        f"best of {repeats} repeat(s) of >= {seconds:g} s after a {WARMUP_S:g} s warm-up "
        f"(100k-item oracle cells capped at {ORACLE_BIG_N_SECONDS:g} s/repeat; cells with a "
        f"step > {SLOW_STEP_S:g} s: one timed step); memory from a separate tracemalloc pass."
    )
    print()

    cells = plan_cells(args.quick)
    if args.only:
        rx = re.compile(args.only)
        cells = [c for c in cells if rx.search(c.label)]
    sardine_status = "not requested (--no-sardine)"
    want_paired = not args.no_sardine and (not args.only or re.search(args.only, "sardine"))
    if not args.no_sardine:
        ok, msg = sardine_available()
        if ok:
            sardine_status = f"sardine-rec {msg}"
        else:
            want_paired = False
            sardine_status = f"SKIPPED: cannot import sardine ({msg})"
            print(
                f"SARDINE: {sardine_status}; install it with `pip install sardine-rec` to compare."
            )
    info["sardine"] = sardine_status

    for c in cells:
        t0 = time.perf_counter()
        bench_driftrec(c, seconds, repeats)
        print(
            f"  {c.label:<52} {fmt_rate(c.user_steps_per_s):>13} user-steps/s"
            f"  ({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
    paired: list[Cell] = []
    if want_paired:
        print()
        print(
            f"paired block: SARDINE and the driftrec cells of the ratios, {repeats} round(s) "
            f"round-robin of >= {seconds:g} s each (a shared host's load drift hits all alike)"
        )
        paired = run_paired(paired_cells(args.quick), seconds, repeats)
    info["loadavg_at_end"] = _loadavg()

    print()
    print("Throughput (user-steps/s = B x env.step calls / s; state/user and step-peak/user from")
    print("tracemalloc: build+reset minus per-env N-length arrays, and the steps' extra peak, / B)")
    print()
    print_table(cells)
    if paired:
        print()
        print("Paired block (interleaved round-robin; the ratios below use these rows):")
        print()
        print_table(paired)

    if cells:
        by_n = {c.num_items: c for c in cells}
        print()
        print(
            "catalog arrays (shared by every env of the process, not per user): "
            + ", ".join(f"N={n}: {fmt_bytes(c.catalog_array_bytes)}" for n, c in by_n.items())
        )
        bmax = max(c.batch for c in cells)
        by_sc = {c.scenario: c for c in cells if c.batch == bmax}
        print(
            f"per-user state breakdown at B={bmax} (nbytes): "
            + "; ".join(
                f"{sc}: SimState {fmt_bytes(c.state_array_bytes_per_user)}, "
                f"stream buffers {fmt_bytes(c.stream_buffer_bytes_per_user)}"
                for sc, c in by_sc.items()
            )
        )

    ratios, checks = evaluate(cells, paired)
    print()
    print(f"SARDINE: {sardine_status}")
    print(
        "Ratios (user-steps/s, driftrec / SARDINE, from the paired block; SARDINE runs N=1000, "
        "its shipped catalog):"
    )
    for r in ratios:
        if r["ratio"] is None:
            print(f"  {r['name']:<58} n/a")
            continue
        tgt = f"target >= {r['target']:g}x" if r["target"] is not None else "(no target)"
        print(
            f"  {r['name']:<58} {r['ratio']:8.1f}x  "
            f"({fmt_rate(r['numerator_rate'])} / {fmt_rate(r['denominator_rate'])})  "
            f"{tgt:<17} {r['status']}"
        )
    print()
    print("Targets:")
    for ch in checks:
        v = ch.get("value")
        if v is None:
            vs = "n/a"
        elif "user-steps/s" in ch["name"]:
            vs = fmt_rate(v)
        else:
            vs = f"{v:.2f}x"
        extra = ""
        if "worst" in ch:
            w = ch["worst"]
            extra = (
                f"  (worst: {w['cell']} {w['what']}: {fmt_bytes(w['bytes_n1k'])} -> "
                f"{fmt_bytes(w['bytes_n100k'])} at N=100k)"
            )
        print(f"  [{ch['status']:>4}] {ch['name']}: {vs}{extra}")
    elapsed = time.perf_counter() - t_start
    print()
    torch_loaded = "torch" in sys.modules
    print(
        f"total wall time {elapsed:.1f} s; load average at end: {info['loadavg_at_end']}; "
        f"torch imported: {'yes' if torch_loaded else 'no'}"
    )

    if args.json:
        payload = {
            "machine": info,
            "settings": {
                "seconds": seconds,
                "repeats": repeats,
                "quick": args.quick,
                "warmup_s": WARMUP_S,
                "slow_step_s": SLOW_STEP_S,
                "oracle_big_n_seconds": ORACLE_BIG_N_SECONDS,
                "action_seed": ACTION_SEED,
                "env_seed": ENV_SEED,
            },
            "cells": [dict(asdict(c), label=c.label) for c in cells],
            "paired": [dict(asdict(c), label=c.label) for c in paired],
            "ratios": ratios,
            "checks": checks,
            "wall_time_s": elapsed,
            "torch_imported": torch_loaded,
        }
        write_json_atomic(args.json, payload)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
