"""Shared tiny fixtures: small configs that keep every test fast and offline."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftrec.envs.config import (
    CatalogConfig,
    ChoiceConfig,
    EnvConfig,
    SessionConfig,
    UserConfig,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_ITEMS = 32  # catalog size of the tiny configs
TINY_TOPICS = 4  # number of topics of the tiny configs
TINY_HISTORY = 8  # history length of the tiny configs
TINY_USERS = 4  # user slots of the tiny batched fixtures


@pytest.fixture(scope="session", autouse=True)
def _single_torch_thread() -> Iterator[None]:
    """Run torch on one thread when it is installed (imported lazily: envs tests do not need it)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency, but envs must not need it
        yield
        return
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """Run BLAS on one thread: threaded OpenBLAS crawls on small products when cores are busy."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def tiny_config() -> EnvConfig:
    """A single-item world with 32 items, 4 topics, history 8 and 20-step sessions."""
    return EnvConfig(
        catalog=CatalogConfig(num_items=TINY_ITEMS, num_topics=TINY_TOPICS, seed=0),
        users=UserConfig(patience=20.0, max_patience=50.0),
        session=SessionConfig(max_steps=20, history_len=TINY_HISTORY),
    )


@pytest.fixture
def tiny_slate_config(tiny_config: EnvConfig) -> EnvConfig:
    """The tiny world with slates of 3 items and position bias 0.8."""
    return tiny_config.with_overrides(choice=ChoiceConfig(slate_size=3, position_bias=0.8))


_LOG_GENRES = ("Action", "Drama", "Comedy")


@pytest.fixture
def synthetic_log_files(tmp_path: Path) -> tuple[Path, Path]:
    """A synthetic log: 60 users, half choose Action, half Drama; item 'q' is rated 5, 'p' 1.

    Items 0-9 are Action, 10-19 Drama, 20-29 Comedy; items 28 and 29 are first chosen late.
    Users 0-29 pick 80% Action items and users 30-59 80% Drama items; in the second half of the
    log every user picks 40% Comedy (a population trend toward Comedy).
    """
    rng = np.random.default_rng(0)
    items = tmp_path / "items.csv"
    lines = ["id,title,genres,description"]
    for i in range(30):
        lines.append(f"m{i},Movie {i},{_LOG_GENRES[i // 10]},A film number {i}")
    items.write_text("\n".join(lines) + "\n")
    rows = ["user,item,rating,timestamp"]
    for u in range(60):
        fav = 0 if u < 30 else 1
        for n in range(40):
            t = 1000 + n * 100 + u
            if n >= 20 and rng.random() < 0.4:
                g = 2
            else:
                g = fav if rng.random() < 0.8 else 1 - fav
            i = g * 10 + int(rng.integers(0, 8 if t < 3000 else 10))
            rating = 5 if i in (0, 10) else (1 if i in (1, 11) else 3)
            rows.append(f"u{u},m{i},{rating},{t}")
    inter = tmp_path / "ratings.csv"
    inter.write_text("\n".join(rows) + "\n")
    return inter, items


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``run_cli(*argv)`` -> ``(exit code, stdout, stderr)`` of ``driftrec`` ``main(argv)``;
    argparse's ``SystemExit`` becomes its code."""
    from driftrec.experiments.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def start_cli() -> Callable[..., Any]:
    """``start_cli(argv, env=..., ignore_sigint=False, merge_stderr=False)``: ``driftrec argv``
    in a new session (so a signal can go to its whole process group, as a terminal sends it),
    unbuffered, with a 400 s alarm as a watchdog should the test die before stopping it.
    ``ignore_sigint`` starts it with SIGINT ignored, as ``cmd &`` does in a script."""
    import signal
    import subprocess
    import sys

    def start(
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        ignore_sigint: bool = False,
        merge_stderr: bool = False,
    ) -> subprocess.Popen[str]:
        code = (
            f"import signal, sys; signal.alarm(400); sys.argv = ['driftrec', *{list(argv)!r}]; "
            "from _driftrec_cli import main; sys.exit(main())"
        )
        ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
        return subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=ignore,
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
        )

    return start
