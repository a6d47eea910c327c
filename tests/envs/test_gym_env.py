"""Tests of the Gymnasium adapters: API checks, determinism, vector equality, pickling, helpers."""

from __future__ import annotations

import pickle
import re
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence

import driftrec.envs  # noqa: F401  (registers the ids)
from driftrec.envs.config import EnvConfig
from driftrec.envs.core import BatchSimulator
from driftrec.envs.drift import DriftEvent
from driftrec.envs.gym_env import DriftRecEnv, DriftRecVectorEnv
from driftrec.envs.observation import CLOCK_CAP, CLOCK_SCALE, ObservationLayout
from driftrec.envs.scenarios import get_scenario, list_scenarios

ENV_IDS = [s.env_id for s in list_scenarios()]


def _raises(exc: type[Exception], msg: str) -> Any:
    return pytest.raises(exc, match=f"^{re.escape(msg)}$")


def _sb3_check_env(env: gym.Env) -> None:
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    sb3_check_env(env, warn=True)


def _no_warnings(fn: Any, *args: Any, **kwargs: Any) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(*args, **kwargs)
    assert [str(w.message) for w in caught] == []


# --------------------------------------------------------------------------------------------
# API conformance
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_registered_env_passes_check_env(env_id: str) -> None:
    """Every registered id passes Gymnasium's and SB3's check_env with no warning at all."""
    env = gym.make(env_id)
    _no_warnings(check_env, env.unwrapped, skip_render_check=True)
    _no_warnings(_sb3_check_env, env.unwrapped)
    env.close()


@pytest.mark.parametrize("scenario", ["Mixed", "SlateMixed"])
def test_dict_observation_passes_check_env(scenario: str) -> None:
    """The Dict observation variant passes both checkers with no warning."""
    env = DriftRecEnv(scenario=scenario, observation="dict")
    assert isinstance(env.observation_space, gym.spaces.Dict)
    _no_warnings(check_env, env, skip_render_check=True)
    _no_warnings(_sb3_check_env, env)


def test_make_with_module_prefix() -> None:
    """gym.make('driftrec.envs:driftrec/Mixed-v1') imports the module and builds the env."""
    env = gym.make("driftrec.envs:driftrec/Mixed-v1")
    assert isinstance(env.unwrapped, DriftRecEnv)
    assert env.unwrapped.config == get_scenario("Mixed").config
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_make_vec_uses_the_native_vector_env() -> None:
    """make_vec with vector_entry_point returns a DriftRecVectorEnv with batched spaces."""
    venv = gym.make_vec(
        "driftrec/AbruptShift-v1", num_envs=8, vectorization_mode="vector_entry_point"
    )
    assert isinstance(venv, DriftRecVectorEnv)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (8, 3 * 20 + 2) and venv.observation_space.contains(obs)
    obs, reward, term, trunc, info = venv.step(venv.action_space.sample())
    assert reward.shape == term.shape == trunc.shape == (8,)
    assert info["interests"].shape == (8, 20)


def test_make_with_overrides() -> None:
    """Keyword arguments to gym.make override the scenario's config."""
    env = gym.make("driftrec/Stationary-v1", num_items=50, max_steps=3)
    assert env.action_space == gym.spaces.Discrete(50)
    assert env.observation_space.high[:20].max() == 49
    assert env.unwrapped.config.session.max_steps == 3
    slate = gym.make("driftrec/SlateStationary-v1", num_items=50)
    assert slate.action_space == gym.spaces.MultiDiscrete([50] * 10)


