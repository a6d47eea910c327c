"""Ctrl-C and SIGTERM stop every command at once, at any moment, however it was launched.

The subprocess tests send the signal to the whole process group (what a terminal does) at
offsets from the moment the grid prints its first ``start`` line; the quick ones run in the
default suite, the sweep over many offsets is marked slow.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from driftrec.experiments.guard import catch_interrupts, check_interrupted, interrupted
from driftrec.experiments.runner import is_done


def _send_later(seconds: float, signum: int = signal.SIGINT) -> None:
    """Deliver ``signum`` to this process after ``seconds`` (from a thread, like a terminal)."""
    import threading

    threading.Timer(seconds, os.kill, (os.getpid(), signum)).start()


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_interrupt_during_an_import_waits_for_the_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt that arrives while a module is imported is raised right after the import,
    not inside it (inside a C extension's initialisation it broke torch or was lost)."""
    (tmp_path / "slow_module_for_interrupts.py").write_text(
        "import os, signal, time\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "end = time.monotonic() + 0.3\n"
        "while time.monotonic() < end:\n"
        "    pass\n"
        "COMPLETE = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reached = []
    with pytest.raises(KeyboardInterrupt), catch_interrupts():
        import slow_module_for_interrupts  # noqa: F401

        reached.append(sys.modules["slow_module_for_interrupts"].COMPLETE)
        _busy(5.0)  # the interrupt must come well before this ends
    assert reached == [True]
    assert interrupted() is None  # outside a block, nothing is pending


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_swallowed_interrupt_is_raised_again() -> None:
    """An interrupt swallowed on the way (here inside a ``__del__``, which Python reports as
    'Exception ignored') is raised again at the next check, and when the block ends."""

    class Swallows:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            _busy(0.2)

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), catch_interrupts():
        obj = Swallows()
        del obj
        assert interrupted() == signal.SIGINT
        check_interrupted()
        pytest.fail("check_interrupted did not raise")
    with pytest.raises(KeyboardInterrupt), catch_interrupts():
        obj = Swallows()
        del obj  # no check: the end of the block raises
    with catch_interrupts():  # a new block starts clean
        check_interrupted()
    assert signal.getsignal(signal.SIGINT) is before


_GRID = [
    "run", "--scenarios", "Stationary,AbruptShift", "--agents", "random,linucb",
    "--seeds", "0,1,2,3", "--steps", "100000", "--num-envs", "8", "--log-every", "100",
    "--workers", "1", "--name", "g", "--no-progress",
]  # fmt: skip


def _interrupt_grid(
    start_cli: Any, out_dir: Path, offset: float, signum: int, *, ignore_sigint: bool = False
) -> None:
    """Start the grid, send ``signum`` ``offset`` s after its first run starts; check it stops."""
    proc = start_cli([*_GRID, "--out-dir", str(out_dir)], ignore_sigint=ignore_sigint)
    try:
        seen = ""
        while not seen.endswith("\n") or not seen.splitlines()[-1].startswith("start "):
            line = proc.stdout.readline()  # type: ignore[union-attr]  (notes come first)
            assert line, seen + proc.stderr.read()  # type: ignore[union-attr]
            seen += line
        time.sleep(offset)
        t0 = time.monotonic()
        os.killpg(proc.pid, signum)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    where = f"signal {signum} at +{offset} s"
    assert proc.returncode == 130, (where, out, err)
    assert took < 20, (where, took)
    assert err.endswith("driftrec run: interrupted; finished runs are kept (run again to resume)\n")
    assert "Traceback" not in err, (where, err)
    assert "start " not in out, (where, out)  # nothing started after the interrupt
    exp = out_dir / "g"
    assert not any(is_done(d) for d in exp.iterdir() if d.is_dir()), where
    assert not (exp / ".lock").exists(), where
    print(f"{where}: exit 130 in {took:.1f} s")


@pytest.mark.parametrize(
    ("signum", "offset", "ignore_sigint"),
    [
        (signal.SIGINT, 0.0, False),
        (signal.SIGINT, 0.05, True),
        (signal.SIGTERM, 0.3, False),
    ],
    ids=["sigint-at-start", "sigint-inherited-ignored", "sigterm"],
)
def test_sequential_grid_stops_on_a_signal(
    start_cli: Any, tmp_path: Path, signum: int, offset: float, ignore_sigint: bool
) -> None:
    """A grid run one run at a time (``--workers 1``) stops with exit 130 when interrupted as
    its first run starts or later, also when it was launched with SIGINT ignored (``cmd &``
    in a script): the local pool's behaviour."""
    _interrupt_grid(start_cli, tmp_path, offset, signum, ignore_sigint=ignore_sigint)


@pytest.mark.slow
def test_sequential_grid_stops_at_every_offset(start_cli: Any, tmp_path: Path) -> None:
    """Many offsets around the start of the first run (the window where the issue's audit
    lost 3 of 9 interrupts), alternating SIGINT and SIGTERM and an inherited ignored SIGINT."""
    offsets = [round(0.02 * i, 2) for i in range(10)] + [0.3, 0.5, 0.8, 1.2, 2.0, 3.0]
    for n, offset in enumerate(offsets):
        signum = signal.SIGTERM if n % 3 == 2 else signal.SIGINT
        _interrupt_grid(start_cli, tmp_path / str(n), offset, signum, ignore_sigint=n % 3 == 1)
    print(f"{len(offsets)} interrupts at offsets {offsets}: all stopped with exit 130")


def test_a_ctrl_c_while_driftrec_imports_exits_130_without_a_traceback(tmp_path: Path) -> None:
    """The console script catches a Ctrl-C that lands while Python still imports driftrec
    (numpy, Gymnasium: a second or more), which ended in a traceback before: exit 130 and one
    line at every offset; at least one offset landed in the import (else this proved nothing),
    the later ones in the command, which says what it kept. Also when the command was started
    with SIGINT ignored (``cmd &`` in a script), where Python installs no handler of its own:
    that signal was lost in the import before, and the whole grid ran."""
    script = Path(sys.executable).with_name("driftrec")
    if not script.is_file():
        pytest.skip("the driftrec console script is not installed beside this Python")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    starting = {False: 0, True: 0}
    for i, offset in enumerate((0.15, 0.3, 0.5, 0.8, 3.0)):
        for ignored in (False, True):
            argv = [str(script), *_GRID, "--out-dir", str(tmp_path / f"{i}-{ignored}")]
            handler = signal.SIG_IGN if ignored else signal.SIG_DFL  # whatever pytest inherited
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                start_new_session=True,
                preexec_fn=lambda h=handler: signal.signal(signal.SIGINT, h),  # type: ignore[misc]
            )  # fmt: skip
            try:
                time.sleep(offset)
                os.killpg(proc.pid, signal.SIGINT)
                out, err = proc.communicate(timeout=60)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            where = (offset, "SIGINT inherited ignored" if ignored else "default")
            assert proc.returncode == 130, (where, out, err)
            assert "Traceback" not in err, (where, err)
            assert err.strip().splitlines()[-1].startswith("driftrec"), (where, err)
            starting[ignored] += "interrupted while starting; nothing was run" in err
    assert starting[False] >= 1 and starting[True] >= 1, starting
