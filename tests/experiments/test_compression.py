"""Compressing a run's policy: ``driftrec compress``, ``evaluate --policy`` and the comparison."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from driftrec.agents.compress import load_compressed
from driftrec.experiments import cli
from driftrec.experiments.compression import compare_run, compress_run, evaluate_compressed
from driftrec.experiments.config import ExperimentConfig
from driftrec.experiments.evaluate import evaluate_checkpoint
from driftrec.experiments.runner import run_one


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny attention-ppo run (32 items, 4 users, 16 steps) with its checkpoint; the text
    cache stays set for the module (loading the checkpoint rebuilds the item table from it)."""
    root = tmp_path_factory.mktemp("compress")
    cfg = ExperimentConfig(
        name="t",
        scenarios=("Stationary",),
        agents=("attention-ppo",),
        seeds=(0,),
        num_envs=4,
        steps=16,
        log_every=8,
        out_dir=str(root),
        env_overrides={"num_items": 32},
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRIFTREC_CACHE", str(tmp_path_factory.getbasetemp() / "driftrec-cache"))
        yield run_one(cfg, "Stationary", "attention-ppo", 0, progress=False)


def test_fold_is_the_full_policy_end_to_end(trained: Path) -> None:
    """Folded, the policy earns exactly the full policy's reward on the same users and noise,
    and its greedy actions agree everywhere: the evaluation path adds no difference."""
    result = compare_run(trained, methods=("fold", "int8"), steps=8, batch_sizes=(4,))
    fold = result["fold"]
    assert fold["normalized_reward"] == result["full"]["normalized_reward"]
    assert fold["greedy_normalized_reward"] == result["full"]["greedy_normalized_reward"]
    assert fold["reward_ratio"] == 1.0 and fold["greedy_agreement"] == 1.0
    for key in ("forward_ms_4", "speedup_4", "greedy_agreement", "reward_ratio"):
        assert result["int8"][key] > 0
    assert result["full"]["speedup_4"] == 1.0


def test_full_policy_matches_sb3_evaluation(trained: Path) -> None:
    """Greedy acting through ScoreActor gives evaluate_checkpoint's figures (the SB3 path):
    the same users (SB3's load re-seeds the env with the training seed; evaluate undoes it)."""
    sb3 = evaluate_checkpoint(trained, steps=8, deterministic=True)
    ours = compare_run(trained, methods=("fold",), steps=8, batch_sizes=(4,))
    assert ours["full"]["greedy_normalized_reward"] == sb3["normalized_reward"]


def test_compress_then_evaluate_with_the_attention_figure(trained: Path, tmp_path: Path) -> None:
    """compress_run writes the policy; evaluate_compressed acts with it and draws the figure."""
    path, facts = compress_run(trained, method="int8", out=tmp_path / "p.pt")
    assert path.is_file() and facts["bytes"] == path.stat().st_size and facts["method"] == "int8"
    meta = load_compressed(path)[1]["metadata"]  # how the policy masks history items, for acting
    assert (meta["mask_consumed"], meta["mask_rejected"]) == (False, 0)
    png = tmp_path / "attention.png"
    result = evaluate_compressed(trained, path, steps=8, attention_png=png)
    assert result["method"] == "int8" and result["user_steps"] == 32
    assert 0.0 <= result["normalized_reward"] <= 1.0 + 1e-9
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["attention_figure"] == str(png)


def test_cli_compress_and_evaluate(trained: Path, tmp_path: Path, run_cli: Any) -> None:
    """``compress RUN --out F`` (fold, the default) says where the file went and its size
    against ``model.zip``; then ``evaluate RUN --policy F``."""
    out_file = tmp_path / "fold.pt"
    code, out, err = run_cli("compress", str(trained), "--out", str(out_file))
    assert code == 0, err
    assert out_file.is_file() and "--policy" in out
    size, full = out_file.stat().st_size, (trained / "model.zip").stat().st_size
    assert (
        f"wrote {out_file} ({size / 1e6:.2f} MB, model.zip {full / 1e6:.2f} MB "
        f"({size / full:.0%}))" in out
    )
    code, out, err = run_cli("evaluate", str(trained), "--policy", str(out_file), "--steps", "8")
    assert code == 0, err
    values = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert values["method"] == "fold" and values["user_steps"] == "32"
    float(values["normalized_reward"])


def test_cli_errors(trained: Path, tmp_path: Path, run_cli: Any) -> None:
    """Bad input: an unknown method, a missing policy, a figure without a policy, no run, and
    distillation steps without distillation or too few of them."""
    code, _, err = run_cli("compress", str(trained), "--method", "zip")
    assert code == 2 and "invalid choice: 'zip'" in err
    missing = tmp_path / "none.pt"
    code, _, err = run_cli("evaluate", str(trained), "--policy", str(missing))
    assert code == 2 and f"{missing} does not exist" in err
    code, _, err = run_cli("evaluate", str(trained), "--attention-png", "a.png")
    assert code == 2 and "'--attention-png' needs '--policy'" in err
    code, _, err = run_cli("compress", str(tmp_path / "nowhere"))
    assert code == 2 and "a run directory?" in err
    code, _, err = run_cli("compress", str(trained), "--distil-steps", "8")
    assert code == 2 and "'distil_steps' applies to method 'distil' only (got 8" in err
    code, _, err = run_cli("compress", str(trained), "--method", "distil", "--distil-steps", "0")
    assert code == 2 and "'distil_steps' must be an integer >= 4 (got 0)" in err


def test_policy_from_another_catalog_is_refused(trained: Path, tmp_path: Path) -> None:
    """A policy compressed from another catalog's model is refused, naming both fingerprints."""
    path, _ = compress_run(trained, method="fold", out=tmp_path / "p.pt")
    payload = torch.load(path, weights_only=True)
    payload["metadata"]["catalog_fingerprint"] = "0" * 64
    torch.save(payload, path)
    msg = f"{path} was compressed from a model of another catalog (fingerprint 000000000000"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}"):
        evaluate_compressed(trained, path, steps=2)


