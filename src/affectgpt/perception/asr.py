"""Speech recognition for the speech perceiver: Whisper on the voiced spans, and whether the model vouches for it.

`recognise(model, audio, spans)` runs faster-whisper's CTranslate2 model directly, one encoder pass per chunk of
speech (faster-whisper's own `transcribe` runs the encoder twice, once for the language and once to decode).
The encoder window is shortened to fit the chunk (at least 10 s, and at least twice the chunk: with less trailing
silence Whisper starts to repeat itself), which makes a 4 s clip about four times faster than the 30 s window
with the same text on the clips tried. Decoding is greedy-like (beam 2), temperature 0, no timestamps.

`verdict(result, ...)` says why a transcript is not vouched for, or None: Whisper's own signals (language
probability, no-speech probability with a low average log-probability, gzip compression ratio) and a repetition
loop found in the words ("wam-wam-wam-wam", a phrase said three times over).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RATE = 16000
MAX_CHUNK_S = 28.0  # a chunk of speech must fit Whisper's 30 s window with a little room
MIN_WINDOW_FRAMES = 1000  # 10 s of 100 Hz mel frames: shorter windows make Whisper loop on the clips tried
FULL_WINDOW_FRAMES = 3000  # Whisper's trained 30 s window
PAD_S = 0.2  # audio kept around each voiced span (the VAD cuts tightly)

LANGUAGE_NAMES = {"zh": "Chinese", "en": "English", "yue": "Cantonese", "ja": "Japanese", "ko": "Korean",
                  "fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
                  "ru": "Russian", "ar": "Arabic", "hi": "Hindi", "nl": "Dutch", "tr": "Turkish", "vi": "Vietnamese"}
"""Whisper language codes -> English names for the clues (other codes are shown as they are)."""


@dataclass
class Recognised:
    """What Whisper made of the voiced audio of one clip.

    Attributes:
        text: the transcript, chunks joined by a space.
        language: the detected language code ("zh"), or "en" for an English-only model (see language_checked).
        language_probability: the model's probability of that language (1.0 for an English-only model).
        language_checked: False when an English-only model transcribed and nothing identified the language.
        avg_logprob: the token-weighted mean log-probability of the decoded tokens.
        no_speech_prob: Whisper's probability that a window holds no speech (the highest over the chunks).
        compression_ratio: the text's length over its gzip length (Whisper's loop signal, > 2.4 is a loop).
        multilingual: whether the model knows other languages than English.
        chunks: per chunk of speech: its span, text, language and Whisper's scores.
    """

    text: str
    language: str
    language_probability: float
    language_checked: bool
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    multilingual: bool = True
    chunks: list[dict[str, Any]] = field(default_factory=list)


def chunks_of(spans: list[tuple[float, float]], duration: float) -> list[tuple[float, float]]:
    """Voiced spans (s) -> padded chunks of at most MAX_CHUNK_S, neighbours merged while they fit."""
    out: list[list[float]] = []
    for start, end in spans:
        start, end = max(0.0, start - PAD_S), min(duration, end + PAD_S)
        while end - start > MAX_CHUNK_S:  # one long span: cut hard
            out.append([start, start + MAX_CHUNK_S])
            start += MAX_CHUNK_S
        if out and end - out[-1][0] <= MAX_CHUNK_S:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(a, b) for a, b in out if b > a]


def window_frames(n_frames: int) -> int:
    """The encoder window for a chunk of `n_frames` mel frames: twice the chunk, 10 s at least, 30 s at most."""
    wanted = max(MIN_WINDOW_FRAMES, 2 * n_frames)
    return int(min(FULL_WINDOW_FRAMES, -(-wanted // 500) * 500))


def detect_language(model: Any, audio: np.ndarray) -> tuple[str, float]:
    """The most likely language of `audio` (16 kHz) by a multilingual Whisper, and its probability."""
    from faster_whisper.audio import pad_or_trim

    features = model.feature_extractor(audio)
    encoded = model.encode(pad_or_trim(features, window_frames(features.shape[-1])))
    token, probability = model.model.detect_language(encoded)[0][0]
    return token[2:-2], float(probability)


def recognise(model: Any, audio: np.ndarray, spans: list[tuple[float, float]], *, beam_size: int = 2,
              language_model: Any = None) -> Recognised:
    """Transcribe the voiced `spans` of `audio` (16 kHz float32) with a faster-whisper WhisperModel.

    Args:
        language_model: a multilingual WhisperModel that identifies the language when `model` is English-only
            (None: the language is taken as English, unchecked).
    """
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    multilingual = bool(model.model.is_multilingual)
    duration = audio.shape[0] / RATE
    texts, chunks, weighted_logprob, tokens_total, votes = [], [], 0.0, 0, {}
    for start, end in chunks_of(spans, duration):
        piece = audio[int(start * RATE):int(end * RATE)]
        features = model.feature_extractor(piece)
        encoded = model.encode(pad_or_trim(features, window_frames(features.shape[-1])))
        if multilingual:
            token, probability = model.model.detect_language(encoded)[0][0]
            language, probability = token[2:-2], float(probability)
        elif language_model is not None:
            language, probability = detect_language(language_model, piece)
        else:
            language, probability = "en", 1.0
        tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task="transcribe",
                              language=language if multilingual else "en")
        prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
        result = model.model.generate(encoded, [prompt], beam_size=beam_size, return_scores=True,
                                      return_no_speech_prob=True, max_length=224, suppress_blank=True,
                                      suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1])))[0]
        ids = [i for i in result.sequences_ids[0] if i < tokenizer.eot]
        text = tokenizer.decode(ids).strip()
        logprob = float(result.scores[0]) * len(ids) / (len(ids) + 1)  # as faster-whisper: length-normalised
        weighted_logprob += logprob * max(1, len(ids))
        tokens_total += max(1, len(ids))
        votes[language] = votes.get(language, 0.0) + probability * (end - start)
        texts.append(text)
        chunks.append({"start": round(start, 3), "end": round(end, 3), "text": text, "language": language,
                       "language_probability": round(probability, 4), "avg_logprob": round(logprob, 4),
                       "no_speech_prob": round(float(result.no_speech_prob), 4)})
    text = " ".join(t for t in texts if t)
    language = max(votes, key=votes.get) if votes else ""
    spoken = sum(c["end"] - c["start"] for c in chunks if c["language"] == language) or 1.0
    return Recognised(
        text=text, language=language, language_probability=votes.get(language, 0.0) / spoken,
        language_checked=multilingual or language_model is not None,
        avg_logprob=weighted_logprob / tokens_total if tokens_total else 0.0,
        no_speech_prob=max((c["no_speech_prob"] for c in chunks), default=1.0),
        compression_ratio=compression_ratio(text), multilingual=multilingual, chunks=chunks)


def compression_ratio(text: str) -> float:
    """Whisper's loop signal: UTF-8 length over zlib-compressed length."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


