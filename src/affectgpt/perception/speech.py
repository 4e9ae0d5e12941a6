"""The speech perceiver: where the clip is voiced (Silero VAD) and what is said (the subtitle, or Whisper if vouched).

Voice activity comes from the Silero VAD that faster-whisper ships (ONNX through onnxruntime, no torch); the
spans go on `scene.speech_segments` for the voice perceiver. A given subtitle wins: it becomes the transcript and
Whisper does not run. Otherwise the voiced spans are transcribed (asr.py) and the transcript is kept only when
the model vouches for it; a dropped one is flagged `transcript_dropped:<reason>` and never read as text. This
perceiver gives no emotions (weight 0): it makes the transcript and the segments others read.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from affectgpt.extras import require
from affectgpt.perception.asr import LANGUAGE_NAMES, RATE, recognise, verdict
from affectgpt.perception.asr_models import default_asr_model, load_whisper, resolve_asr_model
from affectgpt.perception.base import Clue, Reading, Scene

REASONS = {"language": "language", "repetition": "repetition loop", "no_speech": "no speech",
           "low_confidence": "low confidence", "empty": "no words"}

# Silero VAD settings: 0.5 is its usual threshold; 250 ms of speech at least (clicks are dropped); a silence of
# 200 ms or more ends a span (shorter gaps are within words), and spans are padded by 30 ms (Silero's default).
VAD_THRESHOLD = 0.5
VAD_MIN_SPEECH_MS = 250
VAD_MIN_SILENCE_MS = 200
VAD_PAD_MS = 30


def voice_activity(audio: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in 16 kHz float32 `audio`, by the Silero VAD faster-whisper ships."""
    vad = require("faster_whisper.vad", extra="perception")
    if audio.shape[0] < 512:
        return []
    options = vad.VadOptions(threshold=VAD_THRESHOLD, min_speech_duration_ms=VAD_MIN_SPEECH_MS,
                             min_silence_duration_ms=VAD_MIN_SILENCE_MS, speech_pad_ms=VAD_PAD_MS)
    spans = vad.get_speech_timestamps(audio, options, sampling_rate=RATE)
    return [(round(s["start"] / RATE, 3), round(s["end"] / RATE, 3)) for s in spans]


def audio_16k(scene: Scene) -> np.ndarray | None:
    """The scene's waveform as finite float32 at 16 kHz, or None when it has none."""
    if scene.audio is None or np.asarray(scene.audio).size == 0:
        return None
    from affectgpt.media.audio import resample, to_mono

    samples = np.nan_to_num(to_mono(np.asarray(scene.audio, dtype=np.float32)), nan=0.0, posinf=0.0, neginf=0.0)
    return np.ascontiguousarray(resample(samples, int(scene.sample_rate), RATE), dtype=np.float32)


