"""Tests of users' own agents: import paths, register_agent, entry points, adapters, checks."""

from __future__ import annotations

import re
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftrec.agents import registry
from driftrec.agents.adapters import (
    FunctionAgent,
    UntrustedCheckpointError,
    check_actions,
    load_sb3_zip,
    sb3_algorithm_of,
)
from driftrec.agents.registry import (
    AGENT_NAMES,
    FirstStepChecked,
    agent_source,
    build_agent,
    check_agent_output,
    register_agent,
    registered_agents,
    resolve_agent,
)
from driftrec.envs.config import EnvConfig

USER_MODULE = '''
import numpy as np


class CountAgent:
    """Recommends the items with the most clicks so far (ties broken at random)."""

    def __init__(self, env, seed=0, noise=0.5):
        self.num_items = env.single_action_space.n
        self.rng = np.random.default_rng(seed)
        self.clicks = np.zeros(self.num_items)
        self.noise = noise

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        noise = self.rng.random((obs.shape[0], self.num_items)) * self.noise
        return (self.clicks + noise).argmax(axis=1), None

    def update(self, obs, action, reward, next_obs, done, info):
        np.add.at(self.clicks, action, reward)


class ActOnly:
    def __init__(self, env, seed=0):
        self.n = env.num_envs

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        return np.zeros(self.n, dtype=np.int64), None


def first_item(obs):
    return np.zeros(obs.shape[0], dtype=np.int64)


def two_columns(obs):
    return np.zeros((obs.shape[0], 2), dtype=np.int64)


def floats(obs):
    return np.zeros(obs.shape[0])


def too_big(obs):
    return np.full(obs.shape[0], 10_000)


def bare_array(obs):
    return np.zeros(obs.shape[0], dtype=np.int64)


class BareArray:
    def __init__(self, env, seed=0):
        pass

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        return np.zeros(obs.shape[0], dtype=np.int64)


class NoPredict:
    def __init__(self, env, seed=0):
        pass


class Raises:
    def __init__(self, env, seed=0):
        raise KeyError("catalog_path")


NOT_CALLABLE = 3
'''


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module ``useragents`` importable from ``tmp_path`` (written fresh for each test)."""
    path = tmp_path / "useragents.py"
    path.write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("useragents", None)
    yield path
    sys.modules.pop("useragents", None)


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    """Each test starts and ends with the registry it found."""
    saved = dict(registry._REGISTRY)
    loaded = registry._entry_points_loaded
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)
    registry._entry_points_loaded = loaded


def _raises(exc: type[Exception], msg: str) -> Any:
    return pytest.raises(exc, match=f"^{re.escape(msg)}$")


def _build(name: str, config: EnvConfig, **kwargs: Any) -> registry.BuiltAgent:
    return build_agent(name, config, num_envs=4, seed=0, **kwargs)


# --------------------------------------------------------------------------------------------
# resolving names


def test_builtin_names_resolve_as_builtin() -> None:
    """Every built-in name resolves to kind 'builtin' with its description."""
    for name in AGENT_NAMES:
        spec = resolve_agent(name)
        assert spec.kind == "builtin" and not spec.is_user and spec.description


def test_import_path_resolves_and_builds(user_module: Path, tiny_config: EnvConfig) -> None:
    """'module:Class' is imported, called as Class(env, seed=seed, **kwargs), and learns."""
    spec = resolve_agent("useragents:CountAgent")
    assert (spec.kind, spec.target) == ("import", "useragents:CountAgent")
    assert spec.description.startswith("Recommends the items with the most clicks")
    built = _build("useragents:CountAgent", tiny_config, agent_kwargs={"noise": 0.1})
    assert built.agent.noise == 0.1 and built.learns and not built.is_sb3
    assert built.env.num_envs == 4
    check_agent_output(built)  # a valid agent passes


def test_agent_without_update_only_acts(user_module: Path, tiny_config: EnvConfig) -> None:
    """A factory's agent without update() is built with learns=False."""
    assert not _build("useragents:ActOnly", tiny_config).learns


