"""driftrec run --backend ray against a local Ray (skipped when Ray is not installed).

One local Ray (2 CPUs) serves the in-process tests; starting it costs a few seconds. The
command-line tests run their own process (and, for the signal tests, their own Ray).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

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


def test_a_ray_grid_and_a_local_grid_share_the_experiment_lock(
    local_ray: None, tmp_path: Path
) -> None:
    """While one runner (any backend) holds the experiment, a Ray grid on the same name is
    refused before anything is written, and a local grid while a Ray grid holds it."""
    from driftrec.experiments.guard import DirectoryLock, LockedError

    cfg = _grid(tmp_path)
    lock = DirectoryLock(cfg.experiment_dir / ".lock", what="x")
    with lock, pytest.raises(LockedError, match="is in use by another driftrec"):
        run_grid_ray(cfg, progress=False)
    assert [p.name for p in cfg.experiment_dir.iterdir()] == []  # the lock file went with it

    def local_grid_meanwhile(_: Path) -> None:
        with pytest.raises(LockedError, match="is in use by another driftrec"):
            run_grid(cfg, progress=False)

    assert len(run_grid_ray(cfg, progress=False, on_run_done=local_grid_meanwhile)) == 6


# ------------------------------------------------------------------------------------------
# the driftrec command with Ray: which cluster, signals (each test runs its own process)
# ------------------------------------------------------------------------------------------
_RAY_GRID = [
    "run", "--backend", "ray", "--scenarios", "Stationary", "--agents", "random,linucb",
    "--seeds", "0,1,2", "--num-envs", "8", "--log-every", "100", "--name", "r", "--no-progress",
]  # fmt: skip


def _finish(proc: subprocess.Popen[str], timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return out


def _stale_record(tmp: Path) -> dict[str, str]:
    """A Ray temp dir whose record of the last cluster names a port where nothing listens, and
    that address as ``RAY_ADDRESS`` (both of which a plain ``ray.init()`` would join)."""
    with socket.socket() as s:  # a free port, closed again
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp / "ray").mkdir(parents=True)
    (tmp / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{port}\n")
    return {"RAY_TMPDIR": str(tmp), "RAY_ADDRESS": f"127.0.0.1:{port}"}


def _short_tmp() -> Path:
    """Ray's sockets live in its temp dir, whose path must stay short (AF_UNIX: 107 bytes)."""
    return Path(tempfile.mkdtemp(prefix="dr-ray-", dir="/tmp"))


def test_address_auto_naming_a_cluster_that_is_gone_is_one_clear_error(
    start_cli: Any, tmp_path: Path
) -> None:
    """--address auto, with RAY_ADDRESS naming a cluster that is gone: one error within seconds
    (Ray alone retried for minutes), nothing run. (RAY_ADDRESS rather than Ray's record file:
    with "auto", Ray prefers any cluster running on this machine to its record.)"""
    gone = _stale_record(tmp_path / "unused")["RAY_ADDRESS"]
    proc = start_cli(
        [*_RAY_GRID, "--steps", "200", "--address", "auto", "--out-dir", str(tmp_path)],
        env={"RAY_ADDRESS": gone},
        merge_stderr=True,
    )
    out = _finish(proc, 60)
    assert proc.returncode == 2, out
    host, port = gone.split(":")
    expected = (
        rf"driftrec run: error: no Ray cluster answers at \S+:{port} \(--address auto: from "
        rf"RAY_ADDRESS='{host}:{port}'\): Connection refused"
    )
    assert re.search(expected, out), out
    assert "(set DRIFTREC_DEBUG=1" not in out
    assert not any(p.is_dir() for p in (tmp_path / "r").iterdir())


def test_an_unresponsive_cluster_times_out(start_cli: Any, tmp_path: Path) -> None:
    """A cluster address that accepts connections but never answers: a clear error after
    --ray-timeout seconds, not Ray's endless retries (where no signal handler runs)."""
    with socket.socket() as server:
        server.bind(("0.0.0.0", 0))  # Ray dials the machine's address, not the loopback's
        server.listen()
        port = server.getsockname()[1]
        proc = start_cli(
            [*_RAY_GRID, "--steps", "200", "--address", f"127.0.0.1:{port}", "--ray-timeout", "3",
             "--out-dir", str(tmp_path)],
            merge_stderr=True,
        )  # fmt: skip
        out = _finish(proc, 60)
    assert proc.returncode == 2, out
    assert re.search(rf"driftrec run: error: no answer from the Ray cluster at \S+:{port} within "
                     r"3 s; nothing was run", out), out  # fmt: skip


