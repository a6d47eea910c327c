"""Tests of driftrec.agents.sb3_policy: the attention recommender as an SB3 policy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, DQN, PPO

from driftrec.agents.attention import AttentionConfig, parse_observation
from driftrec.agents.sb3_policy import (
    AttentionActorCriticPolicy,
    AttentionDQNPolicy,
    MaskableAttentionActorCriticPolicy,
    recommender_policy_kwargs,
)
from driftrec.envs.config import EnvConfig
from driftrec.envs.sb3 import DriftRecSB3VecEnv

torch.set_num_threads(1)

N = 32  # catalog size
E = 6  # width of the emb_file fixture (tests/agents/conftest.py)
H = 4  # history length of the single-item world
B = 4  # user slots
TINY = AttentionConfig(embed_dim=8, num_heads=2, num_layers=1, ff_dim=16)
PPO_TINY: dict[str, Any] = {"n_steps": 8, "batch_size": 32, "n_epochs": 1}
MISSING_TABLE = (
    "AttentionRecommenderPolicy needs policy_kwargs['item_table']; build the policy_kwargs "
    "with driftrec.agents.sb3_policy.recommender_policy_kwargs(env)"
)


pytestmark = pytest.mark.usefixtures("shared_text_cache")


def _config(slate: int = 1, **overrides: Any) -> EnvConfig:
    base = EnvConfig().with_overrides(num_items=N, num_topics=4, history_len=H, max_steps=20)
    if slate > 1:
        base = base.with_overrides(slate_size=slate, history_len=2 * slate)
    return base.with_overrides(**overrides) if overrides else base


def _env(config: EnvConfig | None = None, seed: int = 0) -> DriftRecSB3VecEnv:
    return DriftRecSB3VecEnv(B, config if config is not None else _config(), seed=seed)


def _ppo(
    env: DriftRecSB3VecEnv,
    emb: str | None,
    seed: int = 0,
    policy_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> PPO:
    extra = dict(policy_kwargs or {})
    attention = extra.pop("attention", TINY)
    policy_kwargs = recommender_policy_kwargs(
        env, attention=attention, embeddings_file=emb, **extra
    )
    return PPO(
        "AttentionRecommenderPolicy",
        env,
        policy_kwargs=policy_kwargs,
        seed=seed,
        device="cpu",
        **{**PPO_TINY, **kwargs},
    )


def _params(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


# --------------------------------------------------------------------------------------------
def test_discrete_action_shapes(emb_file: str) -> None:
    """On Discrete(N), predict gives (B,) int item ids in [0, N) and the logits are (B, N)."""
    env = _env()
    model = _ppo(env, emb_file)
    assert isinstance(model.policy, AttentionActorCriticPolicy)
    assert env.action_space == spaces.Discrete(N)
    obs = env.reset()
    actions, _ = model.predict(obs)
    assert actions.shape == (B,) and np.issubdtype(actions.dtype, np.integer)
    assert ((actions >= 0) & (actions < N)).all()
    with torch.no_grad():
        dist = model.policy.get_distribution(torch.as_tensor(obs))
    assert dist.distribution.logits.shape == (B, N)


def test_slate_action_shapes(emb_file: str) -> None:
    """With slate_distribution="independent", MultiDiscrete([N] * 3) gives 3 categoricals over N."""
    env = _env(_config(slate=3))
    assert env.action_space.shape == (3,)
    model = _ppo(env, emb_file, policy_kwargs={"slate_distribution": "independent"})
    obs = env.reset()
    actions, _ = model.predict(obs)
    assert actions.shape == (B, 3)
    assert ((actions >= 0) & (actions < N)).all()
    with torch.no_grad():
        dist = model.policy.get_distribution(torch.as_tensor(obs))
    cats = dist.distribution
    assert len(cats) == 3 and all(c.probs.shape == (B, N) for c in cats)
    model.learn(8 * B)  # one rollout trains through evaluate_actions on slates
    assert model.num_timesteps == 8 * B


@pytest.mark.parametrize("slate", [1, 3], ids=["discrete", "slate"])
def test_unreleased_items_have_zero_probability(emb_file: str, slate: int) -> None:
    """With half the catalog unreleased at clock 0, those items get probability exactly 0."""
    cfg = _config(slate=slate, new_item_fraction=0.5, **{"catalog.release_horizon": 10**7})
    env = _env(cfg)
    model = _ppo(env, emb_file)
    release = np.asarray(env.catalog.release_step)
    unreleased = release > 0
    assert unreleased.sum() >= N // 4  # the test means something
    obs = env.reset()
    assert (obs[:, -1] == 0).all()  # the clock column
    rows = np.repeat(obs, 64, axis=0)  # (256, D)
    seen = []
    for _ in range(4):
        actions, _ = model.predict(rows)
        seen.append(np.asarray(actions).ravel())
    assert not unreleased[np.concatenate(seen)].any()
    with torch.no_grad():
        dist = model.policy.get_distribution(torch.as_tensor(obs)).distribution
    cats = dist if isinstance(dist, list) else [dist]
    for cat in cats:
        probs = cat.probs.numpy()
        assert (probs[:, unreleased] == 0.0).all()
        assert (probs[:, ~unreleased] > 0.0).all()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_exact_parameter_count(emb_file: str) -> None:
    """The tiny policy has exactly 1434 parameters (729 recommender + 705 value MLP)."""
    env = _env()
    model = _ppo(env, emb_file)
    # d = 8, heads = 2, ff = 16, H = 4, E = 6, value_hidden = 64 (default), no id embeddings
    # recommender:
    #   item_proj   Linear(E, d, bias=False)          6 * 8             =  48
    #   feedback    Linear(1, d)                       8 + 8             =  16
    #   user_token  (d,) the start token (no position embeddings)       =   8
    #   1 block:    ln_attn 2d                                           =  16
    #               qkv Linear(d, 3d)                  8 * 24 + 24       = 216
    #               out Linear(d, d)                   8 * 8 + 8         =  72
    #               recency_slope (heads,)                               =   2
    #               ln_mlp 2d                                            =  16
    #               mlp Linear(d, ff) + Linear(ff, d)  8*16 + 16 + 16*8 + 8 = 280
    #   final_norm  2d                                                   =  16
    #   item_prior  (N,)                                                 =  N
    #   content match decay, skip weight, weight, short-term decay, kappa;
    #   beta; click offset                                               =   7
    #   total                                  48+16+8+602+16+32+7       = 729
    # value net: Linear(d + 1, 64) + Tanh + Linear(64, 1) = 9*64 + 64 + 64 + 1 = 705
    # action_net (_SlateLogits) and the FlattenExtractor have none.
    total = sum(p.numel() for p in model.policy.parameters())
    rec = sum(p.numel() for p in model.policy.recommender.parameters())
    value = sum(p.numel() for p in model.policy.value_net.parameters())
    assert (rec, value, total) == (729, 705, 1434)
    assert sum(p.numel() for p in model.policy.action_net.parameters()) == 0


def test_optimizer_holds_every_parameter(emb_file: str) -> None:
    """policy.optimizer covers every parameter of the policy exactly once."""
    model = _ppo(_env(), emb_file)
    in_opt = [id(p) for g in model.policy.optimizer.param_groups for p in g["params"]]
    assert len(in_opt) == len(set(in_opt))
    assert set(in_opt) == {id(p) for p in model.policy.parameters()}


def test_item_table_not_in_checkpoint_and_save_load_roundtrip(tmp_path: Path) -> None:
    """The item table is a non-persistent buffer; save/PPO.load gives identical greedy actions."""
    # the real default text encoder (packaged MiniLM, cached under $DRIFTREC_CACHE)
    env = _env()
    model = _ppo(env, None)
    rec = model.policy.recommender
    assert rec.item_table.shape[0] == N and rec.item_table.shape[1] > 1
    assert "item_table" in dict(rec.named_buffers())
    keys = model.policy.state_dict().keys()
    assert not any("item_table" in k or "release_step" in k for k in keys)
    model.learn(8 * B)
    obs = env.reset()
    before, _ = model.predict(obs, deterministic=True)
    path = tmp_path / "model.zip"
    model.save(path)
    loaded = PPO.load(path, env=env, device="cpu")
    after, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(before, after)
    assert torch.equal(loaded.policy.recommender.item_table, rec.item_table)
    for k, v in model.policy.state_dict().items():
        assert torch.equal(v, loaded.policy.state_dict()[k]), k


def test_same_seed_same_parameters(emb_file: str) -> None:
    """Two PPO runs with the same seed end with identical parameters; another seed differs."""
    runs = []
    for seed in (0, 0, 1):
        model = _ppo(_env(seed=seed), emb_file, seed=seed)
        model.learn(2 * 8 * B)
        runs.append(_params(model))
    a, b, c = runs
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_ids_only_variant() -> None:
    """ids_only builds without a language model: id embeddings on, a (N, 1) zero text table."""
    env = _env()
    kwargs = recommender_policy_kwargs(env, attention=TINY, ids_only=True)
    assert kwargs["item_table"].ids_only and kwargs["item_table"].text_encoder is None
    model = PPO("AttentionRecommenderPolicy", env, policy_kwargs=kwargs, seed=0, **PPO_TINY)
    rec = model.policy.recommender
    assert rec.config.use_id_embeddings
    assert rec.id_embedding is not None and rec.id_embedding.num_embeddings == N
    assert rec.item_table.shape == (N, 1) and not rec.item_table.any()
    assert rec.id_embedding.weight.abs().sum() > 0  # started apart, not at zero
    actions, _ = model.predict(env.reset())
    assert actions.shape == (B,)


def test_maskable_ppo_learns_with_unreleased_items(emb_file: str) -> None:
    """MaskablePPO with the maskable policy learns 64 steps and never picks an unreleased item."""
    cfg = _config(new_item_fraction=0.5, **{"catalog.release_horizon": 10**7})
    env = _env(cfg)
    model = MaskablePPO(
        "AttentionRecommenderPolicy",
        env,
        policy_kwargs=recommender_policy_kwargs(env, attention=TINY, embeddings_file=emb_file),
        n_steps=16,
        batch_size=64,
        n_epochs=1,
        seed=0,
    )
    assert isinstance(model.policy, MaskableAttentionActorCriticPolicy)
    before = _params(model)
    model.learn(64)
    assert model.num_timesteps == 64
    after = _params(model)
    assert not all(torch.equal(before[k], after[k]) for k in before)
    release = np.asarray(env.catalog.release_step)
    acts = model.rollout_buffer.actions.astype(np.int64).reshape(-1)
    clocks = model.rollout_buffer.observations[..., -1].reshape(-1)
    assert (release[acts] <= clocks).all()


def test_a2c_short_learn(emb_file: str) -> None:
    """A2C with the attention policy runs a short learn and updates the parameters."""
    env = _env()
    model = A2C(
        "AttentionRecommenderPolicy",
        env,
        policy_kwargs=recommender_policy_kwargs(env, attention=TINY, embeddings_file=emb_file),
        n_steps=4,
        seed=0,
    )
    assert isinstance(model.policy, AttentionActorCriticPolicy)
    before = _params(model)
    model.learn(4 * 4 * B)
    assert model.num_timesteps == 4 * 4 * B
    assert not all(torch.equal(before[k], v) for k, v in _params(model).items())


def _dqn(env: DriftRecSB3VecEnv, emb: str, **kwargs: Any) -> DQN:
    return DQN(
        "AttentionRecommenderPolicy",
        env,
        policy_kwargs=recommender_policy_kwargs(env, attention=TINY, embeddings_file=emb),
        learning_starts=8,
        batch_size=16,
        buffer_size=1000,
        seed=0,
        **kwargs,
    )


def test_dqn_short_learn(emb_file: str) -> None:
    """DQN with AttentionDQNPolicy learns on Discrete actions; Q-values are (B, N)."""
    env = _env()
    model = _dqn(env, emb_file)
    assert isinstance(model.policy, AttentionDQNPolicy)
    before = _params(model)
    model.learn(48)
    assert model.num_timesteps == 48
    assert not all(torch.equal(before[k], v) for k, v in _params(model).items())
    obs = env.reset()
    with torch.no_grad():
        q = model.q_net(torch.as_tensor(obs))
    assert q.shape == (B, N) and torch.isfinite(q).all()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (B,)


def _fresh_scores(recommender: Any, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The no-grad scores with the recommender's cached tables, then rebuilt from scratch."""
    with torch.no_grad():
        cached = recommender(obs).scores
        recommender.clear_caches()
        return cached, recommender(obs).scores