def test_policy_function_is_wrapped(user_module: Path, tiny_config: EnvConfig) -> None:
    """A callable without a 'seed' keyword is a policy function obs -> actions."""
    built = _build("useragents:first_item", tiny_config)
    assert isinstance(built.agent, FunctionAgent) and not built.learns
    actions, state = built.agent.predict(np.zeros((4, 19), dtype=np.float32))
    assert actions.tolist() == [0, 0, 0, 0] and state is None
    with _raises(
        ValueError,
        "agent 'useragents:first_item' is a policy function (obs -> actions): it takes no "
        "agent_kwargs (got {'x': 1})",
    ):
        _build("useragents:first_item", tiny_config, agent_kwargs={"x": 1})


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "nosuchmodule:Agent",
            "agent 'nosuchmodule:Agent': module 'nosuchmodule' not found (is it installed, or "
            "its directory on PYTHONPATH?)",
        ),
        (
            "useragents:CountAgnt",
            "agent 'useragents:CountAgnt': module 'useragents' has no attribute 'CountAgnt'; "
            "did you mean 'CountAgent'?",
        ),
        (
            "useragents:NOT_CALLABLE",
            "agent 'useragents:NOT_CALLABLE': NOT_CALLABLE is a int, not callable; expected a "
            "class or factory called as NOT_CALLABLE(env, seed=seed), or a policy function "
            "obs -> actions",
        ),
        (
            "useragents.py:CountAgent",
            "agent 'useragents.py:CountAgent': module 'useragents.py' not found (an import path "
            "names a module, not a file: 'useragents:CountAgent')",
        ),
        (
            "use-r:Agent",
            "agent 'use-r:Agent': expected an import path 'package.module:NAME' "
            "(got 'use-r:Agent')",
        ),
        (
            "randm",
            f"unknown agent 'randm': did you mean 'random'? expected one of {list(AGENT_NAMES)}, "
            "a name registered with driftrec.register_agent, an import path "
            "'package.module:NAME' or a stable-baselines3 model '.zip'",
        ),
        (
            "missing/model.zip",
            "agent 'missing/model.zip': the stable-baselines3 checkpoint missing/model.zip "
            "does not exist",
        ),
    ],
    ids=["module", "attribute", "not-callable", "file-name", "malformed", "unknown", "zip"],
)
def test_bad_names_are_one_line(user_module: Path, name: str, message: str) -> None:
    """Each way an agent name can be wrong is one line naming it and the problem."""
    with _raises(ValueError, message):
        resolve_agent(name)


