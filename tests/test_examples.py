"""Every example runs quick, and the README's Python snippets run as pasted (marker ``examples``).

Not part of the default suite (minutes of CPU); CI runs it: ``python3 dev.py test -m examples``
(``.ci/run``). A README block that needs optional data or extras is skipped when the line
before its fence is ``<!-- readme-test: skip (reason) -->``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]*)\)\s*-->")

pytestmark = pytest.mark.examples


def _env() -> dict[str, str]:
    return dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        MPLBACKEND="Agg",
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_quick(example: Path, tmp_path: Path) -> None:
    """``python examples/X.py --quick`` exits 0 and writes its report; prints its CPU time."""
    t0 = time.perf_counter()
    cpu0 = os.times()
    proc = subprocess.run(
        [sys.executable, str(example), "--quick", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=600,
    )
    cpu = sum(os.times()[2:4]) - sum(cpu0[2:4])
    print(
        f"{example.name}: {time.perf_counter() - t0:.0f} s wall, {cpu:.0f} s CPU, load "
        f"{os.getloadavg()[0]:.1f}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = list(tmp_path.rglob("report.md"))
    assert reports, f"{example.name} wrote no report.md:\n{proc.stdout[-2000:]}"


def readme_blocks() -> list[tuple[int, str, str | None]]:
    """``(line, code, skip reason)`` of every ```python block of README.md, in order."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i
            skip = SKIP.search(lines[i - 1]) if i > 0 else None
            i += 1
            body = []
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            blocks.append((start + 1, "\n".join(body), skip.group("reason") if skip else None))
        i += 1
    return blocks


def test_readme_python_blocks_run(tmp_path: Path) -> None:
    """The README's python blocks run in order in one fresh interpreter, as pasted."""
    blocks = readme_blocks()
    assert len(blocks) >= 5
    parts = ["import time"]
    for line, code, reason in blocks:
        if reason is not None:
            print(f"README.md:{line}: skipped ({reason})")
            continue
        parts.append(f"print('README.md:{line}', flush=True); _t = time.perf_counter()")
        parts.append(code)
        parts.append(f"print('README.md:{line} ok in', round(time.perf_counter() - _t), 's')")
    script = tmp_path / "readme_blocks.py"
    script.write_text("\n".join(parts) + "\n")
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=1200,
    )
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, (proc.stdout[-1500:], proc.stderr[-3000:])
