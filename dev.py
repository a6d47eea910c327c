#!/usr/bin/env python3
"""One entry point for a fresh machine: set up a virtual environment, then run a job.

    python3 dev.py demo          # set up (first time only), then run `driftrec demo`
    python3 dev.py test          # set up with test tools, then run the default test suite
    python3 dev.py test -m slow  # the slow learning tests
    python3 dev.py bench         # the simulator benchmark (bench/bench_env.py)
    python3 dev.py run ARGS...   # any `driftrec` subcommand inside the environment

Only the Python standard library is needed to start. The environment lives in ``.venv`` next
to this file; it is reinstalled when ``pyproject.toml`` changes. torch is pinned for the install
(``DRIFTREC_TORCH``, default ``torch==2.13.0``) so pip takes the CPU build already on this kind of
machine instead of resolving the newest, multi-GB CUDA build; pyproject itself keeps a range.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
TORCH = os.environ.get("DRIFTREC_TORCH", "torch==2.13.0")


def _run(cmd: list[str], **kw) -> int:
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd, **kw)


def setup(extras: str) -> None:
    """Create ``.venv`` and install driftrec (editable) with ``extras`` unless up to date."""
    stamp = VENV / f".driftrec-{extras or 'base'}"
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + TORCH.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == key and PY.exists():
        return
    if not PY.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    rc = _run(
        [str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", TORCH, "-e", target]
    )
    if rc:
        sys.exit(f"dev.py: installing driftrec failed (pip exit code {rc})")
    stamp.write_text(key)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    job, rest = argv[0], argv[1:]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    if job == "test":
        setup("dev")
        # one BLAS/OpenMP thread: on small shared machines more threads make the tests slower
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        return _run([str(PY), "-m", "pytest", *rest], cwd=ROOT, env=env)
    if job == "demo":
        setup("")
        return _run([str(BIN / "driftrec"), "demo", *rest], cwd=ROOT, env=env)
    if job == "bench":
        setup("dev")
        return _run([str(PY), str(ROOT / "bench" / "bench_env.py"), *rest], cwd=ROOT, env=env)
    if job == "run":
        setup("")
        return _run([str(BIN / "driftrec"), *rest], cwd=ROOT, env=env)
    print(f"dev.py: unknown job {job!r}; expected one of demo, test, bench, run", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
