"""Bad input to the simulator is refused up front, with a message naming it (issue: reliability)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from driftrec.envs import CatalogError, DriftRecEnv, DriftRecVectorEnv, EnvConfig, load_catalog
from driftrec.envs.config import MAX_PATIENCE, MAX_WEIGHT
from driftrec.envs.scenarios import get_scenario


def _raises(kind: type[Exception], msg: str) -> pytest.RaisesContext[Exception]:
    return pytest.raises(kind, match=f"^{re.escape(msg)}$")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("choice.interest_weight", 1e308, "a finite number in [0.0, 100.0] (got 1e+308)"),
        ("choice.quality_weight", 101.0, "a finite number in [-100.0, 100.0] (got 101.0)"),
        ("choice.boredom_weight", 1e9, "a finite number in [0.0, 100.0] (got 1000000000.0)"),
        ("users.interest_spread", 1e200, "a finite number in [0.0, 100.0] (got 1e+200)"),
        ("users.interest_clip", 1e300, "a finite number in (0.0, 100.0] (got 1e+300)"),
        ("users.patience_gain", 1e300, "a finite number in [0.0, 1000000.0] (got 1e+300)"),
        ("catalog.quality_alpha", 1e300, "a finite number in (0.0, 1000.0] (got 1e+300)"),
        ("catalog.release_horizon", 10**30, f"an integer in [1, 1000000000] (got {10**30})"),
    ],
)
def test_unbounded_values_are_bounded(key: str, value: float, expected: str) -> None:
    with _raises(ValueError, f"'{key}' must be {expected}"):
        EnvConfig().with_overrides(**{key: value})


@pytest.mark.parametrize("slate", [1, 5])
def test_every_bound_at_once_stays_finite(slate: int) -> None:
    """All weights, scales and patience values at their maxima, every drift on: no NaN/inf."""
    cfg = get_scenario("Mixed").config.with_overrides(
        num_items=50,
        slate_size=slate,
        **{
            "choice.interest_weight": MAX_WEIGHT,
            "choice.quality_weight": MAX_WEIGHT,
            "choice.boredom_weight": MAX_WEIGHT,
            "users.population_scale": MAX_WEIGHT,
            "users.interest_spread": MAX_WEIGHT,
            "users.interest_clip": MAX_WEIGHT,
            "users.patience_gain": MAX_PATIENCE,
            "users.max_patience": MAX_PATIENCE,
        },
    )
    env = DriftRecVectorEnv(8, cfg)
    env.reset(seed=0)
    env.action_space.seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # exp overflow to inf is fine: 1/(1+inf)
        for _ in range(200):
            obs, reward, _, _, info = env.step(env.action_space.sample())
            for value in (obs, reward, info["click_prob"], info["expected_reward"]):
                assert np.isfinite(value).all()
            assert np.isfinite(info["oracle_expected_reward"]).all()
            assert np.isfinite(info["interests"]).all()


def test_vector_actions_need_the_exact_shape() -> None:
    env = DriftRecVectorEnv(4, num_items=20, slate_size=10)
    env.reset(seed=0)
    msg = "'actions' must have shape (4, 10) (4 users, slate size 10) (got shape (10, 4))"
    with _raises(ValueError, msg):
        env.step(np.zeros((10, 4), dtype=np.int64))  # same size, transposed
    with _raises(
        ValueError, "'actions' must have shape (4, 10) (4 users, slate size 10) (got shape (40,))"
    ):  # noqa: E501
        env.step(np.zeros(40, dtype=np.int64))
    single = DriftRecVectorEnv(4, num_items=20)
    single.reset(seed=0)
    with _raises(
        ValueError, "'actions' must have shape (4,) (4 users, slate size 1) (got shape (4, 1))"
    ):  # noqa: E501
        single.step(np.zeros((4, 1), dtype=np.int64))
    single.step(np.zeros(4, dtype=np.int64))  # the right shape still works


_LIST = " or a list of 3 of them"


@pytest.mark.parametrize(
    ("seed", "single", "extra"),
    [
        (1.5, "'seed' must be None or a non-negative integer{} (got 1.5 of type float)", _LIST),
        ("a", "'seed' must be None or a non-negative integer{} (got 'a' of type str)", _LIST),
        (True, "'seed' must be None or a non-negative integer{} (got True of type bool)", _LIST),
        (-1, "'seed' must be a non-negative integer{} (got -1)", ""),
        (np.int64(-2), "'seed' must be a non-negative integer{} (got np.int64(-2))", ""),
    ],
    ids=["float", "str", "bool", "negative", "np-negative"],
)
def test_bad_seeds_are_named(seed: object, single: str, extra: str) -> None:
    """The single env takes one integer; the vector env also a list (said only there)."""
    kind = TypeError if extra else ValueError
    with _raises(kind, single.format("")):
        DriftRecEnv(num_items=20).reset(seed=seed)  # type: ignore[arg-type]
    with _raises(kind, single.format(extra)):
        DriftRecVectorEnv(3, num_items=20).reset(seed=seed)  # type: ignore[arg-type]


def test_seed_lists_name_the_bad_entry() -> None:
    env = DriftRecVectorEnv(3, num_items=20)
    with _raises(
        TypeError, "'seed' entry 1 must be a non-negative integer (got 1.5 of type float)"
    ):
        env.reset(seed=[0, 1.5, 2])  # type: ignore[list-item]
    with _raises(ValueError, "'seed' entry 2 must be a non-negative integer (got -3)"):
        env.reset(seed=[0, 1, -3])


@pytest.mark.parametrize(
    "seed", [np.int8(3), np.uint8(3), np.int16(3), np.uint32(3), np.int64(3), np.uint64(3)]
)
def test_numpy_integer_seeds_of_every_size_equal_python_ints(seed: np.integer) -> None:
    a, b = DriftRecEnv(num_items=20), DriftRecEnv(num_items=20)
    assert np.array_equal(a.reset(seed=seed)[0], b.reset(seed=3)[0])  # type: ignore[arg-type]
    va, vb = DriftRecVectorEnv(3, num_items=20), DriftRecVectorEnv(3, num_items=20)
    assert np.array_equal(va.reset(seed=seed)[0], vb.reset(seed=3)[0])  # type: ignore[arg-type]
    big = np.uint64(2**64 - 1)  # the largest numpy seed is accepted too
    assert np.array_equal(a.reset(seed=big)[0], b.reset(seed=2**64 - 1)[0])  # type: ignore[arg-type]
    arr = np.array([3, 4, 5], dtype=np.uint16)
    assert np.array_equal(va.reset(seed=arr)[0], vb.reset(seed=3)[0])  # type: ignore[arg-type]


def test_slate_larger_than_the_catalog(tmp_path: Path) -> None:
    msg = "'slate_size' must be <= the number of items (5) (got 10)"
    with _raises(ValueError, msg):
        EnvConfig().with_overrides(num_items=5, slate_size=10)
    path = tmp_path / "two.csv"
    path.write_text("id,title,description,tags\na,x,d,jazz\nb,y,d,rock\n")
    with _raises(ValueError, "'slate_size' must be <= the number of items (2) (got 3)"):
        DriftRecVectorEnv(2, catalog_path=str(path), slate_size=3)
    with _raises(ValueError, "'slate_size' must be <= the number of items (2) (got 3)"):
        DriftRecEnv(catalog_path=str(path), slate_size=3)


def test_catalog_file_problems_are_catalog_errors(tmp_path: Path) -> None:
    folder = tmp_path / "items.csv"
    folder.mkdir()
    with _raises(CatalogError, f"{folder}: is a directory, expected a .csv or .jsonl file"):
        load_catalog(folder)
    lone = tmp_path / "lone.jsonl"
    lone.write_text(
        '{"id": "a", "title": "x\\ud800", "description": "d", "tags": ["jazz"]}\n'
        '{"id": "b", "title": "y", "description": "d", "tags": ["rock"]}\n'
    )
    msg = (
        f"{lone}, line 1, field 'title': expected valid Unicode text (no unpaired surrogate) "
        "(got 'x\\ud800')"
    )
    with _raises(CatalogError, msg):
        load_catalog(lone)
    huge = tmp_path / "huge.csv"
    huge.write_text("id,title,description,topics\na,x,d,jazz:1e308;rock:1e308\nb,y,d,rock:1\n")
    cell = "jazz:1e308;rock:1e308"
    msg = f"{huge}, line 2, field 'topics': expected weights with a finite sum (got {cell!r})"
    with _raises(CatalogError, msg):
        load_catalog(huge)
