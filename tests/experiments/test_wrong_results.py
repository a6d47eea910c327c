"""No silent wrong result: what was accepted before and gave a result that was not what it said.

* ``compress`` / ``evaluate`` of a run that did not finish (no ``done.json``);
* ``compress --out`` over an unrelated file;
* a ``num_items`` override next to ``catalog_path``: ignored by the catalog file, yet recorded;
* a finished run whose files changed since (a truncated ``metrics.csv``) reused on resume.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from driftrec.envs.config import EnvConfig
from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.runner import is_done, run_grid


def test_unfinished_run_is_refused_by_evaluate_and_compress(
    trained: Path, tmp_path: Path, run_cli: Any
) -> None:
    """Without done.json (interrupted, failed, still running) neither command uses the run."""
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    (run / "done.json").unlink()
    msg = (
        f"{run} has no done.json: the run did not finish (interrupted, failed or still "
        "running); expected a finished run (run its grid again to finish it)"
    )
    for argv in (["evaluate", str(run), "--steps", "4"], ["compress", str(run)]):
        code, out, err = run_cli(*argv)
        assert (code, out) == (2, ""), err
        assert err == f"driftrec {argv[0]}: error: {msg}\n"
    assert not (run / "compressed-int8.pt").exists()


def test_compress_out_never_overwrites_an_unrelated_file(
    trained: Path, tmp_path: Path, run_cli: Any
) -> None:
    """An existing --out that is not a policy file compress wrote is refused before any work
    (it was silently replaced); --overwrite replaces it; a compressed policy is replaced."""
    precious = tmp_path / "thesis.pdf"
    precious.write_bytes(b"%PDF-1.7 my thesis")
    code, _, err = run_cli("compress", str(trained), "--method", "fold", "--out", str(precious))
    assert code == 2
    assert err == (
        f"driftrec compress: error: 'out' {str(precious)!r} exists and is not a policy 'driftrec "
        "compress' wrote; pass --overwrite (overwrite=True) to replace it, or choose another "
        "--out\n"
    )
    assert precious.read_bytes() == b"%PDF-1.7 my thesis"
    out = tmp_path / "policy.pt"
    assert run_cli("compress", str(trained), "--method", "fold", "--out", str(out))[0] == 0
    first = out.read_bytes()
    assert run_cli("compress", str(trained), "--method", "fold", "--out", str(out))[0] == 0
    assert out.read_bytes() == first  # its own file is replaced (here by the same policy)
    code, _, _ = run_cli(
        "compress", str(trained), "--method", "fold", "--out", str(precious), "--overwrite"
    )
    assert code == 0 and precious.read_bytes() == first
    code, _, err = run_cli("compress", str(trained), "--out", str(tmp_path))
    assert code == 2 and "is a directory; expected a file name" in err


def test_num_items_next_to_a_catalog_file_is_refused(tmp_path: Path) -> None:
    """The catalog file decides the items: a num_items (or num_topics) override with it was
    ignored but written to config.json as if it applied."""
    items = tmp_path / "items.csv"
    items.write_text("id,title,description,tags\na,A,x,jazz\nb,B,y,rock\nc,C,z,folk\n")
    msg = (
        f"'num_items' cannot be set with 'catalog_path' {str(items)!r} (got 500): the catalog "
        "file decides the items and their topics; expected no such override (edit the file "
        "instead)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        EnvConfig().with_overrides(catalog_path=str(items), num_items=500)
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        ExperimentConfig(
            agents=("random",), out_dir=str(tmp_path),
            env_overrides={"catalog_path": str(items), "num_items": 500},
        )  # fmt: skip
    with pytest.raises(ValueError, match="'catalog.num_topics' cannot be set with 'catalog_path'"):
        EnvConfig(catalog_path=str(items)).with_overrides(**{"catalog.num_topics": 3})
    # what a catalog file leaves to the config can still be set
    cfg = EnvConfig(catalog_path=str(items)).with_overrides(catalog_seed=3, new_item_fraction=0.5)
    assert (cfg.catalog.seed, cfg.catalog.new_item_fraction) == (3, 0.5)


SAME_SEED_SAME_BYTES = ("config.json", "events.json", "metrics.csv", "topics.npz")
"""A run's files that a redo with the same seed writes byte for byte (TensorBoard's event file,
when TensorBoard is installed, carries a time stamp)."""


def _grid(tmp_path: Path) -> ExperimentConfig:
    return ExperimentConfig(
        name="g", agents=("random", "popularity"), seeds=(0,), num_envs=4, steps=32,
        log_every=8, env_overrides={"num_items": 32}, out_dir=str(tmp_path),
        reference_agent=None,
    )  # fmt: skip


def test_a_damaged_finished_run_is_done_again_on_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """done.json records every file's sha256; a resume finds a truncated metrics.csv, a lost
    topics.npz or an unreadable done.json and runs that run again, saying so (it printed
    '2 of 2 runs already done' and only 'report' failed later); intact runs are kept."""
    cfg = _grid(tmp_path)
    first = run_grid(cfg, progress=False)
    originals = {d: {name: (d / name).read_bytes() for name in SAME_SEED_SAME_BYTES} for d in first}
    done = json.loads((first[0] / "done.json").read_text())
    every_file = {
        p.relative_to(first[0]).as_posix()
        for p in first[0].rglob("*")
        if p.is_file() and p.name != "done.json"
    }
    assert set(done["files"]) == every_file and set(SAME_SEED_SAME_BYTES) <= every_file
    capsys.readouterr()
    random_dir, popularity_dir = first
    metrics = random_dir / "metrics.csv"
    metrics.write_bytes(metrics.read_bytes()[:-40])  # cut mid-row, as a full disk might
    kept = (popularity_dir / "done.json").stat().st_mtime_ns
    run_grid(cfg, progress=False)
    out = capsys.readouterr().out
    damaged = f"damaged AbruptShift/random/0: {metrics} differs from what its done.json recorded"
    assert f"{damaged}; running it again\n" in out
    assert "1 of 2 runs already done, skipped" in out
    assert metrics.read_bytes() == originals[random_dir]["metrics.csv"]  # same seed, same run
    assert (popularity_dir / "done.json").stat().st_mtime_ns == kept

    (popularity_dir / "topics.npz").unlink()
    (random_dir / "done.json").write_text('{"fingerprint": ')
    run_grid(cfg, progress=False)
    out = capsys.readouterr().out
    assert f"damaged AbruptShift/popularity/0: {popularity_dir / 'topics.npz'} is missing" in out
    assert f"damaged AbruptShift/random/0: {random_dir / 'done.json'} cannot be read" in out
    assert all(is_done(d) for d in first)
    for d in first:
        assert {name: (d / name).read_bytes() for name in SAME_SEED_SAME_BYTES} == originals[d]
