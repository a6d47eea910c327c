"""Runs are never mixed, doubly written or orphaned: fingerprints, locks, interrupts."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from driftrec.experiments import runner
from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.guard import DirectoryLock, LockedError, SettingsChanged
from driftrec.experiments.runner import is_done, run_grid, run_one


def _grid(out_dir: Path, **kwargs: Any) -> ExperimentConfig:
    base: dict[str, Any] = {
        "name": "grid",
        "agents": ("random",),
        "seeds": (0,),
        "num_envs": 4,
        "steps": 16,
        "log_every": 8,
        "shift_at": 8,
        "env_overrides": {"num_items": 32},
        "out_dir": str(out_dir),
        "reference_agent": None,  # one run per grid here; the reference run: test_returns.py
    }
    return ExperimentConfig(**{**base, **kwargs})


def test_done_json_records_the_fingerprints_as_strict_json(tmp_path: Path) -> None:
    (d,) = run_grid(_grid(tmp_path), progress=False)
    done = json.loads((d / "done.json").read_text(), parse_constant=pytest.fail)
    config = json.loads((d / "config.json").read_text())
    assert re.fullmatch("[0-9a-f]{64}", done["fingerprint"])
    assert done["catalog_fingerprint"] == config["catalog_fingerprint"]
    assert re.fullmatch("[0-9a-f]{64}", config["catalog_fingerprint"])


def test_other_settings_are_refused_and_restart_starts_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _grid(tmp_path)
    (d,) = run_grid(cfg, progress=False)
    capsys.readouterr()
    run_grid(cfg, progress=False)  # same settings: reused, and said so
    assert "1 of 1 runs already done, skipped" in capsys.readouterr().out

    changed = _grid(tmp_path, steps=24)
    msg = (
        f"{d} was finished with other settings (steps: 16 -> 24); to start over run with "
        "--restart (restart=True), or give this experiment another --name"
    )
    before = (d / "done.json").read_bytes()
    with pytest.raises(SettingsChanged, match=f"^{re.escape(msg)}$"):
        run_grid(changed, progress=False)
    with pytest.raises(SettingsChanged, match=f"^{re.escape(msg)}$"):
        run_one(changed, "AbruptShift", "random", 0)
    assert (d / "done.json").read_bytes() == before  # nothing rewritten
    assert json.loads((cfg.experiment_dir / "experiment.json").read_text())["steps"] == 16

    other = _grid(tmp_path, env_overrides={"num_items": 40}, seeds=(0, 1))
    with pytest.raises(SettingsChanged, match=r"env_config\.catalog\.num_items: 32 -> 40"):
        run_grid(other, progress=False)

    (tmp_path / "grid" / "notes.txt").write_text("mine")
    (d2,) = run_grid(changed, progress=False, restart=True)
    assert json.loads((d2 / "done.json").read_text())["global_steps"] == 24
    assert (tmp_path / "grid" / "notes.txt").read_text() == "mine"  # restart deletes only runs


def test_run_of_another_driftrec_version_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finished run made by another driftrec version is not mixed with new ones."""
    import driftrec

    cfg = _grid(tmp_path)
    (d,) = run_grid(cfg, progress=False)
    made_by = driftrec.__version__
    assert json.loads((d / "config.json").read_text())["driftrec_version"] == made_by
    monkeypatch.setattr(driftrec, "__version__", "99.0.0")
    msg = f"driftrec_version: {made_by!r} -> '99.0.0'"
    with pytest.raises(SettingsChanged, match=re.escape(msg)):
        run_grid(cfg, progress=False)


def test_run_without_fingerprint_is_refused(tmp_path: Path) -> None:
    cfg = _grid(tmp_path)
    (d,) = run_grid(cfg, progress=False)
    done = json.loads((d / "done.json").read_text())
    del done["fingerprint"]
    (d / "done.json").write_text(json.dumps(done))
    msg = (
        f"{d} was finished with other settings (it has no run fingerprint: an older driftrec "
        "made it); to start over run with --restart (restart=True), or give this experiment "
        "another --name"
    )
    with pytest.raises(SettingsChanged, match=f"^{re.escape(msg)}$"):
        run_grid(cfg, progress=False)


def test_second_runner_is_locked_out(tmp_path: Path) -> None:
    cfg = _grid(tmp_path)
    lock_path = cfg.experiment_dir / ".lock"
    with DirectoryLock(lock_path, what="x"):
        holder = json.loads(lock_path.read_text())
        assert holder["pid"] == os.getpid()
        msg = (
            f"experiment {cfg.experiment_dir} is in use by another driftrec (pid {os.getpid()} "
            f"on {holder['host']}, since {holder['since']}); wait for it to finish or stop it "
            f"(its lock file is {lock_path})"
        )
        with pytest.raises(LockedError, match=f"^{re.escape(msg)}$"):
            run_grid(cfg, progress=False)
    assert not lock_path.exists()  # released and removed
    run_dir = cfg.run_dir("AbruptShift", "random", 0)
    with DirectoryLock(run_dir.with_name(f".{run_dir.name}.lock"), what="y"):
        with pytest.raises(LockedError, match=f"^run {re.escape(str(run_dir))} is in use"):
            run_one(cfg, "AbruptShift", "random", 0)
    assert not run_dir.exists()


