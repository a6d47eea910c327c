"""Compress a saved run's attention policy, and measure it against the full policy.

:func:`compress_run` reads ``RUN_DIR/model.zip``, compresses its recommender
(:mod:`driftrec.agents.compress`) and writes the policy file atomically
(``RUN_DIR/compressed-<method>.pt`` by default); :func:`evaluate_compressed` acts with that
file, frozen, on the run's world (the counterpart of
:func:`~driftrec.experiments.evaluate.evaluate_checkpoint`, the same figures) and can also write
the attention figure from the compressed model; :func:`compare_run` evaluates the full and the
compressed policy with the same users and the same sampling noise and reports the reward ratio,
greedy-action agreement and the forward latency of both, measured side by side
(``bench/bench_compress.py`` runs it over seeds).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from driftrec.agents.compress import (
    COMPRESS_METHODS,
    CompressedRecommender,
    DistilConfig,
    ScoreActor,
    distil_recommender,
    fold_recommender,
    load_compressed,
    quantize_int8,
    save_compressed,
)
from driftrec.agents.compress import FORMAT as COMPRESSED_FORMAT
from driftrec.experiments.evaluate import load_run_model, measure_policy, open_run

__all__ = [
    "collect_observations",
    "compare_run",
    "compress_run",
    "evaluate_compressed",
    "record_attention",
    "time_forward",
]

DISTIL_SEED_OFFSET = 7919
"""Distillation data come from users seeded ``seed + DISTIL_SEED_OFFSET``, not the eval users."""


def _recommender_and_slate(model: Any, run_dir: Path) -> tuple[Any, int, dict[str, Any]]:
    """The SB3 policy's recommender, its slate size and its masks of history items
    (:class:`ScoreActor`'s ``mask_consumed`` / ``mask_rejected``); refuses policies it cannot
    act like."""
    policy = model.policy
    recommender = getattr(policy, "recommender", None)
    if recommender is None:
        raise ValueError(
            f"{run_dir}/model.zip holds a {type(policy).__name__}: only the attention "
            "recommender's actor-critic policies (attention-ppo, attention-a2c) can be compressed"
        )
    dist = getattr(policy, "slate_distribution", "plackett-luce")
    space = model.action_space
    slate = int(np.asarray(getattr(space, "nvec", [1])).size)
    if slate > 1 and dist != "plackett-luce":
        raise ValueError(
            f"{run_dir}: slate_distribution {dist!r} cannot be compressed; expected "
            "'plackett-luce' (or single-item actions)"
        )
    masks = {
        "mask_consumed": bool(getattr(policy, "mask_consumed", False)),
        "mask_rejected": int(getattr(policy, "mask_rejected", 0)),
    }
    return recommender, slate, masks


def _load(
    run_dir: str | Path, seed: int, trust: bool = False
) -> tuple[dict[str, Any], Any, Any, int, dict[str, Any]]:
    run_dir = Path(run_dir)
    cfg, env = open_run(run_dir, seed=seed)
    model = load_run_model(run_dir, cfg, env, seed=seed, trust=trust)
    recommender, slate, masks = _recommender_and_slate(model, run_dir)
    return cfg, env, recommender.cpu().eval(), slate, masks


def collect_observations(
    actor: ScoreActor, env: Any, steps: int, *, every: int = 1
) -> NDArray[np.float32]:
    """``(M, D)`` the observations ``actor`` meets in ``steps`` steps (every ``every``-th step)."""
    kept: list[NDArray[np.float32]] = []
    count = 0

    def keep(r: Any) -> None:
        nonlocal count
        if count % every == 0:
            kept.append(np.asarray(r.observation, dtype=np.float32))
        count += 1

    measure_policy(actor, env, steps, on_step=keep)
    return np.concatenate(kept)


def _build(
    method: str,
    recommender: Any,
    env: Any,
    slate: int,
    steps: int,
    distil: DistilConfig | None,
    scope: str = "head",
    masks: Mapping[str, Any] | None = None,
) -> tuple[CompressedRecommender, CompressedRecommender, dict[str, Any]]:
    """``(float folded module to save, module to act with, facts)``."""
    facts: dict[str, Any] = {}
    source = recommender
    if method == "distil":
        teacher = ScoreActor(recommender, slate, seed=DISTIL_SEED_OFFSET, **(masks or {}))
        obs = collect_observations(teacher, env, steps, every=4)
        t0 = time.perf_counter()
        source, losses = distil_recommender(recommender, obs, distil)
        facts.update(
            distil_observations=int(obs.shape[0]),
            distil_loss_first=round(losses[0], 4),
            distil_loss_last=round(losses[-1], 4),
            distil_seconds=round(time.perf_counter() - t0, 1),
        )
    folded = fold_recommender(source)
    acting = folded if method == "fold" else quantize_int8(folded, scope)
    return folded, acting, facts


def _check_out(path: Path, overwrite: bool) -> None:
    """Refuse to write over a directory, or over a file that is not a compressed policy (an
    unrelated file the user named by mistake), unless ``overwrite``."""
    if path.is_dir():
        raise ValueError(f"'out' {str(path)!r} is a directory; expected a file name")
    if not path.exists() or overwrite:
        return
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        ours = isinstance(payload, dict) and payload.get("format") == COMPRESSED_FORMAT
    except Exception:  # not a torch file at all
        ours = False
    if not ours:
        raise FileExistsError(
            f"'out' {str(path)!r} exists and is not a policy 'driftrec compress' wrote; pass "
            "--overwrite (overwrite=True) to replace it, or choose another --out"
        )


def compress_run(
    run_dir: str | Path,
    *,
    method: str = "fold",
    out: str | Path | None = None,
    distil: DistilConfig | None = None,
    distil_steps: int | None = None,
    seed: int = 12345,
    scope: str = "head",
    trust: bool = False,
    overwrite: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Compress the run's policy with ``method`` and write it (atomically).

    Args:
        run_dir: a run directory with ``model.zip`` and ``config.json``.
        method: one of :data:`~driftrec.agents.compress.COMPRESS_METHODS`.
        out: the file to write (default ``RUN_DIR/compressed-<method>.pt``).
        distil: the student's shape and training (``distil`` only).
        scope: which Linears are int8 (:func:`~driftrec.agents.compress.quantize_int8`).
        distil_steps: global steps of teacher rollouts to distil on (default: the run's
            ``steps``; every 4th step's observations are kept), with users seeded apart from
            evaluation's (``seed + DISTIL_SEED_OFFSET``; ``seed`` is evaluation's default).
        trust: load ``model.zip`` with SB3's full load, which unpickles it (only for a file you
            trust); by default only its weights are read
            (:func:`~driftrec.experiments.evaluate.load_run_model`).
        overwrite: replace ``out`` even when it is not a policy file ``compress`` wrote (one it
            wrote is replaced anyway).

    Returns:
        The written path and what was done (method, sizes, distillation loss).
    """
    if method not in COMPRESS_METHODS:
        raise ValueError(f"'method' must be one of {list(COMPRESS_METHODS)} (got {method!r})")
    if distil_steps is not None:
        if method != "distil":
            raise ValueError(
                f"'distil_steps' applies to method 'distil' only (got {distil_steps!r} with "
                f"method {method!r})"
            )
        if isinstance(distil_steps, bool) or not isinstance(distil_steps, int) or distil_steps < 4:
            raise ValueError(f"'distil_steps' must be an integer >= 4 (got {distil_steps!r})")
    run_dir = Path(run_dir)
    path = Path(out) if out is not None else run_dir / f"compressed-{method}.pt"
    _check_out(path, overwrite)  # before any work
    cfg, env, recommender, slate, masks = _load(
        run_dir, seed=seed + DISTIL_SEED_OFFSET, trust=trust
    )
    steps = int(distil_steps if distil_steps is not None else cfg.get("steps", 256))
    folded, _, facts = _build(method, recommender, env, slate, steps, distil, scope, masks)
    metadata = {
        "run": str(run_dir),
        "agent": cfg["agent"],
        "catalog_fingerprint": cfg.get("catalog_fingerprint"),
        "slate_size": slate,
        **masks,
        **facts,
    }
    save_compressed(folded, path, method=method, scope=scope, metadata=metadata)
    zipped = run_dir / "model.zip"
    return path, {
        "path": str(path),
        "method": method,
        "int8_scope": scope if method != "fold" else None,
        "bytes": path.stat().st_size,
        "model_zip_bytes": zipped.stat().st_size if zipped.is_file() else None,
        **facts,
    }


def record_attention(
    env: Any, actor: ScoreActor, steps: int, *, seed: int, log_every: int = 32
) -> dict[str, NDArray[Any]]:
    """``attention.npz``'s arrays for ``actor`` acting greedily for ``steps`` steps on ``env``.

    The world restarts (a seeded reset: clock 0, users from ``seed``), and tracked user 0's
    attention over its history is recorded every ``log_every`` steps, as a run records it.
    """
    from driftrec.experiments.recorder import StepRecorder

    sim = env.venv.sim
    recorder = StepRecorder(
        sim.catalog,
        env.num_envs,
        sim.layout,
        interest_weight=sim.config.choice.interest_weight,
        log_every=log_every,
        attention_fn=actor.attention_fn,
    )
    env.seed(seed)
    measure_policy(actor, env, steps, deterministic=True, on_step=recorder.record)
    arrays = recorder.attention_arrays()
    if arrays is None:
        raise ValueError(
            f"no attention was recorded: 'steps' ({steps}) must reach at least one window of "
            f"{log_every} steps"
        )
    return arrays


def _attention_figure(run_dir: Path, arrays: dict[str, NDArray[Any]], png: Path) -> Path:
    """The attention figure of ``arrays`` with the run's drift events marked."""
    from driftrec.experiments.analysis import load_run
    from driftrec.experiments.plots import plot_attention, save_figure

    run = dataclasses.replace(load_run(run_dir), attention=arrays)
    ax = plot_attention(run, title=f"Attention over the history (compressed {run.agent}, user 0)")
    return save_figure(ax, png)


def evaluate_compressed(
    run_dir: str | Path,
    policy: str | Path,
    *,
    steps: int = 256,
    seed: int = 12345,
    deterministic: bool = False,
    attention_png: str | Path | None = None,
) -> dict[str, Any]:
    """Act with a compressed policy file, frozen, on the run's world (new users from ``seed``).

    The same figures as :func:`~driftrec.experiments.evaluate.evaluate_checkpoint`; with
    ``attention_png`` also the attention figure of the compressed model (tracked user 0,
    greedy actions, the world restarted; :func:`record_attention`).
    """
    run_dir = Path(run_dir)
    module, info = load_compressed(policy)
    cfg, env = open_run(run_dir, seed=seed)
    meta = info["metadata"]
    then = meta.get("catalog_fingerprint")
    now = env.venv.sim.catalog.content_fingerprint()
    if then is not None and then != now:
        raise ValueError(
            f"{policy} was compressed from a model of another catalog (fingerprint {then[:12]}, "
            f"this run's {now[:12]}); expected a policy compressed from {run_dir}"
        )
    if module.num_items != env.venv.sim.catalog.num_items:
        raise ValueError(
            f"{policy} scores {module.num_items} items but the run's catalog has "
            f"{env.venv.sim.catalog.num_items}"
        )
    actor = ScoreActor(
        module,
        int(meta.get("slate_size", 1)),
        seed=seed,
        name="compressed",
        mask_consumed=bool(meta.get("mask_consumed", False)),
        mask_rejected=int(meta.get("mask_rejected", 0)),
    )
    result = measure_policy(actor, env, steps, deterministic=deterministic)
    out = {"run": str(run_dir), "policy": str(policy), "method": info["method"], **result}
    if attention_png is not None:
        log_every = int(cfg.get("log_every", 32))
        arrays = record_attention(env, actor, steps, seed=seed, log_every=min(log_every, steps))
        out["attention_figure"] = str(_attention_figure(run_dir, arrays, Path(attention_png)))
    return out


def time_forward(
    modules: Mapping[str, Callable[[torch.Tensor], Any]],
    obs: torch.Tensor,
    *,
    rounds: int = 15,
    calls: int = 20,
) -> dict[str, float]:
    """Median seconds per call of each module on ``obs``, measured interleaved.

    Each round times ``calls`` calls of every module in turn, so a load spike from other
    processes hits all of them alike; the median over rounds is reported.
    """
    samples: dict[str, list[float]] = {name: [] for name in modules}
    with torch.inference_mode():
        for fn in modules.values():  # warm-up
            for _ in range(3):
                fn(obs)
        for _ in range(rounds):
            for name, fn in modules.items():
                t0 = time.perf_counter()
                for _ in range(calls):
                    fn(obs)
                samples[name].append((time.perf_counter() - t0) / calls)
    return {name: float(np.median(v)) for name, v in samples.items()}


def compare_run(
    run_dir: str | Path,
    *,
    methods: Sequence[str] = ("int8",),
    steps: int | None = None,
    seed: int = 12345,
    batch_sizes: Sequence[int] = (32, 256),
    distil: DistilConfig | None = None,
    scope: str = "head",
) -> dict[str, Any]:
    """The full policy and its compressions side by side on one run.

    Every policy acts for ``steps`` global steps (default: the run's) on the run's world with
    the same new users (``seed``) and the same sampling noise, sampled and greedy. Latency is
    the recommender's forward (observations -> scores) on batches of the observations the full
    policy met, timed interleaved in this process; agreement is the fraction of those
    observations where the greedy action is the full policy's.

    Returns:
        ``{"run", "full": {...}, "<method>": {...}}`` with ``normalized_reward``,
        ``greedy_normalized_reward``, ``reward_ratio``, ``greedy_reward_ratio``,
        ``greedy_agreement``, ``forward_ms_<B>`` and ``speedup_<B>``; ``full`` also has
        ``resampled_ratio``: the full policy with other sampling noise over itself, the scale of
        the sampled ratios' noise.
    """
    for m in methods:
        if m not in COMPRESS_METHODS:
            raise ValueError(f"'methods' must hold names from {list(COMPRESS_METHODS)} (got {m!r})")
    run_dir = Path(run_dir)
    cfg, env, recommender, slate, masks = _load(run_dir, seed=seed + DISTIL_SEED_OFFSET)
    steps = int(steps if steps is not None else cfg.get("steps", 256))
    modules: dict[str, Any] = {"full": recommender}
    facts: dict[str, dict[str, Any]] = {"full": {}}
    for m in methods:
        _, modules[m], facts[m] = _build(m, recommender, env, slate, steps, distil, scope, masks)
    results: dict[str, Any] = {"run": str(run_dir)}
    seen: list[NDArray[np.float32]] = []
    for name, module in modules.items():
        actor = ScoreActor(module, slate, seed=seed, name=name, **masks)
        hook = (lambda r: seen.append(np.asarray(r.observation))) if name == "full" else None
        env.seed(seed)  # the same users for every policy (reset consumes the seeds)
        sampled = measure_policy(actor, env, steps, on_step=hook)
        env.seed(seed)
        greedy = measure_policy(actor, env, steps, deterministic=True)
        results[name] = {
            "normalized_reward": sampled["normalized_reward"],
            "greedy_normalized_reward": greedy["normalized_reward"],
            **facts[name],
        }
    # the sampled figure's own noise: the full policy again with other sampling noise (one
    # differing draw changes that user's history, so later draws are no longer paired)
    env.seed(seed)
    again = measure_policy(ScoreActor(recommender, slate, seed=seed + 1, **masks), env, steps)
    results["full"]["resampled_ratio"] = round(
        again["normalized_reward"] / results["full"]["normalized_reward"], 4
    )
    obs = np.concatenate(seen)  # (steps * B, D)
    x = torch.as_tensor(obs)
    with torch.inference_mode():
        greedy_full = torch.cat([recommender(c).scores.argmax(1) for c in x.split(1024)])
        for m in methods:
            greedy_m = torch.cat([modules[m](c).scores.argmax(1) for c in x.split(1024)])
            results[m]["greedy_agreement"] = round(
                float((greedy_m == greedy_full).float().mean()), 4
            )
    rng = np.random.default_rng(seed)
    for b in batch_sizes:
        batch = torch.as_tensor(obs[rng.choice(obs.shape[0], size=b, replace=False)])
        times = time_forward(modules, batch)
        for name, t in times.items():
            results[name][f"forward_ms_{b}"] = round(t * 1e3, 4)
            results[name][f"speedup_{b}"] = round(times["full"] / t, 3)
    full = results["full"]
    for m in methods:
        r = results[m]
        r["reward_ratio"] = round(r["normalized_reward"] / full["normalized_reward"], 4)
        r["greedy_reward_ratio"] = round(
            r["greedy_normalized_reward"] / full["greedy_normalized_reward"], 4
        )
    return results