def _live_group_members(pgid: int, wait_s: float) -> list[str]:
    """The processes of group ``pgid`` still running after up to ``wait_s`` (zombies, already
    dead and waiting for init to reap them, do not count)."""
    deadline = time.monotonic() + wait_s
    while True:
        ps = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-g", str(pgid)],
                            capture_output=True, text=True)  # fmt: skip
        live = [line for line in ps.stdout.splitlines() if line.split()[1][0] != "Z"]
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.5)


def _signal_ray_grid(
    start_cli: Any, tmp_path: Path, signum: int, anchor: str, delay: float, **kw: Any
) -> str:
    """Start a Ray grid (a new local Ray, a stale record around), send ``signum`` ``delay`` s
    after the output line with ``anchor``; it must exit 130 at once, leaving no process."""
    tmp = _short_tmp()
    try:
        proc = start_cli(
            [*_RAY_GRID, "--steps", "100000", "--out-dir", str(tmp_path)],
            env=_stale_record(tmp),
            merge_stderr=True,
            **kw,
        )
        seen = ""
        while anchor not in seen:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line, seen
            seen += line
        time.sleep(delay)
        t0 = time.monotonic()
        if signum == signal.SIGINT:
            os.killpg(proc.pid, signum)  # what the terminal does
        else:
            proc.send_signal(signum)  # what `kill PID` does
        out = seen + _finish(proc, 120)
        took = time.monotonic() - t0
        left = _live_group_members(proc.pid, wait_s=10.0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    where = f"signal {signum}, {delay} s after {anchor!r}"
    assert proc.returncode == 130, (where, out)
    assert took < 60, (where, took)
    assert "driftrec run: interrupted; finished runs are kept (run again to resume)" in out, out
    assert "Traceback" not in out and "SIGTERM received" not in out, (where, out)
    assert left == [], (where, left)  # no Ray process of this grid is left running
    print(f"{where}: exit 130 in {took:.1f} s")
    assert not (tmp_path / "r" / ".lock").exists()
    return out


@pytest.mark.parametrize(
    ("signum", "ignore_sigint"),
    [(signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["sigterm", "sigint-inherited-ignored"],
)
def test_ray_grid_stops_on_a_signal(
    start_cli: Any, tmp_path: Path, signum: int, ignore_sigint: bool
) -> None:
    """Without --address a new local Ray is started (never the stale record's cluster, which
    Ray alone retried for minutes) and said so; SIGTERM or Ctrl-C (also when launched with
    SIGINT ignored, as `cmd &` does) stops it like the local backend: exit 130, the tasks
    cancelled, driftrec's message and no Ray crash dump."""
    out = _signal_ray_grid(start_cli, tmp_path, signum, "start ", 0.5, ignore_sigint=ignore_sigint)
    assert re.search(r"^ray: starting a new local Ray with \d+ CPUs$", out, re.M), out


@pytest.mark.slow
def test_ray_grid_stops_at_every_offset(start_cli: Any, tmp_path: Path) -> None:
    """Signals while Ray starts, as the first tasks start and later: always exit 130 at once."""
    cases = [
        (signal.SIGINT, "ray: starting", 0.0),
        (signal.SIGTERM, "ray: starting", 1.0),
        (signal.SIGINT, "ray: starting", 3.0),
        (signal.SIGTERM, "start ", 0.0),
        (signal.SIGINT, "start ", 0.2),
        (signal.SIGTERM, "start ", 2.0),
        (signal.SIGINT, "start ", 5.0),
    ]
    for n, (signum, anchor, delay) in enumerate(cases):
        _signal_ray_grid(
            start_cli, tmp_path / str(n), signum, anchor, delay, ignore_sigint=n % 2 == 0
        )
    print(f"{len(cases)} signals to Ray grids: all stopped with exit 130, nothing left running")
