"""Every user error of the ``driftrec`` command: one line naming the input, exit code 2."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

TINY = ["--steps", "16", "--num-envs", "4", "--log-every", "8", "--no-progress"]
TINY += ["--env", '{"num_items": 32}']


def _one_error(err: str, command: str, message: str) -> None:
    """Exactly one line; an expected refusal does not advertise DRIFTREC_DEBUG."""
    assert err == f"driftrec {command}: error: {message}\n"


def test_out_dir_that_is_a_file(tmp_path: Path, run_cli: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for command, extra in (("run", ["--agents", "random", "--seeds", "0"]), ("train", [])):
        code, _, err = run_cli(
            command, *TINY, *extra, "--agent" if command == "train" else "--name",
            "random" if command == "train" else "n", "--out-dir", str(blocker),
        )  # fmt: skip
        name = "n" if command == "run" else "train"
        assert code == 2
        expected = (
            f"'out_dir' {str(blocker)!r} cannot hold the results (Not a directory: "
            f"{blocker / name}); expected a writable directory"
        )
        _one_error(err, command, expected)


_KW = "'agent_kwargs['id-ppo']"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_steps": 0}, f"{_KW}['n_steps']' must be an integer >= 1 (got 0)"),
        ({"n_epochs": 0}, f"{_KW}['n_epochs']' must be an integer >= 1 (got 0)"),
        ({"batch_size": 1}, f"{_KW}['batch_size']' must be an integer >= 2 (got 1)"),
        (
            {"learning_rate": "abc"},
            f"{_KW}['learning_rate']' must be a number (got 'abc' of type str)",
        ),
        ({"learning_rate": 0}, f"{_KW}['learning_rate']' must be a finite number > 0.0 (got 0)"),
    ],
    ids=["n_steps", "n_epochs", "batch_size", "lr_str", "lr_zero"],
)
def test_bad_sb3_kwargs(
    tmp_path: Path, run_cli: Any, kwargs: dict[str, object], message: str
) -> None:
    out = tmp_path / "out"
    as_json = json.dumps({"id-ppo": kwargs})
    code, _, err = run_cli(
        "train",
        *TINY,
        "--agent",
        "id-ppo",
        "--agent-kwargs",
        as_json,
        "--out-dir",
        str(out),
    )
    assert code == 2
    _one_error(err, "train", message)
    assert not out.exists()


def test_kwargs_sb3_rejects_late_are_one_line(tmp_path: Path, run_cli: Any) -> None:
    """What SB3 itself rejects (an unknown keyword) is one line too, and no run dir is left."""
    out = tmp_path / "out"
    code, _, err = run_cli(
        "train", *TINY, "--agent", "id-ppo", "--agent-kwargs", '{"id-ppo": {"bogus": 1}}',
        "--out-dir", str(out),
    )  # fmt: skip
    assert code == 2
    _one_error(
        err,
        "train",
        "agent 'id-ppo' rejected its settings (agent_kwargs {'bogus': 1}): "
        "PPO.__init__() got an unexpected keyword argument 'bogus'",
    )
    assert not (out / "train" / "AbruptShift__id-ppo__0").exists()


def test_settings_changed_and_restart(tmp_path: Path, run_cli: Any) -> None:
    base = ["run", *TINY, "--agents", "random", "--seeds", "0", "--out-dir", str(tmp_path)]
    assert run_cli(*base, "--name", "e")[0] == 0
    code, out, _ = run_cli(*base, "--name", "e")
    # the random run and the greedy oracle's reference run
    assert code == 0 and "2 of 2 runs already done, skipped" in out
    code, _, err = run_cli(*base, "--name", "e", "--steps", "24")
    run_dir = tmp_path / "e" / "AbruptShift__random__0"
    assert code == 2
    _one_error(
        err,
        "run",
        f"{run_dir} was finished with other settings (steps: 16 -> 24); to start over run with "
        "--restart (restart=True), or give this experiment another --name",
    )
    code, out, err = run_cli(*base, "--name", "e", "--steps", "24", "--restart")
    assert code == 0, err
    assert "already done" not in out


def test_frozen_past_the_last_step(tmp_path: Path, run_cli: Any) -> None:
    """AbruptShift's scheduled shift (step 5,000) is after a 16-step run: refused up front."""
    code, _, err = run_cli(
        "run", *TINY, "--agents", "random-frozen", "--out-dir", str(tmp_path / "o")
    )
    assert code == 2
    _one_error(
        err,
        "run",
        "'-frozen' agents would stop learning at step 5000 in 'AbruptShift', after the last step "
        "(16); expected 'frozen_at' or 'shift_at' <= 'steps'",
    )


def test_cuda_without_cuda(tmp_path: Path, run_cli: Any) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, _, err = run_cli("train", *TINY, "--device", "cuda", "--out-dir", str(tmp_path))
    assert code == 2
    _one_error(err, "train", "'device' is 'cuda' but CUDA is not available; expected 'cpu'")
    code, _, err = run_cli("train", *TINY, "--device", "gpu9", "--out-dir", str(tmp_path))
    assert code == 2
    _one_error(
        err, "train", "'device' must be a torch device name such as 'cpu' or 'cuda:0' (got 'gpu9')"
    )


