"""User-defined datasets: a spec file (`--dataset-spec FILE.yaml|.json`) -> a checked DatasetSpec, labels included.

A benchmark is data, as in lm-evaluation-harness: the spec names the dataset, its task, its label file and layout
(a CSV/JSONL `name,<column>` table, or an original-style `label*.npz` with split key, field, class list and
session filter: the fields of formats.labels.LabelSource), its label space and its primary metric. Keys are
strict (an unknown key is refused with a did-you-mean), required keys and types are checked, the metric against
the task, and the label file (relative to the spec's folder, or `--labels`) is read and checked against the
declared layout before anything is scored. Every problem is an InputError naming the spec file and the key.

JSON specs need nothing; YAML specs need pyyaml (the `train` extra, or `pip install pyyaml`), read with
`safe_load` and bounded like training recipes (config.check_size). docs/dataset-spec.md is the user's guide.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from affectgpt.bench.datasets import DATASETS, TASK_METRICS, USER_DATASETS, DatasetSpec
from affectgpt.errors import InputError
from affectgpt.formats.labels import LabelSource

SPEC_KEYS = ("name", "title", "task", "labels", "label_space", "primary_metric", "size")
LABEL_KEYS = ("file", "column", "split", "field", "classes", "session")
NPZ_KEYS = ("split", "field", "classes", "session")
REQUIRED = ("name", "task", "labels")
MAX_SPEC_BYTES = 1 << 20
"""A spec is a few hundred bytes; anything over 1 MiB is not one."""


@dataclasses.dataclass(frozen=True)
class LoadedSpec:
    """A user dataset ready to score: its DatasetSpec, its label file and the spec file it came from."""

    spec: DatasetSpec
    labels: Path
    source: Path


def load_dataset_spec(path: str | Path, labels: str | Path | None = None) -> DatasetSpec:
    """The DatasetSpec of a spec file, its label file checked against the declared layout (and registered, so
    `get_dataset(name)` finds it in this process).

    Args:
        path: the spec file (.yaml/.yml, or .json).
        labels: a label file or folder that replaces the spec's `labels.file` (the `--labels` option).

    Raises:
        InputError: naming the spec file and key: unreadable or not a mapping, unknown or missing key, wrong
            type, unknown task, a metric the task does not report, a name of the published nine, or a label
            file that is missing or does not match the layout.
        MissingExtra: a YAML spec without pyyaml installed.
    """
    return read_dataset_spec(path, labels).spec


def read_dataset_spec(path: str | Path, labels: str | Path | None = None, *,
                      labels_root: str | Path | None = None) -> LoadedSpec:
    """load_dataset_spec, also giving the label file found (see there). `labels_root`: where a spec without
    `labels.file` finds its labels, as `<labels_root>/<name>/` (bench suite)."""
    from affectgpt.bench.inputs import find_label_file, load_ground_truth

    path = Path(path)
    data = _read(path)
    spec, label_file, label_keys = _build(data, path)
    if labels is not None:
        label_file = Path(labels)
    elif label_file is None and labels_root is not None and (Path(labels_root) / spec.key).exists():
        label_file = Path(labels_root) / spec.key
    if label_file is None:
        raise InputError("no label file: labels.file is missing", path=path, field="labels.file",
                         fix="name the label file (relative to the spec's folder) or pass --labels")
    if not label_file.exists():
        raise InputError(f"label file {label_file} not found", path=path,
                         field="labels.file" if labels is None else "--labels",
                         fix="give a path relative to the spec's folder, or pass --labels")
    found = find_label_file(label_file, spec)
    _check_layout(path, spec, found, label_keys)
    try:
        gt = load_ground_truth(found, spec)
    except InputError as exc:
        raise _label_error(path, found, exc) from None
    if spec.candidates:
        _check_label_space(path, spec, found, gt)
    if spec.size <= 0:
        spec = dataclasses.replace(spec, size=len(gt))
    USER_DATASETS[spec.key] = spec
    return LoadedSpec(spec, found, path)


def _read(path: Path) -> Any:
    """The parsed spec file (JSON, or YAML through safe_load), bounded and checked to be a mapping."""
    from affectgpt.config import check_size

    if not path.exists():
        raise InputError("spec file not found", path=path, fix="check the path")
    if not path.is_file():
        raise InputError("not a file", path=path, fix="pass the spec file (.yaml, .yml or .json)")
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise InputError(f"unsupported spec file type {suffix!r}", path=path,
                         fix="write the spec as .yaml/.yml or .json")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise InputError(f"larger than {MAX_SPEC_BYTES} bytes: not a dataset spec", path=path,
                         fix="pass the spec file, not the data")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (at byte {exc.start})", path=path,
                         fix="save the spec as UTF-8") from None
    if suffix == ".json":
        try:
            data = json.loads(text) if text.strip() else None
        except (json.JSONDecodeError, RecursionError) as exc:
            raise InputError(f"not valid JSON ({exc})", path=path, fix="fix the JSON syntax") from None
    else:
        from affectgpt.extras import require

        yaml = require("yaml", extra="train")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"not valid YAML ({' '.join(str(exc).split())})", path=path,
                             fix="fix the YAML syntax (only plain YAML: no tags)") from None
        except RecursionError:
            raise InputError("nested too deep to read", path=path, fix="write the spec's flat keys") from None
    if data is None:
        raise InputError("the spec is empty", path=path,
                         fix="write name, task, labels and label_space (see docs/dataset-spec.md)")
    check_size(data, source=path)
    if not isinstance(data, Mapping):
        raise InputError(f"the spec must be a mapping of keys, not {_describe(data)}", path=path,
                         fix="write `key: value` lines (see docs/dataset-spec.md)")
    return data


def _build(data: Mapping[str, Any], path: Path) -> tuple[DatasetSpec, Path | None, tuple[str, ...]]:
    """The DatasetSpec, the spec's label file (None when not given) and the label keys the spec wrote."""
    _strict(data, SPEC_KEYS, path, "")
    for key in REQUIRED:
        if key not in data:
            raise InputError(f"required key {key!r} is missing", path=path, field=key,
                             fix=_REQUIRED_FIX[key])
    name = _text(data, "name", path)
    from affectgpt.io.names import name_problem

    problem = name_problem(name)
    if problem is not None:
        raise InputError(f"name {name!r} is not a plain name ({problem})", path=path, field="name",
                         fix="use letters, digits, - _ . (it becomes the folder name under --predictions-root)")
    if name in DATASETS:
        raise InputError(f"name {name!r} is a published MER-UniBench dataset", path=path, field="name",
                         fix=f"use --dataset {name} for the published set, or give yours another name")
    task = _text(data, "task", path)
    if task not in TASK_METRICS:
        from affectgpt.registry import unknown_name

        err = unknown_name("task", task, list(TASK_METRICS))
        raise InputError(err.what, path=path, field="task", fix=err.fix)
    metrics = TASK_METRICS[task]
    primary = _text(data, "primary_metric", path) if "primary_metric" in data else metrics[0]
    if primary not in metrics:
        raise InputError(f"metric {primary!r} is not reported for task {task!r}", path=path, field="primary_metric",
                         fix=f"choose one of {', '.join(metrics)}")
    title = _text(data, "title", path) if "title" in data else name
    size = data.get("size", 0)
    if "size" in data and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise InputError(f"expected a positive whole number, got {_describe(size)}", path=path, field="size",
                         fix="give the number of samples of the full test set, or leave size out")
    candidates, label_space = _label_space(data, task, path)
    source, label_file = _label_source(data["labels"], task, path)
    spec = DatasetSpec(name, title, task, size, label_space, source, candidates=candidates,
                       primary_metric="" if primary == metrics[0] else primary)
    return spec, label_file, tuple(data["labels"])


