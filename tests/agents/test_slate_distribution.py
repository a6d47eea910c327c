"""Tests of driftrec.agents.slate_distribution: the Plackett-Luce slate distribution."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3 import PPO
from torch.distributions import Categorical

from driftrec.agents.attention import AttentionConfig
from driftrec.agents.sb3_policy import recommender_policy_kwargs
from driftrec.agents.slate_distribution import (
    PlackettLuceDistribution,
    ScoreCategoricalDistribution,
    all_ordered_slates,
    plackett_luce_entropy_exact,
    plackett_luce_log_prob,
)
from driftrec.envs.config import EnvConfig
from driftrec.envs.sb3 import DriftRecSB3VecEnv

FLOOR = torch.finfo(torch.float32).min
N, K = 5, 3  # tiny catalog and slate: 5 * 4 * 3 = 60 ordered slates
TINY = AttentionConfig(embed_dim=8, num_heads=2, num_layers=1, ff_dim=16)


def _scores() -> torch.Tensor:
    """Four score rows over 5 items: plain, one masked item, two masked, only two valid."""
    s = torch.tensor(
        [
            [0.3, -1.2, 2.0, 0.0, 0.7],
            [1.5, 0.2, -0.4, 0.9, -2.0],
            [-0.5, 0.1, 0.8, 1.1, 0.4],
            [0.2, -0.3, 1.0, 0.6, -0.1],
        ]
    )
    s[1, 3] = FLOOR
    s[2, [0, 4]] = FLOOR
    s[3, [0, 1, 4]] = FLOOR  # 2 valid items < K: the third position is a forced fill
    return s


def _brute_log_prob(row: np.ndarray, slate: tuple[int, ...]) -> float:
    """log p(slate) by sequential softmax over the remaining valid items, in float64."""
    valid = row > FLOOR / 2
    remaining = set(np.flatnonzero(valid).tolist())
    fill = [i for i in range(len(row)) if not valid[i]]  # masked items in index order
    total = 0.0
    for item in slate:
        if remaining:
            if item not in remaining:
                return -math.inf
            z = sum(math.exp(row[i]) for i in remaining)
            total += row[item] - math.log(z)
            remaining.discard(item)
        else:
            if item != fill.pop(0):
                return -math.inf
    return total


# --------------------------------------------------------------------------------------------
def test_log_prob_matches_brute_force() -> None:
    """log_prob equals the sequential-softmax probability of every ordered slate (N=5, k=3)."""
    s = _scores()
    slates = all_ordered_slates(N, K)
    assert slates.shape == (60, K)
    for b in range(s.shape[0]):
        rows = s[b : b + 1].expand(60, N)
        lp = plackett_luce_log_prob(rows, slates).double().numpy()
        want = np.array([_brute_log_prob(s[b].double().numpy(), tuple(a)) for a in slates.tolist()])
        possible = np.isfinite(want)
        np.testing.assert_allclose(lp[possible], want[possible], rtol=1e-5, atol=1e-5)
        assert (lp[~possible] <= FLOOR / 2).all()  # impossible slates: ~finfo.min, not NaN
        assert np.isfinite(lp).all()


def test_repeated_items_have_probability_zero() -> None:
    """A slate that repeats an item gets log-probability ~finfo.min (finite, probability 0)."""
    s = _scores()[:1]
    lp = plackett_luce_log_prob(s, torch.tensor([[2, 2, 0]]))
    assert torch.isfinite(lp).all() and float(lp[0]) <= FLOOR / 2


def test_probabilities_sum_to_one() -> None:
    """exp(log_prob) over all 60 ordered slates sums to 1 in every row, masked rows included."""
    s = _scores()
    slates = all_ordered_slates(N, K)
    lp = plackett_luce_log_prob(s.repeat_interleave(60, dim=0), slates.repeat(4, 1))
    np.testing.assert_allclose(lp.reshape(4, 60).exp().sum(dim=1).numpy(), 1.0, rtol=1e-5)


def test_exact_entropy_matches_enumeration() -> None:
    """entropy() for few orderings equals -sum p log p over the brute-force slate probabilities."""
    s = _scores()
    dist = PlackettLuceDistribution(N, K).proba_distribution(s)
    assert dist.num_orderings == 60 <= dist.exact_max_orderings
    got = dist.entropy().double().numpy()
    for b in range(4):
        row = s[b].double().numpy()
        p = np.exp([_brute_log_prob(row, a) for a in itertools.permutations(range(N), K)])
        want = -np.sum(p[p > 0] * np.log(p[p > 0]))
        assert got[b] == pytest.approx(want, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(plackett_luce_entropy_exact(s, K).numpy(), got, rtol=1e-6)
    # row 3: two valid items (scores 1.0, 0.6) in either order, then a forced fill: a coin flip
    q = 1.0 / (1.0 + math.exp(-0.4))
    assert got[3] == pytest.approx(-q * math.log(q) - (1 - q) * math.log(1 - q), rel=1e-5)


def test_entropy_k1_is_the_categorical_entropy() -> None:
    """With k = 1 the entropy is the softmax's entropy (exact, whatever N)."""
    s = torch.randn(3, 200, generator=torch.Generator().manual_seed(0))
    dist = PlackettLuceDistribution(200, 1, exact_max_orderings=0).proba_distribution(s)
    p = torch.softmax(s, dim=1)
    torch.testing.assert_close(dist.entropy(), -(p * p.log()).sum(dim=1))


