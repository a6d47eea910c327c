"""The LongTerm scenarios reward planning: the privileged planner beats the greedy oracle.

Slow (a few seconds per scenario): run with ``python3 dev.py test -m slow -s``; it prints the
per-user returns it compares.
"""

from __future__ import annotations

import numpy as np
import pytest

from driftrec.agents.baselines import make_baseline
from driftrec.envs.gym_env import DriftRecVectorEnv


def _per_user_return(name: str, scenario: str, users: int, seed: int) -> tuple[float, float]:
    """Mean return and stay length of the first user of every slot (a whole 100-step stay)."""
    env = DriftRecVectorEnv(users, scenario=scenario)
    agent = make_baseline(name, env, seed=seed)
    obs, _ = env.reset(seed=seed)
    total = np.zeros(users)
    length = np.zeros(users)
    alive = np.ones(users, dtype=bool)
    while alive.any():
        action, _ = agent.predict(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += reward * alive
        length += alive
        alive &= ~(terminated | truncated)
    return float(total.mean()), float(length.mean())


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["LongTerm", "LongTermBoredom"])
def test_planner_beats_greedy_oracle_by_15_percent(scenario: str) -> None:
    """Per-user return over a whole stay (max 100 steps), 512 users, identical user streams."""
    greedy, greedy_len = _per_user_return("oracle", scenario, 512, seed=7)
    planner, planner_len = _per_user_return("planner", scenario, 512, seed=7)
    rand, rand_len = _per_user_return("random", scenario, 512, seed=7)
    gain = planner / greedy - 1.0
    print(
        f"\n{scenario}: per-user return random {rand:.2f} (stay {rand_len:.1f}), greedy oracle "
        f"{greedy:.2f} (stay {greedy_len:.1f}), planner {planner:.2f} (stay {planner_len:.1f}): "
        f"planner/greedy = {planner / greedy:.3f} ({gain:+.1%})"
    )
    assert gain >= 0.15


def test_planner_equals_greedy_without_long_term_state() -> None:
    """With neither satisfaction nor boredom the planner is the greedy oracle."""
    env = DriftRecVectorEnv(64, scenario="Stationary")
    env.reset(seed=3)
    planner = make_baseline("planner-first-order", env)
    oracle = make_baseline("oracle", env)
    obs, _ = env.reset(seed=3)
    for _ in range(20):
        a, _ = planner.predict(obs)
        b, _ = oracle.predict(obs)
        np.testing.assert_array_equal(a, b)
        obs, *_ = env.step(a)


def test_planner_is_privileged_validates_and_fills_short_slates() -> None:
    """Privileged; a bad lookahead names the field; with 6 of 12 items released a slate of 10
    holds released items only (repeated)."""
    env = DriftRecVectorEnv(
        3,
        scenario="LongTermBoredom",
        num_items=12,
        slate_size=10,
        new_item_fraction=0.5,
        history_len=10,
    )
    obs, _ = env.reset(seed=0)
    agent = make_baseline("planner-first-order", env)
    assert agent.privileged
    released = env.catalog.release_step <= 0
    assert released.sum() == 6
    actions, _ = agent.predict(obs)
    assert actions.shape == (3, 10) and released[actions].all()
    with pytest.raises(ValueError, match=r"^'lookahead' must be a finite number >= 0 \(got -1\)$"):
        make_baseline("planner-first-order", env, lookahead=-1)


def test_planner_values_by_hand() -> None:
    """v_i = p_i (1 + p*(1 - p*) w g (q_i - 1/2) H) with satisfaction only, checked by hand."""
    env = DriftRecVectorEnv(2, scenario="LongTerm", num_items=30)
    env.reset(seed=1)
    agent = make_baseline("planner-first-order", env)
    sim = env.sim
    scores = sim.attraction_all()
    p = 1.0 / (1.0 + np.exp(1.5 - scores))
    p_best = p.max(axis=1, keepdims=True)
    q = np.asarray(env.catalog.quality)
    keep = 0.95  # decay 0.05, 100 steps left
    horizon = keep * (1 - keep**100) / 0.05
    expected = p * (1 + p_best * (1 - p_best) * 1.5 * 0.2 * (q - 0.5) * horizon)
    np.testing.assert_allclose(agent.values(), expected, rtol=1e-12)
