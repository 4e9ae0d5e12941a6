"""The frozen encoders: CLIP per-frame image features and HuBERT per-clip audio features, from tensors.

Both follow ../shared/reference/fidelity/README.md steps 3 and 4 exactly (the fidelity tests compare them with the
original's recorded features). Two quirks of the original are options here, not defaults:

- HuBERT input normalisation: the original normalises the whole training batch at once ("batch"); ours
  normalises each sample's clips together ("sample"), which is also what the original does at inference.
- The original's "frozen" encoders run in train mode during training (its runner calls `model.train()` and the
  wrappers only call `.eval()` in `__init__`), so HuBERT's dropout, layerdrop and SpecAugment are active. Ours stay
  in eval mode whatever the parent does; `follow_train_mode=True` reproduces the original.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from affectgpt.errors import InputError
from affectgpt.extras import require
from affectgpt.model.known import DOWNLOAD_FIX
from affectgpt.registry import Registry

CLIP_SIZE = 224
CLIP_SAMPLES = 32000  # 2 s at 16 kHz: one HuBERT clip
NORM_EPS = 1e-7  # Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm
CLIP_PREPROCESSOR: dict[str, Any] = {
    "size": CLIP_SIZE, "crop_size": CLIP_SIZE, "do_resize": True, "do_center_crop": True, "do_normalize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711]}
"""OpenAI CLIP's preprocessor_config.json (clip-vit-large-patch14): the default of ClipVisualEncoder.from_model."""
HUBERT_PREPROCESSOR: dict[str, Any] = {"do_normalize": True, "sampling_rate": 16000}
"""chinese-hubert-large's feature extractor settings: the default of HubertAudioEncoder.from_model."""

ENCODERS = Registry("encoder", {"clip": "affectgpt.model.encoders:ClipVisualEncoder",
                                "hubert": "affectgpt.model.encoders:HubertAudioEncoder"})
"""Encoder name -> class, resolved lazily (each one pulls in a transformers class)."""


@runtime_checkable
class Encoder(Protocol):
    """A frozen feature extractor: a batch of T frames or clips per sample in, [B, T, dim] features out."""

    dim: int

    def __call__(self, inputs: Tensor) -> Tensor: ...


def _read_preprocessor(path_or_id: str | Path, local_files_only: bool) -> dict[str, Any]:
    """preprocessor_config.json of a local folder or a hub id (the hub only when local_files_only is False)."""
    folder = Path(path_or_id)
    if folder.is_dir():
        file = folder / "preprocessor_config.json"
        if not file.is_file():
            raise InputError("no preprocessor_config.json in the encoder folder", path=folder,
                             fix="use a complete transformers checkpoint folder")
        return json.loads(file.read_text(encoding="utf-8"))
    utils = require("transformers.utils", extra="model")
    try:
        file = utils.cached_file(str(path_or_id), "preprocessor_config.json", local_files_only=local_files_only)
    except OSError as exc:
        raise InputError(f"cannot find the encoder {path_or_id!r} locally or in the cache ({exc})",
                         field="encoder",
                         fix=DOWNLOAD_FIX) from exc
    return json.loads(Path(file).read_text(encoding="utf-8"))


def _from_pretrained(cls: Any, path_or_id: str | Path, local_files_only: bool, dtype: torch.dtype) -> Any:
    try:
        return cls.from_pretrained(str(path_or_id), local_files_only=local_files_only, dtype=dtype)
    except TypeError:  # transformers < 4.56 calls it torch_dtype
        return cls.from_pretrained(str(path_or_id), local_files_only=local_files_only, torch_dtype=dtype)
    except OSError as exc:
        raise InputError(f"cannot load {cls.__name__} from {path_or_id!r} ({exc})", field="encoder",
                         fix=DOWNLOAD_FIX) from exc


class _FrozenEncoder(nn.Module):
    """Frozen weights, eval mode, no gradients; `train()` leaves it in eval unless follow_train_mode is set."""

    def __init__(self, follow_train_mode: bool) -> None:
        super().__init__()
        self.follow_train_mode = follow_train_mode

    def _freeze(self) -> None:
        for param in self.parameters():
            param.requires_grad_(False)
        nn.Module.train(self, False)

    def train(self, mode: bool = True) -> _FrozenEncoder:
        # The original's encoders followed the parent into train mode (README "Nondeterminism" 3): a bug that
        # turns on HuBERT's dropout, layerdrop and SpecAugment; follow_train_mode=True reproduces it.
        return nn.Module.train(self, mode if self.follow_train_mode else False)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype


