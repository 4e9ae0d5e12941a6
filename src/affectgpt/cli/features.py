"""`affectgpt features extract`: run the frozen encoders once per clip and cache their outputs for training."""

from __future__ import annotations

import argparse

from affectgpt.cli.output import note

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
    extract.add_argument("--visual-input", choices=("face", "frame"), default="face")
    extract.add_argument("--media-cache", metavar="DIR", help="`affectgpt preprocess` caches, tried first")
    extract.add_argument("--batch-size", type=int, default=4)
    extract.add_argument("--allow-download", action="store_true", help="let transformers fetch hub ids")
    extract.add_argument("--force", action="store_true", help="recompute files that exist")
    extract.set_defaults(run=run_extract)


def run_extract(args: argparse.Namespace) -> int:
    import sys

    from affectgpt.data import manifests
    from affectgpt.data.features import extract_features
    from affectgpt.model.encoders import ClipVisualEncoder, HubertAudioEncoder

    samples = (manifests.read_manifest(args.manifest) if args.manifest
               else manifests.read_mercaptionplus(args.mercaptionplus))
    local = not args.allow_download
    report = extract_features(samples, ClipVisualEncoder(args.visual_encoder, local_files_only=local),
                              HubertAudioEncoder(args.audio_encoder, local_files_only=local), args.output,
                              visual_input=args.visual_input, batch_size=args.batch_size,
                              progress=sys.stderr.isatty(), media_cache=args.media_cache, force=args.force)
    note(f"{len(report.written)} written, {len(report.skipped)} already there, {len(report.failures)} failed "
         f"-> {args.output}")
    for failure in report.failures[:10]:
        note(f"  failed: {failure}")
    return EXIT_SOME_FAILED if report.failures else 0
