"""Shared fixtures: the reference folder (skips with a reason when absent), an isolated per-user cache."""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"

# tests/support holds helpers shared by several test folders (the fake OpenAI-compatible server...).
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))
pytest_plugins = ["llm_server", "tiny_models", "media_clips"]


def pytest_configure(config: pytest.Config) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference beside the checkout: real files of the original release."""
    if not REFERENCE.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE} (it is present in CI and beside developer "
                    "checkouts; a fresh clone elsewhere has none)")
    return REFERENCE


@pytest.fixture(scope="session")
def wheel_dir(reference_dir: Path) -> Path:
    return reference_dir / "emotion_wheel"


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("affectgpt-cache")


@pytest.fixture(autouse=True)
def _forget_user_datasets() -> Iterator[None]:
    """User datasets (`--dataset-spec`) are registered per process: each test starts without any."""
    yield
    datasets = sys.modules.get("affectgpt.bench.datasets")
    if datasets is not None:
        datasets.USER_DATASETS.clear()


@pytest.fixture(autouse=True)
def isolated_cache(_session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test uses a private cache folder (shared within the session so wheels compile once)."""
    monkeypatch.setenv("AFFECTGPT_CACHE_DIR", str(_session_cache))
    for name in ("AFFECTGPT_WHEEL_DIR", "AFFECTGPT_WHEELS_BASE_URL", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    return _session_cache


def write_csv(path: Path, header: str, rows: list[tuple[str, str]]) -> Path:
    """A name,value CSV written with the csv module (quoting handled)."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header.split(","))
        writer.writerows(rows)
    return path


# The robustness matrix (tests/robustness/test_matrix.py) prints how many cases it ran for each command.
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    counts: Counter[str] = Counter()
    outcomes: dict[str, Counter[str]] = {}
    for outcome in ("passed", "failed", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if "test_hostile_input[" in report.nodeid and report.when in ("call", "setup"):
                if report.when == "setup" and outcome == "passed":
                    continue
                command = report.nodeid.split("[", 1)[1].split(" | ", 1)[0]
                counts[command] += 1
                outcomes.setdefault(command, Counter())[outcome] += 1
    if counts:
        terminalreporter.write_sep("-", "robustness matrix: cases per command")
        for command, total in counts.items():
            detail = ", ".join(f"{n} {o}" for o, n in sorted(outcomes[command].items()))
            terminalreporter.write_line(f"{command:40s} {total:3d} ({detail})")
        terminalreporter.write_line(f"{'total':40s} {sum(counts.values()):3d}")