def test_chain_rule_estimate_is_unbiased() -> None:
    """Along fresh samples, sum_j H(A_j | a_<j) averages to the exact entropy (N=6, k=3)."""
    torch.manual_seed(0)
    s = torch.tensor([[1.0, 0.2, -0.5, 2.0, 0.0, -1.0]])
    exact = float(plackett_luce_entropy_exact(s, 3)[0])
    dist = PlackettLuceDistribution(6, 3, exact_max_orderings=0)
    rows = s.expand(20_000, 6)
    dist.proba_distribution(rows)
    est = dist.entropy()  # no log_prob yet: along a fresh Gumbel-top-k sample per row
    mean, sem = float(est.mean()), float(est.std() / math.sqrt(est.numel()))
    assert sem < 0.01
    assert abs(mean - exact) < 5 * sem  # seeded: a fixed draw, checked at 5 standard errors
    # after log_prob the estimate runs along those actions: H(A_0) + H(A_1 | 3) + H(A_2 | 3, 0)
    dist.proba_distribution(s)
    dist.log_prob(torch.tensor([[3, 0, 1]]))
    want = 0.0
    for removed in ([], [3], [3, 0]):
        p = torch.softmax(s[0, [i for i in range(6) if i not in removed]].double(), dim=0)
        want += float(-(p * p.log()).sum())
    assert float(dist.entropy()[0]) == pytest.approx(want, rel=1e-5)


def test_samples_are_distinct_and_never_masked() -> None:
    """Gumbel-top-k slates never repeat an item and never pick a masked one (N=50, k=10)."""
    torch.manual_seed(1)
    s = torch.randn(512, 50)
    s[:, :20] = FLOOR  # 30 valid items >= k
    dist = PlackettLuceDistribution(50, 10).proba_distribution(s)
    a = dist.sample()
    assert a.shape == (512, 10) and a.dtype == torch.long
    assert all(len(set(row)) == 10 for row in a.tolist())
    assert (a >= 20).all()


def test_sample_frequencies_match_probabilities() -> None:
    """40,000 seeded samples (N=5, k=2): every slate's frequency within 5 sigma of its p."""
    torch.manual_seed(2)
    s = torch.tensor([[0.5, -0.3, 1.2, 0.0, FLOOR]])
    num = 40_000
    dist = PlackettLuceDistribution(N, 2).proba_distribution(s.expand(num, N))
    a = dist.sample()
    slates = all_ordered_slates(N, 2)
    p = plackett_luce_log_prob(s.expand(len(slates), N), slates).exp().double().numpy()
    codes = (a[:, 0] * N + a[:, 1]).numpy()
    counts = np.bincount(codes, minlength=N * N)[(slates[:, 0] * N + slates[:, 1]).numpy()]
    assert counts.sum() == num  # no slate outside the 20 ordered pairs (no repeats)
    freq = counts / num
    sigma = np.sqrt(p * (1 - p) / num)
    assert (np.abs(freq - p) <= 5 * sigma + 1e-12).all()
    assert counts[(slates == 4).any(dim=1).numpy()].sum() == 0  # the masked item never


