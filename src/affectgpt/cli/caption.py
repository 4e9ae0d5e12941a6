"""`affectgpt caption run` (clips -> a MER-Caption-style dataset), `caption select` (rank clue backends) and
`caption speaker` (speaker-mismatch verdicts per clip)."""

from __future__ import annotations

import argparse
from pathlib import Path

from affectgpt.cli.output import note, progress_bar

RUN_EXAMPLES = """examples:
  affectgpt caption run --clips clips/ --output mercaption/                 # offline: perception clues
  affectgpt caption run --clips clips/ --output out/ --config my-caption.yaml --workers 4
  affectgpt caption run --clips clips/ --output out/ --set stages.merge.template=merge-v2
  affectgpt caption run --clips clips/ --output out/ --executor ray --ray-address auto
A rerun with the same OUT skips every stage already done (OUT/stages.jsonl); a changed config re-runs only the
stages whose inputs changed. Without --config, the packaged configs/caption-offline.yaml is used.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    caption = subparsers.add_parser("caption", help="build a descriptive emotion dataset from your own clips",
                                    description="MER-Caption construction: clips -> clues -> descriptions -> "
                                                "filters -> labels, in the released layout.")
    commands = caption.add_subparsers(dest="caption_command", metavar="<caption command>")
    commands.required = True
    run = commands.add_parser("run", help="run the pipeline on a clip folder (resumable)", epilog=RUN_EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--clips", required=True, metavar="DIR", help="folder of video clips (read one level deep)")
    run.add_argument("--output", "-o", required=True, metavar="OUT", help="output folder (resumed when it exists)")
    run.add_argument("--config", metavar="FILE", help="run config (default: the offline one, "
                                                      "configs/caption-offline.yaml)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key (repeatable), e.g. --set stages.merge.template=merge-v2")
    run.add_argument("--executor", choices=("local", "ray"), help="where stages run (default: the config's)")
    run.add_argument("--workers", type=int, metavar="N", help="processes or Ray actors (default: the config's)")
    run.add_argument("--ray-address", metavar="ADDRESS", help="an existing Ray cluster (default: a local Ray)")
    run.add_argument("--subtitles", metavar="CSV", help="given subtitles: name, chinese, english "
                                                        "(same as --set stages.subtitle.subtitles=CSV)")
    run.add_argument("--limit", type=int, metavar="N", help="only the first N clips (by name)")
    run.set_defaults(run=run_caption_command, needs=(_needs,))


    select = commands.add_parser("select", help="rank candidate clue backends (alone and in audio+visual pairs) "
                                 "by the fine-grained F/P/R of their descriptions on a labelled subset")
    select.add_argument("--candidates", required=True, metavar="YAML",
                        help="candidates: [{name, role: audio|visual, backend, options}]")
    select.add_argument("--clips", required=True, metavar="DIR", help="folder with <name>.mp4 for every labelled name")
    select.add_argument("--labels", required=True, metavar="CSV", help="human labels: name, openset")
    select.add_argument("--subtitles", metavar="CSV", help="given subtitles: name, english")
    select.add_argument("--output", "-o", metavar="JSON", help="also write the ranking as JSON")
    select.add_argument("--protocol", default="auto", choices=("auto", "official", "official-2026", "builtin"))
    select.add_argument("--wheel-dir", metavar="DIR", help="official emotion-wheel files")
    select.set_defaults(run=run_select_command, needs=("caption",))
    register_speaker(commands)

    report = commands.add_parser("report", help="re-render OUT/run_report.json and .html from OUT/records.jsonl "
                                 "(kept and dropped counts per stage and per high-level check variant)")
    report.add_argument("output", metavar="OUT", help="the output folder of a finished `caption run`")
    report.set_defaults(run=run_report_command, needs=())


def register_speaker(commands: argparse._SubParsersAction) -> None:
    """`caption speaker CLIP...`: each clip's speaker decision and synchrony score, for inspection and tuning."""
    speaker = commands.add_parser("speaker", help="does the audible speech come from the visible person? "
                                  "(match, mismatch, no_face, silent) with its synchrony score")
    speaker.add_argument("clips", nargs="+", metavar="CLIP", help="video files")
    speaker.add_argument("--format", choices=("text", "json"), default="text",
                         help="json: a list of {clip, decision, score, margin, confidence}")
    speaker.add_argument("--detector", default="sync", metavar="NAME",
                         help="sync (default: mouth motion x speech envelope) or asd-weights")
    speaker.add_argument("--threshold", type=float, metavar="X", help="the lowest score of a match "
                         "(default: the detector's; sync: 0.35)")
    speaker.add_argument("--weights", metavar="FILE", help="asd-weights: the .safetensors file (its config: the "
                         "same name with .json)")
    speaker.set_defaults(run=run_speaker_command, needs=("caption",))


def run_speaker_command(args: argparse.Namespace) -> int:
    import json

    from affectgpt.caption.speaker import build_detector

    options = {k: v for k, v in (("threshold", args.threshold), ("weights", args.weights)) if v is not None}
    detector = build_detector(args.detector, **options)
    rows = []
    for clip in args.clips:
        verdict = detector(clip)
        rows.append({"clip": clip, "decision": verdict.decision, "score": verdict.score, "margin": verdict.margin,
                     "confidence": verdict.confidence, "threshold": verdict.threshold,
                     "seconds": verdict.details.get("timings", {}).get("total")})
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['decision']:<9} score {row['score']:+.3f}  margin {row['margin']:+.3f}  "
                  f"confidence {row['confidence']:+.3f}  {row['clip']}")
    return 0


