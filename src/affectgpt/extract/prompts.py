"""The extraction prompts of the published protocol, as versioned templates (our wording of its content).

The published protocol asks an instruction-tuned LLM, as an emotion expert, for the main character's clearly
identifiable emotional states as a bracketed, comma-separated list (empty when none), with two inline
examples; then, given that list, for the most likely of positive / negative / neutral, answered directly,
with two examples (shared/spec/mer-unibench.md, "Extraction"). A template's id is part of every cache key
and result, so a changed wording never reuses old answers. Users can supply their own template file
(`{text}` / `{labels}` placeholders); its id is then derived from its SHA-256.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from affectgpt.errors import InputError
from affectgpt.io.limits import not_utf8


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """A prompt with one placeholder.

    Attributes:
        id: name and version, e.g. "ov-labels/v1"; part of the cache key.
        placeholder: "text" (a description) or "labels" (a bracketed word list).
        template: the user message, with `{text}` or `{labels}`.
    """

    id: str
    placeholder: str
    template: str

    def render(self, value: str) -> str:
        return self.template.replace("{" + self.placeholder + "}", value)


OV_LABELS_V1 = PromptTemplate("ov-labels/v1", "text", (
    "You are an expert in emotion analysis. Below are clues about a person in a video. From these clues, "
    "identify the emotional states of the main character that can be clearly recognised. Answer with the "
    "emotion words only, separated by commas and enclosed in square brackets. If no emotional state can be "
    "recognised, answer with an empty list [].\n"
    "Example 1 - clues: \"We cannot recognize his emotional state.\" Answer: []\n"
    "Example 2 - clues: \"His emotional state is happy, sad, and angry.\" Answer: [happy, sad, angry]\n"
    "Clues: \"{text}\"\n"
    "Answer:"))

SENTIMENT_V1 = PromptTemplate("sentiment/v1", "labels", (
    "You are an expert in emotion analysis. Here are the emotional states recognised for a person: {labels}. "
    "Which of positive, negative or neutral is the person's overall sentiment most likely to be? Answer with "
    "exactly one of these three words and nothing else.\n"
    "Example 1 - emotional states: [joyful]. Answer: positive\n"
    "Example 2 - emotional states: []. Answer: neutral\n"
    "Answer:"))

PROMPTS = {p.id: p for p in (OV_LABELS_V1, SENTIMENT_V1)}


def load_template(path: str | Path, placeholder: str) -> PromptTemplate:
    """A user template from a file; it must contain `{text}` (labels step) or `{labels}` (sentiment step)."""
    path = Path(path)
    try:
        template = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except OSError as exc:
        raise InputError(f"cannot read the prompt file ({exc})", path=path, fix="pass a UTF-8 text file") from exc
    marker = "{" + placeholder + "}"
    if marker not in template:
        raise InputError(f"the template has no {marker} placeholder", path=path, field=marker,
                         fix=f"write {marker} where the input should go")
    digest = hashlib.sha256(template.encode("utf-8")).hexdigest()[:12]
    return PromptTemplate(f"custom-{placeholder}/{digest}", placeholder, template)
