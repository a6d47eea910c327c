"""Every agent by name, built for an env config and ready for ``run_online``.

The names and what each agent is are in :data:`AGENT_DESCRIPTIONS` (``driftrec agents`` prints
them): bandit baselines (``random``, ``popularity``, the privileged ``oracle``,
``epsilon-greedy``, ``linucb`` and its discounted / sliding-window variants, ``thompson``) act in a
:class:`~driftrec.envs.gym_env.DriftRecVectorEnv`; SB3 agents (``attention-ppo`` and its A2C,
MaskablePPO and DQN variants, the ``id-ppo`` ablation, ``mlp-ppo``) in a
:class:`~driftrec.envs.sb3.DriftRecSB3VecEnv`.

The SB3 agents' defaults come from two small sweeps (Stationary and AbruptShift; see
``BENCHMARKS.md``): a small, fast recommender (width 32, one layer, two heads, score temperature
0.3) and PPO with 16-step rollouts, batch 512, 4 epochs, learning rate 3e-3 and
``gamma = gae_lambda = 0.9``. Override any of them with ``agent_kwargs``
(``{"learning_rate": 1e-3, "attention": {"embed_dim": 64}}``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftrec.agents.baselines import BASELINE_NAMES
from driftrec.envs.config import EnvConfig

__all__ = [
    "AGENT_DESCRIPTIONS",
    "needs_text_embeddings",
    "AGENT_NAMES",
    "BANDIT_AGENTS",
    "SB3_AGENTS",
    "BuiltAgent",
    "build_agent",
    "PPO_DEFAULTS",
    "ATTENTION_DEFAULTS",
]

BANDIT_AGENTS = BASELINE_NAMES  # everything make_baseline builds
SB3_AGENTS = (
    "attention-ppo",
    "attention-a2c",
    "attention-maskable-ppo",
    "attention-dqn",
    "id-ppo",
    "mlp-ppo",
)
AGENT_NAMES = BANDIT_AGENTS + SB3_AGENTS

_BANDIT_DEFAULTS: dict[str, dict[str, Any]] = {
    "popularity": {"decay": 0.99},
    "epsilon-greedy": {"epsilon": 0.1, "decay": 0.99},
    # 16 SVD dimensions of the 384-dim text embeddings: as good as 32 on Stationary (normalized
    # reward 0.71 over the last 200 of 600 steps, 32 users) at a quarter of the O(d^2) cost
    **{
        name: {"feature_dim": 16}
        for name in ("linucb", "linucb-discounted", "linucb-window", "thompson")
    },
}
_TEXT_FEATURE_AGENTS = (
    "linucb",
    "linucb-discounted",
    "linucb-window",
    "thompson",
    "history-similarity",
)

AGENT_DESCRIPTIONS: dict[str, str] = {
    "random": "uniform over released items",
    "popularity": "online click counts, decayed by 0.99 per step",
    "oracle": "PRIVILEGED: greedy on the true click probability (one-step upper bound)",
    "planner": "PRIVILEGED: rollouts of the true model from each candidate (the planning ceiling)",
    "planner-first-order": "PRIVILEGED: closed-form first-order lookahead (fast, no rollouts)",
    "static-tilt": "PRIVILEGED: greedy oracle plus a fixed per-item tilt (re-ranking, no plan)",
    "epsilon-greedy": "per-item click rates, 10% exploration, decay 0.99",
    "linucb": "LinUCB on the language-model item embeddings (+ history interaction)",
    "linucb-discounted": "D-LinUCB (discount 0.99 per step): forgets, so it tracks drift",
    "linucb-window": "sliding-window LinUCB (last 5,000 observations)",
    "thompson": "linear Thompson sampling on the same features",
    "history-similarity": "no learning: cosine of item LM embeddings to the user's recent clicks",
    "population-best": "PRIVILEGED: the one item best on average over the current users, for all",
    "attention-ppo": "PPO with the attention recommender over language-model embeddings",
    "attention-a2c": "A2C with the same policy",
    "attention-maskable-ppo": "sb3-contrib MaskablePPO with the same policy and action masks",
    "attention-dqn": "DQN with the attention recommender as Q-network (single-item only)",
    "id-ppo": "ablation: the same attention PPO with item-id embeddings, no language model",
    "mlp-ppo": "SB3's default MlpPolicy PPO on the flat observation",
}


def needs_text_embeddings(name: str) -> bool:
    """True when agent ``name`` scores items with the language-model text embeddings."""
    return name in _TEXT_FEATURE_AGENTS or name.startswith("attention-")


ATTENTION_DEFAULTS: dict[str, Any] = {
    "embed_dim": 32,
    "num_heads": 2,
    "num_layers": 1,
    "ff_dim": 64,
    "score_temperature": 0.3,
}
PPO_DEFAULTS: dict[str, Any] = {
    "n_steps": 16,
    "batch_size": 512,
    "n_epochs": 4,
    "learning_rate": 3e-3,
    "gamma": 0.9,
    "gae_lambda": 0.9,
    "ent_coef": 0.0,
}
_A2C_DEFAULTS: dict[str, Any] = {
    "n_steps": 8,
    "learning_rate": 1e-3,
    "gamma": 0.9,
    "gae_lambda": 0.9,
}
_DQN_DEFAULTS: dict[str, Any] = {
    "learning_rate": 1e-3,
    "buffer_size": 50_000,
    "learning_starts": 1_000,
    "batch_size": 256,
    "gamma": 0.9,
    "train_freq": 1,
    "gradient_steps": 1,
    "target_update_interval": 500,
    "exploration_fraction": 0.2,
}


@dataclass
class BuiltAgent:
    """An agent, the env it acts in, and what the experiment needs to know about it."""

    name: str
    agent: Any  # a Recommender or an SB3 model
    env: Any  # DriftRecVectorEnv (recommenders) or DriftRecSB3VecEnv (SB3 models)
    is_sb3: bool
    rollout_steps: int  # SB3 on-policy models advance in multiples of this (1 otherwise)
    attention_fn: Callable[[NDArray[np.float32]], NDArray[np.float64]] | None = None

    def greedy_actions(self, obs: NDArray[np.float32]) -> NDArray[np.int64]:
        """The agent's choices for ``obs`` ``(B, D)`` with exploration off (learns nothing)."""
        actions, _ = self.agent.predict(obs, deterministic=True)
        return np.asarray(actions, dtype=np.int64)

    def save(self, path: str) -> None:
        """Write an SB3 checkpoint (``.zip``); baselines have none and do nothing."""
        if self.is_sb3:
            self.agent.save(path)


