"""The one atomic-write helper: strict JSON, files as the umask says, nothing left on failure."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest

from driftrec.atomic import atomic_open
from driftrec.experiments.io import atomic_savez, atomic_write_csv, atomic_write_json


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _write_all(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = [
        atomic_write_json(folder / "a.json", {"x": 1}),
        atomic_write_csv(folder / "m.csv", [{"a": 1}], ["a"]),
        atomic_savez(folder / "t.npz", x=np.zeros(2)),
    ]
    with atomic_open(folder / "b.txt", "w") as fh:
        fh.write("hi\n")
    paths.append(folder / "b.txt")
    assert sorted(p.name for p in folder.iterdir()) == ["a.json", "b.txt", "m.csv", "t.npz"]
    return paths


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_every_writer_respects_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    """Files get 0o666 minus the umask, as ``open`` gives (mkstemp alone would give 0600, and
    a forced 0644 would expose results a umask 077 keeps private)."""
    with _umask(umask):
        paths = _write_all(tmp_path / "out")
    assert [_mode(p) for p in paths] == [mode] * 4


def test_full_disk_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC while writing (Python's error names no file) names the destination; nothing is
    left behind and the old file is kept."""
    target = tmp_path / "metrics.csv"
    target.write_text("old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as info, atomic_open(target, "w") as fh:
        fh.write("new")
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(target))
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="^boom$"), atomic_open(target, "w") as fh:
        fh.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_mode_is_checked(tmp_path: Path) -> None:
    msg = "'mode' must be 'wb' or 'w' (got 'a')"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"), atomic_open(tmp_path / "x", "a"):
        pass


def test_json_is_strict(tmp_path: Path) -> None:
    """NaN and inf become null: the file parses with a strict parser."""
    data = {"a": math.nan, "b": [np.float64("inf"), 1.5], "c": np.float32(2.0), "d": (1, -math.inf)}
    path = atomic_write_json(tmp_path / "s.json", data)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text

    def reject(token: str) -> float:
        raise AssertionError(f"non-standard JSON token {token}")

    assert json.loads(text, parse_constant=reject) == {
        "a": None,
        "b": [None, 1.5],
        "c": 2.0,
        "d": [1, None],
    }
