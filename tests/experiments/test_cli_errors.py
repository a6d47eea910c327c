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
