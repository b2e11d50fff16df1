"""A plain (non-editable) install carries everything the commands read at run time."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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
    assert not any(name.startswith(("tests/", "bench/", "data/")) for name in wheel_names)


def test_the_preset_path_is_inside_the_engine_package():
    from engine.commands.study import PRESETS, studies_dir

    assert studies_dir().is_relative_to(ROOT / "engine")
    assert sorted(p.stem for p in studies_dir().glob("*.toml")) == sorted(PRESETS)
