"""One clip (or a batch of prepared clips) -> AffectGPT's answer text: media inputs joined to the model.

`load_model(path)` opens our checkpoint folder (config.json names the base models; model.safetensors holds the
trained weights); `answer(model, tokenizer, clips, task=...)` builds the prompts, left-pads the batch and
generates (greedy by default; seeded sampling with the published settings as an option).

transformers' own progress bars ("Loading weights", one per base model) and its warnings are off while
`load_model` runs, and restored afterwards: the commands show their own progress.

Where the time goes (tiny fidelity model, `describe --max-new-tokens 5`, 2 CPU cores): importing torch and
transformers ~1.0 s, importing transformers' model modules on first use (CLIP, HuBERT, Qwen2, peft) ~2.1 s,
reading the weights ~0.4 s, the clip ~0.05 s, generating ~0.06 s. The load is import-bound on small models; on
real ones reading the base weights dominates (`describe --timings` prints load / media / generate).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError

TASKS = ("description", "labels")


@dataclass(frozen=True, slots=True)
class Generation:
    """Decoding settings. `published()` gives the original's sampling (temperature 1.0, top_p 0.9, 1200 tokens)."""

    max_new_tokens: int = 512
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 0.9
    seed: int | None = None

    @classmethod
    def published(cls, seed: int = 0) -> Generation:
        return cls(max_new_tokens=1200, do_sample=True, temperature=1.0, top_p=0.9, seed=seed)


def load_model(path: str | Path, *, dtype: Any = None, overrides: dict[str, str] | None = None,
               allow_download: bool = False, device: str = "auto") -> tuple[Any, Any]:
    """Our checkpoint folder -> (AffectGPT in eval mode, tokenizer), all in `dtype` (default float32) on `device`
    ("auto": the first GPU when torch sees one, else the CPU; or a torch device string: "cpu", "cuda:1").
    `overrides` may relocate base models ({"llm": ..., "visual_encoder": ..., "audio_encoder": ...}); the model
    is built as config.json's `base.init` says (infer/sources.py: pretrained or random); base models named by a
    hub id are fetched only with `allow_download`."""
    from dataclasses import replace

    from affectgpt.infer.sources import load_source
    from affectgpt.llm.local_hf import on_device, resolve_device
    from affectgpt.model.checkpoint import load_weights, read_config

    cfg, base = read_config(path)
    if overrides:
        cfg = replace(cfg, **{k: str(v) for k, v in overrides.items() if v})
    with quiet_transformers():
        model, tokenizer = load_source(cfg, base, path, dtype, allow_download=allow_download)
    load_weights(model, path)
    if dtype is not None:
        model = model.to(dtype)  # the trained (float32) weights too: one dtype for inference
    return on_device(model, resolve_device(device)), tokenizer


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' progress bars and its messages below errors off inside, as they were afterwards."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def answer(model: Any, tokenizer: Any, clips: Sequence[Any], *, task: str = "description",
           generation: Generation = Generation()) -> list[str]:
    """The model's answer for each clip: a media.Clip (faces or frames picked as the model's visual input says),
    or media/inputs.py's ModelInputs (its visual input already picked); each with audio_clips and a subtitle."""
    import torch

    from affectgpt.data.collate import left_pad
    from affectgpt.model.affectgpt import Batch
    from affectgpt.model.prompt import QUESTIONS, decode_answer, encode_inference, prompt_for

    if task not in TASKS:
        raise InputError(f"unknown task {task!r}", field="--task", fix=f"choose one of {', '.join(TASKS)}")
    cfg = model.cfg
    rows = [encode_inference(tokenizer, prompt_for(cfg, QUESTIONS[task], clip.subtitle)) for clip in clips]
    ids, mask = left_pad(rows, tokenizer.pad_token_id)
    device = next(model.parameters()).device  # the LLM's (a model moved to a GPU); encoders move their own inputs
    batch = Batch(input_ids=ids.to(device), attention_mask=mask.to(device),
                  frames=torch.as_tensor(_stack([_visual(c, cfg.visual_input) for c in clips]))
                  if "video" in cfg.modalities or cfg.uses_multi else None,
                  audio_clips=torch.as_tensor(_stack([c.audio_clips for c in clips]))
                  if "audio" in cfg.modalities or cfg.uses_multi else None)
    new_ids = model.generate(batch, max_new_tokens=generation.max_new_tokens, do_sample=generation.do_sample,
                             temperature=generation.temperature, top_p=generation.top_p, seed=generation.seed,
                             **_stops(tokenizer))
    texts = tokenizer.batch_decode(new_ids, skip_special_tokens=True)
    return [decode_answer(text) for text in texts]


def _stops(tokenizer: Any) -> dict[str, Any]:
    """Stop at EOS and at the answer's end marker "###".

    When the marker is one token of the vocabulary, generation stops on its id. When the tokenizer can spell
    any text, it also stops on the marker as a string, however the text around it splits it (" ###", ".###").
    transformers' stop strings read every vocabulary entry as the text it spells after a probe word, which a
    closed vocabulary (the tiny recipe's word tokenizer) reads as its unknown token: there the id alone stops.
    """
    from affectgpt.model.prompt import TARGET_END

    stops: dict[str, Any] = {"stop_ids": [tokenizer.eos_token_id]}
    marker = tokenizer.get_vocab().get(TARGET_END)
    if marker is not None:
        stops["stop_ids"].append(marker)
    if _spells_any_text(tokenizer):
        stops.update(stop_strings=[TARGET_END], tokenizer=tokenizer)
    return stops


def _spells_any_text(tokenizer: Any, probe: str = "abcdef") -> bool:
    """Whether the tokenizer gives back a word it has never seen (subword and byte vocabularies do; a word
    vocabulary gives its unknown token). The probe is the one transformers' stop strings use."""
    return probe in tokenizer.convert_tokens_to_string(tokenizer.tokenize(probe))


def _visual(clip: Any, visual_input: str) -> Any:
    """The visual input of one clip: ModelInputs carry it already picked; a Clip gives its faces or frames."""
    from affectgpt.media.inputs import ModelInputs, visual_of

    return clip.visual if isinstance(clip, ModelInputs) else visual_of(clip, visual_input)


def _stack(arrays: Sequence[Any]) -> Any:
    import numpy as np

    return np.stack([np.asarray(a) for a in arrays])
