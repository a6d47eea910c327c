"""The calibrated world: log loaders, the fit, the empirical population and the scenario."""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import driftrec.envs  # noqa: F401  (registers the ids)
from driftrec.envs import DriftRecEnv, DriftRecVectorEnv, EnvConfig
from driftrec.envs.drift import GradualDrift
from driftrec.envs.movielens import (
    LogDataError,
    calibrate,
    calibrated_config,
    load_grouplens,
    load_interaction_log,
    recbole_movielens_dir,
    split_log,
)
from driftrec.envs.population import EmpiricalPopulation, load_population, save_population


@pytest.fixture
def log(synthetic_log_files: tuple[Path, Path]):
    return load_interaction_log(*synthetic_log_files)


def test_generic_log_reads_everything(log) -> None:
    """The generic loader keeps every row, indexes users and items, and reads genres."""
    assert log.user.size == 60 * 40
    assert log.num_users == 60 and log.num_items == 30
    assert log.genres[0] == ("Action",) and log.titles[0] == "Movie 0. A film number 0"
    assert log.value_kind == "rating" and log.value_range == (1.0, 5.0)


def test_fit_recovers_preferences_appeal_level_and_release(log) -> None:
    """Action fans get higher Action interest; items chosen more often get more appeal; the
    fitted click rate of an available item equals the log's density; late items are released
    late; the env's item bias reproduces the fitted appeal exactly; no trend is fitted."""
    cal = calibrate(log, span_steps=1000, latent_topics=2)
    names = cal.catalog.topic_names
    # sorted; no 'unknown' (every item has genres); two taste topics after the genres
    assert names == ("Action", "Comedy", "Drama", "taste 01", "taste 02")
    a, d = names.index("Action"), names.index("Drama")
    theta = cal.population.interests
    assert (theta[:30, a] - theta[:30, d]).mean() > 0.5
    assert (theta[30:, d] - theta[30:, a]).mean() > 0.5
    np.testing.assert_allclose(cal.catalog.topics.sum(axis=1), 1.0)
    counts = np.bincount(log.item, minlength=log.num_items)
    q = cal.catalog.quality
    # items 8, 9 (and 18, 19, 28, 29) are only chosen in the second half of the log
    assert q[[0, 1, 10, 11]].min() > q[[8, 9, 18, 19]].max()
    assert np.corrcoef(q, counts)[0, 1] > 0.5
    # w (q - 1/2) - c is the fitted logit's item part: one random available item is clicked
    # about as often as an item in the log was consumed
    s = cal.summary
    assert abs(s["fitted_click_rate_random_item"] - s["density"]) < 0.02
    assert cal.catalog.release_step[0] == 0 and cal.catalog.release_step[28] > 400
    assert not cal.population.trend.any()
    assert s["drift_users"] == 60 and cal.drift_sigma >= 0.0
    np.testing.assert_array_equal(cal.users, np.arange(60))


