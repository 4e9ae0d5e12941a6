"""A dataset -> one generated-text file per checkpoint, batched and resumable (what `extract` then reads).

Clips come from a folder of `affectgpt preprocess` caches (`<name>.safetensors`) or of video files, read through
media/inputs.py like every other road from files to the model's arrays. Each checkpoint folder `<ckpt>` gives
`<output>/<ckpt>.npz` holding `filenames` / `fileitems` (unicode arrays, no pickle; `affectgpt extract labels`
reads them like the original `name2reason` files). Answers are appended to `<output>/<ckpt>.partial.jsonl` batch
by batch, so a killed run resumes where it stopped; the final file is written atomically and the partial file
removed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.io.names import check_name


def prediction_file(output: str | Path, checkpoint: str | Path) -> Path:
    """`<output>/<checkpoint folder name>.npz`: the file `predict` writes for one checkpoint.

    The folder's own name is used (`ckpt/.` is `ckpt`), and it must be a plain file name (io/names.py).
    """
    name = Path(os.path.abspath(checkpoint)).name
    return Path(output) / f"{check_name(name, path=checkpoint, field='checkpoint folder name')}.npz"


def clip_sources(folder: str | Path) -> list[tuple[str, Path]]:
    """(name, path) of every clip in `folder`: clip-cache files if there are any, else video files."""
    from affectgpt.media.cache import cached_names
    from affectgpt.media.files import find_videos

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("clip folder not found", path=folder, fix="pass a folder of clips or preprocess caches")
    return cached_names(folder) or [(p.stem, p) for p in find_videos([folder])]


def _load(name: str, path: Path, visual_input: str, subtitles: dict[str, str]) -> Any:
    """The model's inputs of one clip (media/inputs.py), with its subtitle from `subtitles` when given there."""
    from dataclasses import replace

    from affectgpt.media.cache import SUFFIX
    from affectgpt.media.inputs import load_inputs

    cached = path.suffix == SUFFIX
    inputs = load_inputs(name, video=None if cached else path, cache=path.parent if cached else None,
                         visual_input=visual_input)
    return replace(inputs, subtitle=subtitles[name]) if name in subtitles else inputs


def _read_partial(path: Path) -> dict[str, str]:
    done: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                done[row["name"]] = row["text"]
            except (ValueError, KeyError):
                break  # a line cut by a kill: everything before it is kept, it is redone
    return done


def _batches(items: list[tuple[str, Path]], size: int) -> Iterator[list[tuple[str, Path]]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def predict(model: Any, tokenizer: Any, clips: str | Path, target: str | Path, *, task: str = "description",
            generation: Any = None, batch_size: int = 4, subtitles: dict[str, str] | None = None,
            on_batch: Callable[[int], None] | None = None) -> Path:
    """Answer every clip of `clips` with one model; write `target` (.npz); resume from its partial file."""
    from affectgpt.infer.describe import Generation, answer
    from affectgpt.io.npy import write_npz

    target = Path(target)
    partial = target.with_name(target.stem + ".partial.jsonl")
    done = _read_partial(partial)
    todo = [(n, p) for n, p in clip_sources(clips) if n not in done]
    target.parent.mkdir(parents=True, exist_ok=True)
    log = None  # the resume log is opened with the first answer: a run that fails before it leaves no file
    try:
        for group in _batches(todo, max(1, batch_size)):
            loaded = [_load(name, path, model.cfg.visual_input, subtitles or {}) for name, path in group]
            texts = answer(model, tokenizer, loaded, task=task, generation=generation or Generation())
            log = log or open(partial, "a", encoding="utf-8")  # noqa: SIM115 - closed in finally
            for (name, _), text in zip(group, texts, strict=True):
                log.write(json.dumps({"name": name, "text": text}, ensure_ascii=False) + "\n")
                done[name] = text
            log.flush()
            os.fsync(log.fileno())
            if on_batch:
                on_batch(len(group))
    finally:
        if log is not None:
            log.close()
    names = sorted(done)
    write_npz(target, {"filenames": names, "fileitems": [done[n] for n in names]})
    partial.unlink(missing_ok=True)
    return target
