"""The caption run's config: a YAML file (+ `--set` overrides) -> a frozen CaptionConfig, checked strictly.

    executor: local          # local (a process pool) or ray
    workers: 2               # processes (local) or Ray actors (ray)
    ray_address: null        # an existing Ray cluster ("auto", "ray://host:10001"); null: a local Ray
    stages:                  # one section per stage of base.STAGE_ORDER (a missing one is {}: the defaults)
      acoustic: {backend: perception}
      merge: {backend: template, template: merge-v1}

An unknown top-level key or stage name is an InputError naming the file and the field, with a did-you-mean.
Inside a section, a stage that declares `defaults` (a mapping) gets them under the section (so an explicit
default and an omitted one give the same stage key) and refuses keys it does not know; a stage with a
`check(section)` method is asked to check the section, and its InputError is re-raised naming the config file
and `stages.<stage>.<field>` (an unknown backend name, say). Overrides are `--set stages.merge.template=v2`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectgpt.caption.base import STAGE_ORDER
from affectgpt.errors import InputError

EXECUTORS = ("local", "ray")
TOP_KEYS = ("executor", "workers", "ray_address", "stages")
YAML_EXTRA = "caption"
"""The extra that brings pyyaml for the caption command (pyproject: caption = [perception, pyyaml])."""


@dataclass(frozen=True)
class CaptionConfig:
    """A checked run config (see the module docstring). `source` is the file it came from, for messages."""

    executor: str = "local"
    workers: int = 1
    ray_address: str | None = None
    stages: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = "<config>"

    def section(self, stage: str) -> dict[str, Any]:
        return dict(self.stages.get(stage) or {})


def default_config_path() -> Path:
    """The packaged copy of configs/caption-offline.yaml (works on a fresh install)."""
    return Path(__file__).with_name("default.yaml")


def load_caption_config(path: str | Path | None = None, overrides: Iterable[str] = (), *,
                        table: Any = None) -> CaptionConfig:
    """The config of `path` (default: the packaged offline one) with `key.sub=value` overrides, checked.

    `table` is the stage Registry whose stages check their sections (default: caption.stages.STAGES when it
    can be imported; None skips the per-stage checks)."""
    from affectgpt.config import check_size
    from affectgpt.extras import require

    path = Path(path) if path is not None else default_config_path()
    yaml = _yaml(require)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the config ({exc.strerror or exc})", path=path, field="--config",
                         fix="check the path") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (at byte {exc.start})", path=path, fix="save it as UTF-8") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML ({' '.join(str(exc).split())})", path=path,
                         fix="fix the YAML syntax") from exc
    if data is None:
        raise InputError("the config is empty", path=path, fix="start from configs/caption-offline.yaml")
    check_size(data, source=path)
    return build_caption_config(data, source=str(path), overrides=overrides, table=table)


def build_caption_config(data: Any, *, source: str = "<config>", overrides: Iterable[str] = (),
                         table: Any = None) -> CaptionConfig:
    """CaptionConfig from an already-parsed mapping (see load_caption_config)."""
    from affectgpt.config import apply_overrides

    if not isinstance(data, Mapping):
        raise InputError(f"the config must be a mapping of keys, not {type(data).__name__}", path=source,
                         fix="write `key: value` lines at the top level")
    data = apply_overrides(dict(data), overrides, source=source)
    for key in data:
        if key not in TOP_KEYS:
            raise InputError("unknown key", path=source, field=str(key), fix=_did_you_mean(str(key), TOP_KEYS))
    executor = data.get("executor", "local")
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}", path=source, field="executor",
                         fix=_did_you_mean(str(executor), EXECUTORS))
    workers = data.get("workers", 1)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise InputError(f"expected a whole number >= 1, got {workers!r}", path=source, field="workers",
                         fix="give workers: 1 or more")
    address = data.get("ray_address")
    if address is not None and not isinstance(address, str):
        raise InputError(f"expected text or null, got {address!r}", path=source, field="ray_address",
                         fix='give ray_address: "auto" or "ray://host:10001", or null for a local Ray')
    stages = data.get("stages") or {}
    if not isinstance(stages, Mapping):
        raise InputError(f"expected a mapping of stage sections, got {type(stages).__name__}", path=source,
                         field="stages", fix=f"write one section per stage: {', '.join(STAGE_ORDER)}")
    sections: dict[str, dict[str, Any]] = {}
    for name, section in stages.items():
        if name not in STAGE_ORDER:
            raise InputError("unknown stage", path=source, field=f"stages.{name}",
                             fix=_did_you_mean(str(name), STAGE_ORDER))
        if section is None:
            section = {}
        if not isinstance(section, Mapping):
            raise InputError(f"expected a mapping, got {type(section).__name__}", path=source,
                             field=f"stages.{name}", fix="write the stage's section as `key: value` lines")
        sections[name] = dict(section)
    if table is None:
        table = _default_table()
    resolved = {name: _check_section(table, name, sections.get(name, {}), source) for name in STAGE_ORDER} \
        if table is not None else {name: sections.get(name, {}) for name in STAGE_ORDER}
    return CaptionConfig(executor=executor, workers=workers, ray_address=address, stages=resolved, source=source)


def _check_section(table: Any, name: str, section: dict[str, Any], source: str) -> dict[str, Any]:
    stage = table.get(name)()
    defaults = getattr(stage, "defaults", None)
    if isinstance(defaults, Mapping):
        for key in section:
            if key not in defaults:
                raise InputError("unknown key", path=source, field=f"stages.{name}.{key}",
                                 fix=_did_you_mean(str(key), tuple(defaults)))
        section = {**dict(defaults), **section}
    check = getattr(stage, "check", None)
    if callable(check):
        try:
            check(section)
        except InputError as exc:
            where = exc.field if (exc.field or "").startswith("stages.") else \
                f"stages.{name}" + (f".{exc.field}" if exc.field else "")
            raise InputError(exc.what, path=source, field=where, fix=exc.fix) from exc
    return section


def _default_table() -> Any:
    from affectgpt.caption.stages import STAGES

    return STAGES


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    hint = difflib.get_close_matches(name, choices, n=1)
    return f"did you mean {hint[0]!r}?" if hint else f"known: {', '.join(choices)}"


def _yaml(require: Any) -> Any:
    return require("yaml", extra=YAML_EXTRA)