def test_calibrated_config_builds_a_valid_deterministic_env(log, tmp_path: Path) -> None:
    """The fitted world passes check_env with no warnings, and one seed gives one rollout."""
    config = calibrated_config(log, cache_dir=tmp_path / "cache", span_steps=1000, iters=50)
    assert isinstance(config, EnvConfig) and config.population_path
    assert EnvConfig.from_dict(config.to_dict()) == config
    env = DriftRecEnv(config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    assert [str(w.message) for w in caught] == []

    def rollout() -> list[float]:
        e = DriftRecVectorEnv(4, config=config)
        e.reset(seed=3)
        out = []
        for _ in range(20):
            _, r, _, _, info = e.step(np.arange(4))
            out.extend(info["interests"].ravel().tolist() + r.tolist())
        return out

    assert rollout() == rollout()


def test_new_users_are_resampled_fitted_users(log, tmp_path: Path) -> None:
    """With no spread, a new user's interests equal a fitted row moved by the trend."""
    config = calibrated_config(log, cache_dir=tmp_path / "cache", span_steps=1000)
    pop = load_population(config.population_path)
    env = DriftRecVectorEnv(8, config=config)
    _, info = env.reset(seed=0)
    for row in info["interests"]:
        assert np.isclose(pop.interests, row).all(axis=1).any()


def test_population_draw_and_round_trip(tmp_path: Path) -> None:
    """draw picks row floor(u * U) and adds trend * min(clock, trend_until); save/load agree."""
    pop = EmpiricalPopulation(
        interests=np.array([[1.0, -1.0], [0.0, 2.0]]), trend=np.array([0.1, 0.0]), trend_until=5
    )
    # u = 0.2 -> row 0, u = 0.7 -> row 1; clock 10 is capped at 5: + 0.5 on topic 0
    np.testing.assert_allclose(
        pop.draw(np.array([0.2, 0.7]), 10), [[1.5, -1.0], [0.5, 2.0]], atol=1e-12
    )
    path = save_population(pop, tmp_path / "p.npz")
    back = load_population(str(path))
    np.testing.assert_array_equal(back.interests, pop.interests)
    assert back.trend_until == 5
    msg = "'trend' must have shape (2,) like the interests' topics (got (3,))"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        EmpiricalPopulation(interests=np.zeros((2, 2)), trend=np.zeros(3), trend_until=0)


def test_split_log_is_temporal(log) -> None:
    """split_log puts the earliest interactions in the first part."""
    train, test = split_log(log, 0.75)
    assert train.user.size == 1800 and test.user.size == 600
    assert train.timestamp.max() <= test.timestamp.min()


def test_bad_log_cells_name_file_line_and_field(synthetic_log_files: tuple[Path, Path]) -> None:
    """A non-numeric rating or a missing column raises LogDataError naming where."""
    inter, items = synthetic_log_files
    lines = inter.read_text().splitlines()
    lines[3] = "u0,m1,great,1234"
    inter.write_text("\n".join(lines) + "\n")
    msg = f"{inter}, line 4, field 'rating': expected a finite number (got 'great')"
    with pytest.raises(LogDataError, match=f"^{re.escape(msg)}$"):
        load_interaction_log(inter, items)
    inter.write_text("user,item,timestamp\nu0,m1,5\n")
    with pytest.raises(LogDataError, match="exactly one of rating, click"):
        load_interaction_log(inter, items)
    inter.write_text("user,item,rating,timestamp\nu0,zz,5,1\n")
    with pytest.raises(LogDataError, match="item 'zz'"):
        load_interaction_log(inter, items)


def test_grouplens_layout(tmp_path: Path) -> None:
    """u.data + u.item (19 genre flags) load; a missing file names the expected layout."""
    flags = ["0"] * 19
    flags[8] = "1"  # Drama
    (tmp_path / "u.item").write_text(
        "1|Heat (1995)|01-Jan-1995||http://x|" + "|".join(flags) + "\n"
        "2|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join(["0"] * 19) + "\n",
        encoding="latin-1",
    )
    (tmp_path / "u.data").write_text("7\t1\t4\t100\n8\t2\t2\t200\n")
    log = load_grouplens(tmp_path)
    assert log.genres == (("Drama",), ()) and log.titles[0] == "Heat (1995)"
    assert log.value.tolist() == [4.0, 2.0]
    with pytest.raises(FileNotFoundError, match="GroupLens's MovieLens-100k layout"):
        load_grouplens(tmp_path / "nowhere")


def test_movielens_id_is_registered_and_errors_clearly_without_data(monkeypatch) -> None:
    """driftrec/MovieLens-v1 is registered; without the data it names the install command."""
    from driftrec.envs import movielens

    spec = gym.spec("driftrec/MovieLens-v1")
    assert spec.kwargs == {"scenario": "MovieLens"}
    monkeypatch.delenv("DRIFTREC_MOVIELENS", raising=False)
    monkeypatch.setattr(movielens, "recbole_movielens_dir", lambda: None)
    movielens.movielens_config.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match=re.escape("pip install --no-deps recbole")):
            gym.make("driftrec/MovieLens-v1")
    finally:
        movielens.movielens_config.cache_clear()


