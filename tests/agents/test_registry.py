"""Tests of driftrec.agents.registry: every agent by name, built on a tiny world and run online."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import torch

from driftrec.agents.online import StepRecord, run_online
from driftrec.agents.registry import (
    AGENT_NAMES,
    ATTENTION_DEFAULTS,
    BANDIT_AGENTS,
    POLICY_DEFAULTS,
    PPO_DEFAULTS,
    SB3_AGENTS,
    build_agent,
)
from driftrec.envs.config import EnvConfig

torch.set_num_threads(1)

B = 4
STEPS = 16


@pytest.fixture(autouse=True)
def _shared_text_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One text-embedding cache for the session: the packaged MiniLM encodes each catalog once."""
    monkeypatch.setenv("DRIFTREC_CACHE", str(tmp_path_factory.getbasetemp() / "driftrec-cache"))


def _names() -> list[Any]:
    return list(AGENT_NAMES)


def test_name_tables() -> None:
    """AGENT_NAMES is the bandits followed by the SB3 agents, without repeats."""
    assert AGENT_NAMES == BANDIT_AGENTS + SB3_AGENTS
    assert len(set(AGENT_NAMES)) == len(AGENT_NAMES) == 20


def test_every_agent_is_described() -> None:
    """AGENT_DESCRIPTIONS (what `driftrec agents` prints) covers exactly the registered names."""
    from driftrec.agents.registry import AGENT_DESCRIPTIONS

    assert list(AGENT_DESCRIPTIONS) == list(AGENT_NAMES)
    assert all(text.strip() for text in AGENT_DESCRIPTIONS.values())
    assert AGENT_DESCRIPTIONS["oracle"].startswith("PRIVILEGED")


@pytest.mark.parametrize("name", _names())
def test_every_agent_builds_and_runs_online(name: str, tiny_config: EnvConfig) -> None:
    """Each agent builds on a 32-item world and run_online runs 16 steps (one rollout when that
    is longer) with one hook call each."""
    built = build_agent(name, tiny_config, num_envs=B, seed=0)
    steps = max(STEPS, built.rollout_steps)
    assert built.name == name
    assert built.is_sb3 == (name in SB3_AGENTS)
    assert built.env.num_envs == B
    clocks: list[int] = []

    def hook(record: StepRecord) -> None:
        clocks.append(record.clock)
        assert record.actions.shape == (B,)
        assert (record.actions >= 0).all() and (record.actions < 32).all()

    assert run_online(built.agent, built.env, steps, on_step=hook) == steps
    assert clocks == list(range(1, steps + 1))
    if built.is_sb3:
        assert built.agent.num_timesteps == steps * B
        rollouts = {"attention-a2c": 8, "attention-dqn": 1, "attention-ppo-long": 64}
        assert built.rollout_steps == rollouts.get(name, 16)
    else:
        assert built.rollout_steps == 1
    has_attention = name.startswith("attention") or name == "id-ppo"
    assert (built.attention_fn is not None) == has_attention
    if built.attention_fn is not None:
        weights = built.attention_fn(built.env.venv.sim.observation()[0])
        assert weights.shape == (tiny_config.session.history_len,)
        assert (weights >= 0).all() and weights.sum() <= 1.0 + 1e-6
        expected = "encoder attention" if name == "id-ppo" else "content-match weight"
        assert built.attention_fn.source.startswith(expected)


