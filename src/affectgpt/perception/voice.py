"""The voice perceiver: prosody (pitch, loudness, pace, pauses) as clue sentences, and a weak arousal hint.

Measured with numpy (prosody.py) on the voiced part of the clip: the speech perceiver's VAD spans when it ran,
else an energy gate. Each clue compares the clip with itself (start vs end, the final pitch vs the median) or
with the typical values below. Prosody says little about which emotion: the emotions are a coarse arousal hint,
given only when several cues agree, at weight <= 0.15.
"""

from __future__ import annotations

import itertools

import numpy as np

from affectgpt.perception.base import EMOTIONS, Clue, Reading, Scene, normalised
from affectgpt.perception.prosody import (
    HOP_S,
    active_mask,
    clean_pitch,
    loudness_db,
    pitch_track,
    spans_of,
    syllable_peaks,
)
from affectgpt.perception.speech import RATE, audio_16k

# Typical values the clues compare with.
LOW_PITCH_HZ, HIGH_PITCH_HZ = 85.0, 255.0  # adult speaking f0: men about 85-155 Hz, women about 165-255 Hz
NARROW_RANGE_ST, WIDE_RANGE_ST = 3.0, 10.0  # 10th-90th percentile pitch spread of conversational speech
QUIET_DB, LOUD_DB = -35.0, -15.0  # median RMS of speech frames in a recording (broadcast speech sits near -23)
LOUDER_DB = 6.0  # start vs end change that counts (a doubling of loudness is about 10 dB)
SLOW_RATE, FAST_RATE = 3.0, 6.5  # syllables per second of speaking time; conversational speech is about 4-6
PAUSE_S, LONG_PAUSE_S = 0.2, 1.0  # a silence inside speech of at least 0.2 s is a pause; 1 s or more is long
CONTOUR_ST_PER_S, CONTOUR_ST = 1.5, 2.0  # a rise/fall over the clip: this slope and this total change
END_ST = 3.0  # final 0.25 s of voicing this far above/below the clip's median pitch: rises/falls at the end
END_S = 0.25
MIN_PITCH_S = 0.2  # fewer voiced frames than this: no pitch clues
MIN_RATE_S = 1.0  # less speaking time than this: no speaking-rate clue

HIGH_AROUSAL = {"angry": 0.3, "happy": 0.3, "surprise": 0.3, "worried": 0.1}
LOW_AROUSAL = {"sad": 0.5, "neutral": 0.4, "worried": 0.1}


