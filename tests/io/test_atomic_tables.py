"""atomic_write leaves nothing behind on failure; the name -> value table readers and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from affectgpt.errors import InputError
from affectgpt.io.atomic import atomic_write, write_text
from affectgpt.io.tables import read_table


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "out" / "a.txt"
    write_text(target, "first")
    write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    import os

    target = tmp_path / "a.txt"
    write_text(target, "x")
    mask = os.umask(0o022)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_atomic_write_failure_keeps_old_content_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_csv_with_preferred_and_single_columns(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text('name,openset,extra\ns1,"[happy, sad]",x\ns2,[],y\n')
    table = read_table(path, ("openset",))
    assert table.names == ("s1", "s2") and table.values == ("[happy, sad]", "[]")
    single = tmp_path / "s.csv"
    single.write_text("name,whatever\na,1\n")
    assert read_table(single, ("label",)).as_dict() == {"a": "1"}


def test_jsonl_lists_become_bracketed_strings(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"name": "a", "openset": ["happy", "calm"]}) + "\n\n"
                    + json.dumps({"name": "b", "openset": "[sad]"}) + "\n")
    assert read_table(path, ("openset",)).as_dict() == {"a": "[happy, calm]", "b": "[sad]"}


def test_original_openset_npz(tmp_path):
    path = tmp_path / "checkpoint_000001_loss_0.5-openset.npz"
    np.savez(path, filenames=np.array(["a", "b"]), fileitems=np.array(["[happy]", "[]"]))
    assert read_table(path).as_dict() == {"a": "[happy]", "b": "[]"}


def test_name2reason_npz(tmp_path):
    path = tmp_path / "checkpoint_000001_loss_0.5.npz"
    np.savez(path, name2reason={"a": "He smiles.", "b": "She frowns."})
    assert read_table(path).as_dict() == {"a": "He smiles.", "b": "She frowns."}


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.csv", "", "holds no rows"),
    ("header_only.csv", "name,label\n", "holds no rows"),
    ("noname.csv", "id,label\na,b\n", "no 'name' column"),
    ("ambiguous.csv", "name,x,y\na,1,2\n", "cannot tell the value column"),
    ("dup.csv", "name,label\na,happy\na,sad\n", "appears twice"),
    ("blank.csv", "name,label\n,happy\n", "empty name on line 2"),
    ("bad.jsonl", '{"name": "a", "label": "x"}\n{oops\n', "line 2 is not valid JSON"),
    ("noname.jsonl", '{"id": "a"}\n', "no 'name' key"),
    ("data.txt", "a\n", "unsupported file type"),
])
def test_bad_tables(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        read_table(path, ("label",))
    assert str(path) in str(info.value)


def test_unknown_npz_layout_names_the_keys(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, something=np.arange(3))
    with pytest.raises(InputError, match=r"unknown .npz layout \(keys: \['something'\]\)"):
        read_table(path)


def test_atomic_write_skips_a_leftover_temp_name(tmp_path, monkeypatch):
    import itertools
    import os

    from affectgpt.io import atomic

    monkeypatch.setattr(atomic, "_counter", itertools.count())
    leftover = tmp_path / f".a.txt.{os.getpid()}.0.tmp"
    leftover.write_text("from a killed run")
    write_text(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "new"
    assert leftover.read_text() == "from a killed run"
