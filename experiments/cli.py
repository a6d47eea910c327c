"""The ``driftrec`` command.

Subcommands::

    driftrec scenarios [--show NAME]        list the named scenarios, or print one as a file
    driftrec agents                         list the agents
    driftrec train  --scenario S --agent A  one online training run (saved like a grid run)
    driftrec evaluate RUN_DIR               evaluate a saved SB3 checkpoint frozen on its world
                    [--policy FILE]         ... or a compressed policy made by 'compress'
    driftrec evaluate --agent A --scenario S  any agent (yours too), acting without learning
    driftrec compress RUN_DIR [--method M]  compress a run's attention policy (int8, fold, distil)
    driftrec run    [--config F] [flags]    an experiment grid (scenario x agent x seed), resumable
                    [--backend ray [--address A]]   ... as Ray tasks (local Ray or a cluster)
    driftrec export --scenario S --agent A  roll out an agent, write a Minari dataset
    driftrec finetune --out DIR [flags]     train a LoRA adapter of the text encoder from clicks
    driftrec plot   EXP_DIR                 the figures of a saved experiment
    driftrec report EXP_DIR                 figures + report.md + summary table
    driftrec bench  [--quick]               the simulator benchmark
    driftrec demo   [--quick]               the main job: a short experiment, plots and report

Wherever an agent is named, it may be a built-in name, a name registered with
``driftrec.register_agent`` (``--import MODULE`` imports the module that registers it; installed
packages can list agents in the ``driftrec.agents`` entry-point group), an import path
``package.module:NAME`` or a stable-baselines3 ``.zip`` (``--trust-checkpoint`` to load it).

Every option is listed by ``driftrec <subcommand> --help``. Bad input is reported before any work
starts, with the field, the value and what was expected.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser"]


def _csv(kind: type) -> Any:
    def parse(text: str) -> tuple[Any, ...]:
        try:
            return tuple(kind(x.strip()) for x in text.split(",") if x.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {kind.__name__} (got {text!r})"
            ) from None

    return parse


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"expected a JSON object (got {text!r}: {exc.msg})"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object (got {text!r})")
    return value


def _shift_at(text: str) -> int | dict[str, int]:
    """``"1500"`` -> 1500; ``"AbruptShift=1500,my.json=800"`` -> a dict."""
    if "=" not in text:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected STEP or SCENARIO=STEP[,SCENARIO=STEP] (got {text!r})"
            ) from None
    out: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, step = part.rpartition("=")
        try:
            if not sep or not name:
                raise ValueError
            out[name.strip()] = int(step)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected STEP or SCENARIO=STEP[,SCENARIO=STEP] (got {text!r})"
            ) from None
    return out


AGENT_HELP = (
    "an agent name ('driftrec agents'), a registered name, an import path "
    "'package.module:NAME' of your own agent, or a stable-baselines3 '.zip'"
)


def _add_user_agent_options(p: argparse.ArgumentParser, *, trust: bool = True) -> None:
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        type=_csv(str),
        metavar="MODULE",
        help="import these modules first (comma-separated or repeated): their "
        "driftrec.register_agent calls make their agents known",
    )
    if not trust:
        return
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow '.zip' agents to be loaded with stable-baselines3's load(), which unpickles "
        "the file and can run arbitrary code: only for files you trust (a driftrec run's "
        "model.zip needs no trust: it is rebuilt from the run's config.json)",
    )


def _imports(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(m for group in (getattr(args, "imports", None) or ()) for m in group)


def _import_user_modules(args: argparse.Namespace) -> None:
    """Import the ``--import`` modules (their ``register_agent`` calls run)."""
    from driftrec.agents.registry import import_modules

    import_modules(_imports(args), field="--import")


def _add_grid_options(p: argparse.ArgumentParser, *, single: bool) -> None:
    _add_user_agent_options(p)
    if single:
        p.add_argument(
            "--scenario",
            default="AbruptShift",
            help="scenario name or scenario file (default: %(default)s)",
        )
        p.add_argument(
            "--agent", default="attention-ppo", help=f"{AGENT_HELP} (default: %(default)s)"
        )
        p.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    else:
        p.add_argument(
            "--config", type=Path, help="a JSON file of experiment settings; flags override it"
        )
        p.add_argument(
            "--scenarios",
            type=_csv(str),
            help="comma-separated scenario names or scenario files (.json/.toml)",
        )
        p.add_argument(
            "--agents",
            type=_csv(str),
            help=f"comma-separated agents, each {AGENT_HELP} ('-frozen' suffix allowed)",
        )
        p.add_argument("--seeds", type=_csv(int), help="comma-separated seeds")
        p.add_argument("--workers", type=int, help="parallel run processes")
    p.add_argument("--name", help="experiment name (results in OUT_DIR/NAME)")
    p.add_argument("--out-dir", help="results root (default: runs)")
    p.add_argument("--num-envs", type=int, help="users stepped together per run")
    p.add_argument("--steps", type=int, help="global steps per run")
    p.add_argument("--log-every", type=int, help="global steps per metrics window")
    p.add_argument(
        "--shift-at",
        type=_shift_at,
        metavar="[SCENARIO=]STEP",
        help="a population-wide abrupt shift at this global step, in place of the scenario's "
        "own schedule: SCENARIO=STEP[,SCENARIO=STEP] for those scenarios only; a bare STEP "
        "for every scenario of the grid",
    )
    p.add_argument("--frozen-at", type=int, help="when '-frozen' agents stop learning")
    p.add_argument(
        "--env",
        type=_json_object,
        dest="env_overrides",
        help="env config overrides as JSON: shortcuts, dotted paths or sections in the "
        'scenario-file form, e.g. \'{"num_items": 5000, "drift": {"processes": '
        '[{"kind": "Boredom", "gain": 0.3}]}}\'',
    )
    p.add_argument(
        "--agent-kwargs",
        type=_json_object,
        help='per-agent overrides as JSON, e.g. \'{"attention-ppo": {"learning_rate": 1e-3}}\'',
    )
    p.add_argument(
        "--torch-threads", type=int, help="torch threads per run (default 1: fastest on small CPUs)"
    )
    p.add_argument(
        "--text-model",
        help="local directory or hub id of the text encoder (default: packaged MiniLM)",
    )
    p.add_argument(
        "--text-adapter",
        help="a LoRA adapter directory of the text encoder (from 'driftrec finetune')",
    )
    p.add_argument(
        "--finetune-every",
        type=int,
        metavar="N",
        help="fine-tune the text encoder (LoRA) on each run's own click log every N global "
        "steps and swap the new item table into the agent (history-similarity, attention-*)",
    )
    p.add_argument(
        "--finetune",
        type=_json_object,
        metavar="JSON",
        help='settings of --finetune-every as JSON, e.g. \'{"rank": 8, "steps": 20, '
        '"learning_rate": 2e-3, "retain_weight": 1, "window": 256}\'',
    )
    p.add_argument("--device", help="torch device for SB3 agents (default: cpu)")
    if not single:
        p.add_argument(
            "--compare-to",
            help="the agent the report compares every other agent with, paired by seed "
            "(default: the non-privileged baseline with the highest return per user)",
        )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--restart",
        action="store_true",
        help="delete the finished runs (made with other settings) and start over",
    )


_FIELDS = (
    "name",
    "out_dir",
    "num_envs",
    "steps",
    "log_every",
    "shift_at",
    "frozen_at",
    "env_overrides",
    "agent_kwargs",
    "torch_threads",
    "text_model",
    "text_adapter",
    "finetune_every",
    "finetune",
    "device",
    "scenarios",
    "agents",
    "seeds",
    "workers",
    "compare_to",
)


def _experiment_config(
    args: argparse.Namespace, single: bool, base: dict[str, Any] | None = None
) -> Any:
    from driftrec.experiments.config import ExperimentConfig, load_config

    values = {f: getattr(args, f) for f in _FIELDS if getattr(args, f, None) is not None}
    if _imports(args):
        values["imports"] = _imports(args)
    if getattr(args, "trust_checkpoint", False):
        values["trust_checkpoint"] = True
    if single:
        values.update(scenarios=(args.scenario,), agents=(args.agent,), seeds=(args.seed,))
        values.setdefault("name", "train")
    data = dict(base or {})
    data.update(values)
    if not single and args.config is not None:
        return load_config(args.config, **data)
    return ExperimentConfig.from_dict(data)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``driftrec``."""
    import driftrec

    parser = argparse.ArgumentParser(
        prog="driftrec",
        description="Recommendation under drifting user interests: simulate, train, measure, plot.",
    )
    parser.add_argument("--version", action="version", version=f"driftrec {driftrec.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("scenarios", help="list the named scenarios and their Gymnasium ids")
    p.add_argument(
        "--show",
        metavar="NAME",
        help="print this scenario (a name or a scenario file) as a scenario file (JSON) to edit",
    )
    p = sub.add_parser("agents", help="list the agents (built-in and registered)")
    _add_user_agent_options(p, trust=False)

    p = sub.add_parser("train", help="train one agent online on one scenario and save the run")
    _add_grid_options(p, single=True)

    p = sub.add_parser(
        "evaluate",
        help="evaluate a saved SB3 checkpoint frozen on its world, or any agent on a scenario",
    )
    p.add_argument(
        "run_dir",
        type=Path,
        nargs="?",
        help="a run directory holding model.zip and config.json (or use --agent)",
    )
    p.add_argument("--agent", help=f"instead of RUN_DIR: {AGENT_HELP}; it acts without learning")
    p.add_argument(
        "--scenario",
        default="AbruptShift",
        help="with --agent: the scenario (default: %(default)s)",
    )
    p.add_argument(
        "--num-envs", type=int, default=32, help="with --agent: users at a time (default: 32)"
    )
    p.add_argument(
        "--env", type=_json_object, dest="env_overrides", help="with --agent: env overrides as JSON"
    )
    _add_user_agent_options(p, trust=False)
    p.add_argument("--steps", type=int, default=256, help="global steps (default: %(default)s)")
    p.add_argument("--seed", type=int, default=12345, help="seed of the evaluation users")
    p.add_argument("--deterministic", action="store_true", help="greedy actions")
    p.add_argument(
        "--policy", type=Path, help="evaluate this compressed policy file instead of model.zip"
    )
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="load model.zip (or a '.zip' --agent) with SB3's full load, which unpickles it and "
        "can run code: only for files you trust (default: a run's model.zip is rebuilt from "
        "its config.json and only the policy weights are read; any other '.zip' is refused)",
    )
    p.add_argument(
        "--attention-png",
        type=Path,
        help="with --policy: also write the attention figure of the compressed model here",
    )
    _add_compress_parser(sub)

    p = sub.add_parser("run", help="run an experiment grid (resumable: finished runs are skipped)")
    _add_grid_options(p, single=False)
    p.add_argument("--report", action="store_true", help="write the plots and report afterwards")
    p.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local process pool (default) or Ray tasks (needs driftrec[ray])",
    )
    p.add_argument(
        "--address",
        help="a running Ray cluster for --backend ray ('auto', 'host:6379'; default: start a "
        "new local Ray)",
    )
    p.add_argument(
        "--ray-timeout",
        type=float,
        help="seconds that starting or joining Ray may take (default: 60)",
    )
    _add_export_parser(sub)
    _add_finetune_parser(sub)

    for name, text in (
        ("plot", "write the figures of a saved experiment"),
        ("report", "write figures, report.md and print the summary table"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("exp_dir", type=Path, help="an experiment directory (OUT_DIR/NAME)")
        p.add_argument("--out", type=Path, help="where to write (default: EXP_DIR)")
        p.add_argument(
            "--compare-to",
            help="the agent every other agent is compared with, paired by seed (default: "
            "the experiment's compare_to, else the best non-privileged baseline)",
        )

    p = sub.add_parser("bench", help="benchmark the simulator (user-steps/s)")
    p.add_argument("--quick", action="store_true", help="a small subset (seconds)")
    p.add_argument("--json", type=Path, help="also write the results as JSON")

    p = sub.add_parser(
        "demo", help="the main job: train agents across an abrupt shift, plot, report"
    )
    p.add_argument("--out-dir", default="runs", help="results root (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="a tiny version (for smoke tests)")
    p.add_argument("--workers", type=int, default=2, help="parallel runs (default: %(default)s)")
    p.add_argument(
        "--compare-to",
        help="the agent the report compares every other agent with (default: the best "
        "non-privileged baseline)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--restart",
        action="store_true",
        help="delete the demo's finished runs (e.g. made by another driftrec version) first",
    )
    return parser


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from driftrec.envs.scenarios import list_scenarios, scenario_to_dict

    if args.show is not None:
        print(json.dumps(scenario_to_dict(args.show), indent=2))
        return 0
    for s in list_scenarios():
        print(f"{s.env_id:32s} {s.description}")
    from driftrec.envs.scenarios import CALIBRATED_SCENARIOS, VERSION

    for name, (description, _) in CALIBRATED_SCENARIOS.items():
        print(f"{f'driftrec/{name}-v{VERSION}':32s} {description}")
    print(
        "(any of them as an editable file: driftrec scenarios --show NAME > my.json; then "
        "--scenarios my.json)"
    )
    return 0


def _cmd_agents(args: argparse.Namespace) -> int:
    from driftrec.agents.registry import AGENT_DESCRIPTIONS, registered_agents

    _import_user_modules(args)
    for name, text in AGENT_DESCRIPTIONS.items():
        print(f"{name:24s} {text}")
    registered = registered_agents()
    if registered:
        print("registered:")
        for name, text in registered.items():
            print(f"{name:24s} {text}")
    print("(append '-frozen' to a name to stop its learning at the shift; your own agent: an")
    print(" import path 'package.module:NAME', a registered name, or a stable-baselines3 '.zip')")
    return 0


def _print_runs(dirs: Sequence[Path]) -> None:
    for d in dirs:
        done = json.loads((d / "done.json").read_text())
        print(f"  {d}  ({done['env_steps']} user-steps, {done['wall_time_s']:.1f} s)")


def _cmd_train(args: argparse.Namespace) -> int:
    from driftrec.experiments.recorder import tensorboard_note
    from driftrec.experiments.runner import run_one, warm_text_cache

    cfg = _experiment_config(args, single=True)
    scenario, agent, seed = cfg.runs()[0]
    note = tensorboard_note()
    if note is not None:
        print(note)
    warm_text_cache(cfg, progress=not args.no_progress)  # first use: says what it encodes
    run_dir = run_one(
        cfg, scenario, agent, seed, progress=not args.no_progress, restart=args.restart
    )
    from driftrec.experiments.analysis import load_runs, summary_table
    from driftrec.experiments.report import summary_text

    print(summary_text(summary_table(load_runs(cfg.experiment_dir, agents=[agent]))))
    _print_runs([run_dir])
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from driftrec.experiments.evaluate import evaluate_agent, evaluate_checkpoint

    if args.agent is not None:
        if args.run_dir is not None or args.policy is not None:
            raise ValueError(
                f"'--agent' evaluates an agent on a scenario, without RUN_DIR or --policy (got "
                f"{str(args.run_dir or args.policy)!r} too)"
            )
        _import_user_modules(args)
        result = evaluate_agent(
            args.agent,
            scenario=args.scenario,
            steps=args.steps,
            seed=args.seed,
            num_envs=args.num_envs,
            env_overrides=args.env_overrides,
            deterministic=args.deterministic,
            trust_checkpoint=args.trust_checkpoint,
        )
    elif args.run_dir is None:
        raise ValueError("'driftrec evaluate' needs a RUN_DIR or '--agent AGENT'")
    elif args.policy is not None:
        from driftrec.experiments.studies.compression import evaluate_compressed

        result = evaluate_compressed(
            args.run_dir,
            args.policy,
            steps=args.steps,
            seed=args.seed,
            deterministic=args.deterministic,
            attention_png=args.attention_png,
        )
    elif args.attention_png is not None:
        raise ValueError(
            f"'--attention-png' needs '--policy' (got {str(args.attention_png)!r}); the full "
            "policy's attention figure is written by 'driftrec plot'"
        )
    else:
        result = evaluate_checkpoint(
            args.run_dir,
            steps=args.steps,
            seed=args.seed,
            deterministic=args.deterministic,
            trust=args.trust_checkpoint,
        )
    for key, value in result.items():
        print(f"{key:24s} {value}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from driftrec.experiments.runner import run_grid

    cfg = _experiment_config(args, single=False)
    if getattr(args, "backend", "local") == "ray":
        from driftrec.experiments.ray_backend import run_grid_ray

        timeout = {} if args.ray_timeout is None else {"connect_timeout_s": args.ray_timeout}
        try:
            dirs = run_grid_ray(
                cfg,
                address=args.address,
                progress=not args.no_progress,
                restart=args.restart,
                **timeout,
            )
        except ImportError as exc:
            print(f"driftrec run: error: {exc}", file=sys.stderr)
            return 2
    elif args.address is not None:
        raise ValueError(f"'--address' needs '--backend ray' (got {args.address!r})")
    elif args.ray_timeout is not None:
        raise ValueError(f"'--ray-timeout' needs '--backend ray' (got {args.ray_timeout!r})")
    else:
        dirs = run_grid(cfg, progress=not args.no_progress, restart=args.restart)
    print(f"{len(dirs)} runs in {cfg.experiment_dir}")
    if args.report:
        return _report(cfg.experiment_dir, None, cfg.compare_to)
    return 0


def _report(exp_dir: Path, out: Path | None, compare_to: str | None = None) -> int:
    from driftrec.experiments.analysis import load_runs
    from driftrec.experiments.report import console_text, write_report

    path = write_report(exp_dir, out_dir=out, compare_to=compare_to)
    print(console_text(load_runs(exp_dir), compare_to=compare_to, exp_dir=exp_dir))
    print(f"report: {path}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from driftrec.experiments.report import write_figures

    for path in write_figures(args.exp_dir, out_dir=args.out):
        print(path)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    return _report(args.exp_dir, args.out, args.compare_to)


BENCH_SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_env.py"
"""The simulator benchmark; it lives with the other benchmarks in the source checkout."""


def load_bench() -> Any:
    """Import ``bench/bench_env.py`` of the checkout this package runs from."""
    import importlib.util

    if not BENCH_SCRIPT.is_file():
        raise FileNotFoundError(
            f"the simulator benchmark {BENCH_SCRIPT} is missing: 'driftrec bench' needs the "
            "source checkout (an editable install)"
        )
    spec = importlib.util.spec_from_file_location("driftrec_bench_env", BENCH_SCRIPT)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  (dataclasses look it up)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _cmd_bench(args: argparse.Namespace) -> int:
    bench = load_bench()
    argv = ["--quick"] if args.quick else []
    if args.json is not None:
        argv += ["--json", str(args.json)]
    return int(bench.main(argv) or 0)


def _cmd_demo(args: argparse.Namespace) -> int:
    from driftrec.experiments.configs.demo import get_config

    cfg = get_config(quick=args.quick, out_dir=args.out_dir, workers=args.workers)
    from driftrec.experiments.runner import run_grid

    t0 = time.perf_counter()
    print(
        f"driftrec demo: agents {', '.join(cfg.agents)} x seeds {list(cfg.seeds)} on "
        f"{cfg.scenarios[0]}: {cfg.num_envs} users x {cfg.steps} global steps, "
        f"shift at step {cfg.shift_at}"
    )
    if args.compare_to is not None:
        cfg = dataclasses.replace(cfg, compare_to=args.compare_to)  # validated here
    run_grid(cfg, progress=not args.no_progress, restart=args.restart)
    code = _report(cfg.experiment_dir, None, cfg.compare_to)
    exp = cfg.experiment_dir
    print(f"figures: {exp}/*.png   runs: {exp}/<scenario>__<agent>__<seed>/")
    print(f"demo finished in {time.perf_counter() - t0:.0f} s")
    return code


def _add_export_parser(sub: Any) -> None:
    p = sub.add_parser("export", help="roll out an agent and write a Minari dataset (offline RL)")
    p.add_argument(
        "--scenario", default="AbruptShift", help="scenario or scenario file (default: %(default)s)"
    )
    p.add_argument(
        "--agent", default="random", help=f"behaviour policy: {AGENT_HELP} (default: %(default)s)"
    )
    p.add_argument("--dataset-id", help="Minari id (default: driftrec/<scenario>/<agent>-v0)")
    _add_user_agent_options(p)
    p.add_argument("--num-envs", type=int, default=64, help="users at a time (default: 64)")
    p.add_argument("--steps", type=int, default=400, help="global steps (default: 400)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--no-learn", action="store_true", help="the agent acts without learning")
    p.add_argument("--env-overrides", type=_json_object, help="JSON, e.g. '{\"num_items\": 200}'")
    p.add_argument("--data-path", help="Minari datasets root (default: MINARI_DATASETS_PATH)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing dataset of the same id"
    )
    p.add_argument(
        "--info-keys",
        type=lambda v: tuple(x for x in v.split(",") if x),
        default=("click_prob", "expected_reward", "clicked_item"),
        help="info fields kept per step (default: %(default)s)",
    )


COMPRESS_METHODS = ("fold", "int8", "distil")  # driftrec.agents.compress's (no torch import here)
INT8_SCOPES = ("head", "all")


def _add_compress_parser(sub: Any) -> None:
    p = sub.add_parser(
        "compress", help="compress a run's attention policy (fold / int8 / distil) for acting"
    )
    p.add_argument("run_dir", type=Path, help="a run directory holding model.zip and config.json")
    p.add_argument(
        "--method",
        choices=COMPRESS_METHODS,
        default="fold",
        help="fold: exact float, as fast as int8 at 1,000 items; int8: int8 score head, faster "
        "from about 10,000 items, not exact (default: %(default)s)",
    )
    p.add_argument(
        "--scope", choices=INT8_SCOPES, default="head", help="int8 Linears (default: %(default)s)"
    )
    p.add_argument("--out", type=Path, help="file to write (default: RUN_DIR/compressed-METHOD.pt)")
    p.add_argument(
        "--distil-steps", type=int, help="global steps of teacher rollouts (default: the run's)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out even if it is not a policy file 'compress' wrote",
    )
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="load model.zip with SB3's full load, which unpickles it and can run code: only for "
        "files you trust (default: only the policy weights are read)",
    )


def _cmd_compress(args: argparse.Namespace) -> int:
    from driftrec.experiments.studies.compression import compress_run

    _, facts = compress_run(
        args.run_dir,
        method=args.method,
        out=args.out,
        scope=args.scope,
        distil_steps=args.distil_steps,
        overwrite=args.overwrite,
        trust=args.trust_checkpoint,
    )
    for key, value in facts.items():
        print(f"{key:24s} {value}")
    size, full = facts["bytes"], facts.get("model_zip_bytes")
    against = f", model.zip {full / 1e6:.2f} MB ({size / full:.0%})" if full else ""
    print(f"wrote {facts['path']} ({size / 1e6:.2f} MB{against})")
    print(f"evaluate it with: driftrec evaluate {args.run_dir} --policy {facts['path']}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from driftrec.experiments.export import export_minari

    _import_user_modules(args)
    # a user agent's name ('mymod:MyAgent', 'models/ppo.zip') is no Minari name: letters only
    agent_id = re.sub(r"[^A-Za-z0-9_-]+", "-", args.agent).strip("-") or "agent"
    dataset_id = args.dataset_id or f"driftrec/{args.scenario}/{agent_id}-v0"
    try:
        ds = export_minari(
            dataset_id,
            scenario=args.scenario,
            agent=args.agent,
            num_envs=args.num_envs,
            steps=args.steps,
            seed=args.seed,
            learn=not args.no_learn,
            env_overrides=args.env_overrides,
            data_path=args.data_path,
            info_keys=args.info_keys,
            overwrite=args.overwrite,
            trust_checkpoint=args.trust_checkpoint,
        )
    except ImportError as exc:
        print(f"driftrec export: error: {exc}", file=sys.stderr)
        return 2
    print(f"{dataset_id}: {ds.total_episodes} episodes, {ds.total_steps} steps")
    return 0


def _add_finetune_parser(sub: Any) -> None:
    p = sub.add_parser(
        "finetune", help="train a LoRA adapter of the text encoder from simulated clicks"
    )
    p.add_argument("--out", type=Path, required=True, help="the adapter directory to write")
    p.add_argument(
        "--scenario", default="Stationary", help="scenario or scenario file (default: %(default)s)"
    )
    p.add_argument(
        "--env", type=_json_object, dest="env_overrides", help="env config overrides as JSON"
    )
    p.add_argument(
        "--behaviour", default="random", help=f"logged agent: {AGENT_HELP} (default: %(default)s)"
    )
    _add_user_agent_options(p, trust=False)
    p.add_argument(
        "--seeds", type=_csv(int), default=(100,), help="seeds of the logged runs (default: 100)"
    )
    p.add_argument("--num-envs", type=int, default=32, help="users per logged run (default: 32)")
    p.add_argument("--log-steps", type=int, default=150, help="global steps logged per seed")
    p.add_argument("--rank", type=int, default=8, help="LoRA rank (default: %(default)s)")
    p.add_argument("--alpha", type=float, default=16.0, help="LoRA alpha (default: %(default)s)")
    p.add_argument(
        "--targets",
        type=_csv(str),
        default=("query", "value"),
        help="adapted Linear modules (default: query,value; the pooler is always excluded)",
    )
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate (default: %(default)s)")
    p.add_argument(
        "--retain-weight",
        type=float,
        default=0.0,
        help="weight of the retention term on generated anchor texts (default: 0, off)",
    )
    p.add_argument("--steps", type=int, default=100, help="optimizer steps (default: 100)")
    p.add_argument("--batch-size", type=int, default=16, help="examples per step (default: 16)")
    p.add_argument(
        "--max-length",
        type=int,
        default=128,
        help="tokens per text (default: %(default)s, the length runs encode at, so the "
        "re-encoded catalog is the embedding cache a later 'run --text-adapter' reads)",
    )
    p.add_argument("--seed", type=int, default=0, help="training seed (default: 0)")
    p.add_argument("--text-model", help="base model directory (default: packaged MiniLM)")
    p.add_argument("--no-progress", action="store_true", help="no progress output")


def _cmd_finetune(args: argparse.Namespace) -> int:
    from driftrec.agents.lora import FinetuneSettings, LoraSettings

    _import_user_modules(args)

    settings = FinetuneSettings(
        lora=LoraSettings(rank=args.rank, alpha=args.alpha, targets=args.targets),
        learning_rate=args.lr,
        retain_weight=args.retain_weight,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    try:
        from driftrec.experiments.finetune import finetune_adapter

        finetune_adapter(
            args.out,
            scenario=args.scenario,
            env_overrides=args.env_overrides,
            behaviour=args.behaviour,
            seeds=args.seeds,
            num_envs=args.num_envs,
            log_steps=args.log_steps,
            settings=settings,
            text_model=args.text_model,
            max_length=args.max_length,
            progress=not args.no_progress,
        )
    except ImportError as exc:
        print(f"driftrec finetune: error: {exc}", file=sys.stderr)
        return 2
    return 0


_COMMANDS = {
    "finetune": _cmd_finetune,
    "export": _cmd_export,
    "scenarios": _cmd_scenarios,
    "agents": _cmd_agents,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "compress": _cmd_compress,
    "run": _cmd_run,
    "plot": _cmd_plot,
    "report": _cmd_report,
    "bench": _cmd_bench,
    "demo": _cmd_demo,
}


def error_text(exc: BaseException) -> str:
    """One line for a user error: OS errors name the file and the problem."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else "a file"
        return f"{where}: {exc.strerror}"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


_INTERRUPTED = {
    "run": "interrupted; finished runs are kept (run again to resume)",
    "train": "interrupted; finished runs are kept (run again to resume)",
    "demo": "interrupted; finished runs are kept (run again to resume)",
    "export": "interrupted; nothing half-written is left (a dataset is moved into place whole)",
    "finetune": "interrupted; nothing half-written is left (an adapter is written whole)",
    "compress": "interrupted; nothing half-written is left (the policy file is written whole)",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``driftrec`` console script.

    Ctrl-C and SIGTERM stop every command with exit code 130 and one line saying what was kept,
    whatever signal disposition the process inherited (see
    :func:`~driftrec.experiments.guard.catch_interrupts`).
    """
    from driftrec.experiments.guard import LockedError, catch_interrupts, interrupted

    command = "?"
    try:
        with catch_interrupts():
            args = build_parser().parse_args(argv)
            command = args.command
            try:
                return _COMMANDS[command](args)
            except Exception:
                if interrupted() is not None:  # an error the interrupt caused on its way out
                    raise KeyboardInterrupt("interrupted") from None
                raise
    except KeyboardInterrupt:
        return _interrupted(command, keep_ignoring=argv is None)
    except (ValueError, TypeError, OSError, RuntimeError, AssertionError) as exc:
        if os.environ.get("DRIFTREC_DEBUG"):
            raise
        print(f"driftrec {command}: error: {error_text(exc)}", file=sys.stderr)
        if not isinstance(exc, (ValueError, TypeError, OSError, LockedError)):
            # not a refusal of bad input or a missing file: likely a bug, worth a traceback
            print("(set DRIFTREC_DEBUG=1 for the traceback)", file=sys.stderr)
        return 2


def _interrupted(command: str, *, keep_ignoring: bool) -> int:
    """Say what was kept; exit code 130. The console script (``keep_ignoring``) ignores further
    signals, so that a second Ctrl-C cannot break its exit; a call ``main(argv)`` from Python
    gets its handlers back."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"driftrec {command}: {_INTERRUPTED.get(command, 'interrupted')}", file=sys.stderr)
    if not keep_ignoring:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 130


if __name__ == "__main__":
    sys.exit(main())
