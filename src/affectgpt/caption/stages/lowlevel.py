"""Stage 6, low-level filters (a dataset stage): drop clips whose description length is abnormal, or whose speaker
is not the visible person.

`length_tails: {enabled: true, k: 2.0, mode: zscore, low: 2.5, high: 97.5}`: description lengths (words,
whitespace-separated) over every surviving record are measured by `prepare`:
- `mode: zscore` (the default): lengths are roughly Gaussian (spec, stage 3); a clip is kept only when its length
  lies within [mean - k std, mean + k std] (population std);
- `mode: percentile`: within [the `low`-th percentile, the `high`-th percentile] (numpy's linear interpolation).
Thresholds are rounded to 4 decimals and the rounded values are the ones applied and reported in the params, with
the lengths' histogram (`length_histogram`: 20 equal bins; the run report reads both). With fewer than 2
records, or all lengths equal, nothing is dropped. A drop reads "length_tail: <n> words, outside [<low>, <high>]".

`speaker_mismatch: {enabled: false, detector: sync, threshold: 0.35}`: each clip's video goes through the speaker
detector (caption/speaker: "sync" correlates mouth motion with the speech envelope; "asd-weights" runs your
active-speaker weights, which it reads from `weights`). The verdict is in the stage's info (`speaker`); a
`mismatch` or `no_face` clip is dropped with "speaker_mismatch: <decision> (score ..., threshold ...)"; a
`silent` one is kept and reported. `threshold` (and the other keys) go to the detector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from affectgpt.caption.base import StageContext, StageResult
from affectgpt.caption.stages.common import check_config, flag, section
from affectgpt.errors import InputError

DEFAULT_K = 2.0
MODES = ("zscore", "percentile")
DEFAULTS: dict[str, Any] = {"length_tails": {"enabled": True, "k": DEFAULT_K},
                            "speaker_mismatch": {"enabled": False}}
SPEAKER_KEYS = ("enabled", "detector", "threshold", "weights", "config", "max_lag", "min_motion", "fps")
HISTOGRAM_BINS = 20


def words(description: Any) -> int:
    return len(str(description or "").split())


class LowLevel:
    """Stage 6 (see the module docstring)."""

    name = "lowlevel"
    version = "2"
    scope = "dataset"
    reads = ("description", "video", "media_sha")
    writes = ()
    defaults = DEFAULTS

    def check(self, config: Mapping[str, Any]) -> None:
        _settings(config)

    def prepare(self, all_fields: Sequence[Mapping[str, Any]], config: Mapping[str, Any]) -> dict[str, Any]:
        """The length distribution of the surviving records, its histogram and the thresholds it gives."""
        tails, _ = _settings(config)
        if not tails["enabled"]:
            return {"length_tails": None}
        import numpy as np

        lengths = np.array([words(f.get("description")) for f in all_fields if f.get("description")], np.float64)
        params: dict[str, Any] = {"length_histogram": _histogram(lengths)}
        found: dict[str, Any] = {"n": int(lengths.size)}
        if tails["mode"] == "zscore":
            found = {"k": tails["k"], **found}
        else:
            found = {"mode": "percentile", "low_percentile": tails["low"], "high_percentile": tails["high"], **found}
        if lengths.size < 2 or float(lengths.std()) == 0.0:
            return {**params, "length_tails": {**found, "low": None, "high": None,
                                               "note": "fewer than 2 records or one length: nothing dropped"}}
        mean, std = float(lengths.mean()), float(lengths.std())
        if tails["mode"] == "zscore":
            low, high = mean - tails["k"] * std, mean + tails["k"] * std
        else:
            low, high = (float(v) for v in np.percentile(lengths, (tails["low"], tails["high"])))
        return {**params, "length_tails": {**found, "mean": round(mean, 4), "std": round(std, 4),
                                           "low": round(low, 4), "high": round(high, 4)}}

    def __call__(self, fields: Mapping[str, Any], context: StageContext) -> StageResult:
        _, speaker = _settings(context.config)
        info: dict[str, Any] = {}
        tails = context.params.get("length_tails")
        if tails and tails.get("low") is not None:
            n = words(fields.get("description"))
            info["words"] = n
            if n < tails["low"] or n > tails["high"]:
                return StageResult(dropped=f"length_tail: {n} words, outside [{tails['low']:g}, {tails['high']:g}]",
                                   info=info)
        if speaker["enabled"]:
            from affectgpt.caption.speaker import DROPPED

            if not fields.get("video"):
                raise InputError("the record has no video path", field="video", fix="run the probe stage first")
            verdict = _detector(speaker, context.resources)(fields["video"])
            info["speaker"] = verdict.to_dict()
            if verdict.decision in DROPPED:
                return StageResult(dropped=verdict.reason(), info=info)
        return StageResult(info=info)


def _histogram(lengths: Any) -> dict[str, Any]:
    import numpy as np

    if not lengths.size:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(lengths, bins=HISTOGRAM_BINS if lengths.max() > lengths.min() else 1)
    return {"edges": [round(float(e), 3) for e in edges], "counts": [int(c) for c in counts]}


def _detector(speaker: Mapping[str, Any], resources: dict[str, Any]) -> Any:
    """The configured speaker detector, built once per worker (kept in the context's resources)."""
    import json

    from affectgpt.caption.speaker import build_detector

    options = {k: v for k, v in speaker.items() if k not in ("enabled", "detector")}
    key = "speaker:" + json.dumps([speaker["detector"], options], sort_keys=True, default=str)
    if key not in resources:
        resources[key] = build_detector(speaker["detector"], **options)
    return resources[key]


def _settings(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two filters' settings, checked."""
    check_config("", config, DEFAULTS)
    tails = section(config, "length_tails")
    check_config("length_tails", tails, ("enabled", "k", "mode", "low", "high"))
    k = tails.get("k", DEFAULT_K)
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 < k < 100:
        raise InputError(f"k must be a positive number of standard deviations, got {k!r}",
                         field="length_tails.k", fix="e.g. 2.0 drops lengths beyond 2 std")
    mode = tails.get("mode", "zscore")
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}", field="length_tails.mode", fix=f"use one of {', '.join(MODES)}")
    low, high = tails.get("low", 2.5), tails.get("high", 97.5)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (low, high)) or not 0 <= low < high <= 100:
        raise InputError(f"low and high must be percentiles with 0 <= low < high <= 100, got {low!r}, {high!r}",
                         field="length_tails.low", fix="e.g. low: 2.5, high: 97.5")
    mismatch = section(config, "speaker_mismatch")
    check_config("speaker_mismatch", mismatch, SPEAKER_KEYS)
    detector = mismatch.get("detector", "sync")
    from affectgpt.caption.speaker import DETECTORS

    if detector not in DETECTORS.entries:
        DETECTORS.get(detector)  # raises the did-you-mean InputError
    speaker = {**{k: v for k, v in mismatch.items() if k != "enabled"}, "detector": detector,
               "enabled": flag(mismatch, "enabled", "speaker_mismatch", False)}
    return ({"enabled": flag(tails, "enabled", "length_tails", True), "k": float(k), "mode": mode,
             "low": float(low), "high": float(high)}, speaker)