def test_fused_optimizer_does_not_leave_acting_tables_stale(emb_file: str) -> None:
    """A fused Adam updates the parameters without bumping their version counters; the policy
    drops the recommender's cached no-grad tables after every optimizer step, so acting after
    training scores with the trained weights (0.5.0 kept the initial item vectors)."""
    env = _env()
    model = _ppo(env, emb_file, policy_kwargs={"optimizer_kwargs": {"fused": True}})
    obs = torch.as_tensor(env.reset())
    with torch.no_grad():
        model.policy.recommender(obs)  # fills the caches with the initial weights
    model.learn(2 * PPO_TINY["n_steps"] * B)
    cached, fresh = _fresh_scores(model.policy.recommender, obs)
    torch.testing.assert_close(cached, fresh)


def test_dqn_target_network_scores_with_its_current_weights(emb_file: str) -> None:
    """SB3 copies the online Q-network into the target through ``.data`` (no version bump): the
    target's Q-values after the copy are those of its current weights (0.5.0 scored the target
    with its first weights' item vectors)."""
    env = _env()
    model = _dqn(env, emb_file, target_update_interval=4 * B, learning_rate=1e-2)
    obs = torch.as_tensor(env.reset())
    with torch.no_grad():
        first = model.q_net_target(obs)  # the target's tables as built from its first weights
    model.learn(16 * B)
    with torch.no_grad():
        q = model.q_net_target(obs)
        model.q_net_target.recommender.clear_caches()
        torch.testing.assert_close(q, model.q_net_target(obs))
    assert not torch.allclose(first, q)  # the target did move