_REQUIRED_FIX = {
    "name": "give the dataset a name (used on the command line and as its folder name)",
    "task": f"say which task the set is: one of {', '.join(TASK_METRICS)}",
    "labels": "say where the ground truth is: labels: {file: labels.csv, column: label}",
}


def _label_space(data: Mapping[str, Any], task: str, path: Path) -> tuple[tuple[str, ...], str]:
    """(candidate classes, printed label space): a list of classes for basic sets, free text otherwise."""
    value = data.get("label_space")
    if task == "basic":
        if value is None:
            raise InputError("required key 'label_space' is missing", path=path, field="label_space",
                             fix="list the candidate classes of the basic-emotion set, e.g. [happy, sad, angry]")
        classes = _text_list(value, path, "label_space")
        if not classes:
            raise InputError("the candidate classes are empty", path=path, field="label_space",
                             fix="list the classes the ground truth uses")
        return classes, ", ".join(classes)
    if value is None:
        return (), "float scores" if task == "sentiment" else "a list of open-vocabulary emotion words"
    if not isinstance(value, str):
        raise InputError(f"expected text, got {_describe(value)}", path=path, field="label_space",
                         fix=f"describe the {task} labels in words (e.g. \"float in [-3, 3]\"), or leave it out")
    return (), value


def _label_source(value: Any, task: str, path: Path) -> tuple[LabelSource, Path | None]:
    if not isinstance(value, Mapping):
        raise InputError(f"expected a mapping, got {_describe(value)}", path=path, field="labels",
                         fix="write labels: {file: labels.csv, column: label}")
    _strict(value, LABEL_KEYS, path, "labels.")
    file = _text(value, "file", path, "labels.") if "file" in value else None
    label_file = None
    if file is not None:
        label_file = Path(file) if Path(file).is_absolute() else path.parent / file
    column = _text(value, "column", path, "labels.") if "column" in value else "label"
    default_field = "val" if task == "sentiment" else "emo"
    field = _text(value, "field", path, "labels.") if "field" in value else default_field
    split = _text(value, "split", path, "labels.") if "split" in value else "test_corpus"
    classes = _text_list(value["classes"], path, "labels.classes") if "classes" in value else ()
    session = None
    if "session" in value:
        session = value["session"]
        if isinstance(session, int) and not isinstance(session, bool):
            session = str(session)
        if not isinstance(session, str) or len(session) != 1:
            raise InputError(f"expected one character, got {_describe(session)}", path=path, field="labels.session",
                             fix="give the character at position 5 of the test names, e.g. '5' (IEMOCAP Session 5)")
    name = Path(file).name if file else ""
    source = LabelSource(npz_names=(name,) if name.lower().endswith(".npz") else (), split=split, field=field,
                         classes=classes, session=session,
                         csv_names=("test_labels.csv",) if not name else () if name.lower().endswith(".npz")
                         else (name,),
                         csv_column=column)
    return source, label_file


