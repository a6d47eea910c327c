"""Tests of driftrec.experiments.recorder.StepRecorder against hand-computed metric rows."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from driftrec.agents.online import StepRecord
from driftrec.envs.catalog import Catalog
from driftrec.envs.drift import DriftEvent
from driftrec.envs.observation import ObservationLayout
from driftrec.experiments.recorder import METRIC_COLUMNS, StepRecorder

B = 2  # user slots
K = 2  # topics ("news", "sport")
H = 3  # history length
LN3 = math.log(3.0)
W = 2.0  # interest_weight: softmax(W * [ln3 / 2, 0]) = softmax([ln3, 0]) = [0.75, 0.25]
HOT = [LN3 / W, 0.0]  # preferred mix [0.75, 0.25]
COLD = [0.0, LN3 / W]  # preferred mix [0.25, 0.75]
FLAT = [0.0, 0.0]  # preferred mix [0.5, 0.5]
LAYOUT = ObservationLayout(history_len=H, num_items=4)
SHIFT, JUMP, NEW = (
    int(DriftEvent.POPULATION_SHIFT),
    int(DriftEvent.INTEREST_JUMP),
    int(DriftEvent.NEW_ITEMS),
)


def _catalog() -> Catalog:
    """Items 0 [1, 0], 1 [0, 1], 2 [.5, .5] (released at 1), 3 [1, 0] (released at 10)."""
    return Catalog(
        item_ids=("a", "b", "c", "d"),
        titles=("A", "B", "C", "D"),
        descriptions=("a.", "b.", "c.", "d."),
        topic_names=("news", "sport"),
        topics=np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]),
        quality=np.array([0.5, 0.5, 0.5, 0.5]),
        release_step=np.array([0, 0, 1, 10]),
    )


def _obs(histories: list[list[int | None]]) -> np.ndarray:
    """Flat observations: one list of H item ids (None = padding) per user."""
    obs = np.zeros((B, LAYOUT.size), dtype=np.float32)
    for b, hist in enumerate(histories):
        for h, item in enumerate(hist):
            if item is not None:
                obs[b, LAYOUT.item_ids.start + h] = item
                obs[b, LAYOUT.mask.start + h] = 1.0
    return obs


def _rec(
    clock: int,
    actions: list[Any],
    reward: list[float],
    clicked: list[int],
    expected: list[float],
    interests: list[list[float]],
    *,
    oracle: list[float] | None = None,
    oracle_action: list[Any] | None = None,
    events: tuple[int, int] = (0, 0),
    term: tuple[bool, bool] = (False, False),
    trunc: tuple[bool, bool] = (False, False),
    next_obs: np.ndarray | None = None,
) -> StepRecord:
    info: dict[str, Any] = {
        "clicked_item": np.array(clicked),
        "expected_reward": np.array(expected),
        "interests": np.array(interests),
        "drift_events": np.array(events, dtype=np.int32),
    }
    if oracle is not None:
        info["oracle_expected_reward"] = np.array(oracle)
        info["oracle_action"] = np.array(oracle_action)
    empty = np.zeros((B, LAYOUT.size), dtype=np.float32)
    return StepRecord(
        clock=clock,
        observation=empty,
        actions=np.array(actions, dtype=np.int64),
        reward=np.array(reward, dtype=np.float64),
        terminated=np.array(term),
        truncated=np.array(trunc),
        next_observation=empty if next_obs is None else next_obs,
        info=info,
    )


def _recorder(log_every: int = 2, **kwargs: Any) -> StepRecorder:
    return StepRecorder(
        _catalog(),
        B,
        LAYOUT,
        interest_weight=W,
        log_every=log_every,
        cold_start_window=5,
        **kwargs,
    )


# six steps, three windows of log_every=2
STEPS = [
    # window 1 --------------------------------------------------------------------------------
    _rec(1, [0, 1], [1, 0], [0, -1], [0.6, 0.2], [HOT, FLAT],
         oracle=[0.8, 0.4], oracle_action=[1, 0], events=(NEW, 0)),
    _rec(2, [2, 0], [0, 1], [-1, 0], [0.3, 0.5], [FLAT, HOT],
         oracle=[0.5, 0.5], oracle_action=[2, 2], events=(SHIFT, JUMP),
         term=(True, False), trunc=(False, True),
         next_obs=_obs([[0, 1, 2], [None, 0, 3]])),
    # window 2 --------------------------------------------------------------------------------
    _rec(3, [1, 1], [0, 0], [-1, -1], [0.1, 0.1], [FLAT, FLAT],
         oracle=[0.3, 0.5], oracle_action=[0, 0]),
    _rec(4, [1, 2], [1, 0], [1, -1], [0.5, 0.3], [COLD, FLAT],
         oracle=[0.5, 0.3], oracle_action=[1, 2],
         next_obs=_obs([[None, None, 1], [1, 2, 2]])),
    # window 3 (no oracle info) -----------------------------------------------------------------
    _rec(5, [0, 0], [0, 0], [-1, -1], [0.2, 0.2], [FLAT, FLAT], term=(True, False)),
    _rec(6, [0, 0], [0, 0], [-1, -1], [0.2, 0.2], [FLAT, FLAT],
         term=(True, False), trunc=(True, True)),
]  # fmt: skip


@pytest.fixture
def recorder() -> StepRecorder:
    """A recorder fed the six hand-made steps."""
    rec = _recorder(track_users=3)
    for r in STEPS:
        rec.record(r)
    return rec


def test_one_row_per_window_with_every_column(recorder: StepRecorder) -> None:
    """Every log_every=2 steps one row with exactly METRIC_COLUMNS; steps and env_steps count."""
    assert len(recorder.rows) == 3
    assert all(tuple(row) == METRIC_COLUMNS for row in recorder.rows)
    assert [r["step"] for r in recorder.rows] == [2, 4, 6]
    assert [r["env_steps"] for r in recorder.rows] == [4, 8, 12]  # B=2 user-steps per step


def test_window_1_rewards_and_regret(recorder: StepRecorder) -> None:
    """Window 1: reward, expected/oracle/normalized reward, regret, cum_regret, click rate."""
    row = recorder.rows[0]
    assert row["reward"] == pytest.approx(0.5)  # (1 + 0 + 0 + 1) / 4
    assert row["expected_reward"] == pytest.approx(0.4)  # (.6 + .2 + .3 + .5) / 4
    assert row["oracle_reward"] == pytest.approx(0.55)  # (.8 + .4 + .5 + .5) / 4
    assert row["normalized_reward"] == pytest.approx(0.4 / 0.55)
    assert row["regret"] == pytest.approx(0.15)  # .55 - .4
    # running sum of per-step mean regret: mean(.2, .2) + mean(.2, 0) = .2 + .1
    assert row["cum_regret"] == pytest.approx(0.3)
    assert row["click_rate"] == pytest.approx(0.5)  # clicks at (1, u0) and (2, u1)


def test_window_1_sessions_coverage_cold_start(recorder: StepRecorder) -> None:
    """Window 1: sessions/churn/length, coverage, cold-start shares (ours and the oracle's)."""
    row = recorder.rows[0]
    # step 2: u0 terminated (left), u1 truncated, both after 2 steps
    assert row["sessions"] == 2
    assert row["churn"] == pytest.approx(0.5)
    assert row["session_length"] == pytest.approx(2.0)
    # shown {0, 1, 2}; released at clock 2: items 0, 1, 2 (release 0, 0, 1)
    assert row["coverage"] == pytest.approx(1.0)
    # cold start: released > 0 and within the last 5 steps -> only item 2;
    # ours: step 2 u0 shows item 2 -> 1 of 4 user-steps
    assert row["cold_start_share"] == pytest.approx(0.25)
    # oracle: step 2 picks item 2 for both users -> 2 of 4
    assert row["oracle_cold_start_share"] == pytest.approx(0.5)


def test_window_1_tracking_diversity_events(recorder: StepRecorder) -> None:
    """Window 1: tracking error (TV distance), diversity, drift_event OR and the shift event."""
    row = recorder.rows[0]
    # TV(shown topics, softmax(W * theta)):
    # step 1: u0 item 0 [1, 0] vs [.75, .25] -> .25; u1 item 1 [0, 1] vs [.5, .5] -> .5
    # step 2: u0 item 2 [.5, .5] vs [.5, .5] -> 0;  u1 item 0 [1, 0] vs [.75, .25] -> .25
    assert row["tracking_error"] == pytest.approx((0.25 + 0.5 + 0.0 + 0.25) / 4)
    # history of u0: items 0, 1, 2 -> unit topics [1,0], [0,1], [r,r] (r = 1/sqrt 2):
    #   cosines (0,1) 0, (0,2) r, (1,2) r -> mean over pairs 2r/3 = sqrt(2)/3
    # history of u1: items 0, 3 (one padded slot) -> cosine 1 -> diversity 0
    assert row["diversity"] == pytest.approx(((1 - math.sqrt(2) / 3) + 0.0) / 2)
    assert row["drift_event"] == NEW | SHIFT | JUMP == 7
    assert recorder.events == [{"step": 2, "kind": "population_shift"}]
    assert recorder.event_counts == {"interest_jump": 1, "new_items": 1}


def test_window_2_values(recorder: StepRecorder) -> None:
    """Window 2: every column, with a one-item history left out of diversity."""
    row = recorder.rows[1]
    assert row["reward"] == pytest.approx(0.25)
    assert row["expected_reward"] == pytest.approx(0.25)  # (.1 + .1 + .5 + .3) / 4
    assert row["oracle_reward"] == pytest.approx(0.4)  # (.3 + .5 + .5 + .3) / 4
    assert row["normalized_reward"] == pytest.approx(0.625)
    assert row["regret"] == pytest.approx(0.15)
    assert row["cum_regret"] == pytest.approx(0.3 + 0.3 + 0.0)  # + mean(.2, .4) + mean(0, 0)
    assert row["click_rate"] == pytest.approx(0.25)
    assert row["sessions"] == 0
    assert math.isnan(row["churn"]) and math.isnan(row["session_length"])
    assert row["coverage"] == pytest.approx(2 / 3)  # shown {1, 2} of released {0, 1, 2}
    assert row["cold_start_share"] == pytest.approx(0.25)  # item 2 once (step 4, u1)
    assert row["oracle_cold_start_share"] == pytest.approx(0.25)  # item 2 once (step 4, u1)
    # step 3: item 1 vs [.5, .5] twice -> .5, .5; step 4: item 1 vs [.25, .75] -> .25,
    # item 2 vs [.5, .5] -> 0
    assert row["tracking_error"] == pytest.approx((0.5 + 0.5 + 0.25 + 0.0) / 4)
    # u0 has one impression (no pairs: left out); u1 items 1, 2, 2: cosines r, r, 1
    assert row["diversity"] == pytest.approx(1 - (2 / math.sqrt(2) + 1) / 3)
    assert row["drift_event"] == 0


def test_window_3_sessions_across_ends_and_no_oracle(recorder: StepRecorder) -> None:
    """Window 3: session lengths run across windows; without oracle info its columns are nan."""
    row = recorder.rows[2]
    # u0 leaves at step 5 (session of steps 3-5: 3) and again at 6 (terminated and truncated,
    # counted once as left: length 1); u1 is truncated at 6 (steps 3-6: 4)
    assert row["sessions"] == 3
    assert row["churn"] == pytest.approx(2 / 3)
    assert row["session_length"] == pytest.approx((3 + 1 + 4) / 3)
    for col in ("oracle_reward", "normalized_reward", "regret", "cum_regret"):
        assert math.isnan(row[col]), col
    assert math.isnan(row["oracle_cold_start_share"])
    assert row["expected_reward"] == pytest.approx(0.2)
    assert row["coverage"] == pytest.approx(1 / 3)
    assert row["tracking_error"] == pytest.approx(0.5)  # item 0 vs [.5, .5]
    assert math.isnan(row["diversity"])  # empty histories
    assert row["drift_event"] == 0


def test_topics_arrays(recorder: StepRecorder) -> None:
    """topics_arrays: (W,) steps, (W, K) mixes, (W, U, K) tracked users (U = min(3, B))."""
    t = recorder.topics_arrays()
    assert t["steps"].tolist() == [2, 4, 6] and t["steps"].dtype == np.int64
    assert t["topic_names"].tolist() == ["news", "sport"]
    assert t["rec_mix"].shape == t["interest_mix"].shape == (3, K)
    assert t["tracked_interest"].shape == t["tracked_rec"].shape == (3, B, K)
    # window 1 shown: [1,0], [0,1], [.5,.5], [1,0] -> mean [.625, .375]
    np.testing.assert_allclose(t["rec_mix"][0], [0.625, 0.375])
    # preferred: [.75,.25], [.5,.5], [.5,.5], [.75,.25] -> mean [.625, .375]
    np.testing.assert_allclose(t["interest_mix"][0], [0.625, 0.375])
    # tracked: the preferred mix at the window's last step, the mean shown mix over its steps
    np.testing.assert_allclose(t["tracked_interest"][0], [[0.5, 0.5], [0.75, 0.25]])
    np.testing.assert_allclose(t["tracked_rec"][0], [[0.75, 0.25], [0.5, 0.5]])
    np.testing.assert_allclose(t["rec_mix"][2], [1.0, 0.0])
    # a slot's user changed in a window when its session ended there: both in windows 1 and 3
    assert t["tracked_new_user"].tolist() == [[True, True], [False, False], [True, True]]


def test_topics_arrays_empty_and_one_tracked_user() -> None:
    """Before any window the arrays are empty with the right trailing shapes."""
    t = _recorder(track_users=1).topics_arrays()
    assert t["steps"].shape == (0,)
    assert t["rec_mix"].shape == (0, K)
    assert t["tracked_rec"].shape == (0, 1, K)
    assert t["tracked_new_user"].shape == (0, 1)


def test_slates_average_topics_and_cold_start() -> None:
    """With slates, the shown topic mix is the slate's mean and cold start is per slot."""
    rec = _recorder(log_every=1)
    rec.record(
        _rec(1, [[0, 1], [2, 2]], [0, 1], [-1, 2], [0.2, 0.4], [FLAT, HOT],
             oracle=[0.5, 0.5], oracle_action=[[2, 0], [0, 1]])
    )  # fmt: skip
    row = rec.rows[0]
    # u0 slate [0, 1] -> [.5, .5] vs [.5, .5] -> 0; u1 [2, 2] -> [.5, .5] vs [.75, .25] -> .25
    assert row["tracking_error"] == pytest.approx(0.125)
    # ours: u0 0 of 2 slots, u1 2 of 2 -> (0 + 1) / 2; oracle: u0 1 of 2, u1 0 -> (.5 + 0) / 2
    assert row["cold_start_share"] == pytest.approx(0.5)
    assert row["oracle_cold_start_share"] == pytest.approx(0.25)
    assert row["coverage"] == pytest.approx(1.0)  # {0, 1, 2} of released {0, 1, 2}
    assert row["click_rate"] == pytest.approx(0.5)


def test_attention_arrays() -> None:
    """attention_arrays holds one snapshot per window of tracked user 0; None without a fn."""
    assert _recorder().attention_arrays() is None

    def fn(obs: np.ndarray) -> np.ndarray:
        assert obs.shape == (LAYOUT.size,)
        return np.array([0.2, 0.3, 0.5])

    rec = _recorder(attention_fn=fn)
    assert rec.attention_arrays() is None  # no window yet
    for r in STEPS[:2]:
        rec.record(r)
    a = rec.attention_arrays()
    assert a is not None
    assert a["steps"].tolist() == [2]
    np.testing.assert_allclose(a["weights"], [[0.2, 0.3, 0.5]])
    # u0's history: items 0, 1, 2 -> primary topics 0, 1, 0 (ties go to the lowest index)
    assert a["item_topic"].tolist() == [[0, 1, 0]]
    assert a["mask"].tolist() == [[True, True, True]]
    assert a["feedback"].shape == (1, H)
    assert a["new_user"].tolist() == [True]  # slot 0's user left at step 2
    assert a["topic_names"].tolist() == ["news", "sport"]
    assert str(a["source"]) == "attention weight"  # the function names no source
    fn.source = "content-match weight"  # type: ignore[attr-defined]
    named = _recorder(attention_fn=fn)
    for r in STEPS[:2]:
        named.record(r)
    assert str(named.attention_arrays()["source"]) == "content-match weight"


# --------------------------------------------------------------------------------------------
# personalisation columns
# --------------------------------------------------------------------------------------------
def test_personalization_gain_by_hand() -> None:
    """Gain = mean of R(u, a_u) - mean over u != v of R(u, a_v)."""
    from driftrec.experiments.recorder import personalization_gain

    rewards = np.array([[0.9, 0.1, 0.2], [0.3, 0.6, 0.3], [0.0, 0.3, 0.3]])
    # diagonal mean (0.9 + 0.6 + 0.3) / 3 = 0.6; off-diagonal (0.1+0.2+0.3+0.3+0.0+0.3)/6 = 0.2
    assert personalization_gain(rewards) == pytest.approx(0.4)
    assert personalization_gain(np.full((4, 4), 0.37)) == pytest.approx(0.0)
    assert math.isnan(personalization_gain(np.ones((1, 1))))


@pytest.mark.parametrize("agent", ["population-best", "oracle", "random"])
def test_personalization_columns_from_a_simulator(agent: str, tiny_config: Any) -> None:
    """population-best's gain is exactly 0 with one item; the oracle personalises (gain > 0)."""
    from driftrec.agents.baselines import make_baseline
    from driftrec.agents.online import run_online
    from driftrec.envs.gym_env import DriftRecVectorEnv

    env = DriftRecVectorEnv(6, tiny_config)
    env.reset(seed=0)
    built = make_baseline(agent, env, seed=0)
    sim = env.sim
    recorder = StepRecorder(
        sim.catalog,
        6,
        sim.layout,
        interest_weight=tiny_config.choice.interest_weight,
        log_every=4,
        sim=sim,
        greedy_fn=lambda obs: built.predict(obs, deterministic=True)[0],
    )
    run_online(built, env, 8, on_step=recorder.record)
    gains = [row["personal_gain"] for row in recorder.rows]
    greedy = [row["greedy_personal_gain"] for row in recorder.rows]
    distinct = [row["greedy_distinct_items"] for row in recorder.rows]
    ratio = [row["greedy_normalized_reward"] for row in recorder.rows]
    assert len(gains) == 2 and all(math.isfinite(g) for g in gains + greedy)
    # the greedy choices' oracle ratio: 1 for the oracle itself, below it for anything else
    assert all(0.0 < r <= 1.0 + 1e-9 for r in ratio)
    if agent == "oracle":
        assert ratio == pytest.approx([1.0, 1.0], abs=1e-9)
    else:
        assert max(ratio) < 1.0
    if agent == "population-best":
        assert gains == pytest.approx([0.0, 0.0], abs=1e-12)  # the same slate for everyone
        assert greedy == pytest.approx([0.0, 0.0], abs=1e-12) and distinct == [1.0, 1.0]
        assert [row["distinct_items"] for row in recorder.rows] == [1.0, 1.0]
    elif agent == "oracle":
        assert min(gains) > 0.0 and min(greedy) > 0.0 and max(distinct) > 1.0


def test_gain_users_is_validated() -> None:
    """gain_users must be an integer >= 2 (a gain needs two users)."""
    import re

    msg = "'gain_users' must be an integer >= 2 (got 1)"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        StepRecorder(_catalog(), B, LAYOUT, interest_weight=W, log_every=2, gain_users=1)
