"""Tests for driftrec.agents.lora and the adapter path of the text encoder (a tiny random BERT)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"  # no model hub here: fail in seconds, never retry

import numpy as np
import pytest

pytest.importorskip("peft")
import torch

from driftrec.agents import lora
from driftrec.agents import text_encoder as te
from driftrec.agents.text_encoder import TextEncoder, TextEncoderConfig, encode_catalog
from driftrec.envs.config import EnvConfig
from driftrec.envs.core import cached_catalog

torch.set_num_threads(1)

ENV = EnvConfig().with_overrides(num_items=40, num_topics=4, history_len=8)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, save_tiny_bert: Any) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert", 0, max_position_embeddings=512)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return cached_catalog(ENV).texts()


@pytest.fixture(scope="module")
def click_log() -> lora.ClickLog:
    return lora.collect_click_log(ENV, agent="random", num_envs=8, steps=40, seed=3)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(te.CACHE_ENV_VAR, str(tmp_path / "cache"))


def _cfg(model: Path, **kw: object) -> TextEncoderConfig:
    return TextEncoderConfig(model=str(model), show_progress=False, max_length=32, **kw)  # type: ignore[arg-type]


SMALL = lora.FinetuneSettings(
    steps=12, batch_size=8, learning_rate=1e-3, lora=lora.LoraSettings(rank=4, alpha=8.0)
)


@pytest.fixture(scope="module")
def trained(tiny: Path, texts: list[str], click_log: lora.ClickLog) -> tuple[TextEncoder, Any]:
    enc = TextEncoder(_cfg(tiny))
    result = lora.finetune_encoder(enc, texts, click_log, SMALL)
    return enc, result


@pytest.fixture(scope="module")
def adapter_dir(
    trained: tuple[TextEncoder, Any], tiny: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    enc, result = trained
    return lora.save_adapter(
        enc.model,
        tmp_path_factory.mktemp("adapters") / "a1",
        base_model=str(tiny),
        base_identity=te.model_identity(str(tiny)),
        settings=SMALL.lora,
        extra={"training": result.to_dict()},
    )


def test_targets_exclude_pooler_and_count_params(tiny: Path) -> None:
    enc = TextEncoder(_cfg(tiny))
    names = lora.lora_target_modules(enc.model, ("query", "value", "dense"))
    assert names and not any(n.startswith("pooler") for n in names)
    assert any(n.endswith("attention.output.dense") for n in names)
    wrapped = lora.add_lora(enc.model, lora.LoraSettings(rank=4))
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    assert trainable == 2 * 2 * 4 * (32 + 32)  # layers x targets x rank x (in + out)
    assert not any("pooler" in n and "lora_" in n for n, _ in wrapped.named_parameters())


def test_bad_settings_clear_errors(tiny: Path) -> None:
    with pytest.raises(ValueError, match="'rank' must be"):
        lora.LoraSettings(rank=0)
    with pytest.raises(ValueError, match="'targets'"):
        lora.LoraSettings(targets="query")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'method' must be 'lora' or 'full'"):
        lora.FinetuneSettings(method="qlora")
    enc = TextEncoder(_cfg(tiny))
    with pytest.raises(ValueError, match=r"'targets' \['qkv'\] match no Linear.*'query'"):
        lora.add_lora(enc.model, lora.LoraSettings(targets=("qkv",)))


def test_fresh_adapter_is_exact_noop(tiny: Path, texts: list[str]) -> None:
    enc = TextEncoder(_cfg(tiny))
    base = enc.encode(texts[:10])
    enc.model = lora.add_lora(enc.model, lora.LoraSettings(rank=4))
    np.testing.assert_array_equal(enc.encode(texts[:10]), base)


def test_training_moves_embeddings_and_disable_adapter_restores_base(
    tiny: Path, texts: list[str], trained: tuple[TextEncoder, Any]
) -> None:
    enc, result = trained
    base = TextEncoder(_cfg(tiny)).encode(texts)
    adapted = enc.encode(texts)
    assert np.abs(adapted - base).max() > 1e-4
    with enc.model.disable_adapter():
        np.testing.assert_array_equal(enc.encode(texts), base)  # exactly the base model
    assert result.steps == 12 and len(result.losses) == 12 and np.isfinite(result.losses).all()
    assert result.trainable_params == 1024 and result.train_seconds > 0
    assert enc.identity != te.model_identity(str(tiny))  # an in-memory fine-tune is not the base


def test_training_is_deterministic(
    tiny: Path, texts: list[str], click_log: lora.ClickLog, trained: tuple[TextEncoder, Any]
) -> None:
    enc = TextEncoder(_cfg(tiny))
    state = torch.get_rng_state()
    lora.finetune_encoder(enc, texts, click_log, SMALL)
    assert torch.equal(state, torch.get_rng_state())  # the caller's torch RNG is untouched
    np.testing.assert_array_equal(enc.encode(texts), trained[0].encode(texts))


def test_save_load_roundtrip_and_cache_keys_on_adapter(
    tiny: Path, texts: list[str], trained: tuple[TextEncoder, Any], adapter_dir: Path
) -> None:
    files = sorted(p.name for p in adapter_dir.iterdir())
    assert files == sorted(["adapter_config.json", lora.MANIFEST_NAME, lora.WEIGHTS_NAME])
    manifest = json.loads((adapter_dir / lora.MANIFEST_NAME).read_text())
    assert manifest["lora"] == {"rank": 4, "alpha": 8.0, "targets": ["query", "value"]}
    assert manifest["trainable_params"] == 1024 and manifest["training"]["steps"] == 12

    adapted_cfg = _cfg(tiny, adapter=str(adapter_dir))
    np.testing.assert_array_equal(TextEncoder(adapted_cfg).encode(texts), trained[0].encode(texts))
    base = encode_catalog(texts, _cfg(tiny))
    adapted = encode_catalog(texts, adapted_cfg)
    assert te.catalog_cache_path(texts, adapted_cfg) != te.catalog_cache_path(texts, _cfg(tiny))
    assert np.abs(adapted - base).max() > 1e-4
    assert te.encoder_identity(adapted_cfg).startswith(te.model_identity(str(tiny)) + "+adapter#")
    # both come back from the cache now, each its own
    np.testing.assert_array_equal(encode_catalog(texts, _cfg(tiny)), base)
    np.testing.assert_array_equal(encode_catalog(texts, adapted_cfg), adapted)


def test_changed_adapter_weights_change_the_key(
    tiny: Path, texts: list[str], adapter_dir: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file, save_file

    copy = tmp_path / "a2"
    copy.mkdir()
    for p in adapter_dir.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    assert lora.adapter_identity(copy) == lora.adapter_identity(adapter_dir)
    weights = load_file(str(copy / lora.WEIGHTS_NAME))
    name = next(n for n in sorted(weights) if "lora_B" in n)
    weights[name] = weights[name] + 0.5
    save_file(weights, str(copy / lora.WEIGHTS_NAME))
    with pytest.raises(ValueError, match="its sha256 differs from the one driftrec_adapter.json"):
        lora.adapter_identity(copy)  # changed behind the manifest's back: refused
    _record_weights_hash(copy)  # as a retrained adapter's manifest would
    assert lora.adapter_identity(copy) != lora.adapter_identity(adapter_dir)
    one = encode_catalog(texts, _cfg(tiny, adapter=str(adapter_dir)))
    two = encode_catalog(texts, _cfg(tiny, adapter=str(copy)))
    assert np.abs(one - two).max() > 1e-5


def _record_weights_hash(adapter: Path) -> None:
    import hashlib

    manifest = json.loads((adapter / lora.MANIFEST_NAME).read_text())
    data = (adapter / lora.WEIGHTS_NAME).read_bytes()
    manifest["weights_sha256"] = hashlib.sha256(data).hexdigest()
    (adapter / lora.MANIFEST_NAME).write_text(json.dumps(manifest))


def _copy(adapter: Path, to: Path) -> Path:
    to.mkdir()
    for p in adapter.iterdir():
        (to / p.name).write_bytes(p.read_bytes())
    return to


def _truncate(a: Path) -> None:
    data = (a / lora.WEIGHTS_NAME).read_bytes()
    (a / lora.WEIGHTS_NAME).write_bytes(data[: len(data) // 2])


def _flip_header(a: Path) -> None:
    data = bytearray((a / lora.WEIGHTS_NAME).read_bytes())
    data[12] ^= 0xFF  # inside the JSON header
    (a / lora.WEIGHTS_NAME).write_bytes(bytes(data))


def _flip_value(a: Path) -> None:
    data = bytearray((a / lora.WEIGHTS_NAME).read_bytes())
    data[-3] ^= 0x01  # a weight's low bits: still a finite number, but another adapter
    (a / lora.WEIGHTS_NAME).write_bytes(bytes(data))


def _empty(a: Path) -> None:
    (a / lora.WEIGHTS_NAME).write_bytes(b"")


def _inf(a: Path) -> None:
    from safetensors.torch import load_file, save_file

    weights = load_file(str(a / lora.WEIGHTS_NAME))
    name = sorted(weights)[0]
    weights[name][0] = float("inf")
    save_file(weights, str(a / lora.WEIGHTS_NAME))
    _record_weights_hash(a)  # the manifest agrees: the weights themselves are bad


def _broken_config(a: Path) -> None:
    (a / "adapter_config.json").write_text('{"peft_type": "LORA", ')


def _foreign_config(a: Path) -> None:
    (a / "adapter_config.json").write_text('{"peft_type": "PROMPT_TUNING"}')


_WEIGHTS_MSG = "expected the adapter as 'driftrec finetune' wrote it (train it again)"


@pytest.mark.parametrize(
    ("damage", "hashed", "pattern"),
    [
        (_truncate, True, r"adapter_model.safetensors: its sha256 differs from the one "),
        (_truncate, False, r"adapter_model.safetensors: not usable adapter weights \("),
        (_flip_header, False, r"adapter_model.safetensors: not usable adapter weights \("),
        (_flip_value, True, r"adapter_model.safetensors: its sha256 differs from the one "),
        (_empty, False, r"adapter_model.safetensors: not usable adapter weights \("),
        (_inf, True, r"adapter_model.safetensors: not usable adapter weights \(tensor '.*' has "
         r"non-finite values \(inf or nan\)\)"),
        (_broken_config, True, r"adapter_config.json: not valid JSON \("),
        (_foreign_config, True, r"adapter_config.json: 'peft_type' must be 'LORA' \(got "
         r"'PROMPT_TUNING'\)"),
    ],
    ids=["truncated", "truncated-unhashed", "flipped-header", "flipped-value", "empty", "inf",
         "config-not-json", "config-not-lora"],
)  # fmt: skip
def test_damaged_adapter_is_one_error_naming_the_file(
    tiny: Path,
    tmp_path: Path,
    adapter_dir: Path,
    run_cli: Any,
    damage: Any,
    hashed: bool,
    pattern: str,
) -> None:
    """A truncated, byte-flipped or empty weights file, a broken adapter_config.json or inf
    weights: one line naming the file (a SafetensorError traceback, a JSON error without the
    file, or 'agent rejected its settings (agent_kwargs {})' before), in Python and in the CLI,
    before any run starts."""
    bad = _copy(adapter_dir, tmp_path / "bad")
    if not hashed:  # adapters saved before the manifest recorded the weights' hash
        manifest = json.loads((bad / lora.MANIFEST_NAME).read_text())
        del manifest["weights_sha256"]
        (bad / lora.MANIFEST_NAME).write_text(json.dumps(manifest))
    damage(bad)
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        TextEncoder(_cfg(tiny, adapter=str(bad)))
    assert re.match(f"^{re.escape(str(bad))}/{pattern}", str(info.value)), str(info.value)
    code, _, err = run_cli(
        "run", "--agents", "history-similarity", "--seeds", "0", "--steps", "8", "--num-envs",
        "4", "--log-every", "4", "--env", CLI_ENV, "--text-model", str(tiny), "--text-adapter",
        str(bad), "--out-dir", str(tmp_path / "runs"), "--name", "n", "--no-progress",
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1, err
    assert re.match(f"^driftrec run: error: {re.escape(str(bad))}/{pattern}", err), err
    assert "agent_kwargs" not in err and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)]
)
def test_saved_adapter_is_portable_and_follows_the_umask(
    trained: tuple[TextEncoder, Any],
    tiny: Path,
    tmp_path: Path,
    umask: int,
    file_mode: int,
    dir_mode: int,
) -> None:
    """Every file of a saved adapter has the mode ``open`` would give (peft's weights file was
    0600 whatever the umask, the others 0644), and its configs name the base model portably
    (peft wrote the absolute path of the local model)."""
    import stat

    old = os.umask(umask)
    try:
        out = lora.save_adapter(
            trained[0].model,
            tmp_path / "a",
            base_model=str(tiny),
            base_identity=te.model_identity(str(tiny)),
            settings=SMALL.lora,
        )
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes == dict.fromkeys(
        [lora.WEIGHTS_NAME, lora.MANIFEST_NAME, "adapter_config.json"], file_mode
    )
    assert stat.S_IMODE(out.stat().st_mode) == dir_mode
    peft_config = json.loads((out / "adapter_config.json").read_text())
    assert peft_config["base_model_name_or_path"] == tiny.name
    assert lora.read_manifest(out)["base_model"] == tiny.name
    assert str(tmp_path) not in (out / "adapter_config.json").read_text()
    assert lora.portable_model_reference(te.default_model_path()) == lora.DEFAULT_BASE_REFERENCE
    assert lora.portable_model_reference("org/some-model") == "org/some-model"


def test_adapter_errors(tiny: Path, tmp_path: Path, adapter_dir: Path, save_tiny_bert: Any) -> None:
    with pytest.raises(FileNotFoundError, match="'adapter' .*nope.* is not a directory"):
        TextEncoder(_cfg(tiny, adapter=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no driftrec_adapter.json"):
        TextEncoder(_cfg(tiny, adapter=str(tmp_path / "empty")))
    other = save_tiny_bert(tmp_path / "other-bert", 1, max_position_embeddings=512)
    with pytest.raises(ValueError, match="was trained on base model .*expected the base model"):
        TextEncoder(_cfg(other, adapter=str(adapter_dir)))
    with pytest.raises(ValueError, match="'adapter' must be None or a non-empty string"):
        TextEncoderConfig(adapter="")


def test_save_is_atomic_and_refuses_foreign_dirs(
    trained: tuple[TextEncoder, Any], tiny: Path, tmp_path: Path, adapter_dir: Path
) -> None:
    enc = trained[0]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    kwargs = {
        "base_model": str(tiny),
        "base_identity": te.model_identity(str(tiny)),
        "settings": SMALL.lora,
    }
    with pytest.raises(FileExistsError, match="holds no adapter"):
        lora.save_adapter(enc.model, foreign, **kwargs)
    assert (foreign / "notes.txt").read_text() == "keep me"
    out = tmp_path / "again"
    lora.save_adapter(enc.model, out, **kwargs)
    lora.save_adapter(enc.model, out, **kwargs)  # replacing an adapter is fine
    assert lora.adapter_identity(out) == lora.adapter_identity(adapter_dir)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_click_log_shapes_and_examples(click_log: lora.ClickLog) -> None:
    assert len(click_log) == 8 * 40
    assert click_log.history_items.shape == (320, ENV.session.history_len)
    rows = click_log.click_examples()
    assert rows.size > 0 and click_log.clicked[rows].all()
    clicked_before = (click_log.history_feedback[rows] > 0.5) & click_log.history_mask[rows]
    assert clicked_before.any(axis=1).all()
    assert 0 < click_log.clicked.mean() < 1


def test_finetune_rejects_bad_logs(tiny: Path, texts: list[str], click_log: lora.ClickLog) -> None:
    enc = TextEncoder(_cfg(tiny))
    with pytest.raises(ValueError, match="beyond the 5 texts"):
        lora.finetune_encoder(enc, texts[:5], click_log, SMALL)
    none = lora.ClickLog(
        click_log.history_items,
        click_log.history_feedback,
        click_log.history_mask,
        click_log.items,
        np.zeros_like(click_log.clicked),
    )
    with pytest.raises(ValueError, match="0 usable clicks"):
        lora.finetune_encoder(enc, texts, none, SMALL)


def test_full_finetune_changes_base_weights(
    tiny: Path, texts: list[str], click_log: lora.ClickLog
) -> None:
    enc = TextEncoder(_cfg(tiny))
    before = {n: p.detach().clone() for n, p in enc.model.named_parameters()}
    result = lora.finetune_encoder(
        enc, texts, click_log, lora.FinetuneSettings(method="full", steps=3, learning_rate=1e-3)
    )
    after = dict(enc.model.named_parameters())
    assert not torch.equal(before["encoder.layer.0.attention.self.query.weight"],
                           after["encoder.layer.0.attention.self.query.weight"])  # fmt: skip
    assert torch.equal(before["pooler.dense.weight"], after["pooler.dense.weight"])
    assert result.trainable_params == sum(
        p.numel() for n, p in after.items() if not n.startswith("pooler")
    )


# --------------------------------------------------------------------------------------------
# the command line: driftrec finetune, driftrec run --text-adapter
# --------------------------------------------------------------------------------------------
CLI_ENV = '{"num_items": 40, "num_topics": 4, "history_len": 8}'


def test_cli_finetune_then_run_with_the_adapter(tiny: Path, tmp_path: Path, run_cli: Any) -> None:
    out = tmp_path / "adapter"
    code, stdout, err = run_cli(
        "finetune", "--out", str(out), "--text-model", str(tiny), "--env", CLI_ENV,
        "--steps", "4", "--log-steps", "20", "--num-envs", "8", "--rank", "2", "--max-length",
        "32", "--batch-size", "4", "--retain-weight", "1",
    )  # fmt: skip
    assert code == 0, err
    assert "adapter written to" in stdout and "re-encoding the 40 catalog texts" in stdout
    manifest = lora.read_manifest(out)
    assert manifest["lora"]["rank"] == 2 and manifest["logged_impressions"] == 8 * 20
    assert manifest["catalog_encode_seconds"] > 0 and manifest["training"]["steps"] == 4
    assert (
        manifest["finetune"]["retain_weight"] == 1.0 and manifest["finetune"]["lora"]["rank"] == 2
    )
    code, _, err = run_cli("run", "--agents", "history-similarity", "--seeds", "0", "--steps", "8",
        "--num-envs", "4", "--log-every", "4", "--env", CLI_ENV, "--text-model", str(tiny),
        "--text-adapter", str(out), "--out-dir", str(tmp_path / "runs"), "--name", "n",
        "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    (run_dir,) = (tmp_path / "runs" / "n").glob("*__history-similarity__0")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["text_adapter_sha256"] == lora.adapter_identity(out)


def test_cli_finetune_fills_the_cache_that_run_reads(
    tiny: Path, tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``finetune`` re-encodes the catalog at the length runs read (128 by default), so a
    ``run --text-adapter`` afterwards encodes no text at all (it reads the cache)."""
    out = tmp_path / "adapter"
    code, _, err = run_cli(
        "finetune", "--out", str(out), "--text-model", str(tiny), "--env", CLI_ENV,
        "--steps", "2", "--log-steps", "20", "--num-envs", "8", "--rank", "2",
        "--batch-size", "4", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    assert lora.read_manifest(out)["max_length"] == TextEncoderConfig().max_length == 128
    encoded: list[int] = []
    real = TextEncoder.encode
    monkeypatch.setattr(
        TextEncoder, "encode", lambda self, texts: encoded.append(len(texts)) or real(self, texts)
    )
    code, _, err = run_cli("run", "--agents", "history-similarity,attention-ppo", "--seeds", "0",
        "--steps", "4", "--num-envs", "4", "--log-every", "4", "--env", CLI_ENV, "--text-model",
        str(tiny), "--text-adapter", str(out), "--out-dir", str(tmp_path / "runs"), "--name", "n",
        "--no-progress", "--agent-kwargs", '{"attention-ppo": {"n_steps": 4}}',
    )  # fmt: skip
    assert code == 0, err
    assert encoded == []


def test_cli_finetune_and_run_errors(
    tiny: Path,
    tmp_path: Path,
    adapter_dir: Path,
    run_cli: Any,
    save_tiny_bert: Any,
) -> None:
    def error(*argv: str) -> str:
        code, _, err = run_cli(*argv)
        assert code == 2
        return err.splitlines()[-2] if "DRIFTREC_DEBUG" in err else err

    base = ["finetune", "--out", str(tmp_path / "a"), "--text-model", str(tiny)]
    assert "'rank' must be an integer in [1, 256] (got 0)" in error(*base, "--rank", "0")
    assert error(*base, "--log-steps", "0") == (
        "driftrec finetune: error: 'log_steps' must be an integer >= 1 (got 0)\n"
    )  # it was reported as 'steps', the name of the optimizer steps' option
    assert "'targets' ['qkv'] match no Linear module" in error(
        *base, "--targets", "qkv", "--env", CLI_ENV, "--log-steps", "5", "--num-envs", "4"
    )
    assert "no such directory" in error(
        "finetune", "--out", str(tmp_path / "b"), "--text-model", str(tmp_path / "missing")
    )
    run = ["run", "--agents", "random", "--seeds", "0", "--steps", "4", "--log-every", "4"]
    run += ["--num-envs", "2", "--out-dir", str(tmp_path / "runs"), "--no-progress"]
    assert "'adapter' " in error(*run, "--text-adapter", str(tmp_path / "nope"))
    assert "is not a directory" in error(*run, "--text-adapter", str(tmp_path / "nope"))
    other = save_tiny_bert(tmp_path / "other", 2, max_position_embeddings=512)
    assert "was trained on base model" in error(
        *run, "--text-model", str(other), "--text-adapter", str(adapter_dir)
    )


def test_retention_term_keeps_anchor_texts_near_the_base(
    tiny: Path, texts: list[str], click_log: lora.ClickLog
) -> None:
    anchors = [f"the {w} story of cake and music" for w in ("war", "love", "space", "film")] * 3

    def anchor_drift(weight: float) -> float:
        enc = TextEncoder(_cfg(tiny))
        base = enc.encode(anchors)
        settings = lora.FinetuneSettings(
            steps=15, batch_size=8, learning_rate=1e-2, retain_weight=weight
        )
        lora.finetune_encoder(enc, texts, click_log, settings, anchor_texts=anchors)
        return float(np.mean(1.0 - np.sum(enc.encode(anchors) * base, axis=1)))

    free, kept = anchor_drift(0.0), anchor_drift(50.0)
    assert kept < 0.5 * free, (free, kept)
    enc = TextEncoder(_cfg(tiny))
    with pytest.raises(ValueError, match="'retain_weight' is 1.0 but no anchor_texts"):
        lora.finetune_encoder(enc, texts, click_log, lora.FinetuneSettings(retain_weight=1.0))


def test_own_negatives_only_contrast_each_click_with_its_own_impressions(
    tiny: Path, texts: list[str], click_log: lora.ClickLog
) -> None:
    """``in_batch=False``: each click's softmax runs over the click and its own negatives (the
    impressions that user skipped) only; the same draws with the in-batch candidates give a
    larger loss (more competitors). Checked against a direct computation."""
    settings = lora.FinetuneSettings(batch_size=6, negatives=2, seed=4, retain_weight=0.0)
    examples = click_log.click_examples()

    def first_loss(in_batch: bool) -> float:
        s = dataclasses.replace(settings, in_batch=in_batch)
        trainer = lora.ClickTrainer(TextEncoder(_cfg(tiny)), texts, s)
        with torch.no_grad():
            return float(trainer._loss(click_log, examples))

    own, batch = first_loss(False), first_loss(True)
    # the same draws by hand, with the base encoder (a fresh adapter is an exact no-op)
    rng = np.random.default_rng(4)
    rows = rng.choice(examples, size=6, replace=False)
    history = lora._recent_clicks(click_log, rows, settings.history_items)
    negs = lora._negatives(rng, click_log, rows, 2, len(texts))
    enc = TextEncoder(_cfg(tiny))
    expected = []
    for j, r in enumerate(rows):
        user = enc.encode([texts[i] for i in history[j] if i >= 0]).sum(axis=0)
        user /= np.linalg.norm(user)
        cands = [int(click_log.items[r]), *[int(n) for n in negs[j] if n != click_log.items[r]]]
        cands = list(dict.fromkeys(cands))  # a negative equal to another counts once
        logits = enc.encode([texts[i] for i in cands]) @ user / settings.temperature
        expected.append(np.logaddexp.reduce(logits) - logits[0])
    assert own == pytest.approx(float(np.mean(expected)), rel=1e-4)
    assert own < batch
    with pytest.raises(ValueError, match=r"^'in_batch' false needs 'negatives' >= 1 \(got 0\)"):
        lora.FinetuneSettings(in_batch=False, negatives=0)
    with pytest.raises(TypeError, match=r"^'in_batch' must be true or false \(got 'no'\)$"):
        lora.FinetuneSettings(in_batch="no")  # type: ignore[arg-type]