def _needs(args: argparse.Namespace) -> list[str]:
    """The caption extra (perception + pyyaml); with the ray executor, caption-ray."""
    return ["caption-ray"] if (args.executor == "ray") else ["caption"]


def run_select_command(args: argparse.Namespace) -> int:
    from affectgpt.caption.select import format_ranking, select_command

    result = select_command(args.candidates, args.clips, args.labels, output=args.output, protocol=args.protocol,
                            wheel_dir=args.wheel_dir, subtitles=args.subtitles)
    print(format_ranking(result))
    if args.output:
        note(f"wrote {args.output}")
    return 0


def run_report_command(args: argparse.Namespace) -> int:
    """Rebuild the report from the records; the previous report's summary (wall times) is kept when readable."""
    import contextlib
    import json

    from affectgpt.caption.report import REPORT_HTML, REPORT_JSON, build_report, write_report
    from affectgpt.caption.store import read_records

    out = Path(args.output)
    records = read_records(out)
    summary = {}
    with contextlib.suppress(OSError, ValueError, AttributeError):  # no or a damaged previous report
        summary = dict(json.loads((out / REPORT_JSON).read_text(encoding="utf-8")).get("summary") or {})
    write_report(records, out, summary)
    report = build_report(records, summary)
    counts, checks = report["counts"], report["checks"]
    print(f"{counts['records']} clips: {counts['kept']} kept, {counts['dropped']} dropped")
    if checks["evaluated"]:
        print(f"high-level checks on {checks['evaluated']} clips (applied: {', '.join(checks['applied'])}):")
        for variant, row in checks["variants"].items():
            print(f"  {variant:<5} kept {row['kept']:>6}  dropped {row['dropped']:>6}")
    note(f"wrote {out / REPORT_JSON} and {out / REPORT_HTML}")
    return 0


def run_caption_command(args: argparse.Namespace) -> int:
    from affectgpt.caption.config import load_caption_config
    from affectgpt.caption.engine import run_caption
    from affectgpt.errors import InputError

    overrides = list(args.overrides)
    if args.subtitles:
        if not Path(args.subtitles).is_file():
            raise InputError("file not found", path=args.subtitles, field="--subtitles", fix="check the path")
        overrides.append(f"stages.subtitle.subtitles={Path(args.subtitles).resolve()}")
    for flag, key, value in (("--executor", "executor", args.executor), ("--workers", "workers", args.workers),
                             ("--ray-address", "ray_address", args.ray_address)):
        if value is not None:
            if flag == "--workers" and value < 1:
                raise InputError(f"must be 1 or more, got {value}", field=flag, fix="give --workers 1 or more")
            overrides.append(f"{key}={value}")
    clips = find_clips(args.clips, args.limit)
    config = load_caption_config(args.config, overrides)
    note(f"caption run: {len(clips)} clips, executor {config.executor} ({config.workers} "
         f"worker{'s' if config.workers != 1 else ''}), config {config.source}")
    bar = progress_bar(len(clips), unit="clip-stage", desc="caption")
    counts: dict[str, int] = {}

    def progress(stage: str, status: str, name: str) -> None:
        counts[stage] = counts.get(stage, 0) + 1
        bar.total = max(bar.total or 0, sum(counts.values()))
        bar.update(1)
        bar.set_postfix_str(f"{stage} {counts[stage]}/{len(clips)}", refresh=False)

    try:
        summary = run_caption(clips, config, args.output, progress=progress)
    finally:
        bar.close()
    print(render_summary(summary))
    return 0


def find_clips(folder: str | Path, limit: int | None = None) -> list[tuple[str, Path]]:
    """(name, path) of the video files under `folder`, sorted by name; the first `limit` of them."""
    from affectgpt.errors import InputError
    from affectgpt.media.files import find_videos

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("clip folder not found", path=folder, field="--clips", fix="pass a folder of video files")
    if limit is not None and limit < 1:
        raise InputError(f"must be 1 or more, got {limit}", field="--limit", fix="give --limit 1 or more")
    clips = sorted(((p.stem, p.resolve()) for p in find_videos([folder])), key=lambda c: (c[0], str(c[1])))
    if not clips:
        raise InputError("no video files in the clip folder", path=folder, field="--clips",
                         fix="the pipeline reads video files (mp4, mkv, avi, webm, mov...)")
    return clips[:limit] if limit else clips


def render_summary(summary) -> str:
    """The per-stage table (ran, reused, dropped, errors, seconds) and the kept/dropped totals."""
    lines = [f"{'stage':<10} {'ran':>6} {'reused':>7} {'dropped':>8} {'errors':>7} {'seconds':>9}"]
    for stage, stats in summary.stages.items():
        lines.append(f"{stage:<10} {stats.ran:>6} {stats.reused:>7} {stats.dropped:>8} {stats.errors:>7} "
                     f"{stats.seconds:>9.2f}")
    lines.append(f"{summary.clips} clips: {summary.kept} kept, {summary.dropped} dropped "
                 f"({summary.run_seconds:.1f} s); records in {Path(summary.output) / 'records.jsonl'}")
    return "\n".join(lines)
