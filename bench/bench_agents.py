"""Benchmark the attention recommender: forward latency, PPO end to end, and the peer ratio.

    python bench/bench_agents.py              # everything (several minutes on 2 cores)
    python bench/bench_agents.py --quick      # a smoke run
    python bench/bench_agents.py --only ppo,peer --seconds 10
    python bench/bench_agents.py --device cuda

1. ``forward``: policy forward latency (``torch.inference_mode``) for a batch of 256
   observations with history 20 over catalogs of 1,000 / 10,000 / 100,000 items (random
   unit-norm 384-dim item embeddings, the MiniLM width), median of repeated calls.
2. ``ppo``: end-to-end env-steps/s of ``attention-ppo`` exactly as the agent registry builds it
   (:func:`driftrec.agents.registry.build_agent`: its PPO, attention and policy defaults, the
   SB3 VecEnv over the batched core) on Stationary at 16 / 64 / 256 users: rollout collection
   and PPO updates together, as ``model.learn`` runs them; also the module's default (larger)
   attention config.
3. ``peer``: the same ``attention-ppo`` at 64 users next to what a user gets from a plain
   stable-baselines3 setup on a peer simulator: SB3's ``PPO("MultiInputPolicy")`` (its MLP
   policy and PPO defaults) on SARDINE's single-item env (``sardine/SingleItem-Static-v0``, 8
   envs in SB3's ``DummyVecEnv``), timed in alternating rounds in this process; prints both
   and their ratio (needs ``sardine-rec``: ``pip install "driftrec[bench]"``).
4. ``ablation``: the same ``attention-ppo`` at 64 users with each speed-up of the second round
   of issue #17 switched off in turn, alternating rounds in this process: the oracle's products
   on BLAS's own threads (how 0.3.0 ran below 65,536 user-item pairs: OpenBLAS splits 64 x
   1,000 over its threads, which stall on busy cores), the per-token encoder (LayerNorm and
   projections per history token instead of once per distinct token), and 0.5.0's PPO update
   (minibatches of 512 for 4 epochs instead of 256 for 2). Not in the default set.

Every rate is printed per wall second and per CPU second of this process
(``time.process_time``), with the load average beside it: on a shared machine the CPU figure
is closer to what a quiet machine does, and ratios measured in the same rounds are what
survives load. Torch uses one thread unless ``--threads`` says otherwise. With a CUDA device
(``--device cuda``, or by default when one is present) the forward and PPO sections also run
there.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from driftrec.agents.attention import AttentionConfig, AttentionRecommender
from driftrec.agents.registry import ATTENTION_DEFAULTS, PPO_DEFAULTS, build_agent
from driftrec.agents.sb3_policy import configure_torch
from driftrec.envs.observation import ObservationLayout
from driftrec.envs.scenarios import get_scenario

SARDINE_ID = "sardine/SingleItem-Static-v0"
SECTIONS = ("forward", "ppo", "peer", "ablation")
DEFAULT_SECTIONS = ("forward", "ppo", "peer")


def _random_obs(rng: np.random.Generator, batch: int, history: int, num_items: int) -> np.ndarray:
    lay = ObservationLayout(history, num_items)
    obs = np.zeros((batch, lay.size), dtype=np.float32)
    obs[:, lay.item_ids] = rng.integers(0, num_items, (batch, history))
    obs[:, lay.feedback] = rng.random((batch, history)) < 0.3
    obs[:, lay.mask] = 1.0
    return obs


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


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
            _sync(device)
            t = time.perf_counter()
            model(obs)
            _sync(device)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


class Learner:
    """A model whose ``learn`` is timed one rollout at a time, across alternating rounds."""

    def __init__(self, model: Any, rollout: int) -> None:
        self.model = model
        self.rollout = rollout  # env-steps per learn() call (one PPO rollout and update)
        model.learn(rollout, reset_num_timesteps=False)  # warm-up: first rollout and update

    def run(self, seconds: float) -> tuple[float, float]:
        """Learn for at least ``seconds`` (whole rollouts, at least one): (env-steps/s wall,
        env-steps per CPU second of this process)."""
        m = self.model
        start, t0, c0 = m.num_timesteps, time.perf_counter(), time.process_time()
        while True:
            m.learn(self.rollout, reset_num_timesteps=False)
            if time.perf_counter() - t0 >= seconds:
                break
        done = m.num_timesteps - start
        return done / (time.perf_counter() - t0), done / (time.process_time() - c0)


def attention_ppo(
    num_envs: int,
    device: str,
    embeddings: str | None,
    attention: dict[str, Any] | None = None,
    ppo_kwargs: dict[str, Any] | None = None,
) -> Learner:
    """``attention-ppo`` on Stationary as the registry builds it (``attention``/``ppo_kwargs``:
    overrides, as a grid's ``agent_kwargs`` would give them)."""
    kwargs: dict[str, Any] = dict(ppo_kwargs or {})
    if attention is not None:
        kwargs["attention"] = attention
    if embeddings is not None:
        kwargs["policy_kwargs"] = {"embeddings_file": embeddings}
    built = build_agent(
        "attention-ppo",
        get_scenario("Stationary").config,
        num_envs=num_envs,
        seed=0,
        agent_kwargs=kwargs,
        torch_threads=torch.get_num_threads(),
        device=device,
    )
    return Learner(built.agent, built.rollout_steps * num_envs)


def sardine_ppo(ppo_kwargs: dict[str, Any] | None = None, num_envs: int = 8) -> Learner:
    """SB3's ``PPO("MultiInputPolicy")`` on SARDINE's single-item env (SB3's PPO defaults, or
    ``ppo_kwargs``)."""
    import sardine  # noqa: F401  (registers the sardine/* ids)
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env(SARDINE_ID, n_envs=num_envs, seed=0)
    kwargs = dict(ppo_kwargs or {})
    if "batch_size" in kwargs and "n_steps" in kwargs:  # as the registry clamps it
        kwargs["batch_size"] = min(kwargs["batch_size"], kwargs["n_steps"] * num_envs)
    model = PPO("MultiInputPolicy", env, seed=0, device="cpu", **kwargs)
    return Learner(model, model.n_steps * num_envs)


def _sardine_version() -> str | None:
    try:
        from importlib.metadata import version

        import sardine  # noqa: F401
    except ImportError:
        return None
    return version("sardine-rec")


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _table(title: str, header: list[str]) -> None:
    print(f"\n## {title}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header), flush=True)


def _row(cells: list[Any]) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


def section_forward(devices: list[str], quick: bool, results: dict[str, Any]) -> None:
    catalogs = (1000,) if quick else (1000, 10_000, 100_000)
    configs = {
        "registry default (d32, 1 layer)": AttentionConfig(**ATTENTION_DEFAULTS),
        "module default (d64, 2 layers)": AttentionConfig(),
    }
    _table("forward latency, batch 256, history 20", ["device", "config", "items", "ms / batch"])
    for device in devices:
        for label, cfg in configs.items():
            for n in catalogs:
                s = forward_latency(n, cfg, device, repeats=5 if quick else 20)
                results["forward"].append(
                    {"device": device, "config": label, "items": n, "seconds": s}
                )
                _row([device, label, f"{n:,}", f"{s * 1e3:.2f}"])


def section_ppo(
    devices: list[str],
    quick: bool,
    seconds: float,
    embeddings: str | None,
    ppo_kwargs: dict[str, Any],
    results: dict[str, Any],
) -> None:
    print(f"\nPPO settings (registry defaults + overrides): { ({**PPO_DEFAULTS, **ppo_kwargs}) }")
    _table(
        "attention-ppo end to end (rollouts + updates), Stationary, 1,000 items",
        ["device", "config", "envs", "env-steps/s", "env-steps per CPU-s", "load"],
    )
    configs: dict[str, dict[str, Any] | None] = {"registry default (d32, 1 layer)": None}
    if not quick:
        configs["module default (d64, 2 layers)"] = dataclasses.asdict(AttentionConfig())
    for device in devices:
        for label, attention in configs.items():
            for n in (16,) if quick else (16, 64, 256):
                learner = attention_ppo(n, device, embeddings, attention, ppo_kwargs)
                rate, cpu = learner.run(seconds)
                results["ppo"].append(
                    {
                        "device": device,
                        "config": label,
                        "num_envs": n,
                        "env_steps_per_s": rate,
                        "env_steps_per_cpu_s": cpu,
                        "load": os.getloadavg()[0],
                    }
                )
                _row([device, label, n, f"{rate:,.0f}", f"{cpu:,.0f}", _load()])


def section_peer(
    quick: bool, seconds: float, rounds: int, embeddings: str | None, results: dict[str, Any]
) -> None:
    version = _sardine_version()
    if version is None:
        print('\n## peer: skipped (sardine-rec is not installed: pip install "driftrec[bench]")')
        return
    learners = {
        "ours": attention_ppo(64, "cpu", embeddings),
        "peer (SB3 defaults)": sardine_ppo(),
        "peer (our PPO settings)": sardine_ppo(PPO_DEFAULTS),
    }
    for name, learner in learners.items():
        m = learner.model
        print(
            f"{name}: n_steps {m.n_steps}, batch {m.batch_size}, {m.n_epochs} epochs, "
            f"{m.get_env().num_envs} envs"
        )
    print(
        f"ours: attention-ppo at the registry defaults on driftrec's Stationary; peers: SB3 "
        f"PPO('MultiInputPolicy') on {SARDINE_ID} (sardine-rec {version}, DummyVecEnv); "
        "alternating rounds, CPU"
    )
    names = list(learners)
    _table(
        "ours vs the peer, end to end (env-steps/s; per CPU-s in brackets)",
        ["round", *names, "ours / slower peer", "ours / faster peer", "load"],
    )
    rows: list[dict[str, tuple[float, float]]] = []
    for r in range(1 if quick else rounds):
        row = {name: learner.run(seconds) for name, learner in learners.items()}
        rows.append(row)
        peers = sorted((row[n] for n in names[1:]), key=lambda x: x[0])
        ours = row["ours"]
        _row(
            [
                r + 1,
                *(f"{row[n][0]:,.0f} ({row[n][1]:,.0f})" for n in names),
                f"{ours[0] / peers[0][0]:.2f} ({ours[1] / peers[0][1]:.2f})",
                f"{ours[0] / peers[-1][0]:.2f} ({ours[1] / peers[-1][1]:.2f})",
                _load(),
            ]
        )
    summary = {}
    for n in names:
        summary[n] = tuple(statistics.median(row[n][i] for row in rows) for i in (0, 1))
    fastest = max(names[1:], key=lambda n: summary[n][0])
    ratio = summary["ours"][0] / summary[fastest][0]
    ratio_cpu = summary["ours"][1] / summary[fastest][1]
    print(
        f"medians over {len(rows)} rounds: ours / the faster peer ({fastest}) = {ratio:.2f} "
        f"(wall), {ratio_cpu:.2f} (CPU)"
    )
    results["peer"] = {
        "sardine_rec": version,
        "rounds": [{n: list(v) for n, v in row.items()} for row in rows],
        "faster_peer": fastest,
        "ratio_wall": ratio,
        "ratio_cpu": ratio_cpu,
    }


@contextlib.contextmanager
def _blas_threads_free(model: Any) -> Iterator[None]:
    """The oracle's products on BLAS's own threads below 65,536 user-item pairs (0.3.0)."""
    from driftrec.envs import core

    default = core._ONE_BLAS_THREAD_ABOVE
    core._ONE_BLAS_THREAD_ABOVE = 1 << 16
    try:
        yield
    finally:
        core._ONE_BLAS_THREAD_ABOVE = default


@contextlib.contextmanager
def _per_token_encoder(model: Any) -> Iterator[None]:
    """LayerNorm and projections per history token (before the token table)."""
    token_index = AttentionRecommender._token_index
    AttentionRecommender._token_index = lambda *args: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        AttentionRecommender._token_index = token_index  # type: ignore[method-assign]


@contextlib.contextmanager
def _ppo_minibatch_050(model: Any) -> Iterator[None]:
    """0.5.0's PPO update: minibatches of 512 for 4 epochs (its rate does not change the cost)."""
    saved = model.batch_size, model.n_epochs
    model.batch_size = min(512, model.n_steps * model.n_envs)
    model.n_epochs = 4
    try:
        yield
    finally:
        model.batch_size, model.n_epochs = saved


ABLATIONS: dict[str, Callable[[Any], contextlib.AbstractContextManager[None]]] = {
    "now": lambda model: contextlib.nullcontext(),
    "oracle on BLAS's threads (0.3.0)": _blas_threads_free,
    "per-token encoder": _per_token_encoder,
    "PPO 512 x 4 epochs (0.5.0)": _ppo_minibatch_050,
}


def section_ablation(
    quick: bool, seconds: float, rounds: int, embeddings: str | None, results: dict[str, Any]
) -> None:
    learner = attention_ppo(64, "cpu", embeddings)
    names = list(ABLATIONS)
    _table(
        "attention-ppo at 64 users, Stationary, each speed-up switched off in turn (env-steps/s; "
        "per CPU-s of the process, all threads, in brackets)",
        ["round", *names, *(f"now / {n}" for n in names[1:]), "load"],
    )
    for r in range(1 if quick else rounds):
        row = {}
        for name, switch in ABLATIONS.items():
            with switch(learner.model):
                row[name] = learner.run(seconds)
        results["ablation"].append({n: list(v) for n, v in row.items()})
        now = row["now"]
        _row(
            [
                r + 1,
                *(f"{v[0]:,.0f} ({v[1]:,.0f})" for v in row.values()),
                *(f"{now[0] / row[n][0]:.2f} ({now[1] / row[n][1]:.2f})" for n in names[1:]),
                _load(),
            ]
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument(
        "--device", help="torch device (default: cpu, plus cuda when a CUDA device is present)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20.0, help="time per PPO cell / round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (peer block)")
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT_SECTIONS),
        help=f"sections to run (of {','.join(SECTIONS)}; default %(default)s)",
    )
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
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"--only: unknown sections {unknown}; expected some of {list(SECTIONS)}")
    configure_torch(args.threads)
    if args.device is not None:
        devices = [args.device]
    else:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(
        f"# python {platform.python_version()}, torch {torch.__version__}, "
        f"{os.cpu_count()} cpus, torch threads {torch.get_num_threads()}, devices {devices}, "
        f"load average {_load()}"
    )
    if any(d.startswith("cuda") for d in devices):
        print(f"# gpu: {torch.cuda.get_device_name()}")
    results: dict[str, Any] = {"forward": [], "ppo": [], "peer": None, "ablation": []}
    seconds = 3.0 if args.quick else args.seconds
    if "forward" in sections:
        section_forward(devices, args.quick, results)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.embeddings
        if path is None and set(sections) & {"ppo", "peer", "ablation"}:
            from driftrec.agents.text_encoder import encode_catalog
            from driftrec.envs.core import cached_catalog

            path = os.path.join(tmp, "emb.npy")  # the registry would encode the same texts
            np.save(path, encode_catalog(cached_catalog(get_scenario("Stationary").config).texts()))
        if "ppo" in sections:
            section_ppo(devices, args.quick, seconds, path, args.ppo_kwargs, results)
        if "peer" in sections:
            section_peer(args.quick, seconds, args.rounds, path, results)
        if "ablation" in sections:
            section_ablation(args.quick, seconds, args.rounds, path, results)
    if args.json:
        from driftrec.experiments.io import atomic_write_json

        atomic_write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
