"""YAML config files <-> trees of frozen dataclasses: strict keys, type checks, `--set a.b=c` overrides, dumps.

Generic over the config classes (TrainConfig and its sections; later ExtractConfig...): the schema is the
dataclass, the file is data (shared/spec/architecture.md 7.4). An unknown key is an InputError naming the file
and the dotted key with a did-you-mean; a value of the wrong type names its key and the type expected.
Imports no torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.extras import require

_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")

__all__ = ["apply_overrides", "build_config", "dump_config", "load_config", "to_plain"]


def load_config(path: str | Path, cls: type, overrides: Iterable[str] = ()) -> Any:
    """`cls` from a YAML file, with `key.sub=value` overrides applied before checking.

    Raises:
        InputError: unreadable file, not a mapping, unknown key, wrong type, or a rule of `cls` broken.
    """
    yaml = require("yaml", extra="train")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the config ({exc.strerror or exc})", path=path,
                         fix="check the path") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML ({exc})", path=path, fix="fix the YAML syntax") from exc
    if data is None:
        data = {}
    return build_config(cls, data, source=str(path), overrides=overrides)


def build_config(cls: type, data: Any, *, source: str = "<config>", overrides: Iterable[str] = ()) -> Any:
    """`cls` from an already-parsed mapping (see load_config)."""
    if not isinstance(data, Mapping):
        raise InputError(f"the config must be a mapping of keys, not {type(data).__name__}", path=source,
                         fix="write `key: value` lines at the top level")
    data = apply_overrides(dict(data), overrides, source=source)
    try:
        return _build(cls, data, "", source)
    except InputError as exc:
        if exc.path is None:  # a __post_init__ rule: say which file broke it
            raise InputError(exc.what, path=source, field=exc.field, fix=exc.fix) from exc
        raise


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], *, source: str = "<config>") -> dict[str, Any]:
    """A copy of `data` with each `a.b.c=value` set (value parsed as YAML: `1e-5`, `true`, `[1, 2]`, `null`)."""
    yaml = require("yaml", extra="train")
    result = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise InputError(f"bad override {item!r}", field="--set", fix="write --set key.sub=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise InputError(f"the value of {key} is not valid YAML ({exc})", field="--set",
                             fix="quote the value") from exc
        node = result
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise InputError(f"{'.'.join(parts[:depth + 1])} is a value, not a section", path=source,
                                 field=key, fix="override the value itself")
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _build(cls: type, data: Any, prefix: str, source: str) -> Any:
    where = prefix.rstrip(".") or "<top level>"
    if not isinstance(data, Mapping):
        raise InputError(f"expected a mapping, got {_describe(data)}", path=source, field=where,
                         fix="write the section as `key: value` lines")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            hint = difflib.get_close_matches(str(key), list(fields), n=1)
            fix = f"did you mean '{prefix}{hint[0]}'?" if hint else f"known keys: {', '.join(fields)}"
            raise InputError("unknown key", path=source, field=f"{prefix}{key}", fix=fix)
    hints = typing.get_type_hints(cls)
    values = {key: _coerce(value, hints[key], f"{prefix}{key}", source) for key, value in data.items()}
    return cls(**values)


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """`value` checked against the annotation `tp` (and lists turned into tuples where a tuple is asked for)."""
    ok, result = _try(value, tp, key, source)
    if ok:
        return result
    fix = f"give {key} a value of type {_type_name(tp)}"
    if isinstance(value, bool) and _try("text", tp, key, source)[0]:
        fix += f' in quotes: YAML reads no/yes/off/on as booleans (e.g. {key}: "no", or --set \'{key}="no"\')'
    raise InputError(f"expected {_type_name(tp)}, got {_describe(value)}", path=source, field=key, fix=fix)


def _try(value: Any, tp: Any, key: str, source: str) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):  # a dataclass option whose keys are wrong reports its own error
            ok, result = _try(value, option, key, source)
            if ok:
                return True, result
        return False, None
    if tp is type(None):
        return value is None, None
    if dataclasses.is_dataclass(tp):
        return (True, _build(tp, value, f"{key}.", source)) if isinstance(value, Mapping) else (False, None)
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, str) and _FLOAT.match(value.strip()):  # YAML 1.1 reads `1e-5` (no dot) as a string
            value = float(value)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else None
    if tp is str:
        return isinstance(value, str), value
    if origin is typing.Literal:
        return value in typing.get_args(tp), value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            return False, None
        args = typing.get_args(tp)
        item_tp = args[0] if args else Any
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                return False, None
            items = [_coerce(v, t, f"{key}[{i}]", source) for i, (v, t) in enumerate(zip(value, args, strict=True))]
        else:
            items = [_coerce(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return True, tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            return False, None
        args = typing.get_args(tp)
        value_tp = args[1] if args else Any
        return True, {k: _coerce(v, value_tp, f"{key}.{k}", source) for k, v in value.items()}
    return isinstance(value, tp) if isinstance(tp, type) else True, value


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(t) for t in typing.get_args(tp))
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if typing.get_origin(tp) in (tuple, list):
        return "a list"
    if typing.get_origin(tp) is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) < 40 else text[:37] + '...'}"


def to_plain(obj: Any) -> Any:
    """Dataclasses -> dicts, tuples -> lists, recursively (what YAML and JSON can hold)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dump_config(obj: Any) -> str:
    """The resolved config as YAML, in field order; `load_config` reads it back to an equal object."""
    yaml = require("yaml", extra="train")
    return yaml.safe_dump(to_plain(obj), sort_keys=False, allow_unicode=True)