def test_dqn_rejects_slates(emb_file: str) -> None:
    """DQN refuses a MultiDiscrete (slate) action space."""
    env = _env(_config(slate=3))
    kwargs = recommender_policy_kwargs(env, attention=TINY, embeddings_file=emb_file)
    with pytest.raises((AssertionError, ValueError), match="MultiDiscrete"):
        DQN("AttentionRecommenderPolicy", env, policy_kwargs=kwargs)


@pytest.mark.parametrize("algo", [PPO, A2C, MaskablePPO, DQN], ids=lambda a: a.__name__)
def test_missing_item_table_raises(algo: Any) -> None:
    """Without policy_kwargs['item_table'] every algorithm raises the documented ValueError."""
    with pytest.raises(ValueError, match=f"^{re.escape(MISSING_TABLE)}$"):
        algo("AttentionRecommenderPolicy", _env(), policy_kwargs={"attention": TINY})


def test_policy_kwargs_on_non_driftrec_object() -> None:
    """recommender_policy_kwargs on something without a driftrec EnvConfig raises TypeError."""
    with pytest.raises(TypeError, match="^cannot find a driftrec EnvConfig on 'nope'"):
        recommender_policy_kwargs("nope")
    with pytest.raises(TypeError, match="cannot find a driftrec EnvConfig"):
        recommender_policy_kwargs(object())


