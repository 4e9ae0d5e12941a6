"""AffectGPT: encode -> pool -> pre-fuse -> splice the tokens into the prompt -> LLM with LoRA; loss; generate.

Reads top-down: `AffectGPT.forward(batch)` is the training step, `AffectGPT.generate(batch)` the inference path.
The frozen encoders and the LLM are passed in (model/encoders.py, model/lm.py build them); this module holds
only the trainable fusion modules and the wiring. Shapes: B samples, T = 8 frames / audio clips, L = LLM
width, N = tokens per modality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from affectgpt.errors import InputError
from affectgpt.model.config import ModelConfig
from affectgpt.model.fusion import build_fusion
from affectgpt.model.pooling import build_pooler

# Splice order of the placeholder blocks (fidelity README, step 9): frame, face, audio, multi.
SPLICE_ORDER = ("frame", "face", "audio", "multi")


@dataclass
class Batch:
    """One collated batch.

    Attributes:
        input_ids, attention_mask: [B, S] (placeholders stand where the modality tokens go).
        labels: [B, S] with -100 on the prompt and padding; None at inference.
        frames: [B, T, H, W, 3] uint8 (or already encoded visual features [B, T, d_v] in `visual_features`).
        audio_clips: [B, T, 32000] float32 (or `audio_features` [B, T, d_a]).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor | None = None
    frames: torch.Tensor | None = None
    audio_clips: torch.Tensor | None = None
    visual_features: torch.Tensor | None = None
    audio_features: torch.Tensor | None = None


@dataclass
class ForwardOutput:
    """Loss and logits, with the intermediate tensors the fidelity tests compare."""

    loss: torch.Tensor | None
    logits: torch.Tensor
    inputs_embeds: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


