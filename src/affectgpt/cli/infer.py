"""`affectgpt describe` (one clip -> text) and `affectgpt predict` (a dataset -> one text file per checkpoint)."""

from __future__ import annotations

import argparse

from affectgpt.cli.output import emit, note, progress_bar

DESCRIBE_EXAMPLES = """examples:
  affectgpt describe clip.mp4 --model checkpoints/checkpoint_000060_loss_0.480
  affectgpt describe clip.mp4 --subtitle "I can't believe it!" --task labels --model ckpt/ --sample --seed 7
"""
PREDICT_EXAMPLES = """examples:
  affectgpt preprocess clips/ --output cache/ && \\
  affectgpt predict --clips cache/ --model checkpoints/checkpoint_0000* --output outputs/mer2023
  affectgpt extract labels --input outputs/mer2023 --output outputs/mer2023
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    describe = subparsers.add_parser("describe", help="one video -> AffectGPT's answer",
                                     epilog=DESCRIBE_EXAMPLES, formatter_class=raw)
    describe.add_argument("video")
    describe.add_argument("--subtitle", default="", help="what is said in the clip")
    describe.add_argument("--audio", help="a separate audio file")
    describe.add_argument("--model", required=True, metavar="DIR", help="our checkpoint folder")
    _add_common(describe)
    describe.set_defaults(run=run_describe)

    predict = subparsers.add_parser("predict", help="a folder of clips -> one generated-text file per checkpoint",
                                    epilog=PREDICT_EXAMPLES, formatter_class=raw)
    predict.add_argument("--clips", required=True, metavar="DIR", help="preprocess caches or video files")
    predict.add_argument("--model", required=True, nargs="+", metavar="DIR", help="one or more checkpoint folders")
    predict.add_argument("--output", required=True, metavar="DIR", help="gets <checkpoint name>.npz per model")
    predict.add_argument("--subtitles", metavar="CSV", help="name, chinese, english (overrides cached subtitles)")
    predict.add_argument("--subtitle-column", default="english")
    predict.add_argument("--batch-size", type=int, default=4)
    _add_common(predict)
    predict.set_defaults(run=run_predict)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=("description", "labels"), default="description",
                        help="description with reasoning (default) or the OV label sentence")
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--sample", action="store_true",
                        help="sample like the original (temperature 1.0, top_p 0.9) instead of greedy")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling (recorded)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                        help="weights and activations (bfloat16/float16 on a GPU)")
    parser.add_argument("--llm", help="relocate the base LLM named in the checkpoint's config")
    parser.add_argument("--visual-encoder", help="relocate the visual encoder")
    parser.add_argument("--audio-encoder", help="relocate the audio encoder")


def _generation(args: argparse.Namespace):
    from affectgpt.infer.describe import Generation

    return Generation(max_new_tokens=args.max_new_tokens, do_sample=args.sample, temperature=args.temperature,
                      top_p=args.top_p, seed=args.seed)


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    return {"llm": args.llm, "visual_encoder": args.visual_encoder, "audio_encoder": args.audio_encoder}


def _dtype(args: argparse.Namespace):
    import torch

    return getattr(torch, args.dtype)


def run_describe(args: argparse.Namespace) -> int:
    from affectgpt.infer.describe import answer, load_model
    from affectgpt.media import load_clip

    clip = load_clip(args.video, audio=args.audio, subtitle=args.subtitle)
    model, tokenizer = load_model(args.model, dtype=_dtype(args), overrides=_overrides(args))
    emit(answer(model, tokenizer, [clip], task=args.task, generation=_generation(args))[0], None)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from affectgpt.infer.describe import load_model
    from affectgpt.infer.predict import clip_sources, predict, prediction_file
    from affectgpt.io.outputs import output_folder

    targets = [prediction_file(args.output, folder) for folder in args.model]  # every name checked up front
    if len(set(targets)) < len(targets):
        from affectgpt.errors import InputError

        raise InputError("two checkpoint folders have the same name, so their outputs would collide",
                         field="--model", fix="predict them into different --output folders")
    subtitles = None
    if args.subtitles:
        from affectgpt.media.subtitles import read_subtitle_table

        subtitles = read_subtitle_table(args.subtitles, column=args.subtitle_column)
    total = len(clip_sources(args.clips))
    output_folder(args.output, create=False)
    for folder, target in zip(args.model, targets, strict=True):
        if target.is_file():
            note(f"skipped {target} (already written)")
            continue
        model, tokenizer = load_model(folder, dtype=_dtype(args), overrides=_overrides(args))
        bar = progress_bar(total, unit="clip", desc=Path(folder).name)
        predict(model, tokenizer, args.clips, target, task=args.task, generation=_generation(args),
                batch_size=args.batch_size, subtitles=subtitles, on_batch=bar.update)
        bar.close()
        note(f"wrote {target}")
    return 0