def test_spaces_and_step_types() -> None:
    """step returns a float32 obs in the space, a float reward and Python bool flags."""
    env = DriftRecEnv(scenario="Mixed", num_items=40)
    assert env.observation_space.dtype == np.float32
    assert np.all(np.isfinite(env.observation_space.high))
    assert env.observation_space.high[-1] == CLOCK_CAP / CLOCK_SCALE == 1024.0
    env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step(1)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    assert type(reward) is float and type(terminated) is bool and type(truncated) is bool
    assert set(info) == {
        "interests",
        "click_prob",
        "expected_reward",
        "clicked_item",
        "drift_events",
        "clock",
        "oracle_action",
        "oracle_expected_reward",
    }
    env2 = DriftRecEnv(scenario="Mixed", num_items=40, oracle_info=False)
    env2.reset(seed=1)
    assert "oracle_action" not in env2.step(1)[4]


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
def test_step_before_reset_raises() -> None:
    """Stepping before reset raises RuntimeError (single and vector env)."""
    with _raises(RuntimeError, "Call reset before using step method."):
        DriftRecEnv(num_items=10).step(0)
    with _raises(RuntimeError, "Call reset before using step method."):
        DriftRecVectorEnv(2, num_items=10).step(np.array([0, 0]))


def test_bad_action_raises_value_error() -> None:
    """An action outside the space raises ValueError naming the action and the space."""
    env = DriftRecEnv(num_items=10)
    env.reset(seed=0)
    with _raises(ValueError, "10 (<class 'int'>) invalid: expected an element of Discrete(10)"):
        env.step(10)
    with _raises(ValueError, "-1 (<class 'int'>) invalid: expected an element of Discrete(10)"):
        env.step(-1)
    slate = DriftRecEnv(scenario="SlateStationary", num_items=10)
    slate.reset(seed=0)
    with pytest.raises(ValueError, match="invalid: expected an element of MultiDiscrete"):
        slate.step(np.zeros(3, dtype=np.int64))
    venv = DriftRecVectorEnv(2, num_items=10)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=re.escape("action items must be in [0, 10) (got 10)")):
        venv.step(np.array([0, 10]))


def test_bad_constructor_and_reset_arguments() -> None:
    """render_mode, reset options and mismatched seed lists are rejected with exact messages."""
    with _raises(
        ValueError, "'render_mode' must be None: DriftRecEnv does not render (got 'human')"
    ):
        DriftRecEnv(render_mode="human")
    env = DriftRecEnv(num_items=10)
    with _raises(ValueError, "DriftRecEnv.reset takes no options (got ['regime'])"):
        env.reset(options={"regime": 1})
    venv = DriftRecVectorEnv(3, num_items=10)
    with _raises(ValueError, "'seed' must be an int or a list of 3 ints (got 2 seeds)"):
        venv.reset(seed=[1, 2])
    with _raises(ValueError, "pass either 'config' or 'scenario', not both"):
        DriftRecEnv(EnvConfig(), scenario="Mixed")
    with _raises(TypeError, "'config' must be an EnvConfig (got dict)"):
        DriftRecEnv({})  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# determinism and seeding
# --------------------------------------------------------------------------------------------
def _rollout(env: DriftRecEnv, seed: int, steps: int) -> list[Any]:
    """(obs, reward, terminated, truncated, info) per step, resetting on done; actions seeded."""
    rng = np.random.default_rng(123)
    out: list[Any] = [env.reset(seed=seed)]
    for _ in range(steps):
        action = _sample_action(env.action_space, rng)
        step = env.step(action)
        out.append(step)
        if step[2] or step[3]:
            out.append(env.reset())
    return out


def _sample_action(space: gym.Space[Any], rng: np.random.Generator) -> Any:
    if isinstance(space, gym.spaces.Discrete):
        return int(rng.integers(space.n))
    return rng.integers(0, space.nvec)


@pytest.mark.parametrize("scenario", ["Mixed", "SlateMixed"])
def test_same_seed_gives_identical_rollouts(scenario: str) -> None:
    """Two envs reset with the same seed produce exactly equal observations, rewards and infos."""
    a = _rollout(DriftRecEnv(scenario=scenario, max_steps=15), seed=7, steps=40)
    b = _rollout(DriftRecEnv(scenario=scenario, max_steps=15), seed=7, steps=40)
    assert len(a) > 41  # at least one reset happened
    assert data_equivalence(a, b, exact=True)
    c = _rollout(DriftRecEnv(scenario=scenario, max_steps=15), seed=8, steps=40)
    assert not data_equivalence(a, c)


