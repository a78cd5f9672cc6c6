"""Typed configuration: dataclass schemas read from YAML, with dotted ``a.b=c`` overrides.

Unknown keys are rejected with the closest valid key suggested; values are checked against the field types
and against what a field declares with :func:`setting` (ranges, choices, a validator), so a YAML file and a
``--set`` override are checked alike, before anything is loaded. Relative paths in a config file resolve
against the file's folder first (see :func:`load_config`). Experiment configs of later stages add their own
dataclasses and reuse :func:`build_config`.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from kgreason.core.errors import ConfigError
from kgreason.core.registry import did_you_mean

C = TypeVar("C")

CHECK_KEY = "kgreason.check"
#: Fact index types (see :mod:`kgreason.retrieval.facts`).
INDEX_TYPES = ("auto", "flat", "hnsw", "ivf")
#: Largest seed (seeds are stored as signed 64-bit integers).
SEED_MAX = 2**63 - 1


@dataclass(frozen=True)
class Check:
    """What a config field accepts beyond its type; kept in the field's metadata by :func:`setting`.

    Attributes:
        ge, gt, le: bounds of a number (``None``: unbounded).
        choices: the accepted values; ``ignore_case``: compare strings in lower case.
        validate: ``validate(value, key)`` raises :class:`ConfigError` for a value it refuses.
        note: shown after the expected range, e.g. ``0: all``.
        path: a file or folder; a relative one in a config file resolves against the file's folder first.
        must_exist: the path must exist (a value in ``names`` is a name, not a path).
        names: values that name something instead of a path (``kinship``, ``embedded``), or a callable
            returning them (a registry's names, read when the config is checked).
        unless: a sibling key; when it is set, the value need not exist (e.g. a plug-in's source).
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    choices: tuple[Any, ...] | None = None
    ignore_case: bool = False
    validate: Callable[[Any, str], None] | None = None
    note: str | None = None
    path: bool = False
    must_exist: bool = False
    names: tuple[str, ...] | Callable[[], Iterable[str]] = ()

    def name_choices(self) -> tuple[str, ...]:
        """The values of ``names`` (calling it when it is a callable)."""
        return tuple(self.names()) if callable(self.names) else self.names

    unless: str | None = None

    def expected(self, number: str) -> str:
        """``an integer >= 0``, ``a number in [0, 1]``, ... (what the error message says was expected)."""
        low = self.ge if self.ge is not None else self.gt
        if low is not None and self.le is not None:
            left = "[" if self.gt is None else "("
            text = f"{number} in {left}{_bound(low)}, {_bound(self.le)}]"
        elif low is not None:
            text = f"{number} {'>=' if self.gt is None else '>'} {_bound(low)}"
        elif self.le is not None:
            text = f"{number} <= {_bound(self.le)}"
        else:
            text = number
        return f"{text} ({self.note})" if self.note else text

    def check(self, value: Any, key: str) -> None:
        """Raise :class:`ConfigError` when ``value`` (already of the field's type; not ``None``) is refused."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = "an integer" if isinstance(value, int) else "a number"
            low_ok = (self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
            if not (low_ok and (self.le is None or value <= self.le)):  # NaN fails every comparison
                raise ConfigError(f"{key}: expected {self.expected(number)}, got {value!r}")
        probe = value.lower() if self.ignore_case and isinstance(value, str) else value
        if self.choices is not None and probe not in self.choices:
            shown = ", ".join(str(c) for c in self.choices)
            hint = did_you_mean(value, [str(c) for c in self.choices]) if isinstance(value, str) else ""
            raise ConfigError(f"{key}: expected one of {shown}, got {value!r}.{hint}".rstrip("."))
        if self.validate is not None:
            self.validate(value, key)


def _bound(value: float) -> str:
    if isinstance(value, int) and value > 2**20 and (value + 1) & value == 0:
        return f"2**{value.bit_length()} - 1"
    return str(value)


def setting(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Any = dataclasses.MISSING,
    **check: Any,
) -> Any:
    """A dataclass field whose values are checked on top of their type: ``hops: int = setting(2, ge=0)``.

    ``check`` takes the attributes of :class:`Check` (``ge``, ``gt``, ``le``, ``choices``, ``validate``, ...).
    """
    return field(default=default, default_factory=default_factory, metadata={CHECK_KEY: Check(**check)})


def field_check(f: dataclasses.Field) -> Check | None:
    """The :class:`Check` of a dataclass field, if it declares one."""
    return f.metadata.get(CHECK_KEY)


def check_device(value: str, key: str, *, here: bool = True) -> None:
    """A torch device name (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``); ``here``: present on this machine."""
    text = value.strip().lower()
    if text == "auto":
        return
    import torch

    try:
        device = torch.device(text)
    except Exception:  # torch raises RuntimeError for most bad names, other types for odd ones
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"{key}: expected auto, cpu, cuda, cuda:N or mps, got {value!r}")
    if not here:
        return
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{key}={value!r}, but no CUDA device is visible here; expected auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"{key}={value!r}, but only {torch.cuda.device_count()} CUDA device(s) are visible; "
                f"expected cuda:0 to cuda:{torch.cuda.device_count() - 1}"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{key}={value!r}, but MPS is not available here; expected auto or cpu")


def check_device_name(value: str, key: str) -> None:
    """:func:`check_device` without asking whether the device is present (a config saved on another machine)."""
    check_device(value, key, here=False)


@dataclass
class KBConfig:
    """Which knowledge base to open (see ``kgreason.kb.sources.open_kb``).

    ``source`` must be an existing file or folder unless ``format`` names a source that reads something else
    (a plug-in).
    """

    source: str | None = setting(None, path=True, must_exist=True, unless="format")
    format: str | None = None


@dataclass
class EncoderConfig:
    """Text encoder: ``embedded`` (the packaged all-MiniLM-L6-v2), a local folder, or a hub id.

    ``device``: ``auto`` / ``None`` (cuda when present, else cpu), ``cpu``, ``cuda``, ``cuda:N``; it must be
    present on this machine.
    """

    model: str = setting("embedded", path=True, names=("embedded",))
    batch_size: int = setting(128, ge=1)
    max_length: int = setting(128, ge=2)
    device: str | None = setting(None, validate=check_device)


@dataclass
class RetrievalConfig:
    """k-hop subgraph and fact retrieval around the entities a text links to."""

    hops: int = setting(2, ge=0)
    max_nodes: int = setting(200, ge=1)
    min_link_score: float = 0.0
    top_k: int = setting(5, ge=1)
    facts: bool = True
    index_type: str = setting("auto", choices=INDEX_TYPES, ignore_case=True)


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
    except (yaml.YAMLError, ValueError, TypeError, RecursionError):  # e.g. 2020-13-45, not a date: the text
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
        if isinstance(value, str | os.PathLike):
            return Path(value)
        raise ConfigError(f"{key}: expected a path, got {value!r}")
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
            check = field_check(f)
            if check is not None and kwargs[f.name] is not None:
                check.check(kwargs[f.name], key)
    return schema(**kwargs)


def read_yaml_mapping(path: str | Path, *, what: str = "config file") -> dict[str, Any]:
    """The mapping a YAML file holds (``{}`` for an empty file); safe loading only, a BOM is accepted.

    Raises:
        ConfigError: the file is missing, a folder, not UTF-8, not YAML, uses a tag such as ``!!python/object``,
            or does not hold a mapping; the message names the file (and the line and column when known).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what} (expected an existing YAML file)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder (expected a YAML {what})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); expected a UTF-8 encoded YAML {what}"
        ) from None
    except OSError as err:
        raise ConfigError(
            f"{path}: cannot be read ({err.strerror or err}); expected a readable {what}"
        ) from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or err
        hint = ""
        if isinstance(err, yaml.constructor.ConstructorError):
            hint = " (expected plain YAML: mappings, lists, strings, numbers, booleans, null; no !! tags)"
        raise ConfigError(f"{path}{where}: invalid YAML: {problem}{hint}") from None
    except (ValueError, TypeError, RecursionError) as err:  # e.g. a date that does not exist, deep nesting
        raise ConfigError(
            f"{path}: invalid YAML value ({type(err).__name__}: {err}); expected plain YAML"
        ) from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(
            f"{path}: a {what} must hold a mapping at the top level (expected 'key: value' lines), "
            f"got {type(loaded).__name__}"
        )
    return loaded or {}


