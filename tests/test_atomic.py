"""The one atomic-write helper: strict JSON, 0644 files, nothing left behind on failure."""

from __future__ import annotations

import json
import math
import re
import stat
from pathlib import Path

import numpy as np
import pytest

from driftrec.atomic import FILE_MODE, atomic_open
from driftrec.experiments.io import atomic_savez, atomic_write_csv, atomic_write_json


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_writer_gives_0644(tmp_path: Path) -> None:
    """Results are 0644 like the PNGs and model.zip (mkstemp alone would give 0600)."""
    paths = [
        atomic_write_json(tmp_path / "a.json", {"x": 1}),
        atomic_write_csv(tmp_path / "m.csv", [{"a": 1}], ["a"]),
        atomic_savez(tmp_path / "t.npz", x=np.zeros(2)),
    ]
    with atomic_open(tmp_path / "b.txt", "w") as fh:
        fh.write("hi\n")
    paths.append(tmp_path / "b.txt")
    assert FILE_MODE == 0o644
    assert [_mode(p) for p in paths] == [0o644] * 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.txt", "m.csv", "t.npz"]


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
