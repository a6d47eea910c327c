"""Is the planning decision of LongTermAversion visible in the observation?

The greedy oracle (privileged interests) with two spacing rules, on the same users:
``true spacing`` skips items whose click would start aversion (reads the hidden boredom);
``history spacing W`` skips items whose main topic was clicked in the last ``W`` observed
impressions (reads only the observation's history). If the history rule recovers much of the
true rule's gain, a policy that reads the history can learn the plan::

    .venv/bin/python bench/bench_history_spacing.py [--seeds 0,1,2,3,4] [--users 32]
        [--windows 8,12,16,20]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from driftrec.agents.baselines import OracleAgent
from driftrec.agents.planner import RolloutBase, _base_scores, _Spacing, stay_returns, tilt_vector
from driftrec.envs.gym_env import DriftRecVectorEnv
from driftrec.envs.scenarios import get_scenario
from driftrec.experiments.analysis import mean_ci


class HistorySpaced(OracleAgent):
    """Greedy oracle that skips main topics clicked in the last ``window`` impressions."""

    def __init__(self, env: Any, window: int) -> None:
        super().__init__(env)
        self.window = window
        self.main = np.asarray(env.catalog.topics).argmax(axis=1)  # (N,)

    def predict(self, observation: Any, state: Any = None, *args: Any, **kwargs: Any) -> Any:
        parts = self.layout.split(np.asarray(observation, dtype=np.float32))
        scores = self.sim.attraction_all()  # (B, N)
        w = self.window
        ids, clicked = parts.item_ids[:, -w:], (parts.feedback[:, -w:] > 0) & parts.mask[:, -w:]
        recent = np.zeros((scores.shape[0], int(self.main.max()) + 1), dtype=bool)  # (B, K)
        rows = np.broadcast_to(np.arange(scores.shape[0])[:, None], ids.shape)
        recent[rows[clicked], self.main[ids[clicked]]] = True
        return np.where(recent[:, self.main], scores - 1e3, scores).argmax(axis=1), state


class TrueSpaced(OracleAgent):
    """Greedy oracle that skips items whose click would start aversion (hidden boredom)."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.spacing = _Spacing(self.sim)
        self.vector = tilt_vector(self.sim, "quality")

    def _actions(self) -> Any:
        base = RolloutBase(spacing=True)
        return _base_scores(self.sim, base, self.vector, self.spacing).argmax(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--windows", default="8,12,16,20")
    args = parser.parse_args()
    rows: dict[str, list[float]] = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        cfg = get_scenario("LongTermAversion").config.with_overrides(
            world_seed=seed, catalog_seed=seed, oracle_info=False
        )
        env = DriftRecVectorEnv(args.users, config=cfg)
        agents = {"greedy oracle": OracleAgent(env), "true spacing": TrueSpaced(env)}
        for w in [int(x) for x in args.windows.split(",")]:
            agents[f"history spacing {w}"] = HistorySpaced(env, w)
        for name, agent in agents.items():
            rows.setdefault(name, []).append(float(stay_returns(agent, env, seed)[0].mean()))
    greedy = np.asarray(rows["greedy oracle"])
    true_gain = np.asarray(rows["true spacing"]) - greedy
    print("| policy | return per user | share of true spacing's gain |")
    print("|---|---:|---:|")
    for name, values in rows.items():
        ret = mean_ci(values)
        share = mean_ci((np.asarray(values) - greedy) / true_gain)
        print(
            f"| {name} | {ret.mean:.2f} ± {ret.half_width:.2f} "
            f"| {share.mean:.3f} ± {share.half_width:.3f} |"
        )


if __name__ == "__main__":
    main()
