"""HFMultimodal: answer bench jobs with a local multimodal transformers model folder and its processor's chat template.

Only local folders are loaded (`local_files_only=True`): a hub id is an InputError, nothing is downloaded. The
processor comes from AutoProcessor; the model from AutoModelForMultimodalLM or AutoModelForImageTextToText (the
first whose mapping knows the config), else the class the config names in `architectures`. torch and
transformers are imported when the backend is built, never when this module is imported.

One user message per job: the clip's frames (or face crops, `visual="faces"`) as images, or as one video
(`video_as="video"`, for processors with a video processor), then its audio (16 kHz), then the instruction. The
parts are written as `{"type": "image"}` / `{"type": "video"}` / `{"type": "audio"}` / `{"type": "text"}` entries
for the chat template, and the media go to the processor beside the rendered text, so the processor expands each
placeholder into the model's own tokens. The instruction is always sent; the "text" modality adds the clip's
subtitle to it (harness.prompts.render).

Jobs run one at a time (batch 1). Decoding: greedy unless `do_sample` (then temperature, top_p, top-k off, as
in vLLM); `torch.manual_seed(seed)` runs before every job, so a job's answer does not depend on the others.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from affectgpt.errors import InputError
from affectgpt.extras import require
from affectgpt.harness.base import Job, OnResult, Output
from affectgpt.harness.prompts import render

MODALITIES = ("image", "audio", "text")
VIDEO_AS = ("images", "video")
VISUALS = ("frames", "faces")
DTYPES = ("auto", "float32", "float16", "bfloat16")
SAMPLE_RATE = 16000
AUTO_CLASSES = ("AutoModelForMultimodalLM", "AutoModelForImageTextToText")


class HFMultimodal:
    """A MultimodalBackend running a local transformers multimodal model.

    Args:
        model: a local folder with config.json, the weights and the processor files (with a chat template).
        dtype: "auto" (the checkpoint's own) or float32, float16, bfloat16.
        device: "auto" (cuda when available, else cpu), or a torch device string ("cpu", "cuda:1").
        modalities: what is sent, among "image", "audio", "text" (text = the subtitle in the instruction).
        n_frames: at most this many frames, picked uniformly from what the clip holds.
        video_as: "images" (one image part per frame) or "video" (the frames as one video).
        visual: "frames" (the sampled frames) or "faces" (the face crops).
        max_new_tokens, do_sample, temperature, top_p, seed: decoding (see the module docstring).

    Raises:
        InputError: not a local folder (hub ids are not downloaded), not a model folder, an option out of range,
            a processor that cannot load, has no chat template or takes no input of an asked modality.
        MissingExtra: torch or transformers is not installed (`affectgpt[model]`).
    """

    name = "transformers"

    def __init__(self, model: str | Path, *, dtype: str = "float32", device: str = "cpu",
                 modalities: Sequence[str] = ("image", "text"), n_frames: int = 4, video_as: str = "images",
                 visual: str = "frames", max_new_tokens: int = 64, do_sample: bool = False,
                 temperature: float = 1.0, top_p: float = 0.9, seed: int = 0) -> None:
        path = _model_folder(model)
        self.modalities = _check_options(modalities, n_frames, video_as, visual, dtype, max_new_tokens,
                                         temperature, top_p, seed)
        self.model = str(path)
        self.n_frames, self.video_as, self.visual, self.dtype = n_frames, video_as, visual, dtype
        self.sampling: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": bool(do_sample),
                                         "seed": seed}
        if do_sample:
            self.sampling.update(temperature=temperature, top_p=top_p)
        self.needs = frozenset(({visual} if "image" in self.modalities else set())
                               | ({"audio"} if "audio" in self.modalities else set())
                               | ({"subtitle"} if "text" in self.modalities else set()))
        self._torch = torch = require("torch", extra="model")
        self._transformers = transformers = require("transformers", extra="model")
        from affectgpt.llm.local_hf import resolve_device

        self.device = resolve_device(device)
        self._processor = _load_processor(transformers, path)
        call = inspect.signature(type(self._processor).__call__).parameters
        self._audio_key = "audios" if "audios" in call and "audio" not in call else "audio"  # transformers < 4.5x
        self._template = _chat_template(self._processor, path)
        self._check_processor(path)
        self._model = _load_model(torch, transformers, path, dtype, self.device)

    def __repr__(self) -> str:
        return f"HFMultimodal({self.model!r}, modalities={self.modalities}, device={self.device!r})"

    def _check_processor(self, path: Path) -> None:
        wanted = {"image": ("video_processor",) if self.video_as == "video" else ("image_processor",),
                  "audio": ("feature_extractor", "audio_processor")}
        for modality in self.modalities:
            attributes = wanted.get(modality, ())
            if attributes and not any(getattr(self._processor, a, None) is not None for a in attributes):
                what = "video" if modality == "image" and self.video_as == "video" else modality
                raise InputError(f"this model's processor ({type(self._processor).__name__}) takes no {what}",
                                 path=path, field="modalities",
                                 fix=f"leave {modality!r} out of the modalities, or use a model that takes it")

    def answer(self, jobs: Sequence[Job], on_result: OnResult | None = None) -> list[Output]:
        """Answer every job in order; one failing job never fails the others (its Output has the error)."""
        outputs = []
        for index, job in enumerate(jobs):
            output = self._answer_one(job)
            outputs.append(output)
            if on_result is not None:
                on_result(index, output)
        return outputs

    def _answer_one(self, job: Job) -> Output:
        start = time.perf_counter()
        text = error = None
        try:
            text = self._generate(job)
        except InputError as exc:
            error = exc.what + (f". Fix: {exc.fix}" if exc.fix else "")
        except Exception as exc:  # one odd clip (or an out-of-memory) fails that job only
            error = f"generation failed: {type(exc).__name__}: {exc}"
        return Output(job.clip.name, text, error=error, backend=self.name, model=self.model,
                      sampling=dict(self.sampling), seconds=time.perf_counter() - start)

    def _generate(self, job: Job) -> str:
        torch = self._torch
        content, media = self._content(job)
        messages = [{"role": "user", "content": content}]
        prompt = self._processor.apply_chat_template(messages, chat_template=self._template, tokenize=False,
                                                     add_generation_prompt=True)
        inputs = self._processor(text=[prompt], return_tensors="pt", **media)
        dtype = self._model.dtype
        batch = {key: (value.to(self.device, dtype) if value.is_floating_point() else value.to(self.device))
                 for key, value in inputs.items() if hasattr(value, "to")}
        options: dict[str, Any] = {"max_new_tokens": self.sampling["max_new_tokens"]}
        if self.sampling["do_sample"]:
            options.update(do_sample=True, temperature=self.sampling["temperature"], top_p=self.sampling["top_p"],
                           top_k=0)
        else:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        tokenizer = getattr(self._processor, "tokenizer", None)
        pad = getattr(tokenizer, "pad_token_id", None)
        options["pad_token_id"] = pad if pad is not None else getattr(tokenizer, "eos_token_id", None)
        torch.manual_seed(self.sampling["seed"])
        with torch.inference_mode():
            output = self._model.generate(**batch, **options)
        new_tokens = output[:, batch["input_ids"].shape[1]:]
        return str(self._processor.batch_decode(new_tokens, skip_special_tokens=True)[0]).strip()

    def _content(self, job: Job) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The message's content entries and the processor's media arguments for one job."""
        clip = job.clip
        content: list[dict[str, Any]] = []
        media: dict[str, Any] = {}
        if "image" in self.modalities:
            frames = clip.faces if self.visual == "faces" else clip.frames
            if frames is None or len(frames) == 0:
                raise InputError(f"the clip has no {self.visual}", field="modalities",
                                 fix=f"read the clip with {self.visual!r} among the backend's needs")
            picked = _pick(np.asarray(frames), self.n_frames)
            if self.video_as == "video":
                content.append({"type": "video"})
                media["videos"] = [picked]
            else:
                content.extend({"type": "image"} for _ in picked)
                media["images"] = list(picked)
        if "audio" in self.modalities and clip.audio is not None and len(clip.audio):
            content.append({"type": "audio"})
            media[self._audio_key] = [np.asarray(clip.audio, np.float32)]
            media["sampling_rate"] = SAMPLE_RATE
        subtitle = clip.subtitle if "text" in self.modalities else ""
        content.append({"type": "text", "text": render(job.prompt, subtitle)})
        return content, media

    def provenance(self) -> dict[str, Any]:
        """The folder, model type and class, processor, dtype, device, options, sampling and versions."""
        config = self._model.config
        return {"backend": self.name, "model": self.model, "model_type": getattr(config, "model_type", None),
                "model_class": type(self._model).__name__, "processor_class": type(self._processor).__name__,
                "dtype": self.dtype, "loaded_dtype": str(self._model.dtype).removeprefix("torch."),
                "device": self.device, "modalities": list(self.modalities), "n_frames": self.n_frames,
                "video_as": self.video_as, "visual": self.visual, "sampling": dict(self.sampling),
                "versions": {"transformers": self._transformers.__version__, "torch": self._torch.__version__}}


def _model_folder(model: str | Path) -> Path:
    path = Path(model).expanduser()
    if not path.is_dir():
        raise InputError(f"{str(model)!r} is not a local folder (nothing is downloaded)", field="model",
                         fix="pass the folder of a downloaded model (config.json, weights, processor files)")
    if not (path / "config.json").is_file():
        raise InputError("not a transformers model folder: config.json is missing", path=path, field="model")
    return path


def _check_options(modalities: Sequence[str], n_frames: int, video_as: str, visual: str, dtype: str,
                   max_new_tokens: int, temperature: float, top_p: float, seed: int) -> tuple[str, ...]:
    """The modalities in MODALITIES order; InputError for an option out of range."""
    if isinstance(modalities, str):
        modalities = [modalities]
    for name, value, choices in (("video_as", video_as, VIDEO_AS), ("visual", visual, VISUALS),
                                 ("dtype", dtype, DTYPES), *(("modalities", m, MODALITIES) for m in modalities)):
        if value not in choices:
            raise InputError(f"unknown {name} {value!r}", field=name, fix=f"choose among {', '.join(choices)}")
    if not modalities:
        raise InputError("no modality to send", field="modalities", fix=f"choose among {', '.join(MODALITIES)}")
    for name, value, low, high in (("n_frames", n_frames, 1, 256), ("max_new_tokens", max_new_tokens, 1, 1 << 16),
                                   ("seed", seed, 0, 2**63 - 1)):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise InputError(f"{name} must be a whole number in [{low}, {high}], got {value!r}", field=name)
    if not temperature > 0:
        raise InputError(f"temperature must be > 0, got {temperature!r}", field="temperature",
                         fix="for greedy decoding leave do_sample off")
    if not 0 < top_p <= 1:
        raise InputError(f"top_p must be in (0, 1], got {top_p!r}", field="top_p")
    return tuple(m for m in MODALITIES if m in modalities)


def _pick(frames: np.ndarray, n_frames: int) -> np.ndarray:
    if len(frames) <= n_frames:
        return frames
    from affectgpt.media.sampling import frame_indices

    return frames[frame_indices(len(frames), n_frames)]


def _load_processor(transformers: Any, path: Path) -> Any:
    try:
        return transformers.AutoProcessor.from_pretrained(str(path), local_files_only=True)
    except ImportError as exc:  # e.g. a video processor without torchvision
        reason = " ".join(str(exc).split()).rstrip(".")
        raise InputError(f"the processor needs a package that is not installed: {reason}", path=path,
                         field="model", fix="install the package it names (e.g. torchvision)") from exc
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise InputError(f"cannot load the processor: {exc}", path=path, field="model") from exc


def _chat_template(processor: Any, path: Path) -> str:
    template = getattr(processor, "chat_template", None) or getattr(getattr(processor, "tokenizer", None),
                                                                     "chat_template", None)
    if not template or not isinstance(template, str):
        raise InputError("the processor has no chat template", path=path, field="chat_template",
                         fix="use a chat/instruct model folder, or add chat_template.jinja to the folder")
    return template


def _model_class(transformers: Any, config: Any, path: Path) -> Any:
    for name in AUTO_CLASSES:
        auto = getattr(transformers, name, None)
        if auto is not None and type(config) in auto._model_mapping:
            return auto
    for name in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, name, None)
        if cls is not None and hasattr(cls, "generate"):
            return cls
    raise InputError(f"no transformers class generates text for model type {config.model_type!r}", path=path,
                     field="model", fix="use an image/video/audio-text-to-text model folder")


def _load_model(torch: Any, transformers: Any, path: Path, dtype: str, device: str) -> Any:
    # transformers renamed torch_dtype to dtype in 4.56; older releases would silently ignore `dtype`
    from affectgpt.llm.local_hf import dtype_argument, on_device

    try:
        config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
        cls = _model_class(transformers, config, path)
        model = cls.from_pretrained(str(path), local_files_only=True, **dtype_argument(transformers, torch, dtype))
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot load the model: {exc}", path=path, field="model") from exc
    return on_device(model, device)
