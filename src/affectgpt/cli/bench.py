"""`affectgpt bench ...`: score, suite, report, fetch-wheels, ls."""

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
    score.add_argument("--dataset", required=True, help="dataset name (see `affectgpt bench ls`)")
    score.add_argument("--predictions", required=True, metavar="PATH",
                       help="a prediction file (.npz/.csv/.jsonl) or a folder of per-epoch files")
    score.add_argument("--labels", required=True, metavar="PATH", help="a label file or a folder holding one")
    _add_protocol_options(score)
    add_output_options(score, FORMATS)
    score.set_defaults(run=run_score)

    suite = commands.add_parser("suite", help="score every dataset under a root; print the table row",
                                epilog=SUITE_EXAMPLES, formatter_class=raw)
    suite.add_argument("--predictions-root", required=True, metavar="DIR",
                       help="folder holding <dataset>/ prediction folders")
    suite.add_argument("--labels-root", required=True, metavar="DIR", help="folder holding <dataset>/ labels")
    _add_protocol_options(suite)
    add_output_options(suite, FORMATS)
    suite.set_defaults(run=run_suite)

    report = commands.add_parser("report", help="HTML report (with PNG figures) from JSON results",
                                 epilog=REPORT_EXAMPLES, formatter_class=raw)
    report.add_argument("results", nargs="+", metavar="RESULT.json",
                        help="JSON written by `bench score` or `bench suite` with --format json")
    report.add_argument("--name", action="append", default=[], metavar="LABEL",
                        help="a label per result file, in order (default: the file names)")
    report.add_argument("--output", "-o", required=True, metavar="FILE.html", help="the report to write")
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

    ls = commands.add_parser("ls", help="list the datasets of MER-UniBench")
    ls.set_defaults(run=run_ls)


def _add_protocol_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", default="auto", choices=("auto", "official", "official-2026", "builtin"),
                        help="label normalisation: official wheel files (found via --wheel-dir, "
                             "$AFFECTGPT_WHEEL_DIR or fetch-wheels) or the built-in lexicon; auto (default) "
                             "uses the official files when found, else the built-in lexicon, and says so")
    parser.add_argument("--wheel-dir", metavar="DIR", help="folder with format.csv, synonym.xlsx, wheel1..5.xlsx")
    parser.add_argument("--epoch", type=int, help="also report this epoch as the fixed (non-oracle) summary")
    parser.add_argument("--allow-missing", action="store_true",
                        help="score ground-truth names without a prediction as empty predictions")


def run_score(args: argparse.Namespace) -> int:
    from affectgpt.bench.datasets import get_dataset
    from affectgpt.bench.protocol import resolve_protocol
    from affectgpt.bench.report.formats import render
    from affectgpt.bench.score import score_dataset

    _check_output(args)
    spec = get_dataset(args.dataset)
    protocol = resolve_protocol(args.protocol, args.wheel_dir)
    _announce(protocol, args)
    result = score_dataset(spec, args.predictions, args.labels, protocol, epoch=args.epoch,
                           allow_missing=args.allow_missing)
    emit(render(result, args.format), args.output)
    return 0


def run_suite(args: argparse.Namespace) -> int:
    from affectgpt.bench.protocol import resolve_protocol
    from affectgpt.bench.report.formats import render
    from affectgpt.bench.score import score_suite

    _check_output(args)
    protocol = resolve_protocol(args.protocol, args.wheel_dir)
    _announce(protocol, args)
    suite = score_suite(args.predictions_root, args.labels_root, protocol, epoch=args.epoch,
                        allow_missing=args.allow_missing)
    emit(render(suite, args.format), args.output)
    return 0


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


def run_ls(args: argparse.Namespace) -> int:
    from affectgpt.bench.datasets import DATASETS

    rows = [["dataset", "title", "task", "test size", "primary", "secondary", "ground truth"]]
    for d in DATASETS.values():
        rows.append([d.key, d.title, d.task, str(d.size), d.primary, ", ".join(d.metrics[1:]) or "-",
                     d.label_space])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    emit("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows), None)
    return 0