def _check_layout(path: Path, spec: DatasetSpec, label_file: Path, given: Sequence[str]) -> None:
    """The label file's type fits the keys given: npz keys only for a .npz, a column only for a table."""
    is_npz = label_file.suffix.lower() == ".npz"
    if not is_npz and label_file.suffix.lower() not in (".csv", ".jsonl"):
        raise InputError(f"label file {label_file.name} is not .csv, .jsonl or .npz", path=path, field="labels.file",
                         fix="give a CSV/JSONL name,label table or an original-style label*.npz")
    wrong = [k for k in given if (k in NPZ_KEYS) != is_npz and k != "file"]
    if wrong:
        kind = "an .npz" if not is_npz else "a table"
        raise InputError(f"label file {label_file.name} is {'a table' if not is_npz else 'an .npz'}, but "
                         f"{wrong[0]} is a key for {kind} label file", path=path, field=f"labels.{wrong[0]}",
                         fix="use column for a CSV/JSONL; split, field, classes, session for an npz")
    if not is_npz:
        from affectgpt.io.tables import read_table

        try:
            read_table(label_file, (spec.labels.csv_column,),
                       missing_fix=f"name the label column with labels.column (now {spec.labels.csv_column!r})")
        except InputError as exc:
            raise _label_error(path, label_file, exc, "labels.column") from None


def _check_label_space(path: Path, spec: DatasetSpec, label_file: Path, gt: Mapping[str, Any]) -> None:
    """Every ground-truth label of a basic set is one of the declared candidate classes (any case)."""
    known = {c.strip().lower() for c in spec.candidates}
    for name, label in gt.items():
        if str(label).strip().lower() not in known:
            raise InputError(f"the label {label!r} of {name!r} in {label_file.name} is not in label_space "
                             f"({', '.join(spec.candidates)})", path=path, field="label_space",
                             fix="list every class the ground truth uses, or fix the label file")