def test_mode_is_top_k() -> None:
    """mode() is the k highest valid scores in decreasing order; short rows fill with masked."""
    s = _scores()
    dist = PlackettLuceDistribution(N, K).proba_distribution(s)
    mode = dist.mode()
    assert mode.tolist() == [[2, 4, 0], [0, 1, 2], [3, 2, 1], [2, 3, 0]]  # row 3: fill item 0
    # and it is the most likely ordered slate
    slates = all_ordered_slates(N, K)
    lp = plackett_luce_log_prob(s.repeat_interleave(60, dim=0), slates.repeat(4, 1)).reshape(4, 60)
    torch.testing.assert_close(dist.log_prob(mode), lp.max(dim=1).values)


def test_forced_fill_when_fewer_valid_items_than_k() -> None:
    """A row with 2 valid items of 5 (k=3): samples take both, then masked item 0, log p finite."""
    torch.manual_seed(3)
    s = _scores()[3:].expand(200, N)
    dist = PlackettLuceDistribution(N, K).proba_distribution(s)
    a = dist.sample()
    assert set(map(tuple, a[:, :2].tolist())) == {(2, 3), (3, 2)}
    assert (a[:, 2] == 0).all()
    assert torch.isfinite(dist.log_prob(a)).all()


def test_gradients_finite_with_masked_items() -> None:
    """log_prob and entropy backpropagate finite gradients; masked items get exactly zero."""
    torch.manual_seed(4)
    raw = torch.randn(64, 40, requires_grad=True)
    mask = torch.zeros(64, 40, dtype=torch.bool)
    mask[:, ::3] = True
    mask[0, :35] = True  # one row with 5 valid items < k = 6
    s = raw.masked_fill(mask, FLOOR)
    dist = PlackettLuceDistribution(40, 6, exact_max_orderings=0).proba_distribution(s)
    a = dist.sample()
    loss = -(dist.log_prob(a).mean() + 0.1 * dist.entropy().mean())
    loss.backward()
    assert raw.grad is not None and torch.isfinite(raw.grad).all()
    assert (raw.grad[mask] == 0).all()
    assert raw.grad[~mask].abs().sum() > 0


def test_bad_inputs_raise() -> None:
    """Bad sizes and score shapes raise ValueErrors that name the field and the value."""
    with pytest.raises(ValueError, match=re.escape("'slate_size' must be at most 'num_items' (5)")):
        PlackettLuceDistribution(5, 6)
    with pytest.raises(ValueError, match=re.escape("'num_items' must be an integer >= 1 (got 0)")):
        PlackettLuceDistribution(0, 1)
    with pytest.raises(ValueError, match=re.escape("must have shape (batch, 5) (got (2, 4))")):
        PlackettLuceDistribution(5, 2).proba_distribution(torch.zeros(2, 4))


