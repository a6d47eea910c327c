"""driftrec export: Minari datasets of user sessions (skipped without the offline extra)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

minari = pytest.importorskip("minari")
pytest.importorskip("h5py")

from driftrec.envs.gym_env import DriftRecEnv  # noqa: E402
from driftrec.experiments.cli import main  # noqa: E402
from driftrec.experiments.export import export_minari  # noqa: E402

SMALL = {"num_items": 40, "max_steps": 12}


@pytest.fixture
def data_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


@pytest.mark.parametrize("agent", ["random", "mlp-ppo"])
def test_export_cuts_one_episode_per_session(data_path: Path, agent: str) -> None:
    """Every episode is one user's session: it ends in exactly one terminal or truncated step,
    observations are one longer than actions, and the steps add up to users x steps (for a
    bandit baseline and for an SB3 agent learning while it collects)."""
    ds = export_minari(
        f"driftrec/Stationary/{agent}-v0",
        scenario="Stationary",
        agent=agent,
        num_envs=4,
        steps=30,
        env_overrides=SMALL,
    )
    assert ds.total_steps == 4 * 30
    lengths = []
    for ep in ds.iterate_episodes():
        n = len(ep.actions)
        lengths.append(n)
        assert ep.observations.shape == (n + 1, 3 * 20 + 2)
        ends = ep.terminations | ep.truncations
        assert ends[-1] and not ends[:-1].any()
        assert n <= SMALL["max_steps"]
        assert ep.infos["clicked_item"][0] == -1 and len(ep.infos["click_prob"]) == n + 1
        # a click shows up as reward 1 and as the clicked item
        np.testing.assert_array_equal(ep.rewards > 0, ep.infos["clicked_item"][1:] >= 0)
        # the observation's newest history slot is the item just recommended
        np.testing.assert_array_equal(ep.observations[1:, 19], ep.actions)
    assert sum(lengths) == 120 and ds.total_episodes == len(lengths) >= 4 * 30 // 12


def test_recover_environment_gives_the_driftrec_world(data_path: Path) -> None:
    """recover_environment builds DriftRecEnv with the scenario and the overrides."""
    export_minari("driftrec/Stationary/pop-v0", scenario="Stationary", agent="popularity",
                  num_envs=2, steps=5, env_overrides=SMALL)  # fmt: skip
    env = minari.load_dataset("driftrec/Stationary/pop-v0").recover_environment()
    assert isinstance(env.unwrapped, DriftRecEnv)
    assert env.unwrapped.catalog.num_items == 40
    assert env.unwrapped.config.session.max_steps == 12


def test_a_scenario_file_exports_and_recovers(data_path: Path, tmp_path: Path) -> None:
    """A scenario file exports; the dataset's env spec names the file, so it recovers the world."""
    path = tmp_path / "mine.json"
    path.write_text('{"catalog": {"num_items": 40}, "session": {"max_steps": 9}}')
    export_minari("driftrec/mine/r-v0", scenario=str(path), num_envs=2, steps=5)
    env = minari.load_dataset("driftrec/mine/r-v0").recover_environment()
    assert env.unwrapped.config.catalog.num_items == 40
    assert env.unwrapped.config.session.max_steps == 9


def test_export_is_deterministic(tmp_path: Path) -> None:
    """The same seed writes the same episodes."""
    eps = []
    for name in ("a", "b"):
        ds = export_minari("driftrec/Stationary/r-v0", scenario="Stationary", num_envs=3,
                           steps=10, env_overrides=SMALL, data_path=tmp_path / name)  # fmt: skip
        eps.append([(e.actions.tolist(), e.rewards.tolist()) for e in ds.iterate_episodes()])
    assert eps[0] == eps[1]


