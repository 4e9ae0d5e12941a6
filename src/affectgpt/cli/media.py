"""`affectgpt preprocess`: video files -> cached model inputs (frames, faces, audio clips, subtitle)."""

from __future__ import annotations

import argparse

from affectgpt.cli.output import note, progress_bar

EXAMPLES = """examples:
  affectgpt preprocess clips/ --output cache/ --workers 2
  affectgpt preprocess clips/ --output cache/ --subtitles subtitle_chieng.csv --subtitle-column english
  affectgpt preprocess clip.mp4 --output cache/ --resize pad --faces-npy openface_face/
"""
EXIT_SOME_FAILED = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("preprocess", help="videos -> cached frames, faces, audio clips, subtitles",
                                   description="Turn video clips into exactly the inputs AffectGPT expects.",
                                   epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="VIDEO_OR_FOLDER")
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="cache folder (one file per clip)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--frames", type=int, default=8, help="frames (and face crops) per clip, 1 to 256 (default 8)")
    parser.add_argument("--size", type=int, default=224,
                        help="frame and crop size in pixels, 16 to 4096 (default 224)")
    parser.add_argument("--resize", choices=("stretch", "pad"), default="stretch",
                        help="stretch to a square like the original (default), or keep the aspect and pad")
    parser.add_argument("--no-faces", action="store_true", help="skip face detection")
    parser.add_argument("--subtitles", metavar="CSV", help="subtitle table: name, chinese, english")
    parser.add_argument("--subtitle-column", default="english", help="column of --subtitles (default english)")
    parser.add_argument("--audio-dir", metavar="DIR", help="separate audio files named <clip>.wav (or .flac...)")
    parser.add_argument("--asr-model", metavar="DIR",
                        help="local faster-whisper model: transcribe clips without a subtitle")
    parser.add_argument("--faces-npy", metavar="DIR",
                        help="also write face tracks as DIR/<name>.npy (original openface_face layout, RGB)")
    parser.add_argument("--force", action="store_true", help="redo clips that are already cached")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_preprocess, needs=("media",))


def run_preprocess(args: argparse.Namespace) -> int:
    from affectgpt.errors import InputError
    from affectgpt.io.outputs import output_folder
    from affectgpt.media.batch import ClipOptions, check_options, preprocess
    from affectgpt.media.files import find_videos

    if args.workers < 1:
        raise InputError(f"{args.workers} is out of range", field="--workers", fix="use --workers 1 or more")
    options = ClipOptions(n_frames=args.frames, size=args.size, resize=args.resize, faces=not args.no_faces,
                          subtitles=args.subtitles, subtitle_column=args.subtitle_column,
                          audio_dir=args.audio_dir, asr_model=args.asr_model, faces_npy=args.faces_npy)
    check_options(options)  # the subtitle table, the ASR model and the numbers, once, before any clip
    videos = find_videos(args.inputs)  # listed once: the bar's total, then the batch itself
    output_folder(args.output, create=False)
    if args.faces_npy:
        output_folder(args.faces_npy, "--faces-npy", create=False)
    bar = progress_bar(len(videos), unit="clip", enabled=not args.no_progress)
    report = preprocess(videos, args.output, options, workers=args.workers, force=args.force,
                        on_done=lambda _name, _outcome: bar.update(1))
    bar.close()
    flags = ", ".join(f"{k} {v}" for k, v in sorted(report.flags.items())) or "none"
    note(f"{len(report.written)} written, {len(report.skipped)} already cached, {len(report.failures)} failed "
         f"-> {args.output} (flags: {flags})")
    for failure in report.failures[:10]:
        note(f"  failed: {failure['file']}: {failure['reason']}")
    if report.failures:
        note(f"error: {len(report.failures)} clips failed; all are listed in {args.output}/failures.json")
        return EXIT_SOME_FAILED
    return 0
