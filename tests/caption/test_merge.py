"""The merge stage: the offline template merger (deterministic, every clue kept, its conclusion's words), and a
chat backend through the loopback server (the merge/v1 instruction with the three inputs, the table's answer,
the answer cache, a failing server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from affectgpt.caption.base import StageContext
from affectgpt.caption.prompts import get_template, render_merge, stage_prompt
from affectgpt.caption.stages import STAGES
from affectgpt.caption.stages.template_merge import merge_description
from affectgpt.errors import InputError
from affectgpt.extract.lexicon_extractor import LexiconExtractor

ACOUSTIC = "The voice is loud (median -12 dBFS). Taken together, the voice sounds aroused (loud, lively or fast)."
VISUAL = "The person smiles at first, then frowns."
SUBTITLE = "I can't believe you did that!"
FIELDS = {"acoustic_clues": ACOUSTIC, "visual_clues": VISUAL,
          "subtitle": {"chinese": "", "english": SUBTITLE, "text": SUBTITLE, "source": "given"}}


def merge(fields: dict[str, Any], config: dict[str, Any] | None = None, resources: dict | None = None):
    stage = STAGES.get("merge")()
    section = {**stage.defaults, **(config or {})}
    stage.check(section)
    return stage(fields, StageContext(config=section, output=Path("."), resources={} if resources is None
                                      else resources))


def test_template_merge_is_deterministic_and_keeps_every_clue():
    first = merge(FIELDS)
    assert first.fields == merge(FIELDS).fields and first.info["backend"] == "template"
    text = first.fields["description"]
    assert f'the character says: "{SUBTITLE}"' in text
    assert ACOUSTIC in text and VISUAL in text  # every clue verbatim
    # cues: smiles -> happy, frowns -> displeased, sounds aroused -> excited (and the lexicon's aroused, lively)
    assert "The voice points to excited, aroused and lively." in text
    assert "The face points to happy and displeased." in text
    # the voice leans positive, the face negative (its later word, displeased, weighs more in the valence vote)
    assert text.endswith("Taken together, the character's emotional state is most likely excited, aroused and "
                         "lively. The voice and the face point in different directions.")


def test_template_merge_conclusion_ranks_words_named_by_more_sources():
    text = merge_description("The voice trembles; the speaker sounds nervous.", "The person looks nervous and sad.",
                             "I am so happy for you.")
    assert text.endswith("Taken together, the character's emotional state is most likely nervous, happy and sad. "
                         "The wording and the voice point in different directions.")


def test_template_merge_without_evidence_says_neutral_and_its_wording_names_no_emotion():
    empty = merge_description("", "", "")
    assert empty == ("Taken together, none of the clues names a clear feeling, so the character's emotional "
                     "state is most likely neutral.")
    extractor = LexiconExtractor()
    assert extractor.labels([empty])[0].words == ()
    plain = merge_description("The person speaks for 2.0 s of the 3.0 s clip.", "No face is visible.", "")
    assert extractor.labels([plain])[0].words == ()
    # the fixed phrases add no word of their own: only the clues' and the conclusion's words are extracted
    words = extractor.labels([merge_description("", "The person looks sad throughout.", "")])[0].words
    assert set(words) == {"sad"}


def test_merge_through_a_chat_server_sends_merge_v1_with_the_three_inputs(llm_server, tmp_path):
    llm_server.add_rule(VISUAL, "The character is startled and angry, as the loud voice and the frown show.")
    config = {"backend": "openai", "options": {"base_url": llm_server.base_url, "model": "qwen", "backoff": 0.01},
              "cache": str(tmp_path / "answers.sqlite")}
    resources: dict[str, Any] = {}
    result = merge(FIELDS, config, resources)
    assert result.fields == {"description": "The character is startled and angry, as the loud voice and the frown "
                                            "show."}
    assert result.info == {"backend": "openai", "model": llm_server.served_model, "prompt": "merge/v1",
                           "cached": False}
    [sent] = llm_server.user_texts()
    assert sent == render_merge(get_template("merge/v1"), acoustic=ACOUSTIC, visual=VISUAL, subtitle=SUBTITLE)
    assert "expert in emotion analysis" in sent and f"Acoustic clues: {ACOUSTIC}" in sent
    assert f"Visual clues: {VISUAL}" in sent and f"Subtitle: {SUBTITLE}" in sent
    body = llm_server.requests[0].body
    assert body["temperature"] == 0.0 and body["model"] == "qwen"  # greedy: a rerun asks the same question
    again = merge(FIELDS, config, resources)
    assert again.fields == result.fields and again.info["cached"] and llm_server.count == 1


def test_merge_backend_failure_drops_the_clip(llm_server):
    llm_server.add_fault("status", status=503)
    config = {"backend": "openai", "cache": False,
              "options": {"base_url": llm_server.base_url, "model": "qwen", "max_retries": 1, "backoff": 0.01}}
    result = merge(FIELDS, config)
    assert result.dropped.startswith("backend_error: ") and "503" in result.dropped and not result.fields


def test_merge_prompt_placeholders_and_braces(tmp_path):
    loose = tmp_path / "prompt.txt"
    loose.write_text("Describe the emotion from {acoustic} and {visual}.", encoding="utf-8")
    with pytest.raises(InputError, match=r"lacks \{subtitle\}"):
        stage_prompt("merge", {"prompt_file": str(loose)})
    own = tmp_path / "own.txt"
    own.write_text("A: {acoustic}\nV: {visual}\nS: {subtitle}", encoding="utf-8")
    prompt = stage_prompt("merge", {"prompt_file": str(own)})
    assert prompt.id.startswith("file:")
    # a clue that holds a placeholder's name is kept as it is, and an empty input reads "(none)"
    assert render_merge(prompt, acoustic="odd {visual} text", visual="", subtitle="hi") == \
        "A: odd {visual} text\nV: (none)\nS: hi"
