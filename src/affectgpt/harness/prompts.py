"""The instructions `bench run` sends: versioned templates of the paper's baseline protocol, or the user's own file.

A template's id is its name with its version ("emotion/v1"); changing a template's text means a new version, so an
id always names one text (the LLM cache and the provenance record it). `--prompt FILE` takes a text file; its id is
`file:<first 12 hex digits of its sha256>`. `{subtitle}` in a template is replaced by the clip's subtitle sentence
("The subtitle of this video is: ...") or by nothing when the clip has none.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from affectgpt.errors import InputError
from affectgpt.harness.base import Prompt

TEMPLATES: dict[str, str] = {
    "emotion/v1": "{subtitle}Please infer the person's emotional state and provide your reasoning process.",
    "ov-labels/v1": "{subtitle}Please recognize all possible emotional states of the character.",
}
"""The paper's two questions (the baselines were asked to infer the emotional state; OV tasks ask for all
possible emotional states), with the subtitle sentence in front when the clip has one."""

TASK_PROMPTS: dict[str, str] = {"basic": "emotion/v1", "sentiment": "emotion/v1", "ov": "ov-labels/v1"}
"""The template each task family of MER-UniBench uses by default."""

SUBTITLE_SENTENCE = "The subtitle of this video is: {text}\n"
MAX_PROMPT_BYTES = 64 * 1024


def get_prompt(name: str) -> Prompt:
    """A versioned template by id, or an InputError with the closest id."""
    from affectgpt.registry import unknown_name

    if name not in TEMPLATES:
        raise unknown_name("prompt", name, sorted(TEMPLATES))
    return Prompt(name, TEMPLATES[name])


def prompt_from_file(path: str | Path) -> Prompt:
    """The user's instruction file (UTF-8 text): its id is `file:<sha256 prefix>` of its bytes."""
    path = Path(path)
    if not path.is_file():
        raise InputError("prompt file not found", path=path, field="--prompt", fix="pass a text file")
    data = path.read_bytes()
    if len(data) > MAX_PROMPT_BYTES:
        raise InputError(f"prompt file larger than {MAX_PROMPT_BYTES} bytes", path=path, field="--prompt",
                         fix="an instruction is a few sentences")
    try:
        text = data.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise InputError("the prompt file is not UTF-8 text", path=path, field="--prompt",
                         fix="save it as UTF-8") from None
    if not text:
        raise InputError("the prompt file is empty", path=path, field="--prompt", fix="write the instruction")
    return Prompt("file:" + hashlib.sha256(data).hexdigest()[:12], text)


def render(prompt: Prompt, subtitle: str = "") -> str:
    """The instruction for one clip: `{subtitle}` becomes the subtitle sentence (or nothing); a template without
    the placeholder is sent as it is, with the subtitle sentence in front when there is a subtitle."""
    sentence = SUBTITLE_SENTENCE.format(text=subtitle.strip()) if subtitle and subtitle.strip() else ""
    if "{subtitle}" in prompt.text:
        return prompt.text.replace("{subtitle}", sentence)
    return sentence + prompt.text
