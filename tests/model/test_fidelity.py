"""End-to-end fidelity to the original AffectGPT on tiny random weights, through our normal loading path.

Every configuration folder under fixtures/ (or $AFFECTGPT_FIDELITY_DIR/fixtures) is discovered and built from
its meta.json: base models from their folders (models/), the original checkpoint through our importer, the
prompts through our prompt builder. We then compare what the original recorded: ids, labels and masks
(exact), encoder features, modality tokens, spliced inputs_embeds, logits, loss, the gradient of every
trainable parameter, and the greedy decode. Tolerances are the fidelity README's.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from safetensors.torch import load_file  # noqa: E402
from tiny_models import FIDELITY  # noqa: E402

from affectgpt.model.affectgpt import Batch  # noqa: E402
from affectgpt.model.build import build_model, config_from_original  # noqa: E402
from affectgpt.model.checkpoint import import_original, read_original_state  # noqa: E402
from affectgpt.model.encoders import original_faces_to_frames  # noqa: E402
from affectgpt.model.keymap import map_key  # noqa: E402
from affectgpt.model.prompt import collate, encode_inference, encode_training, prompt_for  # noqa: E402

CONFIGS = sorted(p.name for p in (FIDELITY / "fixtures").glob("*") if (p / "meta.json").is_file())
TOKENS = {"atol": 1e-4, "rtol": 1e-5}
FEATURES = {"atol": 2e-5, "rtol": 0.0}


def modalities_of(mode: str) -> tuple[tuple[str, ...], str]:
    """The original's face_or_frame mode ("multiface_audio_face_text"...) -> our modalities and visual input."""
    parts = mode.split("_")
    visual = "frame" if any("frame" in p for p in parts) else "face"
    found = {"multi" if p.startswith("multi") else "video" if p in ("face", "frame") else p for p in parts}
    return tuple(m for m in ("multi", "audio", "video", "text") if m in found), visual


@pytest.fixture(scope="module", params=CONFIGS or [None])
def fixture(request):
    if request.param is None:
        pytest.skip(f"fidelity fixtures not found under {FIDELITY} (set AFFECTGPT_FIDELITY_DIR)")
    folder = FIDELITY / "fixtures" / request.param
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    models = FIDELITY / "models"
    modalities, visual = modalities_of(meta["face_or_frame"])
    cfg = config_from_original(
        meta["model_cfg"], llm=models / "tiny-qwen2", visual_encoder=models / "tiny-clip",
        audio_encoder=models / "tiny-hubert", visual_input=visual, modalities=modalities,
        qformer=json.loads((models / "tiny-bert-qformer" / "config.json").read_text(encoding="utf-8")),
        hubert_normalization="batch")  # the original's training behaviour, which the fixtures recorded
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model, tokenizer = build_model(cfg)
    report = import_original(model, read_original_state(folder / "ckpt.pth"), source=str(folder / "ckpt.pth"))
    torch.set_num_threads(threads)
    return {"name": request.param, "folder": folder, "meta": meta, "model": model, "tokenizer": tokenizer,
            "report": report, "tensors": load_file(folder / "tensors.safetensors"),
            "inputs": load_file(FIDELITY / "fixtures" / "inputs.safetensors")}


def training_batch(fx) -> Batch:
    model, tokenizer, meta = fx["model"], fx["tokenizer"], fx["meta"]
    encoded = []
    for sample in meta["samples"]:
        prompt = prompt_for(model.cfg, sample["question"], sample["subtitle"])
        assert prompt == sample["prompt"]
        encoded.append(encode_training(tokenizer, prompt, sample["target"], model.cfg.max_length))
    ids = collate(encoded, tokenizer.eos_token_id)
    frames = original_faces_to_frames(fx["inputs"]["raw_faces_uint8"])
    return Batch(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"], labels=ids["labels"],
                 frames=frames, audio_clips=fx["inputs"]["raw_audio"][:, :, 0, :])


def test_import_places_every_trained_weight(fixture):
    meta, report = fixture["meta"], fixture["report"]
    skipped = {key for key, _ in report.skipped}
    assert set(report.loaded) | skipped == set(meta["checkpoint_keys"]) | set(meta["checkpoint_buffer_keys"])
    assert skipped == {k for k in meta["checkpoint_keys"] if k.startswith("image_llama_proj.")} \
        | set(meta["checkpoint_buffer_keys"])
    assert report.missing == []