def _text_features(env_config: EnvConfig, text_encoder: Any) -> NDArray[np.float32]:
    from driftrec.agents.text_encoder import TextEncoderConfig, encode_catalog
    from driftrec.envs.core import cached_catalog

    cfg = text_encoder if text_encoder is not None else TextEncoderConfig()
    return encode_catalog(cached_catalog(env_config).texts(), cfg)


def _attention_fn(model: Any) -> Callable[[NDArray[np.float32]], NDArray[np.float64]]:
    """What the next recommendation reads from the history, per impression ``(H,)``.

    With the content match (the default) these are its (dynamic) weights over the history,
    :meth:`~driftrec.agents.attention.AttentionRecommender.match_attention`, the recency the
    model actually uses to follow a user; otherwise the encoder's last-layer attention of the
    query. The function's ``source`` attribute names which (the attention figure's label).
    """
    import torch

    policy = model.policy
    # actor-critic policies expose it directly; DQN's lives in its Q-network
    recommender = policy.recommender if hasattr(policy, "recommender") else policy.q_net.recommender
    # id-only models have an all-zero text table: their content match is inert
    match = recommender.config.content_match and bool(recommender.match_table.any())
    weigh = recommender.match_attention if match else recommender.history_attention

    def fn(obs: NDArray[np.float32]) -> NDArray[np.float64]:
        with torch.no_grad():
            x = torch.as_tensor(obs[None], dtype=torch.float32, device=model.device)
            weights = weigh(x)[0]  # (H,) the query's row
        return weights.cpu().numpy().astype(np.float64)

    fn.source = (  # type: ignore[attr-defined]
        "content-match weight" if match else "encoder attention (last layer, mean over heads)"
    )
    return fn


