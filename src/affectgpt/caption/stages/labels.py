"""Stage 8, labels: the open-vocabulary emotion words and the sentiment of the description, as MER-UniBench
extracts them (affectgpt.extract).

Config `backend: lexicon` (the default: the offline lexicon extractor, deterministic) or `openai` /
`transformers` (the published LLM extraction) with `options` (the fields of extract.build.ExtractorOptions:
model, base_url, api_key, temperature, cache...). The words are the extraction's list for the description; the
sentiment is the extraction's sentiment of that list (the valence vote for the lexicon).

Fields: {"openset": [words], "sentiment": "positive" | "negative" | "neutral"}. An LLM answer that is not a
bracketed list gives no words (status in the info, never a guess); a sentiment answer outside the three words is
"neutral" with its status in the info; a backend that fails drops the clip with "backend_error: <reason>".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from affectgpt.caption.base import StageContext, StageResult
from affectgpt.caption.stages.common import BACKEND_ERROR, check_config, resource, section
from affectgpt.errors import InputError

DEFAULTS: dict[str, Any] = {"backend": "lexicon", "options": {}}


class Labels:
    """Stage 8 (see the module docstring)."""

    name = "labels"
    version = "1"
    scope = "clip"
    reads = ("description",)
    writes = ("openset", "sentiment")
    defaults = DEFAULTS

    def check(self, config: Mapping[str, Any]) -> None:
        """InputError for an unknown key, extraction backend or option (nothing is built)."""
        from affectgpt.extract import EXTRACTORS

        check_config("", config, DEFAULTS)
        try:
            EXTRACTORS.get(str(config.get("backend", "lexicon")))
        except InputError as exc:
            raise InputError(exc.what, field="backend", fix=exc.fix) from exc
        _check_options(section(config, "options"))

    def __call__(self, fields: Mapping[str, Any], context: StageContext) -> StageResult:
        config = {**DEFAULTS, **context.config}
        self.check(config)
        options = {"backend": str(config.get("backend", "lexicon")), **section(config, "options")}
        extractor = resource(context, self.name, options, lambda: build(options))
        description = str(fields.get("description") or "")
        [found] = extractor.labels([description])
        info: dict[str, Any] = {"backend": extractor.name, "status": found.status}
        if found.status == "failed":
            return StageResult(dropped=BACKEND_ERROR + (found.detail or "no answer"), info=info)
        words = list(found.words or ())
        [mood] = extractor.sentiment([found.answer])
        if mood.status == "failed":
            return StageResult(dropped=BACKEND_ERROR + (mood.detail or "no answer"), info=info)
        info["sentiment_status"] = mood.status
        return StageResult({"openset": words, "sentiment": mood.label or "neutral"}, info=info)


def build(options: Mapping[str, Any]) -> Any:
    """The extractor the options describe (extract.build)."""
    from affectgpt.extract.build import ExtractorOptions, build_extractor

    _check_options({k: v for k, v in options.items() if k != "backend"})
    try:
        return build_extractor(ExtractorOptions(**options))
    except TypeError as exc:
        raise InputError(f"bad extraction option: {exc}", field="options") from exc


def _check_options(options: Mapping[str, Any]) -> None:
    """InputError for an option that is not a field of extract.build.ExtractorOptions (step and prompt excepted)."""
    from dataclasses import fields as dataclass_fields

    from affectgpt.extract.build import ExtractorOptions

    known = {f.name for f in dataclass_fields(ExtractorOptions)} - {"step", "prompt", "backend"}
    check_config("options", options, known)