# -- one item: ScoreCategoricalDistribution ------------------------------------------------
def _masked_scores(rows: int = 64, n: int = 40, seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    raw = torch.randn(rows, n, generator=gen) * 2.0
    mask = torch.zeros(rows, n, dtype=torch.bool)
    mask[:, ::4] = True
    mask[0, :-1] = True  # a row with a single valid item (the last)
    return raw, mask


@pytest.mark.parametrize("ent_coef", [0.0, 0.3])
def test_score_categorical_matches_torch_categorical(ent_coef: float) -> None:
    """log_prob, entropy and their gradients equal torch's Categorical's (masked items too)."""
    raw, mask = _masked_scores()
    actions = torch.multinomial(torch.softmax(raw.masked_fill(mask, FLOOR), 1), 1).squeeze(1)
    grads = []
    for make in (
        lambda s: Categorical(logits=s),
        lambda s: ScoreCategoricalDistribution(40).proba_distribution(s),
    ):
        x = raw.clone().requires_grad_(True)
        dist = make(x.masked_fill(mask, FLOOR))
        lp, ent = dist.log_prob(actions), dist.entropy()
        (-(lp * torch.linspace(-1, 1, 64)).mean() - ent_coef * ent.mean()).backward()
        grads.append((lp.detach(), ent.detach(), x.grad))
    (lp0, ent0, g0), (lp1, ent1, g1) = grads
    torch.testing.assert_close(lp1, lp0)
    torch.testing.assert_close(ent1, ent0)
    no_grad = ScoreCategoricalDistribution(40).proba_distribution(raw.masked_fill(mask, FLOOR))
    torch.testing.assert_close(no_grad.log_prob(actions), lp0)  # the rollout's path
    torch.testing.assert_close(no_grad.entropy(), ent0)
    torch.testing.assert_close(g1, g0)
    assert torch.isfinite(g1).all() and (g1[mask] == 0).all()
    assert float(ent1[0]) == 0.0  # one valid item: no uncertainty


def test_score_categorical_samples_follow_the_probabilities() -> None:
    """60,000 seeded draws: each item's frequency within 5 sigma of p; masked items never."""
    torch.manual_seed(6)
    s = torch.tensor([[0.5, -0.3, FLOOR, 1.2, 0.0, FLOOR]])
    num = 60_000
    dist = ScoreCategoricalDistribution(6).proba_distribution(s.expand(num, 6))
    a = dist.sample()
    assert a.shape == (num,) and a.dtype == torch.long
    p = torch.softmax(s[0].double(), 0).numpy()
    freq = np.bincount(a.numpy(), minlength=6) / num
    assert freq[2] == 0.0 and freq[5] == 0.0
    assert (np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / num) + 1e-12).all()
    torch.manual_seed(6)
    assert torch.equal(dist.sample(), a)  # the seed fixes the draws
    assert dist.mode().tolist() == [3] * num


def test_score_categorical_rejects_bad_shapes() -> None:
    """A wrong catalog width or size names the field and the value."""
    with pytest.raises(ValueError, match=re.escape("'num_items' must be an integer >= 1 (got 0)")):
        ScoreCategoricalDistribution(0)
    with pytest.raises(ValueError, match=re.escape("must have shape (batch, 5) (got (2, 4))")):
        ScoreCategoricalDistribution(5).proba_distribution(torch.zeros(2, 4))


# -- the SB3 policy ------------------------------------------------------------------------
NUM_USERS = 4
ITEMS = 32
SLATE = 3


pytestmark = pytest.mark.usefixtures("shared_text_cache")


def _slate_config(**overrides: Any) -> EnvConfig:
    cfg = EnvConfig().with_overrides(
        num_items=ITEMS, num_topics=4, history_len=2 * SLATE, max_steps=20, slate_size=SLATE
    )
    return cfg.with_overrides(**overrides) if overrides else cfg


def _ppo(env: DriftRecSB3VecEnv, emb: str, seed: int = 0, **policy: Any) -> PPO:
    kwargs = recommender_policy_kwargs(env, attention=TINY, embeddings_file=emb, **policy)
    return PPO(
        "AttentionRecommenderPolicy",
        env,
        policy_kwargs=kwargs,
        n_steps=16,
        batch_size=32,
        n_epochs=2,
        seed=seed,
        device="cpu",
    )


