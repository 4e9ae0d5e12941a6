"""The versioned instructions of the caption stages: acoustic clues, visual clues, and the merge into a description.

An id names one text forever ("merge/v1"): changing the wording means a new version, so the stage keys (which
hold the id through the stage config) and the LLM cache (which holds the text) both change with it. A stage
config picks a template with `prompt: <id>` or the user's own file with `prompt_file: PATH` (its id is
`file:<sha256 prefix>`, harness.prompts.prompt_from_file).

The clue templates follow the spec's stage 1 (what an audio LLM and a video LLM were asked about) and take
`{subtitle}` (harness.prompts.render puts "The subtitle of this video is: ..." there, or nothing). The merge
template follows the spec's stage 2 in our own words and takes `{acoustic}`, `{visual}` and `{subtitle}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from affectgpt.errors import InputError
from affectgpt.harness.base import Prompt

TEMPLATES: dict[str, str] = {
    "acoustic/v1": (
        "{subtitle}Listen to the speaker's voice in this audio. Describe the acoustic clues: the tone, the pitch "
        "and how it moves, the loudness, the speaking speed, the pauses and any sighs or laughter. Then say what "
        "these clues suggest about the speaker's emotional state. Describe only what can be heard."),
    "visual/v1": (
        "{subtitle}Watch the person in these frames, in order. Describe the visual clues over time: the facial "
        "expression and how it changes, the gaze, head and body movements, gestures, and the scene around the "
        "person. Then say what these clues suggest about the person's emotional state. Describe only what can "
        "be seen."),
    "merge/v1": (
        "You are an expert in emotion analysis. Below are acoustic clues and visual clues that may be related "
        "to the emotional state of the character in a video clip, and the subtitle of what the character says. "
        "Some clues may be wrong or have nothing to do with emotion.\n"
        "Acoustic clues: {acoustic}\n"
        "Visual clues: {visual}\n"
        "Subtitle: {subtitle}\n"
        "Analyse which of these clues allow you to infer the character's emotional state and explain why, "
        "bringing the text, audio and visual clues together into one description. End with the emotional "
        "states the character most likely feels."),
}
"""Template id -> text. Add a new id for a new wording; never edit a published one."""

DEFAULTS: dict[str, str] = {"acoustic": "acoustic/v1", "visual": "visual/v1", "merge": "merge/v1"}
"""The template each stage uses when its config names none."""

MERGE_FIELDS = ("acoustic", "visual", "subtitle")
NONE_GIVEN = "(none)"
"""What the merge instruction says for a clue or subtitle that is empty."""


def get_template(name: str) -> Prompt:
    """A template by id, or an InputError naming the closest id."""
    if name not in TEMPLATES:
        from affectgpt.registry import unknown_name

        raise unknown_name("caption prompt", name, sorted(TEMPLATES))
    return Prompt(name, TEMPLATES[name])


def stage_prompt(stage: str, config: Mapping[str, Any]) -> Prompt:
    """The instruction a stage config asks for: `prompt_file` (the user's file), else `prompt` (an id), else the
    stage's default. A merge prompt must hold the three placeholders {acoustic}, {visual} and {subtitle}."""
    if config.get("prompt_file"):
        from affectgpt.harness.prompts import prompt_from_file

        prompt = prompt_from_file(config["prompt_file"])
    else:
        prompt = get_template(str(config.get("prompt") or DEFAULTS[stage]))
    if stage == "merge":
        missing = [f"{{{name}}}" for name in MERGE_FIELDS if f"{{{name}}}" not in prompt.text]
        if missing:
            raise InputError(f"the merge prompt {prompt.id} lacks {', '.join(missing)}", field="prompt",
                             fix="a merge instruction must place the acoustic clues, visual clues and subtitle")
    return prompt


def render_merge(prompt: Prompt, *, acoustic: str, visual: str, subtitle: str) -> str:
    """The merge instruction for one clip (an empty input reads NONE_GIVEN). The placeholders are replaced in one
    pass, so braces inside a clue or subtitle are kept as they are."""
    import re

    values = {"acoustic": acoustic, "visual": visual, "subtitle": subtitle}
    return re.sub(r"\{(acoustic|visual|subtitle)\}", lambda m: values[m.group(1)].strip() or NONE_GIVEN,
                  prompt.text)