def test_reset_with_seed_restarts_the_clock_and_reset_continues_it() -> None:
    """reset(seed) puts the clock at 0 and repeats the first user; reset() keeps the clock."""
    env = DriftRecEnv(scenario="PopulationTrend", num_items=40)
    obs0, info0 = env.reset(seed=3)
    assert info0["clock"] == 0 and obs0[-1] == 0
    for _ in range(5):
        env.step(0)
    obs1, info1 = env.reset()
    assert info1["clock"] == 5 and obs1[-1] == 5 / 16_384  # the observed scale
    assert env.layout.split(obs1).clock == 5  # split decodes steps exactly
    assert not np.array_equal(info1["interests"], info0["interests"])
    env.step(0)
    assert env.step(0)[4]["clock"] == 7
    obs2, info2 = env.reset(seed=3)
    assert info2["clock"] == 0
    np.testing.assert_array_equal(obs2, obs0)
    np.testing.assert_array_equal(info2["interests"], info0["interests"])


def test_reset_without_seed_first_time_uses_fresh_entropy() -> None:
    """A first reset() without a seed works, and two such envs draw different users."""
    a, b = DriftRecEnv(num_items=10), DriftRecEnv(num_items=10)
    ia, ib = a.reset()[1]["interests"], b.reset()[1]["interests"]
    assert not np.array_equal(ia, ib)


@pytest.mark.parametrize("scenario", ["Mixed", "SlateMixed", "LongTermBoredom", "PopulationDrift"])
def test_vector_env_equals_single_envs(scenario: str) -> None:
    """The vector env with B=5 reset with seed s equals 5 single envs ``user_slot=i`` reset
    with the same s, step for step, with autoresets."""
    b, seed, max_steps = 5, 10, 15
    venv = DriftRecVectorEnv(b, scenario=scenario, max_steps=max_steps)
    singles = [DriftRecEnv(scenario=scenario, max_steps=max_steps, user_slot=i) for i in range(b)]
    vobs, vinfo = venv.reset(seed=seed)
    for i, env in enumerate(singles):
        obs, info = env.reset(seed=seed)
        np.testing.assert_array_equal(vobs[i], obs)
        np.testing.assert_array_equal(vinfo["interests"][i], info["interests"])
    rng = np.random.default_rng(0)
    resets = 0
    for _ in range(40):
        actions = np.stack([_sample_action(venv.single_action_space, rng) for _ in range(b)])
        vobs, vrew, vterm, vtrunc, vinfo = venv.step(actions)
        assert vinfo.get("_final_obs", np.zeros(b, bool)).tolist() == (vterm | vtrunc).tolist()
        for i, env in enumerate(singles):
            action = actions[i] if actions.ndim == 2 else int(actions[i])
            obs, rew, term, trunc, info = env.step(action)
            assert (rew, term, trunc) == (vrew[i], vterm[i], vtrunc[i])
            for key in ("interests", "click_prob", "expected_reward", "clicked_item"):
                np.testing.assert_array_equal(vinfo[key][i], info[key], err_msg=key)
            assert DriftEvent.names(int(vinfo["drift_events"][i])) == info["drift_events"]
            for key in ("oracle_action", "oracle_expected_reward"):
                np.testing.assert_array_equal(vinfo[key][i], info[key], err_msg=key)
            if term or trunc:
                resets += 1
                np.testing.assert_array_equal(vinfo["final_obs"][i], obs)
                obs, _ = env.reset()
            np.testing.assert_array_equal(vobs[i], obs)
    assert resets >= b


def test_oracle_is_independent_of_batch_size() -> None:
    """A user's oracle value is the same whether it is simulated alone or in a batch of 64."""
    cfg = get_scenario("Stationary").config
    big = BatchSimulator(cfg, 64)
    big.seed(list(range(64)))
    values = big.oracle().expected_reward
    for i in range(64):
        one = BatchSimulator(cfg, 1)
        one.seed([i])
        assert one.oracle().expected_reward[0] == values[i]