def test_unknown_name_raises() -> None:
    """An unknown agent name raises ValueError listing the valid names."""
    msg = (
        f"unknown agent 'nope': expected one of {list(AGENT_NAMES)}, a name registered with "
        "driftrec.register_agent, an import path 'package.module:NAME' or a stable-baselines3 "
        "model '.zip'"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        build_agent("nope", EnvConfig(), num_envs=B, seed=0)


def test_sb3_agent_kwargs_reach_algorithm_and_attention(tiny_config: EnvConfig) -> None:
    """agent_kwargs override the algorithm (learning_rate, n_steps), attention and policy."""
    built = build_agent(
        "id-ppo",
        tiny_config,
        num_envs=B,
        seed=0,
        agent_kwargs={
            "learning_rate": 1e-3,
            "n_steps": 4,
            "attention": {"embed_dim": 16},
            "policy_kwargs": {"value_hidden": 7},
        },
    )
    model = built.agent
    assert model.learning_rate == 1e-3
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert model.n_steps == 4 and built.rollout_steps == 4
    assert model.batch_size == 4 * B  # capped at one rollout
    assert model.gamma == PPO_DEFAULTS["gamma"] and model.n_epochs == PPO_DEFAULTS["n_epochs"]
    att = model.policy.recommender.config
    assert att.embed_dim == 16
    assert att.num_heads == ATTENTION_DEFAULTS["num_heads"]
    assert att.score_temperature == ATTENTION_DEFAULTS["score_temperature"]
    assert att.history_len == tiny_config.session.history_len
    assert model.policy.value_hidden == 7 and model.policy.value_net[0].out_features == 7
    assert model.policy.click_targets == min(
        POLICY_DEFAULTS["click_targets"], tiny_config.session.history_len
    )


@pytest.mark.parametrize("name", ["attention-ppo", "id-ppo", "attention-a2c"])
def test_click_targets_default_and_override(name: str, tiny_config: EnvConfig) -> None:
    """The click-loss agents predict the newest POLICY_DEFAULTS["click_targets"] impressions
    (every one for a shorter history); policy_kwargs {"click_targets": None} restores all."""
    h = tiny_config.session.history_len
    built = build_agent(name, tiny_config, num_envs=B, seed=0)
    assert built.agent.policy.click_targets == min(POLICY_DEFAULTS["click_targets"], h)
    assert built.agent.policy.mlp_extractor.click_targets == built.agent.policy.click_targets
    every = build_agent(
        name,
        tiny_config,
        num_envs=B,
        seed=0,
        agent_kwargs={"policy_kwargs": {"click_targets": None}},
    )
    assert every.agent.policy.click_targets is None
    long = tiny_config.with_overrides(history_len=12)
    targets = build_agent(name, long, num_envs=B, seed=0).agent.policy.click_targets
    assert targets == POLICY_DEFAULTS["click_targets"]


def test_ppo_minibatch_defaults(tiny_config: EnvConfig) -> None:
    """The registry's PPO agents take minibatches of 256 for 2 epochs (as many optimizer steps
    per 32-user rollout as 0.5.0's 512 x 4); the long-horizon preset keeps the 512 x 4 its claim
    was measured with; agent_kwargs still win."""
    from driftrec.agents.registry import PPO_LONG_DEFAULTS

    assert (PPO_DEFAULTS["batch_size"], PPO_DEFAULTS["n_epochs"]) == (256, 2)
    assert (PPO_LONG_DEFAULTS["batch_size"], PPO_LONG_DEFAULTS["n_epochs"]) == (512, 4)
    config = tiny_config.with_overrides(max_steps=64)
    for name in ("attention-ppo", "id-ppo", "attention-maskable-ppo"):
        model = build_agent(name, config, num_envs=32, seed=0).agent
        assert (model.batch_size, model.n_epochs) == (256, 2), name
    long = build_agent("attention-ppo-long", config, num_envs=32, seed=0).agent
    assert (long.batch_size, long.n_epochs) == (512, 4)
    own = build_agent(
        "attention-ppo", config, num_envs=32, seed=0, agent_kwargs={"n_epochs": 3}
    ).agent
    assert own.n_epochs == 3 and own.batch_size == 256


def test_long_horizon_preset(tiny_config: EnvConfig) -> None:
    """attention-ppo-long is attention-ppo with the long-horizon defaults; agent_kwargs win."""
    from driftrec.agents.registry import (
        ATTENTION_LONG_DEFAULTS,
        POLICY_LONG_DEFAULTS,
        PPO_LONG_DEFAULTS,
    )

    model = build_agent("attention-ppo-long", tiny_config, num_envs=B, seed=0).agent
    assert (model.gamma, model.gae_lambda, model.n_steps) == (
        PPO_LONG_DEFAULTS["gamma"],
        PPO_LONG_DEFAULTS["gae_lambda"],
        PPO_LONG_DEFAULTS["n_steps"],
    )
    assert model.gamma > PPO_DEFAULTS["gamma"]
    att = model.policy.recommender.config
    assert att.carryover and att.policy_tilt
    assert att.embed_dim == ATTENTION_LONG_DEFAULTS["embed_dim"] == ATTENTION_DEFAULTS["embed_dim"]
    assert model.policy.critic == POLICY_LONG_DEFAULTS["critic"] == "history"
    assert model.policy.value_scale == POLICY_LONG_DEFAULTS["value_scale"]
    assert model.policy.mlp_extractor.mask_rejected == POLICY_LONG_DEFAULTS["mask_rejected"] == 2
    plain = build_agent("attention-ppo", tiny_config, num_envs=B, seed=0).agent.policy
    assert plain.mask_rejected == 0
    built = build_agent(
        "attention-ppo-long",
        tiny_config,
        num_envs=B,
        seed=0,
        agent_kwargs={
            "gamma": 0.95,
            "attention": {"policy_tilt": False},
            "policy_kwargs": {"critic": "shared"},
        },
    )
    assert built.agent.gamma == 0.95
    assert built.agent.policy.recommender.config.carryover
    assert not built.agent.policy.recommender.config.policy_tilt
    assert built.agent.policy.critic == "shared"


def test_long_preset_decays_its_learning_rate_over_the_budget_across_learn_calls(
    tiny_config: EnvConfig,
) -> None:
    """attention-ppo-long's learning rate falls linearly to 0 over ``budget_timesteps`` env-steps
    counted over every learn() call (run_online trains in chunks); plain SB3 would restart the
    schedule at each call. Past the budget it stays at the final fraction."""
    from driftrec.agents.registry import PPO_LONG_DEFAULTS
    from driftrec.agents.sb3_policy import BudgetPPO

    budget = 4 * 16 * B  # four rollouts of 16 steps on B users
    built = build_agent(
        "attention-ppo-long",
        tiny_config,
        num_envs=B,
        seed=0,
        agent_kwargs={"n_steps": 16, "n_epochs": 1, "budget_timesteps": budget},
    )
    model = built.agent
    assert isinstance(model, BudgetPPO)
    start = PPO_LONG_DEFAULTS["learning_rate"]
    seen = []
    for _ in range(5):  # one rollout (and one update) per call
        run_online(model, built.env, 16)
        seen.append(model.policy.optimizer.param_groups[0]["lr"])
    # each update uses the progress after its rollout: 1/4, 2/4, ... of the budget spent
    np.testing.assert_allclose(seen, [start * f for f in (0.75, 0.5, 0.25, 0.0, 0.0)])
    floor = build_agent(
        "attention-ppo-long",
        tiny_config,
        num_envs=B,
        seed=0,
        agent_kwargs={"n_steps": 16, "budget_timesteps": 16 * B, "final_lr_fraction": 0.1},
    )
    run_online(floor.agent, floor.env, 32)
    assert floor.agent.policy.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * start)
    with pytest.raises(ValueError, match=r"^'final_lr_fraction' must be"):
        build_agent(
            "attention-ppo-long",
            tiny_config,
            num_envs=B,
            seed=0,
            agent_kwargs={"final_lr_fraction": 2.0},
        )


