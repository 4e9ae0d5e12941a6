"""`affectgpt bench ...`: score, suite, report, baselines, fetch-wheels, ls."""

from __future__ import annotations

import argparse

from affectgpt.cli.output import add_output_options, emit, note

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


def run_ls(args: argparse.Namespace) -> int:
    from affectgpt.bench.datasets import DATASETS

    rows = [["dataset", "title", "task", "test size", "primary", "secondary", "ground truth"]]
    for d in DATASETS.values():
        rows.append([d.key, d.title, d.task, str(d.size), d.primary, ", ".join(d.metrics[1:]) or "-",
                     d.label_space])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    emit("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows), None)
    return 0