def test_policy_kwargs_take_history_len_from_env(emb_file: str) -> None:
    """recommender_policy_kwargs sets attention.history_len to the env's history length."""
    cfg = _config()
    kwargs = recommender_policy_kwargs(cfg, attention={"embed_dim": 8, "history_len": 99})
    assert kwargs["attention"].history_len == H and kwargs["attention"].embed_dim == 8
    kwargs = recommender_policy_kwargs(_env(), embeddings_file=emb_file, value_hidden=5)
    assert kwargs["value_hidden"] == 5 and kwargs["item_table"].embeddings_file == emb_file


def _stepped_obs(env: DriftRecSB3VecEnv, model: Any, steps: int = 6) -> torch.Tensor:
    obs = env.reset()
    for _ in range(steps):
        actions, _ = model.predict(obs)
        obs, *_ = env.step(actions)
    return torch.as_tensor(obs)


def test_click_loss_rides_along_with_the_algorithm_loss(emb_file: str) -> None:
    """evaluate_actions adds exactly click_loss_coef * click_loss to the gradient, nothing else."""
    env = _env()
    model = _ppo(env, emb_file)
    policy = model.policy
    policy.click_loss_coef = 2.5
    obs = _stepped_obs(env, model)
    actions = torch.zeros(B, dtype=torch.long)
    _, log_prob, _ = policy.evaluate_actions(obs, actions)
    (0.0 * log_prob.sum()).backward()  # the algorithm's own loss contributes nothing here
    injected = policy.recommender.item_prior.grad.clone()
    policy.zero_grad()
    (2.5 * policy.recommender.click_loss(obs, num_targets=policy.click_targets)).backward()
    torch.testing.assert_close(injected, policy.recommender.item_prior.grad)
    assert injected.abs().sum() > 0
    assert policy.last_click_loss == pytest.approx(
        float(policy.recommender.click_loss(obs, num_targets=policy.click_targets).detach()),
        rel=1e-5,
    )
    # with the coefficient at 0 (or under no_grad) the log-probabilities carry no click loss
    policy.zero_grad()
    policy.click_loss_coef = 0.0
    _, log_prob, _ = policy.evaluate_actions(obs, actions)
    (0.0 * log_prob.sum()).backward()
    assert policy.recommender.item_prior.grad.abs().sum() == 0


