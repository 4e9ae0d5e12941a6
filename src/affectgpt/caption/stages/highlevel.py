"""Stage 7, high-level filter: the slot of the "model-based crowdsourcing" check, a pass-through until issue 18.

Issue 18 fills it (several emotion and sentiment classifiers vote; a clip is kept only when their majority
agrees with the emotion and sentiment extracted from its description: checks E and S of the spec). Until then
`enabled: false` (the default) keeps every clip and adds no field, and `enabled: true` is an InputError, so a
config never believes it filtered what it did not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from affectgpt.caption.base import StageContext, StageResult
from affectgpt.caption.stages.common import check_config, flag
from affectgpt.errors import InputError

DEFAULTS: dict[str, Any] = {"enabled": False}


class HighLevel:
    """Stage 7 (see the module docstring)."""

    name = "highlevel"
    version = "0"
    scope = "clip"
    reads = ()
    writes = ()
    defaults = DEFAULTS

    def check(self, config: Mapping[str, Any]) -> None:
        """InputError for an unknown key, and for `enabled: true` (the filter comes with issue 18)."""
        check_config("", config, DEFAULTS)
        if flag(config, "enabled", "", False):
            raise InputError("the high-level filter is not available yet: it comes with issue 18 (classifier "
                             "votes against the description's emotion and sentiment)",
                             field="enabled", fix="set enabled: false for now")

    def __call__(self, fields: Mapping[str, Any], context: StageContext) -> StageResult:
        self.check(context.config)
        return StageResult(info={"enabled": False})
