"""Hostile and broken inputs through the CLI: zip bombs, undecodable text, silently wrong tables (issue 12).

Every hostile file is built here, small: a zip bomb is a tiny archive whose headers declare gigabytes, so the
reader must refuse it from the declared sizes, before inflating anything (each run is timed).
"""

from __future__ import annotations

import random
import struct
import time
import zipfile
from pathlib import Path

import pytest

from affectgpt.cli import main
from affectgpt.errors import InputError
from affectgpt.io.npy import npy_unicode, read_npz, write_npz
from affectgpt.io.tables import read_csv_grid, read_table
from conftest import write_csv

GIB = 1024 ** 3
LABELS = [("s1", "happy"), ("s2", "sad")]


# --- building hostile archives ------------------------------------------------------------------------------------

def zip_with(path: Path, members: dict[str, bytes], *, declare: dict[str, int] | None = None,
             compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip of `members`; `declare` rewrites a member's uncompressed size in both of its headers (a bomb that
    says so, or a header that lies)."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    for name, size in (declare or {}).items():
        _patch_size(path, name, size)
    return path


def _patch_size(path: Path, name: str, size: int) -> None:
    data = bytearray(path.read_bytes())
    encoded = name.encode()
    start = 0
    while (local := data.find(b"PK\x03\x04", start)) >= 0:  # local header: size at +22, name at +30
        length = struct.unpack_from("<H", data, local + 26)[0]
        if data[local + 30:local + 30 + length] == encoded:
            struct.pack_into("<I", data, local + 22, size)
        start = local + 4
    start = 0
    while (central := data.find(b"PK\x01\x02", start)) >= 0:  # central directory: size at +24, name at +46
        length = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46:central + 46 + length] == encoded:
            struct.pack_into("<I", data, central + 24, size)
        start = central + 4
    path.write_bytes(bytes(data))


def openset_bomb(path: Path, declared: int = 3 * GIB) -> Path:
    """An -openset.npz whose `fileitems.npy` declares `declared` bytes (the file itself is tiny)."""
    return zip_with(path, {"filenames.npy": npy_unicode(["s1", "s2"]), "fileitems.npy": npy_unicode(["a", "b"])},
                    declare={"fileitems.npy": declared})


def run_cli(args: list[str], capsys) -> tuple[int, str, float]:
    start = time.perf_counter()
    code = main(args)
    elapsed = time.perf_counter() - start
    return code, capsys.readouterr().err.strip(), elapsed


def score_args(preds: Path, labels: Path, dataset: str = "mer2023") -> list[str]:
    return ["bench", "score", "--protocol", "builtin", "--dataset", dataset, "--predictions", str(preds),
            "--labels", str(labels)]


def assert_one_error_line(err: str, *parts: str) -> None:
    assert err.startswith("error: ") and "\n" not in err, err
    for part in parts:
        assert part in err, (part, err)


# --- 1. zip bombs ------------------------------------------------------------------------------------------------

def test_bench_score_refuses_a_zip_bomb_of_predictions_before_inflating(tmp_path, capsys):
    bomb = openset_bomb(tmp_path / "checkpoint_000001_loss_0.1-openset.npz")
    labels = write_csv(tmp_path / "labels.csv", "name,label", LABELS)
    code, err, elapsed = run_cli(score_args(bomb, labels), capsys)
    assert code == 2 and elapsed < 2
    assert_one_error_line(err, f"{bomb}: fileitems.npy: declares 3221225472 bytes", "AFFECTGPT_MAX_INFLATE_BYTES")


def test_bench_score_refuses_a_zip_bomb_of_labels(tmp_path, capsys):
    labels = zip_with(tmp_path / "label-6way.npz", {"test1_corpus.npy": b"\x93NUMPY" + b"\x00" * 100},
                      declare={"test1_corpus.npy": 3 * GIB})
    preds = write_csv(tmp_path / "p.csv", "name,openset", [("s1", "[happy]")])
    code, err, elapsed = run_cli(score_args(preds, labels), capsys)
    assert code == 2 and elapsed < 2
    assert_one_error_line(err, f"{labels}: test1_corpus.npy: ", "AFFECTGPT_MAX_INFLATE_BYTES")


def test_extract_labels_refuses_a_zip_bomb_and_writes_nothing(tmp_path, capsys):
    bomb = zip_with(tmp_path / "checkpoint_000001_loss_0.1.npz", {"name2reason.npy": b"\x93NUMPY" + b"\x00" * 64},
                    declare={"name2reason.npy": 3 * GIB})
    out = tmp_path / "out.npz"
    code, err, elapsed = run_cli(["extract", "labels", "--input", str(bomb), "--output", str(out),
                                  "--no-progress"], capsys)
    assert code == 2 and elapsed < 2
    assert_one_error_line(err, f"{bomb}: name2reason.npy: ", "AFFECTGPT_MAX_INFLATE_BYTES")
    assert not out.exists()


