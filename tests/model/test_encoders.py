"""The frozen encoders against the original's recorded features (../shared/reference/fidelity), and their guards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

from tiny_models import FIDELITY  # noqa: E402

from affectgpt.errors import InputError  # noqa: E402
from affectgpt.model.encoders import (  # noqa: E402
    ENCODERS,
    ClipVisualEncoder,
    Encoder,
    HubertAudioEncoder,
    original_faces_to_frames,
)

CONFIGS = sorted(p.name for p in (FIDELITY / "fixtures").glob("*") if (p / "tensors.safetensors").is_file())
FEATURE_ATOL = 2e-5

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def fidelity() -> Path:
    if not (FIDELITY / "fixtures" / "inputs.safetensors").is_file():
        pytest.skip(f"fidelity fixtures not found at {FIDELITY} (set AFFECTGPT_FIDELITY_DIR; they are present "
                    "beside developer checkouts)")
    return FIDELITY


@pytest.fixture(scope="module")
def inputs(fidelity: Path) -> dict:
    return safetensors_torch.load_file(fidelity / "fixtures" / "inputs.safetensors")


@pytest.fixture(scope="module")
def clip(fidelity: Path) -> ClipVisualEncoder:
    return ClipVisualEncoder(fidelity / "models" / "tiny-clip")


@pytest.fixture(scope="module")
def hubert(fidelity: Path) -> HubertAudioEncoder:
    return HubertAudioEncoder(fidelity / "models" / "tiny-hubert", normalization="batch")


@pytest.fixture(scope="module")
def frames(inputs: dict) -> torch.Tensor:
    # The original passes raw_faces as float32 with integer values (README "Inputs").
    return original_faces_to_frames(inputs["raw_faces_uint8"].float())


def _recorded(fidelity: Path, config: str) -> tuple[dict, dict, dict]:
    folder = fidelity / "fixtures" / config
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    return (meta, safetensors_torch.load_file(folder / "tensors.safetensors"),
            safetensors_torch.load_file(folder / "inference.safetensors"))


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


def test_registry_names_both_encoders() -> None:
    assert ENCODERS.names() == ["clip", "hubert"]
    assert ENCODERS.get("clip") is ClipVisualEncoder
    assert ENCODERS.get("hubert") is HubertAudioEncoder


def test_encoders_satisfy_the_protocol(clip: ClipVisualEncoder, hubert: HubertAudioEncoder) -> None:
    assert isinstance(clip, Encoder) and clip.dim == 24
    assert isinstance(hubert, Encoder) and hubert.dim == 32


@pytest.mark.parametrize("config", CONFIGS)
def test_clip_pixels_and_features_match_the_original(config: str, fidelity: Path, clip: ClipVisualEncoder,
                                                     frames: torch.Tensor) -> None:
    meta, tensors, _ = _recorded(fidelity, config)
    pixels = clip.preprocess(frames.reshape(-1, *frames.shape[2:]))
    assert _max_diff(pixels[:, :, :8, :8], tensors["clip_pixel_values_corner"]) <= 1e-6
    assert _max_diff(pixels.mean(dim=(2, 3)), tensors["clip_pixel_values_mean"]) <= 1e-6
    visual = "frame" if "frame" in meta["face_or_frame"] else "face"
    assert _max_diff(clip(frames), tensors[f"{visual}_encoder_features"]) <= FEATURE_ATOL


def test_hubert_batch_normalisation_matches_the_feature_extractor(inputs: dict, hubert: HubertAudioEncoder) -> None:
    values = hubert.normalize(inputs["raw_audio"][:, :, 0])
    assert _max_diff(values.reshape(1, 16, -1), inputs["hubert_input_values_batch2"]) <= 1e-6


@pytest.mark.parametrize("config", CONFIGS)
def test_hubert_features_match_the_original(config: str, fidelity: Path, inputs: dict,
                                            hubert: HubertAudioEncoder) -> None:
    _, tensors, inference = _recorded(fidelity, config)
    clips = inputs["raw_audio"][:, :, 0]
    assert _max_diff(hubert(clips), tensors["audio_encoder_features"]) <= FEATURE_ATOL
    # "sample" normalisation = the original's batch of one at inference; same result inside a batch of two.
    per_sample = HubertAudioEncoder(fidelity / "models" / "tiny-hubert", normalization="sample")
    assert _max_diff(per_sample(clips[:1]), inference["audio_encoder_features_alone"]) <= FEATURE_ATOL
    assert _max_diff(per_sample(clips)[:1], inference["audio_encoder_features_alone"]) <= FEATURE_ATOL


def test_resize_path_equals_the_clip_processor(fidelity: Path, clip: ClipVisualEncoder) -> None:
    transformers = pytest.importorskip("transformers")
    processor = transformers.CLIPImageProcessor.from_pretrained(str(fidelity / "models" / "tiny-clip"))
    generator = torch.Generator().manual_seed(0)
    for height, width in [(180, 240), (300, 224)]:
        image = torch.randint(0, 256, (height, width, 3), generator=generator, dtype=torch.uint8)
        image = (image.float() * 0.2 + 100).to(torch.uint8)  # low contrast: rounding differences stay 1 level
        reference = processor(images=[image.numpy()], return_tensors="pt")["pixel_values"]
        # torch's antialiased bicubic vs PIL's: at most one grey level apart (1/255/0.26 = 0.015)
        assert _max_diff(clip.preprocess(image[None]), reference) <= 0.016


def test_original_cast_truncates_and_wraps() -> None:
    raw = torch.tensor([-1.5, 0.9, 255.7, 256.0, 300.2]).reshape(1, 1, 5, 1, 1).expand(1, 3, 5, 1, 1)
    frames = original_faces_to_frames(raw)
    assert frames.shape == (1, 5, 1, 1, 3) and frames.dtype == torch.uint8
    assert frames[0, :, 0, 0, 0].tolist() == [255, 0, 255, 0, 44]


def test_encoders_stay_in_eval_when_the_parent_trains(fidelity: Path, clip: ClipVisualEncoder,
                                                      hubert: HubertAudioEncoder) -> None:
    parent = torch.nn.ModuleDict({"visual": clip, "audio": hubert, "head": torch.nn.Linear(2, 2)})
    parent.train()
    assert parent["head"].training
    for encoder in (clip, hubert):
        assert not any(module.training for module in encoder.modules())
        assert not any(param.requires_grad for param in encoder.parameters())
    original = HubertAudioEncoder(fidelity / "models" / "tiny-hubert", follow_train_mode=True)
    torch.nn.ModuleDict({"audio": original}).train()
    assert original.training and original.model.training  # the original's bug, on request only
    original.eval()
    assert not original.model.training


def test_bad_frames_name_the_expected_layout(clip: ClipVisualEncoder, frames: torch.Tensor) -> None:
    with pytest.raises(InputError, match=r"B, T, H, W, 3.*") as info:
        clip(frames.float())
    assert "dtype" in str(info.value)
    with pytest.raises(InputError, match="original_faces_to_frames"):
        clip(frames.permute(0, 4, 1, 2, 3))
    with pytest.raises(InputError, match=r"\[B, T, H, W, 3\]"):
        clip(frames[0])
    with pytest.raises(InputError, match="not a torch tensor"):
        clip(frames.numpy())


def test_bad_audio_names_the_expected_clip_length(hubert: HubertAudioEncoder, inputs: dict) -> None:
    clips = inputs["raw_audio"][:, :, 0]
    with pytest.raises(InputError, match=r"\[B, T, 32000\]"):
        hubert(clips[..., :16000])
    with pytest.raises(InputError, match=r"take \[:, :, 0\]"):
        hubert(inputs["raw_audio"])
    with pytest.raises(InputError, match="dtype"):
        hubert((clips * 1000).to(torch.int16))
    with pytest.raises(InputError, match="sample or batch"):
        HubertAudioEncoder("unused", normalization="clip")
