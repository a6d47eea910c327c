#!/usr/bin/env python3
"""One entry point for a fresh machine: set up a virtual environment, then run a job.

    python3 dev.py demo          # set up (first time only), then run `driftrec demo`
    python3 dev.py test          # set up with test tools, then run the default test suite
    python3 dev.py test -m slow  # the slow learning tests
    python3 dev.py bench         # the simulator benchmark (bench/bench_env.py)
    python3 dev.py run ARGS...   # any `driftrec` subcommand inside the environment
    python3 dev.py test-min      # the declared minimum versions (in .venv-min): a smoke subset

Only the Python standard library is needed to start. The environment lives in ``.venv`` next
to this file; it is reinstalled when ``pyproject.toml`` changes. torch is pinned for the install
(``DRIFTREC_TORCH``, default ``torch==2.13.0``) so pip takes the CPU build already on this kind of
machine instead of resolving the newest, multi-GB CUDA build; pyproject itself keeps a range.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
import tomllib
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


def _python(env_dir: Path) -> Path:
    return env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"


def _install(env_dir: Path, stamp_name: str, key_extra: str, requirements: list[str]) -> None:
    """Create ``env_dir`` and pip-install ``requirements`` unless its stamp is up to date."""
    stamp = env_dir / stamp_name
    py = _python(env_dir)
    key = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + TORCH.encode() + key_extra.encode()
    ).hexdigest()
    if stamp.exists() and stamp.read_text() == key and py.exists():
        return
    t0 = time.monotonic()
    if not py.exists():
        print(f"dev.py: creating the virtual environment {env_dir}", flush=True)
        venv.EnvBuilder(with_pip=True).create(env_dir)
    print(
        "dev.py: installing driftrec and its dependencies (torch, transformers, SB3, ...); "
        "the first time takes about 1-3 minutes, pip shows its progress below",
        flush=True,
    )
    rc = _run([str(py), "-m", "pip", "install", "--disable-pip-version-check", *requirements])
    if rc:
        sys.exit(f"dev.py: installing driftrec failed (pip exit code {rc})")
    stamp.write_text(key)
    print(f"dev.py: environment ready in {time.monotonic() - t0:.0f} s", flush=True)


def setup(extras: str) -> None:
    """Create ``.venv`` and install driftrec (editable) with ``extras`` unless up to date."""
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    _install(VENV, f".driftrec-{extras or 'base'}", "", [TORCH, "-e", target])


MIN_VENV = ROOT / ".venv-min"
MIN_TESTS = [
    "tests/envs/test_gym_env.py",
    "tests/envs/test_sb3.py",
    "tests/agents/test_sb3_policy.py",
    "tests/agents/test_registry.py",
    "tests/agents/test_text_encoder.py",
    "tests/agents/test_lora.py",
    "tests/experiments/test_runner.py",
    "tests/experiments/test_plots.py",
]
"""The smoke subset run against the minimum versions: gymnasium, SB3 (+ torch), transformers,
matplotlib, tqdm, threadpoolctl and peft are each exercised by at least one of these files."""


def minimum_requirements() -> list[str]:
    """Every ``name>=X`` of pyproject's dependencies (and the dev extra) pinned to ``name==X``.

    torch is the exception: it is pinned to ``DRIFTREC_TORCH`` (the CPU build on this kind of
    machine), as an older torch would be a multi-GB download.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = []
    for spec in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9][^,;\s]*)\s*(,.*)?", spec)
        if match is None:
            sys.exit(f"dev.py: dependency {spec!r} has no '>=' floor to test")
        name, floor = match.group(1), match.group(2)
        if name == "ruff":
            continue  # a linter: its version does not affect driftrec
        pins.append(TORCH if name == "torch" else f"{name}=={floor}")
    return pins


def test_minimum(rest: list[str], env: dict[str, str]) -> int:
    """Install the declared minimum versions in ``.venv-min`` and run the smoke subset."""
    pins = minimum_requirements()
    _install(MIN_VENV, ".driftrec-min", " ".join(pins), [*pins, "-e", str(ROOT)])
    py = _python(MIN_VENV)
    rc = _run([str(py), "-m", "pip", "check"])
    if rc:
        return rc
    print("dev.py: minimum versions: " + " ".join(pins), flush=True)
    return _run([str(py), "-m", "pytest", "-q", *MIN_TESTS, *rest], cwd=ROOT, env=env)


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
    if job == "test-min":
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        return test_minimum(rest, env)
    if job == "demo":
        setup("")
        return _run([str(BIN / "driftrec"), "demo", *rest], cwd=ROOT, env=env)
    if job == "bench":
        setup("dev")
        return _run([str(PY), str(ROOT / "bench" / "bench_env.py"), *rest], cwd=ROOT, env=env)
    if job == "run":
        setup("")
        return _run([str(BIN / "driftrec"), *rest], cwd=ROOT, env=env)
    print(
        f"dev.py: unknown job {job!r}; expected one of demo, test, test-min, bench, run",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