class AffectGPT(nn.Module):
    """The whole model. Trainable: the poolers, the pre-fusion module and the LLM's LoRA weights.

    Args:
        cfg: the configuration.
        llm: the causal LM with LoRA applied (model/lm.py).
        placeholder_ids: token id of each placeholder: {"frame", "face", "audio", "multi", "image"} -> id.
        visual_encoder, audio_encoder: frozen encoders (model/encoders.py); optional when the batch carries
            precomputed features.
    """

    def __init__(self, cfg: ModelConfig, llm: nn.Module, placeholder_ids: dict[str, int], *,
                 visual_encoder: nn.Module | None = None, audio_encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.llm = llm
        self.placeholder_ids = dict(placeholder_ids)
        self.visual_encoder = visual_encoder
        self.audio_encoder = audio_encoder
        self.video_pool = build_pooler(cfg.video_pooling, cfg.visual_dim, cfg, cfg.video_tokens,
                                       cfg.video_positions) if "video" in cfg.modalities else None
        self.audio_pool = build_pooler(cfg.audio_pooling, cfg.audio_dim, cfg, cfg.audio_tokens,
                                       cfg.audio_positions) if "audio" in cfg.modalities else None
        self.fusion = build_fusion(cfg) if cfg.uses_multi else None

    # -- the training step -------------------------------------------------------------------------------
    def forward(self, batch: Batch, *, keep_parts: bool = False) -> ForwardOutput:
        """inputs_embeds with the modality tokens spliced in, through the LLM; loss when labels are given.
        `keep_parts`: also return the per-modality tokens and intermediates (for inspection; off in training,
        where FSDP would have to track them as outputs)."""
        parts = self.modality_tokens(batch)
        embeds = self.splice(batch.input_ids, parts)
        out = self.llm(inputs_embeds=embeds, attention_mask=batch.attention_mask, labels=batch.labels)
        return ForwardOutput(out.loss if batch.labels is not None else None, out.logits, embeds,
                             parts if keep_parts else {})

    # -- modality tokens --------------------------------------------------------------------------------
    def modality_tokens(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per placeholder kind, the [B, N, L] tokens (and the intermediates, under other keys)."""
        parts: dict[str, torch.Tensor] = {}
        visual = self._visual_features(batch) if self.video_pool is not None or self.fusion else None
        audio = self._audio_features(batch) if self.audio_pool is not None or self.fusion else None
        # The fusion modules compute in their own dtype (float32 trainable weights beside bfloat16 encoders, or
        # all bfloat16 for inference); autocast, where on, still chooses per operation.
        dtype = self._fusion_dtype()
        visual = visual.to(dtype) if visual is not None and dtype is not None else visual
        audio = audio.to(dtype) if audio is not None and dtype is not None else audio
        vis_kind = self.cfg.visual_input  # "face" or "frame": which placeholder the visual tokens fill
        if self.video_pool is not None:
            pooled = self.video_pool(visual)
            parts.update({vis_kind: pooled.tokens, f"{vis_kind}_pooled": pooled.pooled,
                          f"{vis_kind}_encoder_features": visual})
            if pooled.scores is not None:
                parts[f"{vis_kind}_attention_scores"] = pooled.scores
        if self.audio_pool is not None:
            pooled = self.audio_pool(audio)
            parts.update({"audio": pooled.tokens, "audio_pooled": pooled.pooled, "audio_encoder_features": audio})
            if pooled.scores is not None:
                parts["audio_attention_scores"] = pooled.scores
        if self.fusion is not None:
            fused = self.fusion(visual, audio)
            parts.update({"multi": fused.tokens, "multi_pooled": fused.pooled,
                          "multi_video_embs_out": fused.video_emb, "multi_audio_embs_out": fused.audio_emb})
            if fused.weights is not None:
                parts["multi_attention_weights"] = fused.weights
        return parts

    def _fusion_dtype(self) -> torch.dtype | None:
        for module in (self.video_pool, self.audio_pool, self.fusion):
            for param in module.parameters() if module is not None else ():
                return param.dtype
        return None

    def _visual_features(self, batch: Batch) -> torch.Tensor:
        if batch.visual_features is not None:
            return batch.visual_features
        if batch.frames is None or self.visual_encoder is None:
            raise InputError(f"this model ({'+'.join(self.cfg.modalities)}) needs {self.cfg.visual_input} images",
                             field="frames", fix="pass frames (or precomputed visual features) in the batch")
        with torch.no_grad():
            return self.visual_encoder(batch.frames)

    def _audio_features(self, batch: Batch) -> torch.Tensor:
        if batch.audio_features is not None:
            return batch.audio_features
        if batch.audio_clips is None or self.audio_encoder is None:
            raise InputError(f"this model ({'+'.join(self.cfg.modalities)}) needs audio", field="audio_clips",
                             fix="pass audio clips (or precomputed audio features) in the batch")
        with torch.no_grad():
            return self.audio_encoder(batch.audio_clips)

    # -- splicing ---------------------------------------------------------------------------------------
    def splice(self, input_ids: torch.Tensor, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """Embed the ids (placeholders as id 0) and overwrite each placeholder block with its tokens."""
        ids = input_ids.clone()
        masks = {kind: input_ids == pid for kind, pid in self.placeholder_ids.items()}
        for mask in masks.values():
            ids[mask] = 0  # the placeholder rows of the embedding table are never read (README step 9)
        embeds = self.llm.get_input_embeddings()(ids)
        for kind in SPLICE_ORDER:
            mask = masks.get(kind)
            if mask is None or not mask.any():
                continue
            if kind not in parts:
                raise InputError(f"the prompt holds <{kind.capitalize()}Here> but the model has no {kind} tokens",
                                 field=kind, fix="build the prompt for this model's modalities (model/prompt.py)")
            tokens = parts[kind].to(embeds.dtype)
            for b in range(ids.shape[0]):
                positions = mask[b].nonzero().flatten()
                n = tokens.shape[1]
                if len(positions) != n or (n and int(positions[-1] - positions[0]) != n - 1):
                    raise InputError(f"sample {b} has {len(positions)} <{kind.capitalize()}Here> ids, expected one "
                                     f"block of {n}", field="input_ids", fix="encode the prompt with model/prompt.py")
                embeds[b, positions] = tokens[b]
        return embeds

    # -- inference ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, batch: Batch, *, max_new_tokens: int = 1200, do_sample: bool = False,
                 temperature: float = 1.0, top_p: float = 0.9, seed: int | None = None,
                 stop_ids: list[int] | None = None, **kwargs: Any) -> torch.Tensor:
        """New token ids [B, <= max_new_tokens] (left-padded prompts; stop on EOS or any of `stop_ids`).

        Greedy by default; sampling is seeded when `seed` is given.
        """
        parts = self.modality_tokens(batch)
        embeds = self.splice(batch.input_ids, parts)
        if seed is not None:
            torch.manual_seed(seed)
        options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": do_sample, "num_beams": 1}
        if do_sample:
            options.update(temperature=temperature, top_p=top_p, top_k=0)
        if stop_ids:
            options["eos_token_id"] = list(stop_ids)
        options.update(kwargs)
        return self.llm.generate(inputs_embeds=embeds, attention_mask=batch.attention_mask, **options)

    # -- parameters ---------------------------------------------------------------------------------------
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only what training changes: poolers, pre-fusion and LoRA (what our checkpoints hold)."""
        names = {name for name, p in self.named_parameters() if p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k in names}

    @property
    def _no_split_modules(self) -> list[str]:
        """The LLM's decoder-layer classes: FSDP shards each such layer as its own unit (accelerate's transformer
        auto-wrap reads this attribute, as it does on a transformers model)."""
        base = self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm
        return list(getattr(base, "_no_split_modules", None) or [])

    def train(self, mode: bool = True) -> AffectGPT:
        """Train mode for the trainable parts; the frozen encoders stay in eval (the original's were not)."""
        super().train(mode)
        for encoder in (self.visual_encoder, self.audio_encoder):
            if encoder is not None:
                encoder.eval()
        return self
