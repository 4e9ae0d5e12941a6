"""Stage 2, subtitle: what the character says, from a given subtitle CSV or from speech recognition.

Config: `subtitles: PATH` (a CSV `name, chinese, english`, as the releases' subtitle_chieng.csv; either text
column may be absent) wins for every clip it has a row for (a row with empty cells is a clip where nothing is
said). Otherwise, with `asr: true`, the clip's 16 kHz WAV (from probe) goes through the perception speech
perceiver (Silero VAD, then faster-whisper from `asr_model`, default the shipped Whisper base), with its rules:
the transcript is kept only when the model vouches for it (language, repetition, no-speech and confidence
checks); a dropped one is no subtitle (source "none", the reason in the stage info). Else the source is "none".

Fields: {"subtitle": {"chinese", "english", "text", "source"}}: `text` is what the later stages read (English
when there is English, else the Chinese); an ASR transcript fills `english` or `chinese` by its language (either,
or neither for another language: it is then only in `text`).

The stage key holds the CSV's path, not its content: after editing the CSV in place, give it a new name (or
force the stage) to re-read it; the info records the table's sha256 for the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from affectgpt.caption.base import StageContext, StageResult
from affectgpt.caption.stages.common import absolute, check_config, clip_name, flag, resource

DEFAULTS: dict[str, Any] = {"subtitles": None, "asr": False, "asr_model": None, "threads": 1}
COLUMNS = ("chinese", "english")


def empty(source: str = "none") -> dict[str, str]:
    return {"chinese": "", "english": "", "text": "", "source": source}


class Subtitle:
    """Stage 2 (see the module docstring)."""

    name = "subtitle"
    version = "1"
    scope = "clip"
    reads = ("media_sha", "audio_file")
    writes = ("subtitle",)
    defaults = DEFAULTS

    def check(self, config: Mapping[str, Any]) -> None:
        """InputError for an unknown key, a bad flag or thread count, or a subtitle CSV that cannot be read."""
        from affectgpt.errors import InputError

        check_config("", config, DEFAULTS)
        flag(config, "asr", "", False)
        threads = config.get("threads", 1)
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise InputError(f"must be a whole number >= 1, got {threads!r}", field="threads")
        if config.get("subtitles"):
            _read_table(config["subtitles"])

    def __call__(self, fields: Mapping[str, Any], context: StageContext) -> StageResult:
        config = {**DEFAULTS, **context.config}
        check_config("", config, DEFAULTS)
        name = clip_name(fields)
        if config.get("subtitles"):
            table = resource(context, self.name, {"subtitles": config["subtitles"]},
                              lambda: _read_table(config["subtitles"]))
            row = table["rows"].get(name)
            if row is not None:
                chinese, english = row
                subtitle = {"chinese": chinese, "english": english, "text": english or chinese, "source": "given"}
                return StageResult({"subtitle": subtitle}, info={"table_sha": table["sha"]})
        if not flag(config, "asr", "", False):
            return StageResult({"subtitle": empty()}, info={"asr": "off"})
        if not fields.get("audio_file"):
            return StageResult({"subtitle": empty()}, info={"asr": "no audio"})
        options = {"asr_model": config.get("asr_model"), "threads": int(config.get("threads", 1))}
        perceiver = resource(context, "speech-perceiver", options, lambda: _speech_perceiver(**options))
        return _recognise(perceiver, name, absolute(fields["audio_file"], Path(context.output)))


def _read_table(path: str | Path) -> dict[str, Any]:
    """name -> (chinese, english) of a subtitle CSV, and the file's sha256."""
    import hashlib

    from affectgpt.errors import InputError
    from affectgpt.media.subtitles import read_subtitle_table

    columns: dict[str, dict[str, str]] = {}
    first_error: InputError | None = None
    for column in COLUMNS:
        try:
            columns[column] = read_subtitle_table(path, column=column)
        except InputError as exc:
            first_error = first_error or exc
    if not columns:
        assert first_error is not None
        raise InputError(first_error.what, path=path, field="subtitles",
                         fix="a CSV with a header name,chinese,english (one text column is enough)")
    names = dict.fromkeys(name for table in columns.values() for name in table)
    rows = {n: (columns.get("chinese", {}).get(n, ""), columns.get("english", {}).get(n, "")) for n in names}
    return {"rows": rows, "sha": hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]}


def _speech_perceiver(asr_model: str | None, threads: int) -> Any:
    from affectgpt.perception.speech import SpeechPerceiver

    return SpeechPerceiver(asr_model, threads=threads)


def _recognise(perceiver: Any, name: str, wav: Path) -> StageResult:
    """The speech perceiver's transcript of the clip's WAV, kept or dropped by its rules."""
    from affectgpt.caption.stages.common import read_wav
    from affectgpt.perception.base import Scene

    audio = read_wav(wav)
    scene = Scene(name=name, audio=audio, duration=len(audio) / 16000)
    reading = perceiver(scene)
    figures = reading.figures
    info = {"asr_model": figures.get("asr_model"), "language": figures.get("language"),
            "language_probability": figures.get("language_probability")}
    dropped = [f.partition(":")[2] for f in reading.flags if f.startswith("transcript_dropped:")]
    if scene.transcript_source != "asr" or not scene.transcript.strip():
        why = f"dropped: {dropped[0]} ({figures.get('dropped_because', '')})" if dropped else \
            "no speech" if "no_speech" in reading.flags else "no transcript"
        return StageResult({"subtitle": empty()}, info={**info, "asr": why})
    text = scene.transcript.strip()
    language = str(figures.get("language") or "")
    subtitle = {"chinese": text if language in ("zh", "yue") else "", "english": text if language == "en" else "",
                "text": text, "source": "asr"}
    return StageResult({"subtitle": subtitle}, info={**info, "asr": "kept"})
