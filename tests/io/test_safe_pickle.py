"""A malicious pickle inside an .npz runs no code: it is refused before anything is executed."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from affectgpt.cli import main
from affectgpt.errors import InputError
from affectgpt.io.npy import read_npz
from affectgpt.io.safe_pickle import loads


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def _npz_with_object_pickle(path: Path, obj) -> Path:
    """An .npz whose member is an object array: the npy header, then a pickle of `obj`."""
    header = np.lib.format.header_data_from_array_1_0(np.empty((), dtype=object))
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    buffer.write(pickle.dumps(obj, protocol=3))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("test_corpus.npy", buffer.getvalue())
    return path


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = _npz_with_object_pickle(tmp_path / "label.npz", {"x": _Exploit(marker)})
    with pytest.raises(InputError, match=r"refusing to unpickle posix\.system"):
        read_npz(path)
    assert not marker.exists()


def test_malicious_label_file_through_the_cli_exits_2(tmp_path, capsys):
    marker = tmp_path / "pwned"
    labels = _npz_with_object_pickle(tmp_path / "label.npz", {"x": _Exploit(marker)})
    preds = tmp_path / "p.csv"
    preds.write_text("name,sentiment\nx,positive\n")
    code = main(["bench", "score", "--dataset", "cmumosi", "--predictions", str(preds), "--labels", str(labels)])
    assert code == 2
    err = capsys.readouterr().err
    assert "refusing to unpickle" in err and str(labels) in err
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    pickle.dumps(print),  # builtins.print
    pickle.dumps(Path("/tmp")),  # pathlib
    b"cos\nsystem\n(S'echo hi'\ntR.",  # protocol 0 GLOBAL os.system
    b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x8c\x04eval\x93.",
])
def test_any_other_global_is_refused(payload):
    with pytest.raises(InputError, match="refusing to unpickle"):
        loads(payload, source="x")


def test_plain_containers_are_allowed():
    value = {"a": [1, 2.5, "x", None, True], "b": (b"raw", {3}), "c": frozenset({1})}
    assert loads(pickle.dumps(value, protocol=2)) == value
    assert loads(pickle.dumps(value, protocol=5)) == value


def test_truncated_pickle_is_an_input_error():
    with pytest.raises(InputError, match="cannot read the pickled data"):
        loads(pickle.dumps({"a": list(range(100))})[:-10], source="f.npz")


def test_shared_references_that_expand_to_billions_are_refused_quickly(tmp_path, monkeypatch):
    """Twenty levels of a list holding one inner list ten times: a few hundred bytes, 10**20 values expanded."""
    import time

    item = ["x"]
    for _ in range(20):
        item = [item] * 10
    path = _npz_with_object_pickle(tmp_path / "bomb.npz", {"a": {"emo": item}})
    assert path.stat().st_size < 2000
    start = time.perf_counter()
    with pytest.raises(InputError, match="expands to more than") as caught:
        read_npz(path)
    assert time.perf_counter() - start < 2 and str(path) in str(caught.value)
    # shared references under the limit stay shared and give the same values
    small = [["happy"] * 3] * 4
    path = _npz_with_object_pickle(tmp_path / "ok.npz", {"a": small})
    assert read_npz(path)["test_corpus"] == {"a": small}
    monkeypatch.setenv("AFFECTGPT_MAX_PICKLE_VALUES", "10")
    with pytest.raises(InputError, match="more than 10 values"):
        read_npz(path)
    for bad in ("0", "-5", "many"):
        monkeypatch.setenv("AFFECTGPT_MAX_PICKLE_VALUES", bad)
        with pytest.raises(InputError, match="not a positive whole number"):
            read_npz(path)


def test_pickled_data_nested_too_deep_is_refused(tmp_path):
    deep: list = []
    for _ in range(150):  # deeper than MAX_DEPTH (100)
        deep = [deep]
    path = _npz_with_object_pickle(tmp_path / "deep.npz", deep)
    with pytest.raises(InputError, match="deeper than"):
        read_npz(path)


class _ForgedArray:
    """Pickles as numpy's array reconstruction with a shape of 2e9 items and 4 bytes of data."""

    def __reduce__(self):
        reconstruct = np.array(0).__reduce__()[0]  # numpy's own _reconstruct, as real pickled arrays name it
        return (reconstruct, (np.ndarray, (0,), b"b"), (1, (1, 2_000_000_000), np.dtype("<U1"), False, b"a\0\0\0"))


def test_a_pickled_array_claiming_more_items_than_it_holds_is_refused(tmp_path):
    path = _npz_with_object_pickle(tmp_path / "forged.npz", {"x": _ForgedArray()})
    assert path.stat().st_size < 2000
    with pytest.raises(InputError, match="items for"):
        read_npz(path)