def test_error_text_is_one_line() -> None:
    from driftrec.experiments.cli import error_text

    assert error_text(OSError(28, "No space left on device", "runs/x/metrics.csv")) == (
        "runs/x/metrics.csv: No space left on device"
    )
    assert error_text(RuntimeError("a\n  b")) == "a b"
    assert re.fullmatch("AssertionError", error_text(AssertionError()))


def test_world_problems_are_reported_before_any_run(tmp_path: Path, run_cli: Any) -> None:
    """A dict observation, a directory as catalog and a slate larger than a catalog file all
    exit 2 before the experiment directory exists."""
    folder = tmp_path / "items.csv"
    folder.mkdir()
    two = tmp_path / "two.csv"
    two.write_text("id,title,description,tags\na,x,d,jazz\nb,y,d,rock\n")
    cases = [
        (
            {"observation": "dict"},
            "'observation' must be 'flat' in experiments (the recorder and the agents read the "
            "flat vector) (got 'dict')",
        ),
        (
            {"catalog_path": str(folder)},
            f"{folder}: is a directory, expected a .csv or .jsonl file",
        ),
        (
            {"catalog_path": str(two), "slate_size": 3},
            "'slate_size' must be <= the number of items (2) (got 3)",
        ),
    ]
    out = tmp_path / "out"
    for env, message in cases:
        code, _, err = run_cli("run", "--steps", "16", "--log-every", "8", "--agents", "random",
            "--no-progress", "--env", json.dumps(env), "--out-dir", str(out),
        )  # fmt: skip
        assert code == 2
        _one_error(err, "run", message)
        assert not out.exists()


def test_config_file_problems_name_the_file(tmp_path: Path, run_cli: Any) -> None:
    """A config file that is not UTF-8, or whose out_dir is a number, is one line naming the
    file and the field (a bare codec message, or Path's TypeError, before)."""
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"name": "caf\xe9"}')
    code, _, err = run_cli("run", "--config", str(latin))
    assert code == 2
    _one_error(err, "run", f"{latin}: not UTF-8 text (byte 13: invalid continuation byte); "
               "expected a JSON file of experiment settings")  # fmt: skip
    numeric = tmp_path / "numeric.json"
    numeric.write_text('{"out_dir": 5, "agents": ["random"]}')
    code, _, err = run_cli("run", "--config", str(numeric), *TINY)
    assert code == 2
    _one_error(err, "run", f"{numeric}: 'out_dir' must be a directory path, a string (got 5)")
    fine = tmp_path / "fine.json"
    fine.write_text('{"agents": ["random"], "steps": 64}')
    code, _, err = run_cli("run", "--config", str(fine), *TINY, "--steps", "0")
    _one_error(err, "run", "'steps' must be an integer >= 1 (got 0)")  # a flag's: no file


def test_a_full_disk_names_the_file(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No space left while writing: the error names the file being written ('a file' before)."""
    import errno
    import os

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    code, _, err = run_cli("run", *TINY, "--agents", "random", "--seeds", "0", "--name", "n",
                           "--out-dir", str(tmp_path))  # fmt: skip
    assert code == 2
    assert re.fullmatch(
        rf"driftrec run: error: {re.escape(str(tmp_path / 'n'))}/\S+: No space left on device\n",
        err,
    ), err


def test_report_names_a_damaged_run_file(tmp_path: Path, run_cli: Any) -> None:
    """report on a run whose done.json or metrics.csv is damaged: one line naming the file."""
    code, _, err = run_cli("run", *TINY, "--agents", "random", "--seeds", "0", "--name", "n",
                           "--out-dir", str(tmp_path))  # fmt: skip
    assert code == 0, err
    exp = tmp_path / "n"
    (run,) = [d for d in exp.iterdir() if d.name.endswith("__random__0")]
    done = (run / "done.json").read_text()
    (run / "done.json").write_text(done[: len(done) // 2])
    code, _, err = run_cli("report", str(exp))
    assert code == 2
    assert err.startswith(f"driftrec report: error: {run / 'done.json'}: not valid JSON (")
    assert err.endswith("expected the file as driftrec wrote it (run the grid again: a damaged "
                        "run is done again)\n") and err.count("\n") == 1  # fmt: skip
    (run / "done.json").write_text(done)
    metrics = (run / "metrics.csv").read_text()
    (run / "metrics.csv").write_text(metrics[:-10])
    code, _, err = run_cli("report", str(exp))
    assert code == 2
    assert re.fullmatch(rf"driftrec report: error: {re.escape(str(run / 'metrics.csv'))}:\d+: "
                        r"\d+ fields, the header has \d+\n", err), err  # fmt: skip