def _label_error(path: Path, label_file: Path, exc: InputError, field: str | None = None) -> InputError:
    """A label-file problem, told from the spec's side: the spec file, the key, and the label file's words."""
    if field is None:
        if exc.what.startswith("no split"):
            field = "labels.split"
        elif "has no field" in exc.what:
            field = "labels.field"
        elif "class index" in exc.what:
            field = "labels.classes"
        else:
            field = "labels"
    inner = f"{exc.field}: " if exc.field else ""
    return InputError(f"label file {label_file.name} does not match the layout ({inner}{exc.what})", path=path,
                      field=field, fix=exc.fix)


def _strict(data: Mapping[str, Any], known: Sequence[str], path: Path, prefix: str) -> None:
    import difflib

    for key in data:
        if not isinstance(key, str) or key not in known:
            hint = difflib.get_close_matches(str(key), list(known), n=1)
            fix = f"did you mean '{prefix}{hint[0]}'?" if hint else f"known keys: {', '.join(known)}"
            raise InputError("unknown key", path=path, field=f"{prefix}{key}", fix=fix)


def _text(data: Mapping[str, Any], key: str, path: Path, prefix: str = "") -> str:
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        fix = f"give {prefix}{key} as text"
        if isinstance(value, bool):
            fix += ' in quotes (YAML reads no/yes/off/on as booleans)'
        raise InputError(f"expected text, got {_describe(value)}", path=path, field=f"{prefix}{key}", fix=fix)
    return value.strip()


def _text_list(value: Any, path: Path, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(f"expected a list of texts, got {_describe(value)}", path=path, field=field,
                         fix=f"write {field} as a list, e.g. [happy, sad, angry]")
    return tuple(dict.fromkeys(v.strip() for v in value))


def _describe(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"{type(value).__name__} {value!r}"[:80]


def read_dataset_specs(paths: Sequence[str | Path], labels_root: str | Path | None = None) -> list[LoadedSpec]:
    """Every spec of `bench suite --dataset-spec` (repeatable), each name once."""
    loaded: list[LoadedSpec] = []
    for path in paths:
        one = read_dataset_spec(path, labels_root=labels_root)
        twin = next((o for o in loaded if o.spec.key == one.spec.key), None)
        if twin is not None:
            raise InputError(f"name {one.spec.key!r} is also the name of {twin.source}", path=one.source,
                             field="name", fix="give each user dataset its own name")
        loaded.append(one)
    return loaded


def score_suite_with(specs: Sequence[LoadedSpec], predictions_root: str | Path, labels_root: str | Path,
                     protocol: Any, **options: Any) -> Any:
    """bench suite with user datasets: the published nine as score.score_suite lays them out (their row and
    9-dataset mean unchanged), then each user dataset's result, scored from `<predictions_root>/<name>/`.
    `options` (epoch, allow_missing, ...) go to score_suite and score_dataset alike.

    Returns:
        The SuiteResult, whose `results` hold the user datasets after the published ones.

    Raises:
        InputError: a user dataset without its prediction folder (naming the spec and the folder).
    """
    from affectgpt.bench.results import RowCell, SuiteResult
    from affectgpt.bench.score import score_dataset, score_suite

    predictions_root = Path(predictions_root)
    for loaded in specs:
        folder = predictions_root / loaded.spec.key
        if not folder.exists():
            raise InputError(f"no predictions for {loaded.spec.key}: {folder} not found", path=loaded.source,
                             field="name", fix=f"put its prediction files under {folder}/")
    try:
        suite = score_suite(predictions_root, labels_root, protocol, **options)
    except InputError as exc:
        if not specs or exc.what != "no dataset could be scored":
            raise
        row = tuple(RowCell(d.key, d.title, d.primary, None, None,
                            "no predictions" if not (predictions_root / d.key).is_dir() else "no labels")
                    for d in DATASETS.values())
        suite = SuiteResult(protocol.maps.protocol, protocol.note,
                            "fixed" if options.get("epoch") is not None else "oracle", {}, row)
    results = dict(suite.results)
    for loaded in specs:
        results[loaded.spec.key] = score_dataset(loaded.spec, predictions_root / loaded.spec.key, loaded.labels,
                                                 protocol, **options)
    return dataclasses.replace(suite, results=results)
