"""A plain (non-editable) install carries everything the commands read at run time."""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    setuptools = pytest.importorskip("setuptools")  # built without isolation: the test needs no network
    if tuple(int(part) for part in setuptools.__version__.split(".")[:2]) < (70, 1):
        pytest.importorskip("wheel")  # older setuptools builds wheels through the `wheel` package
    source = tmp_path_factory.mktemp("src")
    for item in ("pyproject.toml", "README.md", "engine", "analysis", "report_templates"):
        target = source / item
        if (ROOT / item).is_dir():
            shutil.copytree(ROOT / item, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / item, target)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_ships_the_study_presets_and_report_templates(wheel_names):
    for preset in sorted((ROOT / "engine" / "study" / "presets").glob("*.toml")):
        assert f"engine/study/presets/{preset.name}" in wheel_names
    for template in sorted([*(ROOT / "report_templates").glob("*.j2"), *(ROOT / "report_templates").glob("*.css")]):
        assert f"report_templates/{template.name}" in wheel_names
    assert "engine/cli.py" in wheel_names and "analysis/cli.py" in wheel_names
    for registry in ("engine/common", "engine/attacks/recipes", "engine/datasets/formats", "engine/datasets/builtins",
                     "analysis/stats/procedures"):  # the registries find their entries in these packages
        assert f"{registry}/__init__.py" in wheel_names
    assert not any(name.startswith(("tests/", "bench/", "data/")) for name in wheel_names)


def test_the_preset_path_is_inside_the_engine_package():
    from engine.commands.study import PRESETS, studies_dir

    assert studies_dir().is_relative_to(ROOT / "engine")
    assert sorted(p.stem for p in studies_dir().glob("*.toml")) == sorted(PRESETS)


def _import_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("-", "_")


def test_runtime_dependencies_are_exactly_what_the_code_imports():
    """A dependency nobody imports at run time belongs in an extra; anything imported is declared."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_import_name(item) for item in project["dependencies"]}
    optional = {_import_name(item) for items in project["optional-dependencies"].values() for item in items}
    imported: dict[str, str] = {}
    for package in ("engine", "analysis", "report_templates"):
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            for node in ast.walk(ast.parse(text)):
                names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
                for name in names:
                    imported.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
            for name in re.findall(r"find_spec\(\"([\w.]+)\"\)", text):  # imported by name at run time
                imported.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    third_party = {name: where for name, where in imported.items()
                   if name not in sys.stdlib_module_names and name not in ("engine", "analysis", "report_templates")}
    unused = sorted(declared - set(third_party))
    assert not unused, f"declared in [project] dependencies but never imported: {unused}"
    undeclared = sorted(f"{name} ({where})" for name, where in third_party.items() if name not in declared | optional)
    assert not undeclared, f"imported but not declared: {undeclared}"
