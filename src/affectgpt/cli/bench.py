"""`affectgpt bench ...`: run, score, suite, report, baselines, fetch-wheels, ls."""

from __future__ import annotations

import argparse

from affectgpt.cli.output import add_output_options, emit, note, progress_bar

FORMATS = ("table", "json", "csv", "markdown", "latex")

SCORE_EXAMPLES = """examples:
  affectgpt bench score --dataset mer2023 --predictions outputs/mer2023 --labels labels/mer2023
  affectgpt bench score --dataset cmumosi --predictions preds.csv --labels test_labels.csv --format json
  affectgpt bench score --dataset ovmerdplus --predictions outputs/ovmerdplus --labels labels/ovmerdplus \\
      --wheel-dir emotion_wheel --epoch 45 --output ovmerdplus.json --format json
"""
SUITE_EXAMPLES = """examples:
  affectgpt bench suite --predictions-root outputs --labels-root labels
  affectgpt bench suite --predictions-root outputs --labels-root labels --format latex --output row.tex
"""
REPORT_EXAMPLES = """examples:
  affectgpt bench report mer2023.json cmumosi.json --output report.html
  affectgpt bench report suite-a.json suite-b.json --name model-A --name model-B --output compare.html
"""
BASELINES_EXAMPLES = """examples:
  affectgpt bench baselines --dataset mer2023 --labels labels/mer2023
  affectgpt bench baselines --dataset cmumosi --labels labels/cmumosi --format markdown
  affectgpt bench baselines --dataset mer2023 --labels labels/mer2023 --format json --output baselines.json
  affectgpt bench report model.json baselines.json --output report.html
"""
RUN_EXAMPLES = """examples:
  affectgpt bench run --backend openai --model Qwen2.5-Omni-7B --base-url http://127.0.0.1:8000/v1 \\
      --clips-root clips --labels-root labels --datasets mer2023 cmumosi --output runs/omni
  affectgpt bench run --backend perception --clips-root clips --labels-root labels --limit 20 --output runs/quick
  affectgpt bench run --backend openai --model Qwen2-Audio-7B --base-url http://127.0.0.1:8000/v1 \\
      --option modalities='["audio"]' --clips-root clips --labels-root labels --dataset-spec mine.yaml \\
      --output runs/audio
exit codes: 0 done; 2 a bad option or input; 3 some clip failed (OUT/<dataset>/failures.json) or a set could
not be extracted: the rest is written and scored, and a rerun redoes only what is missing.
"""
FETCH_EXAMPLES = """examples:
  affectgpt bench fetch-wheels                 # the 2025 files behind the published numbers
  affectgpt bench fetch-wheels --version 2026  # the MER2026 files with fixed surface forms
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser("bench", help="score predictions on MER-UniBench",
                                  description="MER-UniBench: score free-form emotion predictions.")
    commands = bench.add_subparsers(dest="bench_command", metavar="<bench command>")
    commands.required = True
    raw = argparse.RawDescriptionHelpFormatter

    score = commands.add_parser("score", help="score one dataset (every epoch found)", epilog=SCORE_EXAMPLES,
                                formatter_class=raw)
    which = score.add_mutually_exclusive_group(required=True)
    which.add_argument("--dataset", help="dataset name (see `affectgpt bench ls`)")
    which.add_argument("--dataset-spec", metavar="FILE", help=DATASET_SPEC_HELP)
    score.add_argument("--predictions", required=True, metavar="PATH",
                       help="a prediction file (.npz/.csv/.jsonl) or a folder of per-epoch files")
    score.add_argument("--labels", metavar="PATH",
                       help="a label file or a folder holding one (required with --dataset; with --dataset-spec "
                            "it replaces the spec's labels.file)")
    _add_protocol_options(score)
    add_output_options(score, FORMATS)
    score.set_defaults(run=run_score)

    suite = commands.add_parser("suite", help="score every dataset under a root; print the table row",
                                epilog=SUITE_EXAMPLES, formatter_class=raw)
    suite.add_argument("--predictions-root", required=True, metavar="DIR",
                       help="folder holding <dataset>/ prediction folders")
    suite.add_argument("--labels-root", required=True, metavar="DIR", help="folder holding <dataset>/ labels")
    suite.add_argument("--dataset-spec", action="append", default=[], metavar="FILE",
                       help=DATASET_SPEC_HELP + "; repeatable: each user dataset is scored from "
                            "<predictions-root>/<name>/ after the published nine (their mean is unchanged)")
    _add_protocol_options(suite)
    add_output_options(suite, FORMATS)
    suite.set_defaults(run=run_suite)

    report = commands.add_parser("report", help="HTML report (with PNG figures) from JSON results",
                                 epilog=REPORT_EXAMPLES, formatter_class=raw)
    report.add_argument("results", nargs="+", metavar="RESULT.json",
                        help="JSON written by `bench score`, `bench suite` or `bench baselines` with --format json "
                             "(each baseline becomes a reference column)")
    report.add_argument("--name", action="append", default=[], metavar="LABEL",
                        help="a label per result file, in order (default: the file names)")
    report.add_argument("--output", "-o", required=True, metavar="FILE.html", help="the report to write")
    report.add_argument("--dataset-spec", action="append", default=[], metavar="FILE",
                        help="a user dataset's spec, for results of that dataset (repeatable)")
    report.set_defaults(run=run_report, needs=("report",))

    fetch = commands.add_parser("fetch-wheels", help="download the official emotion-wheel files (pinned, checked)",
                                epilog=FETCH_EXAMPLES, formatter_class=raw)
    fetch.add_argument("--version", default="2025", choices=("2025", "2026"),
                       help="2025: the files behind the published numbers (default); 2026: fixed forms")
    fetch.add_argument("--base-url", help="serve <commit>/<folder>/<file> from here "
                                          "(default $AFFECTGPT_WHEELS_BASE_URL or GitHub)")
    fetch.add_argument("--dest", metavar="DIR", help="folder to fill (default: the per-user cache)")
    fetch.add_argument("--force", action="store_true", help="download even when a verified copy exists")
    fetch.set_defaults(run=run_fetch)

    baselines = commands.add_parser(
        "baselines", help="reference baselines (constant, majority, random labels) scored like a model",
        epilog=BASELINES_EXAMPLES, formatter_class=raw)
    which = baselines.add_mutually_exclusive_group(required=True)
    which.add_argument("--dataset", help="dataset name (see `affectgpt bench ls`)")
    which.add_argument("--dataset-spec", metavar="FILE", help=DATASET_SPEC_HELP)
    baselines.add_argument("--labels", metavar="PATH",
                           help="a label file or a folder holding one (required with --dataset; with "
                                "--dataset-spec it replaces the spec's labels.file)")
    baselines.add_argument("--protocol", default="auto", choices=("auto", "official", "official-2026", "builtin"),
                           help="label normalisation, as for `bench score` (default auto)")
    baselines.add_argument("--wheel-dir", metavar="DIR",
                           help="folder with format.csv, synonym.xlsx, wheel1..5.xlsx")
    add_output_options(baselines, FORMATS)
    baselines.set_defaults(run=run_baselines)

    _register_run(commands, raw)

    ls = commands.add_parser("ls", help="list the datasets of MER-UniBench")
    ls.set_defaults(run=run_ls)


def _add_protocol_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", default="auto", choices=("auto", "official", "official-2026", "builtin"),
                        help="label normalisation: official wheel files (found via --wheel-dir, "
                             "$AFFECTGPT_WHEEL_DIR or fetch-wheels) or the built-in lexicon; auto (default) "
                             "uses the official files when found, else the built-in lexicon, and says so")
    parser.add_argument("--wheel-dir", metavar="DIR", help="folder with format.csv, synonym.xlsx, wheel1..5.xlsx")
    parser.add_argument("--epoch", type=int, help="also report this epoch as the fixed (non-oracle) summary")
    parser.add_argument("--epochs", metavar="FIRST-LAST",
                        help="also report the mean of each metric over the epochs in this range (e.g. 30-60): "
                             "the honest summary beside the oracle best epoch")
    parser.add_argument("--allow-missing", action="store_true",
                        help="score ground-truth names without a prediction as empty predictions")


def run_score(args: argparse.Namespace) -> int:
    from affectgpt.bench.protocol import resolve_protocol
    from affectgpt.bench.report.formats import render
    from affectgpt.bench.score import score_dataset

    _check_output(args)
    spec, labels = _dataset_and_labels(args)
    protocol = resolve_protocol(args.protocol, args.wheel_dir)
    _announce(protocol, args)
    result = score_dataset(spec, args.predictions, labels, protocol, epoch=args.epoch,
                           allow_missing=args.allow_missing, epochs_range=_epochs_range(args))
    emit(render(result, args.format), args.output)
    return 0


def run_suite(args: argparse.Namespace) -> int:
    from affectgpt.bench.protocol import resolve_protocol
    from affectgpt.bench.report.formats import render
    from affectgpt.bench.score import score_suite

    _check_output(args)
    protocol = resolve_protocol(args.protocol, args.wheel_dir)
    _announce(protocol, args)
    options = {"epoch": args.epoch, "allow_missing": args.allow_missing, "epochs_range": _epochs_range(args)}
    if args.dataset_spec:  # user datasets after the published nine
        from affectgpt.bench.spec import read_dataset_specs, score_suite_with

        specs = read_dataset_specs(args.dataset_spec, labels_root=args.labels_root)
        suite = score_suite_with(specs, args.predictions_root, args.labels_root, protocol, **options)
    else:
        suite = score_suite(args.predictions_root, args.labels_root, protocol, **options)
    emit(render(suite, args.format), args.output)
    return 0


DATASET_SPEC_HELP = ("a user-defined dataset: a .yaml (needs pyyaml) or .json spec naming its task, label file and "
                     "layout, label space and primary metric (docs/dataset-spec.md)")


def _dataset_and_labels(args: argparse.Namespace):
    """(DatasetSpec, label path) of `--dataset NAME --labels PATH` or `--dataset-spec FILE [--labels PATH]`.

    `--dataset-spec` goes through bench/spec.py `read_dataset_spec` (the one resolution of a spec file: strict
    keys, the label file checked against the layout before scoring)."""
    if getattr(args, "dataset_spec", None):
        from affectgpt.bench.spec import read_dataset_spec

        loaded = read_dataset_spec(args.dataset_spec, labels=args.labels)
        return loaded.spec, loaded.labels
    from affectgpt.bench.datasets import get_dataset
    from affectgpt.errors import InputError

    spec = get_dataset(args.dataset)
    if args.labels is None:
        raise InputError("--labels is required with --dataset", field="--labels",
                         fix=f"pass the label file of {args.dataset} or a folder holding it")
    return spec, args.labels


def _epochs_range(args: argparse.Namespace) -> tuple[int, int] | None:
    """--epochs FIRST-LAST as a pair, or None."""
    from affectgpt.bench.score import parse_epoch_range

    return None if args.epochs is None else parse_epoch_range(args.epochs)


def _check_output(args: argparse.Namespace) -> None:
    """--output, when given, must be a file that can be written (checked before any scoring)."""
    if args.output:
        from affectgpt.io.outputs import output_file

        output_file(args.output)


def _announce(protocol, args: argparse.Namespace) -> None:
    """Say on stderr that the built-in protocol is in use, unless the table on stdout says it already."""
    if protocol.is_builtin and (args.output or args.format != "table"):
        note(f"note: {protocol.note}")


def run_report(args: argparse.Namespace) -> int:
    from affectgpt.bench.report.html import write_report
    from affectgpt.io.outputs import output_file

    output_file(args.output)
    if args.dataset_spec:
        from affectgpt.bench.spec import load_dataset_spec

        for spec_file in args.dataset_spec:  # registered for this process, so the report knows their names
            load_dataset_spec(spec_file)
    write_report(args.results, args.output, names=args.name)
    note(f"wrote {args.output}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from affectgpt.io.outputs import output_folder
    from affectgpt.lexicon.fetch import fetch_wheels

    if args.dest:
        output_folder(args.dest, "--dest", create=False)
    folder = fetch_wheels(args.version, base_url=args.base_url, dest=Path(args.dest) if args.dest else None,
                          force=args.force)
    print(folder)
    note(f"official emotion wheels {args.version} verified in {folder}")
    return 0


def run_baselines(args: argparse.Namespace) -> int:
    from affectgpt.bench.baselines import compute_baselines, render
    from affectgpt.bench.protocol import resolve_protocol

    _check_output(args)
    spec, labels = _dataset_and_labels(args)
    protocol = resolve_protocol(args.protocol, args.wheel_dir)
    baselines = compute_baselines(spec, labels, protocol)
    _announce(protocol, args)  # after the labels were read: a bad input gets its one error line only
    emit(render(baselines, args.format), args.output)
    return 0


def _register_run(commands: argparse._SubParsersAction, raw: type) -> None:
    run = commands.add_parser(
        "run", help="run a multimodal model on the benchmark's clips: generate, extract, score",
        epilog=RUN_EXAMPLES, formatter_class=raw,
        description="Any multimodal model on MER-UniBench in one command: per dataset, preprocessing (cached), "
                    "generation (resumable: answers are logged as they come), extraction and scoring, into OUT "
                    "(suite.json, provenance.json, <dataset>/ in the original layout). Clips: "
                    "ROOT/<dataset>/<name>.mp4|.avi|.mkv, optional audio/<name>.wav and subtitles.csv. A clip "
                    "not in the labels is skipped; a label without a clip is left out of the score (partial) "
                    "unless --missing-as-empty. All counted in provenance.json.")
    run.add_argument("--backend", required=True, help="openai, transformers, affectgpt or perception")
    run.add_argument("--clips-root", required=True, metavar="ROOT", help="folder holding <dataset>/ clip folders")
    run.add_argument("--labels-root", required=True, metavar="DIR", help="folder holding <dataset>/ labels")
    run.add_argument("--output", "-o", required=True, metavar="OUT", help="the run's folder (resumed when rerun)")
    run.add_argument("--datasets", nargs="+", default=[], metavar="NAME",
                     help="published sets to run (default: every one with a folder under --clips-root)")
    run.add_argument("--dataset-spec", action="append", default=[], metavar="FILE",
                     help=DATASET_SPEC_HELP + "; repeatable; its clips are ROOT/<name>/")
    run.add_argument("--prompt", metavar="FILE", help="your own instruction (its id is file:<sha256 prefix>)")
    run.add_argument("--subtitle-column", metavar="NAME",
                     help="column of ROOT/<dataset>/subtitles.csv to read (default english, subtitle, text, chinese)")
    run.add_argument("--limit", type=int, metavar="N", help="only the first N clips (sorted names) of each set; "
                                                            "the result says partial")
    run.add_argument("--missing-as-empty", action="store_true",
                     help="score labels without an answer (no clip, failed clip) as empty answers")
    backend = run.add_argument_group("backend options (only those the backend takes are allowed)")
    backend.add_argument("--model", help="served model id (openai), model folder (transformers), checkpoint "
                                         "(affectgpt)")
    backend.add_argument("--base-url", help="OpenAI-compatible endpoint (openai)")
    backend.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    backend.add_argument("--concurrency", type=int, help="requests in flight (openai)")
    backend.add_argument("--timeout", type=float, help="seconds per request (openai)")
    backend.add_argument("--frames", type=int, dest="n_frames", help="frames sampled per clip")
    backend.add_argument("--size", type=int, help="side of the frames sent")
    backend.add_argument("--modalities", nargs="+", help="what to send, e.g. image audio text")
    backend.add_argument("--temperature", type=float)
    backend.add_argument("--top-p", type=float)
    backend.add_argument("--max-tokens", type=int)
    backend.add_argument("--seed", type=int, help="sampling seed (recorded)")
    backend.add_argument("--cache", metavar="FILE", help="answer cache (sqlite; default the per-user one)")
    backend.add_argument("--no-cache", action="store_true", help="do not use the answer cache")
    backend.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                         help="any other option of the backend (VALUE read as JSON when it parses)")
    extract = run.add_argument_group("extraction")
    extract.add_argument("--extractor", default="lexicon", help="lexicon (offline, default), openai, transformers")
    extract.add_argument("--extractor-model", help="the extraction LLM (openai: served id; transformers: folder)")
    extract.add_argument("--extractor-base-url", help="its OpenAI-compatible endpoint")
    extract.add_argument("--extractor-api-key-env", default="OPENAI_API_KEY")
    run.add_argument("--protocol", default="auto", choices=("auto", "official", "official-2026", "builtin"),
                     help="label normalisation, as for `bench suite` (default auto)")
    run.add_argument("--wheel-dir", metavar="DIR", help="folder with format.csv, synonym.xlsx, wheel1..5.xlsx")
    run.add_argument("--batch-size", type=int, default=16, help="jobs handed to the backend at once (default 16)")
    run.add_argument("--workers", type=int, default=2, help="threads decoding clips (default 2)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(run=run_run, needs=(_run_needs,))


RUN_NEEDS = {"openai": ("llm", "media"), "transformers": ("model", "media"), "affectgpt": ("model", "media"),
             "perception": ("perception",)}
"""The extras each `bench run` backend needs (clips are decoded with media; the perception extra includes it)."""


def _run_needs(args: argparse.Namespace) -> tuple[str, ...]:
    extractor = {"openai": ("llm",), "transformers": ("model",)}.get(args.extractor, ())
    return (*RUN_NEEDS.get(args.backend, ()), *extractor)


def run_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from affectgpt.bench.report.formats import render
    from affectgpt.extract.build import ExtractorOptions
    from affectgpt.harness.backends import build_backend
    from affectgpt.harness.run import RunOptions, backend_options, run_benchmark

    options = RunOptions(
        clips_root=Path(args.clips_root), labels_root=Path(args.labels_root), output=Path(args.output),
        datasets=args.datasets, dataset_specs=args.dataset_spec, prompt_file=args.prompt, limit=args.limit,
        missing_as_empty=args.missing_as_empty, subtitle_column=args.subtitle_column,
        extractor=_run_extractor(args, ExtractorOptions), protocol=args.protocol, wheel_dir=args.wheel_dir,
        batch_size=args.batch_size, workers=args.workers)
    backend = build_backend(args.backend, **backend_options(args.backend, _given_backend_options(args)))
    bars = _Bars(not args.no_progress)
    try:
        result = run_benchmark(backend, options, bars)
    finally:
        bars.close()
    for run in result.datasets:
        counts = run.counts
        line = (f"{run.dataset}: {len(run.answered)} answered ({run.generation.get('resumed', 0)} resumed), "
                f"{run.scored} of {counts['labels']} labels scored")
        skips = [f"{counts[k]} {k.replace('_', ' ')}" for k in ("not_in_labels", "without_clip", "left_out_by_limit")
                 if counts[k]]
        if skips:
            line += f"; skipped: {', '.join(skips)}"
        if run.failures:
            line += f"; {len(run.failures)} failed (see {Path(args.output) / run.dataset / 'failures.json'})"
        if run.problem:
            line += f"; NOT scored: {run.problem}"
        note(line)
    if result.suite is not None:
        emit(render(result.suite, "table"), None)
    if result.provenance["partial"]:
        note("partial: " + "; ".join(result.provenance["partial_reasons"]))
    note(f"wrote {Path(args.output) / 'suite.json'} and provenance.json")
    return 3 if result.incomplete else 0


def _given_backend_options(args: argparse.Namespace) -> dict:
    """The backend options the command line set (by the backends' keyword names)."""
    import json
    import os

    from affectgpt.errors import InputError

    given = {k: getattr(args, k) for k in ("model", "base_url", "concurrency", "timeout", "n_frames", "size",
                                           "modalities", "temperature", "top_p", "max_tokens", "seed")
             if getattr(args, k) is not None}
    if args.base_url and os.environ.get(args.api_key_env):
        given["api_key"] = os.environ[args.api_key_env]
    if args.no_cache:
        given["cache"] = False
    elif args.cache:
        given["cache"] = args.cache
    for item in args.option:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise InputError(f"{item!r} is not KEY=VALUE", field="--option", fix="e.g. --option video_as=video")
        try:
            given[key.strip()] = json.loads(value)
        except ValueError:
            given[key.strip()] = value
    return given


def _run_extractor(args: argparse.Namespace, options_type: type):
    import os

    return options_type(backend=args.extractor, model=args.extractor_model, base_url=args.extractor_base_url,
                        api_key=os.environ.get(args.extractor_api_key_env))


class _Bars:
    """harness.run.Progress as tqdm bars on stderr, one per stage of the dataset running."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict = {}

    def start(self, stage: str, dataset: str, total: int) -> None:
        self.finish(stage)
        self.bars[stage] = progress_bar(total or None, unit="clip", desc=f"{dataset} {stage}", enabled=self.enabled)

    def advance(self, stage: str, n: int = 1) -> None:
        if stage in self.bars:
            self.bars[stage].update(n)

    def finish(self, stage: str) -> None:
        bar = self.bars.pop(stage, None)
        if bar is not None:
            bar.close()

    def close(self) -> None:
        for stage in list(self.bars):
            self.finish(stage)


def run_ls(args: argparse.Namespace) -> int:
    from affectgpt.bench.datasets import DATASETS

    rows = [["dataset", "title", "task", "test size", "primary", "secondary", "ground truth"]]
    for d in DATASETS.values():
        rows.append([d.key, d.title, d.task, str(d.size), d.primary, ", ".join(d.metrics[1:]) or "-",
                     d.label_space])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    emit("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows), None)
    return 0
