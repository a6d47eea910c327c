#!/usr/bin/env python
"""Long-horizon RL on LongTerm: greedy on fresh users vs the greedy oracle and LinUCB.

    python bench/bench_longterm.py --out runs/longterm.json --figure docs/longterm_learning.png
    python bench/bench_longterm.py --seeds 0 --steps 1024 --eval-every 256   # a quick look
    python bench/bench_longterm.py --agents attention-ppo-long,attention-ppo  # with the default
    python bench/bench_longterm.py --steps 3648 --select-users 32  # the issue's claim (below)

Per seed (its own world and catalog): trains each learner online on 64 users for 4,096 steps
(262,144 env-steps), evaluates it greedily every 512 steps on 256 fresh users (one whole stay
each; user streams never seen in training) and runs, on the same fresh users, the greedy
one-step oracle and the planner (both PRIVILEGED) and linucb-discounted trained on the same
budget (learning online on the fresh users too, as it does in a run). Prints the return table,
the paired differences (same users) with 95% intervals per seed and over seeds, and writes the
learning curve (return ratio to the oracle vs training env-steps). With ``--select-users N`` the
learner keeps the snapshot that earned most on N validation users (other fresh users, checked at
every evaluation); their stays count in its budget, so the claim's run trains 3,648 steps
(233,472 env-steps; at most 259,072 with validation). Finished seeds are kept in
``--out`` (written after each seed) and reused by a second call with the same settings.
See :mod:`driftrec.experiments.longterm`.
"""

import argparse
import json
import os
import time

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")


def main() -> None:
    from driftrec.experiments.longterm import (
        LongTermSetting,
        format_summary,
        plot_learning_curves,
        run_study,
        summarize,
    )
    from driftrec.experiments.plots import save_figure

    default = LongTermSetting()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=default.scenario)
    parser.add_argument("--agents", default=",".join(default.agents), help="comma-separated")
    parser.add_argument("--baseline", default=default.baseline)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated")
    parser.add_argument("--num-envs", type=int, default=default.num_envs)
    parser.add_argument("--steps", type=int, default=default.steps)
    parser.add_argument("--eval-every", type=int, default=default.eval_every)
    parser.add_argument("--eval-users", type=int, default=default.eval_users)
    parser.add_argument(
        "--select-users",
        type=int,
        default=default.select_users,
        help="validation users per evaluation: keep the snapshot that earns most on them "
        "(their stays count in the budget; 0: the final policy)",
    )
    parser.add_argument(
        "--agent-kwargs", default="{}", help='per-agent overrides as JSON: {"agent": {...}}'
    )
    parser.add_argument("--env", default="{}", help="world overrides as JSON")
    parser.add_argument("--out", default=None, help="results JSON (finished seeds are reused)")
    parser.add_argument("--figure", default=None, help="write the learning curve here (.png)")
    args = parser.parse_args()
    setting = LongTermSetting(
        scenario=args.scenario,
        agents=tuple(a for a in args.agents.split(",") if a),
        baseline=args.baseline,
        num_envs=args.num_envs,
        steps=args.steps,
        eval_every=args.eval_every,
        eval_users=args.eval_users,
        select_users=args.select_users,
        agent_kwargs=json.loads(args.agent_kwargs),
        env_overrides=json.loads(args.env),
    )
    seeds = [int(s) for s in args.seeds.split(",") if s]
    start = time.perf_counter()
    results = run_study(setting, seeds, out=args.out, log=lambda m: print(m, flush=True))
    print(f"\n{time.perf_counter() - start:.0f} s wall (load {os.getloadavg()[0]:.1f})\n")
    print(format_summary(summarize(results, setting), setting))
    if setting.select_users:
        from driftrec.experiments.longterm import world_config

        cap = world_config(setting.scenario, 0, setting.env_overrides).session.max_steps
        for name in setting.agents:
            used = [setting.env_steps + r.select_env_steps[name] for r in results]
            kept = ", ".join(f"{r.selected[name]:,.0f}" for r in results)
            print(
                f"{name}: env-steps used per seed (training + validation) "
                f"{', '.join(f'{u:,}' for u in used)} (worst case {setting.budget(cap):,}); "
                f"snapshot kept after {kept} training env-steps"
            )
    for name in setting.agents:
        spent = [r.seconds[name] for r in results]
        rate = setting.env_steps * len(results) / max(sum(spent), 1e-9)
        per_seed = ", ".join(f"{s:.0f}" for s in spent)
        print(f"{name}: training {rate:,.0f} env-steps/s wall ({per_seed} s per seed)")
    if args.figure:
        print(f"figure: {save_figure(plot_learning_curves(results, setting), args.figure)}")


if __name__ == "__main__":
    main()
