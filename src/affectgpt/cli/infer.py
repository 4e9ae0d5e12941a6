"""`affectgpt describe` (one clip -> text) and `affectgpt predict` (a dataset -> one text file per checkpoint)."""

from __future__ import annotations

import argparse

from affectgpt.cli.output import emit, note, progress_bar

EXIT_SOME_FAILED = 3
MODEL_HELP = ("our checkpoint folder, a training run folder (its latest checkpoint), or the name of known weights "
              "installed by `affectgpt model get NAME`")
DESCRIBE_EXAMPLES = """examples:
  affectgpt describe clip.mp4 --model checkpoints/checkpoint_000060_loss_0.480
  affectgpt describe clip.mp4 --model runs/tiny --timings      # the run's latest checkpoint_<step>/
  affectgpt describe clip.mp4 --subtitle "I can't believe it!" --task labels --model ckpt/ --sample --seed 7
"""
PREDICT_EXAMPLES = """examples:
  affectgpt preprocess clips/ --output cache/ && \\
  affectgpt predict --clips cache/ --model checkpoints/checkpoint_0000* --output outputs/mer2023
  affectgpt extract labels --input outputs/mer2023 --output outputs/mer2023
  affectgpt bench score --dataset mer2023 --predictions outputs/mer2023 --labels labels.csv

Each checkpoint folder <ckpt> gives <output>/<ckpt>.npz. Named checkpoint_<E>[_loss_<x>] (the release's
names, a training run's checkpoint_<step>), extract finds it in the folder; any other name is extracted by
passing the file itself as --input. Unreadable clips are listed in <output>/<ckpt>.failures.json (exit 3);
a rerun answers only the clips still missing.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    describe = subparsers.add_parser("describe", help="one video -> AffectGPT's answer",
                                     epilog=DESCRIBE_EXAMPLES, formatter_class=raw)
    describe.add_argument("video")
    describe.add_argument("--subtitle", default="", help="what is said in the clip")
    describe.add_argument("--audio", help="a separate audio file")
    describe.add_argument("--model", required=True, metavar="DIR|NAME", help=MODEL_HELP)
    describe.add_argument("--timings", action="store_true",
                          help="print `load X s, media Y s, generate Z s` on stderr")
    _add_common(describe)
    describe.set_defaults(run=run_describe, needs=("model", "media"))

    predict = subparsers.add_parser("predict", help="a folder of clips -> one generated-text file per checkpoint",
                                    epilog=PREDICT_EXAMPLES, formatter_class=raw)
    predict.add_argument("--clips", required=True, metavar="DIR", help="preprocess caches or video files")
    predict.add_argument("--model", required=True, nargs="+", metavar="DIR|NAME",
                         help="one or more of: " + MODEL_HELP)
    predict.add_argument("--output", required=True, metavar="DIR", help="gets <checkpoint name>.npz per model")
    predict.add_argument("--subtitles", metavar="CSV", help="name, chinese, english (overrides cached subtitles)")
    predict.add_argument("--subtitle-column", default="english")
    predict.add_argument("--batch-size", type=int, default=4)
    _add_common(predict)
    predict.set_defaults(run=run_predict, needs=("model", "media"))


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
    parser.add_argument("--allow-download", action="store_true",
                        help="let base models named by a hub id in the checkpoint's config.json be downloaded")


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
    from time import perf_counter

    from affectgpt.infer.describe import answer, load_model
    from affectgpt.infer.sources import resolve_checkpoint
    from affectgpt.media import load_clip

    folder = resolve_checkpoint(args.model, note=note)
    start = perf_counter()
    clip = load_clip(args.video, audio=args.audio, subtitle=args.subtitle)
    loaded = perf_counter()
    model, tokenizer = load_model(folder, dtype=_dtype(args), overrides=_overrides(args),
                                  allow_download=args.allow_download)
    built = perf_counter()
    text = answer(model, tokenizer, [clip], task=args.task, generation=_generation(args))[0]
    if args.timings:
        note(f"load {built - loaded:.2f} s, media {loaded - start:.2f} s, generate {perf_counter() - built:.2f} s")
    emit(text, None)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from affectgpt.errors import InputError
    from affectgpt.infer.describe import load_model
    from affectgpt.infer.predict import clip_sources, extract_finds, failures_file, predict, prediction_file
    from affectgpt.infer.sources import resolve_checkpoint
    from affectgpt.io.outputs import output_folder

    folders, unresolved = [], []
    for text in args.model:  # a --model that is nothing usable is reported after the output checks
        try:
            folders.append(resolve_checkpoint(text, note=note))
        except InputError as exc:
            folders.append(Path(text))
            unresolved.append(exc)
    targets = [prediction_file(args.output, folder) for folder in folders]  # every name checked up front
    if len(set(targets)) < len(targets):
        raise InputError("two checkpoint folders have the same name, so their outputs would collide",
                         field="--model", fix="predict them into different --output folders")
    subtitles = None
    if args.subtitles:
        from affectgpt.media.subtitles import read_subtitle_table

        subtitles = read_subtitle_table(args.subtitles, column=args.subtitle_column)
    total = len(clip_sources(args.clips))
    output_folder(args.output, create=False)
    if unresolved:
        raise unresolved[0]
    failed = []
    for folder, target in zip(folders, targets, strict=True):
        if target.is_file() and not failures_file(target).is_file():
            note(f"skipped {target} (already written)")
            continue
        model, tokenizer = load_model(folder, dtype=_dtype(args), overrides=_overrides(args),
                                      allow_download=args.allow_download)
        bar = progress_bar(total, unit="clip", desc=folder.name)
        report = predict(model, tokenizer, args.clips, target, task=args.task, generation=_generation(args),
                         batch_size=args.batch_size, subtitles=subtitles, on_batch=bar.update)
        bar.close()
        note(f"wrote {target} ({report.answered} answered, {report.resumed} kept from before, "
             f"{len(report.failures)} failed)")
        if not extract_finds(target):
            note(f"note: {target.name} is not named checkpoint_<E>[_loss_<x>].npz, so `affectgpt extract labels "
                 f"--input {args.output}` does not find it; pass the file itself: --input {target}")
        for failure in report.failures[:10]:
            note(f"  failed: {failure['file']}: {failure['reason']}")
        if report.failures:
            failed.append(report)
    if failed:
        listed = ", ".join(str(r.failures_file) for r in failed)
        note(f"error: {sum(len(r.failures) for r in failed)} clips could not be read; listed in {listed} "
             "(fix or remove them and run again: only the missing clips are answered)")
        return EXIT_SOME_FAILED
    return 0
