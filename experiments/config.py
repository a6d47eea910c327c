"""The experiment config: a grid of scenario x agent x seed, validated before any work starts."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from driftrec.agents.registry import import_modules, is_builtin, resolve_agent
from driftrec.envs.config import (
    SECTIONS,
    DriftConfig,
    EnvConfig,
    check_float,
    check_int,
    check_slate_fits,
    section_to_dict,
)
from driftrec.envs.drift import AbruptShift
from driftrec.envs.scenarios import get_scenario

__all__ = [
    "ExperimentConfig",
    "FROZEN_SUFFIX",
    "split_agent_name",
    "load_config",
    "dir_name_part",
    "from_dir_name_part",
]

FROZEN_SUFFIX = "-frozen"

_DIR_SAFE = "+=@,"
"""Kept as they are in directory names, besides letters, digits and ``_.-~``."""


def dir_name_part(name: str) -> str:
    """``name`` as a part of a run directory name, safe on Linux, macOS and Windows.

    Every character other than ASCII letters, digits and ``_ . - ~ + = @ ,`` is percent-encoded
    as in URLs (``:`` -> ``%3A``, ``/`` -> ``%2F``, ``%`` -> ``%25``), so
    ``mymod:MyAgent`` is stored as ``mymod%3AMyAgent`` and :func:`from_dir_name_part` gives the
    name back exactly. Built-in names are unchanged.
    """
    return quote(name, safe=_DIR_SAFE)


def from_dir_name_part(part: str) -> str:
    """The inverse of :func:`dir_name_part`."""
    return unquote(part)


def split_agent_name(name: str) -> tuple[str, bool]:
    """``"attention-ppo-frozen"`` -> ``("attention-ppo", True)``."""
    if name.endswith(FROZEN_SUFFIX):
        return name[: -len(FROZEN_SUFFIX)], True
    return name, False


_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=@,-]{0,127}")


def _check_name(name: Any) -> None:
    """An experiment name is one plain folder name: it can never leave ``out_dir``."""
    if not isinstance(name, str):
        raise TypeError(f"'name' must be a string (got {name!r})")
    if _NAME_PATTERN.fullmatch(name) is None:
        raise ValueError(
            f"'name' must be a folder name of 1-128 letters, digits and . _ - + = @ , that "
            f"starts with a letter or digit (got {name!r}); it names the experiment's folder "
            "inside 'out_dir'"
        )


def _tuple(name: str, value: Any, kind: type) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise TypeError(f"'{name}' must be a list of {kind.__name__} (got {value!r})")
    out = tuple(value)
    for v in out:
        if not isinstance(v, kind) or isinstance(v, bool):
            raise TypeError(f"'{name}' must be a list of {kind.__name__} (got {value!r})")
    if not out:
        raise ValueError(f"'{name}' must not be empty (got {value!r})")
    if len(set(out)) != len(out):
        raise ValueError(f"'{name}' must not repeat entries (got {value!r})")
    return out


_COUNT_KWARGS = {
    "n_steps": 1,
    "batch_size": 2,
    "n_epochs": 1,
    "buffer_size": 1,
    "learning_starts": 0,
    "train_freq": 1,
    "gradient_steps": 1,
    "target_update_interval": 1,
}
"""SB3 counts whose bad values SB3 reports late (a bare assert, or a crash in the first update)."""


def _imports(value: Any) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise TypeError(f"'imports' must be a list of module names (got {value!r})")
    out = tuple(value)
    for v in out:
        if not isinstance(v, str):
            raise TypeError(f"'imports' must be a list of module names (got {value!r})")
    return out


def _check_agent_kwargs(agent_kwargs: Mapping[str, Any]) -> None:
    for agent, kwargs in agent_kwargs.items():
        if not isinstance(kwargs, Mapping):
            raise TypeError(f"'agent_kwargs[{agent!r}]' must be a mapping (got {kwargs!r})")
        for key, low in _COUNT_KWARGS.items():
            if key in kwargs:
                check_int(f"agent_kwargs[{agent!r}][{key!r}]", kwargs[key], low)
        rate = kwargs.get("learning_rate")
        if rate is not None and not callable(rate):
            check_float(f"agent_kwargs[{agent!r}]['learning_rate']", rate, 0.0, low_open=True)


def _json_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``env_overrides`` in JSON form: a section object (``DriftConfig(...)``) becomes its dict
    form, which :meth:`EnvConfig.with_overrides` applies the same way (all its fields)."""
    out = dict(overrides)
    for key, value in out.items():
        if key in SECTIONS and not isinstance(value, Mapping | str):
            try:
                out[key] = section_to_dict(value)
            except TypeError:
                pass  # not a section object: with_overrides names the problem
    return out


