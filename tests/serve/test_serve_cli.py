"""`affectgpt serve`: its help and the errors of bad options (nothing is served)."""

from __future__ import annotations

import pytest

from affectgpt.cli import main


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for option in ("--model", "--backend", "--host", "--port", "--max-upload-mb", "--queue", "--timeout"):
        assert option in out
    assert "127.0.0.1" in out


@pytest.mark.parametrize("argv, words", [
    (["--port", "70000"], "at most 65535"),
    (["--port", "x"], "not a number"),
    (["--queue", "0"], "above 0"),
    (["--timeout", "-1"], "above 0"),
    (["--backend", "gpt"], "invalid choice"),
    (["--model", "m", "--backend", "perception"], "not allowed with"),
])
def test_bad_options(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["serve", *argv])
    assert exit_.value.code == 2
    assert words in capsys.readouterr().err