class VoicePerceiver:
    """Prosody clues per clip. No model: nothing to load."""

    modality = "voice"

    def __call__(self, scene: Scene) -> Reading:
        reading = Reading(self.modality)
        audio = audio_16k(scene)
        if audio is None:
            reading.flags.append("no_audio")
            return reading
        db = loudness_db(audio, RATE)
        times = np.arange(db.shape[0]) * HOP_S
        f0 = clean_pitch(pitch_track(audio, RATE)[0][: db.shape[0]])
        if "speech" in scene.readings or scene.speech_segments:  # the VAD ran: its spans are the voice
            spans = [(float(a), float(b)) for a, b in scene.speech_segments]
            inside = np.zeros(db.shape[0], dtype=bool)
            for start, end in spans:
                inside |= (times >= start) & (times < end)
            active = inside & active_mask(db)
        else:
            active = active_mask(db, np.isfinite(f0))
            spans = spans_of(active)
        speaking = sum(end - start for start, end in spans)
        if active.sum() * HOP_S < 0.1 or not spans:
            reading.flags.append("no_speech")
            return reading
        figures = reading.figures
        figures.update(speaking_seconds=round(speaking, 3), spans=len(spans))
        self._loudness(db, active, reading)
        self._pauses(spans, reading)
        self._rate(db, active, speaking, reading)
        voiced = active[: f0.shape[0]] & np.isfinite(f0)
        figures["voiced_pitch_seconds"] = round(float(voiced.sum() * HOP_S), 3)
        if voiced.sum() * HOP_S < MIN_PITCH_S:
            reading.flags.append("no_pitch")
        else:
            self._pitch(f0[voiced], times[: f0.shape[0]][voiced], reading)
        self._arousal(reading)
        return reading

    def _confidence(self, reading: Reading, cap: float = 0.8) -> float:
        seconds = reading.figures.get("voiced_pitch_seconds", reading.figures["speaking_seconds"])
        return round(min(cap, 0.3 + 0.25 * seconds), 2)

    def _pitch(self, f0: np.ndarray, times: np.ndarray, reading: Reading) -> None:
        median = float(np.median(f0))
        p10, p90 = np.percentile(f0, [10, 90])
        spread = 12 * np.log2(p90 / p10)
        tones = 12 * np.log2(f0 / median)
        slope = float(np.polyfit(times, tones, 1)[0]) if np.ptp(times) > 0 else 0.0
        change = slope * float(np.ptp(times))
        tail = times >= times[-1] - END_S
        end = float(np.median(tones[tail]))
        contour = ("rising" if slope >= CONTOUR_ST_PER_S and change >= CONTOUR_ST else
                   "falling" if slope <= -CONTOUR_ST_PER_S and change <= -CONTOUR_ST else "level")
        ending = "rise" if end >= END_ST else "fall" if end <= -END_ST else "level"
        reading.figures.update(pitch_median_hz=round(median, 1), pitch_p10_hz=round(float(p10), 1),
                               pitch_p90_hz=round(float(p90), 1), pitch_range_st=round(float(spread), 2),
                               pitch_slope_st_per_s=round(slope, 3), pitch_change_st=round(change, 2),
                               pitch_end_st=round(end, 2), pitch_contour=contour, pitch_end=ending)
        sure = self._confidence(reading)
        level = ("high-pitched" if median > HIGH_PITCH_HZ else "low-pitched" if median < LOW_PITCH_HZ
                 else "of ordinary pitch")
        spread_word = ("a wide pitch range" if spread > WIDE_RANGE_ST else "a narrow, almost monotone pitch range"
                       if spread < NARROW_RANGE_ST else "a moderate pitch range")
        self._add(reading, f"The voice is {level} (median {median:.0f} Hz; typical speaking pitch is "
                           f"{LOW_PITCH_HZ:.0f}-{HIGH_PITCH_HZ:.0f} Hz), with {spread_word} ({spread:.1f} semitones; "
                           f"typical {NARROW_RANGE_ST:.0f}-{WIDE_RANGE_ST:.0f}).", sure)
        if contour != "level":
            self._add(reading, f"The pitch is {contour} over the clip ({change:+.1f} semitones).", sure)
        if ending != "level":
            self._add(reading, f"The pitch {ending}s at the end ({end:+.1f} semitones from its median).", sure)

    def _loudness(self, db: np.ndarray, active: np.ndarray, reading: Reading) -> None:
        levels = db[active]
        third = max(1, levels.shape[0] // 3)
        change = float(np.median(levels[-third:]) - np.median(levels[:third]))
        median = float(np.median(levels))
        reading.figures.update(loudness_median_dbfs=round(median, 2), loudness_std_db=round(float(levels.std()), 2),
                               loudness_change_db=round(change, 2), loudness_peak_dbfs=round(float(levels.max()), 2))
        word = "loud" if median > LOUD_DB else "quiet" if median < QUIET_DB else "at an ordinary level"
        self._add(reading, f"The voice is {word} (median {median:.0f} dBFS; typical recordings "
                           f"{QUIET_DB:.0f} to {LOUD_DB:.0f}).", 0.6)
        if abs(change) >= LOUDER_DB:
            word = "louder" if change > 0 else "softer"
            self._add(reading, f"The voice is {word} at the end than at the start ({change:+.0f} dB).", 0.7)

    def _pauses(self, spans: list[tuple[float, float]], reading: Reading) -> None:
        gaps = [b[0] - a[1] for a, b in itertools.pairwise(spans) if b[0] - a[1] >= PAUSE_S]
        longest = max(gaps, default=0.0)
        reading.figures.update(pauses=len(gaps), pause_seconds=round(float(sum(gaps)), 3),
                               longest_pause_s=round(float(longest), 3))
        if longest >= LONG_PAUSE_S:
            self._add(reading, f"There are long pauses (the longest {longest:.1f} s; pauses over "
                               f"{LONG_PAUSE_S:.0f} s are long).", 0.7)
        elif gaps:
            self._add(reading, f"The speech has {len(gaps)} short pause{'s' if len(gaps) > 1 else ''}.", 0.5)
        elif reading.figures["speaking_seconds"] >= 2.0:
            self._add(reading, "The speech flows without pauses.", 0.5)

    def _rate(self, db: np.ndarray, active: np.ndarray, speaking: float, reading: Reading) -> None:
        peaks = syllable_peaks(db, active)
        reading.figures["syllable_peaks"] = peaks
        if speaking < MIN_RATE_S:
            return
        rate = peaks / speaking
        reading.figures["speaking_rate_per_s"] = round(rate, 2)
        word = "quickly" if rate > FAST_RATE else "slowly" if rate < SLOW_RATE else "at an ordinary pace"
        self._add(reading, f"The person speaks {word} ({rate:.1f} syllable-like beats per second; typical "
                           f"{SLOW_RATE:.0f}-{FAST_RATE:.1f}).", 0.5)

    def _arousal(self, reading: Reading) -> None:
        """A coarse arousal hint when at least two cues agree and none disagrees (weight 0.10-0.15)."""
        f = reading.figures
        high = [f.get("loudness_median_dbfs", -99) > LOUD_DB, f.get("pitch_range_st", 0) > WIDE_RANGE_ST,
                f.get("speaking_rate_per_s", 0) > FAST_RATE, f.get("pitch_median_hz", 0) > HIGH_PITCH_HZ + 25]
        low = [f.get("loudness_median_dbfs", 0) < QUIET_DB, f.get("pitch_range_st", 99) < NARROW_RANGE_ST,
               f.get("speaking_rate_per_s", 99) < SLOW_RATE]
        f.update(high_arousal_cues=int(sum(high)), low_arousal_cues=int(sum(low)))
        if sum(high) >= 2 and not any(low):
            hint, cues, word = HIGH_AROUSAL, sum(high), "aroused (loud, lively or fast)"
        elif sum(low) >= 2 and not any(high):
            hint, cues, word = LOW_AROUSAL, sum(low), "subdued (quiet, flat or slow)"
        else:
            return
        reading.emotions = normalised(hint, EMOTIONS)
        reading.weight = min(0.15, 0.05 * cues)
        f["arousal"] = "high" if hint is HIGH_AROUSAL else "low"
        self._add(reading, f"Taken together, the voice sounds {word}.", 0.4)

    def _add(self, reading: Reading, text: str, confidence: float) -> None:
        reading.clues.append(Clue(self.modality, text, confidence))
