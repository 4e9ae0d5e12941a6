"""The original release's per-epoch file names: the checkpoint pattern, its suffixes and the keys inside.

Generation writes `checkpoint_000030_loss_0.602.npz` (the generated text), extraction turns it into
`checkpoint_000030_loss_0.602-openset.npz` (emotion words) and that into `...-openset-sentiment.npz`
(positive / negative / neutral); .csv and .jsonl files with the same stems are read too.

The loss part is optional: `affectgpt predict` on a training run's `checkpoint_000300/` folder writes
`checkpoint_000300.npz`, which extraction and the scorer take like the release's names (epoch = the number).
This module is the one place that says what such a name looks like.
"""

from __future__ import annotations

import re
from pathlib import Path

GENERATED_SUFFIX = ""
"""The generated text (key `name2reason`)."""
OPENSET_SUFFIX = "-openset"
"""The extracted open-vocabulary emotion words: what the basic and OV sets are scored on."""
SENTIMENT_SUFFIX = "-openset-sentiment"
"""The sentiment extracted from those words: what the sentiment sets are scored on."""

FILE_EXTENSIONS = ("npz", "csv", "jsonl")

CHECKPOINT_STEM = r"checkpoint_(?P<epoch>\d+)(?:_loss_(?P<loss>[-0-9.e]+?))?"
"""checkpoint_<epoch>[_loss_<loss>]: a checkpoint's name (also a folder's, e.g. a training run's checkpoint_000300)."""

CHECKPOINT_FILE = re.compile(
    rf"^{CHECKPOINT_STEM}"
    rf"(?P<kind>{re.escape(SENTIMENT_SUFFIX)}|{re.escape(OPENSET_SUFFIX)}|{re.escape(GENERATED_SUFFIX)})"
    rf"\.(?P<ext>{'|'.join(FILE_EXTENSIONS)})$")
"""checkpoint_<epoch>[_loss_<loss>]<suffix>.<ext>; `kind` is the suffix ('' for generated text), `loss` is None
when the name has no loss part."""

TASK_SUFFIX: dict[str, str] = {
    "basic": OPENSET_SUFFIX,
    "ov": OPENSET_SUFFIX,
    "sentiment": SENTIMENT_SUFFIX,
}
"""The suffix of the per-epoch files that hold each task family's answers."""

EXTRACTION_STEPS: dict[str, tuple[str, str]] = {
    "labels": (GENERATED_SUFFIX, OPENSET_SUFFIX),
    "sentiment": (OPENSET_SUFFIX, SENTIMENT_SUFFIX),
}
"""Each extraction step of the original pipeline: (the suffix it reads, the suffix it writes)."""

PREDICTION_KEYS: dict[str, tuple[str, ...]] = {
    "basic": ("openset", "prediction", "labels", "label"),
    "ov": ("openset", "prediction", "labels", "label"),
    "sentiment": ("sentiment", "prediction", "label"),
}
"""The value keys/columns an answer file of each task family may use, tried in order."""


def checkpoint_name(epoch: str, loss: str | None, suffix: str, ext: str) -> str:
    """`checkpoint_<epoch>[_loss_<loss>]<suffix>.<ext>` (epoch and loss as written in the source name; no loss
    part when `loss` is None or empty). A placeholder loss such as "<x>" is shown as optional, `[_loss_<x>]`, for
    messages that say which names are looked for."""
    if not loss:
        return f"checkpoint_{epoch}{suffix}.{ext}"
    if loss.startswith("<"):
        return f"checkpoint_{epoch}[_loss_{loss}]{suffix}.{ext}"
    return f"checkpoint_{epoch}_loss_{loss}{suffix}.{ext}"


def checkpoint_files(folder: Path, suffix: str) -> list[tuple[Path, re.Match[str]]]:
    """The files of `folder` named like the original release with `suffix`, sorted by name, with their match."""
    found = []
    for entry in sorted(folder.iterdir()):
        match = CHECKPOINT_FILE.match(entry.name)
        if match and match["kind"] == suffix:
            found.append((entry, match))
    return found
