"""Hand-computed tests of the click model (attraction, MNL slate choice, inverse-CDF sampling)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftrec.envs.choice import (
    attraction,
    first_occurrence,
    position_weights,
    sample_choice,
    slate_click_probs,
)
from driftrec.envs.config import ChoiceConfig, DriftConfig, EnvConfig
from driftrec.envs.core import BatchSimulator
from driftrec.envs.drift import Boredom


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_position_weights_are_geometric() -> None:
    """w_j = position_bias ** j."""
    np.testing.assert_array_equal(position_weights(4, 0.5), [1.0, 0.5, 0.25, 0.125])
    np.testing.assert_array_equal(position_weights(1, 0.3), [1.0])


def test_single_item_probability_is_sigmoid() -> None:
    """With one item, P(click) = sigmoid(s - s0) and P(no click) = 1 - that."""
    cfg = ChoiceConfig(no_click_score=1.5)
    scores = np.array([[0.7], [1.5], [-3.0]])
    probs = slate_click_probs(scores, np.ones((3, 1), dtype=bool), cfg)
    # sigmoid(0.7 - 1.5) = 1 / (1 + e^0.8) = 0.31002551887238755; s == s0 gives 1/2
    np.testing.assert_allclose(probs[:, 0], [0.31002551887238755, 0.5, _sigmoid(-4.5)], rtol=1e-14)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-14)


def test_three_slate_mnl_with_position_bias() -> None:
    """Slate scores [1, 0, 2], s0 = 0.5, bias 0.5 give the hand-computed MNL probabilities."""
    cfg = ChoiceConfig(slate_size=3, no_click_score=0.5, position_bias=0.5)
    # weights w = [1, 0.5, 0.25]
    # numerators: 1 * e^1 = 2.718281828, 0.5 * e^0 = 0.5, 0.25 * e^2 = 1.847264025
    # no click:   e^0.5 = 1.648721271
    # denominator: 2.718281828 + 0.5 + 1.847264025 + 1.648721271 = 6.714267124
    # probabilities: 0.404851606, 0.074468291, 0.275125191, no click 0.245554912
    probs = slate_click_probs(np.array([[1.0, 0.0, 2.0]]), np.ones((1, 3), dtype=bool), cfg)
    np.testing.assert_allclose(
        probs[0],
        [0.4048516060355116, 0.07446829129285247, 0.27512519097719784, 0.24555491169443802],
        rtol=1e-12,
    )
    denom = math.e + 0.5 + 0.25 * math.e**2 + math.exp(0.5)
    assert probs[0, 1] == pytest.approx(0.5 / denom, rel=1e-14)


def test_slate_probabilities_are_stable_for_large_scores() -> None:
    """Huge attraction scores give finite probabilities that sum to 1 (max subtraction)."""
    cfg = ChoiceConfig(slate_size=3, no_click_score=0.0, position_bias=1.0)
    probs = slate_click_probs(np.array([[800.0, 800.0, -800.0]]), np.ones((1, 3), bool), cfg)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs[0], [0.5, 0.5, 0.0, 0.0], atol=1e-300)


def test_first_occurrence_marks_repeated_items() -> None:
    """Only the first copy of an item in a row is marked True."""
    slate = np.array([[3, 3, 5, 3], [1, 2, 1, 2], [4, 5, 6, 7]])
    np.testing.assert_array_equal(
        first_occurrence(slate),
        [[True, False, True, False], [True, True, False, False], [True, True, True, True]],
    )
    np.testing.assert_array_equal(first_occurrence(np.array([[9], [9]])), [[True], [True]])


def test_duplicate_copies_have_zero_probability() -> None:
    """A repeated item counts once: later copies are never clicked and leave the rest unchanged."""
    cfg = ChoiceConfig(slate_size=3, no_click_score=0.5, position_bias=0.5)
    slate = np.array([[7, 7, 2]])
    scores = np.array([[1.0, 1.0, 2.0]])
    probs = slate_click_probs(scores, first_occurrence(slate), cfg)
    # numerators: e^1, 0 (copy), 0.25 e^2; no click e^0.5
    denom = math.e + 0.25 * math.e**2 + math.exp(0.5)
    np.testing.assert_allclose(
        probs[0], [math.e / denom, 0.0, 0.25 * math.e**2 / denom, math.exp(0.5) / denom]
    )


def test_invalid_items_have_zero_probability() -> None:
    """Invalid (unreleased) items are never clicked; an all-invalid slate is a sure no-click."""
    slate_cfg = ChoiceConfig(slate_size=2, no_click_score=0.0)
    probs = slate_click_probs(
        np.array([[5.0, 0.0], [5.0, 5.0]]), np.array([[False, True], [False, False]]), slate_cfg
    )
    # row 0: only position 1 is valid: e^0 / (0.85 e^0 + e^0) ... weight 0.85 at position 1
    np.testing.assert_allclose(probs[0], [0.0, 0.85 / 1.85, 1.0 / 1.85])
    np.testing.assert_array_equal(probs[1], [0.0, 0.0, 1.0])
    single = slate_click_probs(np.array([[9.0]]), np.array([[False]]), ChoiceConfig())
    np.testing.assert_array_equal(single, [[0.0, 1.0]])


def test_sample_choice_inverse_cdf() -> None:
    """sample_choice returns the first column whose cumulative probability exceeds u."""
    probs = np.tile([0.25, 0.25, 0.0, 0.5], (7, 1))  # cdf = [0.25, 0.5, 0.5, 1.0]
    u = np.array([0.0, 0.2499, 0.25, 0.4999, 0.5, 0.75, 0.999999])
    # u < 0.25 -> 0; 0.25 <= u < 0.5 -> 1; column 2 has probability 0 and is skipped -> 3
    np.testing.assert_array_equal(sample_choice(probs, u), [0, 0, 1, 1, 3, 3, 3])


def test_sample_choice_single_item_clicks_iff_u_below_p() -> None:
    """For one item, the click (column 0) happens iff u < p."""
    probs = np.array([[0.3, 0.7]] * 4)
    np.testing.assert_array_equal(
        sample_choice(probs, np.array([0.0, 0.29, 0.3, 0.9])), [0, 0, 1, 1]
    )


def test_sample_choice_never_exceeds_no_click_column() -> None:
    """Rounding in the cumulative sum can never produce an index past the no-click column."""
    probs = np.array([[0.1] * 10]) * (1 - 1e-15)  # sums to slightly less than 1
    u = np.array([np.nextafter(1.0, 0.0)])  # the largest uniform below 1 exceeds the whole cdf
    assert sample_choice(probs, u)[0] == 9


def test_sample_choice_frequencies_match_probabilities() -> None:
    """With many uniform draws the chosen columns follow probs (within 5 standard errors)."""
    p = np.array([0.1, 0.4, 0.2, 0.3])
    n = 40_000
    u = np.random.default_rng(0).random(n)
    freq = np.bincount(sample_choice(np.tile(p, (n, 1)), u), minlength=4) / n
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / n))


def test_attraction_is_a_dot_product_plus_bias() -> None:
    """attraction = <user_vector, z> + bias, computed per user and position."""
    uv = np.array([[1.0, -2.0], [0.5, 0.5]])
    topics = np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.2, 0.8], [0.0, 1.0]]])
    bias = np.array([[0.1, -0.2], [0.0, 0.3]])
    # user 0: 0.5 - 1 + 0.1 = -0.4 ; 1 - 0.2 = 0.8
    # user 1: 0.1 + 0.4 + 0 = 0.5 ; 0.5 + 0.3 = 0.8
    np.testing.assert_allclose(attraction(uv, topics, bias), [[-0.4, 0.8], [0.5, 0.8]])


def test_simulator_uses_the_documented_attraction(tiny_config: EnvConfig) -> None:
    """The core's click_prob is sigmoid(iw <theta, z> + qw (q - 0.5) - bw <b, z> - s0)."""
    cfg = tiny_config.with_overrides(
        choice=ChoiceConfig(
            interest_weight=1.3, quality_weight=0.7, boredom_weight=0.4, no_click_score=0.2
        ),
        # boredom only exists with its process; gain 0 and decay 0 keep the values set below
        drift=DriftConfig(processes=(Boredom(gain=0.0, decay=0.0),)),
    )
    sim = BatchSimulator(cfg, num_users=3)
    sim.seed([0, 1, 2])
    rng = np.random.default_rng(1)
    theta = rng.normal(size=(3, 4))
    boredom = rng.random((3, 4))
    sim.state.interest[:] = theta
    sim.state.boredom[:] = boredom
    action = np.array([0, 7, 31])
    result = sim.step(action)
    z = sim.catalog.topics[action]
    q = sim.catalog.quality[action]
    expected = []
    for u in range(3):
        s = 1.3 * theta[u] @ z[u] + 0.7 * (q[u] - 0.5) - 0.4 * boredom[u] @ z[u]
        expected.append(_sigmoid(s - 0.2))
    np.testing.assert_allclose(result.click_prob, expected, rtol=1e-12)
    np.testing.assert_array_equal(result.interest, theta)