def test_cli_choices_match_the_module() -> None:
    """The CLI's method and scope choices (kept without importing torch) are the module's."""
    from driftrec.agents.compress import COMPRESS_METHODS, INT8_SCOPES

    assert cli.COMPRESS_METHODS == COMPRESS_METHODS and cli.INT8_SCOPES == INT8_SCOPES


def test_recorded_attention_restarts_the_world(trained: Path, tmp_path: Path) -> None:
    """record_attention restarts the clock (even after other steps on the env) and records the
    compressed model's attention of tracked user 0 every log_every steps, rows summing to <= 1."""
    from driftrec.agents.compress import ScoreActor, load_compressed
    from driftrec.experiments.compression import record_attention
    from driftrec.experiments.evaluate import measure_policy, open_run

    path, _ = compress_run(trained, method="int8", out=tmp_path / "p.pt")
    actor = ScoreActor(load_compressed(path)[0])
    _, env = open_run(trained, seed=3)
    measure_policy(actor, env, 8)  # the clock runs on
    arrays = record_attention(env, actor, 8, seed=3, log_every=4)
    assert arrays["steps"].tolist() == [4, 8]
    w = arrays["weights"]
    assert w.shape == (2, actor.module.config.history_len)
    assert (w >= 0).all() and (w.sum(axis=1) <= 1 + 1e-6).all() and (w.sum(axis=1) > 0).all()
    with pytest.raises(ValueError, match=re.escape("'steps' (2) must reach at least one window")):
        record_attention(env, actor, 2, seed=3, log_every=4)


def test_compress_run_distils_a_student(trained: Path, tmp_path: Path) -> None:
    """method 'distil' fits the student on teacher rollouts (every 4th step) and saves it."""
    from driftrec.agents.compress import DistilConfig, load_compressed

    student = DistilConfig(embed_dim=4, num_heads=1, ff_dim=4, match_dim=4, epochs=2)
    path, facts = compress_run(
        trained, method="distil", out=tmp_path / "s.pt", distil=student, distil_steps=8
    )
    assert facts["distil_observations"] == 2 * 4  # steps 0 and 4, four users
    module, info = load_compressed(path)
    assert info["method"] == "distil" and module.quantized
    assert module.config.embed_dim == 4 and module.match_dim == 4
    assert info["metadata"]["distil_observations"] == 8
