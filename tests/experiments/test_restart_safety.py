"""An experiment can never delete what driftrec did not create (issue 18, item 1).

``--name`` is one plain folder name inside ``--out-dir``; ``--restart`` deletes only the entries
the experiment directory's manifest lists (run directories, ``experiment.json``, the report and
its figures), never a user's files that share the directory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from driftrec.experiments.guard import (
    MANIFEST_NAME,
    clear_recorded,
    record_outputs,
    recorded_outputs,
    remove_recorded,
)

CLI = Callable[..., tuple[int, str, str]]
GRID = (
    "run",
    "--scenarios",
    "Stationary",
    "--agents",
    "random",
    "--seeds",
    "0",
    "--steps",
    "16",
    "--log-every",
    "8",
    "--num-envs",
    "2",
    "--no-progress",
)


@pytest.mark.parametrize("name", ["..", ".", "a\nb", "../x", ".hidden"])
def test_names_that_leave_the_output_directory_are_refused(
    run_cli: CLI, tmp_path: Path, name: str
) -> None:
    """The issue's reproduction: `--name ..` (or `.`, a newline, ...) with --restart is refused
    before anything is written, and the user's file next to the output directory survives."""
    sandbox = tmp_path / "sb"
    (sandbox / "runs").mkdir(parents=True)
    (sandbox / "photo.png").write_text("precious")
    code, _, err = run_cli(*GRID, "--out-dir", str(sandbox / "runs"), "--name", name, "--restart")
    assert code == 2
    assert "'name' must be a folder name of 1-128 letters, digits and . _ - + = @ , that " in err
    assert f"(got {name!r})" in err
    assert (sandbox / "photo.png").read_text() == "precious"
    assert sorted(p.name for p in sandbox.iterdir()) == ["photo.png", "runs"]
    assert list((sandbox / "runs").iterdir()) == []


def test_restart_keeps_the_users_files_in_the_experiment_directory(
    run_cli: CLI, tmp_path: Path
) -> None:
    """A user's PNG, a folder named like a run and a text file in the experiment directory
    outlive `--restart`; driftrec's own runs, report and figures are redone."""
    exp = tmp_path / "runs" / "photos"
    exp.mkdir(parents=True)
    (exp / "holiday.png").write_text("precious")
    (exp / "notes__a__b").mkdir()
    (exp / "notes__a__b" / "x.txt").write_text("mine")
    args = (*GRID, "--out-dir", str(tmp_path / "runs"), "--name", "photos", "--report")
    assert run_cli(*args)[0] == 0
    ours = set(recorded_outputs(exp) or [])
    assert {"Stationary__random__0", "experiment.json", "report.md"} <= ours
    assert any(n.endswith(".png") for n in ours)
    assert not ours & {"holiday.png", "notes__a__b"}
    marker = exp / "Stationary__random__0" / "stale.txt"
    marker.write_text("from the first run")
    assert run_cli(*args, "--restart")[0] == 0
    assert not marker.exists()  # the run directory was deleted and redone
    assert (exp / "Stationary__random__0" / "done.json").is_file()
    assert (exp / "holiday.png").read_text() == "precious"
    assert (exp / "notes__a__b" / "x.txt").read_text() == "mine"


def test_clear_recorded_deletes_only_listed_entries(tmp_path: Path) -> None:
    """Entries are deleted only when listed; links are removed, never followed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "run__a__0").mkdir()
    (exp / "run__a__0" / "f").write_text("x")
    (exp / "fig.png").write_text("x")
    (exp / "link").symlink_to(outside, target_is_directory=True)
    (exp / "user.png").write_text("user")
    record_outputs(exp, ["run__a__0", "fig.png", "link", "gone.png"])
    assert clear_recorded(exp) == ["run__a__0", "fig.png", "link"]
    assert sorted(p.name for p in exp.iterdir()) == [MANIFEST_NAME, "user.png"]
    assert (outside / "keep.txt").read_text() == "keep"
    assert recorded_outputs(exp) == []


def test_manifest_names_must_stay_inside(tmp_path: Path) -> None:
    """A manifest cannot list a path outside its directory: recording one and reading a
    planted one both fail with the file named."""
    with pytest.raises(ValueError, match=r"^output name '\.\.' is not a plain entry name"):
        record_outputs(tmp_path, [".."])
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"outputs": ["../photo.png"]}))
    msg = (
        f"{tmp_path / MANIFEST_NAME} is not a driftrec manifest (expected "
        '{"outputs": [entry names]}); delete the experiment\'s files yourself or pick another '
        "--name"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        clear_recorded(tmp_path)


def test_legacy_experiment_without_manifest(tmp_path: Path) -> None:
    """An experiment made before manifests: only recognisable run directories, experiment.json
    and report.md go; a directory that is no driftrec experiment is left alone entirely."""
    exp = tmp_path / "old"
    run = exp / "Stationary__random__0"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"env_config": {}, "agent": "random", "seed": 0}))
    (exp / "Other__x__1").mkdir()  # named like a run, but no run config: the user's
    (exp / "experiment.json").write_text(json.dumps({"scenarios": [], "agents": [], "seeds": []}))
    (exp / "report.md").write_text("old report")
    (exp / "pic.png").write_text("user")
    assert clear_recorded(exp) == ["experiment.json", "report.md", "Stationary__random__0"]
    assert sorted(p.name for p in exp.iterdir()) == ["Other__x__1", "pic.png"]
    plain = tmp_path / "plain"
    (plain / "a__b__c").mkdir(parents=True)
    assert clear_recorded(plain) == []
    assert (plain / "a__b__c").is_dir()


def test_remove_recorded_refuses_a_foreign_directory(tmp_path: Path) -> None:
    """A non-empty directory at a run's path that driftrec did not make is refused, not deleted."""
    foreign = tmp_path / "Stationary__random__0"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("mine")
    msg = (
        f"{foreign} exists and was not written by driftrec; move it away or pick another --name "
        "(driftrec deletes only what it created)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        remove_recorded(foreign)
    assert (foreign / "thesis.tex").read_text() == "mine"
    record_outputs(tmp_path, [foreign.name])
    remove_recorded(foreign)
    assert not foreign.exists()
