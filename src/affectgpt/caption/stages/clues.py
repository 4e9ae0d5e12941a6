"""Clue generation through a multimodal backend (harness): one modality of the clip plus the instruction, per clip.

The acoustic and visual stages share this. The config names `backend` (openai, transformers or affectgpt; the
offline `perception` choice is handled by each stage itself) and its `options` (the harness backend's keyword
arguments: base_url and model for openai, a model folder for transformers, a checkpoint for affectgpt). The
stage decides what is sent, as the paper did: the acoustic stage sends the audio only, the visual stage the
frames or face crops only, each with the instruction (and, with `with_subtitle: true`, the default, the subtitle
in it); so `modalities` and `visual` are not backend options here. AffectGPT is the exception: it reads its
whole clip (frames or faces and audio) by its own protocol and ignores the instruction (recorded in the info).

A backend error on one clip (a server that still fails after its retries, a clip it cannot encode) drops the
clip with a reason that starts with common.BACKEND_ERROR; the engine does not log such drops
(engine.RETRIED_DROPS), so a rerun asks the backend again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from affectgpt.caption.base import StageContext, StageResult
from affectgpt.caption.stages.common import BACKEND_ERROR, flag, resource, section
from affectgpt.errors import InputError

MULTIMODAL = ("openai", "transformers", "affectgpt")
CHOSEN_BY_STAGE = ("modalities", "visual")
DEFAULTS: dict[str, Any] = {"backend": "perception", "options": {}, "prompt": None, "prompt_file": None,
                            "with_subtitle": True}
"""The options the two clue stages share (`prompt` None: the stage's template, caption/prompts.py)."""


def check_clues(stage: str, config: Mapping[str, Any], known: Mapping[str, Any]) -> None:
    """InputError for an unknown key or backend, an option the stage decides, or an unknown prompt (nothing is
    built)."""
    from affectgpt.caption.prompts import stage_prompt
    from affectgpt.caption.stages.common import check_config

    check_config("", config, known)
    backend_name(stage, config)
    chosen = [key for key in CHOSEN_BY_STAGE if key in section(config, "options")]
    if chosen:
        raise InputError(f"{chosen[0]!r} is chosen by the {stage} stage, not by the backend options",
                         field=f"options.{chosen[0]}",
                         fix="leave it out (use `input: faces|frames` for the visual stage's pictures)")
    flag(config, "with_subtitle", "", True)
    stage_prompt(stage, config)


def backend_name(stage: str, config: Mapping[str, Any]) -> str:
    """The configured backend: perception or one of MULTIMODAL (InputError with the closest name otherwise)."""
    name = str(config.get("backend", "perception"))
    choices = ["perception", *MULTIMODAL]
    if name not in choices:
        from affectgpt.registry import unknown_name

        error = unknown_name(f"{stage} backend", name, choices)
        raise InputError(error.what, field="backend", fix=error.fix)
    return name


def multimodal_backend(stage: str, config: Mapping[str, Any], context: StageContext, media: str,
                       visual: str | None = None) -> Any:
    """The harness backend the config names, built once per worker, sending only `media` ("audio" or "image")
    and the instruction (see the module docstring)."""
    name = backend_name(stage, config)
    options = section(config, "options")
    if name != "affectgpt":
        options["modalities"] = [media, *(["text"] if flag(config, "with_subtitle", "", True) else [])]
        if visual is not None:
            options["visual"] = visual
    return resource(context, stage, {"backend": name, **options}, lambda: _build(stage, name, options))


def _build(stage: str, name: str, options: dict[str, Any]) -> Any:
    from affectgpt.harness.backends import build_backend

    try:
        return build_backend(name, **options)
    except TypeError as exc:  # an option the backend does not take
        raise InputError(f"bad option for the {name} backend: {exc}", field="options",
                         fix="see affectgpt.harness.backends for its options") from exc


def ask(backend: Any, clip: Any, prompt: Any, field: str) -> StageResult:
    """One job for `clip` with `prompt`: the answer as `field`, or the clip dropped with the backend's error."""
    from affectgpt.harness.base import Job

    try:
        [output] = backend.answer([Job(clip, prompt)])
    except Exception as exc:  # a backend that raises for one clip must not stop the run
        from affectgpt.errors import failure_reason

        return StageResult(dropped=BACKEND_ERROR + failure_reason(exc),
                           info={"backend": backend.name, "prompt": prompt.id})
    info = {"backend": backend.name, "model": output.model, "prompt": prompt.id, "cached": output.cached,
            "seconds": round(float(output.seconds), 4)}
    if backend.name == "affectgpt":
        info["inputs"] = "the whole clip (AffectGPT reads frames or faces and audio; the instruction is not sent)"
    if output.error is not None or output.text is None:
        return StageResult(dropped=BACKEND_ERROR + str(output.error), info=info)
    return StageResult({field: output.text.strip()}, info=info)
