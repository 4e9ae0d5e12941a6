"""Original AffectGPT checkpoint keys -> our parameter names, as data tables and `map_key`. Imports no torch.

The composing model holds the poolers as `video_pool` and `audio_pool`, the pre-fusion as `fusion` and the LLM
under `LLM_PREFIX`. Every rule says what the original key holds and why it is mapped or skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

# Original key prefix -> our prefix. A prefix ending in "." maps a module; one without maps a whole key
# (the learned query tensors, which are bare parameters).
PREFIXES: dict[str, str] = {
    # per-modality pooling, video (face or frame: the original's one `affectgpt_proj` serves both)
    "video_attention_mlp.": "video_pool.score.",
    "affectgpt_proj.": "video_pool.proj.",
    "video_frame_position_embedding.": "video_pool.positions.",
    "video_query_tokens": "video_pool.queries",
    "video_Qformer.bert.": "video_pool.qformer.",
    # per-modality pooling, audio
    "audio_attention_mlp.": "audio_pool.score.",
    "audio_llama_proj.": "audio_pool.proj.",
    "audio_position_embedding.": "audio_pool.positions.",
    "audio_query_tokens": "audio_pool.queries",
    "audio_Qformer.bert.": "audio_pool.qformer.",
    # pre-fusion ("multi")
    "multi_video_embs.": "fusion.video_in.",
    "multi_audio_embs.": "fusion.audio_in.",
    "attention_mlp.": "fusion.hidden.",
    "fc_att.": "fusion.weights.",
    "multi_llama_proj.": "fusion.proj.",
    "multi_position_embedding.": "fusion.positions.",
    "multi_query_tokens": "fusion.queries",
    "multi_Qformer.bert.": "fusion.qformer.",
}

# Original keys, as regular expressions matched from the start of the key, that have no counterpart here
# because the original's forward never reads them; the importer skips them and reports why.
SKIPPED: dict[str, str] = {
    r"image_llama_proj\.": "image projection: saved by the original (trainable) but the image path is never "
                           "used, so it gets no gradient",
    r"(video|audio|multi)_Qformer\.cls\.": "BERT MLM head of the Q-Former; the original deletes it",
}

# Q-Former keys (the part after `<x>_Qformer.bert.`) that our QFormer has no parameter for, as regular
# expressions, with why the original never uses them in the forward. `qformer.UNUSED_ORIGINAL_KEYS` is this.
QFORMER_UNUSED: dict[str, str] = {
    r"embeddings\.position_ids$": "persistent int64 buffer of BertEmbeddings, not a weight; the queries carry "
                                  "no positions",
    r"embeddings\.(word_embeddings|position_embeddings|token_type_embeddings)\.": "text embeddings; the "
                                                                                 "original deletes them",
    r"encoder\.layer\.\d+\.intermediate\.": "text FFN; the original deletes it (queries use intermediate_query)",
    r"encoder\.layer\.\d+\.output\.": "text FFN output; the original deletes it (queries use output_query)",
    r"pooler\.": "BERT pooler; the original never calls it",
}

# The LLM: only the LoRA adapters are in an original checkpoint (the base weights are frozen, so not saved).
LLM_ORIGINAL_PREFIX = "llama_model.base_model.model."
LLM_PREFIX = "llm."
_LORA = re.compile(r"(?P<module>.+)\.(?P<kind>lora_[AB])\.default\.weight$")


class KeyMapping(NamedTuple):
    """target: our parameter name, or None when the key is skipped or unknown. reason: which rule applied."""

    target: str | None
    reason: str


UNKNOWN = "unknown: no rule maps this key"


def map_key(original_key: str, llm_prefix: str = LLM_PREFIX) -> KeyMapping:
    """Our name for one original checkpoint key; None with the reason when it is skipped or unknown.

    An unknown key's reason starts with "unknown" (`is_unknown`), so the importer can refuse it.
    """
    for pattern, reason in SKIPPED.items():
        if re.match(pattern, original_key):
            return KeyMapping(None, f"skipped: {reason}")
    if original_key.startswith(LLM_ORIGINAL_PREFIX):
        rest = original_key[len(LLM_ORIGINAL_PREFIX):]
        if _LORA.match(rest):
            return KeyMapping(llm_prefix + rest, "LoRA adapter")
        return KeyMapping(None, f"{UNKNOWN} (an LLM key that is not a LoRA A/B weight)")
    for original, ours in PREFIXES.items():
        if original.endswith("."):
            if not original_key.startswith(original):
                continue
            rest = original_key[len(original):]
            if original.endswith("_Qformer.bert."):
                for pattern, reason in QFORMER_UNUSED.items():
                    if re.match(pattern, rest):
                        return KeyMapping(None, f"skipped: {reason}")
            return KeyMapping(ours + rest, f"{original}* -> {ours}*")
        if original_key == original:
            return KeyMapping(ours, f"{original} -> {ours}")
    return KeyMapping(None, UNKNOWN)


def is_unknown(mapping: KeyMapping) -> bool:
    return mapping.target is None and mapping.reason.startswith("unknown")


@dataclass
class KeyReport:
    """The mapping of a whole checkpoint: mapped (original -> ours), skipped (original -> reason), unknown."""

    mapped: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


def map_keys(original_keys: Iterable[str], llm_prefix: str = LLM_PREFIX) -> KeyReport:
    """Map every key of an original checkpoint; the importer loads `mapped`, reports `skipped`, refuses
    `unknown`."""
    report = KeyReport()
    for key in original_keys:
        target, reason = map_key(key, llm_prefix)
        if target is not None:
            report.mapped[key] = target
        elif reason.startswith("unknown"):
            report.unknown.append(key)
        else:
            report.skipped[key] = reason
    return report
