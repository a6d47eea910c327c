"""Evaluate a saved SB3 checkpoint, frozen, on the world it was trained in (fresh users), or any
agent (a user's own included) frozen on a scenario (:func:`evaluate_agent`).

Checkpoints are loaded without unpickling anything (:func:`load_run_model`): the model is rebuilt
from the run's own ``config.json`` (JSON: agent, its settings, the world) and only the policy's
weights are read from ``model.zip``, with ``torch.load(weights_only=True)``. SB3's own ``load``
unpickles entries of the zip's ``data`` file, so a planted entry would run code; it is used only
when the caller says the file is trusted (``trust=True``, ``--trust-checkpoint``), with a warning.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from driftrec.agents.online import StepRecord, run_online
from driftrec.envs.config import EnvConfig

__all__ = [
    "require_finished",
    "evaluate_agent",
    "evaluate_checkpoint",
    "load_run_model",
    "measure_policy",
    "open_run",
    "read_checkpoint",
]


def _algorithm(agent: str) -> Any:
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import A2C, DQN, PPO

    from driftrec.agents.sb3_policy import BudgetPPO  # (importing registers the policy name)

    base = agent.removesuffix("-frozen")
    table = {
        "attention-a2c": A2C,
        "attention-dqn": DQN,
        "attention-maskable-ppo": MaskablePPO,
        "attention-ppo-long": BudgetPPO,
    }
    return table.get(base, PPO)


_RUN_KEYS = {"num_envs": int, "agent": str, "env_config": dict}


def _read_run_config(path: Path) -> dict[str, Any]:
    """The run's config.json, or a one-line error naming the file and what is wrong."""
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); expected the run's "
            "config.json as driftrec wrote it"
        ) from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text; expected the run's config.json") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a JSON object (got {type(cfg).__name__})")
    for key, kind in _RUN_KEYS.items():
        if key not in cfg:
            raise ValueError(f"{path}: missing field {key!r}; expected the run's config.json")
        if not isinstance(cfg[key], kind) or isinstance(cfg[key], bool):
            raise ValueError(f"{path}: field {key!r} must be a {kind.__name__} (got {cfg[key]!r})")
    return cfg


def _check_catalog(path: Path, cfg: dict[str, Any], now: str) -> None:
    """Refuse a checkpoint whose catalog rows changed since training (reordered, rewritten)."""
    then = cfg.get("catalog_fingerprint")
    if then is None:
        warnings.warn(
            f"{path} records no catalog fingerprint (an older driftrec wrote it): the catalog "
            "cannot be checked against the one the model was trained on",
            RuntimeWarning,
            stacklevel=3,
        )
    elif then != now:
        raise ValueError(
            f"{path}: the catalog changed since training (fingerprint {then[:12]} then, "
            f"{now[:12]} now): its rows were reordered, added or rewritten; expected the "
            "catalog the model was trained on"
        )