@pytest.mark.slow
def test_movielens_scenario_with_the_real_data() -> None:
    """With recbole's MovieLens-100k installed: the scenario builds (the first fit takes a
    minute or two, hence slow) and passes check_env; the catalog has genres and taste topics,
    and one movie for everyone earns at most 0.75 of the per-user oracle."""
    if recbole_movielens_dir() is None:
        pytest.skip("MovieLens-100k absent (pip install --no-deps recbole)")
    env = gym.make("driftrec/MovieLens-v1").unwrapped
    assert env.catalog.num_items == 1682 and env.catalog.num_topics == 19 + 16
    assert env.config.drift.get(GradualDrift) is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    assert [str(w.message) for w in caught] == []
    venv = DriftRecVectorEnv(512, config=env.config)
    venv.reset(seed=0)
    rewards = venv.sim.item_rewards()  # (B, N) privileged
    ratio = rewards.mean(axis=0).max() / rewards.max(axis=1).mean()
    print(f"population-best / oracle: {ratio:.3f}")
    assert ratio <= 0.75


def test_population_file_must_match_the_catalog(tmp_path: Path, tiny_config: EnvConfig) -> None:
    """A population with another topic count, or a missing file, is refused by name."""
    path = save_population(
        EmpiricalPopulation(interests=np.zeros((2, 3)), trend=np.zeros(3), trend_until=0),
        tmp_path / "pop3.npz",
    )
    config = dataclasses.replace(tiny_config, population_path=str(path))
    msg = f"'population_path' has 3 topics but the catalog has 4 (got {str(path)!r})"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        DriftRecEnv(config)
    missing = dataclasses.replace(tiny_config, population_path=str(tmp_path / "none.npz"))
    with pytest.raises(FileNotFoundError, match="'population_path' names a file that does not"):
        DriftRecEnv(missing)


def _grouplens_dir(tmp_path: Path, data: str) -> Path:
    flags = ["0"] * 19
    flags[8] = "1"  # Drama
    (tmp_path / "u.item").write_text(
        "1|Heat (1995)|01-Jan-1995||http://x|" + "|".join(flags) + "\n", encoding="latin-1"
    )
    (tmp_path / "u.data").write_text(data)
    return tmp_path


def test_truncated_u_data_names_file_and_line(tmp_path: Path) -> None:
    """A u.data cut mid-timestamp (no line end) is refused, naming the file and the last line;
    it used to parse (timestamp 88) and move the whole log in time."""
    d = _grouplens_dir(tmp_path, "7\t1\t4\t881250949\n8\t1\t2\t88")
    msg = (
        f"{d / 'u.data'}, line 2: the file ends in the middle of a line ('8\\t1\\t2\\t88' has no "
        "line end): it looks truncated; expected a complete file (if that line is complete, "
        "end it with a newline)"
    )
    with pytest.raises(LogDataError, match=f"^{re.escape(msg)}$"):
        load_grouplens(d)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("nan", "expected a finite number (got 'nan')"),
        ("inf", "expected a finite number (got 'inf')"),
        ("7", "expected a rating in [1, 5] (got '7')"),
        ("0", "expected a rating in [1, 5] (got '0')"),
    ],
)
def test_bad_u_data_rating_names_file_line_and_field(
    tmp_path: Path, cell: str, expected: str
) -> None:
    """A nan, infinite or off-scale rating names the file, the line and the field."""
    d = _grouplens_dir(tmp_path, f"7\t1\t4\t100\n8\t1\t{cell}\t200\n")
    msg = f"{d / 'u.data'}, line 2, field 'rating': {expected}"
    with pytest.raises(LogDataError, match=f"^{re.escape(msg)}$"):
        load_grouplens(d)


