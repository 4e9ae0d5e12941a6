"""`affectgpt extract labels|sentiment`: generated text -> emotion words -> sentiment, offline or with any LLM."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from affectgpt.cli.output import note, progress_bar

if TYPE_CHECKING:
    from affectgpt.extract.base import Extractor
    from affectgpt.extract.build import ExtractorOptions
    from affectgpt.extract.job import FileReport, FileTask

EXAMPLES = """examples:
  affectgpt extract labels --input outputs/mer2023 --output outputs/mer2023          # offline lexicon
  affectgpt extract labels --input outputs/ovmerdplus --output ov-llm --backend openai \\
      --base-url http://127.0.0.1:8000/v1 --model Qwen2.5-7B-Instruct
  affectgpt extract sentiment --input ov-llm --output ov-llm --backend openai \\
      --base-url http://127.0.0.1:8000/v1 --model Qwen2.5-7B-Instruct
  affectgpt extract labels --input descriptions.csv --output labels.npz --backend transformers \\
      --model /models/Qwen2.5-7B-Instruct
  affectgpt extract labels --input emer_v2_reason.csv --text-column english --output reason-openset.csv
"""
EXIT_INCOMPLETE = 3  # a file not written: failed items, or more than half malformed or unreadable
OUTPUT_HELP = ("--output: a single input file gives a single output file, so --output names a file (not an\n"
               "existing folder); an input folder gives one output per file, so --output names a folder (not an\n"
               "existing file; it may be the input folder).")


def register(subparsers: argparse._SubParsersAction) -> None:
    extract = subparsers.add_parser("extract", help="free text -> emotion words -> sentiment",
                                    description=f"Extraction, the first steps of MER-UniBench scoring. {OUTPUT_HELP}")
    commands = extract.add_subparsers(dest="extract_command", metavar="<extract command>")
    commands.required = True
    for step, text in (("labels", "emotion words from descriptions (-> -openset files)"),
                       ("sentiment", "positive/negative/neutral from emotion words (-> -openset-sentiment)")):
        parser = commands.add_parser(step, help=text, epilog=EXAMPLES, description=f"{text}.\n{OUTPUT_HELP}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_options(parser, step)
        parser.set_defaults(run=run_extract, step=step,
                            needs=({"backend": {"openai": "llm", "transformers": "model"}},))


def _add_options(parser: argparse.ArgumentParser, step: str) -> None:
    source = "generated text: CSV/JSONL (name,text) or checkpoint_*.npz (name2reason)" if step == "labels" \
        else "-openset files (name,openset)"
    parser.add_argument("--input", required=True, metavar="IN", help=f"a file or a folder of per-epoch {source}")
    parser.add_argument("--output", required=True, metavar="OUT",
                        help="the output file for a file input; the output folder for a folder input (it may be "
                             "the input folder)")
    parser.add_argument("--backend", default="lexicon", help="lexicon (offline, default), openai, transformers")
    parser.add_argument("--format", choices=("npz", "csv", "jsonl"), default="npz",
                        help="output format (default npz, the original layout)")
    parser.add_argument("--force", action="store_true", help="redo outputs that already hold every name")
    if step == "labels":
        parser.add_argument("--text-column", metavar="NAME",
                            help="the column of a CSV/JSONL input holding the text, e.g. english for a "
                                 "name,chinese,english table (the lexicon backend reads English only)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    llm = parser.add_argument_group("LLM backends (openai, transformers)")
    llm.add_argument("--model", help="model id on the server (openai) or local model folder (transformers)")
    llm.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    llm.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    llm.add_argument("--concurrency", type=int, default=8, help="requests in flight (openai)")
    llm.add_argument("--timeout", type=float, default=60.0, help="seconds per request (openai)")
    llm.add_argument("--retries", type=int, default=5, help="retries on timeouts, 429 and 5xx (openai)")
    llm.add_argument("--no-repetition-penalty", action="store_true",
                     help="do not send repetition_penalty (for servers that reject unknown fields)")
    llm.add_argument("--device", default="auto", help="cpu, cuda, or auto (transformers)")
    llm.add_argument("--batch-size", type=int, default=8, help="prompts per generate call (transformers)")
    llm.add_argument("--temperature", type=float, default=0.7)
    llm.add_argument("--top-p", type=float, default=0.8)
    llm.add_argument("--repetition-penalty", type=float, default=1.05)
    llm.add_argument("--max-tokens", type=int, default=512)
    llm.add_argument("--seed", type=int, help="seed sent with every request (recorded)")
    llm.add_argument("--prompt", metavar="FILE",
                     help="your own prompt template with {text} (labels) or {labels} (sentiment)")
    llm.add_argument("--cache", metavar="FILE", help="answer cache (sqlite; default in the per-user cache)")
    llm.add_argument("--no-cache", action="store_true", help="ask again even for cached answers")


def _extractor_options(args: argparse.Namespace) -> ExtractorOptions:
    """The command line's options, as extract.build takes them."""
    import os

    from affectgpt.extract.build import ExtractorOptions

    return ExtractorOptions(
        backend=args.backend, step=args.step, model=args.model, base_url=args.base_url,
        api_key=os.environ.get(args.api_key_env), concurrency=args.concurrency, timeout=args.timeout,
        retries=args.retries, send_repetition_penalty=not args.no_repetition_penalty, device=args.device,
        batch_size=args.batch_size, temperature=args.temperature, top_p=args.top_p,
        repetition_penalty=args.repetition_penalty, max_tokens=args.max_tokens, seed=args.seed,
        prompt=args.prompt, cache=False if args.no_cache else (args.cache or True))


def run_extract(args: argparse.Namespace) -> int:
    from affectgpt.extract.build import build_extractor
    from affectgpt.extract.job import plan

    tasks = plan(args.step, args.input, args.output, args.format)
    extractor = build_extractor(_extractor_options(args))
    incomplete = 0
    for task in tasks:
        report = _run_with_bar(args, task, extractor)
        if report.skipped:
            note(f"skipped {task.target} (already holds every name; --force redoes it)")
            continue
        if report.warning:
            note(f"warning: {task.source}: {report.warning}")
        counts = f"{report.ok} ok, {report.malformed} malformed, "
        if report.unreadable:
            counts += f"{report.unreadable} unreadable, "
        line = f"{task.target}: {counts}{report.failed} failed"
        if report.failed:
            line += " -> NOT written; rerun to retry the failed items (answered ones are cached)"
        elif report.refused:
            line += f" -> NOT written: {report.refused}"
        if report.incomplete:
            incomplete += 1
            for problem in report.problems[:5]:
                line += f"\n  {problem['name']}: {problem['status']}: {problem['detail']}"
                if problem["status"] == "malformed":
                    line += f": {_shorten(problem['answer'])!r}"
        note(line)
    if incomplete:
        note(f"error: {incomplete} of {len(tasks)} files incomplete")
        return EXIT_INCOMPLETE
    return 0


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _run_with_bar(args: argparse.Namespace, task: FileTask, extractor: Extractor) -> FileReport:
    """run_file with a progress bar over the items of `task`, opened once it is known not to be skipped."""
    from affectgpt.extract.job import run_file

    bars = []

    def start(total: int) -> None:
        bars.append(progress_bar(total, unit="item", desc=task.source.name, enabled=not args.no_progress))

    try:
        return run_file(args.step, task, extractor, force=args.force, column=getattr(args, "text_column", None),
                        on_start=start, on_item=lambda n: bars[-1].update(n))
    finally:
        for bar in bars:
            bar.close()