def test_attention_agent_uses_the_default_text_encoder(tiny_config: EnvConfig) -> None:
    """attention-ppo's item table is the packaged MiniLM's (N, 384) unit-norm embeddings."""
    built = build_agent("attention-ppo", tiny_config, num_envs=B, seed=0)
    table = built.agent.policy.recommender.item_table.numpy()
    assert table.shape == (32, 384)
    np.testing.assert_allclose(np.linalg.norm(table, axis=1), 1.0, atol=1e-4)


def test_bandit_agent_kwargs_override_defaults(tiny_config: EnvConfig) -> None:
    """Bandit agent_kwargs override the registry's defaults (popularity decay 0.99)."""
    default = build_agent("popularity", tiny_config, num_envs=B, seed=0)
    assert default.agent.decay == 0.99
    built = build_agent("popularity", tiny_config, num_envs=B, seed=0, agent_kwargs={"decay": 0.5})
    assert built.agent.decay == 0.5
    built.save("/nonexistent/dir/model.zip")  # baselines have no checkpoint: nothing happens


def test_same_seed_same_actions(tiny_config: EnvConfig) -> None:
    """Two builds with the same seed act identically; the env is reset with that seed."""
    a = build_agent("epsilon-greedy", tiny_config, num_envs=B, seed=3)
    b = build_agent("epsilon-greedy", tiny_config, num_envs=B, seed=3)
    out = []
    for built in (a, b):
        acts: list[np.ndarray] = []
        run_online(built.agent, built.env, 8, on_step=lambda r, acts=acts: acts.append(r.actions))
        out.append(np.stack(acts))
    np.testing.assert_array_equal(out[0], out[1])
