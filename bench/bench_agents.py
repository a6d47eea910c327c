"""Benchmark the attention recommender: forward latency and PPO end-to-end throughput.

    python bench/bench_agents.py            # full table (a few minutes on 2 cores)
    python bench/bench_agents.py --quick    # a smoke run
    python bench/bench_agents.py --device cuda

1. Policy forward latency (``torch.inference_mode``) for a batch of 256 observations with history
   20 over catalogs of 1,000 / 10,000 / 100,000 items (random unit-norm 384-dim item embeddings,
   the MiniLM width), median of repeated calls.
2. PPO end-to-end env-steps/s with ``AttentionRecommenderPolicy`` through the SB3 VecEnv at
   16 / 64 / 256 envs: rollout collection and PPO updates together, as ``model.learn`` runs them,
   for the agent registry's defaults and for the module's default (larger) config.

Torch uses one thread unless ``--threads`` says otherwise (see STACK.md / README: more threads
are slower for these sizes on small shared CPUs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np
import torch

from driftrec.agents.attention import AttentionConfig, AttentionRecommender
from driftrec.agents.registry import ATTENTION_DEFAULTS, PPO_DEFAULTS
from driftrec.agents.sb3_policy import configure_torch, recommender_policy_kwargs
from driftrec.envs.observation import ObservationLayout
from driftrec.envs.sb3 import make_sb3_vec_env


def _random_obs(rng: np.random.Generator, batch: int, history: int, num_items: int) -> np.ndarray:
    lay = ObservationLayout(history, num_items)
    obs = np.zeros((batch, lay.size), dtype=np.float32)
    obs[:, lay.item_ids] = rng.integers(0, num_items, (batch, history))
    obs[:, lay.feedback] = rng.random((batch, history)) < 0.3
    obs[:, lay.mask] = 1.0
    return obs


def forward_latency(num_items: int, config: AttentionConfig, device: str, repeats: int) -> float:
    """Median seconds of one forward pass for 256 observations."""
    rng = np.random.default_rng(0)
    table = rng.standard_normal((num_items, 384)).astype(np.float32)
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    model = AttentionRecommender(config, table).to(device).eval()
    obs = torch.as_tensor(_random_obs(rng, 256, config.history_len, num_items), device=device)
    times = []
    with torch.inference_mode():
        for _ in range(3):
            model(obs)
        for _ in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            model(obs)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def ppo_throughput(
    num_envs: int,
    attention: dict[str, Any],
    device: str,
    seconds: float,
    embeddings: str,
    ppo_kwargs: dict[str, Any] | None = None,
) -> tuple[float, float]:
    """Env-steps per wall second and per CPU second of this process (``time.process_time``)
    of ``PPO.learn`` with the attention policy, after one warm-up rollout. On a shared machine
    the CPU figure is the one that approximates what a quiet machine would do."""
    from stable_baselines3 import PPO

    env = make_sb3_vec_env("Stationary", num_envs=num_envs, seed=0, oracle_info=False)
    kwargs = recommender_policy_kwargs(
        env, attention=AttentionConfig(**attention), embeddings_file=embeddings
    )
    params = {**PPO_DEFAULTS, **(ppo_kwargs or {})}
    params["batch_size"] = min(params["batch_size"], params["n_steps"] * num_envs)
    model = PPO(
        "AttentionRecommenderPolicy", env, policy_kwargs=kwargs, seed=0, device=device, **params
    )
    rollout = params["n_steps"] * num_envs
    model.learn(rollout, reset_num_timesteps=False)  # warm-up
    start, t0, c0 = model.num_timesteps, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        model.learn(rollout, reset_num_timesteps=False)
    done = model.num_timesteps - start
    return done / (time.perf_counter() - t0), done / (time.process_time() - c0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20.0, help="time per PPO cell")
    parser.add_argument("--json", help="write results here (atomically)")
    parser.add_argument(
        "--embeddings", help="a .npy of the 1,000 item embeddings (default: encode the texts)"
    )
    parser.add_argument(
        "--ppo-kwargs",
        type=json.loads,
        default={},
        help="PPO settings over the registry defaults, as JSON (e.g. '{\"n_epochs\": 1}')",
    )
    args = parser.parse_args(argv)
    configure_torch(args.threads)
    print(
        f"# python {platform.python_version()}, torch {torch.__version__}, "
        f"{os.cpu_count()} cpus, torch threads {torch.get_num_threads()}, device {args.device}"
    )
    if args.device.startswith("cuda"):
        print(f"# gpu: {torch.cuda.get_device_name()}")
    results: dict[str, Any] = {"forward": [], "ppo": []}

    catalogs = (1000,) if args.quick else (1000, 10_000, 100_000)
    configs = {
        "registry default (d32, 1 layer)": AttentionConfig(**ATTENTION_DEFAULTS),
        "module default (d64, 2 layers)": AttentionConfig(),
    }
    print("\n## forward latency, batch 256, history 20")
    print("| config | items | ms / batch | observations/s |")
    print("|---|---|---|---|")
    for label, cfg in configs.items():
        for n in catalogs:
            s = forward_latency(n, cfg, args.device, repeats=5 if args.quick else 20)
            results["forward"].append({"config": label, "items": n, "seconds": s})
            print(f"| {label} | {n:,} | {s * 1e3:.2f} | {256 / s:,.0f} |", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.embeddings
        if path is None:
            from driftrec.agents.text_encoder import encode_catalog
            from driftrec.envs.gym_env import DriftRecEnv

            path = os.path.join(tmp, "emb.npy")
            np.save(path, encode_catalog(DriftRecEnv().catalog.texts()))
        print("\n## PPO end-to-end (rollouts + updates), Stationary, 1,000 items")
        print(f"PPO settings: { ({**PPO_DEFAULTS, **args.ppo_kwargs}) }")
        print("| config | envs | env-steps/s | env-steps per CPU-second |")
        print("|---|---|---|---|")
        envs = (16,) if args.quick else (16, 64, 256)
        att = {
            "registry default (d32, 1 layer)": ATTENTION_DEFAULTS,
            "module default (d64, 2 layers)": {},
        }
        for label, a in att.items():
            for n in envs:
                seconds = 3.0 if args.quick else args.seconds
                rate, cpu = ppo_throughput(n, a, args.device, seconds, path, args.ppo_kwargs)
                results["ppo"].append(
                    {
                        "config": label,
                        "num_envs": n,
                        "env_steps_per_s": rate,
                        "env_steps_per_cpu_s": cpu,
                    }
                )
                print(f"| {label} | {n} | {rate:,.0f} | {cpu:,.0f} |", flush=True)
    if args.json:
        from driftrec.experiments.io import atomic_write_json

        atomic_write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
