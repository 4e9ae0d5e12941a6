"""ModelConfig and the named presets (released, released-frame, tiny...). Imports no torch.

Defaults are the released ("best") configuration of shared/spec/affectgpt-model.md. Where the original's
behaviour is a bug rather than a design, the sane behaviour is the default and the original's is an option
(`hubert_normalization="batch"`, used by the fidelity tests).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from affectgpt.errors import InputError
from affectgpt.registry import unknown_name

POOLINGS = ("attention", "mean", "qformer")
FUSIONS = ("attention", "qformer", "none")
VISUAL_INPUTS = ("face", "frame")
MODALITIES = ("multi", "audio", "video", "text")
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# Qwen2.5-7B-Instruct's architecture, so the full-size model can be built on the meta device offline.
QWEN25_7B = {"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
             "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
             "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
             "tie_word_embeddings": False}
# The encoders' architectures, for the same purpose (public facts of the released checkpoints).
CLIP_VIT_L14 = {"model_type": "clip", "text_config": {"hidden_size": 768, "intermediate_size": 3072,
                                                      "num_hidden_layers": 12, "num_attention_heads": 12},
                "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                                  "num_attention_heads": 16, "patch_size": 14, "image_size": 224},
                "projection_dim": 768}
HUBERT_LARGE = {"model_type": "hubert", "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                "num_attention_heads": 16, "feat_extract_norm": "layer", "do_stable_layer_norm": True,
                "conv_bias": True, "conv_dim": [512] * 7, "conv_stride": [5, 2, 2, 2, 2, 2, 2],
                "conv_kernel": [10, 3, 3, 3, 3, 2, 2]}


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Everything that defines an AffectGPT model.

    Attributes:
        llm: causal LM id or local folder (Qwen2.5-7B-Instruct).
        visual_encoder: CLIP model id or folder; features are `get_image_features` per frame.
        audio_encoder: HuBERT model id or folder; features are the mean of the last 4 hidden layers, then
            the mean over time.
        visual_kind, audio_kind: which encoder family loads them (model/encoders.py ENCODERS: "clip", "hubert");
            a new family is one entry there.
        visual_input: "face" (face crops, released) or "frame" (raw frames).
        modalities: which inputs the prompt holds: any of multi, audio, video, text (the ablations drop some).
        video_pooling, audio_pooling: per-modality pooling: attention (released), mean, qformer.
        fusion: pre-fusion outside the LLM: attention (released), qformer, none.
        video_tokens, audio_tokens, multi_tokens: N tokens per modality.
        visual_dim, audio_dim, llm_dim: encoder output widths and the LLM width.
        fusion_dim: the pre-fusion width, max(audio_dim, visual_dim) in the original.
        qformer_hidden, qformer_heads, qformer_intermediate, qformer_layers, qformer_eps: the BERT-style
            Q-Former (BLIP-2 style, randomly initialised; the original forces 2 layers).
        video_positions, audio_positions, multi_positions: Q-Former position-table sizes (32, 8, 264).
        lora_r, lora_alpha, lora_dropout, lora_targets: LoRA on the LLM (scaling alpha / r).
        n_frames, n_audio_clips: frames / 2-s audio clips per sample.
        max_length: prompt and target are each right-truncated to this many tokens.
        hubert_normalization: "sample" (default: each sample's 8 clips normalised together, as at inference)
            or "batch" (the original training code: one mean/variance over the whole batch).
        llm_config, visual_config, audio_config: for building the models without their files (meta device,
            summaries): transformers config dicts.
    """

    llm: str = "Qwen/Qwen2.5-7B-Instruct"
    visual_encoder: str = "openai/clip-vit-large-patch14"
    audio_encoder: str = "TencentGameMate/chinese-hubert-large"
    visual_kind: str = "clip"
    audio_kind: str = "hubert"
    visual_input: str = "face"
    modalities: tuple[str, ...] = MODALITIES
    video_pooling: str = "attention"
    audio_pooling: str = "attention"
    fusion: str = "attention"
    video_tokens: int = 1
    audio_tokens: int = 1
    multi_tokens: int = 1
    visual_dim: int = 768
    audio_dim: int = 1024
    llm_dim: int = 3584
    fusion_dim: int = 1024
    qformer_hidden: int = 768
    qformer_heads: int = 12
    qformer_intermediate: int = 3072
    qformer_layers: int = 2
    qformer_eps: float = 1e-12
    video_positions: int = 32
    audio_positions: int = 8
    multi_positions: int = 264
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = LORA_TARGETS
    n_frames: int = 8
    n_audio_clips: int = 8
    max_length: int = 1024
    hubert_normalization: str = "sample"
    llm_config: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    visual_config: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    audio_config: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        checks = [("visual_input", self.visual_input, VISUAL_INPUTS), ("video_pooling", self.video_pooling, POOLINGS),
                  ("audio_pooling", self.audio_pooling, POOLINGS), ("fusion", self.fusion, FUSIONS),
                  ("hubert_normalization", self.hubert_normalization, ("sample", "batch"))]
        for key, value, allowed in checks:
            if value not in allowed:
                error = unknown_name(key.replace("_", " "), value, list(allowed))
                raise InputError(f"{value!r} is not one of {allowed}", field=f"model.{key}", fix=error.fix)
        unknown = set(self.modalities) - set(MODALITIES)
        if unknown or not self.modalities:
            raise InputError(f"modalities {sorted(unknown) or '[]'} not allowed", field="model.modalities",
                             fix=f"use a non-empty subset of {', '.join(MODALITIES)}")
        if "multi" in self.modalities and not {"audio", "video"} <= set(self.modalities):
            raise InputError("pre-fusion (multi) needs both audio and video", field="model.modalities",
                             fix="add audio and video, or drop multi")
        for key in ("video_tokens", "audio_tokens", "multi_tokens", "lora_r", "n_frames", "n_audio_clips"):
            if getattr(self, key) < 0 or (key != "lora_r" and getattr(self, key) < 1):
                raise InputError(f"{getattr(self, key)} is out of range", field=f"model.{key}",
                                 fix="use a positive number (lora_r 0 turns LoRA off)")

    @property
    def lora_scaling(self) -> float:
        return self.lora_alpha / self.lora_r if self.lora_r else 0.0

    @property
    def uses_multi(self) -> bool:
        return "multi" in self.modalities and self.fusion != "none"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["modalities"] = list(self.modalities)
        data["lora_targets"] = list(self.lora_targets)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelConfig:
        """A config from its JSON form: unknown keys and values of the wrong type (a float where a whole number
        goes, text where a list goes, NaN...) are InputErrors naming the key."""
        if not isinstance(data, dict):
            raise InputError(f"a model config is a JSON object, not {type(data).__name__}", field="model",
                             fix="write the config as an object of ModelConfig fields (affectgpt model config NAME)")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            import difflib

            hint = difflib.get_close_matches(unknown[0], known, n=1)
            raise InputError(f"unknown model config key {unknown[0]!r}", field=f"model.{unknown[0]}",
                             fix=f"did you mean {hint[0]!r}?" if hint else f"known keys: {', '.join(sorted(known))}")
        values = dict(data)
        for key, value in values.items():
            values[key] = _typed(key, value, cls.__dataclass_fields__[key].default)
        return cls(**values)


