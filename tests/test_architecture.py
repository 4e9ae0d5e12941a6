"""The dependency contracts hold, and the scorer's path imports neither torch nor numpy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_scoring_imports_no_torch_and_no_numpy(tmp_path):
    labels = tmp_path / "l.csv"
    labels.write_text("name,label\na,happy\n")
    preds = tmp_path / "p.csv"
    preds.write_text('name,openset\na,"[happy]"\n')
    code = f"""
import sys
from affectgpt.cli import main
assert main(["bench", "score", "--protocol", "builtin", "--dataset", "mer2023", "--predictions", {str(preds)!r},
             "--labels", {str(labels)!r}, "--format", "json"]) == 0
heavy = sorted(m for m in ("torch", "transformers", "numpy", "pandas", "matplotlib") if m in sys.modules)
print("HEAVY", heavy)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_import_affectgpt_has_no_side_effects():
    code = "import sys, affectgpt; print(sorted(m for m in sys.modules if m.startswith('affectgpt')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['affectgpt']"


def test_offline_extraction_imports_no_http_client_and_no_torch(tmp_path):
    texts = tmp_path / "t.csv"
    texts.write_text("name,text\na,The character's emotional state is happy.\n")
    code = f"""
import sys
from affectgpt.cli import main
assert main(["extract", "labels", "--input", {str(texts)!r}, "--output", {str(tmp_path / "o.csv")!r},
             "--format", "csv", "--no-progress"]) == 0
heavy = sorted(m for m in ("torch", "transformers", "httpx", "numpy", "sqlite3") if m in sys.modules)
print("HEAVY", heavy)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert (tmp_path / "o.csv").read_text() == "name,openset\na,[happy]\n"