def test_module_in_working_directory_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module file in the working directory that is not importable names PYTHONPATH=."""
    (tmp_path / "herebutnotonpath.py").write_text("X = 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    with _raises(
        ValueError,
        "agent 'herebutnotonpath:X': module 'herebutnotonpath' not found "
        "(./herebutnotonpath.py exists, but the current directory is not on the module search "
        "path: run with PYTHONPATH=. or install your package)",
    ):
        resolve_agent("herebutnotonpath:X")


def test_module_that_fails_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module raising at import time (or missing a dependency) is named with the error."""
    (tmp_path / "brokenmod.py").write_text("import nosuchdependency\n")
    (tmp_path / "raisingmod.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with _raises(
        ValueError,
        "agent 'brokenmod:X': importing module 'brokenmod' failed (ModuleNotFoundError: "
        "No module named 'nosuchdependency')",
    ):
        resolve_agent("brokenmod:X")
    with _raises(
        ValueError, "agent 'raisingmod:X': importing module 'raisingmod' raised RuntimeError: boom"
    ):
        resolve_agent("raisingmod:X")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "useragents:NoPredict",
            "agent 'useragents:NoPredict': NoPredict(env, seed=...) returned NoPredict; expected "
            "an object with predict(observation, state=None, episode_start=None, "
            "deterministic=False) -> (actions, state) (the Recommender protocol of "
            "driftrec.agents.base)",
        ),
        (
            "useragents:Raises",
            "agent 'useragents:Raises': Raises(env, seed=0) raised KeyError: 'catalog_path'",
        ),
    ],
    ids=["no-predict", "raises"],
)
def test_bad_factories_are_one_line(
    user_module: Path, tiny_config: EnvConfig, name: str, message: str
) -> None:
    """A factory that returns no Recommender, or raises, is one line naming the agent."""
    with _raises(ValueError, message):
        _build(name, tiny_config)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "useragents:two_columns",
            "agent 'useragents:two_columns': predict returned actions of shape (4, 2); expected "
            "(4,) (one item id per user for the 4 users of the batch, action space "
            "Discrete(32))",
        ),
        (
            "useragents:floats",
            "agent 'useragents:floats': predict returned actions of dtype float64; expected "
            "integer item ids (e.g. np.int64)",
        ),
        (
            "useragents:too_big",
            "agent 'useragents:too_big': predict returned item id 10000; expected ids in [0, 31] "
            "(the catalog has 32 items)",
        ),
        (
            "useragents:BareArray",
            "agent 'useragents:BareArray': predict must return (actions, state) as "
            "stable-baselines3's predict does (got ndarray of shape (4,)); return "
            "(actions, None) for a stateless agent",
        ),
    ],
    ids=["shape", "dtype", "range", "no-tuple"],
)
def test_first_predict_is_checked(
    user_module: Path, tiny_config: EnvConfig, name: str, message: str
) -> None:
    """check_agent_output and FirstStepChecked refuse wrong shapes, dtypes and item ids."""
    with _raises(ValueError, message):
        check_agent_output(_build(name, tiny_config))
    built = _build(name, tiny_config)
    called = []
    acting = FirstStepChecked(built, lambda: called.append(1))
    with _raises(ValueError, message):
        acting.predict(built.env.sim.observation())
    assert called == []  # on_ok (the runner writes the run directory there) never ran


def test_first_step_checked_passes_through(user_module: Path, tiny_config: EnvConfig) -> None:
    """A valid agent's first predict calls on_ok once; attributes reach the agent."""
    built = _build("useragents:CountAgent", tiny_config)
    called = []
    acting = FirstStepChecked(built, lambda: called.append(1))
    obs = built.env.sim.observation()
    for _ in range(3):
        actions, _ = acting.predict(obs)
        assert actions.shape == (4,)
    assert called == [1] and acting.noise == 0.5 and callable(acting.update)


def test_slate_shape_is_checked(tiny_slate_config: EnvConfig) -> None:
    """On a slate world the expected shape is (B, k)."""
    from gymnasium import spaces

    space = spaces.MultiDiscrete([32] * 3)
    check_actions("a", (np.zeros((4, 3), dtype=np.int64), None), space, 4)
    with _raises(
        ValueError,
        "agent 'a': predict returned actions of shape (4,); expected (4, 3) (a slate of 3 item "
        "ids per user for the 4 users of the batch, action space MultiDiscrete([32 32 32]))",
    ):
        check_actions("a", (np.zeros(4, dtype=np.int64), None), space, 4)


# --------------------------------------------------------------------------------------------
# registration


def test_register_agent_then_build(user_module: Path, tiny_config: EnvConfig) -> None:
    """A registered class builds by name; its description is listed."""
    import useragents

    register_agent("counts", useragents.CountAgent, description="click counts")
    assert registered_agents()["counts"] == "click counts"
    spec = resolve_agent("counts")
    assert (spec.kind, spec.target) == ("registered", "useragents:CountAgent")
    assert _build("counts", tiny_config).learns


def test_register_by_entry_point_string_is_lazy(tmp_path: Path, tiny_config: EnvConfig) -> None:
    """A string factory is imported on first use; a bad target fails then, naming the agent."""
    register_agent("later", "notyetimportable:Agent")
    assert resolve_agent("later").target == "notyetimportable:Agent"
    with _raises(
        ValueError,
        "agent 'later': module 'notyetimportable' not found (is it installed, or its directory "
        "on PYTHONPATH?)",
    ):
        _build("later", tiny_config)


