"""`bench run` through harness.run.run_benchmark: generated clips named as in hand-made labels, a table backend,
the lexicon extractor and the scorer; scores checked against `bench score` on the extracted files; resume after an
interruption asks the backend only for the missing clips; bad clip folders give their documented errors or counts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("av")

from media_clips import write_video
from mm_server import clip_frames

from affectgpt.cli import main
from affectgpt.errors import InputError
from affectgpt.extract.build import ExtractorOptions
from affectgpt.harness.base import Job, Output
from affectgpt.harness.run import Progress, RunOptions, run_benchmark
from affectgpt.io.npy import read_npz

# mer2023 (basic) and sims (sentiment) as published names with hand-made CSV labels, studio as a user spec.
LABELS = {
    "mer2023": {"take_01": "happy", "take_02": "sad", "take_03": "angry", "take_04": "neutral",
                "take_05": "worried", "take_06": "happy"},  # take_06 has no clip
    "sims": {"take_11": 0.8, "take_12": -0.6, "take_13": -1.0},
    "studio": {"take_21": "surprise", "take_22": "happy"},
}
STRAY = "stray_99"  # a clip of mer2023 that is not in its labels
VIDEOS = ("She smiles broadly and seems happy.", "He looks sad and tearful.", "He is furious, clearly angry.",
          "She is calm.", "She seems surprised.")
"""The answer to each test video k (it shows mm_server.clip_frames(k)); names share videos across sets."""
VIDEO_OF = {"take_01": 0, "take_02": 1, "take_03": 2, "take_04": 3, "take_05": 4,  # take_05 wrong: worried
            "take_11": 0, "take_12": 1, "take_13": 3,  # take_13 wrong: calm reads positive, the label is negative
            "take_21": 4, "take_22": 1, STRAY: 2}
ANSWERS = {name: VIDEOS[k] for name, k in VIDEO_OF.items()}
OPENSET = {"take_01": "[happy]", "take_02": "[sad, tearful]", "take_03": "[furious, angry]", "take_04": "[calm]",
           "take_05": "[surprised]"}  # what the lexicon reads in ANSWERS (checked by hand)
SPEC = {"name": "studio", "task": "basic", "labels": {"file": "studio.csv"}, "label_space": ["surprise", "happy"]}


class TableBackend:
    """A MultimodalBackend answering from ANSWERS by clip name; it records every name it was asked for."""

    name = "table"
    model = "answer-table"

    def __init__(self, needs: Sequence[str] = ("video", "subtitle"), fail: Sequence[str] = ()) -> None:
        self.needs = frozenset(needs)
        self.fail = set(fail)
        self.asked: list[str] = []
        self.jobs: list[Job] = []

    def answer(self, jobs: Sequence[Job], on_result: Any = None) -> list[Output]:
        outputs = []
        for index, job in enumerate(jobs):
            self.asked.append(job.clip.name)
            self.jobs.append(job)
            failed = job.clip.name in self.fail
            output = Output(job.clip.name, None if failed else ANSWERS[job.clip.name],
                            error="server said no" if failed else None, backend=self.name, model=self.model,
                            sampling={"temperature": 0.0, "seed": 7})
            outputs.append(output)
            if on_result is not None:
                on_result(index, output)
        return outputs

    def provenance(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "sampling": {"temperature": 0.0, "seed": 7}}


def _write_csv(path: Path, rows: dict[str, Any]) -> Path:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "label"])
        writer.writerows(rows.items())
    return path


@pytest.fixture(scope="module")
def clip_bank(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> its small test video (video k shows mm_server.clip_frames(k)), written once for the module."""
    folder = tmp_path_factory.mktemp("bank")
    videos = [write_video(folder / f"video_{k}.mp4", images=clip_frames(k, 6), fps=10) for k in range(len(VIDEOS))]
    return {name: videos[k] for name, k in VIDEO_OF.items()}


@pytest.fixture
def tree(tmp_path: Path, clip_bank: dict[str, Path]) -> dict[str, Path]:
    """clips/<set>/<name>.mp4 (mer2023 also with a stray clip and a subtitle table), labels/<set>/test_labels.csv,
    and the studio spec with its labels beside it."""
    clips, labels = tmp_path / "clips", tmp_path / "labels"
    for dataset, rows in LABELS.items():
        (clips / dataset).mkdir(parents=True)
        for name in rows:
            if name in clip_bank:
                (clips / dataset / f"{name}.mp4").symlink_to(clip_bank[name])
        if dataset != "studio":
            _write_csv(labels / dataset / "test_labels.csv", rows)
    (clips / "mer2023" / f"{STRAY}.mp4").symlink_to(clip_bank[STRAY])
    (clips / "mer2023" / "subtitles.csv").write_text("name,chinese,english\ntake_01,我很开心,I am so glad\n",
                                                     encoding="utf-8")
    _write_csv(tmp_path / "spec" / "studio.csv", LABELS["studio"])
    spec = tmp_path / "spec" / "studio.json"
    spec.write_text(json.dumps(SPEC), encoding="utf-8")
    return {"clips": clips, "labels": labels, "spec": spec, "out": tmp_path / "out", "root": tmp_path}


