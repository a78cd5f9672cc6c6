"""Reading the files of a risk run folder back, each checked: a bad one is a :class:`FinanceDataError` naming it.

A run folder (see :mod:`kgreason.finance.training`) is read by ``kgreason finance score / explain / whatif /
serve``; a truncated, hand-edited or foreign file must say which file is wrong and what it should hold, not
fail somewhere inside the model with a traceback.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from kgreason.finance.errors import FinanceDataError

#: The fix for any damaged run file.
RETRAIN = "retrain with `kgreason finance train`, or copy the run folder again"


def read_json(path: Path, *, expected: str) -> Any:
    """The JSON value of ``path``; unreadable, not UTF-8 or not JSON: :class:`FinanceDataError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise FinanceDataError(f"cannot read ({err.strerror or err})", path=path, expected=expected) from None
    except UnicodeDecodeError as err:
        raise FinanceDataError(f"not UTF-8 text ({err.reason})", path=path, expected=expected) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise FinanceDataError(
            f"not valid JSON ({err.msg}; the file may be truncated: {RETRAIN})",
            path=path,
            line=err.lineno,
            column=err.colno,
            expected=expected,
        ) from None


def read_json_object(path: Path, *, expected: str) -> dict[str, Any]:
    """:func:`read_json` that must give a JSON object."""
    data = read_json(path, expected=expected)
    if not isinstance(data, dict):
        raise FinanceDataError(f"a JSON {_json_kind(data)}, not an object", path=path, expected=expected)
    return data


def read_yaml_mapping(path: Path, *, expected: str) -> dict[str, Any]:
    """The YAML mapping of ``path`` (a run's ``config.yaml``)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except OSError as err:
        raise FinanceDataError(f"cannot read ({err.strerror or err})", path=path, expected=expected) from None
    except UnicodeDecodeError as err:
        raise FinanceDataError(f"not UTF-8 text ({err.reason})", path=path, expected=expected) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise FinanceDataError(
            f"not valid YAML ({getattr(err, 'problem', None) or err})",
            path=path,
            line=None if mark is None else mark.line + 1,
            expected=expected,
        ) from None
    if not isinstance(data, dict):
        raise FinanceDataError(f"a YAML {type(data).__name__}, not a mapping", path=path, expected=expected)
    return data


def check_safetensors(path: Path) -> None:
    """Raise :class:`FinanceDataError` when ``path`` is not a complete safetensors file.

    The format: 8 bytes of header length (little-endian), a JSON header giving each tensor's byte range,
    then the data; a file shorter than its header says is truncated.
    """
    expected = f"the complete weights of a finished run; {RETRAIN}"
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if length < 2 or length > size - 8:
                raise FinanceDataError(
                    f"not a safetensors file, or truncated ({size} bytes)", path=path, expected=expected
                )
            header = json.loads(handle.read(length))
    except OSError as err:
        raise FinanceDataError(f"cannot read ({err.strerror or err})", path=path, expected=expected) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FinanceDataError(
            "not a safetensors file (its header is not JSON)", path=path, expected=expected
        ) from None
    ends = [
        offsets[1] if isinstance(offsets := value.get("data_offsets"), list) and len(offsets) == 2 else None
        for key, value in (header.items() if isinstance(header, dict) else [])
        if key != "__metadata__" and isinstance(value, dict)
    ]
    if not isinstance(header, dict) or not all(isinstance(end, int) for end in ends):
        raise FinanceDataError("not a safetensors header", path=path, expected=expected)
    needed = 8 + length + max(ends, default=0)
    if size < needed:
        raise FinanceDataError(
            f"truncated: {size} bytes, its header describes {needed}", path=path, expected=expected
        )


def finite_numbers(value: Any, *, count: int | None = None) -> bool:
    """``value`` is a list of finite numbers (of length ``count`` when given)."""
    return (
        isinstance(value, list)
        and (count is None or len(value) == count)
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v)) for v in value
        )
    )


def _json_kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")
