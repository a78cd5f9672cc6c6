"""The scoring REST service over a deterministic fake scorer: endpoints, errors, body limits, audit trail."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
import time
import types
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from kgreason.core.errors import ConfigError
from kgreason.finance.audit import AuditLogError, verify
from kgreason.finance.records import CompanyScore, Explanation, Reason, Scenario, WhatIf
from kgreason.finance.service import (
    CONFIG_ENV,
    app_from_env,
    canonical_sha256,
    create_app,
    load_scorer_factory,
    serve,
)

CRASH = "C0013"  # the fake scorer raises RuntimeError on this company


class FakeScorer:
    """Deterministic: probability from a hash of the id; fixed reasons; records every call it gets."""

    model_version = "fake-0001"

    def __init__(self, n: int = 40, *, delay_s: float = 0.0) -> None:
        self.ids = [f"C{i:04d}" for i in range(n)]
        self.calls: list[tuple[str, object]] = []
        self.delay_s = delay_s
        self._inside = 0
        self.max_inside = 0
        self._count_lock = threading.Lock()

    def company_ids(self) -> list[str]:
        return list(self.ids)

    @staticmethod
    def raw(company_id: str) -> float:
        return int.from_bytes(hashlib.sha256(company_id.encode()).digest()[:4], "big") / 2**32

    def _enter(self, name: str, arg: object) -> None:
        with self._count_lock:
            self._inside += 1
            self.max_inside = max(self.max_inside, self._inside)
        self.calls.append((name, arg))
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._count_lock:
            self._inside -= 1

    def _reasons(self, company_id: str) -> list[Reason]:
        return [
            Reason(f"F:f{k}", "feature", f"feature {k} of {company_id}", round(0.1 / (k + 1), 6))
            for k in range(10)
        ]

    def _check(self, ids: list[str]) -> None:
        unknown = [i for i in ids if i not in self.ids]
        if unknown:
            raise KeyError(f"unknown company id(s): {', '.join(unknown)}")
        if CRASH in ids:
            raise RuntimeError("model exploded")

    def score(self, company_ids: list[str], *, top_reasons: int = 3) -> list[CompanyScore]:
        self._enter("score", list(company_ids))
        self._check(company_ids)
        return [
            CompanyScore(
                c, self.raw(c), self.raw(c) * 0.9, self._reasons(c)[:top_reasons], self.model_version
            )
            for c in company_ids
        ]

    def explain(self, company_id: str, *, top: int = 10) -> Explanation:
        self._enter("explain", company_id)
        self._check([company_id])
        neighbour = Reason("N:owns:C0001", "neighbour", "Owned by C0001", -0.02)
        return Explanation(
            company_id,
            self.raw(company_id) * 0.9,
            self.model_version,
            self._reasons(company_id)[:top],
            [neighbour],
        )

    def what_if(self, company_id: str, scenario: Scenario) -> WhatIf:
        self._enter("what_if", (company_id, scenario))
        self._check([company_id])
        if scenario.target not in self.ids and scenario.kind != "set_feature":
            raise ValueError(f"{scenario.target} is not a neighbour of {company_id}")
        before = self.raw(company_id) * 0.9
        return WhatIf(company_id, scenario, before, min(1.0, before + 0.1), self.model_version)


@pytest.fixture
def scorer() -> FakeScorer:
    return FakeScorer()


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
def client(scorer: FakeScorer, audit_path: Path) -> TestClient:
    app = create_app(scorer, audit_log=audit_path, max_batch=4, max_body_bytes=2_000, audit_fsync=False)
    return TestClient(app)


def _audit(path: Path) -> list[dict]:
    verify(path)
    return [json.loads(line) for line in path.read_text().splitlines()]


# ------------------------------------------------------------------------------------------- happy paths
def test_score(client: TestClient, scorer: FakeScorer, audit_path: Path) -> None:
    body = {"top_reasons": 2, "company_ids": ["C0002", "C0001"]}
    response = client.post("/score", json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["model_version"] == "fake-0001"
    assert [s["company_id"] for s in out["scores"]] == ["C0002", "C0001"]
    assert out["scores"][0]["score"] == pytest.approx(FakeScorer.raw("C0002"))
    assert out["scores"][0]["probability"] == pytest.approx(FakeScorer.raw("C0002") * 0.9)
    assert [r["code"] for r in out["scores"][1]["reasons"]] == ["F:f0", "F:f1"]
    request_id = response.headers["x-request-id"]
    rows = _audit(audit_path)
    assert [(r["company_id"], r["status"], r["endpoint"]) for r in rows] == [
        ("C0002", 200, "/score"),
        ("C0001", 200, "/score"),
    ]
    assert {r["request_id"] for r in rows} == {request_id}
    assert rows[0]["request_sha256"] == canonical_sha256(body)
    assert rows[0]["probability"] == pytest.approx(out["scores"][0]["probability"])
    assert rows[0]["model_version"] == "fake-0001"
    # The service default top_reasons (3) when absent.
    default = client.post("/score", json={"company_ids": ["C0003"]}).json()
    assert len(default["scores"][0]["reasons"]) == 3
    assert scorer.calls == [("score", ["C0002", "C0001"]), ("score", ["C0003"])]


def test_explain(client: TestClient, audit_path: Path) -> None:
    response = client.get("/explain/C0005", params={"top": 2})
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["company_id"] == "C0005"
    assert [r["code"] for r in out["features"]] == ["F:f0", "F:f1"]
    assert out["neighbours"][0]["contribution"] == pytest.approx(-0.02)
    assert out["relations"] == [] and out["facts"] == []
    (row,) = _audit(audit_path)
    assert (row["endpoint"], row["company_id"], row["status"], row["score"]) == (
        "/explain",
        "C0005",
        200,
        None,
    )
    assert row["probability"] == pytest.approx(out["probability"])
    assert row["request_sha256"] == canonical_sha256({"company_id": "C0005", "top": "2"})


def test_whatif(client: TestClient, audit_path: Path) -> None:
    body = {"company_id": "C0003", "scenario": {"kind": "remove_edge", "target": "C0007", "relation": "owns"}}
    response = client.post("/whatif", json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["scenario"] == {"kind": "remove_edge", "target": "C0007", "relation": "owns", "value": None}
    assert out["delta"] == pytest.approx(out["after"] - out["before"])
    assert out["delta"] > 0
    (row,) = _audit(audit_path)
    assert (row["endpoint"], row["company_id"], row["status"]) == ("/whatif", "C0003", 200)
    assert row["probability"] == pytest.approx(out["after"])
    assert row["request_sha256"] == canonical_sha256(body)
    feature = {
        "company_id": "C0003",
        "scenario": {"kind": "set_feature", "target": "lawsuits_lost", "value": 0},
    }
    assert client.post("/whatif", json=feature).status_code == 200


def test_health(client: TestClient, audit_path: Path) -> None:
    out = client.get("/health").json()
    assert out["status"] == "ok" and out["model_version"] == "fake-0001" and out["companies"] == 40
    time.sleep(0.01)
    later = client.get("/health").json()
    assert 0.01 <= later["uptime_s"] - out["uptime_s"] < 5 and out["uptime_s"] < 60  # seconds since startup
    assert audit_path.read_bytes() == b""  # health is not audited


def test_openapi_documents_every_endpoint(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/score", "/explain/{company_id}", "/whatif", "/health"}
    schemas = spec["components"]["schemas"]
    for name in (
        "ScoreRequest",
        "ScoreResponse",
        "CompanyScoreModel",
        "ExplanationModel",
        "WhatIfRequest",
        "WhatIfResponse",
        "ScenarioModel",
        "HealthResponse",
        "ErrorResponse",
    ):
        assert schemas[name]["description"], name
    request = schemas["ScoreRequest"]
    assert request["properties"]["company_ids"]["maxItems"] == 4  # this app's max_batch
    assert request["examples"]
    assert set(schemas["ScenarioModel"]["properties"]["kind"]["enum"]) == {
        "neighbour_defaults",
        "neighbour_survives",
        "remove_edge",
        "set_feature",
    }
    score_responses = spec["paths"]["/score"]["post"]["responses"]
    assert {"200", "404", "413", "422", "500"} <= set(score_responses)


def test_request_id_from_client_is_kept_or_replaced(client: TestClient) -> None:
    kept = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"
    replaced = client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"
    assert len(replaced.headers["x-request-id"]) == 32


# ------------------------------------------------------------------------------------------------ errors
def test_unknown_ids_are_404_and_not_scored(client: TestClient, scorer: FakeScorer, audit_path: Path) -> None:
    response = client.post("/score", json={"company_ids": ["C0001", "C9999", "nope"]})
    assert response.status_code == 404
    assert response.json()["detail"] == "unknown company id(s): C9999, nope"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    explain = client.get("/explain/C9999")
    assert explain.status_code == 404 and "C9999" in explain.json()["detail"]
    whatif = client.post(
        "/whatif", json={"company_id": "C9999", "scenario": {"kind": "remove_edge", "target": "C1"}}
    )
    assert whatif.status_code == 404
    assert scorer.calls == []
    rows = _audit(audit_path)
    assert [(r["endpoint"], r["status"], r["company_id"], r["probability"]) for r in rows] == [
        ("/score", 404, None, None),
        ("/explain", 404, "C9999", None),
        ("/whatif", 404, "C9999", None),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"company_ids": []}, "at least 1 item"),
        ({"company_ids": ["C0001", "C0002", "C0001"]}, "duplicate company ids: C0001"),
        ({"company_ids": ["C0001", "C0002", "C0003", "C0004", "C0005"]}, "at most 4 items"),
        ({"company_ids": ["C0001"], "top_reasons": 11}, "less than or equal to 10"),
        ({"company_ids": ["C0001"], "top_reasons": -1}, "greater than or equal to 0"),
        ({"company_ids": ["C0001"], "top_reasons": "many"}, "valid integer"),
        ({"company_ids": [""]}, "at least 1 character"),
        ({"company_ids": "C0001"}, "valid list"),
        ({"company_id": ["C0001"]}, "Field required"),
        ({"company_ids": ["C0001"], "extra": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_score_requests_are_422(
    client: TestClient, scorer: FakeScorer, audit_path: Path, body: dict, message: str
) -> None:
    response = client.post("/score", json=body)
    assert response.status_code == 422
    assert message in json.dumps(response.json()["detail"])
    assert scorer.calls == []
    (row,) = _audit(audit_path)
    assert (row["endpoint"], row["status"], row["company_id"]) == ("/score", 422, None)
    assert row["request_sha256"] == canonical_sha256(body)


def test_body_that_is_not_json_is_422(client: TestClient, scorer: FakeScorer, audit_path: Path) -> None:
    raw = b'{"company_ids": ["C0001"'
    response = client.post("/score", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "JSON decode error" in response.text
    assert scorer.calls == []
    assert _audit(audit_path)[0]["request_sha256"] == hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize("top", ["-1", "101", "x"])
def test_bad_explain_top_is_422(client: TestClient, scorer: FakeScorer, audit_path: Path, top: str) -> None:
    response = client.get("/explain/C0001", params={"top": top})
    assert response.status_code == 422
    assert scorer.calls == []
    (row,) = _audit(audit_path)
    assert (row["endpoint"], row["status"], row["company_id"]) == ("/explain", 422, "C0001")


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ({"kind": "explode", "target": "C0001"}, "neighbour_defaults"),
        ({"kind": "set_feature", "target": "lawsuits_lost"}, "set_feature needs a 'value'"),
        ({"kind": "neighbour_defaults", "target": "C0001", "value": 1.0}, "takes no 'value'"),
        ({"kind": "neighbour_survives", "target": "C0001", "relation": "owns"}, "takes no 'relation'"),
        ({"kind": "neighbour_defaults", "target": ""}, "at least 1 character"),
        (
            {"kind": "remove_edge", "target": "stranger"},
            "stranger is not a neighbour of C0002",
        ),  # the scorer's
    ],
)
def test_bad_scenarios_are_422(client: TestClient, audit_path: Path, scenario: dict, message: str) -> None:
    response = client.post("/whatif", json={"company_id": "C0002", "scenario": scenario})
    assert response.status_code == 422
    assert message in json.dumps(response.json()["detail"])
    (row,) = _audit(audit_path)
    assert (row["endpoint"], row["status"], row["company_id"], row["probability"]) == (
        "/whatif",
        422,
        "C0002",
        None,
    )


def test_scorer_crash_is_500_with_request_id(
    client: TestClient, audit_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="kgreason.finance.service"):
        response = client.post("/score", json={"company_ids": ["C0001", CRASH]})
        explain = client.get(f"/explain/{CRASH}")
    assert response.status_code == 500 and explain.status_code == 500
    request_id = response.headers["x-request-id"]
    assert response.json() == {
        "detail": f"internal error (request id {request_id})",
        "request_id": request_id,
    }
    assert any(request_id in r.getMessage() and "model exploded" in r.exc_text for r in caplog.records)
    rows = _audit(audit_path)
    assert [(r["request_id"], r["status"], r["company_id"]) for r in rows] == [
        (request_id, 500, None),
        (explain.headers["x-request-id"], 500, CRASH),
    ]


def test_scorer_returning_garbage_is_500(audit_path: Path) -> None:
    class Lying(FakeScorer):
        def score(self, company_ids, *, top_reasons=3):
            return super().score(company_ids[:1], top_reasons=top_reasons)

    client = TestClient(create_app(Lying(), audit_log=audit_path, audit_fsync=False))
    response = client.post("/score", json={"company_ids": ["C0001", "C0002"]})
    assert response.status_code == 500
    assert [r["status"] for r in _audit(audit_path)] == [500]


# ------------------------------------------------------------------------- the audit log is the truth
def _audited_as_answered(response: httpx.Response, audit_path: Path, endpoint: str) -> dict:
    """The one audit record of ``response``: the status and request id the client got, and a JSON error."""
    request_id = response.headers["x-request-id"]
    assert response.headers["content-type"] == "application/json"
    assert response.json()["request_id"] == request_id
    (row,) = _audit(audit_path)
    assert (row["request_id"], row["status"], row["endpoint"]) == (request_id, response.status_code, endpoint)
    return row


JSON = {"content-type": "application/json"}


@pytest.fixture
def roomy(scorer: FakeScorer, audit_path: Path) -> TestClient:
    """A client whose body limit lets 5,000-deep bodies and 5,000-digit numbers through to the JSON checks."""
    return TestClient(create_app(scorer, audit_log=audit_path, max_body_bytes=20_000, audit_fsync=False))


@pytest.mark.parametrize(
    ("endpoint", "raw", "name"),
    [
        ("/score", b'{"company_ids": ["C0001"], "top_reasons": NaN}', "NaN"),
        ("/score", b'{"company_ids": ["C0001"], "top_reasons": -Infinity}', "-Infinity"),
        ("/score", b'{"company_ids": ["C0001"], "top_reasons": 1e400}', "1e400"),
        ("/score", b'{"company_ids": ["C0001"], "extra": [NaN]}', "NaN"),
        (
            "/whatif",
            b'{"company_id": "C0001", "scenario": {"kind": "set_feature", "target": "x", "value": Infinity}}',
            "Infinity",
        ),
    ],
)
def test_non_finite_numbers_are_422_and_audited_as_answered(
    client: TestClient, scorer: FakeScorer, audit_path: Path, endpoint: str, raw: bytes, name: str
) -> None:
    response = client.post(endpoint, content=raw, headers={**JSON, "x-request-id": "nan-1"})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["type"] == "finite_number" and error["msg"].startswith(f"{name} is not a finite number")
    assert scorer.calls == []
    row = _audited_as_answered(response, audit_path, endpoint)
    assert row["request_id"] == "nan-1"
    assert row["request_sha256"] == hashlib.sha256(raw).hexdigest()  # not strict JSON: the bytes as sent
    assert row["company_id"] == ("C0001" if endpoint == "/whatif" else None)


@pytest.mark.parametrize("depth", [5_000, 33])
def test_deeply_nested_body_is_422_and_audited_as_answered(
    roomy: TestClient, scorer: FakeScorer, audit_path: Path, depth: int
) -> None:
    raw = b'{"company_ids": ' + b"[" * depth + b"]" * depth + b"}"
    response = roomy.post("/score", content=raw, headers=JSON)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["type"] == "json_too_deep" and "at most 32 levels" in error["msg"]
    assert scorer.calls == []
    _audited_as_answered(response, audit_path, "/score")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"company_ids": ["\xff"]}', "not a JSON body"),
        (b'{"top_reasons": ' + b"1" * 5_000 + b"}", "not a JSON body"),
    ],
)
def test_body_that_does_not_decode_is_422_and_audited_as_answered(
    roomy: TestClient, audit_path: Path, raw: bytes, message: str
) -> None:
    response = roomy.post("/score", content=raw, headers=JSON)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"][0]["msg"]
    row = _audited_as_answered(response, audit_path, "/score")
    assert row["request_sha256"] == hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize(
    ("method", "path", "endpoint"), [("GET", "/score", "/score"), ("PUT", "/explain/C0001", "/explain")]
)
def test_framework_answers_are_audited_as_answered(
    client: TestClient, audit_path: Path, method: str, path: str, endpoint: str
) -> None:
    response = client.request(method, path, headers={"x-request-id": "frame-1"})
    assert response.status_code == 405
    row = _audited_as_answered(response, audit_path, endpoint)
    assert row["request_id"] == "frame-1"


def test_crash_outside_the_scorer_is_500_json_and_audited_as_answered(
    client: TestClient, audit_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kgreason.finance.service as service_module

    real = service_module._request_sha
    calls: list[str] = []

    def crashes_once(request, endpoint: str):
        calls.append(endpoint)
        if len(calls) == 1:
            raise RuntimeError("hashing exploded")
        return real(request, endpoint)

    monkeypatch.setattr(service_module, "_request_sha", crashes_once)
    response = client.post("/score", json={"company_ids": ["C0001"]})
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert response.json()["detail"] == f"internal error (request id {request_id})"
    _audited_as_answered(response, audit_path, "/score")


def test_every_answer_is_audited_with_its_status_and_request_id(client: TestClient, audit_path: Path) -> None:
    """A mixed run: the audit log, read back, has every (request id, status) the clients got, in order."""
    answers = [
        client.post("/score", json={"company_ids": ["C0001"]}),
        client.post("/score", content=b'{"company_ids": ["C0001"], "top_reasons": NaN}', headers=JSON),
        client.post("/score", content=b"[" * 999 + b"]" * 999, headers=JSON),
        client.post("/score", json={"company_ids": ["C9999"]}),
        client.post("/score", content=b'{"company_ids": [', headers=JSON),
        client.get("/explain/C0002"),
        client.get("/score"),
        client.post("/whatif", content=b'{"company_id": "C0001", "scenario": Infinity}', headers=JSON),
        client.post("/score", json={"company_ids": [f"C{i:04d}" for i in range(400)]}),
    ]
    got = [(r.headers["x-request-id"], r.status_code) for r in answers]
    assert [status for _, status in got] == [200, 422, 422, 404, 422, 200, 405, 422, 413]
    assert [(row["request_id"], row["status"]) for row in _audit(audit_path)] == got


# ------------------------------------------------------------------------------------------- body limits
def test_body_limit_is_inclusive(scorer: FakeScorer, audit_path: Path) -> None:
    body = json.dumps({"company_ids": ["C0001"]}).encode()
    headers = {"content-type": "application/json"}
    at_limit = TestClient(
        create_app(scorer, audit_log=audit_path, max_body_bytes=len(body), audit_fsync=False)
    )
    assert at_limit.post("/score", content=body, headers=headers).status_code == 200
    over = TestClient(
        create_app(scorer, audit_log=audit_path, max_body_bytes=len(body) - 1, audit_fsync=False)
    )
    response = over.post("/score", content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["detail"] == f"request body over {len(body) - 1} bytes"
    assert [r["status"] for r in _audit(audit_path)] == [200, 413]


def test_oversized_body_is_413_by_content_length(
    client: TestClient, scorer: FakeScorer, audit_path: Path
) -> None:
    ids = [f"C{i:04d}" for i in range(400)]  # > 2000 bytes (and too many ids: the size is checked first)
    response = client.post("/score", json={"company_ids": ids})
    assert response.status_code == 413
    assert scorer.calls == []
    (row,) = _audit(audit_path)
    assert (row["endpoint"], row["status"], row["request_sha256"]) == ("/score", 413, None)


def test_oversized_chunked_body_is_413(client: TestClient, scorer: FakeScorer) -> None:
    def chunks():
        yield b'{"company_ids": ["C0001"'
        for _ in range(100):
            yield b', "C0002"' * 5

    response = client.post("/score", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert scorer.calls == []


def test_streamed_body_stops_being_read_at_the_limit(scorer: FakeScorer, audit_path: Path) -> None:
    """At the ASGI level: no Content-Length, 100-byte chunks, limit 250: the third chunk is the last read."""
    import anyio

    app = create_app(scorer, audit_log=audit_path, max_body_bytes=250, audit_fsync=False)
    read = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": b" " * 100, "more_body": read < 1000}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/score",
        "raw_path": b"/score",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    anyio.run(app, scope, receive, send)
    assert read == 3
    assert sent[0]["status"] == 413
    assert scorer.calls == []


# ---------------------------------------------------------------------------------------------- audit log
def test_audit_log_is_appended_across_app_instances(scorer: FakeScorer, audit_path: Path) -> None:
    first = TestClient(create_app(scorer, audit_log=audit_path))
    assert first.post("/score", json={"company_ids": ["C0001", "C0002", "C0003"]}).status_code == 200
    before = audit_path.read_bytes()
    second = TestClient(create_app(FakeScorer(), audit_log=audit_path))
    assert second.post("/score", json={"company_ids": ["C0004"]}).status_code == 200
    assert second.get("/explain/C0005").status_code == 200
    after = audit_path.read_bytes()
    assert after.startswith(before)
    assert [r["company_id"] for r in _audit(audit_path)] == ["C0001", "C0002", "C0003", "C0004", "C0005"]


def test_audit_directory_problems_fail_at_startup(scorer: FakeScorer, tmp_path: Path) -> None:
    with pytest.raises(AuditLogError, match="does not exist"):
        create_app(scorer, audit_log=tmp_path / "missing" / "audit.jsonl")
    with pytest.raises(AuditLogError, match="for appending"):
        create_app(scorer, audit_log="/sys/kgreason-audit.jsonl")  # refused even to root


def test_unwritable_audit_log_fails_the_request(
    client: TestClient, audit_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    audit = client.app.state.service.audit

    def broken(records) -> None:
        list(records)
        raise AuditLogError("disk full")

    monkeypatch.setattr(audit, "write_many", broken)
    response = client.post("/score", json={"company_ids": ["C0001"]})
    assert response.status_code == 500  # nothing is served unaudited


def test_bad_settings(scorer: FakeScorer, audit_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_batch"):
        create_app(scorer, audit_log=audit_path, max_batch=0)
    with pytest.raises(ConfigError, match="top_reasons"):
        create_app(scorer, audit_log=audit_path, top_reasons=11)
    with pytest.raises(TypeError, match="Scorer"):
        create_app(object(), audit_log=audit_path)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- serving / workers
def test_worker_factory_and_serve_checks(audit_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("kgreason_test_scorers")
    module.make = FakeScorer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kgreason_test_scorers", module)
    assert isinstance(load_scorer_factory("kgreason_test_scorers:make")(), FakeScorer)
    with pytest.raises(ConfigError, match="no callable 'missing'"):
        load_scorer_factory("kgreason_test_scorers:missing")
    with pytest.raises(ConfigError, match="cannot import"):
        load_scorer_factory("kgreason_no_such_module:make")
    with pytest.raises(ConfigError, match="import string"):
        serve(FakeScorer(), audit_log=audit_path, workers=2)
    settings = {"scorer": "kgreason_test_scorers:make", "audit_log": str(audit_path), "max_batch": 2}
    monkeypatch.setenv(CONFIG_ENV, json.dumps(settings))
    client = TestClient(app_from_env())
    assert client.post("/score", json={"company_ids": ["C0001", "C0002", "C0003"]}).status_code == 422
    assert client.get("/health").json()["companies"] == 40


def test_real_server_serializes_scorer_calls_and_rejects_chunked(audit_path: Path) -> None:
    """uvicorn on a loopback port: concurrent requests never enter the scorer together; chunked 413 over HTTP."""
    import uvicorn

    scorer = FakeScorer(delay_s=0.005)
    app = create_app(scorer, audit_log=audit_path, max_body_bytes=1_000, audit_fsync=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        failures: list[str] = []

        def worker(k: int) -> None:
            with httpx.Client(base_url=base, timeout=10) as http:
                for i in range(5):
                    ids = [f"C{(k * 5 + i + j) % 40:04d}" for j in range(2) if (k * 5 + i + j) % 40 != 13]
                    response = http.post("/score", json={"company_ids": ids})
                    if response.status_code != 200:
                        failures.append(response.text)

        workers = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert failures == []
        assert scorer.max_inside == 1  # the lock: never two scorer calls at once
        assert len(scorer.calls) == 40

        def chunks():
            for _ in range(50):
                yield b" " * 100

        with httpx.Client(base_url=base, timeout=10) as http:
            response = http.post("/score", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert response.request.headers.get("transfer-encoding") == "chunked"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    rows = _audit(audit_path)
    assert sum(r["status"] == 200 for r in rows) == sum(len(ids) for _, ids in scorer.calls)
    assert rows[-1]["status"] == 413
