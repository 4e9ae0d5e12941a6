"""Stage 3, acoustic clues: what the voice sounds like, from the clip's audio alone, as English text.

Config `backend`:
- `perception` (the default, offline): the perception layer's speech and voice readings of the probe's WAV:
  where speech is (the Silero VAD of the speech perceiver, same settings) and the voice perceiver's prosody clues
  (pitch, range, loudness, pace, pauses, an arousal hint), joined as sentences. No speech recognition runs here
  (what is said is the subtitle stage's job), and no face or text perceiver.
- `openai`, `transformers` or `affectgpt` (a harness multimodal backend with its `options`): the audio only, and
  the "acoustic/v1" instruction (caption/prompts.py; `prompt` or `prompt_file` to change it), see clues.py.
A clip without audio gets "The clip has no audio." without asking any backend.

Fields: {"acoustic_clues": str}; info: backend, model, prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from affectgpt.caption.base import StageContext, StageResult
from affectgpt.caption.stages.clues import DEFAULTS, ask, backend_name, check_clues, multimodal_backend
from affectgpt.caption.stages.common import absolute, clip_name, read_wav, subtitle_text

NO_AUDIO = "The clip has no audio."


class Acoustic:
    """Stage 3 (see the module docstring)."""

    name = "acoustic"
    version = "1"
    scope = "clip"
    reads = ("media_sha", "audio_file", "video_file", "subtitle")
    writes = ("acoustic_clues",)
    defaults = DEFAULTS

    def check(self, config: Mapping[str, Any]) -> None:
        check_clues(self.name, config, DEFAULTS)

    def __call__(self, fields: Mapping[str, Any], context: StageContext) -> StageResult:
        config = {**DEFAULTS, **context.config}
        self.check(config)
        backend = backend_name(self.name, config)
        output = Path(context.output)
        if not fields.get("audio_file"):
            return StageResult({"acoustic_clues": NO_AUDIO}, info={"backend": backend, "skipped": "no audio"})
        wav = absolute(fields["audio_file"], output)
        if backend == "perception":
            return StageResult({"acoustic_clues": perceive(read_wav(wav))},
                               info={"backend": "perception", "model": "speech-vad+voice-prosody"})
        from affectgpt.caption.prompts import stage_prompt
        from affectgpt.harness.base import ClipInputs

        model = multimodal_backend(self.name, config, context, "audio")
        clip = ClipInputs(name=clip_name(fields), video=absolute(fields["video_file"], output), audio=read_wav(wav),
                          subtitle=subtitle_text(fields), audio_file=wav)
        return ask(model, clip, stage_prompt(self.name, config), "acoustic_clues")


def perceive(audio: Any, rate: int = 16000) -> str:
    """The speech-activity and prosody clues of a 16 kHz mono waveform, as sentences (see the module docstring)."""
    from affectgpt.perception.base import Clue, Reading, Scene
    from affectgpt.perception.speech import voice_activity
    from affectgpt.perception.voice import VoicePerceiver

    duration = len(audio) / rate
    scene = Scene(name="clip", audio=audio, duration=duration)
    spans = voice_activity(audio)
    scene.speech_segments = spans
    speech = Reading("speech")  # the VAD ran: the voice perceiver reads its spans as the voice
    voiced = sum(end - start for start, end in spans)
    speech.clues.append(Clue("speech", f"The person speaks for {voiced:.1f} s of the {duration:.1f} s clip."
                             if spans else "No speech is heard.", 0.8))
    scene.readings["speech"] = speech
    voice = VoicePerceiver()(scene)
    return " ".join(_sentence(c.text) for c in [*speech.clues, *voice.clues])


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?", '"')) else text + "."
