"""YAML config files <-> trees of frozen dataclasses: strict keys, type checks, `--set a.b=c` overrides, dumps.

Generic over the config classes (TrainConfig and its sections; later ExtractConfig...): the schema is the
dataclass, the file is data (shared/spec/architecture.md 7.4). An unknown key is an InputError naming the file
and the dotted key with a did-you-mean; a value of the wrong type names its key and the type expected; a float
field refuses NaN and infinities; an empty file, or one that is not UTF-8 text, is refused naming the file; a
config that expands to more than AFFECTGPT_CONFIG_MAX_VALUES values (default 100,000: YAML alias bombs) or nests
deeper than 64 levels is refused before anything walks it.
Imports no torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from affectgpt.errors import InputError
from affectgpt.extras import require

_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")
MAX_VALUES = 100_000
MAX_VALUES_ENV = "AFFECTGPT_CONFIG_MAX_VALUES"
MAX_DEPTH = 64
"""The deepest nesting a config may have (a recipe nests 4 levels; the LLM config inside it a few more)."""

__all__ = ["apply_overrides", "build_config", "dump_config", "load_config", "to_plain"]


def load_config(path: str | Path, cls: type, overrides: Iterable[str] = ()) -> Any:
    """`cls` from a YAML file, with `key.sub=value` overrides applied before checking.

    Raises:
        InputError: unreadable file, not UTF-8 text, not YAML, empty, not a mapping, unknown key, wrong type, a
            number that is not finite (NaN, inf) where a float is asked for, or a rule of `cls` broken.
    """
    yaml = require("yaml", extra="train")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the config ({exc.strerror or exc})", path=path,
                         fix="check the path") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (at byte {exc.start})", path=path,
                         fix="give a YAML file saved as UTF-8") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML ({' '.join(str(exc).split())})", path=path,
                         fix="fix the YAML syntax") from exc
    except RecursionError as exc:  # PyYAML builds nested collections recursively
        raise InputError(f"nested too deep to read (more than {MAX_DEPTH} levels)", path=path,
                         fix="flatten the recipe") from exc
    if data is None:  # never the defaults in silence: an empty file is a mistake, not a recipe
        raise InputError("the config is empty", path=path,
                         fix="write the recipe's `key: value` lines (see configs/ for examples)")
    return build_config(cls, data, source=str(path), overrides=overrides)


def build_config(cls: type, data: Any, *, source: str = "<config>", overrides: Iterable[str] = ()) -> Any:
    """`cls` from an already-parsed mapping (see load_config)."""
    if not isinstance(data, Mapping):
        raise InputError(f"the config must be a mapping of keys, not {type(data).__name__}", path=source,
                         fix="write `key: value` lines at the top level")
    check_size(data, source=source)  # before anything walks it: a few aliases can stand for billions of values
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
            raise InputError(f"the value of {key} is not valid YAML ({' '.join(str(exc).split())})", field="--set",
                             fix="quote the value") from exc
        except RecursionError as exc:
            raise InputError(f"the value of {key} is nested too deep (more than {MAX_DEPTH} levels)", field="--set",
                             fix="flatten the value") from exc
        check_size(value, source=None, field="--set", depth=len(key.split(".")))
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


def max_values() -> int:
    """The most values a config may hold once its YAML aliases are expanded: AFFECTGPT_CONFIG_MAX_VALUES, default
    100,000 (a full recipe holds about 100)."""
    raw = os.environ.get(MAX_VALUES_ENV, "").strip()
    if not raw:
        return MAX_VALUES
    if not raw.isdigit() or int(raw) < 1:
        raise InputError(f"{raw!r} is not a positive whole number", field=MAX_VALUES_ENV,
                         fix=f"set {MAX_VALUES_ENV} to e.g. {MAX_VALUES}, or unset it")
    return int(raw)


def check_size(data: Any, *, source: str | Path | None, field: str | None = None, depth: int = 0) -> None:
    """Refuse a parsed config that expands to more than max_values() values or nests deeper than MAX_DEPTH.

    YAML aliases make a few hundred bytes stand for billions of values (each use of an alias is the whole
    subtree again once copied or checked); this walk counts them as expanded but stops at the limit, without
    recursion, so refusing a bomb costs at most the limit."""
    limit = max_values()
    count = 0
    stack = [(data, depth)]
    while stack:
        value, level = stack.pop()
        count += 1
        if count > limit:
            raise InputError(f"holds more than {limit} values once its YAML aliases are expanded", path=source,
                             field=field, fix=f"write it without chains of aliases (or raise {MAX_VALUES_ENV})")
        if level > MAX_DEPTH:
            raise InputError(f"nested too deep (more than {MAX_DEPTH} levels)", path=source, field=field,
                             fix="flatten it")
        if isinstance(value, Mapping):
            stack.extend((v, level + 1) for v in value.values())
        elif isinstance(value, list | tuple):
            stack.extend((v, level + 1) for v in value)


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
        if ok and not math.isfinite(value):  # `.nan`, `.inf`, `1e999`: no rule downstream can compare them
            raise InputError(f"{value} is not a finite number", path=source, field=key,
                             fix=f"give {key} an ordinary number")
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
