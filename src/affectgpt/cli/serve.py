"""`affectgpt serve`: the web demo and the OpenAI-compatible API (serve/app.py) over one model, with uvicorn."""

from __future__ import annotations

import argparse

from affectgpt.cli.output import note

EXAMPLES = """examples:
  affectgpt serve                                  # the offline perception pipeline on http://127.0.0.1:8000
  affectgpt serve --model checkpoints/checkpoint_000060_loss_0.480 --port 8080
  affectgpt bench run --backend openai --base-url http://127.0.0.1:8000/v1 ...   # evaluate the served model
"""


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value
    return parse


def _port(text: str) -> int:
    value = _positive(int)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535, got {text}")
    return value


def _needs(args: argparse.Namespace) -> tuple[str, ...]:
    return ("serve", "model", "media") if args.model else ("serve", "perception")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="a web demo and an OpenAI-compatible API over one model",
                                   epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model", metavar="CKPT", help="an AffectGPT checkpoint folder (or known weights' name)")
    which.add_argument("--backend", choices=("perception",), help="the offline perception pipeline (the default)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback: 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000)
    parser.add_argument("--max-upload-mb", type=_positive(float), default=64.0, metavar="N",
                        help="largest upload in MB (default 64); larger -> 413")
    parser.add_argument("--queue", type=_positive(int), default=16, metavar="N",
                        help="requests that may wait for the model (default 16); beyond -> 503 + Retry-After")
    parser.add_argument("--workers", type=_positive(int), default=1, metavar="N",
                        help="requests answered at once (default 1)")
    parser.add_argument("--timeout", type=_positive(float), default=120.0, metavar="S",
                        help="seconds a request may wait and run (default 120); beyond -> 504")
    parser.set_defaults(run=run_serve, needs=(_needs,))


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from affectgpt.serve.app import create_app
    from affectgpt.serve.settings import Settings

    settings = Settings(backend="affectgpt" if args.model else "perception", model=args.model, host=args.host,
                        port=args.port, max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
                        workers=args.workers, queue_size=args.queue, request_timeout=args.timeout)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        note(f"binding to {args.host}: the server is reachable from other machines (it has no authentication)")
    app = create_app(settings)
    note(f"serving {settings.backend} on http://{args.host}:{args.port} (API under /v1; Ctrl-C stops)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