def test_the_total_of_an_archive_is_limited_too(tmp_path, monkeypatch):
    monkeypatch.setenv("AFFECTGPT_MAX_INFLATE_BYTES", str(1024 * 1024))
    # Each member alone is under the limit; together they are over it (the second member is named).
    path = zip_with(tmp_path / "two.npz", {"a.npy": b"\x00" * 600_000, "b.npy": b"\x00" * 600_000})
    with pytest.raises(InputError, match="in all") as info:
        read_npz(path)
    assert info.value.field == "b.npy" and info.value.path == str(path)


def test_the_limit_is_raised_with_the_environment_variable(tmp_path, monkeypatch):
    path = tmp_path / "big.npz"
    write_npz(path, {"filenames": ["x" * 1000] * 600})  # ~2.4 MB of UTF-32
    monkeypatch.setenv("AFFECTGPT_MAX_INFLATE_BYTES", str(1024 * 1024))
    with pytest.raises(InputError, match="AFFECTGPT_MAX_INFLATE_BYTES") as info:
        read_npz(path)
    assert info.value.field == "filenames.npy"
    monkeypatch.setenv("AFFECTGPT_MAX_INFLATE_BYTES", str(8 * 1024 * 1024))
    assert len(read_npz(path)["filenames"]) == 600


@pytest.mark.parametrize("value", ["lots", "-5", "0"])
def test_a_bad_limit_value_is_named(tmp_path, monkeypatch, value):
    monkeypatch.setenv("AFFECTGPT_MAX_INFLATE_BYTES", value)
    path = tmp_path / "x.npz"
    write_npz(path, {"filenames": ["a"]})
    with pytest.raises(InputError, match="positive whole number of bytes") as info:
        read_npz(path)
    assert info.value.field == "AFFECTGPT_MAX_INFLATE_BYTES"


def test_a_lying_header_is_refused_without_inflating_the_rest(tmp_path, capsys):
    # 32 MB of zeros deflate to ~32 KB; the headers claim 1000 bytes.
    bomb = zip_with(tmp_path / "checkpoint_000001_loss_0.1-openset.npz",
                    {"filenames.npy": npy_unicode(["s1"]), "fileitems.npy": b"\x00" * (32 * 1024 * 1024)},
                    declare={"fileitems.npy": 1000})
    assert bomb.stat().st_size < 200_000
    labels = write_csv(tmp_path / "labels.csv", "name,label", LABELS)
    code, err, elapsed = run_cli(score_args(bomb, labels), capsys)
    assert code == 2 and elapsed < 2
    assert_one_error_line(err, f"{bomb}: fileitems.npy: ")


def test_members_compressed_other_than_deflate_are_refused(tmp_path):
    # bzip2 and lzma inflate a whole read at once, without a bound: numpy never writes them.
    path = zip_with(tmp_path / "x.npz", {"filenames.npy": npy_unicode(["a"])}, compression=zipfile.ZIP_BZIP2)
    with pytest.raises(InputError, match="compression") as info:
        read_npz(path)
    assert info.value.field == "filenames.npy"


def test_an_array_header_claiming_more_items_than_bytes_is_refused(tmp_path):
    header = "{'descr': '<U0', 'fortran_order': False, 'shape': (10000000000,), }"
    payload = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
    path = zip_with(tmp_path / "x.npz", {"filenames.npy": payload})
    start = time.perf_counter()
    with pytest.raises(InputError, match="items"):
        read_npz(path)
    assert time.perf_counter() - start < 2


def test_a_spreadsheet_bomb_is_refused_before_openpyxl_opens_it(tmp_path):
    from affectgpt.lexicon.official import read_wheel

    path = zip_with(tmp_path / "wheel1.xlsx", {"[Content_Types].xml": b"<x/>", "xl/worksheets/sheet1.xml": b"<a/>"},
                    declare={"xl/worksheets/sheet1.xml": 3 * GIB})
    with pytest.raises(InputError, match="AFFECTGPT_MAX_INFLATE_BYTES") as info:
        read_wheel(path)
    assert info.value.field == "xl/worksheets/sheet1.xml" and info.value.path == str(path)


# --- 2. undecodable text -----------------------------------------------------------------------------------------