def test_reregistering(user_module: Path) -> None:
    """The same factory again is a no-op; another factory under the name is a clash refused in
    one line, unless overwrite=True (the rule register_scenario follows too)."""
    import useragents

    register_agent("counts", useragents.CountAgent, description="counts clicks")
    register_agent("counts", useragents.CountAgent)  # a module imported twice: fine
    register_agent("counts", "useragents:CountAgent")  # the same entry point
    assert resolve_agent("counts").target == "useragents:CountAgent"
    with _raises(
        ValueError,
        "agent 'counts' is already registered with another factory (useragents:CountAgent); "
        "pass overwrite=True to replace it, or pick another name",
    ):
        register_agent("counts", useragents.ActOnly)
    assert resolve_agent("counts").target == "useragents:CountAgent"
    register_agent("counts", useragents.ActOnly, overwrite=True)
    assert resolve_agent("counts").target == "useragents:ActOnly"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("random", "'name' 'random' is a built-in agent; pick another name"),
        (
            "a:b",
            "'name' 'a:b' looks like an import path or a .zip path; a registered name must "
            "contain no ':' and not end in '.zip'",
        ),
        (
            "mine-frozen",
            "'name' 'mine-frozen' ends in '-frozen', which marks the frozen contrast; pick "
            "another name",
        ),
        ("", "'name' must be a non-empty string without surrounding spaces (got '')"),
    ],
)
def test_register_refuses_bad_names(name: str, message: str) -> None:
    """Built-in names, import-path-like names and the '-frozen' suffix cannot be registered."""
    with _raises(ValueError, message):
        register_agent(name, FunctionAgent)


def test_register_refuses_a_non_callable() -> None:
    """A factory that is neither callable nor an import path is a TypeError naming the agent."""
    with _raises(
        TypeError,
        "'factory' of agent 'x' must be callable or an import path 'package.module:NAME' (got 3)",
    ):
        register_agent("x", 3)  # type: ignore[arg-type]


def test_entry_point_group_registers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user_module: Path
) -> None:
    """An installed package's 'driftrec.agents' entry points are registered by name."""
    dist = tmp_path / "fakeagents-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeagents\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[driftrec.agents]\nep-counts = useragents:CountAgent\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._entry_points_loaded = False
    spec = resolve_agent("ep-counts")
    assert (spec.kind, spec.target) == ("registered", "useragents:CountAgent")
    assert "from the fakeagents package" in registered_agents()["ep-counts"]


def test_import_modules_errors() -> None:
    """--import of a missing module, or of a path, is one line naming it."""
    with _raises(
        ValueError,
        "'imports': module 'nosuchpkg' not found (is it installed, or its directory on "
        "PYTHONPATH?)",
    ):
        registry.import_modules(["nosuchpkg"])
    with _raises(
        ValueError, "'imports' entries must be module names such as 'mypkg' (got 'a/b.py')"
    ):
        registry.import_modules(["a/b.py"])


# --------------------------------------------------------------------------------------------
# fingerprints


def test_agent_source_follows_the_file(user_module: Path) -> None:
    """The source identity names the entry point and changes with the file's bytes."""
    first = agent_source("useragents:CountAgent")
    assert first is not None
    assert first["entry_point"] == "useragents:CountAgent" and first["file"] == "useragents.py"
    assert len(first["sha256"]) == 64
    user_module.write_text(user_module.read_text() + "\n# changed\n")
    assert agent_source("useragents:CountAgent")["sha256"] != first["sha256"]
    assert agent_source("random") is None


# --------------------------------------------------------------------------------------------
# stable-baselines3 checkpoints