def load_config(schema: type[C], path: str | Path | None = None, overrides: Sequence[str] = ()) -> C:
    """Read ``path`` (YAML) if given, apply dotted ``overrides``, and build ``schema``.

    A relative path in a field declared with ``setting(path=True)`` resolves against the folder of ``path``
    first, then (as :func:`kgreason.core.paths.resolve_data_path` does) the working folder and the data folder; a
    path given by an override resolves against the working folder, then the data folder. A path that must
    exist and is found nowhere is a :class:`ConfigError` naming every place looked.
    """
    data = read_yaml_mapping(path) if path is not None else {}
    merged = apply_overrides(data, overrides)
    overridden = {tuple(parse_override(item)[0]) for item in overrides}
    base = Path(path).parent if path is not None else None
    _resolve_paths(schema, merged, base=base, source=path, overridden=overridden)
    return build_config(schema, merged)


def _resolve_paths(
    schema: type,
    data: dict[str, Any],
    *,
    base: Path | None,
    source: str | Path | None,
    overridden: set[tuple[str, ...]],
    prefix: tuple[str, ...] = (),
) -> None:
    """Rewrite (in place) the relative paths of ``data`` that a config file gave as found paths."""
    try:
        hints = typing.get_type_hints(schema)
    except Exception:  # a schema whose hints cannot be resolved: nothing to rewrite
        return
    for f in dataclasses.fields(schema):
        if f.name not in data:
            continue
        value, hint, key = data[f.name], hints[f.name], (*prefix, f.name)
        if dataclasses.is_dataclass(hint):
            if isinstance(value, dict):
                _resolve_paths(hint, value, base=base, source=source, overridden=overridden, prefix=key)
            continue
        check = field_check(f)
        if (
            check is None
            or not check.path
            or not isinstance(value, str)
            or not value
            or value in check.name_choices()
        ):
            continue
        from_file = not any(key[:i] in overridden for i in range(1, len(key) + 1))
        found, looked = _find_path(value, base if from_file else None)
        if found is not None:
            data[f.name] = found
        elif check.must_exist and not (check.unless and data.get(check.unless) is not None):
            where = f"{source}: " if from_file and source is not None else ""
            choices = check.name_choices()
            names = f", or {' or '.join(choices)}" if choices else ""
            raise ConfigError(
                f"{where}{'.'.join(key)} {value!r}: no such file or folder; looked for {', '.join(looked)} "
                f"(expected an existing file or folder{names})"
            )


