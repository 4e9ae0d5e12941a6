"""Prompts and token ids: the prompt text for every modality mode, targets, training/inference ids, collation.

The released strings and the tokenisation layout are the original's (../shared/reference/fidelity/README.md
steps 7 and 8), checked token for token by the fidelity tests:

- prompt and target are tokenised **separately** (add_special_tokens=False, each right-truncated to max_length)
  and joined as ids: `[bos] + prompt + target + [eos]`, so the prompt's trailing space is its own token and the
  target starts without one;
- labels are -100 on BOS and the prompt; target and EOS are supervised;
- batches are right-padded with PAD = EOS, and the attention mask is `ids != eos`, which also masks the real
  final EOS (harmless for the loss, README step 8.5).

Ablation prompts (the original's other templates are not in the fixtures) drop whole segments of the released
template; see `build_prompt`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from affectgpt.errors import InputError
from affectgpt.model.config import MODALITIES, ModelConfig
from affectgpt.model.lm import PLACEHOLDERS

QUESTIONS = {
    "description": "Please infer the person's emotional state and provide your reasoning process.",
    "labels": "Please recognize all possible emotional states of the character.",
}
"""The two training/inference questions: emotion description with reasoning, and open-vocabulary labels."""

TARGET_END = "###"
IGNORE = -100
PLACEHOLDER_NAMES = {"<ImageHere>": "image", "<AudioHere>": "audio", "<FrameHere>": "frame", "<FaceHere>": "face",
                     "<MultiHere>": "multi"}


def build_prompt(question: str, subtitle: str | None = "", *, modalities: Iterable[str] = MODALITIES,
                 visual_input: str = "face", video_tokens: int = 1, audio_tokens: int = 1,
                 multi_tokens: int = 1) -> str:
    """The prompt text; each placeholder is repeated N times (its modality's token count).

    With all modalities this is the original's template exactly (face, or frame variant). An ablation drops the
    segments of the missing modalities and keeps the others word for word, with one change: the video sentence
    starts "We uniformly sample..." instead of "Meanwhile, we uniformly sample..." when no audio or merged
    segment comes before it. `subtitle` None or "" gives an empty `<Subtitle></Subtitle>` when text is used.
    """
    wanted = set(modalities)
    unknown = wanted - set(MODALITIES)
    if unknown or not wanted:
        raise InputError(f"modalities {sorted(unknown) or '[]'} not allowed", field="modalities",
                         fix=f"use a non-empty subset of {', '.join(MODALITIES)}")
    if visual_input not in ("face", "frame"):
        raise InputError(f"{visual_input!r} is not face or frame", field="visual_input", fix="choose face or frame")
    parts = ["###Human: "]
    if "multi" in wanted:
        parts.append(f"The audio and video merged info is: <Multi>{'<MultiHere>' * multi_tokens}</Multi>. ")
    if "audio" in wanted:
        parts.append(f"The audio content is as follows: <Audio>{'<AudioHere>' * audio_tokens}</Audio>. ")
    if "video" in wanted:
        opening = "Meanwhile, we" if len(parts) > 1 else "We"
        if visual_input == "face":
            parts.append(f"{opening} uniformly sample raw frames from the video and extract faces from these frames: "
                         f"<Video>{'<FaceHere>' * video_tokens}</Video>. ")
        else:
            parts.append(f"{opening} uniformly sample raw frames from the video: "
                         f"<Video>{'<FrameHere>' * video_tokens}</Video>. ")
    if "text" in wanted:
        parts.append(f"The subtitle of this video is: <Subtitle>{subtitle or ''}</Subtitle>. ")
    # The original's trailing space after "###Assistant:" becomes its own token (README step 8).
    parts.append(f"Now, please answer my question based on all the provided information. {question} ###Assistant: ")
    return "".join(parts)


def prompt_for(cfg: ModelConfig, question: str, subtitle: str | None = "") -> str:
    """`build_prompt` with the modalities, visual input and token counts of a model config (multi only when the
    config pre-fuses: `cfg.uses_multi`)."""
    modalities = [m for m in cfg.modalities if m != "multi" or cfg.uses_multi]
    return build_prompt(question, subtitle, modalities=modalities, visual_input=cfg.visual_input,
                        video_tokens=cfg.video_tokens, audio_tokens=cfg.audio_tokens, multi_tokens=cfg.multi_tokens)


def ov_answer(labels: Sequence[str]) -> str:
    """The OV-label answer sentence; no labels means "neutral"."""
    names = [label.strip() for label in labels if label.strip()]
    return f"The character's emotional state is {', '.join(names) if names else 'neutral'}."


def make_target(answer: str) -> str:
    """The training target: the answer followed by the "###" end marker."""
    return answer + TARGET_END


@dataclass(frozen=True, slots=True)
class Encoded:
    """One training sample's ids; labels are IGNORE (-100) where not supervised."""

    input_ids: list[int]
    labels: list[int]


def _ids(tokenizer: Any, text: str, max_length: int | None) -> list[int]:
    if max_length is None:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer(text, add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"])


def encode_training(tokenizer: Any, prompt: str, target: str, max_length: int = 1024, *, name: str | None = None,
                    on_overflow: str = "error") -> Encoded | None:
    """Training ids: `[bos] + prompt_ids + target_ids + [eos]`, labels -100 on bos and prompt.

    Prompt and target are tokenised separately (README step 8), each right-truncated to max_length. A sample with
    `len(prompt_ids) + len(target_ids) > max_length` (BOS/EOS not counted, as in the original) is an InputError
    naming it; `on_overflow="skip"` returns None instead, so that the caller can draw another sample as the
    original did (it silently replaced such samples by random others).
    """
    if on_overflow not in ("error", "skip"):
        raise InputError(f"{on_overflow!r} is not error or skip", field="on_overflow", fix="choose error or skip")
    prompt_ids = _ids(tokenizer, prompt, max_length)
    target_ids = _ids(tokenizer, target, max_length)
    if len(prompt_ids) + len(target_ids) > max_length:
        if on_overflow == "skip":
            return None
        raise InputError(f"prompt ({len(prompt_ids)} tokens) + target ({len(target_ids)} tokens) is longer than "
                         f"max_length {max_length}", field=f"sample {name!r}" if name else "sample",
                         fix="shorten the subtitle or the answer, or raise max_length")
    input_ids = [tokenizer.bos_token_id, *prompt_ids, *target_ids, tokenizer.eos_token_id]
    labels = [IGNORE] * (1 + len(prompt_ids)) + [*target_ids, tokenizer.eos_token_id]
    return Encoded(input_ids, labels)


def collate(samples: Sequence[Encoded], pad_id: int) -> dict[str, Tensor]:
    """Right-pad a batch: ids with pad_id (= eos), labels with -100; attention_mask = ids != pad_id (int64).

    Like the original, this also masks each sample's real final EOS (README step 8.5); position ids stay 0..S-1.
    """
    if not samples:
        raise InputError("an empty batch", field="samples", fix="pass at least one encoded sample")
    length = max(len(sample.input_ids) for sample in samples)
    input_ids = torch.full((len(samples), length), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), length), IGNORE, dtype=torch.long)
    for row, sample in enumerate(samples):
        input_ids[row, :len(sample.input_ids)] = torch.tensor(sample.input_ids, dtype=torch.long)
        labels[row, :len(sample.labels)] = torch.tensor(sample.labels, dtype=torch.long)
    return {"input_ids": input_ids, "labels": labels, "attention_mask": (input_ids != pad_id).long()}


