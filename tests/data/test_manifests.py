"""Sample readers on files written here: manifests (CSV, JSONL), a fake MER-Caption+ layout, bench label npz
files; their errors; and check_media's accounting of missing media."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from affectgpt.data.manifests import check_media, parse_labels, read_bench_train, read_manifest, read_mercaptionplus
from affectgpt.data.sample import Sample
from affectgpt.errors import InputError


def _csv(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# -- manifests ---------------------------------------------------------------------------------------------------
def test_csv_manifest_resolves_paths_and_parses_labels(tmp_path: Path) -> None:
    absolute = _touch(tmp_path / "elsewhere" / "c.mp4")
    manifest = _csv(tmp_path / "set" / "train.csv", [
        ["Name", "video", "audio", "subtitle", "description", "labels"],
        ["a", "clips/a.mp4", "", "hello, there", "She smiles.", "happy, excited"],
        ["b", "clips/b.mp4", "wav/b.wav", "", "", "['sad', 'tired']"],
        ["c", str(absolute), "", "", "Calm.", ""],
        ["d", "clips/d.mp4", "", "", "", "[]"],
    ])
    samples = read_manifest(manifest)
    assert [s.name for s in samples] == ["a", "b", "c", "d"]
    a, b, c, d = samples
    assert a.video == tmp_path / "set" / "clips" / "a.mp4" and a.audio is None and a.faces is None
    assert a.subtitle == "hello, there" and a.description == "She smiles." and a.labels == ("happy", "excited")
    assert b.audio == tmp_path / "set" / "wav" / "b.wav" and b.description is None and b.labels == ("sad", "tired")
    assert c.video == absolute and c.labels is None and c.tasks == ("description",)
    assert d.labels == () and d.tasks == ("labels",)  # an explicit empty list: the "neutral" target


def test_jsonl_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    rows = [{"name": "x", "faces": "f/x.npy", "audio": "a/x.wav", "labels": ["angry", " annoyed "]},
            {"name": "y", "video": "v/y.mp4", "description": "Loud voice.", "subtitle": "no!"}]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    x, y = read_manifest(manifest)
    assert x.faces == tmp_path / "f" / "x.npy" and x.video is None and x.labels == ("angry", "annoyed")
    assert y.subtitle == "no!" and y.description == "Loud voice." and y.labels is None


@pytest.mark.parametrize(("rows", "message"), [
    ([["name", "video", "labels"]], "no samples"),
    ([], "empty"),
    ([["video", "labels"], ["a.mp4", "happy"]], "no name column"),
    ([["name", "labels"], ["a", "happy"]], "no video or faces column"),
    ([["name", "video", "subtitle"], ["a", "a.mp4", "hi"]], "no description or labels column"),
    ([["name", "video", "labels"], ["a", "a.mp4", "happy"], ["a", "b.mp4", "sad"]], "duplicate sample names (a)"),
    ([["name", "video", "labels", "description"], ["a", "a.mp4", "", ""]], "neither a description nor labels"),
    ([["name", "video", "labels"], ["", "a.mp4", "happy"]], "empty name"),
])
def test_manifest_errors(tmp_path: Path, rows: list[list[str]], message: str) -> None:
    manifest = _csv(tmp_path / "m.csv", rows)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_manifest(manifest)


def test_manifest_missing_file_and_type(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="manifest not found"):
        read_manifest(tmp_path / "none.csv")
    with pytest.raises(InputError, match="unknown manifest type"):
        read_manifest(_touch(tmp_path / "m.txt"))
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="no samples"):
        read_manifest(tmp_path / "empty.jsonl")


def test_parse_labels_forms() -> None:
    assert parse_labels("happy, sad") == ("happy", "sad")
    assert parse_labels("[happy, sad]") == ("happy", "sad")
    assert parse_labels("['happy', \"sad\"]") == ("happy", "sad")
    assert parse_labels(["happy", ""]) == ("happy",)
    assert parse_labels("[]") == () and parse_labels([]) == ()
    assert parse_labels("") is None and parse_labels(None) is None
    # a missing value written out by pandas is no value, never the label "nan"
    assert parse_labels("nan") is None and parse_labels("None") is None and parse_labels(float("nan")) is None
    assert parse_labels("nanny") == ("nanny",)


def test_a_released_csv_with_broken_quoting_or_cell_counts_is_refused(tmp_path: Path) -> None:
    (tmp_path / "track3_train_mercaptionplus.csv").write_text('name,reason\ns1,"He frowns.\ns2,She laughs.\n')
    with pytest.raises(InputError, match="unterminated quote"):
        read_mercaptionplus(tmp_path)
    (tmp_path / "track3_train_mercaptionplus.csv").write_text("name,reason\ns1,He frowns.,extra\n")
    with pytest.raises(InputError, match="line 2"):
        read_mercaptionplus(tmp_path)


# -- MER-Caption+ ------------------------------------------------------------------------------------------------
def _mercaption(root: Path) -> Path:
    _csv(root / "track3_train_mercaptionplus.csv", [["name", "reason"], ["s1", "He frowns."], ["s2", "She laughs."]])
    _csv(root / "track2_train_mercaptionplus.csv", [["name", "openset"], ["s2", "['happy', 'joyful']"],
                                                    ["s3", "['sad']"], ["s4", "[]"]])
    _csv(root / "subtitle_chieng.csv", [["name", "chinese", "english"], ["s1", "你好", "hello"],
                                        ["s2", "哈哈", "haha"]])
    _touch(root / "video" / "s1.mp4")
    _touch(root / "video" / "s2.avi")
    _touch(root / "audio" / "s2.wav")
    _touch(root / "openface_face" / "s3" / "s3.npy")
    _touch(root / "audio" / "s3.wav")
    return root


def test_read_mercaptionplus_merges_by_name(tmp_path: Path) -> None:
    root = _mercaption(tmp_path / "mer2025")
    s1, s2, s3, s4 = read_mercaptionplus(root)
    assert (s1.name, s1.description, s1.labels, s1.subtitle) == ("s1", "He frowns.", None, "hello")
    assert s1.video == root / "video" / "s1.mp4" and s1.audio is None
    assert s2.description == "She laughs." and s2.labels == ("happy", "joyful")
    assert s2.tasks == ("description", "labels")
    assert s2.video == root / "video" / "s2.avi" and s2.audio == root / "audio" / "s2.wav"
    assert s3.video is None and s3.faces == root / "openface_face" / "s3" / "s3.npy" and s3.subtitle == ""
    assert s4.labels == () and s4.video == root / "video" / "s4.mp4"  # expected path: check_media reports it
    usable, problems = check_media([s1, s2, s3, s4])
    assert [s.name for s in usable] == ["s1", "s2", "s3"]
    assert problems == [("s4", f"video file not found: {root / 'video' / 's4.mp4'}")]


def test_read_mercaptionplus_options_and_errors(tmp_path: Path) -> None:
    root = _mercaption(tmp_path / "mer2025")
    only = read_mercaptionplus(root, language="chinese", tasks=("description",))
    assert [(s.name, s.subtitle, s.labels) for s in only] == [("s1", "你好", None), ("s2", "哈哈", None)]
    with pytest.raises(InputError, match="no target file"):
        read_mercaptionplus(tmp_path / "mer2025" / "video")
    with pytest.raises(InputError, match="not allowed"):
        read_mercaptionplus(root, tasks=("captions",))
    _csv(root / "extra" / "track2_train_mercaption.csv", [["name", "openset"]])
    with pytest.raises(InputError, match="2 files match"):
        read_mercaptionplus(root)


# -- bench training splits ----------------------------------------------------------------------------------------
def test_read_bench_train_basic_sets(tmp_path: Path) -> None:
    labels = tmp_path / "label-6way.npz"
    np.savez(labels, train_corpus={"t1": {"emo": "happy", "val": 1.0}, "t2": {"emo": "worried", "val": -1.0}},
             test1_corpus={"e1": {"emo": "sad", "val": -2.0}})
    _touch(tmp_path / "media" / "t1.mp4")
    _touch(tmp_path / "media" / "video" / "t2.mkv")
    t1, t2 = read_bench_train("mer2023", labels, tmp_path / "media")
    assert (t1.name, t1.labels, t1.description, t1.video) == ("t1", ("happy",), None, tmp_path / "media" / "t1.mp4")
    assert t2.labels == ("worried",) and t2.video == tmp_path / "media" / "video" / "t2.mkv"
    (e1,) = read_bench_train("mer2023", tmp_path, tmp_path / "media", split="test1_corpus")
    assert e1.labels == ("sad",) and check_media([e1])[1][0][0] == "e1"


def test_read_bench_train_iemocap_drops_session5(tmp_path: Path) -> None:
    labels = tmp_path / "label_4way.npz"
    np.savez(labels, whole_corpus={"Ses01F_a": {"emo": 0, "val": 0}, "Ses05M_b": {"emo": 1, "val": 0},
                                   "Ses03F_c": {"emo": 3, "val": 0}})
    samples = read_bench_train("iemocapfour", labels, tmp_path)
    assert [(s.name, s.labels) for s in samples] == [("Ses01F_a", ("happy",)), ("Ses03F_c", ("anger",))]


@pytest.mark.parametrize(("dataset", "message"), [("cmumosi", "sentiment score"), ("sims", "sentiment score"),
                                                  ("ovmerdplus", "no training split"), ("mer2099", "mer20")])
def test_read_bench_train_refuses_sets_without_targets(tmp_path: Path, dataset: str, message: str) -> None:
    labels = tmp_path / "label.npz"
    np.savez(labels, train_corpus={"v": {"emo": 0, "val": 1.5}})
    with pytest.raises(InputError, match=message):
        read_bench_train(dataset, labels, tmp_path)


# -- media accounting ---------------------------------------------------------------------------------------------
def test_check_media_counts_problems_and_never_substitutes(tmp_path: Path) -> None:
    video = _touch(tmp_path / "ok.mp4")
    faces, audio = _touch(tmp_path / "f.npy"), _touch(tmp_path / "a.wav")
    _touch(tmp_path / "cache" / "cached.safetensors")
    samples = [
        Sample("ok", video=video, labels=()),
        Sample("gone", video=tmp_path / "gone.mp4", labels=()),
        Sample("empty", video=_touch(tmp_path / "empty.mp4", b""), labels=()),
        Sample("faces", faces=faces, audio=audio, labels=()),
        Sample("faces-only", faces=faces, labels=()),
        Sample("no-audio-file", video=video, audio=tmp_path / "missing.wav", labels=()),
        Sample("cached", video=tmp_path / "not-there.mp4", labels=()),
    ]
    usable, problems = check_media(samples, media_cache=tmp_path / "cache")
    assert [s.name for s in usable] == ["ok", "faces", "cached"]
    reasons = dict(problems)
    assert list(reasons) == ["gone", "empty", "faces-only", "no-audio-file"]
    assert "video file not found" in reasons["gone"] and "empty" in reasons["empty"]
    assert "faces .npy and an audio file" in reasons["faces-only"]
    assert "audio file not found" in reasons["no-audio-file"]
    # frame input cannot use the face track
    assert check_media([samples[3]], visual_input="frame")[1][0][0] == "faces"


def test_check_media_deep_finds_corrupt_files(tmp_path: Path) -> None:
    bad = Sample("bad", video=_touch(tmp_path / "bad.mp4", b"not a video at all"), labels=())
    usable, problems = check_media([bad], deep=True)
    assert usable == [] and problems[0][0] == "bad"
