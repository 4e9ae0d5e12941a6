"""The accelerate fixes of train/accelerator.py touch accelerate's private state: the installed accelerate is one
they were tested against, and pyproject.toml bounds accelerate below the next, untested release."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("accelerate")

from packaging.requirements import Requirement
from packaging.version import Version

from affectgpt.train.accelerator import TESTED_ACCELERATE

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _release(text: str) -> tuple[int, int]:
    major, minor = Version(text).release[:2]
    return major, minor


def test_the_installed_accelerate_is_a_tested_release():
    installed = _release(version("accelerate"))
    assert installed in {_release(v) for v in TESTED_ACCELERATE}, (
        f"accelerate {version('accelerate')} is not among the tested releases {TESTED_ACCELERATE}: check "
        "train/accelerator.py's fixes against it, then add it there and raise pyproject.toml's bound")


@pytest.mark.parametrize("extra", ["train", "dev"])
def test_pyproject_bounds_accelerate_below_the_next_release(extra):
    extras = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    [spec] = [Requirement(r).specifier for r in extras[extra] if Requirement(r).name == "accelerate"]
    newest = max(_release(v) for v in TESTED_ACCELERATE)
    following = f"{newest[0]}.{newest[1] + 1}"
    assert all(spec.contains(f"{v}.0") for v in TESTED_ACCELERATE), spec
    assert not spec.contains(following) and not spec.contains(f"{following}.0rc1", prereleases=True), spec
    assert any(s.operator == "<" and Version(s.version) == Version(following) for s in spec), spec
