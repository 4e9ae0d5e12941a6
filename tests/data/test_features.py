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

from affectgpt.data.dataset import TrainingDataset, collate_batch, make_synthetic_dataset  # noqa: E402
from affectgpt.data.features import (  # noqa: E402
    extract_features,
    load_features,
    load_media,
    read_audio_file,
    read_feature_metadata,
)
from affectgpt.data.manifests import check_media, read_manifest  # noqa: E402
from affectgpt.data.sample import Sample  # noqa: E402
from affectgpt.errors import InputError  # noqa: E402
from affectgpt.model.config import ModelConfig  # noqa: E402

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
        frames, clips = load_media(sample)
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


def test_media_from_face_track_and_audio_file(samples, tmp_path: Path) -> None:
    import av

    faces = np.stack([np.full((112, 112, 3), i * 20, np.uint8) for i in range(12)])
    np.save(tmp_path / "f.npy", faces)
    wav = tmp_path / "a.wav"
    with av.open(str(wav), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=22050)
        stream.layout = "stereo"
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(66150) / 22050)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate = 22050
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    sample = Sample("npy", faces=tmp_path / "f.npy", audio=wav, labels=())
    visual, audio = load_media(sample)
    assert visual.shape == (8, 224, 224, 3) and visual.dtype == np.uint8
    # the original's indices for T=12: floor(i * 12 / 8)
    assert [int(v[100, 100, 0]) for v in visual] == [20 * i for i in (0, 1, 3, 4, 6, 7, 9, 10)]
    assert audio.shape == (8, 32000) and np.allclose(audio, read_audio_file(wav))
    assert 0.2 < float(np.abs(audio).max()) < 0.35  # resampled to 16 kHz, mono, not normalised
    with pytest.raises(InputError, match="'lost'"):
        load_media(Sample("lost", video=tmp_path / "lost.mp4", labels=()))
    with pytest.raises(InputError, match="no media"):
        load_media(Sample("bare", faces=tmp_path / "f.npy", labels=()))
    # frame input cannot use the face track: it needs the video
    with_video = replace(sample, video=samples[0].video)
    frames, _ = load_media(with_video, visual_input="frame")
    assert frames.shape == (8, 224, 224, 3) and not np.array_equal(frames, visual)


def test_features_extract_command(tmp_path, capsys):
    """The CLI over a generated dataset with the tiny encoders: files written, then skipped on a rerun."""
    from tiny_models import FIDELITY

    from affectgpt.cli import main
    from affectgpt.data.dataset import make_synthetic_dataset

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
