"""driftrec export: Minari datasets of user sessions (skipped without the offline extra)."""

from __future__ import annotations

from pathlib import Path

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