def _load_trusted(algorithm: Any, path: Path, env: Any) -> Any:
    """SB3's full ``load`` (it unpickles): only for a file the user said they trust."""
    warnings.warn(
        f"loading {path} with SB3's full load, which unpickles the file and can run any code it "
        "holds: do this only for checkpoints you made or trust",
        UserWarning,
        stacklevel=3,
    )
    try:
        return algorithm.load(path, env=env, device="cpu")
    except Exception as exc:  # zipfile, pickle, torch and SB3 all have their own errors
        raise ValueError(
            f"{path} cannot be loaded as a {algorithm.__name__} checkpoint "
            f"({type(exc).__name__}: {_short(exc)}); expected an SB3 model.zip"
        ) from None


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text[:limit] + "..." if len(text) > limit else text


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(policy state dict, plain data)`` of an SB3 ``.zip``, without unpickling anything.

    The policy's tensors come from ``policy.pth`` through ``torch.load(weights_only=True)``;
    ``data`` is parsed as JSON and only its plain entries are kept (SB3 stores classes,
    spaces and schedules as base64 pickles under ``":serialized:"``: those are skipped, never
    decoded).

    Raises:
        ValueError: the file is not such a checkpoint (one line naming it and what is wrong).
    """
    import torch

    path = Path(path)

    def fail(reason: str) -> ValueError:
        return ValueError(
            f"{path} cannot be loaded as a checkpoint ({reason}); expected the model.zip "
            "driftrec wrote for this run"
        )

    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "policy.pth" not in names:
                raise fail("it holds no policy.pth")
            weights = archive.read("policy.pth")
            raw = archive.read("data") if "data" in names else b"{}"
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(str(path)):
            raise
        raise fail(f"not a readable zip file: {type(exc).__name__}: {_short(exc)}") from None
    try:
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's unpickler refuses anything but tensors and plain data
        raise fail(
            f"policy.pth is not a plain weights file: {type(exc).__name__}: {_short(exc)}"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise fail("policy.pth does not hold a state dict of tensors")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = {}
    plain = {
        k: v
        for k, v in (data.items() if isinstance(data, dict) else ())
        if not (isinstance(v, dict) and ":serialized:" in v)
    }
    return state, plain


def _load_weights(cfg: dict[str, Any], path: Path, env: Any) -> Any:
    """The run's model rebuilt from its ``config.json`` with ``path``'s policy weights."""
    from driftrec.agents.registry import SB3_AGENTS, build_agent

    state, data = read_checkpoint(path)
    base = cfg["agent"].removesuffix("-frozen")
    if base not in SB3_AGENTS:
        raise ValueError(
            f"{path}: the run's agent {cfg['agent']!r} has no SB3 checkpoint to rebuild; "
            f"expected a run of one of {list(SB3_AGENTS)}"
        )
    text_encoder = None
    adapter = cfg.get("text_adapter")
    trained = path.parent / "text_adapter"  # a run that fine-tuned its encoder (finetune_every)
    if cfg.get("finetune_every") is not None and trained.is_dir():
        adapter = str(trained)
    if cfg.get("text_model") is not None or adapter is not None:
        from driftrec.agents.text_encoder import TextEncoderConfig

        text_encoder = TextEncoderConfig(model=cfg.get("text_model"), adapter=adapter)
    built = build_agent(
        base,
        env.venv.config,
        num_envs=env.num_envs,
        seed=0,
        agent_kwargs=dict(cfg.get("agent_kwargs") or {}),
        text_encoder=text_encoder,
        torch_threads=int(cfg.get("torch_threads") or 1),
        device="cpu",
    )
    model = built.agent
    try:
        model.policy.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(
            f"{path} does not fit the model its run's config.json describes "
            f"({_short(exc)}); expected the model.zip driftrec wrote for this run"
        ) from None
    model.set_env(env)
    if isinstance(data.get("catalog_fingerprint"), str):
        model.catalog_fingerprint = data["catalog_fingerprint"]
    return model


def _require_model(run_dir: Path) -> Path:
    model_path = run_dir / "model.zip"
    if not model_path.is_file():
        raise FileNotFoundError(
            f"{model_path} does not exist: only SB3 agents save checkpoints (baselines keep no "
            "model between runs; re-run them with 'driftrec train')"
        )
    return model_path


def require_finished(run_dir: Path) -> None:
    """Refuse a run that did not finish: without ``done.json`` its files may stop anywhere
    (interrupted, failed, or still being written)."""
    if not (run_dir / "done.json").is_file():
        raise ValueError(
            f"{run_dir} has no done.json: the run did not finish (interrupted, failed or still "
            "running); expected a finished run (run its grid again to finish it)"
        )


def open_run(run_dir: str | Path, *, seed: int = 12345) -> tuple[dict[str, Any], Any]:
    """``(config, env)``: a run's ``config.json`` and its world with new users seeded from ``seed``.

    The env is a :class:`~driftrec.envs.sb3.DriftRecSB3VecEnv` with the oracle's info on; the
    catalog is checked against the one the run recorded. Call ``env.reset()`` before acting.
    """
    from driftrec.envs.sb3 import DriftRecSB3VecEnv

    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} does not exist: is {run_dir} a run directory?")
    require_finished(run_dir)
    cfg = _read_run_config(config_path)
    try:
        env_config = EnvConfig.from_dict(cfg["env_config"]).with_overrides(oracle_info=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{config_path}: field 'env_config' is invalid ({exc})") from None
    env = DriftRecSB3VecEnv(cfg["num_envs"], env_config)
    env.seed(seed)
    _check_catalog(config_path, cfg, env.venv.sim.catalog.content_fingerprint())
    return cfg, env


def load_run_model(
    run_dir: str | Path, cfg: dict[str, Any], env: Any, *, seed: int, trust: bool = False
) -> Any:
    """The SB3 model of ``run_dir/model.zip`` on ``env`` (from :func:`open_run`).

    The model is rebuilt from the run's ``config.json`` and given ``model.zip``'s policy weights
    (:func:`read_checkpoint`: nothing is unpickled). ``trust=True`` uses SB3's full ``load``
    instead (it unpickles the file, so only for a file you trust; a warning says so). ``env`` is
    seeded with ``seed`` afterwards, so the evaluation users are the ones asked for.
    """
    model_path = _require_model(Path(run_dir))
    if trust:
        model = _load_trusted(_algorithm(cfg["agent"]), model_path, env)
    else:
        model = _load_weights(cfg, model_path, env)
    env.seed(seed)
    saved = getattr(model, "catalog_fingerprint", None)
    if saved is not None and saved != env.venv.sim.catalog.content_fingerprint():
        raise ValueError(
            f"{model_path} was trained on another catalog than its run's (fingerprint "
            f"{saved[:12]}, the catalog now {env.venv.sim.catalog.content_fingerprint()[:12]})"
        )
    return model


def measure_policy(
    agent: Any,
    env: Any,
    steps: int,
    *,
    deterministic: bool = False,
    on_step: Any = None,
) -> dict[str, Any]:
    """Act (no learning) for ``steps`` global steps from ``env.reset()``; the reward figures.

    ``agent`` is an SB3 model (acting on ``env``) or a
    :class:`~driftrec.agents.base.Recommender` (acting on ``env.venv``, the same simulator);
    ``on_step`` also sees every :class:`StepRecord`. Call ``env.seed(s)`` first to act on the
    users of seed ``s`` from global step 0: a seeded reset restarts the world's clock, an
    unseeded one draws new users and keeps the clock running.
    """
    from driftrec.agents.online import is_sb3_model

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"'steps' must be an integer >= 1 (got {steps!r})")
    obs = env.reset()
    if is_sb3_model(agent):
        agent._last_obs = obs
        return _measure(agent, env, steps, deterministic, on_step)
    return _measure(agent, env.venv, steps, deterministic, on_step)


def _measure(
    agent: Any, env: Any, steps: int, deterministic: bool, on_step: Any = None
) -> dict[str, Any]:
    """Act on ``env`` as it is (no reset) for ``steps`` steps; the reward figures."""
    sums = {"reward": 0.0, "expected": 0.0, "oracle": 0.0, "clicks": 0.0, "n": 0}

    def hook(r: StepRecord) -> Any:
        sums["reward"] += float(r.reward.sum())
        sums["expected"] += float(np.sum(r.info["expected_reward"]))
        sums["oracle"] += float(np.sum(r.info["oracle_expected_reward"]))
        sums["clicks"] += float((r.info["clicked_item"] >= 0).sum())
        sums["n"] += r.reward.size
        return None if on_step is None else on_step(r)

    run_online(agent, env, steps, learn=False, on_step=hook, deterministic=deterministic)
    n = max(sums["n"], 1)
    return {
        "user_steps": sums["n"],
        "reward": round(sums["reward"] / n, 4),
        "expected_reward": round(sums["expected"] / n, 4),
        "oracle_reward": round(sums["oracle"] / n, 4),
        "normalized_reward": round(sums["expected"] / max(sums["oracle"], 1e-12), 4),
        "click_rate": round(sums["clicks"] / n, 4),
    }


def evaluate_checkpoint(
    run_dir: str | Path,
    *,
    steps: int = 256,
    seed: int = 12345,
    deterministic: bool = False,
    trust: bool = False,
) -> dict[str, Any]:
    """Load ``run_dir/model.zip`` and act (no learning) for ``steps`` global steps.

    The world is the run's own (``config.json``), with new users seeded from ``seed``; the
    global clock restarts at 0, so scheduled shifts happen at the same steps as in training.
    ``trust`` as in :func:`load_run_model`.

    Returns:
        Mean reward, expected reward, oracle expected reward, normalized reward, click rate.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{run_dir / 'config.json'} does not exist: is {run_dir} a run directory?"
        )
    require_finished(run_dir)
    _require_model(run_dir)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"'steps' must be an integer >= 1 (got {steps!r})")
    cfg, env = open_run(run_dir, seed=seed)
    model = load_run_model(run_dir, cfg, env, seed=seed, trust=trust)
    result = measure_policy(model, env, steps, deterministic=deterministic)
    return {"run": str(run_dir), "agent": cfg["agent"], **result}


