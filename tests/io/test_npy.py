"""Our numpy-free .npz reader against numpy itself (the independent reference) on every dtype we read."""

from __future__ import annotations

import numpy as np
import pytest

from affectgpt.errors import InputError
from affectgpt.io.npy import read_npz

ARRAYS = {
    "unicode": np.array(["sample_00000001", "", "émotion ✓", "x" * 40]),
    "unicode_big_endian": np.array(["happy", "sad"]).astype(">U7"),
    "bytes": np.array([b"ab", b"c"]),
    "float64": np.array([0.5, -1.25, 3e10]),
    "float32_be": np.array([1.5, -2.0], dtype=">f4"),
    "float16": np.array([0.5, 2.0], dtype=np.float16),
    "int16": np.array([-3, 7], dtype=np.int16),
    "uint8": np.array([0, 255], dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "matrix": np.arange(6, dtype=np.int64).reshape(2, 3),
    "fortran": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
    "scalar": np.array(7.0),
}


def test_plain_arrays_match_numpy(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, **ARRAYS)
    got = read_npz(path)
    for key, array in ARRAYS.items():
        assert got[key] == array.tolist(), key


def test_compressed_archive_and_selected_keys(tmp_path):
    path = tmp_path / "c.npz"
    np.savez_compressed(path, a=np.array(["x", "y"]), b=np.array([1, 2]))
    assert read_npz(path, keys=["a"]) == {"a": ["x", "y"], "b": None}


def test_object_arrays_holding_dicts_and_numpy_values(tmp_path):
    corpus = {
        "n1": {"emo": "happy", "val": np.float32(-1.5)},
        "n2": {"emo": np.int64(3), "val": np.float64(0.25), "vec": np.array([1.0, 2.0])},
        "n3": {"emo": np.str_("sad"), "val": -10, "flags": np.array([True, False])},
    }
    path = tmp_path / "labels.npz"
    np.savez(path, test_corpus=corpus, names=np.array(["n1", "n2"], dtype=object))
    got = read_npz(path)
    expected = np.load(path, allow_pickle=True)  # trusted: we wrote it
    assert got["test_corpus"] == _plain(expected["test_corpus"].tolist())
    assert got["names"] == ["n1", "n2"]


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


@pytest.mark.reference
@pytest.mark.parametrize("relative", ["labels/mer2023/label-6way.npz", "labels/iemocapfour/label_4way.npz",
                                      "labels/cmumosi/label.npz", "labels/sims/label.npz",
                                      "affectgpt-outputs/mer2023/checkpoint_000030_loss_0.602.npz",
                                      "affectgpt-outputs/sims/checkpoint_000030_loss_0.602-openset-sentiment.npz"])
def test_original_release_files_match_numpy(reference_dir, relative):
    path = reference_dir / relative
    ours = read_npz(path)
    theirs = np.load(path, allow_pickle=True)  # trusted reference files, for comparison only
    assert set(ours) == set(theirs.files)
    for key in theirs.files:
        assert ours[key] == _plain(theirs[key].tolist()), key


@pytest.mark.parametrize(("payload", "message"), [
    (b"not a zip", "not a readable .npz"),
])
def test_broken_archive(tmp_path, payload, message):
    path = tmp_path / "broken.npz"
    path.write_bytes(payload)
    with pytest.raises(InputError, match=message):
        read_npz(path)


def test_truncated_member_and_bad_magic(tmp_path):
    import zipfile

    good = tmp_path / "g.npz"
    np.savez(good, a=np.arange(100))
    data = zipfile.ZipFile(good).read("a.npy")
    for name, member in (("trunc.npz", data[:-40]), ("magic.npz", b"NOTNUMPY" + data[8:])):
        with zipfile.ZipFile(tmp_path / name, "w") as archive:
            archive.writestr("a.npy", member)
        with pytest.raises(InputError) as info:
            read_npz(tmp_path / name)
        assert name in str(info.value)


def test_structured_dtype_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "s.npz"
    np.savez(path, rec=np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]))
    with pytest.raises(InputError, match="unsupported array dtype"):
        read_npz(path)


def test_written_npz_is_what_numpy_reads(tmp_path):
    from affectgpt.io.npy import write_npz

    values = {"filenames": ["a", "bb", "é✓", "𝄞 clef"], "fileitems": ["[happy]", "", "x" * 70, "[]"]}
    path = tmp_path / "out.npz"
    write_npz(path, values)
    loaded = np.load(path)  # no pickle: plain unicode arrays
    assert {k: loaded[k].tolist() for k in loaded.files} == values
    assert loaded["fileitems"].dtype == np.dtype("<U70")
    assert read_npz(path) == values
    write_npz(path, {"filenames": []})
    assert np.load(path)["filenames"].shape == (0,)


def test_written_npz_is_the_same_bytes_whenever_it_is_written_and_numpy_reads_it(tmp_path, monkeypatch):
    import time
    import zipfile

    from affectgpt.io.npy import write_npz

    arrays = {"filenames": ["a", "b"], "fileitems": ["happy, sad", "平静"]}
    write_npz(tmp_path / "one.npz", arrays)
    later = time.time() + 3 * 3600  # a zip entry's time field would differ hours later
    monkeypatch.setattr(time, "time", lambda: later)
    monkeypatch.setattr(time, "localtime", lambda *a: time.gmtime(later))
    write_npz(tmp_path / "two.npz", arrays)
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.npz") as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    loaded = np.load(tmp_path / "one.npz")
    assert list(loaded["fileitems"]) == arrays["fileitems"]
