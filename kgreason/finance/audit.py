"""An append-only JSONL audit log of scoring requests, and a reader that checks one.

Every line is one JSON object with the fields of :data:`AUDIT_FIELDS`::

    {"time": "2025-01-31T12:00:00.123456+00:00", "request_id": "9f0c...", "endpoint": "/score",
     "request_sha256": "5e88...", "model_version": "gnn-1a2b3c4d", "company_id": "C0042",
     "score": 0.31, "probability": 0.27, "status": 200}

The file is opened with ``O_APPEND`` (never truncated, never rewritten, never opened ``"w"``); each call of
:meth:`AuditLog.write_many` is one ``os.write`` of whole lines, so lines of concurrent writers (threads, or
worker processes appending to the same file) never interleave, then optionally ``os.fsync``.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kgreason.core.errors import KGReasonError, LocatedError

#: The fields of every audit record, in the order they are written.
AUDIT_FIELDS = (
    "time",
    "request_id",
    "endpoint",
    "request_sha256",
    "model_version",
    "company_id",
    "score",
    "probability",
    "status",
)
#: Permission bits of a newly created log (before the umask): owner read/write, group read.
LOG_MODE = 0o640


class AuditLogError(KGReasonError, OSError):
    """The audit log cannot be opened or written."""


class AuditFormatError(LocatedError):
    """A line of an audit log is not a complete audit record (names the file and line)."""


@dataclass(frozen=True)
class AuditCheck:
    """What :func:`verify` found: the log and how many records it holds."""

    path: Path
    records: int


def utc_now() -> str:
    """The current time, UTC, ISO 8601 with microseconds (``2025-01-31T12:00:00.123456+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class AuditLog:
    """An append-only JSONL file of audit records; safe to share between threads.

    The file is opened (created if absent) when the log is constructed, so a missing or read-only directory
    fails at startup rather than at the first request. With ``fsync=True`` every :meth:`write_many` is
    flushed to disk before it returns.
    """

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._open()

    def _open(self) -> None:
        parent = self.path.parent
        if not parent.is_dir():
            raise AuditLogError(f"cannot open audit log {self.path}: directory {parent} does not exist")
        if self.path.is_dir():
            raise AuditLogError(f"cannot open audit log {self.path}: it is a directory")
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, LOG_MODE)
        except OSError as exc:
            raise AuditLogError(
                f"cannot open audit log {self.path} for appending: {exc.strerror or exc}"
                f" (expected a writable file in a writable directory)"
            ) from exc
        try:
            size = os.fstat(fd).st_size
            if size and not _ends_with_newline(self.path, size):
                # A torn last line (a crash mid-write): end it, so new records start on a line of their own;
                # verify() still names the torn line.
                _write_all(fd, b"\n")
        except OSError as exc:
            os.close(fd)
            raise AuditLogError(f"cannot append to audit log {self.path}: {exc.strerror or exc}") from exc
        self._fd = fd

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record (see :meth:`write_many`)."""
        self.write_many([record])

    def write_many(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records, one line each, in a single ``os.write`` (then ``fsync`` when enabled).

        Every record must have exactly the fields of :data:`AUDIT_FIELDS`; ``time`` is filled in when
        ``None`` or absent.
        """
        data = b"".join(_encode(record) for record in records)
        if not data:
            return
        with self._lock:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            try:
                _write_all(self._fd, data)
                if self.fsync:
                    os.fsync(self._fd)
            except OSError as exc:
                raise AuditLogError(f"cannot append to audit log {self.path}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        """Close the file; a later write opens it again (in append mode)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)


def record(
    *,
    request_id: str,
    endpoint: str,
    request_sha256: str | None,
    model_version: str,
    status: int,
    company_id: str | None = None,
    score: float | None = None,
    probability: float | None = None,
) -> dict[str, Any]:
    """An audit record stamped with the current UTC time."""
    return {
        "time": utc_now(),
        "request_id": request_id,
        "endpoint": endpoint,
        "request_sha256": request_sha256,
        "model_version": model_version,
        "company_id": company_id,
        "score": score,
        "probability": probability,
        "status": status,
    }


def verify(path: str | Path) -> AuditCheck:
    """Read an audit log back; raise :class:`AuditFormatError` naming the first line that is not a record."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuditLogError(f"cannot read audit log {path}: {exc.strerror or exc}") from exc
    lines = data.split(b"\n")
    if lines[-1] != b"":
        raise AuditFormatError(
            "last line is not terminated (a torn write?)", path=path, line=len(lines), expected="'\\n'"
        )
    for number, raw in enumerate(lines[:-1], start=1):
        try:
            obj = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AuditFormatError(
                f"not valid JSON: {exc}", path=path, line=number, expected="one JSON object"
            ) from None
        if not isinstance(obj, dict):
            raise AuditFormatError(
                f"a JSON {type(obj).__name__}, not an object", path=path, line=number, expected="an object"
            )
        missing = [name for name in AUDIT_FIELDS if name not in obj]
        extra = sorted(set(obj) - set(AUDIT_FIELDS))
        if missing or extra:
            raise AuditFormatError(
                f"fields missing {missing} / unexpected {extra}",
                path=path,
                line=number,
                expected=f"exactly the fields {list(AUDIT_FIELDS)}",
            )
        if not isinstance(obj["status"], int) or not isinstance(obj["request_id"], str):
            raise AuditFormatError(
                "status is not an integer or request_id is not a string",
                path=path,
                line=number,
                expected="an HTTP status code and a request id",
            )
    return AuditCheck(path=path, records=len(lines) - 1)


def _encode(record: Mapping[str, Any]) -> bytes:
    fields = set(record)
    if fields - set(AUDIT_FIELDS) or (set(AUDIT_FIELDS) - {"time"}) - fields:
        raise ValueError(f"an audit record has exactly the fields {list(AUDIT_FIELDS)}, got {sorted(fields)}")
    out = {name: record.get(name) for name in AUDIT_FIELDS}
    if out["time"] is None:
        out["time"] = utc_now()
    for name in ("score", "probability"):
        value = out[name]
        if value is not None:
            value = float(value)
            out[name] = value if math.isfinite(value) else None
    # ensure_ascii keeps every line 7-bit clean; no raw newline can appear inside a JSON string.
    return json.dumps(out, separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _ends_with_newline(path: Path, size: int) -> bool:
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        return handle.read(1) == b"\n"
