"""`bench run`: any multimodal backend on MER-UniBench, clips to score: generate, extract, score, record provenance.

For each dataset (harness/layout.py says which clips, and how unmatched names are counted) it generates the answers
(harness/generate.py: overlapped with preprocessing, resumable), writes `OUT/<dataset>/checkpoint_000000.npz`
(`filenames`/`fileitems`, as `affectgpt predict` writes), extracts `-openset` (and `-openset-sentiment` for
sentiment sets) with extract.job, then scores OUT with the scorer of `bench suite` into `OUT/suite.json` and writes
`OUT/provenance.json`. A set is scored on the ground truth of its answered clips (written to
`OUT/.labels/<dataset>/test_labels.csv`); when that is not the whole set (`--limit`, missing clips, failures) the
cell says "partial ground truth" and suite.json and provenance.json say `partial: true`. With `missing_as_empty`,
labels without an answer are scored as empty answers instead. Failed clips are listed in
`OUT/<dataset>/failures.json`; the run then reports them (the CLI exits 3).
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.harness.base import ClipInputs, MultimodalBackend, Prompt
from affectgpt.harness.layout import Clip, ClipSet, clip_set, dataset_sources

EPOCH_STEM = "checkpoint_000000"
FAILURES = "failures.json"
LABELS_DIR = ".labels"
CACHE_DIR = ".cache"
TASK_OF = {"ov": "labels", "basic": "description", "sentiment": "description"}
"""The Job task of each task family: OV sets ask for the emotion labels, the others for a description."""


class Progress:
    """Per-stage progress callbacks (the CLI draws bars); this base class draws nothing."""

    def start(self, stage: str, dataset: str, total: int) -> None: ...

    def advance(self, stage: str, n: int = 1) -> None: ...

    def finish(self, stage: str) -> None: ...


@dataclass(frozen=True)
class RunOptions:
    """What `bench run` runs on (see the module docstring); `extractor` is an extract.build.ExtractorOptions."""

    clips_root: Path
    labels_root: Path
    output: Path
    datasets: Sequence[str] = ()
    dataset_specs: Sequence[str | Path] = ()
    prompt_file: str | Path | None = None
    limit: int | None = None
    missing_as_empty: bool = False
    subtitle_column: str | None = None
    extractor: Any = None
    protocol: str = "auto"
    wheel_dir: str | Path | None = None
    batch_size: int = 16
    queue_size: int = 64
    workers: int = 2


@dataclass
class DatasetRun:
    """What happened to one dataset: counts, failures, extraction reports, timings, whether it was scored."""

    dataset: str
    task: str
    prompt: str
    counts: dict[str, Any]
    generation: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    extraction: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    scored: int = 0
    problem: str = ""  # why the set could not be scored ("" when it was)
    answered: list[str] = field(default_factory=list, repr=False)

    @property
    def partial(self) -> bool:
        return self.scored < self.counts["labels"]


@dataclass
class RunResult:
    """The suite (None when no set could be scored), each dataset's run, the provenance written."""

    suite: Any
    datasets: list[DatasetRun]
    provenance: dict[str, Any]

    @property
    def incomplete(self) -> bool:
        """Some clip failed, or some set could not be scored (the CLI exits 3)."""
        return any(d.failures or d.problem for d in self.datasets)


def run_benchmark(backend: MultimodalBackend, options: RunOptions, progress: Progress | None = None, *,
                  load: Callable[[Clip], ClipInputs] | None = None) -> RunResult:
    """Run `backend` over every dataset of `options`; write OUT (see the module docstring).

    Args:
        load: decodes a clip into the backend's inputs (default: harness.clips.load_clip_inputs, cached in
            `OUT/<dataset>/.cache`).

    Raises:
        InputError: a bad folder, dataset, spec, prompt file, protocol or extractor option (before anything runs).
    """
    from affectgpt.bench.protocol import resolve_protocol
    from affectgpt.extract.build import ExtractorOptions, build_extractor
    from affectgpt.io.outputs import output_folder

    progress = progress or Progress()
    began = time.perf_counter()
    for root, option in ((options.clips_root, "--clips-root"), (options.labels_root, "--labels-root")):
        if not Path(root).is_dir():
            raise InputError("folder not found", path=root, field=option, fix="pass an existing folder")
    if options.limit is not None and options.limit < 1:
        raise InputError(f"must be >= 1, got {options.limit}", field="--limit", fix="pass a positive number")
    clips_root, output = Path(options.clips_root), Path(options.output)
    sets = [clip_set(spec, labels, clips_root, limit=options.limit, missing_as_empty=options.missing_as_empty,
                     subtitle_column=options.subtitle_column, spec_file=source)
            for spec, labels, source in dataset_sources(clips_root, Path(options.labels_root), options.datasets,
                                                        options.dataset_specs)]
    protocol = resolve_protocol(options.protocol, options.wheel_dir)
    extractor = build_extractor(options.extractor or ExtractorOptions())
    prompts = {s.spec.key: _prompt(s, options.prompt_file) for s in sets}
    output_folder(output, "--output")
    runs = [_run_set(backend, s, prompts[s.spec.key], output, options, progress, load, extractor) for s in sets]
    scoring = time.perf_counter()
    suite = _score(sets, runs, output, protocol, options.missing_as_empty)
    scoring = time.perf_counter() - scoring
    provenance = _provenance(backend, options, runs, extractor, protocol, time.perf_counter() - began, scoring)
    from affectgpt.io.atomic import write_text

    if suite is not None:
        data = suite.to_json()
        data["partial"] = provenance["partial"]
        write_text(output / "suite.json", json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    write_text(output / "provenance.json", json.dumps(provenance, indent=2, ensure_ascii=False) + "\n")
    return RunResult(suite, runs, provenance)


SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "seed")
FLAGS = {"n_frames": "--frames", "base_url": "--base-url", "top_p": "--top-p", "max_tokens": "--max-tokens"}


