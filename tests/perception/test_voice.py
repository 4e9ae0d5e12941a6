"""The voice perceiver on signals whose prosody is known by construction, and on the real sample."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from affectgpt.perception.base import EMOTIONS, Reading, Scene
from affectgpt.perception.prosody import clean_pitch, pitch_track
from affectgpt.perception.voice import VoicePerceiver

RATE = 16000


def glide(start_hz: float, end_hz: float, seconds: float, amplitude: float = 0.3, rate: int = RATE) -> np.ndarray:
    """A sine whose frequency moves linearly from start_hz to end_hz."""
    t = np.arange(int(seconds * rate)) / rate
    frequency = start_hz + (end_hz - start_hz) * t / seconds
    return (amplitude * np.sin(2 * np.pi * np.cumsum(frequency) / rate)).astype(np.float32)


def read(audio: np.ndarray | None, rate: int = RATE, **scene: object) -> Reading:
    return VoicePerceiver()(Scene("synthetic", audio=audio, sample_rate=rate, **scene))


def texts(reading: Reading) -> str:
    return " ".join(c.text for c in reading.clues)


def test_a_glide_from_150_to_250_hz_has_its_median_and_rises() -> None:
    reading = read(glide(150, 250, 2.0))
    # a linear glide spends equal time at every frequency: its median is the midpoint, 200 Hz
    assert reading.figures["pitch_median_hz"] == pytest.approx(200, abs=3)
    assert reading.figures["pitch_p10_hz"] == pytest.approx(160, abs=4)
    assert reading.figures["pitch_p90_hz"] == pytest.approx(240, abs=4)
    assert reading.figures["pitch_contour"] == "rising"
    assert "The pitch is rising over the clip" in texts(reading)
    assert "falling" not in texts(reading)


def test_a_falling_glide_falls() -> None:
    reading = read(glide(260, 120, 2.0))
    assert reading.figures["pitch_contour"] == "falling"
    assert reading.figures["pitch_end"] == "fall"
    assert "The pitch falls at the end" in texts(reading)


@pytest.mark.parametrize("hz", [80.0, 130.0, 310.0, 450.0])
def test_steady_tones_are_tracked_at_their_frequency(hz: float) -> None:
    f0 = clean_pitch(pitch_track(glide(hz, hz, 1.0), RATE)[0])
    voiced = f0[np.isfinite(f0)]
    assert voiced.size > 80  # of 100 frames
    assert np.median(voiced) == pytest.approx(hz, rel=0.01)


def test_a_tone_quiet_then_loud_is_louder_at_the_end() -> None:
    tone = glide(220, 220, 1.0)
    reading = read(np.concatenate([tone * 0.1, tone]))  # 0.1 of the amplitude: 20 dB quieter
    assert reading.figures["loudness_change_db"] == pytest.approx(20, abs=1)
    assert "The voice is louder at the end than at the start (+20 dB)." in texts(reading)
    flipped = read(np.concatenate([tone, tone * 0.1]))
    assert "softer at the end" in texts(flipped)


def test_a_steady_tone_keeps_its_loudness_and_reports_it_in_dbfs() -> None:
    reading = read(glide(220, 220, 1.5, amplitude=0.5))
    # a sine of amplitude A has an RMS of A / sqrt(2): 0.5 -> -9.03 dBFS
    assert reading.figures["loudness_median_dbfs"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.2)
    assert abs(reading.figures["loudness_change_db"]) < 1
    assert "louder" not in texts(reading) and "softer" not in texts(reading)


def test_tone_gap_tone_gives_the_pause_length() -> None:
    tone = glide(200, 200, 1.0)
    reading = read(np.concatenate([tone, np.zeros(int(1.3 * RATE), np.float32), tone]))
    assert reading.figures["pauses"] == 1
    assert reading.figures["longest_pause_s"] == pytest.approx(1.3, abs=0.03)
    assert "There are long pauses (the longest 1.3 s" in texts(reading)
    short = read(np.concatenate([tone, np.zeros(int(0.5 * RATE), np.float32), tone]))
    assert short.figures["longest_pause_s"] == pytest.approx(0.5, abs=0.03)
    assert "1 short pause" in texts(short)


def test_pauses_follow_the_speech_segments_when_the_vad_gave_them() -> None:
    tone = glide(200, 200, 3.0)  # one sound, but the VAD said speech stops from 1.0 to 1.6 s
    reading = read(tone, speech_segments=[(0.0, 1.0), (1.6, 3.0)])
    assert reading.figures["longest_pause_s"] == pytest.approx(0.6, abs=1e-6)
    assert reading.figures["speaking_seconds"] == pytest.approx(2.4)


@pytest.mark.parametrize("beats", [2.0, 5.0, 8.0])
def test_speaking_rate_counts_syllable_like_beats(beats: float) -> None:
    seconds = 3.0
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = 0.5 - 0.5 * np.cos(2 * np.pi * beats * t)  # `beats` loudness bursts per second
    reading = read((glide(180, 180, seconds) * envelope).astype(np.float32))
    assert reading.figures["speaking_rate_per_s"] == pytest.approx(beats, rel=0.15)


@pytest.mark.parametrize("audio", [None, np.zeros(0, np.float32)])
def test_no_audio_is_flagged_with_weight_zero(audio: np.ndarray | None) -> None:
    reading = read(audio)
    assert reading.flags == ["no_audio"]
    assert reading.weight == 0 and reading.emotions == {} and reading.clues == []


@pytest.mark.parametrize("audio", [np.zeros(4 * RATE, np.float32), np.full(RATE, 1e-5, np.float32)])
def test_silence_is_flagged_and_says_nothing_of_pitch(audio: np.ndarray) -> None:
    reading = read(audio)
    assert reading.flags == ["no_speech"]
    assert reading.weight == 0 and reading.emotions == {}
    assert "pitch" not in texts(reading) and not any(k.startswith("pitch") for k in reading.figures)


def test_a_vad_that_found_no_speech_silences_the_voice() -> None:
    scene = Scene("s", audio=glide(200, 200, 1.0))
    scene.readings["speech"] = Reading("speech", flags=["no_speech"])
    reading = VoicePerceiver()(scene)
    assert reading.flags == ["no_speech"] and reading.clues == []


def test_noise_has_no_pitch_clue() -> None:
    noise = np.random.default_rng(0).normal(0, 0.1, RATE * 2).astype(np.float32)
    reading = read(noise)
    assert "pitch" not in texts(reading)
    assert reading.weight == 0


def test_other_sample_rates_are_resampled() -> None:
    reading = read(glide(150, 250, 2.0, rate=44100), rate=44100)
    assert reading.figures["pitch_median_hz"] == pytest.approx(200, abs=3)


def test_the_arousal_hint_is_weak_and_only_when_cues_agree() -> None:
    t = np.arange(3 * RATE) / RATE
    # loud, fast (8 bursts a second) and high (300-420 Hz): three high-arousal cues
    lively = glide(300, 420, 3.0, amplitude=0.9) * (0.5 - 0.5 * np.cos(2 * np.pi * 8 * t))
    reading = read(lively.astype(np.float32))
    assert 0 < reading.weight <= 0.15
    assert set(reading.emotions) == set(EMOTIONS) and sum(reading.emotions.values()) == pytest.approx(1)
    assert max(reading.emotions, key=reading.emotions.get) in {"angry", "happy", "surprise"}
    assert read(glide(150, 250, 2.0)).weight == 0  # one cue alone says nothing


@pytest.mark.reference
def test_the_real_sample_has_speech_like_prosody(reference_dir: Path) -> None:
    with wave.open(str(reference_dir / "media" / "sample_00000000.wav")) as handle:
        assert handle.getframerate() == RATE and handle.getnchannels() == 1
        audio = np.frombuffer(handle.readframes(handle.getnframes()), np.int16).astype(np.float32) / 32768
    reading = read(audio)
    figures = reading.figures
    assert 80 < figures["pitch_median_hz"] < 260  # one adult speaker
    assert 2 < figures["speaking_rate_per_s"] < 8
    assert -40 < figures["loudness_median_dbfs"] < -10
    assert figures["pauses"] >= 1  # the two phrases are separated by a silence (about 1.1-1.8 s)
    assert reading.weight <= 0.15
