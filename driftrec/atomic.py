"""The one atomic-write helper: a reader (or an interrupted writer) never sees a half-written file.

Everything driftrec writes (run results, reports, figures, checkpoints, catalogs, the embedding
cache, benchmark JSON) goes through :func:`atomic_open`: the data is written to a temporary file
in the destination's directory, flushed to disk, given ordinary ``0o644`` permissions (what
``open`` would give under the usual umask, instead of ``mkstemp``'s ``0o600``) and renamed over
the destination. Standard library only, so the numpy/gymnasium-only ``driftrec.envs`` can use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "FILE_MODE"]

FILE_MODE = 0o644
"""Permissions of every file driftrec writes (owner read/write, everyone else read)."""


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "wb", *, encoding: str | None = None
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` for writing; on success it replaces ``path``.

    Args:
        path: the destination (its directory is created if missing).
        mode: ``"wb"`` or ``"w"`` (text, UTF-8 unless ``encoding`` says otherwise, ``\\n`` line
            endings).
        encoding: text encoding for ``mode="w"``.

    If the ``with`` block raises (or is interrupted), the temporary file is removed and ``path``
    is left as it was.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"'mode' must be 'wb' or 'w' (got {mode!r})")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        text = {} if mode == "wb" else {"encoding": encoding or "utf-8", "newline": "\n"}
        with os.fdopen(fd, mode, **text) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