def _find_path(value: str, base: Path | None) -> tuple[str | None, list[str]]:
    """Where a relative path of a config is (the config's folder ``base``, the working folder, the data folder).

    Returns the path to use (absolute when found beside the config or in the data folder, as given when found
    in the working folder) or ``None``, and the places looked.
    """
    from kgreason.core.paths import data_dir, resolve_data_path

    try:
        given = Path(value).expanduser()
    except RuntimeError:  # ~name of a user without a home folder
        return None, [f"{value} (no home folder for {value.split('/', 1)[0]!r})"]
    if given.is_absolute():
        return (value if given.exists() else None), [str(given)]
    looked = []
    if base is not None:
        beside = Path(os.path.abspath(base / given))
        if beside.exists():
            return str(beside), []
        looked.append(str(beside))
    looked.append(f"{os.path.abspath(given)} (working folder)")
    found = resolve_data_path(given)
    if found.exists():
        return str(found), []
    root = data_dir()
    looked.append(
        f"{root / given} (data folder)"
        if root is not None
        else "no data folder (pass --data-dir DIR or set $KGREASON_DATA)"
    )
    return None, looked


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass (for writing beside results)."""
    return dataclasses.asdict(config)


def parse_seeds(seeds: str | None) -> list[int] | None:
    """``"13,14,15"`` -> ``[13, 14, 15]`` (``None`` when not given); each in ``[0, 2**63 - 1]``, none twice."""
    if seeds is None:
        return None
    try:
        values = [int(s) for s in seeds.replace(" ", "").split(",") if s]
    except ValueError:
        values = []
    if not values:
        raise ConfigError(f"--seeds expects comma-separated integers such as 13,14,15, got {seeds!r}")
    for i, value in enumerate(values):
        if not 0 <= value <= SEED_MAX:
            raise ConfigError(f"--seeds: expected seeds in [0, 2**63 - 1], got {value}")
        if value in values[:i]:
            raise ConfigError(f"--seeds: seed {value} is given twice (expected distinct seeds, one run each)")
    return values
