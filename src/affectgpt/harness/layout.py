"""The clip layout of `bench run`: `ROOT/<dataset>/` clip folders -> the clips to answer, counted against the labels.

A dataset's clips are `ROOT/<dataset>/<name>.<video suffix>` (.mp4, .avi, .mkv, or any suffix of
media.files.VIDEO_SUFFIXES), with an optional `ROOT/<dataset>/audio/<name>.wav` and an optional subtitle table
`ROOT/<dataset>/subtitles.csv` (`name,chinese,english`; the column read is `--subtitle-column`, by default the
first of english, subtitle, text, chinese found). Names are the label files' names, so the benchmark's own clip
folders work as they are.

The policy for names that do not match (counted, and written into provenance.json):
- a clip whose name is not in the labels is skipped (`not_in_labels`);
- a label without a clip (`without_clip`) is not answered; the set is then scored on the clips present
  (partial ground truth, said in the result), or, with `missing_as_empty`, scored as an empty answer;
- `limit` N keeps the first N names in sorted order (of the names with a clip, or of every label name with
  `missing_as_empty`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectgpt.bench.datasets import DATASETS, DatasetSpec
from affectgpt.errors import InputError
from affectgpt.media.files import VIDEO_SUFFIXES

SUBTITLES = "subtitles.csv"
AUDIO_FOLDER = "audio"
SUBTITLE_COLUMNS = ("english", "subtitle", "text", "chinese")
MAX_LISTED = 20


@dataclass(frozen=True)
class Clip:
    """One clip to answer: its name, video file, optional separate audio file and subtitle ("" when none)."""

    name: str
    video: Path
    audio: Path | None = None
    subtitle: str = ""


@dataclass
class ClipSet:
    """One dataset as `bench run` runs it.

    Attributes:
        spec: the dataset's row (published or from a spec file).
        labels: the label file or folder it was read from.
        folder: `ROOT/<dataset>/`.
        gt: every ground-truth label by name.
        clips: the clips to answer (in the labels, sorted by name, cut to `limit`).
        selected: the names scored when every clip is answered (cut to `limit`).
        not_in_labels: clip names absent from the labels (skipped).
        without_clip: label names without a clip (within the selection with `missing_as_empty`, else all).
        left_out: names left out by `limit`.
        spec_file: the spec file of a user dataset, else None.
    """

    spec: DatasetSpec
    labels: Path
    folder: Path
    gt: dict[str, Any]
    clips: list[Clip]
    selected: list[str]
    not_in_labels: list[str] = field(default_factory=list)
    without_clip: list[str] = field(default_factory=list)
    left_out: int = 0
    spec_file: Path | None = None

    def counts(self) -> dict[str, Any]:
        """The counts the run reports (JSON-able), with the first MAX_LISTED names of each skip."""
        return {"labels": len(self.gt), "clips": len(self.clips), "selected": len(self.selected),
                "not_in_labels": len(self.not_in_labels), "without_clip": len(self.without_clip),
                "left_out_by_limit": self.left_out,
                "not_in_labels_names": self.not_in_labels[:MAX_LISTED],
                "without_clip_names": self.without_clip[:MAX_LISTED]}


def dataset_sources(clips_root: Path, labels_root: Path, names: Sequence[str],
                    spec_files: Sequence[str | Path]) -> list[tuple[DatasetSpec, Path, Path | None]]:
    """(spec, label path, spec file) of every dataset to run: `names` (published sets), then the spec files.

    Without names or spec files, every published set with a folder under `clips_root`.

    Raises:
        InputError: an unknown name, a name given twice, a bad spec file, a published set without labels, no
            dataset at all.
    """
    from affectgpt.bench.datasets import get_dataset
    from affectgpt.bench.spec import read_dataset_specs

    chosen = list(names) or ([] if spec_files else [k for k in DATASETS if (clips_root / k).is_dir()])
    if not chosen and not spec_files:
        raise InputError("no dataset folder under the clips root", path=clips_root, field="--clips-root",
                         fix=f"lay out clips as <root>/<dataset>/<name>.mp4 with dataset names from: "
                             f"{', '.join(DATASETS)}; or pass --datasets / --dataset-spec")
    out: list[tuple[DatasetSpec, Path, Path | None]] = []
    for name in dict.fromkeys(chosen):
        spec = get_dataset(name)
        if name not in DATASETS:
            raise InputError(f"{name!r} is a user dataset", field="--datasets",
                             fix="pass its spec file with --dataset-spec")
        out.append((spec, labels_root / name, None))
    for loaded in read_dataset_specs(list(spec_files), labels_root=labels_root):
        if any(spec.key == loaded.spec.key for spec, _, _ in out):
            raise InputError(f"dataset {loaded.spec.key!r} given twice", path=loaded.source, field="name",
                             fix="name each dataset once")
        out.append((loaded.spec, loaded.labels, loaded.source))
    return out


def clip_set(spec: DatasetSpec, labels: Path, clips_root: Path, *, limit: int | None = None,
             missing_as_empty: bool = False, subtitle_column: str | None = None,
             spec_file: Path | None = None) -> ClipSet:
    """The clips of one dataset matched against its labels (the module docstring's policy).

    Raises:
        InputError: no dataset folder, two clips with one name, unreadable labels or subtitle table, no clip
            of the folder in the labels.
    """
    from affectgpt.bench.inputs import load_ground_truth

    folder = clips_root / spec.key
    if not folder.is_dir():
        raise InputError(f"no clip folder for {spec.key}", path=folder, field="--clips-root",
                         fix=f"put the clips of {spec.key} in {folder}/<name>.mp4, or leave the dataset out")
    if not (labels.exists()):
        raise InputError(f"no labels for {spec.key}", path=labels, field="--labels-root",
                         fix=f"put the label file of {spec.key} in {labels}")
    gt = load_ground_truth(labels, spec)
    videos = list_videos(folder)
    subtitles = read_subtitles(folder / SUBTITLES, subtitle_column) if (folder / SUBTITLES).is_file() else {}
    not_in_labels = sorted(n for n in videos if n not in gt)
    if videos and len(not_in_labels) == len(videos):
        shown = ", ".join(not_in_labels[:3])
        raise InputError(f"none of the {len(videos)} clips of {spec.key} is in its labels (e.g. {shown})",
                         path=folder, field="name", fix="name clips as the label file names its samples")
    pool = sorted(gt) if missing_as_empty else sorted(n for n in gt if n in videos)
    selected = pool if limit is None else pool[:limit]
    clips = [Clip(n, videos[n], _audio(folder, n), subtitles.get(n, "")) for n in selected if n in videos]
    in_scope = selected if missing_as_empty else sorted(gt)
    without_clip = [n for n in in_scope if n not in videos]
    return ClipSet(spec, labels, folder, gt, clips, selected, not_in_labels, without_clip,
                   len(pool) - len(selected), spec_file)


def list_videos(folder: Path) -> dict[str, Path]:
    """name -> video file of the videos directly in `folder` (hidden files ignored).

    Raises:
        InputError: two videos with one name (e.g. a.mp4 and a.mkv).
    """
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in VIDEO_SUFFIXES or not path.is_file():
            continue
        if path.stem in found:
            raise InputError(f"two clips share the name {path.stem!r}: {found[path.stem].name} and {path.name}",
                             path=folder, field="name", fix="keep one video per name")
        found[path.stem] = path
    return found


def _audio(folder: Path, name: str) -> Path | None:
    path = folder / AUDIO_FOLDER / f"{name}.wav"
    return path if path.is_file() else None


def read_subtitles(path: Path, column: str | None = None) -> dict[str, str]:
    """name -> subtitle of a `name,<columns>` CSV (the column `column`, else the first of SUBTITLE_COLUMNS)."""
    from affectgpt.io.tables import read_csv_grid

    header, rows = read_csv_grid(path, header_fix="start the file with name,chinese,english")
    lowered = [h.strip().lower() for h in header]
    if "name" not in lowered:
        raise InputError(f"no name column (columns: {', '.join(header)})", path=path, field="name",
                         fix="give the subtitle table a header name,chinese,english")
    wanted = [column.lower()] if column else list(SUBTITLE_COLUMNS)
    at = next((lowered.index(c) for c in wanted if c in lowered), None)
    if at is None:
        raise InputError(f"no subtitle column {' or '.join(wanted)} (columns: {', '.join(header)})", path=path,
                         field="--subtitle-column", fix="name the column with --subtitle-column")
    name_at = lowered.index("name")
    return {row[name_at].strip(): row[at].strip() for _, row in rows if row[name_at].strip()}
