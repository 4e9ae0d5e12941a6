"""Media: a video file (and optional audio file and subtitle) -> exactly the inputs AffectGPT expects.

`load_clip(video, audio=None, subtitle=None, n_frames=8)` returns a Clip (media/clip.py); `affectgpt
preprocess` runs it over folders (media/batch.py). Needs `affectgpt[media]` (PyAV, OpenCV, soxr). No torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Clip", "load_clip"]


def __getattr__(name: str) -> Any:  # lazy: importing affectgpt.media loads no PyAV, OpenCV or numpy
    if name in __all__:
        from affectgpt.extras import require

        for module in ("numpy", "av", "cv2", "soxr"):  # one clear message when the extra is missing
            require(module, extra="media")
        from affectgpt.media import clip

        return getattr(clip, name)
    raise AttributeError(name)
