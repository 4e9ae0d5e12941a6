"""`affectgpt bench run` on the command line: end to end against the loopback multimodal server (content parts
checked, answers from its table), the row equal to the one from the same answers scored independently, a rerun
sending nothing; exit codes and lines for bad folders, failed clips, --limit; a kill -9 midway and a rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("av")
pytest.importorskip("cv2")
pytest.importorskip("httpx")

import test_run
from mm_server import MultimodalServer
from test_run import ANSWERS, LABELS, VIDEO_OF, VIDEOS, TableBackend, _options

from affectgpt.cli import main
from affectgpt.harness.backends import BACKENDS
from affectgpt.harness.run import run_benchmark
from affectgpt.io.npy import read_npz

tree, clip_bank = test_run.tree, test_run.clip_bank  # the same fixtures: clips named as in hand-made labels
TABLE = dict(enumerate(VIDEOS))  # the server answers by the video it is shown
N_ASKED = sum(1 for rows in LABELS.values() for n in rows if n in ANSWERS)
N_SENT = 6
"""Distinct requests of a run: the five mer2023 clips, then sims take_11 (video 0 without take_01's subtitle); the
other clips repeat an earlier (video, instruction) pair in a later set and come from the answer cache."""


@pytest.fixture
def server():
    server = MultimodalServer(answers=dict(TABLE)).start()
    server.expect(images=4, size=96)
    try:
        yield server
    finally:
        server.stop()


def _openai_args(tree, server, out: Path, *more: str) -> list[str]:
    return ["bench", "run", "--backend", "openai", "--model", "omni", "--base-url", server.base_url,
            "--frames", "4", "--size", "96", "--option", 'modalities=["image", "text"]', "--option", "backoff=0.01",
            "--cache", str(tree["root"] / "answers.sqlite"), "--clips-root", str(tree["clips"]),
            "--labels-root", str(tree["labels"]), "--datasets", "mer2023", "sims", "--dataset-spec",
            str(tree["spec"]), "--protocol", "builtin", "--no-progress", "--output", str(out), *more]


def test_openai_end_to_end_row_equals_the_table_answers_scored_and_a_rerun_sends_nothing(tree, server, capsys):
    assert main(_openai_args(tree, server, tree["out"])) == 0
    assert server.rejected == [] and server.count == N_SENT
    assert server.parts == [("image",) * 4 + ("text",)] * N_SENT
    printed = capsys.readouterr()
    assert "MER2023" in printed.out and "partial:" in printed.err
    # the same answers, from the table by name through the API, scored the same way (test_run checks that
    # route against `bench score` on the extracted files)
    reference = tree["root"] / "reference"
    run_benchmark(TableBackend(), _options(tree, output=reference))
    got, want = (json.loads((root / "suite.json").read_text()) for root in (tree["out"], reference))
    assert got["row"] == want["row"]
    assert got["results"]["studio"]["best"]["metrics"] == want["results"]["studio"]["best"]["metrics"]
    text = read_npz(tree["out"] / "mer2023" / "checkpoint_000000.npz")
    assert list(text["fileitems"]) == [ANSWERS[n] for n in text["filenames"]]
    provenance = json.loads((tree["out"] / "provenance.json").read_text())
    assert provenance["backend"]["encode"]["n_frames"] == 4 and provenance["model"] == "omni"
    # a rerun sends nothing (answers logged); without the logs, the sqlite cache still sends nothing
    assert main(_openai_args(tree, server, tree["out"])) == 0 and server.count == N_SENT
    for log in tree["out"].glob("*/generation.jsonl"):
        log.unlink()
    assert main(_openai_args(tree, server, tree["out"])) == 0 and server.count == N_SENT
    assert json.loads((tree["out"] / "suite.json").read_text())["row"] == got["row"]


@pytest.fixture
def table_backend(monkeypatch):
    monkeypatch.setitem(BACKENDS.entries, "table", "test_run:TableBackend")


def _table_args(tree, *more: str) -> list[str]:
    return ["bench", "run", "--backend", "table", "--clips-root", str(tree["clips"]), "--labels-root",
            str(tree["labels"]), "--protocol", "builtin", "--no-progress", "--output", str(tree["out"]), *more]


def test_exit_codes_and_lines(tree, table_backend, capsys):
    assert main(_table_args(tree, "--clips-root", str(tree["root"] / "nowhere"))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "folder not found" in err and "--clips-root" in err
    assert main(_table_args(tree, "--model", "x")) == 2
    assert "the table backend takes no option 'model'" in capsys.readouterr().err
    assert main(_table_args(tree, "--datasets", "mer2023", "--limit", "2")) == 0
    err = capsys.readouterr().err
    assert "mer2023: 2 answered" in err and "partial: --limit 2" in err and "1 not in labels" in err
    (tree["clips"] / "sims" / "take_13.mp4").unlink()
    (tree["clips"] / "sims" / "take_13.mp4").write_bytes(b"junk")
    assert main(_table_args(tree, "--datasets", "sims", "--option", 'needs=["frames"]')) == 3
    assert "1 failed (see" in capsys.readouterr().err
    assert (tree["out"] / "sims" / "failures.json").is_file()


@pytest.mark.slow
def test_kill_9_midway_then_rerun_gives_the_uninterrupted_outputs_sending_nothing_twice(tree, server, tmp_path):
    server.add_fault("slow", delay=0.3)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    # mer2023 alone shows each video once; no answer cache: only the run's own log can avoid a resend
    args = ["bench", "run", "--backend", "openai", "--model", "omni", "--base-url", server.base_url, "--frames", "4",
            "--size", "96", "--option", 'modalities=["image", "text"]', "--no-cache", "--clips-root",
            str(tree["clips"]), "--labels-root", str(tree["labels"]), "--datasets", "mer2023", "--protocol",
            "builtin", "--no-progress", "--output", str(tree["out"])]
    process = subprocess.Popen([sys.executable, "-m", "affectgpt", *args, "--option", "concurrency=1",
                                "--batch-size", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tree["out"] / "mer2023" / "generation.partial.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not log.is_file() or len(log.read_text().splitlines()) < 2):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    logged = [json.loads(line)["name"] for line in log.read_text().splitlines() if line.endswith("}")]
    assert 2 <= len(logged) < 5 and not (tree["out"] / "mer2023" / "checkpoint_000000.npz").exists()
    before = server.count
    assert main(args) == 0
    video_names = {k: name for name, k in VIDEO_OF.items() if name in LABELS["mer2023"]}
    resent = [video_names[server.clip_of(seen.body)] for seen in server.requests[before:]]
    assert not set(resent) & set(logged) and len(resent) == len(set(resent))  # nothing answered is asked again
    assert sorted(resent + logged) == sorted(n for n in LABELS["mer2023"] if n in ANSWERS)  # each clip once
    uninterrupted = tmp_path / "whole"
    run_benchmark(TableBackend(), _options(tree, output=uninterrupted, datasets=("mer2023",), dataset_specs=()))
    for stem in ("checkpoint_000000", "checkpoint_000000-openset"):
        a, b = (read_npz(root / "mer2023" / f"{stem}.npz") for root in (tree["out"], uninterrupted))
        assert list(a["filenames"]) == list(b["filenames"]) and list(a["fileitems"]) == list(b["fileitems"])
    assert json.loads((tree["out"] / "suite.json").read_text())["row"] == \
        json.loads((uninterrupted / "suite.json").read_text())["row"]


def test_the_transformers_backend_on_a_tiny_random_model_goes_through_the_same_command(tree, tmp_path, capsys):
    """A tiny random LLaVA built here answers every clip through `bench run`: its text is logged, extracted and
    scored like any backend's (random weights: the words are noise, the pipeline is what is checked)."""
    pytest.importorskip("torch")
    from tiny_multimodal import tiny_model_folder

    model = tiny_model_folder(tmp_path / "tiny-llava")
    out = tmp_path / "run"
    argv = ["bench", "run", "--backend", "transformers", "--model", str(model), "--frames", "2",
            "--option", "max_new_tokens=6", "--clips-root", str(tree["clips"]), "--labels-root",
            str(tree["labels"]), "--datasets", "mer2023", "--protocol", "builtin", "--no-progress",
            "--output", str(out)]
    assert main(argv) == 0
    records = [json.loads(line) for line in (out / "mer2023" / "generation.jsonl").read_text().splitlines()]
    assert len(records) == sum(1 for n in LABELS["mer2023"] if n in ANSWERS)
    assert all(r["backend"] == "transformers" and isinstance(r["text"], str) and r["text"] for r in records)
    generated = read_npz(out / "mer2023" / "checkpoint_000000.npz", ["filenames", "fileitems"])
    assert sorted(generated["filenames"]) == sorted(r["name"] for r in records)
    assert (out / "mer2023" / "checkpoint_000000-openset.npz").is_file()
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["backend"]["model_type"] == "llava"
    suite = json.loads((out / "suite.json").read_text())
    assert "mer2023" in json.dumps(suite)
    capsys.readouterr()
