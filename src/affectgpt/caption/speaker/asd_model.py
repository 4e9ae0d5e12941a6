"""The tiny audio-visual active-speaker model that asd.py loads weights into (torch; imported only by asd.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from affectgpt.errors import InputError
from affectgpt.extras import require


def build(settings: dict[str, Any]) -> Any:
    """The model for a checked config: audio and mouth embeddings -> GRU -> a speaking logit per frame."""
    torch = require("torch", extra="train")
    from affectgpt.caption.speaker.asd import MELS_PER_FRAME

    hidden, (width, height) = int(settings["hidden"]), settings["mouth_size"]

    class TinyAvAsd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.audio = torch.nn.Linear(MELS_PER_FRAME * int(settings["n_mels"]), hidden)
            self.visual = torch.nn.Linear(int(width) * int(height), hidden)
            self.fusion = torch.nn.GRU(2 * hidden, hidden, batch_first=True)
            self.head = torch.nn.Linear(hidden, 1)

        def forward(self, audio: Any, mouths: Any) -> Any:
            fused = torch.cat([torch.relu(self.audio(audio.flatten(2))), torch.relu(self.visual(mouths.flatten(2)))],
                              dim=-1)
            return self.head(self.fusion(fused)[0]).squeeze(-1)

    return TinyAvAsd().eval()


def load_weights(model: Any, path: Path) -> None:
    """Load a .safetensors file into `model`; InputError naming the file for missing, unknown or mis-shaped keys."""
    if not path.is_file():
        raise InputError("active-speaker weights not found", path=path, fix="pass the .safetensors file")
    safetensors_torch = require("safetensors.torch", extra="train")
    try:
        tensors = safetensors_torch.load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for a damaged header
        raise InputError(f"not a readable safetensors file ({exc})", path=path, fix="export the weights again") from exc
    expected = model.state_dict()
    unknown, missing = sorted(set(tensors) - set(expected)), sorted(set(expected) - set(tensors))
    if unknown or missing:
        raise InputError(f"the weights do not fit the model: unknown keys {unknown[:5]}, missing keys {missing[:5]}",
                         path=path, fix=f"convert them to the tiny-av-asd layout: {sorted(expected)}")
    wrong = [f"{k} {tuple(tensors[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if tuple(tensors[k].shape) != tuple(v.shape)]
    if wrong:
        raise InputError(f"wrong shapes: {'; '.join(wrong[:3])}", path=path,
                         fix="check n_mels, mouth_size and hidden in the JSON config against the weights")
    model.load_state_dict(tensors)


def run(model: Any, audio_frames: np.ndarray, mouths: np.ndarray, mouth_size: Any) -> np.ndarray:
    """[T] speaking probabilities for [T, 4, n_mels] audio frames and [T, h, w] uint8 mouth crops."""
    torch = require("torch", extra="train")
    cv2 = require("cv2", extra="media")
    width, height = (int(v) for v in mouth_size)
    crops = np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_AREA) for m in mouths])
    crops = (crops.astype(np.float32) - 128.0) / 128.0
    with torch.no_grad():
        logits = model(torch.from_numpy(audio_frames)[None], torch.from_numpy(crops)[None])[0]
    return torch.sigmoid(logits).numpy().astype(np.float64)