_UNITS = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|[^\W_]+")
"""A word of letters or digits, or one CJK character (Chinese, Japanese and Korean are written without spaces)."""


def repetition_loop(text: str, max_n: int = 12) -> str | None:
    """The repeated unit when `text` holds a loop, else None.

    A loop: one word said 4 times in a row ("wam-wam-wam-wam"; a single CJK character needs 5, since laughter
    is written 哈哈哈哈), or a phrase of 2..max_n units said 3 times in a row.
    """
    units = [u.lower() for u in _UNITS.findall(text)]
    for n in range(1, max_n + 1):
        for start in range(len(units) - n):
            phrase = units[start:start + n]
            times = 1
            while units[start + times * n:start + (times + 1) * n] == phrase:
                times += 1
            need = 3 if n > 1 else (5 if len(phrase[0]) == 1 and not phrase[0].isascii() else 4)
            if times >= need:
                return " ".join(phrase)
    return None


def verdict(result: Recognised, *, min_language_probability: float, languages: tuple[str, ...] | None,
            max_compression_ratio: float, min_avg_logprob: float, max_no_speech_prob: float) -> tuple[str, str]:
    """(reason, detail) when the model does not vouch for `result`, else ("", "").

    Reasons: "language" (unsure of the language, or one outside `languages`), "repetition", "no_speech"
    (Whisper's own rule: likely no speech and a low log-probability), "low_confidence" (a low log-probability),
    "empty".
    """
    if not result.text.strip():
        return "empty", "the model wrote nothing"
    name = LANGUAGE_NAMES.get(result.language, result.language)
    if result.language_probability < min_language_probability:
        return "language", f"unsure of the language ({name} at probability {result.language_probability:.2f})"
    if not result.multilingual and result.language != "en":
        return "language", f"{name} speech, but the model knows only English"
    if languages is not None and result.language not in languages:
        return "language", f"{name} is not one of {', '.join(languages)}"
    loop = repetition_loop(result.text)
    if loop is not None or result.compression_ratio > max_compression_ratio:
        return "repetition", (f"'{loop}' over and over" if loop else
                              f"compression ratio {result.compression_ratio:.2f}")
    if result.no_speech_prob > max_no_speech_prob and result.avg_logprob < min_avg_logprob:
        return "no_speech", f"no-speech probability {result.no_speech_prob:.2f} with a low log-probability"
    if result.avg_logprob < min_avg_logprob:
        return "low_confidence", f"average log-probability {result.avg_logprob:.2f}"
    return "", ""
