"""Build the extractor a set of options describes: the backend from EXTRACTORS, its sampling, prompts and cache.

Only the chosen backend is imported: the offline lexicon never loads an HTTP client, the LLM layer or
transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from affectgpt.errors import InputError
from affectgpt.extract import EXTRACTORS
from affectgpt.extract.base import Extractor


@dataclass(frozen=True)
class ExtractorOptions:
    """What an extractor is built from; the defaults are those of `affectgpt extract`.

    Attributes:
        backend: a name of EXTRACTORS (lexicon, openai, transformers).
        step: 'labels' or 'sentiment': the step whose prompt `prompt` replaces.
        model: the served model id (openai) or a local model folder (transformers); LLM backends need it.
        base_url: the OpenAI-compatible endpoint (openai).
        api_key: sent as the bearer token (openai).
        concurrency, timeout, retries, send_repetition_penalty: request settings (openai).
        device, batch_size: where and how many prompts per generate call (transformers).
        temperature, top_p, repetition_penalty, max_tokens, seed: the sampling settings.
        prompt: a template file with {text} (labels) or {labels} (sentiment) replacing the published one.
        cache: the answer cache: True (the per-user default), a sqlite file, or False (ask again).
    """

    backend: str = "lexicon"
    step: str = "labels"
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    concurrency: int = 8
    timeout: float = 60.0
    retries: int = 5
    send_repetition_penalty: bool = True
    device: str = "auto"
    batch_size: int = 8
    temperature: float = 0.7
    top_p: float = 0.8
    repetition_penalty: float = 1.05
    max_tokens: int = 512
    seed: int | None = None
    prompt: str | Path | None = None
    cache: bool | str | Path = True


def build_extractor(options: ExtractorOptions) -> Extractor:
    """The extractor `options` describe.

    Raises:
        InputError: an unknown backend, an LLM backend without a model (or openai without a base URL), bad
            sampling settings or an unreadable prompt template.
    """
    factory = EXTRACTORS.get(options.backend)
    if options.backend == "lexicon":
        return factory()
    from affectgpt.extract.prompts import OV_LABELS_V1, SENTIMENT_V1, load_template
    from affectgpt.llm.base import Sampling

    if not options.model:
        raise InputError(f"the {options.backend} backend needs --model", field="--model",
                         fix="name the served model (openai) or a local model folder (transformers)")
    try:
        sampling = Sampling(options.temperature, options.top_p, options.repetition_penalty, options.max_tokens,
                            options.seed)
    except ValueError as exc:
        raise InputError(str(exc), field="sampling", fix="check --temperature/--top-p/--max-tokens") from exc
    prompts = {"labels_prompt": OV_LABELS_V1, "sentiment_prompt": SENTIMENT_V1}
    if options.prompt:
        key = "labels_prompt" if options.step == "labels" else "sentiment_prompt"
        prompts[key] = load_template(options.prompt, "text" if options.step == "labels" else "labels")
    common = {"sampling": sampling, "cache": options.cache, **prompts}
    if options.backend == "openai":
        if not options.base_url:
            raise InputError("the openai backend needs --base-url", field="--base-url",
                             fix="e.g. --base-url http://127.0.0.1:8000/v1 for a local vLLM server")
        return factory(base_url=options.base_url, model=options.model, api_key=options.api_key,
                       concurrency=options.concurrency, timeout=options.timeout, max_retries=options.retries,
                       send_repetition_penalty=options.send_repetition_penalty, **common)
    return factory(model=options.model, device=options.device, batch_size=options.batch_size, **common)