@pytest.fixture(scope="module")
def sb3_zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny PPO, A2C and DQN MlpPolicy models trained 16 steps on a 32-item world, saved."""
    from stable_baselines3 import A2C, DQN, PPO

    from driftrec.envs.sb3 import make_sb3_vec_env

    out = tmp_path_factory.mktemp("zips")
    env = make_sb3_vec_env("Stationary", num_envs=2, seed=0, num_items=32, history_len=4)
    zips = {}
    for cls, kwargs in ((PPO, {"n_steps": 8, "batch_size": 16}), (A2C, {"n_steps": 4}),
                        (DQN, {"learning_starts": 4, "buffer_size": 64})):  # fmt: skip
        model = cls("MlpPolicy", env, seed=0, **kwargs)
        model.learn(16)
        model.save(out / f"{cls.__name__}.zip")
        zips[cls.__name__] = out / f"{cls.__name__}.zip"
    return zips


def test_sb3_algorithm_is_read_without_unpickling(sb3_zips: dict[str, Path], tmp_path: Path):
    """The algorithm is told from the JSON data member; other files are refused."""
    assert {name: sb3_algorithm_of(p) for name, p in sb3_zips.items()} == {
        "PPO": "PPO",
        "A2C": "A2C",
        "DQN": "DQN",
    }
    bad = tmp_path / "notazip.zip"
    bad.write_text("hello")
    with _raises(
        ValueError,
        f"{bad}: not a zip file; expected a stable-baselines3 model saved with model.save()",
    ):
        sb3_algorithm_of(bad)


def test_untrusted_zip_is_refused(sb3_zips: dict[str, Path]) -> None:
    """Without trust the checkpoint is refused in one line saying why and what to pass."""
    path = str(sb3_zips["PPO"])
    config = EnvConfig().with_overrides(num_items=32, history_len=4)
    with _raises(
        UntrustedCheckpointError,
        f"agent {path!r}: loading this stable-baselines3 .zip would unpickle Python objects "
        "stored in it, which can run arbitrary code, and driftrec never does that implicitly; "
        "if you trust the file's source, pass --trust-checkpoint (trust_checkpoint=True in "
        "Python)",
    ):
        build_agent(path, config, num_envs=2, seed=0)


def test_trusted_zip_loads_with_a_warning(sb3_zips: dict[str, Path]) -> None:
    """With trust the model loads (warning), acts in the world and keeps its weights."""
    from stable_baselines3 import PPO

    path = str(sb3_zips["PPO"])
    config = EnvConfig().with_overrides(num_items=32, history_len=4)
    with pytest.warns(UserWarning, match="unpickles it: trusted on request"):
        built = build_agent(path, config, num_envs=3, seed=1, trust_checkpoint=True)
    assert built.is_sb3 and isinstance(built.agent, PPO) and built.rollout_steps == 8
    saved = PPO.load(path)
    for key, value in saved.policy.state_dict().items():
        assert np.array_equal(value.numpy(), built.agent.policy.state_dict()[key].numpy())
    obs = built.env.reset()
    actions, _ = built.agent.predict(obs)
    assert actions.shape == (3,)


def test_zip_for_other_spaces_is_one_line(sb3_zips: dict[str, Path]) -> None:
    """A checkpoint trained for another catalog size names the world's spaces."""
    path = str(sb3_zips["A2C"])
    env_config = EnvConfig().with_overrides(num_items=50, history_len=4)
    from driftrec.envs.sb3 import DriftRecSB3VecEnv

    env = DriftRecSB3VecEnv(2, env_config, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match=r"^agent .* cannot be loaded as a A2C checkpoint"):
            load_sb3_zip(path, env, trust=True)


def test_user_agent_as_a_behaviour_policy(user_module: Path, tiny_config: EnvConfig) -> None:
    """finetune's click log takes a user agent; one that cannot learn only acts, and a wrong
    one is refused on its first predict."""
    from driftrec.agents.lora import collect_click_log

    log = collect_click_log(tiny_config, agent="useragents:first_item", num_envs=4, steps=5)
    assert log.items.tolist() == [0] * 20
    with pytest.raises(ValueError, match=r"^agent 'useragents:floats': predict returned actions"):
        collect_click_log(tiny_config, agent="useragents:floats", num_envs=4, steps=5)


def test_main_script_entry_point_is_the_same_in_workers() -> None:
    """A class of the main script has one entry point in the parent ('__main__') and in a
    spawned worker (which re-imports the script as '__mp_main__'), so fingerprints agree."""

    class Mine:
        pass

    for module in ("__main__", "__mp_main__"):
        Mine.__module__, Mine.__qualname__ = module, "Mine"
        assert registry._entry_point_of(Mine) == "__main__:Mine"
    Mine.__qualname__ = "f.<locals>.Mine"
    assert registry._entry_point_of(Mine) is None
