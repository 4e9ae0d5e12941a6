"""Stage 5, merge: the acoustic clues, visual clues and subtitle -> one emotion description (MER-Caption's `reason`).

Config `backend`:
- `template` (the default, offline): template_merge.py, deterministic, from the three texts alone.
- `openai` or `transformers`: a chat backend of affectgpt.llm (`options`: base_url, model, api_key, concurrency,
  timeout, max_retries... for openai; model_path, device, dtype, batch_size for transformers) receives the
  "merge/v1" instruction (caption/prompts.py; `prompt` or `prompt_file` to change it) with the three inputs, as
  one user message. Decoding is greedy by default (`sampling: {temperature, top_p, repetition_penalty,
  max_tokens, seed}` to change it), so a rerun asks the same question and the answer cache (`cache: true`, the
  per-user file; a path; or false) answers it without sending anything.
A request that fails after the backend's retries drops the clip with "backend_error: <reason>" (common.py).

Fields: {"description": str}; info: backend, model, prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from affectgpt.caption.base import StageContext, StageResult
from affectgpt.caption.stages.common import BACKEND_ERROR, check_config, resource, section, subtitle_text
from affectgpt.errors import InputError

BACKENDS = ("template", "openai", "transformers")
DEFAULTS: dict[str, Any] = {"backend": "template", "options": {}, "prompt": None, "prompt_file": None,
                            "sampling": {}, "cache": True}
GREEDY = {"temperature": 0.0, "top_p": 1.0, "repetition_penalty": 1.0, "max_tokens": 512, "seed": 0}


class Merge:
    """Stage 5 (see the module docstring)."""

    name = "merge"
    version = "1"
    scope = "clip"
    reads = ("acoustic_clues", "visual_clues", "subtitle")
    writes = ("description",)
    defaults = DEFAULTS

    def check(self, config: Mapping[str, Any]) -> None:
        """InputError for an unknown key or backend, bad sampling settings or a prompt without its placeholders."""
        from affectgpt.caption.prompts import stage_prompt

        check_config("", config, DEFAULTS)
        backend = str(config.get("backend", "template"))
        if backend not in BACKENDS:
            from affectgpt.registry import unknown_name

            error = unknown_name("merge backend", backend, list(BACKENDS))
            raise InputError(error.what, field="backend", fix=error.fix)
        section(config, "options")
        sampling(config)
        stage_prompt(self.name, config)

    def __call__(self, fields: Mapping[str, Any], context: StageContext) -> StageResult:
        config = {**DEFAULTS, **context.config}
        self.check(config)
        backend = str(config["backend"])
        acoustic = str(fields.get("acoustic_clues") or "")
        visual = str(fields.get("visual_clues") or "")
        subtitle = subtitle_text(fields)
        if backend == "template":
            from affectgpt.caption.stages.template_merge import VERSION, merge_description

            return StageResult({"description": merge_description(acoustic, visual, subtitle)},
                               info={"backend": "template", "model": VERSION, "prompt": None})
        from affectgpt.caption.prompts import render_merge, stage_prompt
        from affectgpt.llm.base import ChatRequest, Message

        prompt = stage_prompt(self.name, config)
        chat = resource(context, self.name, {k: config.get(k) for k in ("backend", "options", "cache")},
                        lambda: chat_backend(backend, config))
        text = render_merge(prompt, acoustic=acoustic, visual=visual, subtitle=subtitle)
        request = ChatRequest((Message("user", text),), sampling(config), tag=prompt.id)
        try:
            [completion] = chat.complete([request])
        except Exception as exc:  # a backend that raises for one clip must not stop the run
            from affectgpt.errors import failure_reason

            return StageResult(dropped=BACKEND_ERROR + failure_reason(exc),
                               info={"backend": backend, "prompt": prompt.id})
        info = {"backend": backend, "model": completion.model or str(getattr(chat, "model", "")),
                "prompt": prompt.id, "cached": completion.cached}
        if not completion.ok or not str(completion.text).strip():
            return StageResult(dropped=BACKEND_ERROR + (completion.error or "empty answer"), info=info)
        return StageResult({"description": str(completion.text).strip()}, info=info)


def sampling(config: Mapping[str, Any]) -> Any:
    """The decoding settings: GREEDY updated with the config's `sampling`."""
    from affectgpt.llm.base import Sampling

    given = section(config, "sampling")
    unknown = sorted(set(given) - set(GREEDY))
    if unknown:
        raise InputError(f"unknown sampling setting {unknown[0]!r}", field="sampling",
                         fix=f"choose among {', '.join(GREEDY)}")
    try:
        return Sampling(**{**GREEDY, **given})
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc), field="sampling") from exc


def chat_backend(name: str, config: Mapping[str, Any]) -> Any:
    """The chat backend `name` built from the config's `options`, wrapped in the answer cache unless `cache:
    false`."""
    from affectgpt.llm import BACKENDS as CHAT

    options = section(config, "options")
    try:
        backend = CHAT.get(name)(**options)
    except TypeError as exc:  # an option the backend does not take
        raise InputError(f"bad option for the {name} chat backend: {exc}", field="options",
                         fix="see affectgpt.llm for its options (openai: base_url, model...; transformers: "
                             "model_path...)") from exc
    cache = config.get("cache", True)
    if cache is False:
        return backend
    from affectgpt.llm.cache import CachedBackend

    return CachedBackend(backend, None if cache is True else cache)
