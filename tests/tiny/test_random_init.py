"""The in-process random encoders of `init: random` (configs/tiny-cpu.yaml): seeded, the wrappers' preprocessing,
the real HuBERT strides (a 2-s clip is 99 frames), and the feature-cache identity "random"."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from affectgpt.config import load_config  # noqa: E402
from affectgpt.data.features import encoder_id  # noqa: E402
from affectgpt.errors import InputError  # noqa: E402
from affectgpt.model.encoders import CLIP_PREPROCESSOR, ClipVisualEncoder, HubertAudioEncoder  # noqa: E402
from affectgpt.tiny.random_init import random_audio_encoder, random_visual_encoder  # noqa: E402
from affectgpt.train.config import TrainConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_cfg():
    return load_config(ROOT / "configs" / "tiny-cpu.yaml", TrainConfig).model_config


def test_random_encoders_are_seeded_frozen_wrappers(model_cfg):
    frames = torch.randint(0, 256, (1, 2, 224, 224, 3), dtype=torch.uint8)
    clips = torch.randn(1, 2, 32000)
    visual, again, other = (random_visual_encoder(model_cfg, seed) for seed in (0, 0, 1))
    assert isinstance(visual, ClipVisualEncoder) and visual.dim == 16 and encoder_id(visual) == "random"
    assert visual.mean.tolist() == pytest.approx(CLIP_PREPROCESSOR["image_mean"])
    assert torch.equal(visual(frames), again(frames)) and not torch.equal(visual(frames), other(frames))
    assert not any(p.requires_grad for p in visual.parameters())
    audio = random_audio_encoder(model_cfg, 0)
    assert isinstance(audio, HubertAudioEncoder) and audio.dim == 24 and audio.do_normalize
    assert audio(clips).shape == (1, 2, 24)
    assert audio.hidden_states(audio.normalize(clips)[0])[-1].shape == (2, 99, 24)  # real conv strides
    assert torch.equal(audio(clips), random_audio_encoder(model_cfg, 0)(clips))
    assert not audio.train().training  # stays in eval


def test_a_random_encoder_needs_its_config(model_cfg):
    from dataclasses import replace

    with pytest.raises(InputError, match="visual_config"):
        random_visual_encoder(replace(model_cfg, visual_config=None), 0)
    with pytest.raises(InputError, match="model_type"):
        random_audio_encoder(replace(model_cfg, audio_config={"model_type": "clip"}), 0)
