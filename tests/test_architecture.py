"""The dependency contracts hold, and the scorer's path imports neither torch nor numpy."""

from __future__ import annotations

import re
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


def _tour() -> str:
    """The package tour: the first code block after README's "## Package tour" heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Package tour", 1)[1]
    return section.split("```", 2)[1]


def _layers() -> tuple[set[str], set[str]]:
    """(required, optional) layer names of the layers contract in .importlinter."""
    import configparser

    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter")
    required, optional = set(), set()
    for line in parser["importlinter:contract:layers"]["layers"].split("\n"):
        for name in filter(None, (part.strip() for part in line.split("|"))):
            (optional if name.startswith("(") else required).add(name.strip("()"))
    return required, optional


def _tree() -> tuple[set[str], set[str]]:
    """(subpackages, top-level modules) of src/affectgpt."""
    package = ROOT / "src" / "affectgpt"
    folders = {p.parent.name for p in package.glob("*/__init__.py")}
    modules = {p.stem for p in package.glob("*.py")} - {"__init__", "__main__"}
    return folders, modules


def test_every_folder_and_module_has_a_layer_and_a_place_in_the_tour():
    folders, modules = _tree()
    required, optional = _layers()
    tour = _tour()
    toured_folders = set(re.findall(r"^  (\w+)/", tour, flags=re.M))
    toured_modules = set(re.findall(r"\b(\w+)\.py\b", tour.split("tests/", 1)[0]))
    assert folders | modules == required, "every folder and top-level module is one layer of .importlinter"
    assert folders <= toured_folders, f"missing from the README tour: {sorted(folders - toured_folders)}"
    assert modules <= toured_modules, f"missing from the README tour: {sorted(modules - toured_modules)}"
    kept_rooms = toured_folders - folders
    assert kept_rooms == optional - folders, "a folder in the tour that is not in the tree is a room kept for later"
    for room in kept_rooms:
        assert re.search(rf"^  {room}/\s+\(next\)", tour, flags=re.M), f"{room}/ is marked (next) in the tour"


def test_every_module_says_its_job_in_its_first_line():
    for path in sorted((ROOT / "src" / "affectgpt").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        assert source.startswith('"""'), f"{path.relative_to(ROOT)} starts with its docstring"
        first = source[3:].split("\n", 1)[0].strip()
        assert len(first) > 10, f"{path.relative_to(ROOT)}: the first line says what the module is for"


def test_only_the_cli_prints():
    offenders = []
    for path in sorted((ROOT / "src" / "affectgpt").rglob("*.py")):
        if "cli" in path.relative_to(ROOT / "src" / "affectgpt").parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"(?<![\w.])print\(|\btqdm\b", code):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "only affectgpt.cli prints or draws progress bars:\n" + "\n".join(offenders)
