"""`affectgpt describe` (one clip -> text) and `affectgpt predict` (a dataset -> one text file per checkpoint).

Both run AffectGPT (`--model`) or the offline perception pipeline (perception/: small shipped models, no GPU, no
download): `describe` without `--model` and `predict --backend perception` use the pipeline and say so.
"""

from __future__ import annotations

import argparse

from affectgpt.cli.output import emit, note, progress_bar

EXIT_SOME_FAILED = 3
MODEL_HELP = ("our checkpoint folder, a training run folder (its latest checkpoint), or the name of known weights "
              "installed by `affectgpt model get NAME`")
DESCRIBE_EXAMPLES = """examples:
  affectgpt describe clip.mp4                                  # the offline perception pipeline (no --model)
  affectgpt describe clip.mp4 --subtitle "I can't believe it!" --format json
  affectgpt describe clip.mp4 --model checkpoints/checkpoint_000060_loss_0.480
  affectgpt describe clip.mp4 --model runs/tiny --timings      # the run's latest checkpoint_<step>/
  affectgpt describe clip.mp4 --subtitle "I can't believe it!" --task labels --model ckpt/ --sample --seed 7
"""
PREDICT_EXAMPLES = """examples:
  affectgpt predict --backend perception --clips videos/ --output outputs/perception
  affectgpt predict --backend perception --transcripts mer2023.csv --output outputs/mer2023-text
  affectgpt bench score --dataset mer2023 --predictions outputs/mer2023-text --labels labels/mer2023

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
    describe.add_argument("--subtitles", metavar="CSV",
                          help="take the subtitle from this table's row for the clip (name, chinese, english)")
    describe.add_argument("--subtitle-column", default="english")
    describe.add_argument("--model", metavar="DIR|NAME",
                          help=MODEL_HELP + "; without it the offline perception pipeline answers")
    describe.add_argument("--timings", action="store_true",
                          help="print `load X s, media Y s, generate Z s` (per stage with the pipeline) on stderr")
    describe.add_argument("--format", choices=("text", "json"), default="text",
                          help="text (default) or one JSON object (with the pipeline: clues, labels, flags, timings)")
    _add_perception(describe)
    _add_common(describe)
    describe.set_defaults(run=run_describe, needs=(_describe_needs,))

    predict = subparsers.add_parser("predict", help="a folder of clips -> one generated-text file per checkpoint",
                                    epilog=PREDICT_EXAMPLES, formatter_class=raw)
    predict.add_argument("--backend", choices=("affectgpt", "perception"), default="affectgpt",
                         help="affectgpt (default: needs --model) or the offline perception pipeline")
    predict.add_argument("--clips", metavar="DIR", help="preprocess caches or video files (perception: video files)")
    predict.add_argument("--transcripts", metavar="CSV",
                         help="perception only, text-only mode: name,text or name,chinese,english")
    predict.add_argument("--names", metavar="CSV",
                         help="text-only mode: keep only the rows named in this CSV's name column (e.g. a test set's "
                              "labels)")
    predict.add_argument("--model", nargs="+", metavar="DIR|NAME", help="one or more of: " + MODEL_HELP)
    predict.add_argument("--output", required=True, metavar="DIR",
                         help="gets <checkpoint name>.npz per model (perception: the files `bench score` reads)")
    predict.add_argument("--subtitles", metavar="CSV", help="name, chinese, english (overrides cached subtitles)")
    predict.add_argument("--subtitle-column", default="english")
    predict.add_argument("--batch-size", type=int, default=4)
    _add_perception(predict)
    _add_common(predict)
    predict.set_defaults(run=run_predict, needs=(_predict_needs,))


def _add_perception(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--asr-model", metavar="DIR",
                        help="perception: a faster-whisper model folder (default: the shipped Whisper base)")
    parser.add_argument("--threads", type=_positive, default=1,
                        help="perception: CPU threads for speech recognition")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _describe_needs(args: argparse.Namespace) -> tuple[str, ...]:
    return ("model", "media") if args.model else ("perception",)


def _predict_needs(args: argparse.Namespace) -> tuple[str, ...]:
    return ("perception",) if args.backend == "perception" else ("model", "media")


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
    parser.add_argument("--device", default="auto",
                        help="where the model runs: auto (the first GPU when torch sees one, else the CPU), cpu, "
                             "cuda, cuda:1 ...")
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


def _subtitle(args: argparse.Namespace) -> str:
    """--subtitle, or the clip's row of --subtitles (an error naming the table when it has no row for the clip)."""
    if not args.subtitles:
        return args.subtitle
    from pathlib import Path

    from affectgpt.errors import InputError
    from affectgpt.media.subtitles import read_subtitle_table, subtitle_for

    name = Path(args.video).stem
    text = subtitle_for(name, read_subtitle_table(args.subtitles, column=args.subtitle_column))
    if text is None:
        raise InputError(f"no row for clip {name!r}", path=args.subtitles, field="name",
                         fix="add a row for the clip, or pass --subtitle TEXT")
    return text