def test_lock_left_by_a_dead_process_is_free(tmp_path: Path) -> None:
    """A lock file whose holder died (kill -9) does not block: the flock died with it."""
    path = tmp_path / ".lock"
    code = (
        "import os, sys\n"
        "from driftrec.experiments.guard import DirectoryLock\n"
        f"DirectoryLock({str(path)!r}, what='x').acquire()\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -signal.SIGKILL and path.exists()
    with DirectoryLock(path, what="x"):
        assert json.loads(path.read_text())["pid"] == os.getpid()


_POOL_SCRIPT = """
import sys, time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from driftrec.experiments.guard import exit_with_parent

def work(_):
    import os
    print(os.getpid(), flush=True)
    time.sleep(120)

if __name__ == "__main__":
    pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=exit_with_parent)
    pool.submit(work, 0)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def test_pool_worker_dies_with_its_parent(tmp_path: Path) -> None:
    script = tmp_path / "pool.py"
    script.write_text(_POOL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(proc.stdout.readline())  # type: ignore[union-attr]
        assert _alive(worker)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker)
    finally:
        proc.kill()


@pytest.mark.parametrize("signals", [(signal.SIGINT, signal.SIGINT), (signal.SIGTERM,)])
def test_interrupted_parallel_grid_stops_at_once(tmp_path: Path, signals: tuple[int, ...]) -> None:
    """Ctrl-C (twice, to the whole process group) or SIGTERM: exit 130 within seconds, workers
    gone, no run started after the interrupt, and a re-run resumes."""
    args = [
        "run", "--agents", "random,popularity", "--seeds", "0,1,2", "--steps", "10000000",
        "--num-envs", "2", "--log-every", "1000", "--env", '{"num_items": 20}',
        "--workers", "2", "--name", "g", "--out-dir", str(tmp_path), "--no-progress",
    ]  # fmt: skip
    # SIGALRM after 5 minutes is a watchdog: if this test is itself killed before its finally
    # runs, the 10-million-step grid must not outlive it (its workers die with their parent)
    # and run as the console script runs it (a second Ctrl-C while it exits is ignored too)
    code = (
        f"import signal, sys; signal.alarm(300); sys.argv = ['driftrec', *{args!r}]; "
        "from _driftrec_cli import main; sys.exit(main())"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        started = 0
        while started < 2:  # both workers are inside a run
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line, proc.stderr.read()  # type: ignore[union-attr]
            started += line.startswith("start ")
        children = [int(p) for p in subprocess.check_output(["pgrep", "-P", str(proc.pid)]).split()]
        assert len(children) >= 2  # the two pool workers (and multiprocessing's helpers)
        t0 = time.monotonic()
        for sig in signals:
            if sig == signal.SIGINT:
                os.killpg(proc.pid, sig)  # what the terminal does
            else:
                proc.send_signal(sig)
            time.sleep(0.2)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert took < 10, took
    assert "interrupted; finished runs are kept" in err and "Traceback" not in err
    assert "leaked semaphore" not in err  # a terminated worker's tqdm lock used to leak
    assert "start " not in out  # no queued run started after the interrupt
    time.sleep(0.5)
    assert not [c for c in children if _alive(c)]
    assert not any(is_done(d) for d in (tmp_path / "g").iterdir() if d.is_dir())
    assert not (tmp_path / "g" / ".lock").exists()


def test_worker_start_and_finish_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_grid(_grid(tmp_path, agents=("random", "popularity")), progress=False)
    out = capsys.readouterr().out
    for agent in ("random", "popularity"):
        assert f"start  AbruptShift/{agent}/0\n" in out
        assert re.search(rf"^done   AbruptShift/{agent}/0 in \d+ s$", out, re.M)


def test_restart_deletes_only_driftrec_outputs(tmp_path: Path) -> None:
    exp = tmp_path / "grid"
    exp.mkdir()
    (exp / "keep__me.txt").write_text("x")  # a file with '__' is not a run directory
    (exp / "mine").mkdir()
    run_grid(_grid(tmp_path), progress=False, restart=True)
    assert (exp / "keep__me.txt").exists() and (exp / "mine").is_dir()


def test_monkeypatched_failure_leaves_no_run_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent that rejects its settings fails before its run directory exists."""

    def reject(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("`batch_size` must be greater than 1.")

    monkeypatch.setattr(runner, "build_agent", reject)
    cfg = _grid(tmp_path)
    msg = "agent 'random' rejected its settings (agent_kwargs {}): `batch_size` must be greater than 1."  # noqa: E501
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        run_grid(cfg, progress=False)
    assert not cfg.run_dir("AbruptShift", "random", 0).exists()