def test_forward_matches_the_original(fixture):
    model, tensors = fixture["model"], fixture["tensors"]
    batch = training_batch(fixture)
    for key in ("input_ids", "labels", "attention_mask"):
        assert torch.equal(getattr(batch, key).long(), tensors[key].long()), key
    with torch.no_grad():
        out = model(batch, keep_parts=True)
    compared = [key for key in out.parts if key in tensors]
    assert len(compared) >= 3, sorted(out.parts)
    for key in compared:
        tol = FEATURES if key.endswith("encoder_features") else TOKENS
        torch.testing.assert_close(out.parts[key], tensors[key], **tol, msg=lambda m, k=key: f"{k}: {m}")
    vis = model.cfg.visual_input
    for kind in (vis, "audio", "multi"):
        if f"{kind}_tokens" in tensors:
            torch.testing.assert_close(out.parts[kind], tensors[f"{kind}_tokens"], **TOKENS)
    torch.testing.assert_close(out.inputs_embeds, tensors["inputs_embeds"], **TOKENS)
    torch.testing.assert_close(out.logits, tensors["logits"], atol=2e-4, rtol=0.0)
    torch.testing.assert_close(out.loss, tensors["loss"], atol=1e-5, rtol=0.0)
    assert out.loss.item() == pytest.approx(float.fromhex(fixture["meta"]["loss_hex"]), abs=1e-5)


def test_gradients_match_the_original(fixture):
    model = fixture["model"]
    grads = load_file(fixture["folder"] / "grads.safetensors")
    model.zero_grad(set_to_none=True)
    model(training_batch(fixture)).loss.backward()
    ours = dict(model.named_parameters())
    from affectgpt.model.checkpoint import LLM_PREFIX

    largest = max(g.abs().max().item() for g in grads.values())
    compared = 0
    for key, expected in grads.items():
        target = map_key(key, llm_prefix=LLM_PREFIX).target
        grad = ours[target].grad
        assert grad is not None, key
        # Relative per parameter; gradients that are zero in exact arithmetic (attention key biases) are
        # compared against the largest gradient instead (fidelity README, "Tolerances").
        scale = max(expected.abs().max().item(), 1e-4 * largest)
        assert (grad - expected).abs().max().item() / scale <= 5e-5, key
        compared += 1
    assert compared == len(grads) > 0
    model.zero_grad(set_to_none=True)


def test_greedy_decode_matches_the_original(fixture):
    model, tokenizer, meta = fixture["model"], fixture["tokenizer"], fixture["meta"]
    recorded = load_file(fixture["folder"] / "inference.safetensors")
    prompt = meta["inference"]["prompt_after_placeholder_expansion"]
    sample = meta["samples"][0]
    assert prompt == prompt_for(model.cfg, "Please recognize all possible emotional states of the character.",
                                sample["subtitle"])
    ids = torch.tensor([encode_inference(tokenizer, prompt, bos=False)])  # the original omitted BOS here
    assert torch.equal(ids[0], recorded["input_ids"].long())
    batch = Batch(input_ids=ids, attention_mask=torch.ones_like(ids),
                  frames=original_faces_to_frames(fixture["inputs"]["raw_faces_uint8"][:1]),
                  audio_clips=fixture["inputs"]["raw_audio"][:1, :, 0, :])
    with torch.no_grad():
        parts = model.modality_tokens(batch)
        embeds = model.splice(batch.input_ids, parts)
        logits = model.llm(inputs_embeds=embeds, attention_mask=batch.attention_mask).logits
    torch.testing.assert_close(parts["audio_encoder_features"], recorded["audio_encoder_features_alone"], **FEATURES)
    torch.testing.assert_close(embeds, recorded["inputs_embeds"], **TOKENS)
    torch.testing.assert_close(logits[:, -1], recorded["first_step_logits"], atol=2e-4, rtol=0.0)
    generated = model.generate(batch, max_new_tokens=12, stop_ids=[tokenizer.eos_token_id])
    assert generated[0].tolist() == recorded["generated_ids"][0].tolist()
