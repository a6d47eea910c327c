"""A CleanRL-style PPO loop in plain PyTorch against ``driftrec.make_vec`` (no stable-baselines3),
then its trained policy evaluated in the pipeline next to the baselines.

    python examples/cleanrl_ppo.py --quick      # well under a minute
    python examples/cleanrl_ppo.py              # longer training, 3 evaluation seeds

One file, top to bottom as CleanRL writes it: the settings, the policy network, the rollout and
GAE, the clipped PPO update. The vector env is driftrec's batched core (a Gymnasium
``VectorEnv`` with same-step autoreset), so the loop is the usual one. The trained weights are
saved, and ``TrainedPolicy`` (a factory ``TrainedPolicy(env, seed=..., weights=...)``) puts them
into an experiment grid: the policy acts without learning while the baselines learn online, on
new users of the same world.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

import driftrec


@dataclass
class Args:
    scenario: str = "Stationary"
    num_items: int = 300  # catalog size (the scenario's generated catalog, its own seed)
    num_envs: int = 32  # users stepped together
    num_steps: int = 16  # rollout length per update
    updates: int = 300  # PPO updates
    learning_rate: float = 3e-3
    gamma: float = 0.9
    gae_lambda: float = 0.9
    update_epochs: int = 4
    num_minibatches: int = 4
    clip_coef: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    seed: int = 0


class Policy(nn.Module):
    """Item embeddings; the user is the mean over the history of +embedding for a click and
    -embedding for a skip; logits are user . item + an item bias; a linear value head."""

    def __init__(self, layout, dim: int = 32) -> None:
        super().__init__()
        self.layout = layout
        self.item = nn.Embedding(layout.num_items, dim)
        nn.init.normal_(self.item.weight, std=0.1)
        self.bias = nn.Parameter(torch.zeros(layout.num_items))
        self.value = nn.Linear(dim, 1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lay = self.layout
        ids = obs[:, lay.item_ids].long()  # (B, H)
        mask = obs[:, lay.mask]  # (B, H)
        sign = (2.0 * (obs[:, lay.feedback] > 0).float() - 1.0) * mask  # (B, H) +1 click, -1 skip
        user = (self.item(ids) * sign[..., None]).sum(1)  # (B, dim)
        user = user / mask.sum(1, keepdim=True).clamp(min=1.0)
        logits = user @ self.item.weight.T + self.bias  # (B, N)
        return logits, self.value(user).squeeze(-1)  # (B, N), (B,)


def train(args: Args) -> Policy:
    """PPO on ``args.scenario``; returns the trained policy."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    envs = driftrec.make_vec(args.scenario, num_envs=args.num_envs, num_items=args.num_items)
    policy = Policy(envs.layout)
    optimizer = torch.optim.Adam(policy.parameters(), lr=args.learning_rate, eps=1e-5)
    n, b = args.num_steps, args.num_envs
    obs = torch.zeros((n, b, envs.single_observation_space.shape[0]))
    actions = torch.zeros((n, b), dtype=torch.long)
    logprobs, rewards, dones, values = (torch.zeros((n, b)) for _ in range(4))

    next_obs = torch.as_tensor(envs.reset(seed=args.seed)[0])
    next_done = torch.zeros(b)
    t0 = time.perf_counter()
    for update in range(1, args.updates + 1):
        for step in range(n):  # rollout
            obs[step], dones[step] = next_obs, next_done
            with torch.no_grad():
                logits, value = policy(next_obs)
            dist = Categorical(logits=logits)
            action = dist.sample()
            actions[step], logprobs[step], values[step] = action, dist.log_prob(action), value
            o, r, terminated, truncated, _ = envs.step(action.numpy())
            rewards[step] = torch.as_tensor(r, dtype=torch.float32)
            next_obs = torch.as_tensor(o)
            next_done = torch.as_tensor(terminated | truncated, dtype=torch.float32)

        with torch.no_grad():  # generalised advantage estimation
            next_value = policy(next_obs)[1]
            advantages = torch.zeros_like(rewards)
            last = torch.zeros(b)
            for t in reversed(range(n)):
                nonterminal = 1.0 - (next_done if t == n - 1 else dones[t + 1])
                following = next_value if t == n - 1 else values[t + 1]
                delta = rewards[t] + args.gamma * following * nonterminal - values[t]
                last = delta + args.gamma * args.gae_lambda * nonterminal * last
                advantages[t] = last
            returns = advantages + values

        flat = (obs.reshape(n * b, -1), actions.reshape(-1), logprobs.reshape(-1),
                advantages.reshape(-1), returns.reshape(-1))  # fmt: skip
        order = np.arange(n * b)
        size = n * b // args.num_minibatches
        for _ in range(args.update_epochs):  # clipped PPO update
            np.random.default_rng(update).shuffle(order)
            for start in range(0, n * b, size):
                idx = torch.as_tensor(order[start : start + size])
                mb_obs, mb_act, mb_logp, mb_adv, mb_ret = (x[idx] for x in flat)
                logits, value = policy(mb_obs)
                dist = Categorical(logits=logits)
                ratio = (dist.log_prob(mb_act) - mb_logp).exp()
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(
                    -mb_adv * ratio,
                    -mb_adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef),
                ).mean()
                v_loss = 0.5 * ((value - mb_ret) ** 2).mean()
                loss = pg_loss + args.vf_coef * v_loss - args.ent_coef * dist.entropy().mean()
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(policy.parameters(), args.max_grad_norm)
                optimizer.step()
        if update % max(1, args.updates // 5) == 0:
            print(
                f"update {update:4d}/{args.updates}  reward/step {rewards.mean():.3f}  "
                f"{update * n * b / (time.perf_counter() - t0):,.0f} env-steps/s"
            )
    return policy


class TrainedPolicy:
    """The saved policy as a driftrec agent: ``TrainedPolicy(env, seed=..., weights=PATH)``.

    It only acts (no ``update``): sampled from its distribution, or greedy when asked.
    """

    def __init__(self, env, seed: int = 0, weights: str = "") -> None:
        self.policy = Policy(env.layout)
        self.policy.load_state_dict(torch.load(weights, weights_only=True))
        self.generator = torch.Generator().manual_seed(seed)

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        with torch.no_grad():
            logits, _ = self.policy(torch.as_tensor(obs))
        if deterministic:
            return logits.argmax(dim=1).numpy(), None
        probs = torch.softmax(logits, dim=1)
        return torch.multinomial(probs, 1, generator=self.generator)[:, 0].numpy(), None


driftrec.register_agent("cleanrl-ppo", TrainedPolicy, description="examples/cleanrl_ppo.py")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small version (CI)")
    parser.add_argument("--out-dir", default="runs/examples", help="results root")
    cli = parser.parse_args(argv)
    args = Args(updates=40) if cli.quick else Args()

    policy = train(args)
    weights = Path(cli.out_dir) / "cleanrl_ppo.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(policy.state_dict(), weights)

    # the trained policy next to the baselines, on new users (seeds other than the training's)
    cfg = driftrec.ExperimentConfig(
        name="cleanrl-ppo",
        scenarios=(args.scenario,),
        agents=("random", "popularity", "linucb-discounted", "cleanrl-ppo"),
        agent_kwargs={"cleanrl-ppo": {"weights": str(weights)}},
        seeds=(1, 2) if cli.quick else (1, 2, 3),
        num_envs=args.num_envs,
        steps=128 if cli.quick else 1024,
        log_every=16 if cli.quick else 32,
        env_overrides={"num_items": args.num_items},
        vary_world=False,  # the world (and catalog) the policy was trained in
        out_dir=cli.out_dir,
    )
    driftrec.run_grid(cfg, progress=False, restart=True)
    report = driftrec.report(cfg.experiment_dir)
    for row in driftrec.summary_table(driftrec.load_results(cfg.experiment_dir)):
        print(f"{row['agent']:20s} reward / one-step oracle {row['normalized_reward'].mean:.3f}")
    print(f"report: {report}")


if __name__ == "__main__":
    main()
