"""Typed configuration: dataclass schemas read from YAML, with dotted ``a.b=c`` overrides.

Unknown keys are rejected with the closest valid key suggested; values are checked against the field types.
Experiment configs of later stages add their own dataclasses and reuse :func:`build_config`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from kgreason.errors import ConfigError
from kgreason.registry import did_you_mean

C = TypeVar("C")


@dataclass
class KBConfig:
    """Which knowledge base to open (see ``kgreason.kb.sources.open_kb``)."""

    source: str | None = None
    format: str | None = None


@dataclass
class EncoderConfig:
    """Text encoder: ``embedded`` (the packaged all-MiniLM-L6-v2), a local folder, or a hub id."""

    model: str = "embedded"
    batch_size: int = 128
    max_length: int = 128
    device: str | None = None


@dataclass
class RetrievalConfig:
    """k-hop subgraph and fact retrieval around the entities a text links to."""

    hops: int = 2
    max_nodes: int = 200
    min_link_score: float = 0.0
    top_k: int = 5
    facts: bool = True
    index_type: str = "auto"


@dataclass
class RetrieveConfig:
    """Config of ``kgreason retrieve``."""

    kb: KBConfig = field(default_factory=KBConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` -> (["a", "b"], 3); the value is read as YAML (numbers, booleans, null, lists)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} must look like section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (a copy); validation happens in :func:`build_config`."""
    out = _deepcopy(data)
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value
    return out


def _deepcopy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deepcopy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deepcopy(v) for v in data]
    return data


def _all_keys(schema: type, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        name = prefix + f.name
        keys.append(name)
        if dataclasses.is_dataclass(hints[f.name]):
            keys.extend(_all_keys(hints[f.name], name + "."))
    return keys


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a section (mapping), got {value!r}")
        return build_config(hint, value, _prefix=key + ".")
    if origin in (list, Sequence, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (inner, *_) = typing.get_args(hint) or (Any,)
        return [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if hint is Path:
        return Path(value)
    return value


def build_config(schema: type[C], data: Mapping[str, Any] | None = None, *, _prefix: str = "") -> C:
    """Build the dataclass ``schema`` from nested ``data``, rejecting unknown keys with a suggestion."""
    data = dict(data or {})
    hints = typing.get_type_hints(schema)
    names = {f.name for f in dataclasses.fields(schema)}
    for key in data:
        if key not in names:
            full = _prefix + str(key)
            root = schema if not _prefix else None
            valid = [_prefix + n for n in names] if root is None else _all_keys(schema)
            raise ConfigError(
                f"unknown config key {full!r}.{did_you_mean(full, valid)} Valid here: {sorted(names)}"
            )
    kwargs = {}
    for f in dataclasses.fields(schema):
        if f.name not in data:
            continue
        value, hint, key = data[f.name], hints[f.name], _prefix + f.name
        if dataclasses.is_dataclass(hint):
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise ConfigError(f"{key}: expected a section (mapping), got {value!r}")
            kwargs[f.name] = build_config(hint, value, _prefix=key + ".")
        else:
            kwargs[f.name] = _coerce(value, hint, key)
    return schema(**kwargs)


def load_config(schema: type[C], path: str | Path | None = None, overrides: Sequence[str] = ()) -> C:
    """Read ``path`` (YAML) if given, apply dotted ``overrides``, and build ``schema``."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: invalid YAML: {getattr(err, 'problem', err)}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a config file must hold a mapping at the top level")
        data = loaded or {}
    return build_config(schema, apply_overrides(data, overrides))


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass (for writing beside results)."""
    return dataclasses.asdict(config)
