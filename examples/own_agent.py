"""Your own agent against the baselines on a drift scenario, ending in the figures and report.

    python examples/own_agent.py --quick      # well under a minute
    python examples/own_agent.py              # the demo's size: 32 users, 1,536 steps, 3 seeds

The agent is a plain class with stable-baselines3's ``predict`` and an online ``update`` (the
``Recommender`` protocol of ``driftrec.agents.base``). It is constructed as
``RecentClicks(env, seed=seed)`` with the vector env it acts in. Registered under a name, it
goes into an experiment grid like a built-in agent. The same class also runs from the command
line through its import path::

    PYTHONPATH=examples driftrec run --agents random,popularity,own_agent:RecentClicks \\
        --scenarios AbruptShift --shift-at 768 --seeds 0,1 --report
"""

from __future__ import annotations

import argparse

import numpy as np

import driftrec


class RecentClicks:
    """Text similarity to the user's recent clicks, plus a decayed click rate per item."""

    def __init__(self, env, seed=0, decay=0.99, popularity_weight=1.0):
        from driftrec.agents.text_encoder import encode_catalog

        self.items = encode_catalog(env.catalog.texts())  # (N, 384) unit-norm MiniLM embeddings
        self.layout = env.layout
        self.decay, self.popularity_weight = decay, popularity_weight
        self.shown = np.ones(len(self.items))
        self.clicked = np.zeros(len(self.items))
        self.rng = np.random.default_rng(seed)

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        history = self.layout.split(obs)  # item_ids, feedback, mask: each (B, H)
        liked = (history.feedback > 0) & history.mask  # (B, H) the clicked impressions
        profile = (self.items[history.item_ids] * liked[..., None]).sum(axis=1)  # (B, 384)
        scores = profile @ self.items.T  # (B, N) similarity to what the user clicked
        scores += self.popularity_weight * self.clicked / self.shown  # (N,) click rate
        if not deterministic:  # a little exploration noise
            scores += 0.05 * self.rng.gumbel(size=scores.shape)
        return scores.argmax(axis=1), None

    def update(self, obs, action, reward, next_obs, done, info):
        self.shown *= self.decay
        self.clicked *= self.decay
        np.add.at(self.shown, action, 1.0)
        np.add.at(self.clicked, action, reward)


driftrec.register_agent("recent-clicks", RecentClicks, description="text match + click rate")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small version (CI)")
    parser.add_argument("--out-dir", default="runs/examples", help="results root")
    parser.add_argument("--workers", type=int, default=1, help="parallel runs")
    args = parser.parse_args(argv)

    steps = 256 if args.quick else 1536
    cfg = driftrec.ExperimentConfig(
        name="own-agent",
        scenarios=("AbruptShift",),
        agents=("random", "popularity", "history-similarity", "linucb-discounted", "recent-clicks"),
        seeds=(0, 1) if args.quick else (0, 1, 2),
        num_envs=16 if args.quick else 32,
        steps=steps,
        log_every=16 if args.quick else 32,
        shift_at=steps // 2,  # the population's tastes jump halfway
        env_overrides={"num_items": 300} if args.quick else {},
        out_dir=args.out_dir,
        workers=args.workers,
    )
    driftrec.run_grid(cfg, progress=False, restart=True)  # restart: the example starts fresh
    report = driftrec.report(cfg.experiment_dir)
    runs = driftrec.load_results(cfg.experiment_dir)
    for row in driftrec.summary_table(runs):
        print(f"{row['agent']:20s} reward / one-step oracle {row['normalized_reward'].mean:.3f}")
    print(f"report: {report}")
    print(f"adaptation figure: {cfg.experiment_dir / 'adaptation_AbruptShift.png'}")


if __name__ == "__main__":
    main()
