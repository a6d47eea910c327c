"""``evaluate`` on a damaged or mismatched run: one error naming the file and what is wrong."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from driftrec.experiments.evaluate import evaluate_checkpoint, read_checkpoint


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst)
    return dst


def _raises(msg: str) -> pytest.RaisesContext[ValueError]:
    return pytest.raises(ValueError, match=f"^{re.escape(msg)}$")


def test_the_intact_run_evaluates(trained: Path) -> None:
    result = evaluate_checkpoint(trained, steps=4)
    assert result["user_steps"] == 16
    _, data = read_checkpoint(trained / "model.zip")
    config = json.loads((trained / "config.json").read_text())
    assert data["catalog_fingerprint"] == config["catalog_fingerprint"]  # in the checkpoint too


def test_truncated_and_flipped_model_zip(trained: Path, tmp_path: Path) -> None:
    run = _copy(trained, tmp_path)
    data = (run / "model.zip").read_bytes()
    (run / "model.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ValueError,
        match=f"^{re.escape(str(run / 'model.zip'))} cannot be loaded as a checkpoint \\(",
    ):  # noqa: E501
        evaluate_checkpoint(run, steps=4)
    flipped = bytearray(data)
    flipped[len(flipped) - 10] ^= 0xFF  # inside the zip's central directory
    (run / "model.zip").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="expected the model.zip driftrec wrote for this run\\)?$"):
        evaluate_checkpoint(run, steps=4)


def test_malformed_config_json(trained: Path, tmp_path: Path) -> None:
    run = _copy(trained, tmp_path)
    path = run / "config.json"
    good = json.loads(path.read_text())
    path.write_text("{oops")
    with _raises(
        f"{path}: not valid JSON (Expecting property name enclosed in double quotes at line 1); "
        "expected the run's config.json as driftrec wrote it"
    ):
        evaluate_checkpoint(run, steps=4)
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "num_envs"}))
    with _raises(f"{path}: missing field 'num_envs'; expected the run's config.json"):
        evaluate_checkpoint(run, steps=4)
    path.write_text(json.dumps({**good, "num_envs": "4"}))
    with _raises(f"{path}: field 'num_envs' must be a int (got '4')"):
        evaluate_checkpoint(run, steps=4)


def test_changed_catalog_is_refused(trained: Path, tmp_path: Path) -> None:
    run = _copy(trained, tmp_path)
    config = json.loads((run / "config.json").read_text())
    catalog = Path(config["env_config"]["catalog_path"])
    moved = tmp_path / "items.csv"
    lines = catalog.read_text().splitlines()
    moved.write_text("\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + "\n")  # 2 rows swapped
    config["env_config"]["catalog_path"] = str(moved)
    (run / "config.json").write_text(json.dumps(config))
    fp = config["catalog_fingerprint"]
    from driftrec.envs import load_catalog

    now = load_catalog(moved).content_fingerprint()
    with _raises(
        f"{run / 'config.json'}: the catalog changed since training (fingerprint {fp[:12]} "
        f"then, {now[:12]} now): its rows were reordered, added or rewritten; expected the "
        "catalog the model was trained on"
    ):
        evaluate_checkpoint(run, steps=4)


def test_changed_num_items_is_refused(trained: Path, tmp_path: Path) -> None:
    """A generated world of another size: named as a catalog change, not an array dump."""
    run = _copy(trained, tmp_path)
    config = json.loads((run / "config.json").read_text())
    config["env_config"]["catalog_path"] = None
    config["env_config"]["catalog"]["num_items"] = 13
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"the catalog changed since training") as info:
        evaluate_checkpoint(run, steps=4)
    assert len(str(info.value)) < 300
