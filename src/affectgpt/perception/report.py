"""A Perception as the plain text `affectgpt describe` shows: clues per modality, description, labels, sentiment."""

from __future__ import annotations

from affectgpt.perception.base import Perception

HEADINGS = {"speech": "speech", "voice": "voice", "face": "face", "text": "text"}


def as_text(answer: Perception) -> str:
    """Readable lines: where the answer comes from, each modality's clues with confidence, then the answer."""
    lines = [f"[{answer.name}] from the perception pipeline (small offline models, not AffectGPT)", "", "clues:"]
    for modality, clues in answer.clues.items():
        if not clues:
            continue
        for clue in clues:
            lines.append(f"  {HEADINGS.get(modality, modality):<7}{clue.confidence:4.2f}  {clue.text}")
    if answer.transcript:
        lines.append(f"  transcript ({answer.transcript_source}): {answer.transcript}")
    lines += ["", "description:", f"  {answer.description}", "",
              f"labels:    {', '.join(answer.labels) if answer.labels else '(none)'}",
              f"sentiment: {answer.sentiment}"]
    if answer.flags:
        lines.append(f"flags:     {', '.join(answer.flags)}")
    return "\n".join(lines)