def random_bytes(path: Path, header: bytes = b"") -> tuple[Path, int]:
    """`header` then random bytes; returns the file and the offset of its first byte that is not UTF-8."""
    rng = random.Random(12)
    data = header + bytes([0xFF]) + bytes(rng.randrange(256) for _ in range(2000))
    path.write_bytes(data)
    return path, len(header)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_bench_score_refuses_undecodable_predictions(tmp_path, capsys, suffix):
    preds, offset = random_bytes(tmp_path / f"p{suffix}", b"name,openset\ns1,[happy]\n" if suffix == ".csv" else b"")
    labels = write_csv(tmp_path / "labels.csv", "name,label", LABELS)
    code, err, _ = run_cli(score_args(preds, labels), capsys)
    assert code == 2
    assert_one_error_line(err, str(preds), f"not UTF-8 text (byte 0xff at offset {offset})", "save it as UTF-8")


def test_bench_score_refuses_undecodable_labels(tmp_path, capsys):
    labels, offset = random_bytes(tmp_path / "labels.csv", b"name,label\ns1,happy\n")
    preds = write_csv(tmp_path / "p.csv", "name,openset", [("s1", "[happy]")])
    code, err, _ = run_cli(score_args(preds, labels), capsys)
    assert code == 2
    assert_one_error_line(err, str(labels), f"byte 0xff at offset {offset}", "save it as UTF-8")


def test_extract_labels_refuses_undecodable_text(tmp_path, capsys):
    source, offset = random_bytes(tmp_path / "gen.csv", b"name,text\n")
    out = tmp_path / "out.csv"
    code, err, _ = run_cli(["extract", "labels", "--input", str(source), "--output", str(out), "--format", "csv",
                            "--no-progress"], capsys)
    assert code == 2
    assert_one_error_line(err, str(source), f"byte 0xff at offset {offset}", "save it as UTF-8")
    assert not out.exists()


def test_the_offset_counts_from_the_start_of_a_long_file(tmp_path):
    # Far past the first read buffer, and after a byte-order mark.
    head = "\ufeffname,english\n".encode() + b"".join(f"c{i},hello\n".encode() for i in range(20000))
    path = tmp_path / "subs.csv"
    path.write_bytes(head + b"c,\xc3(\n")
    with pytest.raises(InputError, match=f"byte 0xc3 at offset {len(head) + 2}"):
        read_csv_grid(path, header_fix="start with name,english")


def test_wheel_format_csv_that_is_not_utf8(tmp_path):
    from affectgpt.lexicon.official import read_form_map

    path = tmp_path / "format.csv"
    path.write_bytes(b"name,format\nhappy,gl\xfccklich\n")
    with pytest.raises(InputError, match="byte 0xfc at offset 20"):
        read_form_map(path)


def test_prompt_and_result_files_that_are_not_utf8(tmp_path):
    from affectgpt.bench.report.html import load_result_set
    from affectgpt.extract.prompts import load_template

    prompt, offset = random_bytes(tmp_path / "prompt.txt", b"Clues: {text}\n")
    with pytest.raises(InputError, match=f"byte 0xff at offset {offset}.*save it as UTF-8"):
        load_template(prompt, "text")
    result, offset = random_bytes(tmp_path / "r.json", b'{"schema_version": ')
    with pytest.raises(InputError, match=f"byte 0xff at offset {offset}.*save it as UTF-8"):
        load_result_set(result, "r")


# --- 3. silent acceptance in tables ----------------------------------------------------------------------------

@pytest.mark.parametrize("missing", ["nan", "NaN", "None", " none "])
def test_a_missing_label_written_as_nan_or_none_is_refused(tmp_path, capsys, missing):
    labels = write_csv(tmp_path / "labels.csv", "name,label", [("s1", "happy"), ("s2", missing)])
    preds = write_csv(tmp_path / "p.csv", "name,openset", [("s1", "[happy]"), ("s2", "[sad]")])
    code, err, _ = run_cli(score_args(preds, labels), capsys)
    assert code == 2
    assert_one_error_line(err, str(labels), "s2.label", "missing")


def test_an_ov_label_list_holding_nan_is_still_a_label(tmp_path, capsys):
    # Only the whole value is a missing marker: "[nan]" or "nanny" are words.
    labels = write_csv(tmp_path / "labels.csv", "name,openset", [("s1", "nanny"), ("s2", "[happy]")])
    preds = write_csv(tmp_path / "p.csv", "name,openset", [("s1", "[nanny]"), ("s2", "[happy]")])
    assert main(score_args(preds, labels, "ovmerdplus")) == 0


