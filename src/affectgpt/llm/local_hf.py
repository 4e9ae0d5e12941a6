"""TransformersChat: complete chat requests with a local causal LM and its tokenizer's chat template.

Text only: a request with image, audio or video parts fails as an item (Completion.error says so); its text
parts, if any, are joined by newlines.

Only local folders are loaded (`local_files_only=True`): a hub id is never downloaded. torch and
transformers are imported when the backend is built, never when this module is imported.

Decoding follows the request's Sampling: temperature 0 is greedy; otherwise sampling with temperature,
top_p (top-k off, as in vLLM) and max_tokens. repetition_penalty applies in both modes, as vLLM applies it.
Requests with equal sampling settings are batched (left padding), and only the new tokens are decoded.

Seeds: with `sampling.seed` set, `torch.manual_seed(seed)` runs before each batch. A sampled answer then
depends on the seed AND on which other requests share its batch (the random stream is shared), so per-item
seeding is best effort; for answers that do not depend on batching use greedy decoding or batch_size=1.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.extras import require
from affectgpt.llm.base import ChatRequest, Completion, OnResult, Sampling

DTYPES = ("auto", "float32", "float16", "bfloat16")


class TransformersChat:
    """A ChatBackend running a local transformers causal LM.

    Args:
        model_path: a local folder with config.json, the weights and the tokenizer files. The tokenizer must
            have a chat template.
        device: "auto" (cuda when available, else cpu), or a torch device string ("cpu", "cuda:1").
        dtype: "auto" (the checkpoint's own dtype) or one of float32, float16, bfloat16.
        batch_size: requests generated together.

    Raises:
        InputError: the folder is missing, is not a model folder, has no chat template, or cannot be loaded.
        MissingExtra: torch or transformers is not installed (`affectgpt[model]`).

    `complete` runs in the calling thread and calls `on_result` there after each batch.
    """

    name = "transformers"

    def __init__(self, model_path: str | Path, *, device: str = "auto", dtype: str = "auto",
                 batch_size: int = 8) -> None:
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise InputError("no such model folder", path=path, field="model_path",
                             fix="give a local folder holding config.json, the weights and the tokenizer "
                                 "(hub ids are not downloaded)")
        if not (path / "config.json").is_file():
            raise InputError("not a transformers model folder: config.json is missing", path=path,
                             field="model_path")
        if dtype not in DTYPES:
            raise InputError(f"unknown dtype {dtype!r}", field="dtype", fix=f"choose one of {', '.join(DTYPES)}")
        if batch_size < 1:
            raise InputError(f"must be >= 1, got {batch_size}", field="batch_size")
        torch = require("torch", extra="model")
        transformers = require("transformers", extra="model")
        self.model = str(path)
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self._torch = torch
        self._tokenizer = _load_tokenizer(transformers, path)
        self._model = _load_model(torch, transformers, path, dtype, self.device)

    def __repr__(self) -> str:
        return f"TransformersChat({self.model!r}, device={self.device!r}, batch_size={self.batch_size})"

    def complete(self, requests: Sequence[ChatRequest], on_result: OnResult | None = None) -> list[Completion]:
        """Complete every request; results are in request order. One failing item never fails the others."""
        results: list[Completion | None] = [None] * len(requests)
        for sampling, indices in _batches(requests, self.batch_size):
            for index, completion in zip(indices, self._complete_batch(requests, indices, sampling), strict=True):
                results[index] = completion
                if on_result is not None:
                    on_result(index, completion)
        return [r for r in results if r is not None]

    def _complete_batch(self, requests: Sequence[ChatRequest], indices: list[int],
                        sampling: Sampling) -> list[Completion]:
        prompts: dict[int, str] = {}
        out: dict[int, Completion] = {}
        for index in indices:
            media = sorted({part.kind for message in requests[index].messages for part in message.media})
            if media:  # never drop them silently: the answer would not be about what was asked
                out[index] = self._failed(sampling, f"the transformers backend takes text only, and this request "
                                                    f"has {' and '.join(media)} parts: send it to a multimodal "
                                                    f"backend (e.g. openai with a multimodal server)")
                continue
            try:
                prompts[index] = self._prompt(requests[index])
            except Exception as exc:  # e.g. a template that raises for an unsupported role
                out[index] = self._failed(sampling, f"chat template failed: {type(exc).__name__}: {exc}")
        ready = list(prompts)
        try:
            texts = self._generate([prompts[i] for i in ready], sampling) if ready else []
            out.update({i: Completion(t, model=self.model, seed=sampling.seed) for i, t in zip(ready, texts,
                                                                                                 strict=True)})
        except Exception as exc:
            if len(ready) == 1:
                out[ready[0]] = self._failed(sampling, f"generation failed: {type(exc).__name__}: {exc}")
            else:  # find the culprit: retry one by one, so only the bad item fails
                for i in ready:
                    out[i] = self._complete_batch(requests, [i], sampling)[0]
        return [out[i] for i in indices]

    def _failed(self, sampling: Sampling, error: str) -> Completion:
        return Completion(None, error=error, model=self.model, seed=sampling.seed)

    def _prompt(self, request: ChatRequest) -> str:
        messages = [{"role": m.role, "content": m.text} for m in request.messages]  # text parts joined
        return self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _generate(self, prompts: list[str], sampling: Sampling) -> list[str]:
        """Generate for prompts that share `sampling`; returns the decoded new text of each."""
        torch = self._torch
        tokenizer = self._tokenizer
        # the chat template already wrote any special tokens the model expects (BOS included)
        batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        options: dict[str, Any] = {"max_new_tokens": sampling.max_tokens, "pad_token_id": tokenizer.pad_token_id,
                                   "repetition_penalty": sampling.repetition_penalty}
        if sampling.temperature == 0:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            options.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        with torch.inference_mode():
            output = self._model.generate(**batch, **options)
        new_tokens = output[:, batch["input_ids"].shape[1]:]
        return tokenizer.batch_decode(new_tokens, skip_special_tokens=True)


def _batches(requests: Sequence[ChatRequest], size: int) -> Iterator[tuple[Sampling, list[int]]]:
    """Indices grouped by equal sampling (in order of first appearance), cut into batches of `size`."""
    groups: dict[Sampling, list[int]] = {}
    for index, request in enumerate(requests):
        groups.setdefault(request.sampling, []).append(index)
    for sampling, indices in groups.items():
        for start in range(0, len(indices), size):
            yield sampling, indices[start:start + size]


def _load_tokenizer(transformers: Any, path: Path) -> Any:
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True,
                                                               padding_side="left")
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the tokenizer: {exc}", path=path, field="model_path") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("the tokenizer has no chat template", path=path / "tokenizer_config.json",
                         field="chat_template",
                         fix="use a chat/instruct model folder, or add a Jinja 'chat_template' to "
                             "tokenizer_config.json (or a chat_template.jinja file)")
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _load_model(torch: Any, transformers: Any, path: Path, dtype: str, device: str) -> Any:
    # transformers renamed torch_dtype to dtype in 4.56; older releases would silently ignore `dtype`
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True,
                                                                  **dtype_argument(transformers, torch, dtype))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the model: {exc}", path=path, field="model_path") from exc
    return on_device(model, device)


def dtype_argument(transformers: Any, torch: Any, dtype: str) -> dict[str, Any]:
    """The from_pretrained keyword for `dtype` ("auto" or a torch dtype name): `dtype` since transformers 4.56,
    `torch_dtype` before."""
    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    return {key: "auto" if dtype == "auto" else getattr(torch, dtype)}


def resolve_device(device: str = "auto") -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; any other device string is returned as given."""
    if device != "auto":
        return device
    torch = require("torch", extra="model")
    return "cuda" if torch.cuda.is_available() else "cpu"


def on_device(model: Any, device: str) -> Any:
    """`model` on `device` in eval mode; a device this machine lacks is an InputError."""
    try:
        return model.to(device).eval()
    except (RuntimeError, AssertionError) as exc:  # e.g. "cuda" on a machine without it
        raise InputError(f"cannot use device {device!r}: {exc}", field="device",
                         fix="pick an available device, or leave it as 'auto'") from exc