def test_export_cli_and_bad_info_key(data_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI writes the dataset and prints its size; an unknown info key names the field."""
    code = main(["export", "--scenario", "Stationary", "--agent", "random", "--num-envs", "2",
                 "--info-keys", "clicked_item,oracle_expected_reward",
                 "--steps", "6", "--env-overrides", '{"num_items": 40}'])  # fmt: skip
    assert code == 0
    assert "driftrec/Stationary/random-v0: " in capsys.readouterr().out
    ep = next(minari.load_dataset("driftrec/Stationary/random-v0").iterate_episodes())
    assert sorted(ep.infos) == ["clicked_item", "oracle_expected_reward"]
    with pytest.raises(ValueError, match="'info_keys' must name fields of the env's info"):
        export_minari("driftrec/x/y-v0", scenario="Stationary", num_envs=2, steps=2,
                      env_overrides=SMALL, info_keys=("nope",))  # fmt: skip


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(
    ("dataset_id", "why"),
    [
        ("../../evil-v0", ": it would leave the datasets directory"),
        ("ns/../../evil-v0", ": it would leave the datasets directory"),
        ("/abs/x-v0", ": it would leave the datasets directory"),
        ("noversion", ": it has no '-v<version>' at the end"),
        ("ns/noversion", ": it has no '-v<version>' at the end"),
        ("a//b-v0", ""),
        ("a b-v0", ""),
        ("x-v", ": it has no '-v<version>' at the end"),
    ],
)
def test_bad_dataset_id_is_refused_before_anything_exists(
    tmp_path: Path, dataset_id: str, why: str
) -> None:
    """A dataset id that would leave the datasets directory, or has no version, is one clear
    error before any file or directory is made (Minari made the directory first)."""
    root = tmp_path / "a" / "b" / "root"
    msg = (
        f"'dataset_id' {dataset_id!r} is not a dataset id{why}; expected "
        "'[namespace/]name-v<version>', each part letters, digits, '-' and '_', such as "
        "'driftrec/AbruptShift/random-v0'"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        export_minari(dataset_id, scenario="Stationary", num_envs=2, steps=2,
                      env_overrides=SMALL, data_path=root)  # fmt: skip
    assert _tree(tmp_path) == []


def test_existing_dataset_is_refused_then_replaced_with_overwrite(tmp_path: Path) -> None:
    """A second export of the same id is refused before any work (naming --overwrite);
    with overwrite=True the new dataset replaces the old one once complete."""
    kw: dict[str, Any] = {"scenario": "Stationary", "num_envs": 2, "steps": 4,
                          "env_overrides": SMALL, "data_path": tmp_path}  # fmt: skip
    first = export_minari("ns/x-v0", seed=0, **kw)
    assert first.total_steps == 8
    msg = (
        f"dataset 'ns/x-v0' already exists ({tmp_path / 'ns' / 'x-v0'}); pass --overwrite "
        "(overwrite=True) to replace it, or choose another --dataset-id"
    )
    with pytest.raises(FileExistsError, match=f"^{re.escape(msg)}$"):
        export_minari("ns/x-v0", seed=1, **{**kw, "steps": 6})
    second = export_minari("ns/x-v0", seed=1, overwrite=True, **{**kw, "steps": 6})
    assert second.total_steps == 12
    assert [p.name for p in tmp_path.iterdir()] == ["ns"]  # no temporary left
    assert sorted(p.name for p in (tmp_path / "ns").iterdir()) == [
        "namespace_metadata.json",
        "x-v0",
    ]


def test_interrupted_export_leaves_nothing_and_a_retry_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt after Minari wrote its files (the 280 MB file a killed export left, that
    Minari could not open and that blocked a retry) leaves nothing; the retry succeeds."""
    real = minari.create_dataset_from_buffers

    def then_interrupt(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(minari, "create_dataset_from_buffers", then_interrupt)
    kw: dict[str, Any] = {"scenario": "Stationary", "num_envs": 2, "steps": 4,
                          "env_overrides": SMALL, "data_path": tmp_path}  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        export_minari("ns/x-v0", **kw)
    assert _tree(tmp_path) == []
    monkeypatch.setattr(minari, "create_dataset_from_buffers", real)
    assert export_minari("ns/x-v0", **kw).total_steps == 8


def test_a_killed_exports_temporary_is_removed_by_the_next(tmp_path: Path) -> None:
    """``kill -9`` leaves the temporary directory (hidden, so Minari does not list it); the next
    export deletes it since its process is gone, and it never blocks that export."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname().replace("-", "_")
    stale = tmp_path / f".driftrec-export-{host}-{dead.pid}-abc123"
    (stale / "ns" / "x-v0" / "data").mkdir(parents=True)
    (stale / "ns" / "x-v0" / "data" / "main_data.hdf5").write_bytes(b"\0" * 1024)
    export_minari("ns/x-v0", scenario="Stationary", num_envs=2, steps=4,
                  env_overrides=SMALL, data_path=tmp_path)  # fmt: skip
    assert not stale.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ns"]


def test_ctrl_c_stops_the_export_at_once(tmp_path: Path, run_cli: Any) -> None:
    """Ctrl-C during a long export: exit 130 within seconds, no dataset, nothing left (the
    audit saw it ignored for 40 s: the interrupt landed in a weakref callback and was lost)."""
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    t0 = time.monotonic()
    code, out, err = run_cli("export", "--scenario", "Stationary", "--num-envs", "8",
                             "--steps", "1000000", "--env-overrides", '{"num_items": 40}',
                             "--data-path", str(tmp_path), "--dataset-id", "ns/x-v0")  # fmt: skip
    assert code == 130 and time.monotonic() - t0 < 30
    assert err == (
        "driftrec export: interrupted; nothing half-written is left (a dataset is moved into "
        "place whole)\n"
    )
    assert _tree(tmp_path) == []
