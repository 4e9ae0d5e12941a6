"""`affectgpt features extract`: run the frozen encoders once per clip and cache their outputs for training."""

from __future__ import annotations

import argparse

from affectgpt.cli.output import note, progress_bar

EXAMPLES = """examples:
  affectgpt features extract --manifest data/manifest.jsonl --output features/ \\
      --visual-encoder models/clip-vit-large-patch14 --audio-encoder models/chinese-hubert-large
  affectgpt features extract --mercaptionplus mer2025-dataset/ --output features/ --media-cache cache/ \\
      --visual-encoder models/clip-vit-large-patch14 --audio-encoder models/chinese-hubert-large
"""
EXIT_SOME_FAILED = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    features = subparsers.add_parser("features", help="frozen-encoder outputs cached per clip (for training)")
    commands = features.add_subparsers(dest="features_command", metavar="<features command>")
    commands.required = True
    extract = commands.add_parser("extract", help="encode every clip once: <output>/<name>.safetensors",
                                  epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = extract.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", metavar="FILE", help="CSV/JSONL manifest (name, video, ...)")
    source.add_argument("--mercaptionplus", metavar="DIR", help="the released MER-Caption+ layout")
    extract.add_argument("--output", "-o", required=True, metavar="DIR")
    extract.add_argument("--visual-encoder", required=True, help="CLIP folder (or id with --allow-download)")
    extract.add_argument("--audio-encoder", required=True, help="HuBERT folder (or id with --allow-download)")
    extract.add_argument("--visual-kind", default="clip", metavar="NAME",
                         help="which encoder family loads --visual-encoder (the model's ENCODERS table; default clip)")
    extract.add_argument("--audio-kind", default="hubert", metavar="NAME",
                         help="which encoder family loads --audio-encoder (default hubert)")
    extract.add_argument("--visual-input", choices=("face", "frame"), default="face")
    extract.add_argument("--media-cache", metavar="DIR", help="`affectgpt preprocess` caches, tried first")
    extract.add_argument("--batch-size", type=int, default=4)
    extract.add_argument("--device", default="auto",
                         help="where the encoders run: auto (the first GPU when torch sees one, else the CPU), cpu, "
                              "cuda:1 ...")
    extract.add_argument("--allow-download", action="store_true", help="let transformers fetch hub ids")
    extract.add_argument("--force", action="store_true", help="recompute files that exist")
    extract.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    extract.set_defaults(run=run_extract, needs=("media", "model"))


def run_extract(args: argparse.Namespace) -> int:
    from affectgpt.data import manifests
    from affectgpt.data.features import extract_features
    from affectgpt.io.outputs import output_folder
    from affectgpt.llm.local_hf import on_device, resolve_device
    from affectgpt.model.encoders import ENCODERS

    visual_class, audio_class = ENCODERS.get(args.visual_kind), ENCODERS.get(args.audio_kind)
    samples = (manifests.read_manifest(args.manifest) if args.manifest
               else manifests.read_mercaptionplus(args.mercaptionplus))
    output_folder(args.output, create=False)
    local = not args.allow_download
    bars = []

    def on_progress(done: int, total: int) -> None:
        if not bars:
            bars.append(progress_bar(total, unit="clip", desc="features", enabled=not args.no_progress))
        bars[0].update(done - bars[0].n)

    device = resolve_device(args.device)
    visual = on_device(visual_class(args.visual_encoder, local_files_only=local), device)
    audio = on_device(audio_class(args.audio_encoder, local_files_only=local), device)
    report = extract_features(samples, visual, audio, args.output,
                              visual_input=args.visual_input, batch_size=args.batch_size,
                              media_cache=args.media_cache, force=args.force, on_progress=on_progress)
    for bar in bars:
        bar.close()
    recomputed = f" ({len(report.recomputed)} recomputed: made with other encoders, dtype or visual input)" \
        if report.recomputed else ""
    note(f"{len(report.written)} written{recomputed}, {len(report.skipped)} already there, "
         f"{len(report.failures)} failed -> {args.output}")
    for failure in report.failures[:10]:
        note(f"  failed: {failure}")
    return EXIT_SOME_FAILED if report.failures else 0