def test_vector_env_seed_list_and_reset_without_seed() -> None:
    """A seed list gives slot i the user of a single env seeded with entry i; reset() without
    a seed redraws users and keeps the clock."""
    a = DriftRecVectorEnv(3, num_items=20)
    b = DriftRecVectorEnv(3, num_items=20)
    oa, ia = a.reset(seed=4)
    ob, ib = b.reset(seed=[4, 5, 6])
    for i, s in enumerate([4, 5, 6]):
        single = DriftRecEnv(num_items=20).reset(seed=s)[1]["interests"]
        np.testing.assert_array_equal(ib["interests"][i], single)
    np.testing.assert_array_equal(ia["interests"][0], ib["interests"][0])  # slot 0 of run 4
    assert not np.array_equal(ia["interests"][1], ib["interests"][1])  # not seed 4 + 1
    a.step(np.array([0, 1, 2]))
    _, again = a.reset()
    assert a.sim.state.clock == 1
    assert not np.array_equal(again["interests"], ia["interests"])


# --------------------------------------------------------------------------------------------
# pickling
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", ["Mixed", "SlateMixed"])
def test_pickle_round_trip(scenario: str) -> None:
    """A pickled and restored env continues exactly like the original."""
    env = DriftRecEnv(scenario=scenario, max_steps=15)
    env.reset(seed=2)
    rng = np.random.default_rng(9)
    for _ in range(5):
        env.step(_sample_action(env.action_space, rng))
    copy = pickle.loads(pickle.dumps(env))
    for _ in range(25):
        action = _sample_action(env.action_space, rng)
        a, b = env.step(action), copy.step(action)
        assert data_equivalence(a, b, exact=True)
        if a[2] or a[3]:
            assert data_equivalence(env.reset(), copy.reset(), exact=True)
    assert data_equivalence(env.reset(seed=5), copy.reset(seed=5), exact=True)


def test_pickle_fresh_env_and_vector_env() -> None:
    """An env that was never reset and a vector env both survive pickling."""
    fresh = pickle.loads(pickle.dumps(DriftRecEnv(num_items=10)))
    assert data_equivalence(fresh.reset(seed=0), DriftRecEnv(num_items=10).reset(seed=0))
    venv = DriftRecVectorEnv(3, scenario="Mixed")
    venv.reset(seed=0)
    copy = pickle.loads(pickle.dumps(venv))
    actions = np.array([1, 2, 3])
    assert data_equivalence(venv.step(actions), copy.step(actions), exact=True)


# --------------------------------------------------------------------------------------------
# action masks
# --------------------------------------------------------------------------------------------
def test_action_masks_follow_releases() -> None:
    """action_masks is the (N,) released-item mask now, and grows as items are released."""
    env = DriftRecEnv(scenario="NewItems", num_items=100)
    env.reset(seed=0)
    release = env.catalog.release_step
    mask = env.action_masks()
    assert mask.dtype == np.bool_ and mask.shape == (100,)
    np.testing.assert_array_equal(mask, release <= 0)
    assert mask.sum() == 70  # 30% of the items are released later
    env.sim.state.clock = 5000
    np.testing.assert_array_equal(env.action_masks(), release <= 5000)


def test_slate_action_masks_have_k_times_n_entries() -> None:
    """For slates, action_masks has k * N entries: the released mask once per slot."""
    env = DriftRecEnv(scenario="SlateMixed", num_items=50)
    env.reset(seed=0)
    mask = env.action_masks()
    assert mask.shape == (10 * 50,)
    np.testing.assert_array_equal(mask.reshape(10, 50), np.tile(env.sim.released(), (10, 1)))
    venv = DriftRecVectorEnv(4, scenario="SlateMixed", num_items=50)
    venv.reset(seed=0)
    assert venv.action_masks().shape == (4, 500)
    single = DriftRecVectorEnv(4, scenario="NewItems", num_items=50)
    single.reset(seed=0)
    np.testing.assert_array_equal(single.action_masks(), np.tile(single.sim.released(), (4, 1)))


