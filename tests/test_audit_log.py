"""The append-only audit log: records, concurrency, append-only opening, startup errors, verify()."""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kgreason.finance.audit import AUDIT_FIELDS, AuditFormatError, AuditLog, AuditLogError, record, verify


def _record(i: int, *, company: str = "C0001", status: int = 200) -> dict:
    return record(
        request_id=f"req-{i}",
        endpoint="/score",
        request_sha256="ab" * 32,
        model_version="fake-1",
        status=status,
        company_id=company,
        score=0.25,
        probability=0.2,
    )


def test_round_trip_fields_and_utc_time(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.write(_record(1))
        log.write_many([_record(2, company="C0002"), _record(3, status=404, company=None)])
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    rows = [json.loads(line) for line in lines]
    assert [list(r) for r in rows] == [list(AUDIT_FIELDS)] * 3
    assert [r["company_id"] for r in rows] == ["C0001", "C0002", None]
    assert [r["status"] for r in rows] == [200, 200, 404]
    when = datetime.fromisoformat(rows[0]["time"])
    assert when.utcoffset() == timezone.utc.utcoffset(None)
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 60
    assert verify(path).records == 3


def test_concurrent_writers_produce_intact_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    logs = [AuditLog(path, fsync=False), AuditLog(path, fsync=False)]  # two descriptors, as two processes
    long_id = "X" * 3000  # lines longer than a pipe buffer's atomic size would tear if writes were split
    threads_n, per_thread = 8, 150

    def writer(t: int) -> None:
        log = logs[t % 2]
        for i in range(per_thread):
            log.write_many([_record(i, company=f"{long_id}-{t}-{i}-{k}") for k in range(3)])

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for log in logs:
        log.close()
    assert verify(path).records == threads_n * per_thread * 3
    seen = [json.loads(line)["company_id"] for line in path.read_text().splitlines()]
    assert sorted(seen) == sorted(
        f"{long_id}-{t}-{i}-{k}" for t in range(threads_n) for i in range(per_thread) for k in range(3)
    )
    # The three records of one write_many stay together.
    for first in range(0, len(seen), 3):
        stems = {s.rsplit("-", 1)[0] for s in seen[first : first + 3]}
        assert len(stems) == 1


def test_existing_log_is_only_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.write(_record(1))
    before = path.read_bytes()
    log = AuditLog(path)
    with open(path, "ab") as other:  # another writer appends after we opened: O_APPEND writes go after it
        other.write(json.dumps(_record(2)).encode() + b"\n")
    middle = path.read_bytes()
    log.write(_record(3))
    log.close()
    after = path.read_bytes()
    assert after.startswith(middle) and middle.startswith(before)
    assert [json.loads(line)["request_id"] for line in after.splitlines()] == ["req-1", "req-2", "req-3"]


def test_reopens_after_close(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.write(_record(1))
    log.close()
    log.write(_record(2))
    log.close()
    assert verify(path).records == 2


def test_torn_last_line_is_ended_and_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(json.dumps(_record(1)).encode() + b"\n" + b'{"time": "2025-01-0')
    with AuditLog(path) as log:
        log.write(_record(3))
    lines = path.read_bytes().split(b"\n")
    assert json.loads(lines[2])["request_id"] == "req-3"  # the new record is whole, on its own line
    with pytest.raises(AuditFormatError, match=r"audit\.jsonl, line 2: not valid JSON"):
        verify(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a": 1}\n', r"line 2: fields missing"),
        (b"[1, 2]\n", r"line 2: a JSON list, not an object"),
        (b"\n", r"line 2: not valid JSON"),
        (None, r"line 2: last line is not terminated"),
    ],
)
def test_verify_names_the_bad_line(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "audit.jsonl"
    good = json.dumps(_record(1)).encode() + b"\n"
    path.write_bytes(good + (content if content is not None else good[:-1]))
    with pytest.raises(AuditFormatError, match=message) as info:
        verify(path)
    assert str(path) in str(info.value)


def test_bad_record_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        with pytest.raises(ValueError, match="exactly the fields"):
            log.write_many([_record(1), {"request_id": "x"}])
        assert path.read_bytes() == b""


def test_absent_directory_fails_at_open(tmp_path: Path) -> None:
    with pytest.raises(AuditLogError, match=r"directory .*missing does not exist"):
        AuditLog(tmp_path / "missing" / "audit.jsonl")
    with pytest.raises(AuditLogError, match="is a directory"):
        AuditLog(tmp_path)


def test_read_only_directory_fails_at_open(tmp_path: Path) -> None:
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        if os.access(read_only, os.W_OK):  # root ignores permission bits: use a directory the kernel refuses
            read_only = Path("/sys")
        with pytest.raises(AuditLogError, match="cannot open audit log .* for appending"):
            AuditLog(read_only / "audit.jsonl")
        assert not (read_only / "audit.jsonl").exists()
    finally:
        (tmp_path / "ro").chmod(0o755)
