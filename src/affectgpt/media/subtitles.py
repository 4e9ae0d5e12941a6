"""Subtitles: a clip's spoken text, from the original release's subtitle CSV or from local speech recognition.

- `read_subtitle_table(path, column="english")` reads a CSV with a header: a name column (`name`, or `names`
  as in EMER's emer_v1_eng.csv) and text columns. The MER releases' subtitle CSVs are `name, chinese, english`;
  any other text column can be chosen (`subtitles` in emer_v1_eng.csv). Header names match case-insensitively.
- `subtitle_for(name, table)` returns the clip's text, or None when the table has no row for it, so the caller
  can flag `no_subtitle` (or transcribe). A row with an empty cell is a clip with no speech: "" is returned.
- `transcribe(audio, sample_rate, model_dir=...)` runs faster-whisper (`affectgpt[asr]`) from a local model
  folder (a CTranslate2 conversion of Whisper: model.bin, config.json, tokenizer.json, vocabulary). Nothing is
  downloaded: the folder must exist. Decoding is deterministic (temperature 0, beam search 5).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.extras import require
from affectgpt.io.tables import read_csv_grid
from affectgpt.registry import unknown_name

NAME_COLUMNS = ("name", "names")
ASR_SAMPLE_RATE = 16000  # what Whisper models take


def read_subtitle_table(path: str | Path, column: str = "english") -> dict[str, str]:
    """Read name -> subtitle from a CSV with a header line.

    Args:
        path: the CSV file (UTF-8, with or without a byte-order mark), or a pipe: it is read once.
        column: the text column to read, matched case-insensitively ("english", "chinese", ...).

    Returns:
        name -> text (stripped), in file order.

    Raises:
        InputError: missing or unreadable file, no name column, no such text column (the error lists the
            columns), a row of the wrong length, an empty name, or one name with two different texts.
    """
    path = Path(path)
    if not path.exists() or path.is_dir():  # a pipe (`--subtitles <(...)`) is fine: the file is read once
        raise InputError("subtitle file not found", path=path, fix="check the path")
    if not column or not column.strip():
        raise InputError("no subtitle column chosen", path=path, field="column",
                         fix="name a text column of the CSV, such as 'english' or 'chinese'")
    header, rows = read_csv_grid(path, header_fix="start the file with a header such as name,chinese,english")
    name_at, text_at = _columns(path, header, column.strip())
    return _rows(path, rows, name_at, text_at)


def _columns(path: Path, header: list[str], column: str) -> tuple[int, int]:
    """Positions of the name column and the chosen text column in the header."""
    lowered = [cell.lower() for cell in header]
    name_at = next((lowered.index(n) for n in NAME_COLUMNS if n in lowered), None)
    if name_at is None:
        raise InputError(f"no name column (columns: {', '.join(header)})", path=path, field="name",
                         fix="add a header line such as name,chinese,english")
    texts = [cell for i, cell in enumerate(header) if i != name_at]
    if column.lower() not in [t.lower() for t in texts]:
        hint = unknown_name("subtitle column", column, texts).fix
        raise InputError(f"no column {column!r} (columns: {', '.join(header)})", path=path, field=column,
                         fix=hint)
    return name_at, next(i for i, cell in enumerate(lowered) if cell == column.lower() and i != name_at)


def _rows(path: Path, rows: list[tuple[int, list[str]]], name_at: int, text_at: int) -> dict[str, str]:
    table: dict[str, str] = {}
    for line, row in rows:
        name, text = row[name_at].strip(), row[text_at].strip()
        if not name:
            raise InputError(f"empty name on line {line}", path=path, field="name", fix="give every row a name")
        if name in table and table[name] != text:
            raise InputError(f"name {name!r} appears twice with different subtitles (line {line})", path=path,
                             field="name", fix="keep one row per name")
        table[name] = text
    return table


def subtitle_for(name: str, table: dict[str, str]) -> str | None:
    """The subtitle of clip `name` (a file stem such as 'sample_00000000'), or None when the table lacks it.

    None, not "", so that the caller can tell "no row" (flag `no_subtitle`, or transcribe) from "a row with
    no speech" (an empty string).
    """
    return table.get(name)


def transcribe(audio: Any, sample_rate: int, *, model_dir: str | Path, language: str | None = None,
               device: str = "auto") -> str:
    """Speech -> text with faster-whisper from a local model folder (`affectgpt[asr]`).

    Args:
        audio: [N] float samples in -1..1 (mono).
        sample_rate: of `audio`; other rates than 16 kHz are resampled (soxr, `affectgpt[media]`).
        model_dir: a faster-whisper (CTranslate2) model folder, for example one made with
            `ct2-transformers-converter` or downloaded beforehand; nothing is fetched here.
        language: a Whisper language code ("en", "zh"); None lets the model detect it.
        device: "auto", "cpu" or "cuda".

    Returns:
        The transcript, segments joined by single spaces ("" when nothing was said).

    Raises:
        InputError: the folder is missing or is not a faster-whisper model; audio that is not mono.
        MissingExtra: faster-whisper is not installed.
    """
    import numpy as np

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise InputError("ASR model folder not found", path=model_dir, field="model_dir",
                         fix="pass a local faster-whisper model folder (model.bin, config.json, tokenizer.json)")
    if not (model_dir / "model.bin").is_file():
        raise InputError("not a faster-whisper model folder: no model.bin", path=model_dir, field="model_dir",
                         fix="convert the Whisper model with ct2-transformers-converter, or pass the right folder")
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise InputError(f"audio must be mono [N] samples, got shape {samples.shape}", field="audio",
                         fix="mix the channels down first")
    if sample_rate != ASR_SAMPLE_RATE:
        soxr = require("soxr", extra="media")
        samples = soxr.resample(samples, sample_rate, ASR_SAMPLE_RATE).astype(np.float32)
    model = load_asr_model(model_dir, device)
    segments, _info = model.transcribe(samples, language=language, beam_size=5, temperature=0.0,
                                       condition_on_previous_text=False)
    return " ".join(text for text in (segment.text.strip() for segment in segments) if text)


def load_asr_model(model_dir: str | Path, device: str = "auto", *, compute_type: str = "default", threads: int = 0,
                   extra: str = "asr") -> Any:
    """The faster-whisper model of a local folder, loaded once per process; a folder it cannot load (a damaged
    model.bin, a missing tokenizer) is an InputError naming the folder. `threads` 0 lets CTranslate2 choose;
    `extra` is what a missing faster-whisper is reported as (asr, or perception for the perception pipeline)."""
    from affectgpt.errors import AffectGPTError

    try:
        return _whisper(str(Path(model_dir).resolve()), device, compute_type, threads, extra)
    except AffectGPTError:
        raise
    except Exception as exc:  # CTranslate2 and tokenizers raise their own errors for damaged folders
        raise InputError(f"not a loadable faster-whisper model ({' '.join(str(exc).split())[:200]})",
                         path=model_dir, field="--asr-model",
                         fix="convert the Whisper model again with ct2-transformers-converter") from exc


@functools.cache
def _whisper(model_dir: str, device: str, compute_type: str, threads: int, extra: str) -> Any:
    """One loaded model per folder and settings per process (a batch worker loads it once)."""
    faster_whisper = require("faster_whisper", extra=extra)
    return faster_whisper.WhisperModel(model_dir, device=device, compute_type=compute_type, cpu_threads=threads,
                                       local_files_only=True)
