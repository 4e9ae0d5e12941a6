"""The speaker-mismatch detector on variants of the reference clip built here, the asd-weights load path, and the
low-level stage's speaker and percentile-tail filters."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from affectgpt.caption.base import StageContext
from affectgpt.caption.speaker import DETECTORS, SpeakerVerdict
from affectgpt.caption.stages import STAGES
from affectgpt.errors import InputError

MARGIN = 0.1  # every compared variant's score stays this far from the threshold


def _read(path: Path) -> tuple[np.ndarray, np.ndarray, int, float]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    with av.open(str(path)) as container:
        chunks, rate = [], 0
        for frame in container.decode(audio=0):
            data = frame.to_ndarray()
            if not frame.format.is_planar:
                data = data.reshape(-1, len(frame.layout.channels)).T
            chunks.append(data.astype(np.float32).mean(axis=0))
            rate = frame.sample_rate
    return frames, np.concatenate(chunks), rate, fps


def _write(path: Path, frames: np.ndarray, audio: np.ndarray, rate: int, fps: float) -> Path:
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=round(fps))
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        video.options = {"crf": "23", "preset": "ultrafast"}
        sound = container.add_stream("aac", rate=rate)
        sound.layout = "mono"
        for image in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        samples = np.clip(audio, -1, 1).astype(np.float32)
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="fltp", layout="mono")
            frame.sample_rate = rate
            container.mux(sound.encode(frame))
        container.mux(sound.encode())
    return path


def _espeak(rate: int, n: int) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    text = "I was not expecting that at all, it is really quite surprising to me today."
    data = subprocess.run(["espeak-ng", "--stdout", "-s", "150", text], capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(data)) as handle:
        voice = np.frombuffer(handle.readframes(handle.getnframes()), np.int16).astype(np.float32) / 32768
        voice_rate = handle.getframerate()
    from affectgpt.media.audio import resample

    voice = resample(voice, voice_rate, rate) * 0.8
    return np.pad(voice, (0, max(0, n - len(voice))))[:n]


@pytest.fixture(scope="module")
def variants(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    source = reference_dir / "media" / "sample_00000000.mp4"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    folder = tmp_path_factory.mktemp("speaker")
    frames, audio, rate, fps = _read(source)
    out = {"original": source,
           "frozen": _write(folder / "frozen.mp4", np.repeat(frames[:1], len(frames), axis=0), audio, rate, fps),
           "delayed": _write(folder / "delayed.mp4", frames, np.concatenate([np.zeros(rate), audio])[:len(audio)],
                             rate, fps),
           "delayed_half": _write(folder / "delayed_half.mp4", frames,
                                  np.concatenate([np.zeros(rate // 2), audio])[:len(audio)], rate, fps),
           "silence": _write(folder / "silence.mp4", frames, np.zeros_like(audio), rate, fps)}
    if shutil.which("espeak-ng"):
        out["other_voice"] = _write(folder / "voice.mp4", frames, _espeak(rate, len(audio)), rate, fps)
    return out


@pytest.fixture(scope="module")
def verdicts(variants: dict[str, Path]) -> dict[str, SpeakerVerdict]:
    detector = DETECTORS.get("sync")()
    found = {name: detector(path) for name, path in variants.items()}
    for name, verdict in found.items():
        print(f"\nspeaker sync {name:<12} {verdict.decision:<9} score {verdict.score:+.4f} "
              f"margin {verdict.margin:+.4f} "
              f"confidence {verdict.confidence:+.4f} lag {verdict.details.get('lag_seconds')} "
              f"{verdict.details['timings']['total']:.2f} s")
    return found


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "decision"), [("original", "match"), ("frozen", "mismatch"),
                                                   ("other_voice", "mismatch"), ("delayed", "mismatch"),
                                                   ("silence", "silent")])
def test_sync_detector_decides_each_variant_with_a_margin(verdicts, variant, decision):
    if variant not in verdicts:
        pytest.skip("espeak-ng is not installed")
    verdict = verdicts[variant]
    assert verdict.decision == decision, verdict
    if decision == "match":
        assert verdict.margin >= MARGIN and verdict.details["face_share"] > 0.5
    elif decision == "mismatch":
        assert verdict.margin <= -MARGIN
    else:
        assert verdict.score == 0.0 and verdict.details["speech_segments"] == []


@pytest.mark.slow
def test_sync_detector_calls_an_offset_beyond_the_lag_window_a_mismatch(verdicts):
    verdict = verdicts["delayed_half"]  # 0.5 s late: the window's edge still correlates, a later lag more so
    assert verdict.decision == "mismatch" and verdict.details["note"].startswith("offset")
    assert verdict.details["best_lag_within_1s"] > 0.3


def test_sync_detector_reports_no_face_when_speech_has_nobody(tmp_path, reference_dir):
    rate, fps = 16000, 25
    frames = np.full((50, 96, 128, 3), 90, np.uint8)
    _, audio, source_rate, _ = _read(reference_dir / "media" / "sample_00000000.mp4")
    from affectgpt.media.audio import resample

    clip = _write(tmp_path / "blank.mp4", frames, resample(audio, source_rate, rate)[:2 * rate], rate, fps)
    verdict = DETECTORS.get("sync")()(clip)
    assert verdict.decision == "no_face" and verdict.reason().startswith("speaker_mismatch: no_face")


@pytest.mark.parametrize("name", DETECTORS.names())
def test_every_detector_entry_resolves(name):
    assert callable(DETECTORS.get(name))


def _tiny_weights(folder: Path, **changes) -> Path:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from affectgpt.caption.speaker.asd import CONFIG_KEYS
    from affectgpt.caption.speaker.asd_model import build

    config = {**CONFIG_KEYS, "n_mels": 8, "mouth_size": [12, 8], "hidden": 4}
    torch.manual_seed(0)
    tensors = {k: v.clone().contiguous() for k, v in build(config).state_dict().items()}
    tensors.update(changes)
    weights = folder / "asd.safetensors"
    save_file(tensors, str(weights))
    (folder / "asd.json").write_text(json.dumps(config), encoding="utf-8")
    return weights


def test_asd_weights_load_and_score_frames(tmp_path):
    from affectgpt.caption.speaker.asd import AsdWeightsDetector, log_mel

    detector = DETECTORS.get("asd-weights")(weights=_tiny_weights(tmp_path))
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, 16000).astype(np.float32)
    assert log_mel(audio, 8).shape == (98, 8)
    times = np.arange(25) / 25.0
    scores = detector.frame_scores(rng.integers(0, 255, (25, 32, 48), dtype=np.uint8), audio, times, 25.0)
    assert scores.shape == (25,) and np.all((scores > 0) & (scores < 1))
    assert isinstance(detector, AsdWeightsDetector)


def test_asd_weights_refuse_unknown_keys_and_wrong_shapes(tmp_path):
    torch = pytest.importorskip("torch")
    from affectgpt.caption.speaker.asd import AsdWeightsDetector

    weights = _tiny_weights(tmp_path, extra=torch.zeros(2))
    with pytest.raises(InputError, match="unknown keys") as error:
        AsdWeightsDetector(weights)
    assert error.value.path == str(weights)
    weights = _tiny_weights(tmp_path, **{"head.weight": torch.zeros(1, 5)})
    with pytest.raises(InputError, match="wrong shapes") as error:
        AsdWeightsDetector(weights)
    assert error.value.path == str(weights)
    (tmp_path / "asd.json").write_text(json.dumps({"layers": 3}), encoding="utf-8")
    with pytest.raises(InputError, match="unknown config keys"):
        AsdWeightsDetector(weights)


class _Fixed:
    threshold = 0.35

    def __init__(self, decisions):
        self.decisions = decisions

    def __call__(self, video, audio=None):
        decision = self.decisions[Path(video).stem]
        score = {"match": 0.6, "mismatch": 0.1}.get(decision, 0.0)
        return SpeakerVerdict(decision, score, 0.35, margin=score - 0.35 if score else 0.0)


def test_lowlevel_drops_a_mismatch_with_its_reason_and_keeps_a_silent_clip(monkeypatch):
    from affectgpt.caption.stages import lowlevel

    fixed = _Fixed({"a": "match", "b": "mismatch", "c": "silent", "d": "no_face"})
    monkeypatch.setattr(lowlevel, "_detector", lambda speaker, resources: fixed)
    stage = STAGES.get("lowlevel")()
    config = {"length_tails": {"enabled": False}, "speaker_mismatch": {"enabled": True, "threshold": 0.35}}
    context = StageContext(config=config, output=Path("."), params=stage.prepare([], config))
    results = {n: stage({"description": "x", "video": f"/clips/{n}.mp4"}, context) for n in "abcd"}
    assert results["a"].dropped is None and results["c"].dropped is None
    assert results["c"].info["speaker"]["decision"] == "silent"
    assert results["b"].dropped == "speaker_mismatch: mismatch (score 0.100, threshold 0.35)"
    assert results["d"].dropped.startswith("speaker_mismatch: no_face")


def test_percentile_tails_on_hand_made_lengths():
    stage = STAGES.get("lowlevel")()
    lengths = list(range(1, 101))  # 1..100: numpy's linear percentiles 2.5 -> 3.475, 97.5 -> 97.525
    records = [{"description": " ".join(["w"] * n)} for n in lengths]
    config = {"length_tails": {"enabled": True, "mode": "percentile", "low": 2.5, "high": 97.5}}
    params = stage.prepare(records, config)
    assert (params["length_tails"]["low"], params["length_tails"]["high"]) == (3.475, 97.525)
    assert sum(params["length_histogram"]["counts"]) == 100 and len(params["length_histogram"]["edges"]) == 21
    context = StageContext(config=config, output=Path("."), params=params)
    dropped = [n for n, r in zip(lengths, records, strict=True) if stage(r, context).dropped]
    assert dropped == [1, 2, 3, 98, 99, 100]
    with pytest.raises(InputError, match="percentiles"):
        stage.check({"length_tails": {"mode": "percentile", "low": 60, "high": 40}})
