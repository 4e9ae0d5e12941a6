"""The feature cache with the tiny CLIP and HuBERT checkpoints: equal to on-the-fly encoding, resumable, failures
listed, encoder checks; dataset items from the cache and from media agree; media from a face .npy + audio file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("av")

from affectgpt.data.collate import collate_batch  # noqa: E402
from affectgpt.data.dataset import TrainingDataset  # noqa: E402
from affectgpt.data.features import (  # noqa: E402
    extract_features,
    load_features,
    read_feature_metadata,
)
from affectgpt.data.manifests import check_media, read_manifest  # noqa: E402
from affectgpt.data.sample import Sample  # noqa: E402
from affectgpt.errors import InputError  # noqa: E402
from affectgpt.media.inputs import load_inputs  # noqa: E402
from affectgpt.model.config import ModelConfig  # noqa: E402
from affectgpt.tiny.clips import make_synthetic_dataset  # noqa: E402

FIDELITY = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "fidelity"
TINY_CLIP, TINY_HUBERT = FIDELITY / "models" / "tiny-clip", FIDELITY / "models" / "tiny-hubert"


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    return None


@pytest.fixture(scope="module")
def encoders():
    if not (TINY_CLIP.is_dir() and TINY_HUBERT.is_dir()):
        pytest.skip(f"tiny encoder checkpoints not found under {FIDELITY / 'models'} (present beside developer "
                    "checkouts)")
    from affectgpt.model.encoders import ClipVisualEncoder, HubertAudioEncoder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return ClipVisualEncoder(TINY_CLIP), HubertAudioEncoder(TINY_HUBERT)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    manifest = make_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), 3, seed=5)
    return read_manifest(manifest)


@pytest.fixture(scope="module")
def features(encoders, samples, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("features")
    report = extract_features(samples, *encoders, out, batch_size=2)
    assert report.written == [s.name for s in samples] and not report.failures and not report.skipped
    return out


def test_synthetic_dataset_is_deterministic(samples: list[Sample], tmp_path: Path) -> None:
    again = read_manifest(make_synthetic_dataset(tmp_path, 3, seed=5))
    assert [(s.name, s.subtitle, s.description, s.labels) for s in again] == \
        [(s.name, s.subtitle, s.description, s.labels) for s in samples]
    assert check_media(again) == (again, [])
    assert all(s.description and s.labels and s.video.is_file() for s in again)


def test_cached_features_equal_on_the_fly_encoding(encoders, samples, features: Path) -> None:
    visual_encoder, audio_encoder = encoders
    for sample in samples:
        inputs = load_inputs(sample.name, video=sample.video, audio=sample.audio, faces=sample.faces)
        frames, clips = inputs.visual, inputs.audio_clips
        assert frames.shape == (8, 224, 224, 3) and frames.dtype == np.uint8 and clips.shape == (8, 32000)
        expected_v = visual_encoder(torch.from_numpy(frames)[None])[0]
        expected_a = audio_encoder(torch.from_numpy(clips)[None])[0]
        visual, audio = load_features(features, sample.name, visual_encoder=str(TINY_CLIP),
                                      audio_encoder=str(TINY_HUBERT), visual_input="face")
        assert visual.dtype == audio.dtype == torch.float32
        assert visual.shape == (8, visual_encoder.dim) and audio.shape == (8, audio_encoder.dim)
        torch.testing.assert_close(visual, expected_v, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(audio, expected_a, rtol=1e-4, atol=1e-5)
    meta = read_feature_metadata(features, samples[0].name)
    assert meta["visual_encoder"] == str(TINY_CLIP) and meta["audio_encoder"] == str(TINY_HUBERT)
    assert meta["visual_input"] == "face" and meta["hubert_normalization"] == "sample"


def test_extraction_is_resumable_and_lists_failures(encoders, samples, features: Path, tmp_path: Path) -> None:
    out = tmp_path / "feats"
    for sample in samples[:2]:
        (out / f"{sample.name}.safetensors").parent.mkdir(parents=True, exist_ok=True)
        (out / f"{sample.name}.safetensors").write_bytes((features / f"{sample.name}.safetensors").read_bytes())
    stamp = (out / f"{samples[0].name}.safetensors").stat().st_mtime_ns
    broken = Sample("broken", video=tmp_path / "missing.mp4", labels=())
    report = extract_features([*samples, broken], *encoders, out, batch_size=4)
    assert report.skipped == [s.name for s in samples[:2]] and report.written == [samples[2].name]
    assert [f["name"] for f in report.failures] == ["broken"] and "not found" in report.failures[0]["reason"]
    assert json.loads((out / "failures.json").read_text())["failures"] == report.failures
    assert (out / f"{samples[0].name}.safetensors").stat().st_mtime_ns == stamp
    assert not (out / "broken.safetensors").exists()
    again = extract_features(samples, *encoders, out)
    assert again.written == [] and len(again.skipped) == 3


def test_features_do_not_depend_on_batch_mates(encoders, samples, features: Path, tmp_path: Path) -> None:
    from affectgpt.model.encoders import HubertAudioEncoder

    batch_norm = HubertAudioEncoder(TINY_HUBERT, normalization="batch")  # the original's training mode
    report = extract_features(samples, encoders[0], batch_norm, tmp_path, batch_size=3)
    assert len(report.written) == 3
    for sample in samples:
        torch.testing.assert_close(load_features(tmp_path, sample.name)[1], load_features(features, sample.name)[1],
                                   rtol=1e-4, atol=1e-5)
    assert read_feature_metadata(tmp_path, samples[0].name)["hubert_normalization"] == "sample"


def test_load_features_errors(samples, features: Path) -> None:
    name = samples[0].name
    with pytest.raises(InputError, match="no cached features for sample 'nobody'"):
        load_features(features, "nobody")
    with pytest.raises(InputError, match="made with"):
        load_features(features, name, visual_encoder="openai/clip-vit-large-patch14")
    with pytest.raises(InputError, match="not frame"):
        load_features(features, name, visual_input="frame")
    assert load_features(features, name, visual_encoder=str(TINY_CLIP) + "/")[0].shape[0] == 8  # same folder


def test_dataset_items_from_cache_and_media_agree(tiny_qwen2: Path, samples, features: Path) -> None:
    from affectgpt.model.lm import load_tokenizer

    tokenizer = load_tokenizer(tiny_qwen2)
    cfg = ModelConfig(visual_encoder=str(TINY_CLIP), audio_encoder=str(TINY_HUBERT), llm=str(tiny_qwen2))
    cached = TrainingDataset(samples, tokenizer, cfg, features_dir=features, seed=1)
    live = TrainingDataset(samples, tokenizer, cfg, seed=1)
    for data in (cached, live):
        data.set_epoch(2)
    for i in range(len(samples)):
        a, b = cached[i], live[i]
        assert a["task"] == b["task"] and torch.equal(a["input_ids"], b["input_ids"])
        assert torch.equal(a["labels"], b["labels"])
    items = [cached[0], cached[1]]
    batch = collate_batch(items, tokenizer.eos_token_id)
    assert batch.visual_features.shape == (2, 8, 24) and batch.audio_features.shape[:2] == (2, 8)
    assert batch.frames is None and batch.audio_clips is None
    live_batch = collate_batch([live[0], live[1]], tokenizer.eos_token_id)
    assert live_batch.frames.shape == (2, 8, 224, 224, 3) and live_batch.frames.dtype == torch.uint8
    assert live_batch.audio_clips.shape == (2, 8, 32000) and live_batch.visual_features is None
    assert torch.equal(live_batch.input_ids, batch.input_ids)
    audio_only = TrainingDataset(samples, tokenizer, replace(cfg, modalities=("audio", "text")), features_dir=features)
    assert "visual_features" not in audio_only[0] and "audio_features" in audio_only[0]
    with pytest.raises(InputError, match="1 of 2 samples have no cached features"):
        TrainingDataset([*samples[:1], Sample("new", video=Path("n.mp4"), labels=())], tokenizer, cfg,
                        features_dir=features)


def test_features_of_another_dtype_or_encoder_are_recomputed_never_reused(encoders, samples, features: Path,
                                                                          tmp_path: Path) -> None:
    from affectgpt.model.encoders import ClipVisualEncoder

    out = tmp_path / "feats"
    out.mkdir()
    for sample in samples:
        (out / f"{sample.name}.safetensors").write_bytes((features / f"{sample.name}.safetensors").read_bytes())
    assert read_feature_metadata(out, samples[0].name)["encoder_dtype"] == "float32"
    bf16 = ClipVisualEncoder(TINY_CLIP).to(torch.bfloat16)
    report = extract_features(samples, bf16, encoders[1].to(torch.bfloat16), out)
    encoders[1].to(torch.float32)
    assert report.recomputed == report.written == [s.name for s in samples] and not report.skipped
    assert read_feature_metadata(out, samples[0].name)["encoder_dtype"] == "bfloat16"
    with pytest.raises(InputError, match="computed in bfloat16, not float32") as caught:
        load_features(out, samples[0].name, encoder_dtype="float32")
    assert caught.value.field == "encoder_dtype"
    assert load_features(out, samples[0].name, encoder_dtype="bfloat16")[0].dtype == torch.float32
    # the same encoders again: kept; a file without the dtype (made before it was recorded) is recomputed
    from safetensors.torch import load_file, save_file

    again = extract_features(samples, bf16, encoders[1].to(torch.bfloat16), out)
    encoders[1].to(torch.float32)
    assert again.skipped == [s.name for s in samples] and not again.recomputed
    old = out / f"{samples[1].name}.safetensors"
    meta = {k: v for k, v in read_feature_metadata(out, samples[1].name).items() if k != "encoder_dtype"}
    save_file(load_file(str(old)), str(old), metadata=meta)
    with pytest.raises(InputError, match="an unrecorded dtype"):
        load_features(out, samples[1].name, encoder_dtype="bfloat16")
    assert extract_features(samples, *encoders, out).recomputed == [s.name for s in samples]


def test_features_extract_command(tmp_path, capsys):
    """The CLI over a generated dataset with the tiny encoders: files written, then skipped on a rerun."""
    from tiny_models import FIDELITY

    from affectgpt.cli import main
    from affectgpt.tiny.clips import make_synthetic_dataset

    if not (FIDELITY / "models" / "tiny-clip").is_dir():
        pytest.skip(f"tiny encoders not found under {FIDELITY}")
    manifest = make_synthetic_dataset(tmp_path / "data", 3, seed=1)
    args = ["features", "extract", "--manifest", str(manifest), "--output", str(tmp_path / "features"),
            "--visual-encoder", str(FIDELITY / "models" / "tiny-clip"),
            "--audio-encoder", str(FIDELITY / "models" / "tiny-hubert")]
    assert main(args) == 0
    assert "3 written, 0 already there, 0 failed" in capsys.readouterr().err
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 3
    assert main(args) == 0
    assert "0 written, 3 already there" in capsys.readouterr().err
    assert main([*args, "--device", "cpu"]) == 0  # the same encoders on the same device: kept, not recomputed
    assert "0 written, 3 already there" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main([*args, "--device", "cuda", "--force"]) == 2  # a missing GPU: one line, nothing rewritten
        assert "cannot use device 'cuda'" in capsys.readouterr().err


def test_features_extract_chooses_encoders_from_the_table(tmp_path, capsys):
    from affectgpt.cli import main

    args = ["features", "extract", "--manifest", str(tmp_path / "m.csv"), "--output", str(tmp_path / "out"),
            "--visual-encoder", str(tmp_path / "v"), "--audio-encoder", str(tmp_path / "a")]
    assert main([*args, "--visual-kind", "clp"]) == 2
    err = capsys.readouterr().err
    assert "unknown encoder 'clp'" in err and "did you mean 'clip'" in err
    assert main([*args, "--audio-kind", "hubrt"]) == 2
    assert "did you mean 'hubert'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