def _typed(key: str, value: Any, default: Any) -> Any:
    """`value` checked against the type of the field's default (tuples come from JSON lists)."""
    import math

    def wrong(kind: str) -> InputError:
        return InputError(f"{value!r} is not {kind}", field=f"model.{key}", fix=f"give {key} as {kind}")

    if isinstance(default, bool) or default is None:
        if default is None and not (value is None or isinstance(value, dict)):
            raise wrong("an object (or null)")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("a whole number")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise wrong("a finite number")
        return float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise wrong("text")
    elif isinstance(default, tuple):
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise wrong("a list of text")
        return tuple(value)
    return value


_RELEASED = ModelConfig(llm_config=QWEN25_7B, visual_config=CLIP_VIT_L14, audio_config=HUBERT_LARGE)

PRESETS: dict[str, ModelConfig] = {
    "released": _RELEASED,
    "released-frame": replace(_RELEASED, visual_input="frame"),
    "qformer": replace(_RELEASED, video_pooling="qformer", audio_pooling="qformer", fusion="qformer"),
    "no-fusion": replace(_RELEASED, fusion="none", modalities=("audio", "video", "text")),
}
"""Named configurations; `affectgpt model ls` lists them."""


def get_preset(name: str) -> ModelConfig:
    if name not in PRESETS:
        from affectgpt.registry import unknown_name

        raise unknown_name("model config", name, sorted(PRESETS))
    return PRESETS[name]
