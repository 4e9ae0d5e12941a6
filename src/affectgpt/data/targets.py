"""Training targets: which question a sample answers on one access, and its (question, target) strings.

`draw_task(sample, mode, rng)`: mode "description" or "labels" asks that question (an InputError naming the
sample when it has no such target); "hybrid" (the released training) picks uniformly among the tasks the sample
has, so a sample with both is asked each question half of the time and one with only labels always gets the
labels question. `question_answer(sample, task)` gives the question of model/prompt.py and the target: the
description, or the OV sentence "The character's emotional state is a, b, c." (no labels: "neutral"), each
followed by "###".
"""

from __future__ import annotations

from typing import Any

from affectgpt.data.sample import Sample
from affectgpt.errors import InputError
from affectgpt.model.prompt import QUESTIONS, make_target, ov_answer

TASKS = ("description", "labels")
MODES = ("hybrid", *TASKS)


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise InputError(f"{mode!r} is not one of {', '.join(MODES)}", field="task", fix="choose " + " | ".join(MODES))


def draw_task(sample: Sample, mode: str, rng: Any) -> str:
    """The task of this access: `mode` itself, or for "hybrid" one of the sample's tasks drawn uniformly.

    Args:
        sample: the sample.
        mode: "hybrid", "description" or "labels".
        rng: anything with `.random()` in [0, 1) (random.Random, numpy Generator); used only for "hybrid" with
            two tasks, so single-task samples do not consume randomness.
    """
    check_mode(mode)
    available = sample.tasks
    if mode != "hybrid":
        if mode not in available:
            raise InputError(f"sample {sample.name!r} has no {mode} target (it has: {', '.join(available) or 'none'})",
                             field=f"sample {sample.name!r}",
                             fix=f"use task hybrid, or give every sample a {mode}")
        return mode
    if not available:
        raise InputError(f"sample {sample.name!r} has neither a description nor labels",
                         field=f"sample {sample.name!r}", fix="drop it, or give it a target")
    if len(available) == 1:
        return available[0]
    return available[min(int(rng.random() * len(available)), len(available) - 1)]


def question_answer(sample: Sample, task: str) -> tuple[str, str]:
    """(question, target) for `task`; the target ends with "###"."""
    if task == "description":
        if sample.description is None:
            raise InputError(f"sample {sample.name!r} has no description", field=f"sample {sample.name!r}",
                             fix="ask the labels question, or give it a description")
        return QUESTIONS["description"], make_target(sample.description)
    if task == "labels":
        if sample.labels is None:
            raise InputError(f"sample {sample.name!r} has no labels", field=f"sample {sample.name!r}",
                             fix="ask the description question, or give it labels")
        return QUESTIONS["labels"], make_target(ov_answer(sample.labels))
    raise InputError(f"{task!r} is not one of {', '.join(TASKS)}", field="task", fix="choose description or labels")
