"""Every agent by name, built for an env config and ready for ``run_online``.

Besides the built-in names below, an agent may be a user's own (:func:`resolve_agent` says which
a string is):

* an **import path** ``package.module:NAME``: ``NAME`` is a class or factory, called as
  ``NAME(env, seed=seed, **agent_kwargs)`` with the vector env it will act in (a
  :class:`~driftrec.envs.gym_env.DriftRecVectorEnv`), returning a
  :class:`~driftrec.agents.base.Recommender` (``predict`` as in stable-baselines3, optional
  ``update``); or a plain **policy function** ``NAME(obs) ->
  actions`` (a callable that takes no ``seed`` keyword), wrapped in
  :class:`~driftrec.agents.adapters.FunctionAgent`;
* a **registered name** (:func:`register_agent`, in the spirit of ``gymnasium.register``), also
  from the ``driftrec.agents`` entry-point group of installed packages;
* a **stable-baselines3 checkpoint**, a path ending in ``.zip``: a driftrec run's ``model.zip``
  is rebuilt from the run's ``config.json`` with only the policy weights read
  (:func:`driftrec.experiments.evaluate.load_run_model`); any other is loaded only with
  ``trust_checkpoint=True``, as SB3's ``load`` unpickles it (:mod:`driftrec.agents.adapters`).

The names and what each agent is are in :data:`AGENT_DESCRIPTIONS` (``driftrec agents`` prints
them): bandit baselines (``random``, ``popularity``, the privileged ``oracle``,
``epsilon-greedy``, ``linucb`` and its discounted / sliding-window variants, ``thompson``) act in a
:class:`~driftrec.envs.gym_env.DriftRecVectorEnv`; SB3 agents (``attention-ppo`` and its A2C,
MaskablePPO and DQN variants, the ``id-ppo`` ablation, ``mlp-ppo``) in a
:class:`~driftrec.envs.sb3.DriftRecSB3VecEnv`.

The SB3 agents' defaults come from two small sweeps (Stationary and AbruptShift; see
``BENCHMARKS.md``): a small, fast recommender (width 32, one layer, two heads, score temperature
0.3) and PPO with 16-step rollouts, minibatches of 256, 2 epochs, learning rate 4e-3 and
``gamma = gae_lambda = 0.9`` (until 0.5.0: minibatches of 512, 4 epochs, learning rate 3e-3;
the same number of optimizer steps per rollout on half the samples each, 1.3-1.5x faster end to end
with the demo's figures within their paired intervals). Override any of them with ``agent_kwargs``
(``{"learning_rate": 1e-3, "attention": {"embed_dim": 64}}``).

``attention-ppo-long`` is the same PPO and policy preset for long-horizon returns (the LongTerm
scenarios, where what a user clicks now changes every later click): ``gamma = 0.99``,
``gae_lambda = 0.95`` and 64-step rollouts (:data:`PPO_LONG_DEFAULTS`); the click model learns a
per-item carry-over and the policy may weigh it and re-weigh the item prior
(``carryover``, ``policy_tilt``: :data:`ATTENTION_LONG_DEFAULTS`); the critic reads the history
(``critic="history"``, in units of ``value_scale = 10`` clicks), and the policy gives an item the
user skipped twice in the observed history without clicking it zero probability
(``mask_rejected = 2``; both :data:`POLICY_LONG_DEFAULTS`).
``bench/bench_longterm.py`` measures it against the greedy oracle on fresh users.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
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
    "POLICY_DEFAULTS",
    "PPO_LONG_DEFAULTS",
    "ATTENTION_LONG_DEFAULTS",
    "POLICY_LONG_DEFAULTS",
    "AgentSpec",
    "ENTRY_POINT_GROUP",
    "register_agent",
    "registered_agents",
    "resolve_agent",
    "is_builtin",
    "agent_source",
    "user_agent_entry_points",
    "import_modules",
    "check_agent_output",
    "FirstStepChecked",
]

BANDIT_AGENTS = BASELINE_NAMES  # everything make_baseline builds
SB3_AGENTS = (
    "attention-ppo",
    "attention-a2c",
    "attention-maskable-ppo",
    "attention-dqn",
    "id-ppo",
    "mlp-ppo",
    "attention-ppo-long",  # last, so that the other agents keep their figure colours
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
    "attention-ppo-long": "the same PPO for the long term: gamma 0.99, a click carry-over, "
    "policy-only tilts, a history critic, twice-skipped items masked",
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
POLICY_DEFAULTS: dict[str, Any] = {
    # the click loss predicts the 4 newest impressions of each observation (every impression
    # is still a target in 4 consecutive observations of its user): the encoder then computes
    # its last layer for 5 of the 21 tokens, 1.5x faster per PPO update than every impression,
    # with the demo's ratios within their intervals (BENCHMARKS.md, "Throughput")
    "click_targets": 4,
}
"""``policy_kwargs`` of the attention actor-critic agents (PPO, A2C, MaskablePPO, id-ppo)."""
_CLICK_LOSS_AGENTS = ("attention-ppo", "attention-a2c", "attention-maskable-ppo", "id-ppo")
PPO_DEFAULTS: dict[str, Any] = {
    "n_steps": 16,
    # as many optimizer steps per rollout as 512 x 4 epochs at 3e-3 (0.5.0), each on half the
    # samples: the update costs half as much; the demo's figures stay within their paired
    # intervals on 10 seeds (BENCHMARKS.md, "Throughput")
    "batch_size": 256,
    "n_epochs": 2,
    "learning_rate": 4e-3,
    "gamma": 0.9,
    "gae_lambda": 0.9,
    "ent_coef": 0.0,
}
# attention-ppo-long: the preset for long-horizon returns (LongTerm); see BENCHMARKS.md
PPO_LONG_DEFAULTS: dict[str, Any] = {
    **PPO_DEFAULTS,
    "n_steps": 64,
    "batch_size": 512,  # the long-horizon claim was measured with these (0.5.0)
    "n_epochs": 4,
    "learning_rate": 5e-4,  # decays linearly to 0 over the budget (BudgetPPO)
    "budget_timesteps": 262_144,  # the budget: 64 users x 4,096 steps
    "final_lr_fraction": 0.0,
    "gamma": 0.99,
    "gae_lambda": 0.95,
}
ATTENTION_LONG_DEFAULTS: dict[str, Any] = {
    **ATTENTION_DEFAULTS,
    "score_temperature": 0.15,  # a sharper start: the policy PPO trains is closer to the greedy one
    "carryover": True,
    "policy_tilt": True,
}
POLICY_LONG_DEFAULTS: dict[str, Any] = {
    "critic": "history",
    "value_scale": 10.0,
    # an item skipped twice in the observed history and never clicked gets zero probability:
    # without it the greedy policy cycled a few items for every new user and lost 6-8% of
    # them in 30 steps (0.5.0; BENCHMARKS.md, "Long-horizon learning")
    "mask_rejected": 2,
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
    learns: bool = True  # False: a user agent without update() (it only acts)

    def greedy_actions(self, obs: NDArray[np.float32]) -> NDArray[np.int64]:
        """The agent's greedy choices for ``obs`` ``(B, D)``: exploration off, learns nothing.

        The agent's own ``greedy_actions`` when it has one (every baseline: LinUCB without its
        bonus, Thompson with the posterior mean, ...; see :mod:`driftrec.agents.baselines`);
        otherwise ``predict(obs, deterministic=True)`` (for SB3 policies the mode of the action
        distribution). Either way the random streams the run uses are left as they were: the
        agent's ``rng`` generator, numpy's global one and torch's CPU generator are saved and
        restored around the call, so recording greedy choices never changes a run.
        """
        greedy = getattr(self.agent, "greedy_actions", None)
        with _random_streams_kept(self.agent):
            if callable(greedy):
                actions = greedy(obs)
            else:
                actions, _ = self.agent.predict(obs, deterministic=True)
        return np.asarray(actions, dtype=np.int64)

    def save(self, path: str) -> None:
        """Write an SB3 checkpoint (``.zip``); baselines have none and do nothing."""
        if self.is_sb3:
            self.agent.save(path)


@contextmanager
def _random_streams_kept(agent: Any) -> Iterator[None]:
    """Restore the agent's ``rng``, numpy's global and torch's CPU generator states on exit."""
    rng = getattr(agent, "rng", None)
    rng_state = rng.bit_generator.state if isinstance(rng, np.random.Generator) else None
    np_state = np.random.get_state()
    torch = sys.modules.get("torch")  # only when loaded: a bandit run never imports it
    torch_state = torch.random.get_rng_state() if torch is not None else None
    try:
        yield
    finally:
        if rng_state is not None:
            rng.bit_generator.state = rng_state  # type: ignore[union-attr]
        np.random.set_state(np_state)
        if torch_state is not None:
            torch.random.set_rng_state(torch_state)  # type: ignore[union-attr]


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
    trust_checkpoint: bool = False,
) -> BuiltAgent:
    """Build agent ``name`` and its env (reset with ``seed``; slot ``i`` gets ``seed + i``).

    Args:
        name: one of :data:`AGENT_NAMES`, a registered name, an import path
            ``package.module:NAME`` or a stable-baselines3 ``.zip`` (see :func:`resolve_agent`).
        env_config: the world.
        num_envs: user slots stepped together.
        seed: seeds the env's users and the agent's own randomness (and torch for SB3 agents).
        agent_kwargs: constructor / algorithm overrides; for SB3 agents ``attention`` (dict)
            and ``policy_kwargs`` entries go to the policy, the rest to the algorithm.
        text_encoder: a :class:`~driftrec.agents.text_encoder.TextEncoderConfig` (default: the
            packaged MiniLM).
        torch_threads: torch intra-op threads for SB3 agents.
        device: torch device for SB3 agents.
        trust_checkpoint: allow loading a ``.zip`` agent with SB3's ``load`` (which unpickles
            it); refused otherwise.
    """
    kwargs = dict(agent_kwargs or {})
    spec = resolve_agent(name)
    if spec.is_user:
        return _build_user_agent(
            spec, env_config, num_envs, seed, kwargs, torch_threads, device, trust_checkpoint
        )
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
    from driftrec.agents.sb3_policy import (
        POLICY_NAME,
        BudgetPPO,
        configure_torch,
        recommender_policy_kwargs,
    )
    from driftrec.envs.sb3 import DriftRecSB3VecEnv

    configure_torch(torch_threads)
    env = DriftRecSB3VecEnv(num_envs, env_config, seed=seed)
    long = name == "attention-ppo-long"
    attention_defaults = ATTENTION_LONG_DEFAULTS if long else ATTENTION_DEFAULTS
    attention = {**attention_defaults, **kwargs.pop("attention", {})}
    if long:  # measured with every impression as a click target (bench/bench_longterm.py)
        policy_defaults = dict(POLICY_LONG_DEFAULTS)
    else:
        policy_defaults = dict(POLICY_DEFAULTS) if name in _CLICK_LOSS_AGENTS else {}
    if "click_targets" in policy_defaults:  # a shorter history: every impression
        h = env_config.session.history_len
        policy_defaults["click_targets"] = min(policy_defaults["click_targets"], h)
    extra_policy = {**policy_defaults, **kwargs.pop("policy_kwargs", {})}
    algo_cls: Any
    if name == "mlp-ppo":
        algo_cls, policy, defaults = PPO, "MlpPolicy", PPO_DEFAULTS
        policy_kwargs = extra_policy or None
    else:
        algo_cls, defaults = {
            "attention-ppo": (PPO, PPO_DEFAULTS),
            "attention-ppo-long": (BudgetPPO, PPO_LONG_DEFAULTS),
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


# --------------------------------------------------------------------------------------------
# users' own agents: registration, import paths, SB3 checkpoints

ENTRY_POINT_GROUP = "driftrec.agents"
"""Installed packages list agents here (``name = "pkg.module:Factory"``); the CLI sees them."""

_FROZEN_SUFFIX = "-frozen"  # experiments.config's suffix for the frozen contrast (reserved)


@dataclass(frozen=True)
class AgentSpec:
    """What an agent name stands for (:func:`resolve_agent`).

    Attributes:
        name: the name as given (without a ``-frozen`` suffix).
        kind: ``"builtin"``, ``"registered"`` (:func:`register_agent` or the
            ``driftrec.agents`` entry points), ``"import"`` (``package.module:NAME``) or
            ``"sb3-zip"`` (a stable-baselines3 checkpoint path).
        target: the entry point (``"package.module:NAME"``) or the ``.zip`` path; None for
            built-ins and for registered objects that cannot be imported by name.
        description: one line for ``driftrec agents``.
    """

    name: str
    kind: str
    target: str | None
    description: str

    @property
    def is_user(self) -> bool:
        """True for every agent that is not built into driftrec."""
        return self.kind != "builtin"


@dataclass
class _Registration:
    factory: Any  # a callable, or an entry-point string resolved on first use
    description: str
    entry_point: str | None  # "module:qualname" when the factory can be imported by name


_REGISTRY: dict[str, _Registration] = {}
_entry_points_loaded = False


def is_builtin(name: str) -> bool:
    """True when ``name`` is one of driftrec's own agents (:data:`AGENT_NAMES`)."""
    return name in AGENT_NAMES


def _entry_point_of(obj: Any) -> str | None:
    """``"module:qualname"`` of a module-level class or function, else None."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:  # <locals>, <lambda>
        return None
    if module == "__mp_main__":  # the main script as a spawned worker re-imports it
        module = "__main__"
    return f"{module}:{qualname}"


def _check_new_name(name: Any) -> None:
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(
            f"'name' must be a non-empty string without surrounding spaces (got {name!r})"
        )
    if ":" in name or name.endswith(".zip"):
        raise ValueError(
            f"'name' {name!r} looks like an import path or a .zip path; a registered name must "
            "contain no ':' and not end in '.zip'"
        )
    if name.endswith(_FROZEN_SUFFIX):
        raise ValueError(
            f"'name' {name!r} ends in {_FROZEN_SUFFIX!r}, which marks the frozen contrast; "
            "pick another name"
        )
    if is_builtin(name):
        raise ValueError(f"'name' {name!r} is a built-in agent; pick another name")


def register_agent(
    name: str,
    factory: Callable[..., Any] | str,
    *,
    description: str = "",
    overwrite: bool = False,
) -> None:
    """Make ``name`` an agent for :func:`build_agent`, experiment grids and the CLI.

    Like ``gymnasium.register``: call it in your package (its ``__init__``), then
    ``driftrec run --import yourpkg --agents name`` or ``ExperimentConfig(agents=(name,))``.
    Registering the same factory again changes nothing (a module imported twice is fine); another
    factory under a registered name is a clash, refused unless ``overwrite=True`` (the same rule
    as :func:`~driftrec.envs.scenarios.register_scenario`).

    Args:
        name: the agent's name (no ``:``, not ending in ``.zip`` or ``-frozen``, not a built-in).
        factory: a class or factory called as ``factory(env, seed=seed, **agent_kwargs)``
            returning a :class:`~driftrec.agents.base.Recommender`, a policy function
            ``obs -> actions`` (a callable without a ``seed`` keyword), or an entry-point
            string ``"package.module:NAME"`` imported on first use.
        description: one line for ``driftrec agents``.
        overwrite: replace an agent registered under ``name`` with another factory.

    Raises:
        ValueError: a bad or built-in name, or a clash with another factory (without
            ``overwrite``).
    """
    _check_new_name(name)
    if isinstance(factory, str):
        entry_point = factory
        _split_import_path(factory, name)  # a malformed string is refused now
    elif callable(factory):
        entry_point = _entry_point_of(factory)
    else:
        raise TypeError(
            f"'factory' of agent {name!r} must be callable or an import path "
            f"'package.module:NAME' (got {factory!r})"
        )
    if not isinstance(description, str):
        raise TypeError(f"'description' must be a str (got {description!r})")
    _load_entry_points()
    old = _REGISTRY.get(name)
    same = old is not None and (
        old.factory is factory or (entry_point is not None and old.entry_point == entry_point)
    )
    if old is not None and not same and not overwrite:
        raise ValueError(
            f"agent {name!r} is already registered with another factory "
            f"({old.entry_point or repr(old.factory)}); pass overwrite=True to replace it, or pick "
            "another name"
        )
    _REGISTRY[name] = _Registration(
        factory, description or (old.description if same else ""), entry_point
    )


def _load_entry_points() -> None:
    """Register (lazily, by entry-point string) the agents installed packages advertise."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY or is_builtin(ep.name):
            continue
        dist = getattr(getattr(ep, "dist", None), "name", None)
        where = f"from the {dist} package" if dist else "from an installed package"
        _REGISTRY[ep.name] = _Registration(ep.value, f"{ep.value} ({where})", ep.value)


def registered_agents() -> dict[str, str]:
    """``{name: description}`` of every registered agent (entry points included)."""
    _load_entry_points()
    return {
        name: reg.description or (reg.entry_point or repr(reg.factory))
        for name, reg in sorted(_REGISTRY.items())
    }


def user_agent_entry_points(names: Any) -> dict[str, str]:
    """``{name: entry point}`` of the registered agents among ``names`` that can be imported
    by name (what a spawned worker process needs to find them again)."""
    _load_entry_points()
    out = {}
    for name in names:
        reg = _REGISTRY.get(name)
        if reg is not None and reg.entry_point is not None:
            out[name] = reg.entry_point
    return out


def ensure_registered(entry_points: Mapping[str, str]) -> None:
    """In a worker process: register the names of ``entry_points`` that are missing here."""
    _load_entry_points()
    for name, target in entry_points.items():
        if name not in _REGISTRY:
            _REGISTRY[name] = _Registration(target, "", target)


def import_modules(modules: Any, *, field: str = "imports") -> None:
    """Import each module of ``modules`` (their ``register_agent`` calls run), or raise one
    line naming the module and the problem."""
    for module in modules:
        if not isinstance(module, str) or not all(p.isidentifier() for p in module.split(".")):
            raise ValueError(
                f"'{field}' entries must be module names such as 'mypkg' (got {module!r})"
            )
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
                raise ValueError(
                    f"'{field}': module {module!r} not found{_not_found_hint(exc.name)}"
                ) from None
            raise ValueError(f"'{field}': importing {module!r} failed ({_exc_text(exc)})") from exc
        except Exception as exc:
            raise ValueError(f"'{field}': importing {module!r} raised {_exc_text(exc)}") from exc


def _exc_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _not_found_hint(top: str) -> str:
    top = top.split(".")[0]
    here = Path.cwd()
    on_path = any(Path(p or ".").resolve() == here for p in sys.path)
    for candidate in (here / f"{top}.py", here / top):
        if candidate.exists() and not on_path:
            return (
                f" (./{candidate.name} exists, but the current directory is not on the module "
                "search path: run with PYTHONPATH=. or install your package)"
            )
    return " (is it installed, or its directory on PYTHONPATH?)"


def _split_import_path(path: str, label: str) -> tuple[str, str]:
    module, sep, attr = path.partition(":")
    ok = (
        sep
        and all(p.isidentifier() for p in module.split("."))
        and all(p.isidentifier() for p in attr.split("."))
    )
    if not ok:
        raise ValueError(
            f"agent {label!r}: expected an import path 'package.module:NAME' (got {path!r})"
        )
    return module, attr


def _import_object(path: str, label: str) -> Any:
    """The object an import path names, or one ``ValueError`` saying what is wrong."""
    module_name, attr = _split_import_path(path, label)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            hint = (
                f" (an import path names a module, not a file: "
                f"'{module_name.removesuffix('.py')}:{attr}')"
                if module_name.endswith(".py")
                else _not_found_hint(exc.name)
            )
            raise ValueError(f"agent {label!r}: module {exc.name!r} not found{hint}") from None
        raise ValueError(
            f"agent {label!r}: importing module {module_name!r} failed ({_exc_text(exc)})"
        ) from exc
    except Exception as exc:
        raise ValueError(
            f"agent {label!r}: importing module {module_name!r} raised {_exc_text(exc)}"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            interactive = (
                " (it is defined in an interactive session, which worker processes cannot "
                "import: run with workers=1)"
                if module_name in ("__main__", "__mp_main__") and not hasattr(module, "__file__")
                else ""
            )
            raise ValueError(
                f"agent {label!r}: module {module_name!r} has no attribute {attr!r}"
                f"{hint}{interactive}"
            ) from None
    if not callable(obj):
        raise ValueError(
            f"agent {label!r}: {attr} is a {type(obj).__name__}, not callable; expected a class "
            f"or factory called as {attr}(env, seed=seed), or a policy function obs -> actions"
        )
    return obj


def _unknown_agent(name: str, field: str) -> ValueError:
    _load_entry_points()
    known = [*AGENT_NAMES, *_REGISTRY]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    where = "" if field == "agent" else f" in '{field}'"
    return ValueError(
        f"unknown agent {name!r}{where}: {hint}expected one of {known}, a name registered "
        "with driftrec.register_agent, an import path 'package.module:NAME' or a "
        "stable-baselines3 model '.zip'"
        + (", optionally with '-frozen'" if field == "agents" else "")
    )


def resolve_agent(name: str, *, field: str = "agent") -> AgentSpec:
    """What ``name`` stands for; import paths are imported (and checked) now.

    Raises:
        ValueError: one line naming ``name`` and what is wrong (unknown name, module not
            found, attribute missing, not callable, a ``.zip`` that does not exist).
    """
    if not isinstance(name, str):
        raise TypeError(f"'{field}' must be a str (got {name!r})")
    if is_builtin(name):
        return AgentSpec(name, "builtin", None, AGENT_DESCRIPTIONS.get(name, ""))
    _load_entry_points()
    reg = _REGISTRY.get(name)
    if reg is not None:
        return AgentSpec(name, "registered", reg.entry_point, reg.description)
    if name.endswith(".zip"):
        if not Path(name).is_file():
            where = "" if field == "agent" else f" in '{field}'"
            raise ValueError(
                f"agent {name!r}{where}: the stable-baselines3 checkpoint {name} does not exist"
            )
        return AgentSpec(name, "sb3-zip", name, "a stable-baselines3 checkpoint")
    if ":" in name:
        obj = _import_object(name, name)
        doc = (inspect.getdoc(obj) or "").strip().splitlines()
        return AgentSpec(name, "import", name, doc[0] if doc else "")
    raise _unknown_agent(name, field)


def _factory(spec: AgentSpec) -> Any:
    """The callable behind a registered or import-path agent (imported on first use)."""
    if spec.kind == "import":
        return _import_object(spec.name, spec.name)
    reg = _REGISTRY[spec.name]
    if isinstance(reg.factory, str):
        reg.factory = _import_object(reg.factory, spec.name)
    return reg.factory


def _is_policy_function(obj: Any) -> bool:
    """True for a plain ``obs -> actions`` function: callable with one argument, no ``seed``."""
    if inspect.isclass(obj):
        return False
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    try:
        sig.bind(None, seed=0)
        return False
    except TypeError:
        pass
    try:
        sig.bind(None)
        return True
    except TypeError:
        return False


def agent_source(name: str) -> dict[str, Any] | None:
    """What identifies a user agent's code, for the run fingerprint; None for built-ins.

    Import paths and registered agents: the entry point and the SHA-256 of the source file
    that defines the factory (None where it cannot be read, e.g. a compiled module); a
    ``.zip``: the SHA-256 of the file. A change to another file the agent imports is not seen.
    """
    spec = resolve_agent(name)
    if not spec.is_user:
        return None
    from driftrec.agents.adapters import file_sha256

    if spec.kind == "sb3-zip":
        return {"kind": spec.kind, "sha256": file_sha256(spec.name)}
    factory = _factory(spec)
    entry = spec.target or _entry_point_of(factory)
    try:
        source = inspect.getsourcefile(factory)
    except TypeError:
        source = None
    if source is None:
        module = sys.modules.get(getattr(factory, "__module__", ""), None)
        source = getattr(module, "__file__", None)
    digest = file_sha256(source) if source and os.path.isfile(source) else None
    return {
        "kind": spec.kind,
        "entry_point": entry,
        "file": os.path.basename(source) if source else None,
        "sha256": digest,
    }


def _build_user_agent(
    spec: AgentSpec,
    env_config: EnvConfig,
    num_envs: int,
    seed: int,
    kwargs: dict[str, Any],
    torch_threads: int,
    device: str,
    trust_checkpoint: bool,
) -> BuiltAgent:
    if spec.kind == "sb3-zip":
        return _build_sb3_zip(spec, env_config, num_envs, seed, kwargs, torch_threads, device,
                              trust_checkpoint)  # fmt: skip
    from driftrec.agents.adapters import FunctionAgent
    from driftrec.agents.online import is_sb3_model
    from driftrec.envs.gym_env import DriftRecVectorEnv

    factory = _factory(spec)
    env = DriftRecVectorEnv(num_envs, env_config)
    env.reset(seed=seed)
    if _is_policy_function(factory):
        if kwargs:
            raise ValueError(
                f"agent {spec.name!r} is a policy function (obs -> actions): it takes no "
                f"agent_kwargs (got {kwargs})"
            )
        agent: Any = FunctionAgent(factory, name=spec.name)
    else:
        label = getattr(factory, "__qualname__", spec.name)
        try:
            agent = factory(env, seed=seed, **kwargs)
        except Exception as exc:
            raise ValueError(
                f"agent {spec.name!r}: {label}(env, seed={seed}"
                f"{''.join(f', {k}=...' for k in kwargs)}) raised {_exc_text(exc)}"
            ) from exc
        if is_sb3_model(agent):
            raise ValueError(
                f"agent {spec.name!r}: {label}(env, seed=...) returned a stable-baselines3 "
                "model; driftrec runs SB3 models from a saved checkpoint: save it and pass the "
                "'.zip' path as the agent"
            )
        if not callable(getattr(agent, "predict", None)):
            raise ValueError(
                f"agent {spec.name!r}: {label}(env, seed=...) returned "
                f"{type(agent).__name__}; expected an object with predict(observation, "
                "state=None, episode_start=None, deterministic=False) -> (actions, state) "
                "(the Recommender protocol of driftrec.agents.base)"
            )
    learns = callable(getattr(agent, "update", None))
    return BuiltAgent(spec.name, agent, env, is_sb3=False, rollout_steps=1, learns=learns)


def _build_sb3_zip(
    spec: AgentSpec,
    env_config: EnvConfig,
    num_envs: int,
    seed: int,
    kwargs: dict[str, Any],
    torch_threads: int,
    device: str,
    trust_checkpoint: bool,
) -> BuiltAgent:
    from driftrec.agents.adapters import load_sb3_zip
    from driftrec.agents.sb3_policy import configure_torch
    from driftrec.envs.sb3 import DriftRecSB3VecEnv

    if kwargs:
        raise ValueError(
            f"agent {spec.name!r} is a saved stable-baselines3 model: it takes no agent_kwargs "
            f"(got {kwargs})"
        )
    configure_torch(torch_threads)
    env = DriftRecSB3VecEnv(num_envs, env_config, seed=seed)
    run_dir = _driftrec_run_of(Path(spec.name))
    if run_dir is not None:  # a driftrec run's model.zip: rebuilt from its config, no unpickling
        from driftrec.experiments.evaluate import _read_run_config, load_run_model

        cfg = _read_run_config(run_dir / "config.json")
        model = load_run_model(run_dir, cfg, env, seed=seed, trust=trust_checkpoint)
    else:
        model = load_sb3_zip(spec.name, env, trust=trust_checkpoint, device=device)
    env.seed(seed)  # SB3's load seeds the env with the training seed: this run's users instead
    model.set_random_seed(seed)
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

    rollout = int(model.n_steps) if isinstance(model, OnPolicyAlgorithm) else 1
    policy = model.policy  # the attention recommender's policies (actor-critic or DQN's)
    ours = hasattr(policy, "recommender") or hasattr(getattr(policy, "q_net", None), "recommender")
    return BuiltAgent(
        spec.name,
        model,
        env,
        is_sb3=True,
        rollout_steps=rollout,
        attention_fn=_attention_fn(model) if ours else None,
    )


def _driftrec_run_of(path: Path) -> Path | None:
    """The run directory when ``path`` is the ``model.zip`` of a driftrec run of an SB3 agent
    (its ``config.json`` names one), else None."""
    import json

    config = path.parent / "config.json"
    if path.name != "model.zip" or not config.is_file():
        return None
    try:
        agent = json.loads(config.read_text(encoding="utf-8")).get("agent")
    except (OSError, ValueError, AttributeError):
        return None
    base = agent.removesuffix(_FROZEN_SUFFIX) if isinstance(agent, str) else None
    return path.parent if base in SB3_AGENTS else None


def check_agent_output(built: BuiltAgent) -> None:
    """Call ``predict`` once on the env's current observations and check the result
    (:func:`~driftrec.agents.adapters.check_actions`); SB3 models are checked by SB3 itself."""
    if built.is_sb3:
        return
    from driftrec.agents.adapters import check_actions

    env = built.env
    obs = env.sim.observation()
    try:
        out = built.agent.predict(
            obs, state=None, episode_start=np.ones(env.num_envs, dtype=bool), deterministic=False
        )
    except Exception as exc:
        raise ValueError(f"agent {built.name!r}: predict raised {_exc_text(exc)}") from exc
    check_actions(built.name, out, env.single_action_space, env.num_envs)


class FirstStepChecked:
    """A built user agent whose first ``predict`` is checked (shape, dtype, item range) before
    ``on_ok`` runs (the runner writes the run directory there); otherwise it is the agent."""

    def __init__(self, built: BuiltAgent, on_ok: Callable[[], None] | None = None) -> None:
        self._built = built
        self._checked = False
        self._on_ok = on_ok

    def predict(self, observation: Any, *args: Any, **kwargs: Any) -> Any:
        if self._checked:
            return self._built.agent.predict(observation, *args, **kwargs)
        from driftrec.agents.adapters import check_actions

        env = self._built.env
        try:
            out = self._built.agent.predict(observation, *args, **kwargs)
        except Exception as exc:
            raise ValueError(
                f"agent {self._built.name!r}: predict raised {_exc_text(exc)}"
            ) from exc
        check_actions(self._built.name, out, env.single_action_space, env.num_envs)
        self._checked = True
        if self._on_ok is not None:
            self._on_ok()
        return out

    def __getattr__(self, name: str) -> Any:  # update, name, privileged, ...
        return getattr(self._built.agent, name)
