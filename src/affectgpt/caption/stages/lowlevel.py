"""Stage 6, low-level filters (a dataset stage): drop clips whose description length is abnormal.

`length_tails: {enabled: true, k: 2.0}`: description lengths (words, whitespace-separated) are roughly Gaussian
(spec, stage 3); `prepare` measures the mean and the population standard deviation over every surviving record
and keeps a clip only when its length lies within [mean - k std, mean + k std] (thresholds rounded to 4
decimals, and the rounded values are the ones applied and reported in the params). With fewer than 2 records,
or all lengths equal, nothing is dropped. A drop reads "length_tail: <n> words, outside [<low>, <high>]".

`speaker_mismatch: {enabled: false}` is the slot of the audio-video mismatch filter (the audible speaker is not
the visible person), which comes with issue 18 (active-speaker detection); enabling it now is an InputError, so
a config never believes it filtered what it did not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from affectgpt.caption.base import StageContext, StageResult
from affectgpt.caption.stages.common import check_config, flag, section
from affectgpt.errors import InputError

DEFAULT_K = 2.0
DEFAULTS: dict[str, Any] = {"length_tails": {"enabled": True, "k": DEFAULT_K}, "speaker_mismatch": {"enabled": False}}


def words(description: Any) -> int:
    return len(str(description or "").split())


class LowLevel:
    """Stage 6 (see the module docstring)."""

    name = "lowlevel"
    version = "1"
    scope = "dataset"
    reads = ("description",)
    writes = ()
    defaults = DEFAULTS

    def check(self, config: Mapping[str, Any]) -> None:
        _settings(config)

    def prepare(self, all_fields: Sequence[Mapping[str, Any]], config: Mapping[str, Any]) -> dict[str, Any]:
        """The length distribution of the surviving records and the thresholds it gives."""
        tails, _ = _settings(config)
        if not tails["enabled"]:
            return {"length_tails": None}
        import numpy as np

        lengths = np.array([words(f.get("description")) for f in all_fields if f.get("description")], np.float64)
        found: dict[str, Any] = {"k": tails["k"], "n": int(lengths.size)}
        if lengths.size < 2 or float(lengths.std()) == 0.0:
            return {"length_tails": {**found, "low": None, "high": None,
                                     "note": "fewer than 2 records or one length: nothing dropped"}}
        mean, std = float(lengths.mean()), float(lengths.std())
        return {"length_tails": {**found, "mean": round(mean, 4), "std": round(std, 4),
                                 "low": round(mean - tails["k"] * std, 4), "high": round(mean + tails["k"] * std, 4)}}

    def __call__(self, fields: Mapping[str, Any], context: StageContext) -> StageResult:
        _settings(context.config)
        tails = context.params.get("length_tails")
        if not tails or tails.get("low") is None:
            return StageResult()
        n = words(fields.get("description"))
        if n < tails["low"] or n > tails["high"]:
            return StageResult(dropped=f"length_tail: {n} words, outside [{tails['low']:g}, {tails['high']:g}]",
                               info={"words": n})
        return StageResult(info={"words": n})


def _settings(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two filters' settings, checked; InputError for speaker_mismatch enabled (it comes with issue 18)."""
    check_config("", config, DEFAULTS)
    tails = section(config, "length_tails")
    check_config("length_tails", tails, ("enabled", "k"))
    k = tails.get("k", DEFAULT_K)
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 < k < 100:
        raise InputError(f"k must be a positive number of standard deviations, got {k!r}",
                         field="length_tails.k", fix="e.g. 2.0 drops lengths beyond 2 std")
    mismatch = section(config, "speaker_mismatch")
    check_config("speaker_mismatch", mismatch, ("enabled",))
    if flag(mismatch, "enabled", "speaker_mismatch", False):
        raise InputError("the speaker-mismatch filter is not available yet: it comes with issue 18 (active-speaker "
                         "detection)", field="speaker_mismatch.enabled",
                         fix="set enabled: false (or leave speaker_mismatch out) for now")
    return {"enabled": flag(tails, "enabled", "length_tails", True), "k": float(k)}, mismatch
