"""The one top-level handler of `affectgpt`: every failure is one line on stderr with the right exit code, and
`--debug` (or AFFECTGPT_DEBUG=1) gives the traceback instead (issue 12)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from affectgpt.cli import main
from affectgpt.errors import InputError


def _failing(monkeypatch: pytest.MonkeyPatch, make: Callable[[], BaseException]) -> None:
    """`affectgpt model ls` raises what `make` builds (the command table is bound when the parser is built)."""
    def run(args):
        raise make()

    monkeypatch.setattr("affectgpt.cli.model.run_ls", run)
    monkeypatch.delenv("AFFECTGPT_DEBUG", raising=False)


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _undecodable() -> UnicodeDecodeError:
    try:
        b"name,label\n\xff\xfe\xfa".decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError("decoded")


OS_ERRORS = [
    (IsADirectoryError, errno.EISDIR),
    (FileExistsError, errno.EEXIST),
    (PermissionError, errno.EACCES),
    (FileNotFoundError, errno.ENOENT),
    (NotADirectoryError, errno.ENOTDIR),
]


@pytest.mark.parametrize(("kind", "code"), OS_ERRORS)
def test_an_os_error_on_a_file_is_one_line_naming_the_file(monkeypatch, capsys, kind, code):
    _failing(monkeypatch, lambda: kind(code, os.strerror(code), "/data/labels.csv"))
    assert main(["model", "ls"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == f"error: /data/labels.csv: {os.strerror(code)}"


def test_an_os_error_naming_a_path_object_or_bytes(monkeypatch, capsys, tmp_path):
    _failing(monkeypatch, lambda: PermissionError(errno.EACCES, "Permission denied", tmp_path / "out"))
    assert main(["model", "ls"]) == 2
    assert _one_line(capsys.readouterr().err) == f"error: {tmp_path / 'out'}: Permission denied"
    _failing(monkeypatch, lambda: FileNotFoundError(errno.ENOENT, "No such file or directory", b"/data/x.csv"))
    assert main(["model", "ls"]) == 2
    assert _one_line(capsys.readouterr().err) == "error: /data/x.csv: No such file or directory"


def test_an_os_error_without_a_file_is_an_internal_error(monkeypatch, capsys):
    _failing(monkeypatch, lambda: OSError(errno.EIO, "Input/output error"))
    assert main(["model", "ls"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("error: internal error: OSError: ") and "--debug" in line


def test_undecodable_text_is_one_line(monkeypatch, capsys):
    _failing(monkeypatch, _undecodable)
    assert main(["model", "ls"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("error: ") and "not UTF-8 text" in line


def test_undecodable_text_names_the_file_read(monkeypatch, capsys, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes(b"name,label\n\xff\xfe\xfa\n")
    _failing(monkeypatch, lambda: path.read_text(encoding="utf-8"))  # raises inside the call
    assert main(["model", "ls"]) == 2
    assert _one_line(capsys.readouterr().err).startswith(f"error: {path}: not UTF-8 text")


def test_memory_error_says_the_file_may_be_too_large(monkeypatch, capsys):
    _failing(monkeypatch, MemoryError)
    assert main(["model", "ls"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "out of memory" in line and "too large" in line


def test_a_bug_is_one_line_with_a_pointer_to_debug(monkeypatch, capsys):
    _failing(monkeypatch, lambda: KeyError("first\nsecond line"))
    assert main(["model", "ls"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("error: internal error: KeyError: ")
    assert line.endswith("(run again with --debug for the traceback, and report it)")
    assert "first" in line and "second line" in line


def test_debug_flag_and_environment_give_the_traceback(monkeypatch, capsys):
    _failing(monkeypatch, lambda: KeyError("boom"))
    with pytest.raises(KeyError):
        main(["--debug", "model", "ls"])
    _failing(monkeypatch, lambda: IsADirectoryError(errno.EISDIR, "Is a directory", "/data"))
    with pytest.raises(IsADirectoryError):
        main(["--debug", "model", "ls"])
    monkeypatch.setenv("AFFECTGPT_DEBUG", "1")
    with pytest.raises(IsADirectoryError):
        main(["model", "ls"])
    monkeypatch.setenv("AFFECTGPT_DEBUG", "0")
    assert main(["model", "ls"]) == 2


def test_input_errors_stay_one_line_even_with_debug(monkeypatch, capsys):
    _failing(monkeypatch, lambda: InputError("bad", path="x.csv", fix="fix it"))
    assert main(["--debug", "model", "ls"]) == 2
    assert _one_line(capsys.readouterr().err) == "error: x.csv: bad. Fix: fix it"


def test_interrupt_is_130_and_one_line(monkeypatch, capsys):
    _failing(monkeypatch, KeyboardInterrupt)
    assert main(["model", "ls"]) == 130
    assert _one_line(capsys.readouterr().err) == "error: interrupted"


def test_a_broken_pipe_is_still_success(monkeypatch, capsys):
    _failing(monkeypatch, lambda: BrokenPipeError(errno.EPIPE, "Broken pipe"))
    assert main(["model", "ls"]) == 0
    assert capsys.readouterr().err == ""



def test_help_lists_the_command_groups(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "more commands to come" not in " ".join(out.split())
    for group in ("bench", "extract", "preprocess", "model", "describe", "predict", "train", "features"):
        assert f"\n    {group} " in out or f"\n    {group}\n" in out, group  # in the command list
    description = out.split("positional arguments")[0]
    for word in ("score", "extract", "preprocess", "train", "predict"):
        assert word in description, word


TINY = str(Path(__file__).resolve().parents[1] / "configs" / "tiny-cpu.yaml")


def test_train_refuses_an_output_that_is_a_file_up_front(tmp_path, capsys):
    plain = tmp_path / "run"
    plain.write_text("not a folder")
    assert main(["train", "--config", TINY, "--output", str(plain)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"error: {plain}: --output: is a file, but a folder is expected here")
    assert plain.read_text() == "not a folder"


def test_train_refuses_an_output_that_cannot_be_written_up_front(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    monkeypatch.setattr("affectgpt.config.load_config", lambda *a, **k: pytest.fail("the recipe was read first"))
    assert main(["train", "--config", TINY, "--output", str(locked / "run")]) == 2
    assert "is not writable" in _one_line(capsys.readouterr().err)
    assert list(locked.iterdir()) == []