def build_agent(
    name: str,
    env_config: EnvConfig,
    *,
    num_envs: int,
    seed: int,
    agent_kwargs: Mapping[str, Any] | None = None,
    text_encoder: Any = None,
    torch_threads: int = 1,
    device: str = "cpu",
) -> BuiltAgent:
    """Build agent ``name`` and its env (reset with ``seed``; slot ``i`` gets ``seed + i``).

    Args:
        name: one of :data:`AGENT_NAMES`.
        env_config: the world.
        num_envs: user slots stepped together.
        seed: seeds the env's users and the agent's own randomness (and torch for SB3 agents).
        agent_kwargs: constructor / algorithm overrides; for SB3 agents ``attention`` (dict)
            and ``policy_kwargs`` entries go to the policy, the rest to the algorithm.
        text_encoder: a :class:`~driftrec.agents.text_encoder.TextEncoderConfig` (default: the
            packaged MiniLM).
        torch_threads: torch intra-op threads for SB3 agents.
        device: torch device for SB3 agents.
    """
    if name not in AGENT_NAMES:
        raise ValueError(f"'agent' must be one of {list(AGENT_NAMES)} (got {name!r})")
    kwargs = dict(agent_kwargs or {})
    if name in BANDIT_AGENTS:
        from driftrec.agents.baselines import make_baseline
        from driftrec.envs.gym_env import DriftRecVectorEnv

        env = DriftRecVectorEnv(num_envs, env_config)
        env.reset(seed=seed)
        params = {**_BANDIT_DEFAULTS.get(name, {}), **kwargs}
        features = params.pop("item_features", None)  # e.g. the catalog's topic vectors
        if features is None and name in _TEXT_FEATURE_AGENTS:
            features = _text_features(env_config, text_encoder)
        agent = make_baseline(name, env, item_features=features, seed=seed, **params)
        return BuiltAgent(name, agent, env, is_sb3=False, rollout_steps=1)
    return _build_sb3(name, env_config, num_envs, seed, kwargs, text_encoder, torch_threads, device)


def _build_sb3(
    name: str,
    env_config: EnvConfig,
    num_envs: int,
    seed: int,
    kwargs: dict[str, Any],
    text_encoder: Any,
    torch_threads: int,
    device: str,
) -> BuiltAgent:
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import A2C, DQN, PPO

    from driftrec.agents.attention import AttentionConfig
    from driftrec.agents.sb3_policy import POLICY_NAME, configure_torch, recommender_policy_kwargs
    from driftrec.envs.sb3 import DriftRecSB3VecEnv

    configure_torch(torch_threads)
    env = DriftRecSB3VecEnv(num_envs, env_config, seed=seed)
    attention = {**ATTENTION_DEFAULTS, **kwargs.pop("attention", {})}
    extra_policy = dict(kwargs.pop("policy_kwargs", {}))
    algo_cls: Any
    if name == "mlp-ppo":
        algo_cls, policy, defaults = PPO, "MlpPolicy", PPO_DEFAULTS
        policy_kwargs = extra_policy or None
    else:
        algo_cls, defaults = {
            "attention-ppo": (PPO, PPO_DEFAULTS),
            "id-ppo": (PPO, PPO_DEFAULTS),
            "attention-a2c": (A2C, _A2C_DEFAULTS),
            "attention-maskable-ppo": (MaskablePPO, PPO_DEFAULTS),
            "attention-dqn": (DQN, _DQN_DEFAULTS),
        }[name]
        policy = POLICY_NAME
        policy_kwargs = recommender_policy_kwargs(
            env,
            attention=AttentionConfig(**{**attention, "history_len": 1}),
            text_encoder=text_encoder,
            ids_only=name == "id-ppo",
            **extra_policy,
        )
    params = {**defaults, **kwargs}
    if "batch_size" in params and "n_steps" in params:  # PPO: a minibatch fits in a rollout
        params["batch_size"] = min(params["batch_size"], params["n_steps"] * num_envs)
    model = algo_cls(policy, env, policy_kwargs=policy_kwargs, seed=seed, device=device, **params)
    rollout = int(getattr(model, "n_steps", 1) or 1) if algo_cls is not DQN else 1
    attention_fn = _attention_fn(model) if policy == POLICY_NAME else None
    return BuiltAgent(
        name, model, env, is_sb3=True, rollout_steps=rollout, attention_fn=attention_fn
    )