def encode_inference(tokenizer: Any, prompt: str, *, bos: bool = True) -> list[int]:
    """Inference ids: `[bos] + prompt_ids` (the training layout, our default). The original omitted BOS at
    inference although it trained with it; `bos=False` reproduces that (the fidelity inference test)."""
    prompt_ids = _ids(tokenizer, prompt, None)
    return [tokenizer.bos_token_id, *prompt_ids] if bos else prompt_ids


def placeholder_positions(ids: Sequence[int] | Tensor, tokenizer: Any) -> dict[str, list[int]]:
    """Positions of each placeholder in one id sequence: {"image", "audio", "frame", "face", "multi"} -> list."""
    values = ids.tolist() if isinstance(ids, Tensor) else list(ids)
    wanted = {tokenizer.convert_tokens_to_ids(token): PLACEHOLDER_NAMES[token] for token in PLACEHOLDERS}
    positions: dict[str, list[int]] = {name: [] for name in PLACEHOLDER_NAMES.values()}
    for index, value in enumerate(values):
        if value in wanted:
            positions[wanted[value]].append(index)
    return positions


def decode_answer(text: str) -> str:
    """The answer in a generated text: after the last "Assistant:", before the first "###" after it."""
    answer = text.rsplit("Assistant:", 1)[-1]
    return answer.split(TARGET_END, 1)[0].strip()
