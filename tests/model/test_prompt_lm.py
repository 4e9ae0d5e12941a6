"""Prompt strings, token ids and the LoRA LLM against the original's recordings (../shared/reference/fidelity)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
safetensors_torch = pytest.importorskip("safetensors.torch")

from tiny_models import FIDELITY  # noqa: E402

from affectgpt.errors import InputError  # noqa: E402
from affectgpt.model.config import PRESETS  # noqa: E402
from affectgpt.model.lm import (  # noqa: E402
    PLACEHOLDERS,
    build_llm_from_config,
    load_llm,
    load_tokenizer,
    lora_parameter_count,
    lora_parameters,
    placeholder_ids,
)
from affectgpt.model.prompt import (  # noqa: E402
    QUESTIONS,
    build_prompt,
    collate,
    decode_answer,
    encode_inference,
    encode_training,
    make_target,
    ov_answer,
    placeholder_positions,
    prompt_for,
)

CONFIGS = sorted(p.name for p in (FIDELITY / "fixtures").glob("*") if (p / "meta.json").is_file())
CKPT_PREFIX = "llama_model."

RELEASED_FACE = (
    "###Human: The audio and video merged info is: <Multi><MultiHere></Multi>. The audio content is as follows: "
    "<Audio><AudioHere></Audio>. Meanwhile, we uniformly sample raw frames from the video and extract faces from "
    "these frames: <Video><FaceHere></Video>. The subtitle of this video is: <Subtitle>{subtitle}</Subtitle>. Now, "
    "please answer my question based on all the provided information. {question} ###Assistant: "
)


@pytest.fixture(scope="module")
def fidelity() -> Path:
    if not (FIDELITY / "models" / "tiny-qwen2").is_dir():
        pytest.skip(f"fidelity fixtures not found at {FIDELITY} (set AFFECTGPT_FIDELITY_DIR; they are present "
                    "beside developer checkouts)")
    return FIDELITY


@pytest.fixture(scope="module")
def tokenizer(fidelity: Path):
    return load_tokenizer(fidelity / "models" / "tiny-qwen2")


def _meta(fidelity: Path, config: str) -> dict:
    return json.loads((fidelity / "fixtures" / config / "meta.json").read_text(encoding="utf-8"))


def _prompt_args(meta: dict) -> dict:
    """The original's face_or_frame template name and token counts -> build_prompt keyword arguments."""
    parts = meta["face_or_frame"].split("_")
    modalities = set()
    visual = "face"
    for part in parts:
        if part.startswith("multi"):
            modalities.add("multi")
            part = part[len("multi"):]
        if part in ("face", "frame"):
            modalities.add("video")
            visual = part
        elif part in ("audio", "text"):
            modalities.add(part)
    cfg = meta["model_cfg"]
    return {"modalities": modalities, "visual_input": visual, "video_tokens": cfg["num_video_query_token"],
            "audio_tokens": cfg["num_audio_query_token"], "multi_tokens": cfg["num_multi_query_token"]}


def _answer(sample: dict) -> str:
    return sample["target"].removesuffix("###")


# ---- tokenizer ----

def test_tokenizer_matches_the_original_loader(fidelity: Path, tokenizer) -> None:
    recorded = _meta(fidelity, CONFIGS[0])["tokenizer"]
    assert len(tokenizer) == recorded["len"] == 1027
    assert (tokenizer.bos_token, tokenizer.bos_token_id) == (recorded["bos_token"], recorded["bos_token_id"])
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == (recorded["eos_token"], recorded["eos_token_id"])
    assert tokenizer.pad_token_id == recorded["pad_token_id"] == tokenizer.eos_token_id
    assert placeholder_ids(tokenizer) == recorded["placeholder_ids"]
    assert list(placeholder_ids(tokenizer)) == list(PLACEHOLDERS)


# ---- prompt strings ----

def test_released_prompt_is_the_original_string() -> None:
    prompt = build_prompt(QUESTIONS["labels"], "Hi there.")
    assert prompt == RELEASED_FACE.format(subtitle="Hi there.", question=QUESTIONS["labels"])
    frame = build_prompt(QUESTIONS["labels"], "Hi there.", visual_input="frame")
    assert ("Meanwhile, we uniformly sample raw frames from the video: <Video><FrameHere></Video>. The subtitle"
            in frame)
    assert prompt_for(PRESETS["released"], QUESTIONS["labels"], "Hi there.") == prompt
    assert "<Multi>" not in prompt_for(PRESETS["no-fusion"], QUESTIONS["labels"], "Hi there.")


def test_ablation_prompts_drop_segments() -> None:
    question = QUESTIONS["description"]
    audio_only = build_prompt(question, "x", modalities=["audio"])
    assert audio_only == ("###Human: The audio content is as follows: <Audio><AudioHere></Audio>. Now, please answer "
                          f"my question based on all the provided information. {question} ###Assistant: ")
    face_text = build_prompt(question, "x", modalities=["video", "text"])
    assert face_text.startswith("###Human: We uniformly sample raw frames from the video and extract faces")
    assert "<Subtitle>x</Subtitle>" in face_text and "<Audio>" not in face_text
    text_only = build_prompt(question, "x", modalities=["text"])
    assert text_only.startswith("###Human: The subtitle of this video is: <Subtitle>x</Subtitle>. Now,")
    assert build_prompt(question, None, modalities=["text"]) == build_prompt(question, "", modalities=["text"])
    assert build_prompt(question, "x", video_tokens=3).count("<FaceHere>") == 3
    with pytest.raises(InputError, match="modalities"):
        build_prompt(question, "x", modalities=["smell"])