def test_click_loss_kwargs_are_validated_and_saved(emb_file: str, tmp_path: Any) -> None:
    """click_loss_coef / click_targets are checked and survive save/load."""
    env = _env()
    kwargs = recommender_policy_kwargs(env, attention=TINY, embeddings_file=emb_file)
    with pytest.raises(ValueError, match=r"^'click_loss_coef' must be"):
        PPO("AttentionRecommenderPolicy", env, policy_kwargs={**kwargs, "click_loss_coef": -1.0})
    with pytest.raises(ValueError, match=r"^'click_targets' must be an integer in \[1, 4\]"):
        PPO("AttentionRecommenderPolicy", env, policy_kwargs={**kwargs, "click_targets": 5})
    model = PPO(
        "AttentionRecommenderPolicy",
        env,
        policy_kwargs={**kwargs, "click_loss_coef": 3.0, "click_targets": 2},
        **PPO_TINY,
    )
    model.save(tmp_path / "m.zip")
    loaded = PPO.load(tmp_path / "m.zip", env=env)
    assert (loaded.policy.click_loss_coef, loaded.policy.click_targets) == (3.0, 2)


LONG = AttentionConfig(
    embed_dim=8, num_heads=2, num_layers=1, ff_dim=16, carryover=True, policy_tilt=True
)


def test_history_critic_reads_the_history_without_training_the_recommender(
    emb_file: str, tmp_path: Path
) -> None:
    """critic="history": value = value_scale * (MLP(detached u, progress, click rate, real share,
    carry-over) + sum_t g^r y_t v_a); the value loss reaches no recommender parameter; every
    parameter is in the optimizer; the kwargs survive save/load."""
    env = _env()
    model = _ppo(
        env,
        emb_file,
        policy_kwargs={"attention": LONG, "critic": "history", "value_scale": 4.0},
    )
    policy = model.policy
    extractor = policy.mlp_extractor
    assert extractor.latent_dim_vf == 8 + 1 + 4
    assert policy.value_net[0].in_features == 8 + 1 + 3  # the item-value sum is added, not fed
    in_opt = {id(p) for g in policy.optimizer.param_groups for p in g["params"]}
    assert in_opt == {id(p) for p in policy.parameters()}
    obs = _stepped_obs(env, model)
    with torch.no_grad():
        extractor.item_value.weight.copy_(torch.arange(N, dtype=torch.float32).unsqueeze(1))
        policy.recommender.carry_effect.copy_(torch.linspace(-0.5, 0.5, N))
        out = policy.recommender(obs, output_encoding=True)
        x = extractor._value_input(obs, out)  # (B, d + 5)
        parsed = parse_observation(obs, H)
        clicks = parsed.feedback.clamp(0, 1) * parsed.mask
        torch.testing.assert_close(x[:, 8], obs[:, 3 * H])  # progress
        rate = clicks.sum(1) / parsed.mask.sum(1).clamp_min(1)
        torch.testing.assert_close(x[:, 9], rate)
        torch.testing.assert_close(x[:, 10], parsed.mask.float().mean(1))
        torch.testing.assert_close(x[:, 11], policy.recommender.carryover(obs))
        g = torch.sigmoid(extractor.value_decay_logit)
        recency = parsed.mask.flip(-1).cumsum(-1).flip(-1) - parsed.mask.long()
        expected = (g**recency * clicks * parsed.item_ids.float()).sum(1)
        torch.testing.assert_close(x[:, 12], expected)
        value = policy.predict_values(obs)[:, 0]
        mlp = torch.nn.Sequential(*policy.value_net)(x[:, :-1])[:, 0]
        torch.testing.assert_close(value, 4.0 * (mlp + expected))
    policy.zero_grad()
    policy.predict_values(obs).sum().backward()
    for name, p in policy.recommender.named_parameters():
        assert p.grad is None or p.grad.abs().sum() == 0, name
    assert extractor.item_value.weight.grad.abs().sum() > 0
    model.learn(8 * B)
    model.save(tmp_path / "m.zip")
    loaded = PPO.load(tmp_path / "m.zip", env=env)
    assert (loaded.policy.critic, loaded.policy.value_scale) == ("history", 4.0)
    for k, v in model.policy.state_dict().items():
        assert torch.equal(v, loaded.policy.state_dict()[k]), k


