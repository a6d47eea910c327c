"""Does the content match's dynamic attention move to a user's new clicks? A counterfactual probe.

    python bench/bench_match_attention.py runs/demo/AbruptShift__attention-ppo__0 [RUN_DIR ...]

For each trained attention run (its ``model.zip``), a user's history of ``H`` clicks is built
whose oldest ``H - k`` clicks are on items near one item of the catalog in the text space and
whose newest ``k`` clicks are on items near the item farthest from it: a change of taste ``k``
impressions ago. Printed per ``k``: the share of the content-match weight on the ``k`` new clicks
(:meth:`~driftrec.agents.attention.AttentionRecommender.match_attention`), the share a fixed
recency decay with the model's own learned ``gamma`` would give them, and the policy's
probability mass on the new and on the old group of items. Means over runs and 16 random
histories each (seeded).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from driftrec.envs.observation import ObservationLayout

GROUP = 40  # items per group: the nearest neighbours of the two anchor items
DRAWS = 16  # random histories per (run, k)


def probe(run_dir: Path, ks: list[int], seed: int = 0) -> dict[int, tuple[float, ...]]:
    """``{k: (dynamic share, fixed-decay share, mass on new items, mass on old items)}``."""
    from driftrec.experiments.evaluate import load_run_model, open_run

    path = run_dir / "model.zip"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no trained model here (run with checkpoints on)")
    cfg, env = open_run(run_dir)
    rec = load_run_model(run_dir, cfg, env, seed=0).policy.recommender.eval()
    if not rec.config.content_match:
        raise ValueError(f"{path}: the model has no content match to probe")
    table = rec.match_table.numpy()
    old_anchor = 0
    new_anchor = int(np.argmin(table @ table[old_anchor]))
    old = np.argsort(-(table @ table[old_anchor]))[:GROUP]
    new = np.argsort(-(table @ table[new_anchor]))[:GROUP]
    h = rec.config.history_len
    gamma = rec.match_parameters()["decay"]
    decay = gamma ** np.arange(h)  # recency 0 = newest
    lay = ObservationLayout(h, rec.num_items)
    rng = np.random.default_rng(seed)
    out = {}
    for k in ks:
        obs = np.zeros((DRAWS, lay.size), dtype=np.float32)
        for row in range(DRAWS):
            obs[row, lay.item_ids] = np.concatenate([rng.choice(old, h - k), rng.choice(new, k)])
        obs[:, lay.feedback] = 1.0
        obs[:, lay.mask] = 1.0
        with torch.no_grad():
            x = torch.as_tensor(obs)
            share = rec.match_attention(x)[:, h - k :].sum(dim=1).mean().item()
            probs = torch.softmax(rec(x).scores, dim=1)  # (DRAWS, N)
        out[k] = (
            share,
            float(decay[:k].sum() / decay.sum()),
            float(probs[:, new].sum(dim=1).mean()),
            float(probs[:, old].sum(dim=1).mean()),
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run directories with a model.zip")
    p.add_argument("--ks", default="0,1,2,3,4,6,8", help="comma-separated numbers of new clicks")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    ks = [int(k) for k in args.ks.split(",")]
    results = [probe(Path(r), ks) for r in args.runs]
    print(f"{len(results)} run(s); {DRAWS} histories per k; groups of {GROUP} items")
    print(
        "| new clicks k | weight on them (dynamic) | fixed decay would give | "
        "p(new items) | p(old items) |"
    )
    print("|---:|---:|---:|---:|---:|")
    for k in ks:
        m = np.mean([r[k] for r in results], axis=0)
        print(f"| {k} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} | {m[3]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