def test_answers_and_targets() -> None:
    assert ov_answer(["happy", "excited", "grateful"]) == "The character's emotional state is happy, excited, grateful."
    assert ov_answer([]) == "The character's emotional state is neutral."
    assert make_target("An answer.") == "An answer.###"
    assert decode_answer("###Human: q ###Assistant: The character's emotional state is sad.###Human: x") == (
        "The character's emotional state is sad.")
    assert decode_answer("Assistant: a Assistant: b ### c") == "b"
    assert decode_answer("just text") == "just text"


# ---- token ids against the fixtures ----

@pytest.mark.parametrize("config", CONFIGS)
def test_training_ids_labels_and_mask_match_the_original(config: str, fidelity: Path, tokenizer) -> None:
    meta = _meta(fidelity, config)
    tensors = safetensors_torch.load_file(fidelity / "fixtures" / config / "tensors.safetensors")
    args = _prompt_args(meta)
    encoded = []
    for sample in meta["samples"]:
        assert sample["question"] == QUESTIONS["description" if sample["label_type"] == "description" else "labels"]
        prompt = build_prompt(sample["question"], sample["subtitle"], **args)
        assert prompt == sample["prompt"]
        target = make_target(_answer(sample))
        assert target == sample["target"]
        if sample["label_type"] == "ovlabel":
            labels = _answer(sample).removeprefix("The character's emotional state is ").removesuffix(".")
            assert ov_answer(labels.split(", ")) == _answer(sample)
        item = encode_training(tokenizer, prompt, target, meta["model_cfg"]["max_length"], name=sample["name"])
        assert item.input_ids == [tokenizer.bos_token_id, *sample["prompt_ids"], *sample["target_ids"],
                                  tokenizer.eos_token_id]
        assert sum(label != -100 for label in item.labels) == sample["n_supervised"]
        encoded.append(item)
    batch = collate(encoded, tokenizer.pad_token_id)
    for key in ("input_ids", "labels", "attention_mask"):
        assert torch.equal(batch[key], tensors[key]), key
    for row, ids in enumerate(batch["input_ids"]):
        positions = placeholder_positions(ids, tokenizer)
        assert {name: positions[name] for name in meta["placeholder_positions"]} == {
            name: rows[row] for name, rows in meta["placeholder_positions"].items()}


@pytest.mark.parametrize("config", CONFIGS)
def test_inference_ids_match_the_original(config: str, fidelity: Path, tokenizer) -> None:
    meta = _meta(fidelity, config)
    inference = safetensors_torch.load_file(fidelity / "fixtures" / config / "inference.safetensors")
    sample = meta["samples"][0]
    prompt = build_prompt(QUESTIONS["labels"], sample["subtitle"], **_prompt_args(meta))
    assert prompt == meta["inference"]["prompt_after_placeholder_expansion"]
    ids = encode_inference(tokenizer, prompt, bos=False)  # the original omitted BOS at inference
    assert ids == meta["inference"]["input_ids"] == inference["input_ids"].tolist()
    assert encode_inference(tokenizer, prompt) == [tokenizer.bos_token_id, *ids]


def test_over_long_sample_is_an_error_naming_it(tokenizer) -> None:
    prompt = build_prompt(QUESTIONS["description"], "word " * 40)
    with pytest.raises(InputError, match="clip_0042"):
        encode_training(tokenizer, prompt, make_target("fine."), 50, name="clip_0042")
    assert encode_training(tokenizer, prompt, make_target("fine."), 50, on_overflow="skip") is None


# ---- LoRA ----

@pytest.mark.parametrize("config", CONFIGS)
def test_lora_names_and_shapes_equal_the_checkpoint(config: str, fidelity: Path) -> None:
    meta = _meta(fidelity, config)
    lora = meta["lora"]
    cfg = replace(PRESETS["released"], lora_r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"])
    llm = load_llm(fidelity / "models" / "tiny-qwen2", cfg)
    ours = {CKPT_PREFIX + name: tuple(param.shape) for name, param in lora_parameters(llm).items()}
    checkpoint = safetensors_torch.load_file(fidelity / "fixtures" / config / "ckpt_model.safetensors")
    theirs = {key: tuple(value.shape) for key, value in checkpoint.items() if ".lora_" in key}
    assert ours == theirs
    assert lora_parameter_count(llm) == sum(value.numel() for key, value in checkpoint.items() if ".lora_" in key)
    trainable = {name for name, param in llm.named_parameters() if param.requires_grad}
    assert trainable == set(lora_parameters(llm))
    assert llm.peft_config["default"].lora_alpha / llm.peft_config["default"].r == lora["scaling"]


def test_full_size_lora_count_on_the_meta_device() -> None:
    llm = build_llm_from_config(PRESETS["released"])
    assert lora_parameter_count(llm) == 40_370_176
    assert all(param.device.type == "meta" for param in llm.parameters())


def test_build_without_llm_config_is_an_input_error() -> None:
    with pytest.raises(InputError, match="llm_config"):
        build_llm_from_config(replace(PRESETS["released"], llm_config=None))