class SpeechPerceiver:
    """Voice activity and a vouched-for transcript per clip.

    Args:
        asr_model: a faster-whisper model folder; None: the shipped Whisper base (asr_models.py).
        threads: CPU threads for Whisper (int8).
        beam_size: Whisper's beam (2: as good as 5 on the clips tried, and faster).
        min_language_probability: below it the transcript is dropped (`transcript_dropped:language`).
        languages: language codes whose transcripts are kept (None: any the model knows).
        max_compression_ratio, min_avg_logprob, max_no_speech_prob: Whisper's own thresholds (2.4, -1.0, 0.6).
    """

    modality = "speech"

    def __init__(self, asr_model: str | Path | None = None, *, threads: int = 1, beam_size: int = 2,
                 min_language_probability: float = 0.5, languages: tuple[str, ...] | None = None,
                 max_compression_ratio: float = 2.4, min_avg_logprob: float = -1.0,
                 max_no_speech_prob: float = 0.6) -> None:
        self.folder = resolve_asr_model(asr_model)
        self.model = load_whisper(self.folder, threads)
        self.language_model = None
        if not self.model.model.is_multilingual:  # an English-only model: the shipped base says the language
            try:
                self.language_model = load_whisper(default_asr_model(), threads)
            except Exception:  # the base wheels are absent or the cache is read-only: the language goes unchecked
                self.language_model = None
        self.beam_size = beam_size
        self.checks = {"min_language_probability": min_language_probability, "languages": languages,
                       "max_compression_ratio": max_compression_ratio, "min_avg_logprob": min_avg_logprob,
                       "max_no_speech_prob": max_no_speech_prob}
        voice_activity(np.zeros(RATE // 2, dtype=np.float32))  # loads the VAD once, here

    def __call__(self, scene: Scene) -> Reading:
        reading = Reading(self.modality)
        if scene.subtitle.strip():
            scene.transcript, scene.transcript_source = scene.subtitle.strip(), "subtitle"
            reading.figures.update(asr="skipped: a subtitle was given", transcript_source="subtitle")
        audio = audio_16k(scene)
        if audio is None:
            reading.flags.append("no_audio")
            reading.clues.append(Clue(self.modality, "The clip has no audio.", 1.0))
            return reading
        duration = audio.shape[0] / RATE
        started = time.perf_counter()
        spans = voice_activity(audio)
        reading.figures["vad_seconds"] = round(time.perf_counter() - started, 4)
        scene.speech_segments = spans
        voiced = sum(end - start for start, end in spans)
        reading.figures.update(duration=round(duration, 3), speech_seconds=round(voiced, 3),
                               voiced_share=round(voiced / duration, 4) if duration else 0.0,
                               segments=len(spans), speech_segments=[list(s) for s in spans])
        if not spans:
            reading.flags.append("no_speech")
            reading.clues.append(Clue(self.modality, "No speech is heard.", 0.8))
            return reading
        if scene.transcript_source == "subtitle":
            reading.clues.append(Clue(self.modality, f"The person speaks for {voiced:.1f} s of the {duration:.1f} s "
                                                     "clip; the given subtitle is the transcript.", 0.8))
            return reading
        self._transcribe(scene, audio, spans, reading)
        return reading

    def _transcribe(self, scene: Scene, audio: np.ndarray, spans: list[tuple[float, float]],
                    reading: Reading) -> None:
        started = time.perf_counter()
        result = recognise(self.model, audio, spans, beam_size=self.beam_size, language_model=self.language_model)
        reading.figures["asr_seconds"] = round(time.perf_counter() - started, 4)
        reason, detail = verdict(result, **self.checks)
        reading.figures.update(asr_model=self.folder.name, language=result.language,
                               language_probability=round(result.language_probability, 4),
                               language_checked=result.language_checked, text=result.text,
                               avg_logprob=round(result.avg_logprob, 4),
                               no_speech_prob=round(result.no_speech_prob, 4),
                               compression_ratio=round(result.compression_ratio, 3), chunks=result.chunks)
        voiced = reading.figures["speech_seconds"]
        duration = reading.figures["duration"]
        sure = result.language_checked and result.language_probability >= self.checks["min_language_probability"]
        language = LANGUAGE_NAMES.get(result.language, result.language)
        said = f"The person speaks {language} for" if sure else "Speech is heard for"
        reading.clues.append(Clue(self.modality, f"{said} {voiced:.1f} s of the {duration:.1f} s clip.",
                                  0.8 if voiced >= 0.5 else 0.5))
        if reason:
            reading.flags.append(f"transcript_dropped:{reason}")
            reading.figures.update(transcript_kept=False, dropped_because=detail)
            reading.clues.append(Clue(self.modality, f"The speech could not be transcribed reliably "
                                                     f"({REASONS[reason]}: {detail}), so it is not used.", 0.7))
            return
        scene.transcript, scene.transcript_source = result.text, "asr"
        reading.figures.update(transcript_kept=True, transcript_source="asr")
        reading.clues.append(Clue(self.modality, _hears(result.text),
                                  round(float(np.clip(np.exp(result.avg_logprob), 0.0, 1.0)), 3)))



def _hears(text: str) -> str:
    """The clue that quotes the kept transcript (no second full stop after a quote that ends a sentence)."""
    quoted = f'The speech recogniser hears: "{text}"'
    return quoted if text.rstrip().endswith((".", "!", "?", "。", "！", "？")) else quoted + "."