def test_generic_log_refuses_nan_and_a_truncated_file(
    synthetic_log_files: tuple[Path, Path],
) -> None:
    """The CSV loader refuses a nan rating and a file whose last line has no line end."""
    inter, items = synthetic_log_files
    lines = inter.read_text().splitlines()
    inter.write_text("\n".join(lines[:3] + ["u0,m1,nan,1234"] + lines[4:]) + "\n")
    msg = f"{inter}, line 4, field 'rating': expected a finite number (got 'nan')"
    with pytest.raises(LogDataError, match=f"^{re.escape(msg)}$"):
        load_interaction_log(inter, items)
    inter.write_text("\n".join(lines)[:-3])  # the last timestamp loses 3 digits and the newline
    with pytest.raises(LogDataError, match=rf"^{re.escape(str(inter))}, line {len(lines)}: the"):
        load_interaction_log(inter, items)


def test_world_seed_draws_a_bootstrap_of_the_fitted_users(log, tmp_path: Path) -> None:
    """The world seed picks which fitted users make up the population (vary_world varies the
    users of a calibrated world); one seed, one table."""
    config = calibrated_config(log, cache_dir=tmp_path / "cache", span_steps=1000, iters=20)
    pop = load_population(config.population_path)

    def table(seed: int) -> np.ndarray:
        return DriftRecVectorEnv(
            2, config=config.with_overrides(world_seed=seed)
        ).sim.population.interests

    a, b = table(0), table(1)
    assert a.shape == b.shape == pop.interests.shape
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, table(0))
    for row in a:  # every row is a fitted user
        assert np.isclose(pop.interests, row).all(axis=1).any()
    # a bootstrap repeats some users and leaves others out
    assert len({tuple(r) for r in a}) < len(a)


def test_simulate_histories_respects_counts_and_taken_items() -> None:
    """Each row consumes exactly its count of distinct items, never a taken one, at steps
    0..count-1; with a huge appeal gap the most attractive items go first."""
    from driftrec.envs.movielens import simulate_histories

    topics = np.tile([[1.0, 0.0]], (6, 1))
    appeal = np.array([20.0, 10.0, 0.0, -20.0, -20.0, -20.0])
    taken = np.zeros((3, 6), dtype=bool)
    taken[1, 0] = True
    counts = np.array([3, 2, 0])
    got, order = simulate_histories(
        topics, appeal, np.zeros((3, 2)), counts, taken, np.random.default_rng(0),
        drift=GradualDrift(sigma=0.1), interest_clip=4.0,
    )  # fmt: skip
    np.testing.assert_array_equal(got.sum(axis=1), counts)
    assert not (got & taken).any()
    assert order[0, :3].tolist() == [0, 1, 2]  # gaps of 10: Plackett-Luce order 1 - 9e-5
    assert order[1, 1:3].tolist() == [0, 1] and (order[2] == -1).all()


def test_drift_profile_is_zero_without_change_and_positive_for_a_switch() -> None:
    """A history in one genre has no drift; a switch from genre A to genre B halfway is
    detected at every lag, most at lags 2 and 3 (hand count: lag 1 pairs (A,A), (A,B), (B,B))."""
    from driftrec.envs.movielens import drift_profile

    genres = np.array([[1.0, 0.0]] * 40 + [[0.0, 1.0]] * 40)
    same = np.full((1, 80), -1)
    same[0, :40] = np.arange(40)  # 40 items, all genre A
    np.testing.assert_allclose(drift_profile(same, genres, np.random.default_rng(0)), 0.0)
    switch = np.full((1, 80), -1)
    switch[0, :20] = np.arange(20)  # genre A first, then genre B
    switch[0, 40:60] = np.arange(20, 40)
    prof = drift_profile(switch, genres, np.random.default_rng(0))
    assert 0 < prof[0] < prof[1] and prof[1] > 0.6 and prof[2] > 0.6
