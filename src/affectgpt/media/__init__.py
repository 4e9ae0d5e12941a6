"""Media: a video file (and optional audio file and subtitle) -> exactly the inputs AffectGPT expects.

`load_clip(video, audio=None, subtitle=None, n_frames=8)` returns a Clip (media/clip.py); `load_inputs(name,
video=..., cache=..., visual_input=...)` is the one road from a clip's files to the model's arrays
(media/inputs.py); `affectgpt preprocess` fills the clip cache (media/batch.py, media/cache.py). Needs
`affectgpt[media]` (PyAV, OpenCV, soxr). No torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Clip", "ModelInputs", "load_clip", "load_inputs"]
_HOMES = {"Clip": "clip", "load_clip": "clip", "ModelInputs": "inputs", "load_inputs": "inputs"}


def __getattr__(name: str) -> Any:  # lazy: importing affectgpt.media loads no PyAV, OpenCV or numpy
    if name in _HOMES:
        from importlib import import_module

        from affectgpt.extras import require

        for module in ("numpy", "av", "cv2", "soxr"):  # one clear message when the extra is missing
            require(module, extra="media")
        return getattr(import_module(f"affectgpt.media.{_HOMES[name]}"), name)
    raise AttributeError(name)