def test_critic_kwargs_are_validated(emb_file: str) -> None:
    """An unknown critic or a non-positive value_scale is refused with one clear line."""
    env = _env()
    kwargs = recommender_policy_kwargs(env, attention=TINY, embeddings_file=emb_file)
    msg = "'critic' must be one of ['shared', 'history'] (got 'deep')"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        PPO("AttentionRecommenderPolicy", env, policy_kwargs={**kwargs, "critic": "deep"})
    with pytest.raises(ValueError, match=r"^'value_scale' must be"):
        PPO("AttentionRecommenderPolicy", env, policy_kwargs={**kwargs, "value_scale": 0.0})


def test_items_clicked_in_the_history_get_no_probability_where_clicks_consume(
    emb_file: str,
) -> None:
    """In a no_repeat world the policy masks the items clicked in the observed history (a
    skipped item keeps its probability); elsewhere nothing is masked. It still trains."""
    env = _env(_config(**{"choice.no_repeat": True}))
    model = _ppo(env, emb_file)
    assert model.policy.mask_consumed and model.policy.mlp_extractor.mask_consumed
    obs = np.zeros((1, 3 * H + 2), dtype=np.float32)
    obs[0, :H] = [3, 7, 9, 9]  # ids: 7 and the last 9 clicked, 3 skipped, the first 9 skipped
    obs[0, H : 2 * H] = [0.0, 1.0, 0.0, 1.0]
    obs[0, 2 * H : 3 * H] = 1.0
    with torch.no_grad():
        dist = model.policy.get_distribution(torch.as_tensor(obs))
    probs = dist.distribution.probs[0].numpy()
    assert probs[7] == 0.0 and probs[9] == 0.0 and probs[3] > 0
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    plain = _ppo(_env(), emb_file)
    assert not plain.policy.mask_consumed
    with torch.no_grad():
        assert plain.policy.get_distribution(torch.as_tensor(obs)).distribution.probs[0, 7] > 0
    model.learn(16)


def test_items_skipped_again_and_again_and_never_clicked_get_no_probability(
    emb_file: str, tmp_path: Path
) -> None:
    """With mask_rejected = k an item the observed history shows skipped at least k times and
    never clicked has zero probability; one skip, or a click among the skips, keeps it. The
    setting trains, is saved with the model and is checked."""
    env = _env()
    model = _ppo(env, emb_file, policy_kwargs={"mask_rejected": 2})
    assert model.policy.mlp_extractor.mask_rejected == 2
    obs = np.zeros((1, 3 * H + 2), dtype=np.float32)
    obs[0, :H] = [3, 5, 3, 5]  # 3 skipped twice; 5 skipped once, then clicked
    obs[0, H : 2 * H] = [0.0, 0.0, 0.0, 1.0]
    obs[0, 2 * H : 3 * H] = 1.0
    with torch.no_grad():
        probs = model.policy.get_distribution(torch.as_tensor(obs)).distribution.probs[0]
    assert probs[3] == 0.0 and probs[5] > 0 and probs.sum() == pytest.approx(1.0, abs=1e-5)
    obs[0, 2 * H] = 0.0  # the first impression is padding: 3 is skipped once only
    with torch.no_grad():
        assert model.policy.get_distribution(torch.as_tensor(obs)).distribution.probs[0, 3] > 0
    model.learn(16)
    model.save(tmp_path / "m.zip")
    assert PPO.load(tmp_path / "m.zip", env=env).policy.mlp_extractor.mask_rejected == 2
    kwargs = recommender_policy_kwargs(env, attention=TINY, embeddings_file=emb_file)
    with pytest.raises(ValueError, match=r"^'mask_rejected' must be an integer >= 0 \(got -1\)"):
        PPO("AttentionRecommenderPolicy", env, policy_kwargs={**kwargs, "mask_rejected": -1})
