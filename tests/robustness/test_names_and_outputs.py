"""Hostile names and broken output paths: the one safe-name rule (io/names.py), the output-path checks
(io/outputs.py) and the removal of temp files left by killed writers (io/atomic.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from affectgpt.errors import InputError
from affectgpt.io.atomic import write_text
from affectgpt.io.names import MAX_NAME_BYTES, check_name
from affectgpt.io.outputs import output_file, output_folder

HOSTILE = ["../../X", "/abs/X", "a/b", "a\\b", "..", ".", ".hidden", "", "a\x00b", "a\nb", "x" * 201]


# -- the name rule -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sample_00000000", "a.b-c_d", "clip 1", "中文名", "x" * MAX_NAME_BYTES])
def test_plain_names_pass(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_with_the_file_and_field(name):
    with pytest.raises(InputError) as caught:
        check_name(name, path="m.csv", field="line 3 name")
    message = caught.value.message()
    assert message.startswith("m.csv: line 3 name: name ") and "Fix: use a plain file name" in message
    assert "\n" not in message  # one line, even for a name holding a newline


def test_long_names_are_counted_in_bytes():
    with pytest.raises(InputError, match="longer than 200 bytes"):
        check_name("情" * 70)  # 210 bytes in UTF-8


def test_non_text_names_are_refused():
    with pytest.raises(InputError, match="not text"):
        check_name(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["../../X", "/abs/X", "..", ".hidden", ""])
def test_every_name_to_path_function_refuses_traversal(tmp_path, name):
    from affectgpt.media.batch import faces_npy_file
    from affectgpt.media.cache import cache_file

    for function in (cache_file, faces_npy_file):
        with pytest.raises(InputError, match="not a plain file name"):
            function(tmp_path, name)


def test_feature_file_refuses_traversal(tmp_path):
    pytest.importorskip("torch")
    from affectgpt.data.features import feature_file

    assert feature_file(tmp_path, "a") == tmp_path / "a.safetensors"
    for name in ("../../X", "/abs/X", "..", ".hidden", ""):
        with pytest.raises(InputError, match="not a plain file name"):
            feature_file(tmp_path, name)


def test_prediction_file_is_named_after_the_checkpoint_folder(tmp_path):
    from affectgpt.infer.predict import prediction_file

    ckpt = tmp_path / "runs" / "checkpoint_000060"
    ckpt.mkdir(parents=True)
    assert prediction_file(tmp_path / "out", ckpt) == tmp_path / "out" / "checkpoint_000060.npz"
    assert prediction_file(tmp_path / "out", ckpt / ".") == tmp_path / "out" / "checkpoint_000060.npz"
    assert prediction_file(tmp_path / "out", ckpt / "sub" / "..") == tmp_path / "out" / "checkpoint_000060.npz"
    for bad in ("/", tmp_path / ".hidden"):
        with pytest.raises(InputError, match=r"checkpoint folder name: name .* is not a plain file name"):
            prediction_file(tmp_path / "out", bad)


@pytest.mark.parametrize("name", ["../../X", "/abs/X", "a/b", "..", ".hidden", ""])
def test_features_extract_refuses_a_hostile_manifest_name(tmp_path, capsys, name):
    pytest.importorskip("torch")
    from affectgpt.cli import main

    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    manifest = work / "M.csv"
    rows = ["name,video,description", "ok,ok.mp4,Smiles.", f"{name},x.mp4,Frowns."]
    manifest.write_text("\n".join(rows) + "\n")
    before = sorted(p for p in tmp_path.rglob("*"))
    out = work / "OUT"
    code = main(["features", "extract", "--manifest", str(manifest), "--output", str(out), "--visual-encoder",
                 str(tmp_path / "no-clip"), "--audio-encoder", str(tmp_path / "no-hubert"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"error: {manifest}: line 3 name") or lines[0].startswith(
        f"error: {manifest}: line 3: empty name"), lines[0]
    after = sorted(p for p in tmp_path.rglob("*") if p != out and out not in p.parents)
    assert after == before  # nothing written in OUT's parents (nor anywhere else under the test folder)
    assert not Path("/abs/X.safetensors").exists()


def test_mercaptionplus_refuses_a_hostile_name(tmp_path):
    from affectgpt.data.manifests import read_mercaptionplus

    (tmp_path / "track3_train_x.csv").write_text("name,reason\nok,Smiles.\n../evil,Frowns.\n")
    with pytest.raises(InputError, match=r"track3_train_x\.csv: line 3 name: name '\.\./evil'"):
        read_mercaptionplus(tmp_path)
    (tmp_path / "track3_train_x.csv").write_text("name,reason\nok,Smiles.\n")
    (tmp_path / "track2_train_x.csv").write_text("name,openset\n.hidden,[happy]\n")
    with pytest.raises(InputError, match=r"track2_train_x\.csv: line 2 name"):
        read_mercaptionplus(tmp_path)


def test_bench_train_split_refuses_a_hostile_name(tmp_path):
    import numpy as np

    from affectgpt.data.manifests import read_bench_train

    corpus = {"ok": {"emo": "happy"}, "../../evil": {"emo": "sad"}}
    np.savez(tmp_path / "label-6way.npz", train_corpus=corpus, test1_corpus={"t": {"emo": "happy"}})
    with pytest.raises(InputError, match=r"train_corpus name: name '\.\./\.\./evil'"):
        read_bench_train("mer2023", tmp_path, tmp_path / "media")


# -- output paths ------------------------------------------------------------------------------------------------
def test_output_file_rules(tmp_path):
    assert output_file(tmp_path / "new" / "r.json") == tmp_path / "new" / "r.json"
    assert not (tmp_path / "new").exists()  # created when written, not before
    with pytest.raises(InputError, match="is a folder, but a file is expected") as caught:
        output_file(tmp_path)
    assert caught.value.field == "--output" and "name a file" in caught.value.fix
    (tmp_path / "plain").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        output_file(tmp_path / "plain" / "r.json", "--report")


def test_output_folder_rules(tmp_path):
    assert output_folder(tmp_path / "a" / "b").is_dir()
    (tmp_path / "plain").write_text("x")
    with pytest.raises(InputError, match="is a file, but a folder is expected") as caught:
        output_folder(tmp_path / "plain", "--faces-npy")
    assert caught.value.field == "--faces-npy"
    with pytest.raises(InputError, match="is a file, not a folder"):
        output_folder(tmp_path / "plain" / "sub")


def test_outputs_in_a_place_that_is_not_writable(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    with pytest.raises(InputError, match=f"the folder {locked} is not writable"):
        output_file(locked / "r.json")
    with pytest.raises(InputError, match=f"the folder {locked} is not writable"):
        output_folder(locked / "new" / "deeper")
    with pytest.raises(InputError, match="the folder is not writable"):
        output_folder(locked)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_outputs_in_a_read_only_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(InputError, match="not writable"):
            output_file(locked / "r.json")
    finally:
        locked.chmod(0o755)


# -- temp files of killed writers ----------------------------------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temp_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "big.safetensors"
    dead = _dead_pid()
    stale = [tmp_path / f".big.safetensors.{dead}.0.tmp", tmp_path / f".big.safetensors.{dead}.tmp"]
    live = tmp_path / f".big.safetensors.{os.getpid()}.7.tmp"
    parent = tmp_path / f".big.safetensors.{os.getppid()}.0.tmp"
    other = tmp_path / f".other.safetensors.{dead}.0.tmp"  # another target's: removed when that one is written
    for path in (*stale, live, parent, other):
        path.write_bytes(b"half")
    write_text(target, "whole")
    assert target.read_text() == "whole"
    assert not any(p.exists() for p in stale)
    assert live.exists() and parent.exists() and other.exists()
    write_text(tmp_path / "other.safetensors", "x")
    assert not other.exists()


def test_a_killed_writer_leaves_a_temp_that_the_next_write_removes(tmp_path):
    target = tmp_path / "out.json"
    script = ("import sys, os\nfrom affectgpt.io.atomic import atomic_write\n"
              "with atomic_write(sys.argv[1]) as h:\n    h.write('half'); h.flush(); os._exit(9)\n")
    subprocess.run([sys.executable, "-c", script, str(target)], check=False)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".out.json.") and left[0].endswith(".tmp")
    write_text(target, json.dumps({"ok": True}))
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
