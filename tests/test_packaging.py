"""Tests that pyproject.toml ships every package and declares the console script."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("driftrec", "envs", "agents", "experiments")


def _pyproject() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def _package_for(directory: Path, package_dir: dict[str, str]) -> str | None:
    """The package name of ``directory`` (relative to ROOT) under the package-dir mapping."""
    rel = directory.relative_to(ROOT).as_posix()
    best: tuple[int, str] | None = None
    for package, folder in package_dir.items():
        folder = folder.rstrip("/")
        if rel == folder or rel.startswith(folder + "/"):
            rest = rel[len(folder) :].strip("/")
            name = package + ("." + rest.replace("/", ".") if rest else "")
            if best is None or len(folder) > best[0]:
                best = (len(folder), name)
    return None if best is None else best[1]


def _init_dirs() -> list[Path]:
    found = []
    for top in SOURCE_DIRS:
        for init in sorted((ROOT / top).rglob("__init__.py")):
            if "__pycache__" not in init.parts:
                found.append(init.parent)
    return found


def test_every_package_directory_is_listed() -> None:
    """Every directory with an __init__.py under the source folders is in [tool.setuptools]."""
    tool = _pyproject()["tool"]["setuptools"]
    packages, package_dir = set(tool["packages"]), tool["package-dir"]
    dirs = _init_dirs()
    assert ROOT / "envs" in dirs and ROOT / "driftrec" in dirs
    missing = {}
    for d in dirs:
        name = _package_for(d, package_dir)
        if name not in packages:
            missing[d.relative_to(ROOT).as_posix()] = name
    assert missing == {}, f"directories not shipped (dir -> package): {missing}"


def test_every_listed_package_has_a_directory() -> None:
    """Each listed package maps (through package-dir) to an existing directory."""
    tool = _pyproject()["tool"]["setuptools"]
    package_dir = tool["package-dir"]
    for package in tool["packages"]:
        parent = package
        while parent not in package_dir and "." in parent:
            parent = parent.rsplit(".", 1)[0]
        assert parent in package_dir, package
        rest = package[len(parent) :].strip(".").replace(".", "/")
        assert (ROOT / package_dir[parent] / rest).is_dir(), package


def test_console_script_is_declared() -> None:
    """pyproject declares the `driftrec` console script in a shipped top-level module (outside
    the package, so that a Ctrl-C while the package imports is handled), which runs the CLI."""
    project = _pyproject()["project"]
    target = project["scripts"]["driftrec"]
    assert target == "_driftrec_cli:main"
    module = target.split(":")[0]
    assert module in _pyproject()["tool"]["setuptools"]["py-modules"]
    tree = ast.parse((ROOT / f"{module}.py").read_text(encoding="utf-8"))
    assert "main" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    cheap = {"__future__", "signal", "sys"}  # nothing slow before main() catches the interrupt
    assert {a.name for n in imports if isinstance(n, ast.Import) for a in n.names} <= cheap
    assert {n.module for n in imports if isinstance(n, ast.ImportFrom)} <= cheap


def test_console_script_target_defines_main() -> None:
    """The CLI module the entry point imports defines a top-level main()."""
    path = ROOT / "experiments" / "cli.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "main" in names


def test_py_typed_marker_is_shipped() -> None:
    """The py.typed marker named in package-data exists."""
    data = _pyproject()["tool"]["setuptools"]["package-data"]
    assert data["driftrec"] == ["py.typed"]
    assert (ROOT / "driftrec" / "py.typed").is_file()


def test_version_matches_pyproject() -> None:
    """``driftrec.__version__`` (in every run's fingerprint) is the package's version."""
    import driftrec

    assert driftrec.__version__ == _pyproject()["project"]["version"]


def test_license_file_matches_pyproject() -> None:
    """LICENSE holds the Apache-2.0 text that pyproject declares."""
    assert _pyproject()["project"]["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text


def test_changelog_has_a_section_per_version() -> None:
    """CHANGELOG.md has an Unreleased section and one for the current version."""
    import re

    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = re.findall(r"^## (\S+)", text, re.M)
    assert versions[0] == "Unreleased"
    assert _pyproject()["project"]["version"] in versions


def test_studies_keep_their_old_import_paths() -> None:
    """The one-off studies moved to experiments/studies; their old paths name the same modules."""
    import importlib

    for name in ("calibration", "cold_start", "compression", "lora_study"):
        old = importlib.import_module(f"driftrec.experiments.{name}")
        new = importlib.import_module(f"driftrec.experiments.studies.{name}")
        assert old is new and new.__name__ == f"driftrec.experiments.studies.{name}"
        assert not (ROOT / "experiments" / f"{name}.py").exists()