def run_describe(args: argparse.Namespace) -> int:
    args.subtitle = _subtitle(args)
    if not args.model:
        return run_describe_perception(args)
    from time import perf_counter

    from affectgpt.infer.describe import answer, load_model
    from affectgpt.infer.sources import resolve_checkpoint
    from affectgpt.media import load_clip

    folder = resolve_checkpoint(args.model, note=note)
    start = perf_counter()
    clip = load_clip(args.video, audio=args.audio, subtitle=args.subtitle)
    loaded = perf_counter()
    model, tokenizer = load_model(folder, dtype=_dtype(args), overrides=_overrides(args), device=args.device,
                                  allow_download=args.allow_download)
    built = perf_counter()
    text = answer(model, tokenizer, [clip], task=args.task, generation=_generation(args))[0]
    if args.timings:
        note(f"load {built - loaded:.2f} s, media {loaded - start:.2f} s, generate {perf_counter() - built:.2f} s")
    if args.format == "json":
        import json

        text = json.dumps({"backend": "affectgpt", "name": clip.name, "model": str(folder), "task": args.task,
                           "description": text}, ensure_ascii=False, indent=2)
    emit(text, None)
    return 0


def run_describe_perception(args: argparse.Namespace) -> int:
    import json

    from affectgpt.perception.pipeline import Pipeline
    from affectgpt.perception.report import as_text

    note("backend: perception pipeline (small offline models reading speech, voice, face and text; "
         "not AffectGPT: pass --model for AffectGPT)")
    pipeline = Pipeline(asr_model=args.asr_model, threads=args.threads)
    answer = pipeline.describe(args.video, args.subtitle or None, audio=args.audio)
    if args.timings:
        note(", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in answer.timings.items()))
    if args.format == "json":
        emit(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2), None)
    else:
        emit(as_text(answer), None)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from affectgpt.errors import InputError

    if args.backend == "perception":
        return run_predict_perception(args)
    if args.transcripts:
        raise InputError("--transcripts is the perception backend's text-only mode", field="--transcripts",
                         fix="add --backend perception, or pass --clips with --model")
    if not args.clips or not args.model:
        raise InputError(f"{'--clips' if not args.clips else '--model'} is required with --backend affectgpt",
                         field="--clips" if not args.clips else "--model",
                         fix="pass --clips DIR and --model CKPT, or use --backend perception")
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
        model, tokenizer = load_model(folder, dtype=_dtype(args), overrides=_overrides(args), device=args.device,
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


def run_predict_perception(args: argparse.Namespace) -> int:
    from affectgpt.errors import InputError
    from affectgpt.infer.perceive import keep_named, perceive_clips, perceive_transcripts, read_transcripts
    from affectgpt.io.outputs import output_folder
    from affectgpt.perception.pipeline import ORDER, Pipeline

    if args.model:
        raise InputError("--model is AffectGPT's; the perception backend uses its own shipped models",
                         field="--model", fix="drop --model, or drop --backend perception")
    if args.names and not args.transcripts:
        raise InputError("--names selects rows of --transcripts", field="--names", fix="pass --transcripts CSV")
    if bool(args.clips) == bool(args.transcripts):
        raise InputError("the perception backend reads either --clips DIR or --transcripts CSV",
                         field="--clips" if args.clips else "--transcripts", fix="pass exactly one of them")
    output_folder(args.output, create=False)
    note("backend: perception pipeline (small offline models; not AffectGPT)")
    if args.transcripts:
        rows = read_transcripts(args.transcripts)
        if args.names:
            rows = keep_named(rows, args.names)
        pipeline = Pipeline(modalities=("text",))
        bar = progress_bar(len(rows), unit="row", desc="perception")
        report = perceive_transcripts(pipeline, rows, args.output, on_item=bar.update, source=args.transcripts)
    else:
        subtitles = None
        if args.subtitles:
            from affectgpt.media.subtitles import read_subtitle_table

            subtitles = read_subtitle_table(args.subtitles, column=args.subtitle_column)
        pipeline = Pipeline(ORDER, asr_model=args.asr_model, threads=args.threads)
        bar = progress_bar(0, unit="clip", desc="perception")
        report = perceive_clips(pipeline, args.clips, args.output, subtitles=subtitles, on_item=bar.update)
    bar.close()
    note(f"wrote {args.output} ({report.answered} answered, {report.resumed} kept from before, "
         f"{len(report.failures)} failed); score it with `affectgpt bench score --predictions {args.output}`")
    for failure in report.failures[:10]:
        note(f"  failed: {failure['file']}: {failure['reason']}")
    if report.failures:
        note(f"error: {len(report.failures)} clips could not be read; listed in {report.failures_file} "
             "(fix or remove them and run again: only the missing clips are answered)")
        return EXIT_SOME_FAILED
    return 0