def evaluate_agent(
    agent: str,
    *,
    scenario: str = "AbruptShift",
    steps: int = 256,
    seed: int = 12345,
    num_envs: int = 32,
    env_overrides: dict[str, Any] | None = None,
    agent_kwargs: dict[str, Any] | None = None,
    deterministic: bool = False,
    trust_checkpoint: bool = False,
) -> dict[str, Any]:
    """Build ``agent`` on ``scenario`` and let it act, without learning, for ``steps`` steps.

    ``agent`` is anything an experiment grid takes: a built-in or registered name, an import
    path ``package.module:NAME`` or a stable-baselines3 ``.zip`` (``trust_checkpoint=True`` to
    load one; see :func:`driftrec.agents.registry.resolve_agent`). The users are those of
    ``seed`` from global step 0 (so scheduled shifts happen at their steps). A user agent's
    first ``predict`` is checked (shape, dtype, item ids).

    Returns:
        The agent, the scenario and :func:`measure_policy`'s figures.
    """
    from driftrec.agents.registry import FirstStepChecked, build_agent
    from driftrec.envs.scenarios import get_scenario

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"'steps' must be an integer >= 1 (got {steps!r})")
    sc = get_scenario(scenario)
    env_config = sc.config.with_overrides(**{**(env_overrides or {}), "oracle_info": True})
    built = build_agent(
        agent,
        env_config,
        num_envs=num_envs,
        seed=seed,
        agent_kwargs=agent_kwargs,
        trust_checkpoint=trust_checkpoint,
    )
    if built.is_sb3:
        built.env.seed(seed)
        result = measure_policy(built.agent, built.env, steps, deterministic=deterministic)
    else:
        built.env.reset(seed=seed)
        result = _measure(FirstStepChecked(built), built.env, steps, deterministic)
    return {"agent": agent, "scenario": sc.name, **result}