def _check_shift_at(shift_at: Any, scenarios: tuple[str, ...], steps: int) -> None:
    if shift_at is None:
        return
    if not isinstance(shift_at, Mapping):
        check_int("shift_at", shift_at, 1, steps)
        return
    for key, step in shift_at.items():
        if not any(_names_scenario(key, s) for s in scenarios):
            raise ValueError(
                f"'shift_at' names {key!r}, which is not a scenario of this grid; expected "
                f"one of {list(scenarios)}"
            )
        check_int(f"shift_at[{key!r}]", step, 1, steps)


def _names_scenario(key: Any, scenario: str) -> bool:
    """Whether a ``shift_at`` key names ``scenario`` of the grid: as it is given there, or by
    its name (``"AbruptShift"``, ``"abrupt-shift"``; a scenario file by its path or its name)."""
    if not isinstance(key, str):
        return False
    if key == scenario:
        return True
    name = get_scenario(scenario).name
    if key.lower().replace("-", "").replace("_", "") == name.lower().replace("-", "").replace(
        "_", ""
    ):
        return True
    try:
        return get_scenario(key).name == name
    except (TypeError, ValueError, OSError):
        return False


def _check_world(env: EnvConfig) -> None:
    """What would otherwise fail only after a run has started."""
    if env.session.observation != "flat":
        raise ValueError(
            "'observation' must be 'flat' in experiments (the recorder and the agents read the "
            f"flat vector) (got {env.session.observation!r})"
        )
    if env.catalog_path is not None:  # load it now: a bad file is reported before any run
        from driftrec.envs.core import cached_catalog

        check_slate_fits(env.choice.slate_size, cached_catalog(env).num_items)


def _check_device(device: Any) -> None:
    if not isinstance(device, str) or not device:
        raise TypeError(f"'device' must be a torch device name such as 'cpu' (got {device!r})")
    if device in ("cpu", "auto"):
        return
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"'device' must be a torch device name such as 'cpu' or 'cuda:0' (got {device!r})"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"'device' is {device!r} but CUDA is not available; expected 'cpu'")


