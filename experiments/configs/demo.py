"""The demo: every kind of agent learning online across an abrupt shift of the population's tastes.

Seven agents on the AbruptShift scenario (1,000 generated items with language-model-encoded
texts), five seeds, 32 users stepped together for 1,536 global steps, the population's tastes
jumping at step 768: the uniform random recommender, decayed popularity, the two references that
bracket what personalisation is worth (``population-best``, PRIVILEGED: the one item best on
average for everyone; ``history-similarity``: no learning, text similarity to each user's recent
clicks), discounted LinUCB on the text embeddings, the attention recommender trained online with
PPO, and the same PPO with id embeddings instead of the language model; plus the greedy oracle
as the reference run of every seed (the report's return ratio divides by it), and every seed
draws its own world and catalog (``vary_world``). Two runs in parallel, one torch thread each;
BENCHMARKS.md ("The demo") gives the measured time on 2 cores.
"""

from __future__ import annotations

from driftrec.experiments.config import ExperimentConfig

AGENTS = (
    "random",
    "popularity",
    "population-best",
    "history-similarity",
    "linucb-discounted",
    "id-ppo",
    "attention-ppo",
)


def get_config(*, quick: bool = False, out_dir: str = "runs", workers: int = 2) -> ExperimentConfig:
    """The demo's experiment; ``quick`` is a tiny version for smoke tests."""
    if quick:
        return ExperimentConfig(
            name="demo-quick",
            scenarios=("AbruptShift",),
            agents=AGENTS,
            seeds=(0, 1),
            num_envs=8,
            steps=128,
            log_every=16,
            shift_at=64,
            out_dir=out_dir,
            workers=workers,
        )
    return ExperimentConfig(
        name="demo",
        scenarios=("AbruptShift",),
        agents=AGENTS,
        seeds=(0, 1, 2, 3, 4),
        num_envs=32,
        steps=1536,
        log_every=32,
        shift_at=768,
        out_dir=out_dir,
        workers=workers,
    )
