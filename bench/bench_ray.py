#!/usr/bin/env python
"""The same small grid on the local process pool and on a local Ray; wall times side by side.

Needs the ``ray`` extra. Prints seconds per backend and whether the metrics files are equal.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")


def main() -> None:
    from driftrec.experiments.config import ExperimentConfig
    from driftrec.experiments.ray_backend import run_grid_ray
    from driftrec.experiments.runner import run_grid

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())

    def grid(out: str) -> ExperimentConfig:
        return ExperimentConfig(
            name="g", out_dir=str(root / out), scenarios=("AbruptShift",),
            agents=("random", "popularity", "epsilon-greedy"), seeds=(0, 1),
            steps=args.steps, num_envs=32, workers=args.workers,
        )  # fmt: skip

    t = time.perf_counter()
    local = run_grid(grid("local"), progress=False)
    t_local = time.perf_counter() - t
    t = time.perf_counter()
    remote = run_grid_ray(grid("ray"), num_cpus=args.workers, progress=False)
    t_ray = time.perf_counter() - t  # includes starting and stopping the local Ray
    same = all(
        (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
        for a, b in zip(local, remote, strict=True)
    )
    print(f"{len(local)} runs x {args.steps} steps, {args.workers} workers: local pool "
          f"{t_local:.1f} s, ray {t_ray:.1f} s (ratio {t_ray / t_local:.2f}); "
          f"metrics equal: {same}")  # fmt: skip


if __name__ == "__main__":
    main()