@pytest.mark.parametrize("stored", [None, "nan", "NaN"])
def test_npz_labels_holding_none_or_nan_text_are_refused(tmp_path, capsys, stored):
    import numpy as np

    labels = tmp_path / "label-6way.npz"
    np.savez(labels, test1_corpus={"s1": {"emo": "happy"}, "s2": {"emo": stored}})
    preds = write_csv(tmp_path / "p.csv", "name,openset", [("s1", "[happy]"), ("s2", "[sad]")])
    code, err, _ = run_cli(score_args(preds, labels), capsys)
    assert code == 2
    assert_one_error_line(err, str(labels), "s2.label", "missing")


@pytest.mark.parametrize("kind", ["predictions", "labels"])
def test_a_csv_row_longer_than_the_header_is_refused(tmp_path, capsys, kind):
    good_labels = write_csv(tmp_path / "labels.csv", "name,label", LABELS)
    good_preds = write_csv(tmp_path / "p.csv", "name,openset", [("s1", "[happy]"), ("s2", "[sad]")])
    bad = tmp_path / "bad.csv"
    header = "name,openset" if kind == "predictions" else "name,label"
    bad.write_text(f"{header}\ns1,happy\ns2,happy,sad\n")  # an unquoted comma
    args = score_args(bad, good_labels) if kind == "predictions" else score_args(good_preds, bad)
    code, err, _ = run_cli(args, capsys)
    assert code == 2
    assert_one_error_line(err, str(bad), "line 3", "3 fields but the header has 2")


def test_read_table_names_the_physical_line_of_a_long_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('name,label\ns1,"two\nlines"\n\ns2,a,b\n')
    with pytest.raises(InputError, match="line 5 has 3 fields") as info:
        read_table(path)
    assert info.value.field == "line 5"


def test_an_unterminated_quote_is_refused_by_every_csv_reader(tmp_path, capsys):
    text = 'name,openset\ns1,"[happy]\ns2,[sad]\ns3,[angry]\n'
    preds = tmp_path / "p.csv"
    preds.write_text(text)
    labels = write_csv(tmp_path / "labels.csv", "name,label", LABELS)
    code, err, _ = run_cli(score_args(preds, labels), capsys)
    assert code == 2
    assert_one_error_line(err, str(preds), "quote", "line 2")
    with pytest.raises(InputError, match="unterminated quote") as info:
        read_csv_grid(preds, header_fix="x")
    assert info.value.field == "line 2"


def test_a_subtitle_table_with_an_unterminated_quote(tmp_path):
    from affectgpt.media.subtitles import read_subtitle_table

    path = tmp_path / "subs.csv"
    path.write_text('name,english\na,"hello\nb,world\n')
    with pytest.raises(InputError, match="unterminated quote"):
        read_subtitle_table(path)


def test_a_training_manifest_with_an_unterminated_quote(tmp_path):
    from affectgpt.data.manifests import read_manifest

    path = tmp_path / "train.csv"
    path.write_text('name,video,description\na,a.mp4,"He smiles.\nb,b.mp4,She frowns.\n')
    with pytest.raises(InputError, match="unterminated quote") as info:
        read_manifest(path)
    assert info.value.field == "line 2"


# --- 4. wrong column, wrong answer -------------------------------------------------------------------------------

def test_extract_sentiment_needs_emotion_words_not_text(tmp_path, capsys):
    source = write_csv(tmp_path / "gen.csv", "name,text", [("s1", "He looks very happy and excited.")])
    out = tmp_path / "out.csv"
    code, err, _ = run_cli(["extract", "sentiment", "--input", str(source), "--output", str(out), "--format",
                            "csv", "--no-progress"], capsys)
    assert code == 2
    assert_one_error_line(err, str(source), "openset", "affectgpt extract labels")
    assert not out.exists()


def test_extract_sentiment_refuses_generated_text_npz(tmp_path, capsys):
    import numpy as np

    source = tmp_path / "checkpoint_000001_loss_0.5.npz"  # generated text, not emotion words
    np.savez(source, name2reason={"s1": "He looks very happy and excited."})
    out = tmp_path / "out.npz"
    code, err, _ = run_cli(["extract", "sentiment", "--input", str(source), "--output", str(out),
                            "--no-progress"], capsys)
    assert code == 2
    assert_one_error_line(err, str(source), "openset", "affectgpt extract labels")
    assert not out.exists()


def test_extract_sentiment_reads_an_openset_column(tmp_path, capsys):
    source = write_csv(tmp_path / "x.csv", "name,openset", [("s1", "[happy, excited]")])
    out = tmp_path / "out.csv"
    assert main(["extract", "sentiment", "--input", str(source), "--output", str(out), "--format", "csv",
                 "--no-progress"]) == 0
    assert "positive" in out.read_text()
