"""A dataset -> one generated-text file per checkpoint, batched and resumable (what `extract` then reads).

Clips come from a folder of `affectgpt preprocess` caches (`<name>.safetensors`) or of video files, read through
media/inputs.py like every other road from files to the model's arrays. Each checkpoint folder `<ckpt>` gives
`<output>/<ckpt>.npz` holding `filenames` / `fileitems` (unicode arrays, no pickle; `affectgpt extract labels`
reads them like the original `name2reason` files). Answers are appended to `<output>/<ckpt>.partial.jsonl` batch
by batch, so a killed run resumes where it stopped; the final file is written atomically and the partial file
removed.

The output keeps the checkpoint folder's name. Named like the release (`checkpoint_000060_loss_0.480`) or like a
training run's checkpoint (`checkpoint_000300`), `affectgpt extract labels --input <output>` finds it by itself
(formats/checkpoints.py); any other name (`ckpt60.npz`) is extracted by passing the file itself as `--input`.

A clip that cannot be read does not stop the run: it is listed with its reason in `<output>/<ckpt>.failures.json`,
the .npz is written with the clips that could be read, and a rerun (after fixing or removing the file) answers
only the clips the .npz lacks. When no clip at all can be read, that is an InputError and nothing is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError, failure_reason
from affectgpt.io.names import check_name

FAILURES_SUFFIX = ".failures.json"


@dataclass
class PredictReport:
    """What one checkpoint's run did: its output file, the clips answered now and before, the failed clips."""

    target: Path
    answered: int = 0
    resumed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def failures_file(self) -> Path:
        return failures_file(self.target)


def failures_file(target: str | Path) -> Path:
    """`<output>/<ckpt>.failures.json`: the clips of the last run that could not be read (only while some fail)."""
    target = Path(target)
    return target.with_name(target.stem + FAILURES_SUFFIX)


def extract_finds(target: str | Path) -> bool:
    """Whether `affectgpt extract labels --input <folder>` finds this output by its name (formats/checkpoints.py)."""
    from affectgpt.formats.checkpoints import CHECKPOINT_FILE, GENERATED_SUFFIX

    match = CHECKPOINT_FILE.match(Path(target).name)
    return match is not None and match["kind"] == GENERATED_SUFFIX


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


def _read_done(target: Path) -> dict[str, str]:
    """The answers of an earlier run's .npz (resumed after some clips failed), name -> text."""
    from affectgpt.io.npy import read_npz

    data = read_npz(target, ["filenames", "fileitems"])
    return dict(zip(data["filenames"], data["fileitems"], strict=True))


def _batches(items: list[tuple[str, Path]], size: int) -> Iterator[list[tuple[str, Path]]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def predict(model: Any, tokenizer: Any, clips: str | Path, target: str | Path, *, task: str = "description",
            generation: Any = None, batch_size: int = 4, subtitles: dict[str, str] | None = None,
            on_batch: Callable[[int], None] | None = None) -> PredictReport:
    """Answer every clip of `clips` with one model; write `target` (.npz); resume from its partial file, and from
    `target` itself when its failures file says some clips were missing. Clips that cannot be read are listed in
    the failures file (see the module docstring)."""
    from affectgpt.infer.describe import Generation, answer
    from affectgpt.io.atomic import write_text
    from affectgpt.io.npy import write_npz

    target = Path(target)
    partial = target.with_name(target.stem + ".partial.jsonl")
    failed_before = failures_file(target)
    done = _read_done(target) if target.is_file() and failed_before.is_file() else {}
    done.update(_read_partial(partial))
    report = PredictReport(target, resumed=len(done))
    todo = [(n, p) for n, p in clip_sources(clips) if n not in done]
    target.parent.mkdir(parents=True, exist_ok=True)
    log = None  # the resume log is opened with the first answer: a run that fails before it leaves no file
    try:
        for group in _batches(todo, max(1, batch_size)):
            loaded = []
            for name, path in group:
                try:
                    loaded.append((name, _load(name, path, model.cfg.visual_input, subtitles or {})))
                except Exception as exc:  # an unreadable clip (or a decoder crash on it) must not stop the run
                    report.failures.append({"file": str(path), "reason": failure_reason(exc)})
            if loaded:
                texts = answer(model, tokenizer, [inputs for _, inputs in loaded], task=task,
                               generation=generation or Generation())
                log = log or open(partial, "a", encoding="utf-8")  # noqa: SIM115 - closed in finally
                for (name, _), text in zip(loaded, texts, strict=True):
                    log.write(json.dumps({"name": name, "text": text}, ensure_ascii=False) + "\n")
                    done[name] = text
                log.flush()
                os.fsync(log.fileno())
                report.answered += len(loaded)
            if on_batch:
                on_batch(len(group))
    finally:
        if log is not None:
            log.close()
    if report.failures and not done:
        first = report.failures[0]
        raise InputError(f"no clip could be read ({len(report.failures)} failed; first: {first['file']}: "
                         f"{first['reason']})", path=clips, field="--clips",
                         fix="pass preprocess caches or readable video files")
    names = sorted(done)
    if report.failures:  # listed before the .npz is written: a .npz without it reads as complete
        report.failures.sort(key=lambda f: f["file"])
        write_text(failed_before, json.dumps({"failures": report.failures}, indent=2, ensure_ascii=False))
    write_npz(target, {"filenames": names, "fileitems": [done[n] for n in names]})
    if not report.failures:
        failed_before.unlink(missing_ok=True)
    partial.unlink(missing_ok=True)
    return report
