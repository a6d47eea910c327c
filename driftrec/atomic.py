"""The one atomic-write helper: a reader (or an interrupted writer) never sees a half-written file.

Everything driftrec writes (run results, reports, figures, checkpoints, catalogs, the embedding
cache, benchmark JSON) goes through :func:`atomic_open`: the data is written to a temporary file
in the destination's directory, flushed to disk and renamed over the destination. The temporary
file is created with mode ``0o666`` minus the process's umask, exactly what ``open`` would give
(``0o644`` under the usual umask 022, ``0o600`` under 077), not ``mkstemp``'s fixed ``0o600``.
Standard library only, so the numpy/gymnasium-only ``driftrec.envs`` can use it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "new_file", "current_umask"]

_DEVICE_ERRORS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG", "EIO") if hasattr(errno, name)
)
"""Errors of a write that Python reports without a file name (a full disk, a quota)."""


def current_umask() -> int:
    """The process's umask, read without changing it (``/proc``) where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not atomic between threads)
    os.umask(mask)
    return mask


def new_file(directory: str | os.PathLike[str], prefix: str, suffix: str) -> tuple[int, str]:
    """Create a new, empty file with a random name in ``directory``; ``(fd, path)``.

    Like :func:`tempfile.mkstemp`, but the mode is ``0o666`` minus the umask, as ``open`` gives.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        path = os.path.join(directory, f"{prefix}{secrets.token_hex(4)}{suffix}")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(directory))


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
    is left as it was. A full disk (or quota) while writing is an ``OSError`` that names
    ``path`` (Python's own names no file).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"'mode' must be 'wb' or 'w' (got {mode!r})")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = new_file(target.parent, f".{target.name}.", ".tmp")
    try:
        text = {} if mode == "wb" else {"encoding": encoding or "utf-8", "newline": "\n"}
        with os.fdopen(fd, mode, **text) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None and exc.errno in _DEVICE_ERRORS:
            raise OSError(exc.errno, exc.strerror, str(target)) from exc
        raise
