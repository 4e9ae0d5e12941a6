"""score_dataset() and score_suite(): dataset specs + prediction files + protocol -> results."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from affectgpt.bench import metrics
from affectgpt.bench.datasets import DATASETS, DatasetSpec
from affectgpt.bench.inputs import (
    align,
    find_label_file,
    find_prediction_files,
    load_ground_truth,
    read_predictions,
)
from affectgpt.bench.protocol import ResolvedProtocol
from affectgpt.bench.results import DatasetResult, EpochResult, RowCell, SuiteResult, Summary
from affectgpt.errors import InputError
from affectgpt.formats.label_lists import parse_label_list, parse_sentiment
from affectgpt.lexicon.wheelmaps import WheelMaps

TOP_UNKNOWN = 10


class MappedAnswer(NamedTuple):
    """One answer string as the scorer sees it.

    Attributes:
        mask: the wheel clusters its words fall in (a bit set of lexicon.wheelmaps.ClusterBits).
        n_words: how many words the split rule gives.
        n_distinct: how many different words among them.
        unknown: its words the protocol does not know (dropped from scoring, counted in the coverage).
    """

    mask: int
    n_words: int
    unknown: tuple[str, ...]
    n_distinct: int = 0


def score_dataset(spec: DatasetSpec, predictions: str | Path, labels: str | Path,
                  protocol: ResolvedProtocol, *, epoch: int | None = None,
                  allow_missing: bool = False, epochs_range: tuple[int, int] | None = None) -> DatasetResult:
    """Score every prediction file of one dataset.

    Args:
        spec: the dataset's row of the table.
        predictions: a prediction file, or a folder of per-epoch files in the original naming.
        labels: a label file, or a folder holding the dataset's label file.
        protocol: the word knowledge to map emotion words with.
        epoch: also report this epoch as the `fixed` summary.
        allow_missing: score ground-truth names without a prediction as empty predictions.
        epochs_range: also report the mean of each metric over the epochs in [first, last] (`mean`).

    Raises:
        InputError: on any bad input (missing names, unknown epoch, unreadable files...).
    """
    gt = load_ground_truth(labels, spec)
    files = find_prediction_files(predictions, spec)
    if epoch is not None and epoch not in {f.epoch for f in files}:
        found = sorted(f.epoch for f in files if f.epoch is not None)
        raise InputError(f"no prediction file for epoch {epoch}", path=predictions, field="--epoch",
                         fix=f"choose one of {found}" if found else "drop --epoch")
    in_range = _in_range(files, epochs_range, predictions)
    scorer = _Scorer(spec, gt, protocol.maps)
    epochs = []
    for pred in files:
        aligned = align(gt, read_predictions(pred, spec), pred.path, allow_missing=allow_missing)
        epochs.append(scorer.score(pred.epoch, str(pred.path), aligned.answers,
                                   {"extra_predictions": aligned.extra,
                                    "missing_predictions": len(aligned.missing)}))
    best = max(enumerate(epochs), key=lambda ie: (ie[1].metrics[spec.primary], -ie[0]))[1]
    fixed = next((e for e in epochs if epoch is not None and e.epoch == epoch), None)
    return DatasetResult(
        dataset=spec.key, task=spec.task, protocol=protocol.maps.protocol, protocol_note=protocol.note,
        primary=spec.primary, labels=str(labels), predictions=str(predictions), n_labels=len(gt),
        epochs=tuple(epochs), best=Summary("oracle", best.epoch, best.source, best.metrics),
        fixed=None if fixed is None else Summary("fixed", fixed.epoch, fixed.source, fixed.metrics),
        mean=None if epochs_range is None else _mean_summary(
            [e for e in epochs if e.epoch in in_range], epochs_range),
        warnings=_dataset_warnings(epochs))


def parse_epoch_range(text: str) -> tuple[int, int]:
    """`A-B` (whole numbers, A <= B) as (A, B); InputError naming --epochs otherwise."""
    first, dash, last = text.strip().partition("-")
    if not (dash and first.isdigit() and last.isdigit()) or int(first) > int(last):
        raise InputError(f"epoch range {text!r} is not FIRST-LAST", field="--epochs",
                         fix="give two whole numbers, the first not above the second, e.g. --epochs 30-60")
    return int(first), int(last)


def _in_range(files: Sequence[Any], epochs_range: tuple[int, int] | None, predictions: str | Path) -> set[int]:
    """The epochs of `files` inside the range; InputError when the range holds none of them."""
    if epochs_range is None:
        return set()
    first, last = epochs_range
    found = sorted(f.epoch for f in files if f.epoch is not None)
    inside = {e for e in found if first <= e <= last}
    if not inside:
        raise InputError(f"no prediction file for an epoch in {first}-{last}", path=predictions,
                         field="--epochs",
                         fix=f"choose a range holding some of the epochs found: {found}" if found
                         else "drop --epochs: the prediction files carry no epoch number")
    return inside


def _mean_summary(epochs: Sequence[EpochResult], epochs_range: tuple[int, int]) -> Summary:
    """Each metric averaged over `epochs` (the honest summary: no epoch is chosen on the test set)."""
    keys = epochs[0].metrics.keys()
    values = {k: sum(e.metrics[k] for e in epochs) / len(epochs) for k in keys}
    return Summary("mean", None, "", values, tuple(e.epoch for e in epochs if e.epoch is not None),
                   f"{epochs_range[0]}-{epochs_range[1]}")


def _dataset_warnings(epochs: Sequence[EpochResult]) -> tuple[dict[str, Any], ...]:
    """One warning per code over every epoch, naming the epochs it was raised for (`epochs`)."""
    by_code: dict[str, list[EpochResult]] = {}
    for e in epochs:
        for w in e.warnings:
            by_code.setdefault(w["code"], []).append(e)
    out = []
    for code, warned in by_code.items():
        first = next(w for w in warned[0].warnings if w["code"] == code)
        numbers = [e.epoch for e in warned]
        if len(numbers) == 1:
            where = "" if numbers[0] is None else f"epoch {numbers[0]}: "
        else:
            where = (f"epochs {', '.join(str(n) for n in numbers)} ({len(numbers)} of {len(epochs)}); "
                     f"e.g. epoch {numbers[0]}: ")
        out.append({"code": code, "message": where + first["message"], "epochs": numbers})
    return tuple(out)


class _Scorer:
    """Maps the ground truth once, then scores any number of answer lists against it.

    Each distinct answer string is parsed and mapped once and remembered, since the same answers recur
    across samples and epochs.
    """

    def __init__(self, spec: DatasetSpec, gt: dict[str, Any], maps: WheelMaps) -> None:
        self.spec = spec
        self.maps = maps
        self.bits = maps.bits
        self.gt_values = list(gt.values())
        self.gt_masks = [self.bits.mask(parse_label_list(v)) for v in self.gt_values] \
            if spec.task != "sentiment" else []
        self.candidates = 0  # the dataset's candidate clusters: its mapped ground truth, every wheel at once
        for g in self.gt_masks:
            self.candidates |= g
        self._answers: dict[str, MappedAnswer] = {}

    def _mapped(self, answer: str) -> MappedAnswer:
        """The cluster mask, number of words and unknown words of one answer string."""
        known = self._answers.get(answer)
        if known is None:
            words = parse_label_list(answer)
            unknown = tuple(w for w in words if not self.maps.knows(w))
            known = self._answers[answer] = MappedAnswer(self.bits.mask(words), len(words), unknown,
                                                         len(set(words)))
        return known

    def score(self, epoch: int | None, source: str, answers: Sequence[str],
              diagnostics: dict[str, Any]) -> EpochResult:
        diagnostics = {"samples": len(answers), **diagnostics}
        if self.spec.task == "sentiment":
            values, extra = self._sentiment(answers)
            return EpochResult(epoch, source, values, [], {**diagnostics, **extra})
        mapped = [self._mapped(a) for a in answers]
        pred_masks = [m.mask for m in mapped]
        basic = self.spec.task == "basic"
        per_wheel = []
        scores = []
        for wheel, wheel_mask in zip(self.maps.wheels, self.bits.wheel_masks, strict=True):
            if basic:
                result = metrics.hit_with_precision(self.gt_masks, pred_masks, wheel_mask, self.candidates)
            else:
                result = metrics.wheel_fpr(self.gt_masks, pred_masks, wheel_mask)
            scores.append(result)
            per_wheel.append({"wheel": wheel, **result.values, "scored": result.scored,
                              "skipped": result.skipped})
        diagnostics.update(_coverage(mapped))
        values = metrics.mean_over_wheels(scores)
        diagnostics["labels_per_sample"] = sum(m.n_distinct for m in mapped) / len(mapped) if mapped else 0.0
        warnings: list[dict[str, str]] = []
        if basic:
            diagnostics["candidate_coverage"] = values.pop("candidate_coverage")
            # a constant prediction of every candidate hits every scored sample: HIT 1 on each scored wheel
            constant_hit = sum(1.0 for s in scores if s.scored) / len(scores) if scores else 0.0
            warnings = hit_warnings(values, diagnostics, constant_hit)
        return EpochResult(epoch, source, values, per_wheel, diagnostics, warnings)

    def _sentiment(self, answers: Sequence[str]) -> tuple[dict[str, float], dict[str, Any]]:
        parsed = [parse_sentiment(a) for a in answers]
        unparseable = Counter(a for a, p in zip(answers, parsed, strict=True) if p is None)
        preds = [0 if p is None else p for p in parsed]  # unparseable answers score as 0, as published
        values = metrics.sentiment_waf_acc(self.gt_values, preds)
        dropped = sum(1 for g in self.gt_values if g == 0)
        n = len(answers)
        return values, {
            "neutral_share": sum(1 for p in parsed if p == 0) / n if n else 0.0,
            "unparseable_share": sum(unparseable.values()) / n if n else 0.0,
            "scored": len(answers) - dropped,
            "skipped_zero_ground_truth": dropped,
            "unparseable_answers": sum(unparseable.values()),
            "top_unparseable": [[a, c] for a, c in unparseable.most_common(TOP_UNKNOWN)],
        }


COVERAGE_WARNING = 0.5


def hit_warnings(values: dict[str, float], diagnostics: dict[str, Any],
                 constant_hit: float) -> list[dict[str, str]]:
    """The `hit_uninformative` warning of one basic-emotion result, or none.

    Raised when the predictions cover at least COVERAGE_WARNING of the candidate clusters, or when a
    constant prediction of every candidate would reach the same HIT: HIT does not penalise extra labels.
    """
    coverage, hit = diagnostics["candidate_coverage"], values["hit"]
    reasons = []
    if coverage >= COVERAGE_WARNING:
        reasons.append(f"predictions cover {100 * coverage:.2f}% of the candidate classes "
                       f"(at or above {100 * COVERAGE_WARNING:.0f}%)")
    if constant_hit > 0 and hit >= constant_hit - 1e-12:
        reasons.append(f"a constant prediction of every candidate class reaches the same HIT "
                       f"({100 * constant_hit:.2f})")
    if not reasons:
        return []
    return [{"code": "hit_uninformative",
             "message": f"HIT {100 * hit:.2f} says little: {'; '.join(reasons)}, and HIT does not penalise "
                        f"extra labels ({diagnostics['labels_per_sample']:.2f} labels per sample); "
                        f"see hit_precision {100 * values['hit_precision']:.2f}"}]


def _coverage(mapped: list[MappedAnswer]) -> dict[str, Any]:
    """How many predicted words the protocol knows; the unknown ones are dropped from scoring."""
    total = sum(m.n_words for m in mapped)
    unknown: Counter[str] = Counter(w for m in mapped for w in m.unknown)
    n_unknown = sum(unknown.values())
    return {
        "predicted_words": total,
        "unknown_words": n_unknown,
        "coverage": (total - n_unknown) / total if total else 1.0,
        "empty_predictions": sum(1 for m in mapped if not m.n_words),
        "top_unknown": [[w, c] for w, c in unknown.most_common(TOP_UNKNOWN)],
    }


def score_suite(predictions_root: str | Path, labels_root: str | Path, protocol: ResolvedProtocol, *,
                epoch: int | None = None, allow_missing: bool = False,
                epochs_range: tuple[int, int] | None = None) -> SuiteResult:
    """Score every dataset found as `<predictions_root>/<dataset>/`, in the published order.

    A dataset without predictions or without labels becomes an n/a cell with its reason; the 9-dataset
    mean is then None and the mean over the present ones is reported beside it.
    """
    predictions_root, labels_root = Path(predictions_root), Path(labels_root)
    for root, option in ((predictions_root, "--predictions-root"), (labels_root, "--labels-root")):
        if not root.is_dir():
            raise InputError("folder not found", path=root, field=option, fix="pass an existing folder")
    results: dict[str, DatasetResult] = {}
    row = []
    for spec in DATASETS.values():
        cell_reason = None
        if not (predictions_root / spec.key).is_dir():
            cell_reason = "no predictions"
        elif not _has_labels(labels_root / spec.key, spec):
            cell_reason = "no labels"
        else:
            results[spec.key] = score_dataset(spec, predictions_root / spec.key, labels_root / spec.key,
                                              protocol, epoch=epoch, allow_missing=allow_missing,
                                              epochs_range=epochs_range)
        result = results.get(spec.key)
        summary = result.headline if result else None
        if result is not None and result.n_labels != spec.size:
            cell_reason = f"partial ground truth: {result.n_labels} of {spec.size} test samples"
        row.append(RowCell(spec.key, spec.title, spec.primary,
                           summary.metrics[spec.primary] if summary else None,
                           summary.epoch if summary else None, cell_reason,
                           mean=result.mean if result else None,
                           warnings=_cell_warnings(result) if result else ()))
    if not results:
        raise InputError("no dataset could be scored", path=predictions_root,
                         fix="lay out predictions as <root>/<dataset>/ and labels as <labels-root>/<dataset>/ "
                             f"with dataset names from: {', '.join(DATASETS)}")
    return SuiteResult(protocol.maps.protocol, protocol.note, "fixed" if epoch is not None else "oracle",
                       results, tuple(row), "" if epochs_range is None else "{}-{}".format(*epochs_range))


def _cell_warnings(result: DatasetResult) -> tuple[dict[str, Any], ...]:
    """The dataset's warnings raised for an epoch its table cell shows (headline or in the mean)."""
    shown = {result.headline.epoch, *(result.mean.epochs if result.mean else ())}
    return tuple(w for w in result.warnings if shown & set(w.get("epochs", ())))


def _has_labels(folder: Path, spec: DatasetSpec) -> bool:
    """A labels folder without any label file (like mer2024 in the public release) is n/a, not an error."""
    if not folder.exists():
        return False
    try:
        find_label_file(folder, spec)
    except InputError:
        return False
    return True
