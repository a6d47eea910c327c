"""driftrec run --backend ray against a local Ray (skipped when Ray is not installed).

One local Ray (2 CPUs) serves the whole module; starting it costs a few seconds.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from driftrec.experiments.config import ExperimentConfig  # noqa: E402
from driftrec.experiments.ray_backend import run_grid_ray  # noqa: E402
from driftrec.experiments.runner import is_done, run_grid  # noqa: E402

COMPARED = ("metrics.csv", "events.json", "topics.npz")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _grid(out_dir: Path) -> ExperimentConfig:
    return ExperimentConfig(
        name="g", out_dir=str(out_dir), scenarios=("Stationary",),
        agents=("random", "popularity"), seeds=(0, 1), steps=30, num_envs=8, log_every=10,
    )  # fmt: skip


def test_ray_grid_with_nothing_to_do_does_not_start_ray(tmp_path: Path) -> None:
    """A finished grid returns its run dirs without touching Ray."""
    cfg = _grid(tmp_path)
    run_grid(cfg, progress=False)
    assert not ray.is_initialized()
    assert len(run_grid_ray(cfg, progress=False)) == 6  # 2 agents + the reference, x 2 seeds
    assert not ray.is_initialized()


def test_ray_grid_equals_local_and_resumes_after_an_interruption(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted after its first finished run, the Ray grid keeps it; run again, it does only
    the rest; every run's files equal the local backend's byte for byte."""
    monkeypatch.chdir(tmp_path)
    cfg = _grid(Path("rel"))  # a relative out_dir is made absolute for the workers

    def interrupt(_: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_grid_ray(cfg, progress=False, on_run_done=interrupt)
    first = [d for d in (tmp_path / "rel" / "g").iterdir() if d.is_dir() and is_done(d)]
    assert len(first) >= 1
    kept = {d: (d / "done.json").stat().st_mtime_ns for d in first}

    seen: list[Path] = []
    dirs = run_grid_ray(cfg, progress=False, on_run_done=seen.append)
    assert all(d.is_absolute() and is_done(d) for d in dirs) and len(dirs) == 6
    assert not set(seen) & set(kept)  # finished runs were not redone
    assert all((d / "done.json").stat().st_mtime_ns == t for d, t in kept.items())

    local = run_grid(dataclasses.replace(cfg, out_dir=str(tmp_path / "local")), progress=False)
    for d_ray, d_local in zip(dirs, local, strict=True):
        assert d_ray.name == d_local.name
        for name in COMPARED:
            assert (d_ray / name).read_bytes() == (d_local / name).read_bytes(), (d_ray, name)
        c_ray, c_local = (json.loads((d / "config.json").read_text()) for d in (d_ray, d_local))
        assert c_ray.pop("out_dir") == str(tmp_path / "rel")
        c_local.pop("out_dir")
        assert c_ray == c_local


def test_cli_run_backend_ray(local_ray: None, tmp_path: Path) -> None:
    """driftrec run --backend ray runs the grid; --address without it is an error."""
    from driftrec.experiments.cli import main

    args = ["run", "--scenarios", "Stationary", "--agents", "random", "--seeds", "0",
            "--steps", "10", "--log-every", "5", "--num-envs", "4", "--out-dir", str(tmp_path),
            "--name", "c", "--no-progress"]  # fmt: skip
    assert main([*args, "--backend", "ray"]) == 0
    assert is_done(tmp_path / "c" / "Stationary__random__0")
    assert main([*args, "--address", "auto"]) == 2