def original_faces_to_frames(raw: Tensor) -> Tensor:
    """The original's visual batch [B, 3, T, H, W] (float, integer values) -> our uint8 [B, T, H, W, 3].

    Reproduces the original's `.numpy().astype(np.uint8)` cast (README step 3.2): truncation toward zero, then
    wrap-around modulo 256 (no clamp). The channel order is kept as it is (no BGR/RGB swap, as in the original).
    """
    if raw.ndim != 5 or raw.shape[1] != 3:
        raise InputError(f"original visual batch has shape {list(raw.shape)}", field="raw_faces",
                         fix="pass [B, 3, T, H, W]")
    values = raw if not raw.is_floating_point() else raw.trunc()
    wrapped = torch.remainder(values.to(torch.int64), 256).to(torch.uint8)
    return wrapped.permute(0, 2, 3, 4, 1).contiguous()


class _ClipVision(nn.Module):
    """CLIP's vision tower and projection alone. The text tower and the logit scale are dropped: unused here
    (~123M parameters in CLIP-L), and a 0-d parameter such as the logit scale cannot be sharded by FSDP."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.vision_model = model.vision_model
        self.visual_projection = model.visual_projection
        self.config = model.config


class ClipVisualEncoder(_FrozenEncoder):
    """CLIP image features per frame: uint8 RGB frames [B, T, H, W, 3] -> `get_image_features` [B, T, dv].

    Preprocessing equals the CLIP processor: shortest side resized to its `size` (bicubic, only when the frames
    are not already that size), centre crop to `crop_size`, then `(x/255 - mean)/std` with the processor's
    mean/std. At 224x224 (our media layout) resize and crop are identities, so the pixels are exact; the resize
    path uses torch's antialiased bicubic, which is close to but not bit-equal with PIL's.

    Args:
        path_or_id: a local CLIP checkpoint folder (CLIPModel weights + preprocessor_config.json) or a hub id.
        local_files_only: never download (default); a hub id must then be in the local cache.
        dtype: weight dtype.
        follow_train_mode: reproduce the original's bug of running in train mode when the parent trains.
    """

    def __init__(self, path_or_id: str | Path, *, local_files_only: bool = True, dtype: torch.dtype = torch.float32,
                 follow_train_mode: bool = False) -> None:
        super().__init__(follow_train_mode)
        transformers = require("transformers", extra="model")
        pre = _read_preprocessor(path_or_id, local_files_only)
        self._setup(_from_pretrained(transformers.CLIPModel, path_or_id, local_files_only, dtype), pre)

    @classmethod
    def from_model(cls, model: nn.Module, preprocessor: dict[str, Any] | None = None, *,
                   follow_train_mode: bool = False) -> ClipVisualEncoder:
        """The encoder around an in-memory model instead of a checkpoint folder (random tiny encoders, tests).

        Args:
            model: a transformers CLIPModel, or anything with its `vision_model`, `visual_projection` and
                `config.projection_dim` (CLIPVisionModelWithProjection).
            preprocessor: preprocessor_config.json's keys (size, crop_size, image_mean, image_std, do_*);
                None: OpenAI CLIP's (CLIP_PREPROCESSOR).
            follow_train_mode: as for the constructor.
        """
        encoder = cls.__new__(cls)
        _FrozenEncoder.__init__(encoder, follow_train_mode)
        encoder._setup(model, dict(CLIP_PREPROCESSOR if preprocessor is None else preprocessor))
        return encoder

    def _setup(self, model: nn.Module, pre: dict[str, Any]) -> None:
        self.model = _ClipVision(model)
        self.dim = int(self.model.config.projection_dim)
        self.size = _edge(pre.get("size", CLIP_SIZE))
        self.crop_size = _edge(pre.get("crop_size", self.size))
        self.do_resize = bool(pre.get("do_resize", True))
        self.do_center_crop = bool(pre.get("do_center_crop", True))
        self.do_normalize = bool(pre.get("do_normalize", True))
        self.register_buffer("mean", torch.tensor(pre.get("image_mean", [0.0, 0.0, 0.0]), dtype=torch.float32),
                             persistent=False)
        self.register_buffer("std", torch.tensor(pre.get("image_std", [1.0, 1.0, 1.0]), dtype=torch.float32),
                             persistent=False)
        self._freeze()

    def preprocess(self, frames: Tensor) -> Tensor:
        """uint8 [N, H, W, 3] -> float32 pixel values [N, 3, crop, crop], as the CLIP processor gives them."""
        images = frames.permute(0, 3, 1, 2).to(torch.float32)
        height, width = images.shape[-2:]
        if self.do_resize and min(height, width) != self.size:
            scale = self.size / min(height, width)
            new = (max(self.size, int(height * scale)), max(self.size, int(width * scale)))  # HF truncates
            images = nn.functional.interpolate(images, size=new, mode="bicubic", align_corners=False, antialias=True)
            images = images.round().clamp(0, 255)  # the processor resizes uint8 images
        if self.do_center_crop:
            height, width = images.shape[-2:]
            if height < self.crop_size or width < self.crop_size:
                raise InputError(f"frames of {height}x{width} are smaller than the CLIP crop {self.crop_size}",
                                 field="frames", fix="resize the frames first")
            top, left = (height - self.crop_size) // 2, (width - self.crop_size) // 2
            images = images[..., top:top + self.crop_size, left:left + self.crop_size]
        images = images / 255.0
        if self.do_normalize:
            images = (images - self.mean[:, None, None]) / self.std[:, None, None]
        return images

    def check(self, frames: Tensor) -> None:
        """InputError unless frames is a uint8 tensor [B, T, H, W, 3]."""
        expected = f"uint8 RGB frames [B, T, H, W, 3] (our media layout, H = W = {CLIP_SIZE})"
        if not isinstance(frames, Tensor):
            raise InputError(f"frames are a {type(frames).__name__}, not a torch tensor", field="frames",
                             fix=f"pass {expected}")
        if frames.ndim != 5 or frames.shape[-1] != 3 or min(frames.shape) == 0:
            hint = " (the original's [B, 3, T, H, W]: convert with original_faces_to_frames)" \
                if frames.ndim == 5 and frames.shape[1] == 3 else ""
            raise InputError(f"frames have shape {list(frames.shape)}{hint}", field="frames",
                             fix=f"pass {expected}")
        if frames.dtype != torch.uint8:
            raise InputError(f"frames have dtype {frames.dtype}", field="frames", fix=f"pass {expected}")

    def forward(self, frames: Tensor) -> Tensor:
        """uint8 [B, T, H, W, 3] -> [B, T, dv]."""
        self.check(frames)
        batch, steps = frames.shape[:2]
        pixels = self.preprocess(frames.reshape(batch * steps, *frames.shape[2:]).to(self.device))
        with torch.no_grad():  # frozen: nothing upstream needs these gradients
            # vision tower + projection = CLIPModel.get_image_features (whose return type changed in transformers 5)
            pooled = self.model.vision_model(pixel_values=pixels.to(self.dtype)).pooler_output
            features = self.model.visual_projection(pooled)
        return features.reshape(batch, steps, -1)


def _edge(size: Any) -> int:
    if isinstance(size, dict):
        return int(size.get("shortest_edge") or size.get("height"))
    return int(size)


class HubertAudioEncoder(_FrozenEncoder):
    """HuBERT clip features: audio clips [B, T, 32000] (16 kHz) -> [B, T, da].

    Per clip: the mean of the last 4 entries of HF 4.x `hidden_states` (the last one is after the final LayerNorm
    in stable-layer-norm models, the other three are raw residual streams: README "spec is wrong" 4; see
    `hidden_states` for transformers 5), then the mean over time. If the feature extractor config has
    `do_normalize`, the input is first normalised with `(x - mean)/sqrt(var + 1e-7)` (population variance) over
    each sample's T clips together ("sample", ours and the original's inference) or over the whole batch
    ("batch": the original's training, which makes a sample's features depend on its batch-mates; README
    step 4.2).

    Args:
        path_or_id: a local HuBERT checkpoint folder (weights + preprocessor_config.json) or a hub id.
        normalization: "sample" or "batch".
        local_files_only, dtype, follow_train_mode: as for ClipVisualEncoder.
        clip_samples: samples per clip (2 s at 16 kHz).
    """

    def __init__(self, path_or_id: str | Path, *, normalization: str = "sample", local_files_only: bool = True,
                 dtype: torch.dtype = torch.float32, follow_train_mode: bool = False,
                 clip_samples: int = CLIP_SAMPLES) -> None:
        super().__init__(follow_train_mode)
        if normalization not in ("sample", "batch"):
            raise InputError(f"{normalization!r} is not one of ('sample', 'batch')", field="hubert_normalization",
                             fix="choose sample or batch")
        transformers = require("transformers", extra="model")
        pre = _read_preprocessor(path_or_id, local_files_only)
        self._setup(_from_pretrained(transformers.HubertModel, path_or_id, local_files_only, dtype), pre,
                    normalization, clip_samples)

    @classmethod
    def from_model(cls, model: nn.Module, preprocessor: dict[str, Any] | None = None, *,
                   normalization: str = "sample", follow_train_mode: bool = False,
                   clip_samples: int = CLIP_SAMPLES) -> HubertAudioEncoder:
        """The encoder around an in-memory transformers HubertModel instead of a checkpoint folder.

        Args:
            model: a HubertModel (its `encoder.layers` are hooked, see `hidden_states`).
            preprocessor: the feature extractor's keys (do_normalize); None: HUBERT_PREPROCESSOR (normalising,
                as chinese-hubert-large's).
            normalization, follow_train_mode, clip_samples: as for the constructor.
        """
        encoder = cls.__new__(cls)
        _FrozenEncoder.__init__(encoder, follow_train_mode)
        encoder._setup(model, dict(HUBERT_PREPROCESSOR if preprocessor is None else preprocessor), normalization,
                       clip_samples)
        return encoder

    def _setup(self, model: nn.Module, pre: dict[str, Any], normalization: str, clip_samples: int) -> None:
        if normalization not in ("sample", "batch"):
            raise InputError(f"{normalization!r} is not one of ('sample', 'batch')", field="hubert_normalization",
                             fix="choose sample or batch")
        self.model = model
        self.dim = int(self.model.config.hidden_size)
        self.normalization = normalization
        self.do_normalize = bool(pre.get("do_normalize", False))
        self.clip_samples = clip_samples
        self._freeze()

    def normalize(self, clips: Tensor) -> Tensor:
        """[B, T, S] float -> the feature extractor's input values (one mean/variance per sample or per batch)."""
        if not self.do_normalize:
            return clips.to(torch.float32)
        values = clips.to(torch.float64)  # float64 statistics: numpy's float32 mean differs by ~1e-7 at most
        dims = tuple(range(values.ndim)) if self.normalization == "batch" else (1, 2)
        mean = values.mean(dim=dims, keepdim=True)
        var = values.var(dim=dims, keepdim=True, correction=0)
        return ((values - mean) / torch.sqrt(var + NORM_EPS)).to(torch.float32)

    def check(self, clips: Tensor) -> None:
        """InputError unless clips is a float tensor [B, T, clip_samples]."""
        expected = f"float audio clips [B, T, {self.clip_samples}] ({self.clip_samples / 16000:g} s at 16 kHz)"
        if not isinstance(clips, Tensor):
            raise InputError(f"audio clips are a {type(clips).__name__}, not a torch tensor", field="audio",
                             fix=f"pass {expected}")
        if clips.ndim != 3 or clips.shape[-1] != self.clip_samples or min(clips.shape) == 0:
            hint = " (the original's [B, T, 1, S]: take [:, :, 0])" if clips.ndim == 4 else ""
            raise InputError(f"audio clips have shape {list(clips.shape)}{hint}", field="audio",
                             fix=f"pass {expected}")
        if not clips.is_floating_point():
            raise InputError(f"audio clips have dtype {clips.dtype}", field="audio", fix=f"pass {expected}")

    def forward(self, clips: Tensor) -> Tensor:
        """[B, T, S] -> [B, T, da]."""
        self.check(clips)
        batch, steps = clips.shape[:2]
        values = self.normalize(clips.to(self.device)).reshape(batch * steps, -1).to(self.dtype)
        with torch.no_grad():  # frozen: nothing upstream needs these gradients
            hidden = self.hidden_states(values)
            features = torch.stack(hidden[-4:]).mean(dim=0).mean(dim=1)
        return features.reshape(batch, steps, -1)

    def hidden_states(self, values: Tensor) -> list[Tensor]:
        """HuBERT's `hidden_states` as transformers 4.x returns them: each encoder layer's input, then the
        encoder output (after the final LayerNorm in stable-layer-norm models), so len = layers + 1.

        Captured with hooks instead of `output_hidden_states=True`, because transformers 5 changed that tuple: its
        last entry is the last layer's output *before* the final LayerNorm (max |diff| 6.2 on the tiny model),
        while the original (4.49) averaged the normalised one. With layerdrop in train mode (follow_train_mode)
        a skipped layer contributes no entry.
        """
        captured: list[Tensor] = []

        def grab(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            captured.append(args[0] if args else kwargs["hidden_states"])

        hooks = [layer.register_forward_pre_hook(grab, with_kwargs=True) for layer in self.model.encoder.layers]
        try:
            output = self.model(values)
        finally:
            for hook in hooks:
                hook.remove()
        return [*captured, output.last_hidden_state]
