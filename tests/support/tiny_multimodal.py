"""Tiny random-weight multimodal transformers folders built offline: LLaVA (images) and Qwen2-Audio (audio).

Each is a complete local model folder (config, weights, processor with a chat template) that
`harness.backends.hf.HFMultimodal` and `affectgpt bench run --backend transformers` load as a real one. The
tokenizer is word-level (the words below; others become <unk>). Qwen2-VL is not offered: in transformers 5 its
processor needs a video processor, which needs torchvision, not a dependency of the project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

VOCABULARY = ("user assistant Please infer the person ' s emotional state and provide your reasoning process . "
              "recognize all possible states of character The subtitle this video is : happy sad angry neutral "
              "surprise worried calm I can not believe it !")
WORDS = VOCABULARY.split()
IMAGE_SPECIALS = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>", "<image>"]
AUDIO_SPECIALS = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"]


def _template(media: dict[str, str]) -> str:
    """A Qwen-like chat template writing `media[type]` for each non-text content entry."""
    branches = "".join(f"{{% elif c['type'] == '{kind}' %}}{text}\n" for kind, text in media.items())
    return ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
            "{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}" + branches +
            "{% endif %}{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
            "{% endif %}")


IMAGE_TEMPLATE = _template({"image": "<image>"})
AUDIO_TEMPLATE = _template({"audio": "<|audio_bos|><|AUDIO|><|audio_eos|>"})


def word_tokenizer(specials: list[str]) -> Any:
    """A word-level fast tokenizer over WORDS; specials[2:] are added as special tokens (never split)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({t: i for i, t in enumerate(dict.fromkeys(specials + WORDS))},
                                      unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>",
                                        eos_token="<|im_end|>")
    tokenizer.add_tokens(specials[2:], special_tokens=True)
    return tokenizer


def _text_config(tokenizer: Any, layers: int) -> dict[str, Any]:
    ids = tokenizer.convert_tokens_to_ids
    return {"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": layers, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 512, "eos_token_id": ids("<|im_end|>"), "pad_token_id": ids("<pad>")}


def tiny_model_folder(folder: str | Path) -> Path:
    """A tiny random LLaVA (1-layer CLIP vision, 2-layer Qwen2 text) in `folder`: images are cropped to 28 px and
    cut into 14 px patches, so each image becomes 4 `<image>` tokens."""
    import torch
    import transformers

    folder = Path(folder)
    tokenizer = word_tokenizer(IMAGE_SPECIALS)
    images = transformers.CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    processor = transformers.LlavaProcessor(image_processor=images, tokenizer=tokenizer, patch_size=14,
                                            vision_feature_select_strategy="default", chat_template=IMAGE_TEMPLATE,
                                            num_additional_image_tokens=1)
    config = transformers.LlavaConfig(
        vision_config={"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                       "projection_dim": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 28,
                       "patch_size": 14},
        text_config=_text_config(tokenizer, layers=2), image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=4, vision_feature_select_strategy="default", vision_feature_layer=-1)
    torch.manual_seed(0)
    transformers.LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def tiny_audio_model_folder(folder: str | Path) -> Path:
    """A tiny random Qwen2-Audio in `folder`: 16 mel bins over 2 s windows (200 mel frames -> 50 audio tokens)."""
    import torch
    import transformers

    folder = Path(folder)
    tokenizer = word_tokenizer(AUDIO_SPECIALS)
    features = transformers.WhisperFeatureExtractor(feature_size=16, sampling_rate=16000, chunk_length=2)
    processor = transformers.Qwen2AudioProcessor(feature_extractor=features, tokenizer=tokenizer,
                                                 chat_template=AUDIO_TEMPLATE)
    config = transformers.Qwen2AudioConfig(
        audio_config={"num_mel_bins": 16, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 32,
                      "d_model": 16, "max_source_positions": 100},
        text_config=_text_config(tokenizer, layers=1), audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"))
    torch.manual_seed(0)
    transformers.Qwen2AudioForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