def test_ppo_learns_with_plackett_luce_and_round_trips(emb_file: str, tmp_path: Path) -> None:
    """PPO learns 320 steps on slates with PL (no repeated items), and save/load keeps it."""
    env = DriftRecSB3VecEnv(NUM_USERS, _slate_config(), seed=0)
    model = _ppo(env, emb_file)
    assert isinstance(model.policy.action_dist, PlackettLuceDistribution)
    assert sum(p.numel() for p in model.policy.action_net.parameters()) == 0
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.learn(320)
    assert model.num_timesteps == 320
    assert any(not torch.equal(before[k], v) for k, v in model.policy.state_dict().items())
    acts = model.rollout_buffer.actions.astype(np.int64).reshape(-1, SLATE)
    assert all(len(set(row)) == SLATE for row in acts.tolist())  # a rollout: no repeats
    assert np.isfinite(model.logger.name_to_value["train/entropy_loss"])
    obs = env.reset()
    before_actions, _ = model.predict(obs, deterministic=True)
    path = tmp_path / "pl.zip"
    model.save(path)
    loaded = PPO.load(path, env=env, device="cpu")
    assert loaded.policy.slate_distribution == "plackett-luce"
    assert isinstance(loaded.policy.action_dist, PlackettLuceDistribution)
    after_actions, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(before_actions, after_actions)
    with torch.no_grad():
        o = torch.as_tensor(obs)
        a = torch.as_tensor(after_actions)
        _, lp_model, _ = model.policy.evaluate_actions(o, a)
        _, lp_loaded, _ = loaded.policy.evaluate_actions(o, a)
    torch.testing.assert_close(lp_model, lp_loaded)


def test_same_seed_same_parameters_with_plackett_luce(emb_file: str) -> None:
    """Two PL PPO runs with the same seed end with identical parameters (torch's seeded RNG)."""
    runs = []
    for _ in range(2):
        model = _ppo(DriftRecSB3VecEnv(NUM_USERS, _slate_config(), seed=0), emb_file)
        model.learn(2 * 16 * NUM_USERS)
        runs.append(model.policy.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_policy_log_prob_is_plackett_luce_of_the_scores(emb_file: str) -> None:
    """evaluate_actions' log-probability is the PL log-probability of the recommender's scores."""
    env = DriftRecSB3VecEnv(NUM_USERS, _slate_config(), seed=0)
    model = _ppo(env, emb_file)
    obs = torch.as_tensor(env.reset())
    with torch.no_grad():
        actions, _, log_prob = model.policy(obs)
        scores = model.policy.recommender(obs).scores
        _, lp, entropy = model.policy.evaluate_actions(obs, actions.float())
    assert actions.shape == (NUM_USERS, SLATE)
    torch.testing.assert_close(log_prob, plackett_luce_log_prob(scores, actions))
    torch.testing.assert_close(lp, log_prob)
    assert entropy is not None and (entropy > 0).all()
    assert (entropy <= math.log(math.perm(ITEMS, SLATE)) + 1e-4).all()


def test_unknown_slate_distribution_and_maskable_raise(emb_file: str) -> None:
    """A bad slate_distribution, or PL for MaskablePPO, raises a ValueError naming the choices."""
    env = DriftRecSB3VecEnv(NUM_USERS, _slate_config(), seed=0)
    msg = (
        "'slate_distribution' must be one of ['plackett-luce', 'independent'] for "
        "AttentionActorCriticPolicy (got 'gumbel')"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        _ppo(env, emb_file, slate_distribution="gumbel")
    kwargs = recommender_policy_kwargs(
        env, attention=TINY, embeddings_file=emb_file, slate_distribution="plackett-luce"
    )
    with pytest.raises(ValueError, match=re.escape("must be one of ['independent']")):
        MaskablePPO("AttentionRecommenderPolicy", env, policy_kwargs=kwargs)
    model = MaskablePPO(
        "AttentionRecommenderPolicy",
        env,
        policy_kwargs=recommender_policy_kwargs(env, attention=TINY, embeddings_file=emb_file),
    )
    assert model.policy.slate_distribution == "independent"


def test_registry_passes_slate_distribution(tiny_slate_config: EnvConfig) -> None:
    """build_agent hands policy_kwargs['slate_distribution'] to the attention policy."""
    from driftrec.agents.registry import build_agent

    for choice, dist_cls in (("plackett-luce", PlackettLuceDistribution), ("independent", None)):
        built = build_agent(
            "attention-ppo",
            tiny_slate_config,
            num_envs=2,
            seed=0,
            agent_kwargs={"policy_kwargs": {"slate_distribution": choice}},
        )
        policy = built.agent.policy
        assert policy.slate_distribution == choice
        assert isinstance(policy.action_dist, PlackettLuceDistribution) == (dist_cls is not None)
