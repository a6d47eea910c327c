"""No code runs from a data file (issue 18, item 2).

Every kind of file driftrec reads gets a planted pickle payload (an ``exec`` that writes a
marker file). Reading must refuse it or ignore it, and the marker must never appear. The
control: SB3's full ``load``, used only behind ``trust=True``, does run the planted payload in
``model.zip``, so these tests would notice a loader that unpickles.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from driftrec.experiments.evaluate import evaluate_checkpoint


class _Payload:
    """Unpickling this writes ``marker``: the stand-in for any code an attacker would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


def _rewrite_zip(path: Path, replace: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path) as src:
        entries = {name: src.read(name) for name in src.namelist()}
    entries.update(replace)
    with zipfile.ZipFile(path, "w") as dst:
        for name, data in entries.items():
            dst.writestr(name, data)


def _plant_in_data(model_zip: Path, marker: Path) -> None:
    """Replace every pickled entry of SB3's ``data`` file by the payload."""
    with zipfile.ZipFile(model_zip) as src:
        data = json.loads(src.read("data"))
    blob = base64.b64encode(pickle.dumps(_Payload(marker))).decode()
    planted = 0
    for value in data.values():
        if isinstance(value, dict) and ":serialized:" in value:
            value[":serialized:"] = blob
            planted += 1
    assert planted > 0  # the checkpoint format still has pickled entries to plant in
    _rewrite_zip(model_zip, {"data": json.dumps(data).encode()})


def test_model_zip_data_payload_never_runs(trained: Path, tmp_path: Path) -> None:
    """`evaluate` reads only the weights: the planted pickles in `data` stay inert; with
    trust=True (SB3's full load) the same file does run them, with a warning first."""
    run = _copy(trained, tmp_path)
    marker = tmp_path / "pwned"
    _plant_in_data(run / "model.zip", marker)
    result = evaluate_checkpoint(run, steps=4)
    assert result["user_steps"] == 16
    assert not marker.exists()
    with pytest.warns(UserWarning, match="unpickles the file and can run any code"):
        with pytest.raises(ValueError, match="cannot be loaded as a PPO checkpoint"):
            evaluate_checkpoint(run, steps=4, trust=True)
    assert marker.read_text() == "pwned"  # the control: the payload is live


def test_model_zip_policy_payload_is_refused(trained: Path, tmp_path: Path) -> None:
    """A pickle in `policy.pth` is refused by torch's weights-only unpickler, naming the file."""
    run = _copy(trained, tmp_path)
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"w": _Payload(marker)}, buf)
    _rewrite_zip(run / "model.zip", {"policy.pth": buf.getvalue()})
    with pytest.raises(
        ValueError,
        match=r"model\.zip cannot be loaded as a checkpoint \(policy\.pth is not a plain weights",
    ):
        evaluate_checkpoint(run, steps=4)
    assert not marker.exists()


def test_compress_reads_only_weights(trained: Path, tmp_path: Path) -> None:
    """`compress`'s loader is the same safe one (a planted data payload stays inert)."""
    from driftrec.experiments.compression import _load

    run = _copy(trained, tmp_path)
    marker = tmp_path / "pwned"
    _plant_in_data(run / "model.zip", marker)
    cfg, _, recommender, slate, masks = _load(run, seed=0)
    assert cfg["agent"] == "id-ppo" and slate == 1
    assert masks == {"mask_consumed": False, "mask_rejected": 0}
    assert recommender.num_items == 12
    assert not marker.exists()


def test_compressed_policy_payload_is_refused(tmp_path: Path) -> None:
    """A compressed-policy file is read with weights_only=True: a pickle is refused."""
    from driftrec.agents.compress import load_compressed

    marker = tmp_path / "pwned"
    torch.save({"format": _Payload(marker)}, tmp_path / "p.pt")
    with pytest.raises(ValueError, match=r"p\.pt cannot be read as a compressed recommender"):
        load_compressed(tmp_path / "p.pt")
    assert not marker.exists()


def _object_npz(path: Path, marker: Path, **extra: object) -> None:
    """An .npz whose arrays include an object array holding the payload."""
    arr = np.empty(1, dtype=object)
    arr[0] = _Payload(marker)
    np.savez(path, **extra, embeddings=arr, interests=arr, trend=arr, trend_until=arr, x=arr)


def test_npz_and_npy_payloads_are_refused(trained: Path, tmp_path: Path) -> None:
    """Run arrays (topics/attention .npz), the embedding cache, a population file and an
    embeddings_file .npy holding pickled objects are refused (or rebuilt), never unpickled."""
    from driftrec.agents.sb3_policy import ItemTableSpec
    from driftrec.agents.text_encoder import _load_cached
    from driftrec.envs.population import load_population
    from driftrec.experiments.analysis import load_run

    marker = tmp_path / "pwned"
    run = _copy(trained, tmp_path)
    _object_npz(run / "topics.npz", marker)
    with pytest.raises(ValueError, match=r"topics\.npz: not an array file driftrec wrote"):
        load_run(run)

    _object_npz(tmp_path / "cache.npz", marker)
    with pytest.warns(RuntimeWarning, match="is corrupt"):
        assert _load_cached(tmp_path / "cache.npz", "k", "h", 1) is None

    _object_npz(tmp_path / "pop.npz", marker)
    with pytest.raises(ValueError, match=r"pop\.npz: not a readable driftrec population file"):
        load_population(str(tmp_path / "pop.npz"))

    arr = np.empty((12, 2), dtype=object)
    arr[0, 0] = _Payload(marker)
    np.save(tmp_path / "emb.npy", arr, allow_pickle=True)
    config = json.loads((run / "config.json").read_text())
    spec = ItemTableSpec(env_config=config["env_config"], embeddings_file=str(tmp_path / "emb.npy"))
    with pytest.raises(ValueError, match=r"emb\.npy cannot be read as a numeric \.npy array"):
        spec.build()
    assert not marker.exists()


def test_adapter_needs_safetensors(tmp_path: Path) -> None:
    """An adapter directory offering only a pickled `adapter_model.bin` is refused before any
    weights are read (safetensors files hold no code)."""
    from driftrec.agents.lora import read_manifest

    marker = tmp_path / "pwned"
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    torch.save({"w": _Payload(marker)}, adapter / "adapter_model.bin")
    (adapter / "driftrec_adapter.json").write_text(
        json.dumps({"format": "driftrec-lora-adapter-v1", "base_model_sha256": "0", "lora": {}})
    )
    with pytest.raises((FileNotFoundError, ValueError)):
        read_manifest(adapter)
    assert not marker.exists()