def backend_options(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The keyword options of backend `name` from the command line's `given` ones: sampling settings become a
    `Sampling` for a backend that takes `sampling` (over its default, else llm.base.Sampling's), or its own
    keywords (max_tokens as max_new_tokens); an option the backend does not take is an InputError."""
    import inspect

    from affectgpt.harness.backends import BACKENDS

    parameters = inspect.signature(BACKENDS.get(name).__init__).parameters
    given = dict(given)
    sampling = {k: given.pop(k) for k in SAMPLING_KEYS if k in given}
    if sampling and "sampling" in parameters:
        import dataclasses

        from affectgpt.llm.base import Sampling

        default = parameters["sampling"].default
        base = default if isinstance(default, Sampling) else Sampling()
        try:
            given["sampling"] = dataclasses.replace(base, **sampling)
        except ValueError as exc:
            raise InputError(str(exc), field="sampling", fix="check --temperature/--top-p/--max-tokens") from None
    elif sampling:
        if "max_tokens" in sampling and "max_new_tokens" in parameters:
            given["max_new_tokens"] = sampling.pop("max_tokens")
        given.update(sampling)
    for key in given:
        if key not in parameters or key == "self":
            flag = FLAGS.get(key, "--" + key.replace("_", "-"))
            raise InputError(f"the {name} backend takes no option {key!r}", field=flag,
                             fix=f"its options: {', '.join(p for p in parameters if p != 'self')}")
    return given


def _prompt(clips: ClipSet, prompt_file: str | Path | None) -> Prompt:
    from affectgpt.harness.prompts import TASK_PROMPTS, get_prompt, prompt_from_file

    return prompt_from_file(prompt_file) if prompt_file else get_prompt(TASK_PROMPTS[clips.spec.task])


def default_loader(backend: MultimodalBackend, cache_dir: Path) -> Callable[[Clip], ClipInputs]:
    """harness.clips.load_clip_inputs for what `backend` needs, with its frame count and size, cached."""
    from affectgpt.harness.clips import load_clip_inputs

    encode = getattr(backend, "encode", None)
    sizes = {k: encode[k] for k in ("n_frames", "size") if isinstance(encode, dict) and k in encode}
    for key in ("n_frames", "size"):
        if key not in sizes and isinstance(getattr(backend, key, None), int):
            sizes[key] = getattr(backend, key)

    def load(clip: Clip) -> ClipInputs:
        inputs = load_clip_inputs(clip.video, needs=backend.needs, subtitle=clip.subtitle, cache_dir=cache_dir,
                                  audio=clip.audio, **sizes)
        return inputs if inputs.name == clip.name else replace(inputs, name=clip.name)

    return load


def _run_set(backend: MultimodalBackend, clips: ClipSet, prompt: Prompt, output: Path, options: RunOptions,
             progress: Progress, load: Callable[[Clip], ClipInputs] | None, extractor: Any) -> DatasetRun:
    from affectgpt.harness.generate import generate
    from affectgpt.io.atomic import write_text
    from affectgpt.io.npy import write_npz

    key = clips.spec.key
    folder = output / key
    run = DatasetRun(key, TASK_OF[clips.spec.task], prompt.id, clips.counts())
    progress.start("preprocess", key, len(clips.clips))
    progress.start("generate", key, len(clips.clips))
    try:
        done, report = generate(backend, clips.clips, prompt, run.task, folder,
                                load=load or default_loader(backend, folder / CACHE_DIR),
                                batch_size=options.batch_size, queue_size=options.queue_size,
                                workers=options.workers, on_loaded=lambda n: progress.advance("preprocess", n),
                                on_answered=lambda n: progress.advance("generate", n))
    finally:
        progress.finish("preprocess")
        progress.finish("generate")
    run.generation, run.failures = report.to_json(), sorted(report.failures, key=lambda f: f["name"])
    run.timings = {"preprocess_busy": report.preprocess_seconds, "generate_busy": report.answer_seconds,
                   "generation_wall": report.wall_seconds}
    if run.failures:
        write_text(folder / FAILURES, json.dumps({"failures": run.failures}, indent=2, ensure_ascii=False) + "\n")
    else:
        (folder / FAILURES).unlink(missing_ok=True)
    answered = run.answered = [c.name for c in clips.clips if c.name in done]
    _finish_logs(folder, done)
    if not answered:
        run.problem = "no clip was answered"
        return run
    write_npz(folder / f"{EPOCH_STEM}.npz", {"filenames": answered, "fileitems": [done[n]["text"] for n in answered]})
    began = time.perf_counter()
    run.problem = _extract(clips, folder, extractor, run, progress)
    run.timings["extract"] = time.perf_counter() - began
    run.scored = 0 if run.problem else (len(clips.selected) if options.missing_as_empty else len(answered))
    return run


def _finish_logs(folder: Path, done: dict[str, dict[str, Any]]) -> None:
    """Every answer so far into generation.jsonl (atomically, sorted), then the partial log removed."""
    from affectgpt.harness.generate import PARTIAL, RECORDS
    from affectgpt.io.atomic import write_text

    write_text(folder / RECORDS, "".join(json.dumps(done[n], ensure_ascii=False) + "\n" for n in sorted(done)))
    (folder / PARTIAL).unlink(missing_ok=True)


def _extract(clips: ClipSet, folder: Path, extractor: Any, run: DatasetRun, progress: Progress) -> str:
    """The -openset (and -openset-sentiment) files of the folder; the reason when one was not written."""
    from affectgpt.extract.job import run_job

    steps = ("labels", "sentiment") if clips.spec.task == "sentiment" else ("labels",)
    for step in steps:
        progress.start(f"extract {step}", clips.spec.key, 0)
        try:
            reports = run_job(step, folder, folder, extractor, force=True,
                              on_item=lambda n, s=step: progress.advance(f"extract {s}", n))
        finally:
            progress.finish(f"extract {step}")
        run.extraction.extend({"step": step, **r.to_json()} for r in reports)
        for r in reports:
            if r.incomplete:
                return f"extraction ({step}) not written: {r.refused or f'{r.failed} items failed'}"
    return ""


def _score(sets: list[ClipSet], runs: list[DatasetRun], output: Path, protocol: Any, missing_as_empty: bool) -> Any:
    """score the scored sets of OUT against the ground truth of what was answered (OUT/.labels)."""
    from affectgpt.bench.datasets import DATASETS
    from affectgpt.bench.spec import LoadedSpec, score_suite_with

    labels_root = output / LABELS_DIR
    shutil.rmtree(labels_root, ignore_errors=True)
    labels_root.mkdir(parents=True)
    user = []
    for clips, run in zip(sets, runs, strict=True):
        if run.problem:
            continue
        answered = set(run.answered)
        names = clips.selected if missing_as_empty else [n for n in clips.selected if n in answered]
        label_file = _write_labels(labels_root / clips.spec.key / "test_labels.csv", names, clips.gt)
        if clips.spec.key not in DATASETS:
            user.append(LoadedSpec(clips.spec, label_file, clips.spec_file or label_file))
    if all(r.problem for r in runs):
        return None
    return score_suite_with(user, output, labels_root, protocol, allow_missing=missing_as_empty)


def _write_labels(path: Path, names: Sequence[str], gt: dict[str, Any]) -> Path:
    import csv
    import io

    from affectgpt.io.atomic import write_text

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "label"])
    writer.writerows((n, repr(gt[n]) if isinstance(gt[n], float) else gt[n]) for n in names)
    write_text(path, buffer.getvalue())
    return path


def _provenance(backend: MultimodalBackend, options: RunOptions, runs: list[DatasetRun], extractor: Any,
                protocol: Any, total: float, scoring: float) -> dict[str, Any]:
    """What made these results: backend, prompts, sampling, seed, versions, counts and per-stage timings."""
    from affectgpt.harness.backends import package_versions

    described = backend.provenance()
    versions = {**package_versions("transformers", "torch", "av"), "python": platform.python_version()}
    sampling = described.get("sampling", {})
    reasons = [f"--limit {options.limit}"] if options.limit is not None else []
    reasons += [f"{r.dataset}: {r.scored} of {r.counts['labels']} labels scored" for r in runs
                if r.partial and not r.problem]
    reasons += [f"{r.dataset}: not scored ({r.problem})" for r in runs if r.problem]
    describe = getattr(extractor, "describe", None)
    return {
        "backend": described, "model": getattr(backend, "model", ""),
        "sampling": sampling, "seed": sampling.get("seed") if isinstance(sampling, dict) else None,
        "versions": versions, "protocol": protocol.maps.protocol, "protocol_note": protocol.note,
        "extractor": describe() if describe else {"backend": getattr(extractor, "name", "")},
        "prompt_file": None if options.prompt_file is None else str(options.prompt_file),
        "limit": options.limit, "missing_as_empty": options.missing_as_empty,
        "partial": bool(reasons), "partial_reasons": reasons,
        "clips_root": str(options.clips_root), "labels_root": str(options.labels_root),
        "datasets": {r.dataset: {"task": r.task, "prompt": r.prompt, "counts": r.counts, "scored": r.scored,
                                 "generation": r.generation, "failures": len(r.failures), "problem": r.problem,
                                 "extraction": r.extraction, "timings": r.timings} for r in runs},
        "timings": {"total": total, "scoring": scoring},
    }