def _options(tree: dict[str, Path], **changes: Any) -> RunOptions:
    options = {"clips_root": tree["clips"], "labels_root": tree["labels"], "output": tree["out"],
               "datasets": ("mer2023", "sims"), "dataset_specs": (tree["spec"],), "protocol": "builtin",
               "extractor": ExtractorOptions(), "batch_size": 2, "workers": 2, **changes}
    return RunOptions(**options)


def _bench_score(capsys: pytest.CaptureFixture, *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["bench", "score", *args, "--protocol", "builtin", "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_end_to_end_equals_bench_score_on_the_extracted_files(tree, capsys):
    backend = TableBackend()
    result = run_benchmark(backend, _options(tree))
    out = tree["out"]
    # the backend was asked once for every clip in the labels, never for the stray clip
    assert sorted(backend.asked) == sorted(n for rows in LABELS.values() for n in rows if n in ANSWERS)
    jobs = {j.clip.name: j for j in backend.jobs}
    assert jobs["take_01"].clip.subtitle == "I am so glad" and jobs["take_02"].clip.subtitle == ""
    assert jobs["take_01"].prompt.id == "emotion/v1" and jobs["take_01"].task == "description"
    # the original layout: generated text, -openset, -openset-sentiment
    text = read_npz(out / "mer2023" / "checkpoint_000000.npz")
    assert list(text["filenames"]) == ["take_01", "take_02", "take_03", "take_04", "take_05"]
    assert list(text["fileitems"]) == [ANSWERS[n] for n in text["filenames"]]
    openset = read_npz(out / "mer2023" / "checkpoint_000000-openset.npz")
    assert dict(zip(openset["filenames"], openset["fileitems"], strict=True)) == OPENSET
    sentiment = read_npz(out / "sims" / "checkpoint_000000-openset-sentiment.npz")
    assert list(sentiment["fileitems"]) == ["positive", "negative", "positive"]
    # the suite's cells equal `bench score` run independently on those files against hand-written labels
    suite = json.loads((out / "suite.json").read_text())
    row = {c["dataset"]: c for c in suite["row"]}
    hand = _write_csv(tree["root"] / "hand" / "mer.csv", {n: LABELS["mer2023"][n] for n in OPENSET})
    mer = _bench_score(capsys, "--dataset", "mer2023", "--predictions",
                       str(out / "mer2023" / "checkpoint_000000-openset.npz"), "--labels", str(hand))
    assert row["mer2023"]["value"] == mer["best"]["metrics"]["hit"] and 0 < row["mer2023"]["value"] < 1
    assert row["mer2023"]["reason"] == "partial ground truth: 5 of 411 test samples"
    sims = _bench_score(capsys, "--dataset", "sims", "--predictions", str(out / "sims"), "--labels",
                        str(tree["labels"] / "sims"))
    assert row["sims"]["value"] == sims["best"]["metrics"]["waf"]
    # by hand: positive, negative, positive against +, -, -: 2 of 3 right
    assert sims["best"]["metrics"]["acc"] == pytest.approx(2 / 3)
    studio = _bench_score(capsys, "--dataset-spec", str(tree["spec"]), "--predictions", str(out / "studio"))
    assert suite["results"]["studio"]["best"]["metrics"] == studio["best"]["metrics"]
    assert row["meld"]["value"] is None and row["meld"]["reason"] == "no predictions"
    # counts, partial, provenance
    counts = result.provenance["datasets"]["mer2023"]["counts"]
    assert (counts["not_in_labels"], counts["without_clip"], counts["without_clip_names"]) == (1, 1, ["take_06"])
    assert suite["partial"] is True and result.provenance["partial"] is True
    assert result.provenance["datasets"]["mer2023"]["scored"] == 5 and not result.incomplete
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["backend"]["model"] == "answer-table" and provenance["seed"] == 7
    assert provenance["datasets"]["sims"]["prompt"] == "emotion/v1" and provenance["versions"]["affectgpt"]
    assert {"preprocess_busy", "generate_busy", "extract"} <= set(provenance["datasets"]["sims"]["timings"])
    assert not (out / "mer2023" / "generation.partial.jsonl").exists()


def test_missing_as_empty_scores_the_clipless_label_as_an_empty_answer(tree, capsys):
    run_benchmark(TableBackend(), _options(tree, datasets=("mer2023",), dataset_specs=(), missing_as_empty=True))
    suite = json.loads((tree["out"] / "suite.json").read_text())
    full = _bench_score(capsys, "--dataset", "mer2023", "--predictions",
                        str(tree["out"] / "mer2023" / "checkpoint_000000-openset.npz"), "--labels",
                        str(tree["labels"] / "mer2023"), "--allow-missing")
    assert suite["row"][0]["value"] == full["best"]["metrics"]["hit"]
    assert full["epochs"][0]["diagnostics"]["missing_predictions"] == 1


class Stop(Exception):
    pass


class StopAfter(Progress):
    def __init__(self, k: int) -> None:
        self.k = k

    def advance(self, stage: str, n: int = 1) -> None:
        if stage == "generate":
            self.k -= n
            if self.k == 0:
                raise Stop


def test_an_interrupted_run_resumes_asking_only_for_the_missing_clips(tree, tmp_path):
    uninterrupted = tmp_path / "whole"
    run_benchmark(TableBackend(), _options(tree, output=uninterrupted))
    first = TableBackend()
    with pytest.raises(Stop):
        run_benchmark(first, _options(tree), StopAfter(3))
    assert len(first.asked) == 3  # batch_size 2: the third answer was logged, then the run stopped
    partial = tree["out"] / "mer2023" / "generation.partial.jsonl"
    assert len(partial.read_text().splitlines()) == 3
    with open(partial, "a", encoding="utf-8") as log:  # a kill cut the next line short
        log.write('{"name": "take_04", "text": "She is')
    again = TableBackend()
    run_benchmark(again, _options(tree))
    assert sorted(again.asked) == sorted(set(_asked_in_full()) - set(first.asked))
    for dataset in ("mer2023", "sims", "studio"):
        for stem in ("checkpoint_000000", "checkpoint_000000-openset"):
            a, b = (read_npz(root / dataset / f"{stem}.npz") for root in (tree["out"], uninterrupted))
            assert list(a["filenames"]) == list(b["filenames"]) and list(a["fileitems"]) == list(b["fileitems"])
    whole, resumed = (json.loads((root / "suite.json").read_text()) for root in (uninterrupted, tree["out"]))
    assert whole["row"] == resumed["row"] and whole["results"]["studio"]["best"]["metrics"] == \
        resumed["results"]["studio"]["best"]["metrics"]
    third = TableBackend()
    run_benchmark(third, _options(tree))
    assert third.asked == []


def _asked_in_full() -> list[str]:
    return [n for rows in LABELS.values() for n in rows if n in ANSWERS]


def test_limit_takes_the_first_names_and_marks_the_result_partial(tree):
    backend = TableBackend()
    result = run_benchmark(backend, _options(tree, limit=2))
    assert sorted(backend.asked) == ["take_01", "take_02", "take_11", "take_12", "take_21", "take_22"]
    assert result.provenance["partial"] and result.provenance["limit"] == 2
    assert "--limit 2" in result.provenance["partial_reasons"]
    assert result.provenance["datasets"]["mer2023"]["counts"]["left_out_by_limit"] == 3
    suite = json.loads((tree["out"] / "suite.json").read_text())
    assert suite["partial"] is True and suite["results"]["mer2023"]["n_labels"] == 2


def test_an_unreadable_clip_and_a_backend_error_are_listed_failures_and_the_rest_is_scored(tree):
    (tree["clips"] / "sims" / "take_13.mp4").unlink()
    (tree["clips"] / "sims" / "take_13.mp4").write_bytes(b"not a video at all")
    backend = TableBackend(needs=("frames", "subtitle"), fail=("take_12",))
    result = run_benchmark(backend, _options(tree, datasets=("sims",), dataset_specs=()))
    failures = json.loads((tree["out"] / "sims" / "failures.json").read_text())["failures"]
    assert [(f["name"], f["stage"]) for f in failures] == [("take_12", "generation"), ("take_13", "preprocess")]
    assert failures[0]["reason"] == "server said no" and failures[1]["file"].endswith("take_13.mp4")
    assert "not a readable media file" in failures[1]["reason"]
    assert result.incomplete and result.datasets[0].scored == 1
    assert backend.jobs[0].clip.frames is not None and backend.jobs[0].clip.frames.dtype == np.uint8
    assert json.loads((tree["out"] / "suite.json").read_text())["results"]["sims"]["n_labels"] == 1
    fixed = TableBackend(needs=("frames", "subtitle"))  # the rerun retries only the failed clips
    run_benchmark(fixed, _options(tree, datasets=("sims",), dataset_specs=()))
    assert fixed.asked == ["take_12"]


def test_bad_clip_folders_give_clear_errors(tree):
    with pytest.raises(InputError, match="folder not found"):
        run_benchmark(TableBackend(), _options(tree, clips_root=tree["root"] / "nowhere"))
    with pytest.raises(InputError, match="no clip folder for meld"):
        run_benchmark(TableBackend(), _options(tree, datasets=("meld",), dataset_specs=()))
    with pytest.raises(InputError, match="is in its labels"):
        stray = tree["clips"] / "sims"
        for clip in stray.iterdir():
            clip.rename(stray / f"other_{clip.name}")
        run_benchmark(TableBackend(), _options(tree, datasets=("sims",), dataset_specs=()))
    (tree["clips"] / "mer2023" / "take_01.mkv").symlink_to(tree["clips"] / "mer2023" / "take_01.mp4")
    with pytest.raises(InputError, match="two clips share the name 'take_01'"):
        run_benchmark(TableBackend(), _options(tree, datasets=("mer2023",), dataset_specs=()))
    assert not (tree["out"] / "suite.json").exists()