def test_oracle_action_helper_is_released_and_matches_info() -> None:
    """env.oracle_action() is a released item and equals the info oracle of the next step."""
    env = DriftRecEnv(scenario="NewItems", num_items=100)
    env.reset(seed=1)
    for _ in range(5):
        best = env.oracle_action()
        assert env.action_masks()[best]
        assert env.step(3)[4]["oracle_action"] == best


# --------------------------------------------------------------------------------------------
# observation helpers
# --------------------------------------------------------------------------------------------
def test_layout_split_and_to_dict_agree_with_flat_obs() -> None:
    """ObservationLayout.split / to_dict read the same parts as the documented flat layout."""
    env = DriftRecEnv(scenario="SlateStationary", num_items=50)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(4):
        obs = env.step(rng.integers(0, 50, 10))[0]
    lay: ObservationLayout = env.layout
    h = 30
    assert lay.size == 3 * h + 2 == obs.shape[0]
    parts = lay.split(obs)
    np.testing.assert_array_equal(parts.item_ids, obs[:h].astype(np.int64))
    np.testing.assert_array_equal(parts.feedback, obs[h : 2 * h])
    np.testing.assert_array_equal(parts.mask, obs[2 * h : 3 * h] > 0.5)
    assert parts.progress == obs[3 * h] and parts.clock == obs[3 * h + 1] * 16_384 == 4
    assert parts.mask.sum() == 30
    as_dict = lay.to_dict(obs)
    assert env.layout.dict_space().contains(as_dict)
    for name, value in lay.split(as_dict)._asdict().items():
        np.testing.assert_array_equal(value, getattr(parts, name), err_msg=name)
    batch = np.stack([obs, obs])
    assert lay.split(batch).item_ids.shape == (2, h)
    with _raises(
        ValueError,
        "observation must have last dimension 92 for history_len=30 (got shape (5,))",
    ):
        lay.split(np.zeros(5))


def test_dict_env_obs_equals_flat_env_obs_split() -> None:
    """The dict-observation env returns to_dict of what the flat env returns, step for step."""
    flat = DriftRecEnv(scenario="Mixed", num_items=40)
    nested = DriftRecEnv(scenario="Mixed", num_items=40, observation="dict")
    fo, _ = flat.reset(seed=0)
    do, _ = nested.reset(seed=0)
    for action in [1, 5, 9, 13]:
        assert data_equivalence(flat.layout.to_dict(fo), do, exact=True)
        fo = flat.step(action)[0]
        do = nested.step(action)[0]
        assert nested.observation_space.contains(do)
    venv = DriftRecVectorEnv(3, scenario="Mixed", num_items=40, observation="dict")
    vo, _ = venv.reset(seed=0)
    assert venv.observation_space.contains(vo) and vo["item_ids"].shape == (3, 20)


def test_two_run_seeds_share_no_user_stream() -> None:
    """Runs seeded 0 and 1 (32 slots each) share no user: every slot's stream differs.

    Before v1 slot i got seed s + i, so 31 of the 32 users of run 1 were users of run 0.
    """
    b = 32
    runs = []
    for seed in (0, 1):
        env = DriftRecVectorEnv(b, num_items=50, max_steps=5)
        _, info = env.reset(seed=seed)
        first = info["interests"].copy()  # (B, K): the first user of every slot
        draws = env.sim.streams.uniform(8)  # (B, 8): the next numbers of every slot's stream
        runs.append((first, draws))
    (first0, draws0), (first1, draws1) = runs
    for i in range(b):
        for j in range(b):
            assert not np.array_equal(first0[i], first1[j]), (i, j)
            assert not np.array_equal(draws0[i], draws1[j]), (i, j)
    # within a run the slots differ too
    assert len({tuple(row) for row in first0.round(12)}) == b


def test_stepping_past_the_end_raises() -> None:
    """After truncation (or termination) the single env refuses to step until reset."""
    env = DriftRecEnv(num_items=20, max_steps=2)
    env.reset(seed=0)
    env.step(0)
    *_, truncated, _ = env.step(0)
    assert truncated
    with pytest.raises(RuntimeError, match="call reset before stepping again"):
        env.step(0)
    env.reset()
    env.step(0)  # fine again
