"""The MovieLens calibration table, recomputed from recbole's packaged MovieLens-100k.

Slow (seven fits of the world and the simulated histories: about 10 minutes on a busy 2-core
machine): ``pytest tests/experiments/test_calibration_slow.py -m slow -s`` prints the table that
BENCHMARKS.md shows. Skipped when the data is absent (``pip install --no-deps recbole``).
"""

from __future__ import annotations

from typing import Any

import pytest

from driftrec.envs.movielens import load_movielens, recbole_movielens_dir
from driftrec.experiments.studies.calibration import TOLERANCES, calibration_table, format_table

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def table() -> dict[str, Any]:
    if recbole_movielens_dir() is None:
        pytest.skip("MovieLens-100k absent: pip install --no-deps recbole")
    result = calibration_table(load_movielens())
    print("\n" + format_table(result))
    return result


@pytest.mark.parametrize("statistic", list(TOLERANCES))
def test_movielens_statistic_within_its_tolerance(table: dict[str, Any], statistic: str) -> None:
    """Each statistic of the simulated MovieLens users is within the tolerance fixed for it."""
    row = next(r for r in table["rows"] if r["statistic"] == statistic)
    print(f"{statistic}: real {row['real']} sim {row['sim']} reference {row['reference']}")
    assert row["passed"], f"{row['description']}: {row} ({row['tolerance']})"
