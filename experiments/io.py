"""Atomic file writes: a reader (or an interrupted run) never sees a half-written file."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from driftrec.atomic import atomic_open

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_write_csv",
    "atomic_savez",
    "strict_json",
]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to a temporary file next to ``path``, then rename it over ``path``."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON: {value!r}")


def strict_json(data: Any) -> Any:
    """``data`` with every non-finite float (NaN, inf) replaced by None (JSON ``null``).

    Python's ``json`` writes NaN as the non-standard ``NaN`` token that strict parsers reject;
    an undefined number is written as ``null`` instead.
    """
    if isinstance(data, float | np.floating):
        return float(data) if math.isfinite(data) else None
    if isinstance(data, Mapping):
        return {k: strict_json(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [strict_json(v) for v in data]
    if isinstance(data, np.ndarray):
        return strict_json(data.tolist())
    return data


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Atomically write strict JSON (numpy values become plain JSON, NaN and inf ``null``)."""
    text = json.dumps(strict_json(data), indent=2, default=_jsonable, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def atomic_write_csv(
    path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]], columns: Sequence[str]
) -> Path:
    """Atomically write rows (dicts) as CSV with the given column order."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row[c] for c in columns})
    return atomic_write_text(path, buf.getvalue())


def atomic_savez(path: str | os.PathLike[str], **arrays: Any) -> Path:
    """Atomically write a compressed ``.npz``."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())
