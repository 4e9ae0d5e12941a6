"""Ctrl-C: one line that says what was kept and how to resume, exit 130, no traceback (issue 13).

preprocess and train get a real SIGINT in a subprocess (sent to the whole process group, as a terminal does, so
preprocess's worker processes get it too); extract and predict get a KeyboardInterrupt injected in-process.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from affectgpt.cli import main
from conftest import write_csv

ROOT = Path(__file__).resolve().parents[2]


def start(argv: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "AFFECTGPT_DEBUG": "0", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "affectgpt", *argv], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def interrupt_when(process: subprocess.Popen, ready, timeout: float = 60) -> tuple[int, str]:
    """SIGINT to the process group as soon as `ready()` holds; returns (exit code, stderr)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, f"finished before it could be interrupted: {process.communicate()}"
        assert time.monotonic() < deadline, "nothing was written in time"
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGINT)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    return process.returncode, err


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("workers", [1, 2])
def test_preprocess_interrupted_says_what_is_cached_and_resumes(tmp_path, square_clip, workers):
    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(40):
        shutil.copy(square_clip, clips / f"clip{i:02d}.mp4")
    out = tmp_path / "cache"
    argv = ["preprocess", str(clips), "--output", str(out), "--workers", str(workers), "--frames", "4",
            "--no-progress"]
    code, err = interrupt_when(start(argv, tmp_path), lambda: any(out.glob("*.safetensors")))
    assert code == 130, err
    line = one_line(err)
    match = re.fullmatch(rf"error: interrupted: (\d+) clips? (?:is|are) cached in {re.escape(str(out))}; "
                         "run the same command again to resume", line)
    assert match, line
    cached = int(match.group(1))
    assert 1 <= cached <= 20 and cached == len(list(out.glob("*.safetensors")))  # the rest were dropped
    assert all(p.suffix == ".safetensors" for p in out.iterdir()), sorted(out.iterdir())  # nothing half-written

    again = subprocess.run([sys.executable, "-m", "affectgpt", *argv], cwd=tmp_path, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"{40 - cached} written, {cached} already cached, 0 failed" in again.stderr


@pytest.mark.slow
def test_train_interrupted_says_where_the_checkpoints_are_and_resumes(tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--config", str(ROOT / "configs" / "tiny-cpu.yaml"), "--output", str(out),
            "--set", "schedule.total_steps=60", "--set", "save_every=10", "--set", "log_every=5",
            "--set", "progress=false"]
    code, err = interrupt_when(start(argv, tmp_path), lambda: any(out.glob("checkpoint_??????")), timeout=120)
    assert code == 130, err
    lines = err.strip().splitlines()  # the run's notes, then the one error line
    assert "Traceback" not in err and [x for x in lines if x.startswith("error:")] == lines[-1:], err
    assert re.fullmatch(rf"error: interrupted: checkpoints are in {re.escape(str(out))} \(newest checkpoint_\d{{6}}\); "
                        "add --resume to continue", lines[-1]), err

    again = subprocess.run([sys.executable, "-m", "affectgpt", *argv, "--resume"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "trained to step 60" in again.stderr


def test_train_interrupted_before_a_checkpoint(monkeypatch, capsys, tmp_path):
    def run(args):
        (Path(args.output) / "features").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr("affectgpt.cli.train.run_train", run)
    assert main(["train", "--config", "c.yaml", "--output", str(tmp_path / "run")]) == 130
    assert one_line(capsys.readouterr().err) == (
        f"error: interrupted before the first checkpoint: nothing to resume in {tmp_path / 'run'}; run the same "
        "command again to start over")


def test_extract_interrupted_keeps_what_was_written_and_reruns(monkeypatch, capsys, tmp_path):
    source = write_csv(tmp_path / "in" / "checkpoint_000001_loss_0.1.csv", "name,text",
                       [("s1", "She is happy and excited."), ("s2", "He looks sad.")])
    out = tmp_path / "out"
    argv = ["extract", "labels", "--input", str(source.parent), "--output", str(out), "--format", "csv",
            "--no-progress"]

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("affectgpt.extract.job.run_file", stop)
    assert main(argv) == 130
    assert one_line(capsys.readouterr().err) == (
        "error: interrupted: files already written are kept; run the same command again to do the rest")
    assert not out.exists() or not any(out.iterdir())
    monkeypatch.undo()
    assert main(argv) == 0
    assert any(out.glob("*-openset.csv"))


def test_extract_with_an_llm_says_its_answers_are_cached(monkeypatch, capsys, tmp_path):
    source = write_csv(tmp_path / "in.csv", "name,text", [("s1", "She is happy.")])

    def stop(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("affectgpt.cli.extract.run_extract", stop)
    assert main(["extract", "labels", "--input", str(source), "--output", str(tmp_path / "o.csv"), "--backend",
                 "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m"]) == 130
    assert "LLM's answers so far are cached; run the same command again to resume" in one_line(
        capsys.readouterr().err)


def test_predict_interrupted_names_the_partial_answers(monkeypatch, capsys, tmp_path):
    out = tmp_path / "out"

    def run(args):  # what infer/predict.py keeps batch by batch
        out.mkdir()
        (out / "checkpoint_000060_loss_0.480.partial.jsonl").write_text('{"name": "a", "text": "x"}\n')
        raise KeyboardInterrupt

    monkeypatch.setattr("affectgpt.cli.infer.run_predict", run)
    assert main(["predict", "--clips", str(tmp_path), "--model", "ckpt", "--output", str(out)]) == 130
    assert one_line(capsys.readouterr().err) == (
        f"error: interrupted: answers so far are kept in {out / 'checkpoint_000060_loss_0.480.partial.jsonl'}; "
        "run the same command again to resume")


def test_features_interrupted_counts_the_files(monkeypatch, capsys, tmp_path):
    out = tmp_path / "features"

    def run(args):
        out.mkdir()
        for name in ("a", "b"):
            (out / f"{name}.safetensors").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr("affectgpt.cli.features.run_extract", run)
    assert main(["features", "extract", "--manifest", "m.csv", "--output", str(out), "--visual-encoder", "v",
                 "--audio-encoder", "a"]) == 130
    assert one_line(capsys.readouterr().err) == (
        f"error: interrupted: the features of 2 clips are in {out}; run the same command again to resume")


def test_extract_with_the_openai_backend_interrupted_in_its_threads(tmp_path, llm_server):
    """A real SIGINT while the backend's threads wait on the server: one line, and the answers so far are reused."""
    rows = [(f"s{i:02d}", f"Sample {i} sounds happy.") for i in range(20)]
    source = write_csv(tmp_path / "in.csv", "name,text", rows)
    llm_server.add_rule("Sample", "[happy]")
    llm_server.add_fault("slow", delay=0.3)
    argv = ["extract", "labels", "--input", str(source), "--output", str(tmp_path / "out.csv"), "--format", "csv",
            "--backend", "openai", "--base-url", llm_server.base_url, "--model", "m", "--concurrency", "2",
            "--retries", "0", "--no-progress"]
    started = time.monotonic()
    code, err = interrupt_when(start(argv, tmp_path), lambda: llm_server.count >= 4)
    assert code == 130, err
    assert one_line(err) == ("error: interrupted: files already written are kept and the LLM's answers so far are "
                             "cached; run the same command again to resume")
    assert time.monotonic() - started < 2.5  # not after the 20 requests (3 s at 2 in flight)
    asked = llm_server.count
    assert asked < 20 and not (tmp_path / "out.csv").exists()
    llm_server.clear_faults()
    again = subprocess.run([sys.executable, "-m", "affectgpt", *argv], cwd=tmp_path, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
    assert llm_server.count - asked < 20  # the answers received before Ctrl-C were cached


def test_bench_run_interrupted_names_the_partial_answers(monkeypatch, capsys, tmp_path):
    out = tmp_path / "out"

    def run(args):  # what harness/generate.py keeps answer by answer
        (out / "mer2023").mkdir(parents=True)
        (out / "mer2023" / "generation.partial.jsonl").write_text('{"name": "a", "text": "x"}\n')
        raise KeyboardInterrupt

    monkeypatch.setattr("affectgpt.cli.bench.run_run", run)
    assert main(["bench", "run", "--backend", "perception", "--clips-root", str(tmp_path), "--labels-root",
                 str(tmp_path), "--output", str(out)]) == 130
    assert one_line(capsys.readouterr().err) == (
        f"error: interrupted: answers so far are kept in {out / 'mer2023' / 'generation.partial.jsonl'}; run the "
        "same command again to resume (nothing answered is sent again)")