@dataclass(frozen=True)
class ExperimentConfig:
    """A grid of runs: every scenario x agent x seed, each learning online for ``steps``.

    Args:
        name (str, defaults to ``"experiment"``): results go to ``<out_dir>/<name>/``.
        scenarios (tuple of str): scenario names (``driftrec scenarios`` lists them), names
            given to ``register_scenario``, or scenario files (``.json``/``.toml``, see
            :func:`driftrec.envs.scenarios.load_scenario_file`).
        agents (tuple of str): agent names (``driftrec agents`` lists them), names registered
            with ``driftrec.register_agent``, import paths ``package.module:NAME`` of your own
            agent (called as ``NAME(env, seed=seed)``) or policy function, or stable-baselines3
            ``.zip`` checkpoints (see :func:`driftrec.agents.registry.resolve_agent`); append
            ``-frozen`` for the frozen contrast (learns until ``frozen_at``, then only acts).
            Run directories name the agent with :func:`dir_name_part`.
        seeds (tuple of int, defaults to 0-4): one run per seed; user slot ``i`` of a run gets
            the stream ``slot_seed(seed, i)`` (child ``i`` of ``SeedSequence(seed)``). Reports
            warn below five: intervals over fewer runs rarely decide a comparison.
        num_envs (int, defaults to 32): users stepped together in each run.
        steps (int, defaults to 1536): global steps per run (each steps every user once).
        log_every (int, defaults to 32): global steps per metrics window.
        shift_at (int, dict or None, defaults to None): a population-wide abrupt shift at this
            global step, replacing the scenario's scheduled shifts (its Poisson rate is kept;
            a scenario without an ``AbruptShift`` process gets one). A plain int applies to
            *every* scenario of the grid (the runner says so when there are several); a dict
            ``{scenario: step}`` applies only to the scenarios it names (``driftrec run
            --shift-at AbruptShift=1500``).
        frozen_at (int or None, defaults to None): when ``-frozen`` agents stop learning;
            None means the first scheduled shift.
        env_overrides (dict): config overrides for every scenario: shortcuts
            (``{"num_items": 5000}``), dotted paths (``{"users.patience": 10}``) or sections in
            the scenario-file form, which replace only the fields they name
            (``{"drift": {"processes": [{"kind": "Boredom", "gain": 0.3}]}}``); section objects
            (``DriftConfig(...)``) are stored in that form, so the config stays JSON.
        agent_kwargs (dict): per-agent constructor overrides, keyed by agent name.
        out_dir (str, defaults to ``"runs"``): where experiments are written.
        workers (int, defaults to 1): runs executed in parallel processes.
        torch_threads (int, defaults to 1): torch threads per run.
        cold_start_window (int, defaults to 1000): how recent a release counts as cold start.
        track_users (int, defaults to 3): user slots followed individually in topics.npz.
        text_model (str or None, defaults to None): language model for item texts (None: the
            packaged MiniLM).
        text_adapter (str or None, defaults to None): a LoRA adapter directory of that model
            (``driftrec finetune``); runs record its weight hash.
        finetune_every (int or None, defaults to None): fine-tune the text encoder inside each
            run, on the run's own click log, every this many global steps, and swap the new item
            table into the agent (``history-similarity`` and the ``attention-*`` agents; see
            :mod:`driftrec.agents.online_lm`). None: the encoder stays frozen.
        finetune (dict): settings of that fine-tuning, the fields of
            :class:`~driftrec.agents.online_lm.InRunFinetuneSettings` but ``every`` (``rank``,
            ``learning_rate``, ``steps`` per refresh, ``retain_weight``, ``window``, ...).
        checkpoint (bool, defaults to True): save SB3 models at the end of each run.
        device (str, defaults to ``"cpu"``): torch device for SB3 agents.
        reference_agent (str or None, defaults to ``"oracle"``): run on the same seeds (so
            the same user streams, world and catalog) as its own run of the grid, and the
            report's *return ratio* of every agent divides by its per-user return. None: no
            reference run and no return ratio.
        compare_to (str or None, defaults to None): the agent every other agent is compared
            with, paired by seed, in the report's headline table; None chooses the
            non-privileged baseline with the highest return per user
            (:func:`driftrec.experiments.comparison.choose_reference`). It changes only the
            report, never a run.
        vary_world (bool, defaults to True): draw the world (population means, shift targets,
            trend directions; for a calibrated world such as MovieLens, a bootstrap resample
            of its fitted users) and the generated catalog from the run seed
            (``world_seed = catalog_seed = seed``), so intervals over seeds include
            world-to-world variance. False keeps the scenario's fixed world for every seed
            (the behaviour before v1). ``env_overrides`` that set ``world_seed`` or
            ``catalog_seed`` win.
        imports (tuple of str, defaults to ()): modules imported before the agents are
            resolved, in this process and in every worker (their ``register_agent`` calls
            run); ``--import`` on the command line.
        trust_checkpoint (bool, defaults to False): allow ``.zip`` agents to be loaded with
            stable-baselines3's ``load``, which unpickles the file (it can run arbitrary code);
            without it they are refused.
    """

    name: str = "experiment"
    scenarios: tuple[str, ...] = ("AbruptShift",)
    agents: tuple[str, ...] = (
        "random",
        "popularity",
        "linucb-discounted",
        "id-ppo",
        "attention-ppo",
    )
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    num_envs: int = 32
    steps: int = 1536
    log_every: int = 32
    shift_at: int | Mapping[str, int] | None = None
    frozen_at: int | None = None
    env_overrides: Mapping[str, Any] = field(default_factory=dict)
    agent_kwargs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    out_dir: str = "runs"
    workers: int = 1
    torch_threads: int = 1
    cold_start_window: int = 1000
    track_users: int = 3
    text_model: str | None = None
    text_adapter: str | None = None
    finetune_every: int | None = None
    finetune: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: bool = True
    device: str = "cpu"
    reference_agent: str | None = "oracle"
    vary_world: bool = True
    imports: tuple[str, ...] = ()
    trust_checkpoint: bool = False
    compare_to: str | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        if isinstance(self.out_dir, os.PathLike):
            object.__setattr__(self, "out_dir", os.fspath(self.out_dir))
        if not isinstance(self.out_dir, str):
            raise TypeError(f"'out_dir' must be a directory path, a string (got {self.out_dir!r})")
        if not self.out_dir.strip():
            raise ValueError(f"'out_dir' must be a directory path (got {self.out_dir!r})")
        object.__setattr__(self, "scenarios", _tuple("scenarios", self.scenarios, str))
        object.__setattr__(self, "agents", _tuple("agents", self.agents, str))
        object.__setattr__(self, "seeds", _tuple("seeds", self.seeds, int))
        object.__setattr__(self, "imports", _imports(self.imports))
        if not isinstance(self.trust_checkpoint, bool):
            raise TypeError(f"'trust_checkpoint' must be a bool (got {self.trust_checkpoint!r})")
        by_name: dict[str, str] = {}
        for s in self.scenarios:
            name = get_scenario(s).name  # raises naming the valid scenarios
            other = by_name.setdefault(name.lower(), s)
            if other != s:
                raise ValueError(
                    f"'scenarios' {other!r} and {s!r} are both the scenario {name!r} (their run "
                    "directories would be the same); give one of them another name"
                )
        import_modules(self.imports)  # their register_agent calls, before agents are resolved
        for a in self.agents:
            resolve_agent(split_agent_name(a)[0], field="agents")  # one line naming the entry
        for seed in self.seeds:
            check_int("seeds", seed, 0)
        if self.reference_agent is not None:
            resolve_agent(self.reference_agent, field="reference_agent")
        if self.compare_to is not None and self.compare_to not in self.all_agents:
            raise ValueError(
                f"'compare_to' must be None or one of the grid's agents {list(self.all_agents)} "
                f"(got {self.compare_to!r})"
            )
        if not isinstance(self.vary_world, bool):
            raise TypeError(f"'vary_world' must be a bool (got {self.vary_world!r})")
        check_int("num_envs", self.num_envs, 1, 65_536)
        check_int("steps", self.steps, 1)
        check_int("log_every", self.log_every, 1, self.steps)
        if isinstance(self.shift_at, Mapping):
            object.__setattr__(self, "shift_at", dict(self.shift_at))
        _check_shift_at(self.shift_at, self.scenarios, self.steps)
        if self.frozen_at is not None:
            check_int("frozen_at", self.frozen_at, 1, self.steps)
        check_int("workers", self.workers, 1, 256)
        check_int("torch_threads", self.torch_threads, 1, 256)
        check_int("cold_start_window", self.cold_start_window, 1)
        check_int("track_users", self.track_users, 0, 16)
        if not isinstance(self.env_overrides, Mapping):
            raise TypeError(f"'env_overrides' must be a mapping (got {self.env_overrides!r})")
        object.__setattr__(self, "env_overrides", _json_overrides(self.env_overrides))
        if not isinstance(self.agent_kwargs, Mapping):
            raise TypeError(f"'agent_kwargs' must be a mapping (got {self.agent_kwargs!r})")
        for key in self.agent_kwargs:
            base = split_agent_name(key)[0]
            grid = {split_agent_name(a)[0] for a in self.all_agents}
            if key not in self.agents and not is_builtin(base) and base not in grid:
                raise ValueError(f"'agent_kwargs' has an unknown agent {key!r}")
        for scenario in self.scenarios:
            _check_world(self.env_config(scenario))  # env_overrides, before any work
        if any(split_agent_name(a)[1] for a in self.agents):
            for scenario in self.scenarios:
                if self.frozen_step(scenario) is None:
                    raise ValueError(
                        "'-frozen' agents need 'frozen_at' or a scheduled shift in every "
                        f"scenario (got none for {scenario!r})"
                    )
            for scenario in self.scenarios:
                if self.frozen_step(scenario) > self.steps:  # type: ignore[operator]
                    raise ValueError(
                        f"'-frozen' agents would stop learning at step "
                        f"{self.frozen_step(scenario)} in {scenario!r}, after the last step "
                        f"({self.steps}); expected 'frozen_at' or 'shift_at' <= 'steps'"
                    )
        _check_agent_kwargs(self.agent_kwargs)
        _check_device(self.device)
        if self.text_adapter is not None:
            if not isinstance(self.text_adapter, str) or not self.text_adapter:
                raise ValueError(
                    f"'text_adapter' must be None or a directory (got {self.text_adapter!r})"
                )
            from driftrec.agents.lora import check_adapter_base
            from driftrec.agents.text_encoder import model_identity

            # a missing directory, or an adapter of another base model, fails before any work
            check_adapter_base(self.text_adapter, model_identity(self.text_model))
        self._check_finetune()

    def _check_finetune(self) -> None:
        if not isinstance(self.finetune, Mapping):
            raise TypeError(f"'finetune' must be a mapping (got {self.finetune!r})")
        object.__setattr__(self, "finetune", dict(self.finetune))
        if self.finetune_every is None:
            if self.finetune:
                raise ValueError(
                    f"'finetune' settings {sorted(self.finetune)} need 'finetune_every' "
                    "(--finetune-every N)"
                )
            return
        self.finetune_settings()  # every field checked, naming it
        if self.text_adapter is not None:
            raise ValueError(
                "'finetune_every' trains a new adapter from the base model; expected no "
                f"'text_adapter' with it (got {self.text_adapter!r})"
            )
        from driftrec.agents.online_lm import REFRESH_AGENTS, supports_item_refresh
        from driftrec.agents.registry import needs_text_embeddings

        for a in self.agents:
            base = split_agent_name(a)[0]
            if needs_text_embeddings(base) and not supports_item_refresh(base):
                raise ValueError(
                    f"'finetune_every' refreshes the item table of {list(REFRESH_AGENTS)}; "
                    f"{a!r} reads the text embeddings but cannot take a new table: run it in "
                    "another grid"
                )

    def finetune_settings(self) -> Any:
        """The :class:`~driftrec.agents.online_lm.InRunFinetuneSettings` of the grid, or None."""
        if self.finetune_every is None:
            return None
        from driftrec.agents.online_lm import InRunFinetuneSettings

        check_int("finetune_every", self.finetune_every, 1, self.steps)
        return InRunFinetuneSettings.from_config(self.finetune_every, self.finetune)

    @property
    def experiment_dir(self) -> Path:
        """``<out_dir>/<name>``."""
        return Path(self.out_dir) / self.name

    def run_dir(self, scenario: str, agent: str, seed: int) -> Path:
        """Where one run's files go."""
        agent_part = dir_name_part(agent)
        return self.experiment_dir / f"{get_scenario(scenario).name}__{agent_part}__{seed}"

    @property
    def all_agents(self) -> tuple[str, ...]:
        """``agents`` plus the reference agent when it is not among them."""
        ref = self.reference_agent
        return self.agents if ref is None or ref in self.agents else (*self.agents, ref)

    def runs(self) -> list[tuple[str, str, int]]:
        """Every (scenario, agent, seed) of the grid, the reference agent's runs included."""
        return [
            (s, a, seed) for s in self.scenarios for a in self.all_agents for seed in self.seeds
        ]

    def run_env_config(self, scenario: str, seed: int) -> EnvConfig:
        """The world of one run: :meth:`env_config`, with the world and the generated catalog
        drawn from ``seed`` when ``vary_world`` is on (explicit ``env_overrides`` win)."""
        cfg = self.env_config(scenario)
        if not self.vary_world:
            return cfg
        over = self.env_overrides
        seeds = {
            key: seed
            for key, section in (("world_seed", "drift"), ("catalog_seed", "catalog"))
            if key not in over
            and f"{section}.seed" not in over
            and not (isinstance(over.get(section), Mapping) and "seed" in over[section])
        }
        return cfg.with_overrides(**seeds) if seeds else cfg

    def env_config(self, scenario: str) -> EnvConfig:
        """The resolved world of ``scenario``: its preset, ``shift_at`` and ``env_overrides``
        (the scenario's own world and catalog seeds; see :meth:`run_env_config`)."""
        cfg = get_scenario(scenario).config
        shift_at = self.shift_at_for(scenario)
        if shift_at is not None:
            procs = cfg.drift.processes
            if cfg.drift.get(AbruptShift) is None:
                procs = (*procs, AbruptShift(at_steps=(shift_at,)))
            else:  # replace the schedule in place: processes run in their configured order
                procs = tuple(
                    dataclasses.replace(p, at_steps=(shift_at,))
                    if isinstance(p, AbruptShift)
                    else p
                    for p in procs
                )
            cfg = dataclasses.replace(cfg, drift=DriftConfig(processes=procs, seed=cfg.drift.seed))
        return cfg.with_overrides(**dict(self.env_overrides)) if self.env_overrides else cfg

    def shift_at_for(self, scenario: str) -> int | None:
        """The ``shift_at`` step that applies to ``scenario`` (None: its own schedule)."""
        if not isinstance(self.shift_at, Mapping):
            return self.shift_at
        for key, step in self.shift_at.items():
            if _names_scenario(key, scenario):
                return int(step)
        return None

    def shift_at_note(self) -> str | None:
        """A warning when a plain ``shift_at`` changes several scenarios at once (else None)."""
        if self.shift_at is None or isinstance(self.shift_at, Mapping):
            return None
        if len(self.scenarios) < 2:
            return None
        first = self.scenarios[0]
        return (
            f"note: --shift-at {self.shift_at} (shift_at={self.shift_at}) applies to every "
            f"scenario of the grid ({', '.join(self.scenarios)}): each gets a population shift "
            f"at step {self.shift_at} in place of its own schedule; to change one scenario "
            f"only, use --shift-at {first}={self.shift_at} (shift_at={{{first!r}: "
            f"{self.shift_at}}})"
        )

    def frozen_step(self, scenario: str) -> int | None:
        """When ``-frozen`` agents stop learning in ``scenario``."""
        if self.frozen_at is not None:
            return self.frozen_at
        shift = self.env_config(scenario).drift.get(AbruptShift)
        return shift.at_steps[0] if shift is not None and shift.at_steps else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        out = dataclasses.asdict(self)
        out["env_overrides"] = dict(self.env_overrides)
        if isinstance(self.shift_at, Mapping):
            out["shift_at"] = dict(self.shift_at)
        out["agent_kwargs"] = {k: dict(v) for k, v in self.agent_kwargs.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        """Build from a mapping; unknown keys raise ``ValueError`` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(
                f"unknown experiment config keys {sorted(unknown)}; expected {sorted(names)}"
            )
        return cls(**dict(data))


def load_config(path: str | os.PathLike[str], **overrides: Any) -> ExperimentConfig:
    """Read an :class:`ExperimentConfig` from a JSON file, then apply ``overrides``."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"experiment config file {str(path)!r} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); expected a JSON file of "
            "experiment settings"
        ) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of experiment settings")
    given = {k: v for k, v in overrides.items() if v is not None}
    from_file = set(data) - set(given)
    data.update(given)
    try:
        return ExperimentConfig.from_dict(data)
    except (TypeError, ValueError) as exc:  # a field of the file: say which file
        named = re.match(r"'(\w+)", str(exc))
        if named is None or named.group(1) not in from_file:
            raise
        raise type(exc)(f"{path}: {exc}") from None
