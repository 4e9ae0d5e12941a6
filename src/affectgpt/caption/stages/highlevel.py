"""Stage 7, high-level filter ("model-based crowdsourcing"): voters' majority vs the description's extraction.

Config (`stages.highlevel`):
- `enabled: false` (the default) keeps every clip and adds no field;
- `checks`: which agreements keep a clip: `none`, `E` (emotion), `S` (sentiment) or `E+S` (default);
- `voters`: [{kind: classifier, checkpoint: DIR}, {kind: text}, {kind: face}, ...] (caption.vote.VOTERS); at
  least one when enabled;
- `features`: the folder of `affectgpt features extract` the classifier voters read (`<name>.safetensors`);
- `extractor` / `extractor_options`: the MER-UniBench extraction of the description's emotion and sentiment
  (`lexicon`, the default and offline, or `openai` / `transformers` with the options of the labels stage);
- `protocol` (`builtin`, default: offline; or `auto`, `official`, `official-2026`) and `wheel` (default: the
  protocol's first) : the emotion wheel through which labels agree (caption.vote);
- `undecided`: `keep` (default) or `drop` a clip whose chosen check could not be decided (the vote abstained,
  or a word the wheel does not map).

Both checks are always computed and recorded, whichever are applied, so the report can count what each variant
(none, E, S, E+S) would keep. Field `highlevel`: {"vote": {emotion, sentiment decisions}, "ballots": [...],
"extracted": {"words", "emotion", "sentiment"}, "checks": {"E": outcome, "S": outcome}, "applied": checks}; the
info holds the same outcomes, labels and settings. A chosen check that disagrees drops the clip with
"emotion_check: vote X vs description Y" (or "sentiment_check: ..."). The voters' checkpoints and feature files
are read by path: a retrained checkpoint at the same path is not noticed by the stage key (use a new path).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from affectgpt.caption.base import StageContext, StageResult
from affectgpt.caption.stages.common import (
    BACKEND_ERROR,
    absolute,
    check_config,
    clip_name,
    flag,
    read_faces,
    resource,
    section,
    subtitle_text,
)
from affectgpt.errors import InputError

DEFAULTS: dict[str, Any] = {"enabled": False, "checks": "E+S", "voters": [], "features": None,
                            "extractor": "lexicon", "extractor_options": {}, "protocol": "builtin", "wheel": None,
                            "undecided": "keep"}
NAMES = {"E": "emotion_check", "S": "sentiment_check"}


class HighLevel:
    """Stage 7 (see the module docstring)."""

    name = "highlevel"
    version = "1"
    scope = "clip"
    reads = ("name", "description", "subtitle", "face_file", "media_sha")
    writes = ("highlevel",)
    defaults = DEFAULTS

    def check(self, config: Mapping[str, Any]) -> None:
        """InputError for an unknown key or value, a bad voter entry, or enabled without voters (nothing loads)."""
        from affectgpt.bench.protocol import PROTOCOLS
        from affectgpt.caption.stages.labels import _check_options
        from affectgpt.caption.vote import CHECKS, check_voter
        from affectgpt.extract import EXTRACTORS

        check_config("", config, DEFAULTS)
        enabled = flag(config, "enabled", "", False)
        for key, allowed in (("checks", tuple(CHECKS)), ("undecided", ("keep", "drop")), ("protocol", PROTOCOLS)):
            value = config.get(key, DEFAULTS[key])
            if value not in allowed:
                raise InputError(f"must be one of {', '.join(allowed)}, got {value!r}", field=key)
        voters = config.get("voters") or []
        if not isinstance(voters, list):
            raise InputError(f"must be a list of voters, got {type(voters).__name__}", field="voters")
        for index, spec in enumerate(voters):
            check_voter(index, spec)
        if enabled and not voters:
            raise InputError("the high-level filter needs at least one voter", field="voters",
                             fix="e.g. voters: [{kind: classifier, checkpoint: clf/emo-s0}, {kind: text}, "
                                 "{kind: face}], or enabled: false")
        try:
            EXTRACTORS.get(str(config.get("extractor", "lexicon")))
        except InputError as exc:
            raise InputError(exc.what, field="extractor", fix=exc.fix) from exc
        _check_options(section(config, "extractor_options"))
        for key in ("features", "wheel"):
            if config.get(key) is not None and not isinstance(config.get(key), str):
                raise InputError(f"must be text or null, got {config.get(key)!r}", field=key)

    def __call__(self, fields: Mapping[str, Any], context: StageContext) -> StageResult:
        from pathlib import Path

        from affectgpt.caption import vote

        config = {**DEFAULTS, **context.config}
        self.check(config)
        if not config["enabled"]:
            return StageResult(info={"enabled": False})
        voters = resource(context, self.name, {"voters": config["voters"]},
                          lambda: vote.build_voters(config["voters"]))
        options = {"backend": str(config["extractor"]), **section(config, "extractor_options")}
        extractor = resource(context, self.name, {"extractor": options}, lambda: _extractor(options))
        maps = resource(context, self.name, {"protocol": config["protocol"]}, lambda: _maps(config["protocol"]))
        wheel = vote.wheel_index(maps, config["wheel"])
        face_file = fields.get("face_file")
        clip = vote.ClipInputs(clip_name(fields), subtitle_text(fields),
                               read_faces(absolute(face_file, context.output)) if face_file else None,
                               Path(config["features"]) if config["features"] else None)
        ballots = [voter(clip) for voter in voters]
        decided = {task: vote.majority(ballots, task) for task in ("emotion", "sentiment")}
        description = str(fields.get("description") or "")
        [found] = extractor.labels([description])
        if found.status == "failed":
            return StageResult(dropped=BACKEND_ERROR + (found.detail or "no answer"))
        [mood] = extractor.sentiment([found.answer])
        if mood.status == "failed":
            return StageResult(dropped=BACKEND_ERROR + (mood.detail or "no answer"))
        words = list(found.words) if found.words is not None else None
        extracted = {"words": words, "emotion": vote.extracted_emotion(words, maps, wheel), "sentiment": mood.label}
        outcomes = {"E": vote.emotion_outcome(decided["emotion"].label, extracted["emotion"], maps, wheel),
                    "S": vote.sentiment_outcome(decided["sentiment"].label, extracted["sentiment"])}
        labels = {"emotion": decided["emotion"].label, "sentiment": decided["sentiment"].label}
        record = {"vote": {t: d.to_dict() for t, d in decided.items()}, "ballots": [b.to_dict() for b in ballots],
                  "extracted": extracted, "checks": outcomes, "applied": config["checks"]}
        info = {"enabled": True, "checks": outcomes, "applied": config["checks"], "undecided": config["undecided"],
                "vote": labels, "extracted": {k: extracted[k] for k in ("emotion", "sentiment")},
                "voters": len(ballots), "protocol": maps.protocol, "wheel": maps.wheels[wheel],
                "extractor": extractor.name}
        if not vote.kept(outcomes, config["checks"], config["undecided"]):
            reasons = [f"{NAMES[c]}: vote {labels[t] or 'undecided'} vs description {extracted[t] or 'undecided'}"
                       for c, t in (("E", "emotion"), ("S", "sentiment"))
                       if c in vote.CHECKS[config["checks"]]
                       and not vote.kept({c: outcomes[c]}, c, config["undecided"])]
            return StageResult({"highlevel": record}, dropped="; ".join(reasons), info=info)
        return StageResult({"highlevel": record}, info=info)


def _extractor(options: Mapping[str, Any]) -> Any:
    from affectgpt.caption.stages.labels import build

    return build(options)


def _maps(protocol: str) -> Any:
    from affectgpt.bench.protocol import resolve_protocol

    return resolve_protocol(protocol).maps
