"""The risk-scoring REST service: FastAPI over any :class:`~kgreason.finance.records.Scorer`, with an audit log.

Endpoints (OpenAPI at ``/openapi.json``, docs at ``/docs``)::

    POST /score               {"company_ids": [...], "top_reasons": 3}    -> {"model_version", "scores": [...]}
    GET  /explain/{id}?top=10                                              -> Explanation
    POST /whatif              {"company_id", "scenario": {...}}            -> WhatIf (with "delta")
    GET  /health                                                           -> {"status", "model_version", ...}

Errors: unknown company id 404; invalid request 422 (FastAPI's list of errors, duplicates / sizes / scenarios
with our messages; a body with ``NaN`` / ``Infinity`` / a number that overflows to infinity, or nested deeper
than :data:`MAX_JSON_DEPTH`, is a 422 too); body over ``max_body_bytes`` 413 (Content-Length and the streamed
body both count); anything else the scorer (or the app) raises 500 with the request id, logged. Every error is
a JSON object with ``detail`` and ``request_id``, and every response carries ``X-Request-ID`` (the client's,
when it sends a plain one, else a new one).

Audit: every ``/score``, ``/explain`` and ``/whatif`` request is written to the append-only log
(:class:`~kgreason.finance.audit.AuditLog`) before the response is sent: one record per company scored on
success (``/explain``: the probability; ``/whatif``: the probability after the scenario), one record with the
status on failure. The record has exactly the status and the request id the client gets: the middleware sees
the status of every response it sends and audits any answer not audited yet (a 400 of the framework, a 405,
a crash outside the scorer call). ``request_sha256`` hashes the canonical JSON of the request (``/explain``:
of ``{"company_id", **query}``; a body that is not strict JSON, or too deep to parse: its raw bytes; 413:
none). When the audit of a success cannot be written, the request fails with 500: nothing is served
unaudited.

Concurrency: the endpoints are sync (FastAPI's threadpool), but the scorer is assumed not thread-safe, so every
scorer call is made on one dedicated worker thread per app (``scorer_thread_safe=True`` calls it in place).
One thread also keeps PyTorch's CPU thread pool and the allocator's arenas from multiplying with the threadpool's
threads, which made a served model slower and its memory grow. To use more
cores, run several worker processes (``serve(..., workers=n)``), each with its own scorer; their appends to one
audit log do not interleave (each request's records are one ``O_APPEND`` write). The set of company ids is read
from the scorer once, when the app is created.
"""

import contextlib
import hashlib
import importlib
import json
import logging
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from kgreason.core.errors import ConfigError
from kgreason.finance.audit import AuditLog, record
from kgreason.finance.records import REASON_KINDS, SCENARIOS, FeatureOverrideError, Scenario, Scorer

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from starlette.responses import Response

logger = logging.getLogger(__name__)

#: The most reasons a client may ask for per company (``top_reasons``).
MAX_TOP_REASONS = 10
#: The most attributions per kind a client may ask for (``/explain?top=``).
MAX_EXPLAIN_TOP = 100
#: The deepest nesting of arrays / objects a request body may have (ours need 3).
MAX_JSON_DEPTH = 32
#: The environment variable that carries :func:`serve`'s settings to worker processes.
CONFIG_ENV = "KGREASON_SERVICE_CONFIG"
AUDITED = ("/score", "/explain", "/whatif")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SHOWN_IDS = 20

CompanyId = Annotated[str, StringConstraints(min_length=1, max_length=512)]


# ----------------------------------------------------------------------------------------------- models
class ReasonModel(BaseModel):
    """One reason behind a score."""

    model_config = ConfigDict(title="Reason")
    code: str = Field(description="Stable reason code.", examples=["N:guarantees:C0042"])
    kind: str = Field(description=f"One of {', '.join(REASON_KINDS)}.", examples=["neighbour"])
    text: str = Field(
        description="The reason in plain words.", examples=["Guarantees C0042, which defaulted"]
    )
    contribution: float = Field(
        description="Change of the default probability this part causes.", examples=[0.12]
    )


class CompanyScoreModel(BaseModel):
    """The score of one company."""

    model_config = ConfigDict(title="CompanyScore")
    company_id: str = Field(description="The company's key in the graph.", examples=["C0042"])
    score: float = Field(description="The model's raw default probability.", examples=[0.31])
    probability: float = Field(description="The calibrated default probability.", examples=[0.27])
    reasons: list[ReasonModel] = Field(description="Top reasons raising the risk, largest first.")
    model_version: str = Field(description="Model name + short weights hash.", examples=["gnn-1a2b3c4d"])


class ScoreResponse(BaseModel):
    """Scores of the requested companies, in request order."""

    model_config = ConfigDict(title="ScoreResponse")
    model_version: str = Field(description="The model that scored.", examples=["gnn-1a2b3c4d"])
    scores: list[CompanyScoreModel] = Field(description="One score per requested company, in order.")


class ExplanationModel(BaseModel):
    """All attributions of one company's score, ranked by absolute contribution within each kind."""

    model_config = ConfigDict(title="Explanation")
    company_id: str = Field(examples=["C0042"])
    probability: float = Field(description="The calibrated default probability.", examples=[0.27])
    model_version: str = Field(examples=["gnn-1a2b3c4d"])
    features: list[ReasonModel] = Field(description="Tabular-feature attributions.")
    neighbours: list[ReasonModel] = Field(description="Neighbour (graph node) attributions.")
    relations: list[ReasonModel] = Field(description="Relation-type attributions.")
    facts: list[ReasonModel] = Field(description="Text-fact (sentence) attributions.")


class ScenarioModel(BaseModel):
    """An intervention on the graph before re-scoring a company."""

    model_config = ConfigDict(
        title="Scenario",
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"kind": "neighbour_defaults", "target": "C0042"},
                {"kind": "remove_edge", "target": "C0042", "relation": "guarantees"},
                {"kind": "set_feature", "target": "lawsuits_lost", "value": 0.0},
            ]
        },
    )
    kind: Literal[SCENARIOS] = Field(  # type: ignore[valid-type]
        description=f"One of {', '.join(SCENARIOS)}.", examples=["neighbour_defaults"]
    )
    target: CompanyId = Field(
        description="The neighbour's key (neighbour_*, remove_edge) or the feature name (set_feature).",
        examples=["C0042"],
    )
    relation: str | None = Field(
        default=None,
        min_length=1,
        description="remove_edge only: the relation of the edge to remove (absent: every edge to target).",
        examples=["guarantees"],
    )
    value: float | None = Field(
        default=None, allow_inf_nan=False, description="set_feature only: the feature's new value."
    )

    @model_validator(mode="after")
    def _fits_kind(self) -> "ScenarioModel":
        if self.kind == "set_feature" and self.value is None:
            raise ValueError("scenario set_feature needs a 'value'")
        if self.kind != "set_feature" and self.value is not None:
            raise ValueError(f"scenario {self.kind} takes no 'value' (only set_feature does)")
        if self.kind != "remove_edge" and self.relation is not None:
            raise ValueError(f"scenario {self.kind} takes no 'relation' (only remove_edge does)")
        return self


class WhatIfRequest(BaseModel):
    """A company and a scenario to re-score it under."""

    model_config = ConfigDict(
        title="WhatIfRequest",
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"company_id": "C0001", "scenario": {"kind": "neighbour_defaults", "target": "C0042"}}
            ]
        },
    )
    company_id: CompanyId = Field(description="The company to re-score.", examples=["C0001"])
    scenario: ScenarioModel


class WhatIfResponse(BaseModel):
    """A company's calibrated probability before and after a scenario."""

    model_config = ConfigDict(title="WhatIf")
    company_id: str = Field(examples=["C0001"])
    scenario: ScenarioModel
    before: float = Field(description="Calibrated probability before the scenario.", examples=[0.2])
    after: float = Field(description="Calibrated probability after the scenario.", examples=[0.35])
    delta: float = Field(description="after - before.", examples=[0.15])
    model_version: str = Field(examples=["gnn-1a2b3c4d"])


class HealthResponse(BaseModel):
    """The service is up; which model it serves."""

    model_config = ConfigDict(title="Health")
    status: Literal["ok"] = Field(examples=["ok"])
    model_version: str = Field(examples=["gnn-1a2b3c4d"])
    companies: int = Field(description="How many companies the model can score.", examples=[5000])
    uptime_s: float = Field(description="Seconds since the app was created.", examples=[12.5])


class ErrorResponse(BaseModel):
    """An error: what went wrong, and the request id to find it in the logs and the audit log."""

    model_config = ConfigDict(title="Error")
    detail: str = Field(examples=["unknown company id(s): C9999"])
    request_id: str = Field(examples=["5f0c2a6f3b1e4d2c9a8b7c6d5e4f3a2b"])


def _score_request_model(max_batch: int) -> type[BaseModel]:
    """The /score body, with this app's batch limit (so OpenAPI shows it)."""

    class ScoreRequest(BaseModel):
        """Companies to score (unique ids), and how many reasons to give for each."""

        model_config = ConfigDict(
            title="ScoreRequest",
            extra="forbid",
            json_schema_extra={"examples": [{"company_ids": ["C0001", "C0042"], "top_reasons": 3}]},
        )
        company_ids: list[CompanyId] = Field(
            min_length=1,
            max_length=max_batch,
            description=f"1 to {max_batch} unique company ids.",
            examples=[["C0001", "C0042"]],
        )
        top_reasons: int | None = Field(
            default=None,
            ge=0,
            le=MAX_TOP_REASONS,
            description=f"Reasons per company, 0 to {MAX_TOP_REASONS} (absent: the service's default).",
            examples=[3],
        )
        features: dict[CompanyId, dict[str, float]] | None = Field(
            default=None,
            description="Feature values to use instead of the graph's, for this call only: "
            "{company_id: {feature: value}} for companies of company_ids (what `kgreason finance score` "
            "reads from a CSV's extra columns).",
            examples=[{"C0001": {"paid_in_capital": 2.5}}],
        )

        @field_validator("company_ids")
        @classmethod
        def _unique(cls, ids: list[str]) -> list[str]:
            seen: set[str] = set()
            duplicates = sorted({i for i in ids if i in seen or seen.add(i)})
            if duplicates:
                raise ValueError(f"duplicate company ids: {_show(duplicates)}")
            return ids

    return ScoreRequest


# ------------------------------------------------------------------------------------------- app plumbing
class _Fail(Exception):
    """A request that fails with ``status`` and ``content`` (our decision, not a crash)."""

    def __init__(self, status: int, content: dict[str, Any]) -> None:
        super().__init__(status, content)
        self.status = status
        self.content = content


@dataclass
class _Service:
    scorer: Scorer
    audit: AuditLog
    known: frozenset[str]
    #: one worker thread that makes every scorer call (``None``: a thread-safe scorer, called in place)
    worker: ThreadPoolExecutor | None
    top_reasons: int
    started: float

    @property
    def model_version(self) -> str:
        return str(self.scorer.model_version)

    def audit_failure(
        self, *, request_id: str, endpoint: str, sha: str | None, status: int, company_id: str | None
    ) -> None:
        """Record a failed request; an audit log that cannot be written is logged, not raised again."""
        try:
            self.audit.write(
                record(
                    request_id=request_id,
                    endpoint=endpoint,
                    request_sha256=sha,
                    model_version=self.model_version,
                    status=status,
                    company_id=company_id,
                )
            )
        except Exception:
            logger.exception("request %s: cannot write the failure audit record", request_id)

    def handle(
        self,
        request: "Request",
        *,
        endpoint: str,
        company_id: str | None,
        sha: str | None,
        work: Callable[[], tuple[BaseModel, list[dict[str, Any]]]],
    ) -> "Response":
        """Run ``work`` (-> validated response, audit rows), audit, and answer; failures answered and audited."""
        from starlette.responses import JSONResponse, Response

        request_id = request.state.request_id
        try:
            body, rows = work()
            content = body.model_dump_json()
            request.state.audited = 200
            self.audit.write_many(
                record(
                    request_id=request_id,
                    endpoint=endpoint,
                    request_sha256=sha,
                    model_version=self.model_version,
                    status=200,
                    **row,
                )
                for row in rows
            )
            return Response(content=content, media_type="application/json")
        except _Fail as fail:
            response = JSONResponse(
                status_code=fail.status, content=_json_safe({**fail.content, "request_id": request_id})
            )
            status = fail.status
        except Exception:
            logger.exception("request %s: %s failed", request_id, endpoint)
            response = _internal_error(request_id)
            status = 500
        self.audit_failure(
            request_id=request_id, endpoint=endpoint, sha=sha, status=status, company_id=company_id
        )
        request.state.audited = status
        return response

    def check_known(self, ids: Sequence[str]) -> None:
        unknown = [i for i in ids if i not in self.known]
        if unknown:
            raise _Fail(404, {"detail": f"unknown company id(s): {_show(unknown)}"})

    def call(self, fn: Callable[[], Any]) -> Any:
        """Call the scorer on the service's one worker thread; its ``KeyError`` (unknown ids) becomes 404."""
        try:
            if self.worker is None:
                return fn()
            return self.worker.submit(fn).result()
        except FeatureOverrideError as exc:
            raise _Fail(422, {"detail": str(exc)}) from exc
        except KeyError as exc:
            message = str(exc.args[0]) if exc.args else ""
            if not message.startswith("unknown company id"):
                message = f"unknown company id(s): {message}"
            raise _Fail(404, {"detail": message}) from exc


class _RequestGuard:
    """ASGI middleware: request ids, the body limit (Content-Length and streamed bytes), the raw body kept,
    JSON the app must not see (non-finite numbers, too deep), and the audit of every answer.

    The body is read here, counted chunk by chunk (a chunked request has no Content-Length), and replayed to
    the app; over the limit the app is never called and the answer is 413. A body of an audited endpoint that
    holds ``NaN`` / ``Infinity`` or nests deeper than :data:`MAX_JSON_DEPTH` is answered 422 here. An audited
    request whose response starts with a status that was not audited (``scope["state"]["audited"]``) is
    audited (``on_answer``) before the status is sent; an exception out of the app is answered 500 (JSON, with
    the request id) when no response has started.
    """

    def __init__(
        self, app: Any, *, max_body_bytes: int, on_answer: Callable[[dict[str, Any], int], None]
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.on_answer = on_answer

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        from starlette.concurrency import run_in_threadpool

        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["audited"] = None  # the status of the audit record of this request, once written
        endpoint, _ = _audited(scope.get("path", ""))
        started = False

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if endpoint is not None and state.get("audited") != message["status"]:
                    await run_in_threadpool(self.on_answer, scope, message["status"])
                    state["audited"] = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())],
                }
            await send(message)

        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await self._answer(send_with_id, 400, f"bad Content-Length header {length!r}", request_id)
                return
            if int(length) > self.max_body_bytes:
                await self._reject(scope, send_with_id, request_id)
                return
        chunks: list[bytes] = []
        total = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_body_bytes:
                await self._reject(scope, send_with_id, request_id)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        state["raw_body"] = body
        if endpoint in ("/score", "/whatif") and body:
            problem = _json_problem(body)
            if problem is not None:
                await self._answer(send_with_id, 422, [problem], request_id)
                return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            await self.app(scope, replay, send_with_id)
        except Exception:
            if started:
                raise
            logger.exception("request %s: %s failed", request_id, scope.get("path", ""))
            await self._answer(send_with_id, 500, f"internal error (request id {request_id})", request_id)

    async def _reject(self, scope: dict[str, Any], send: Callable, request_id: str) -> None:
        await self._answer(send, 413, f"request body over {self.max_body_bytes} bytes", request_id)

    @staticmethod
    async def _answer(send: Callable, status: int, detail: Any, request_id: str) -> None:
        payload = json.dumps({"detail": detail, "request_id": request_id}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


# ------------------------------------------------------------------------------------------------ the app
def _check_app_settings(scorer: Scorer, max_batch: int, max_body_bytes: int, top_reasons: int) -> None:
    """Refuse a scorer that is not a :class:`Scorer` and out-of-range limits."""
    if not isinstance(scorer, Scorer):
        raise TypeError(f"scorer must implement kgreason.finance.records.Scorer, got {type(scorer).__name__}")
    if not (isinstance(max_batch, int) and max_batch >= 1):
        raise ConfigError(f"max_batch must be a positive integer, got {max_batch!r}")
    if not (isinstance(max_body_bytes, int) and max_body_bytes >= 1):
        raise ConfigError(f"max_body_bytes must be a positive integer, got {max_body_bytes!r}")
    if not (isinstance(top_reasons, int) and 0 <= top_reasons <= MAX_TOP_REASONS):
        raise ConfigError(f"top_reasons must be an integer in 0..{MAX_TOP_REASONS}, got {top_reasons!r}")


def _add_guard(app: "FastAPI", service: _Service, max_body_bytes: int) -> None:
    """Add the request guard, which audits every answer no endpoint audited."""
    from fastapi import Request

    def audit_answer(scope: dict[str, Any], status: int) -> None:
        """Audit an answer no endpoint audited (the middleware's own, the framework's, a crash)."""
        request = Request(scope)
        endpoint, company_id = _audited(request.url.path)
        if endpoint is None:
            return
        if endpoint == "/whatif":
            company_id = _body_company_id(request)
        service.audit_failure(
            request_id=request.state.request_id,
            endpoint=endpoint,
            sha=_request_sha(request, endpoint),
            status=status,
            company_id=company_id,
        )

    app.add_middleware(_RequestGuard, max_body_bytes=max_body_bytes, on_answer=audit_answer)


def _add_error_handlers(app: "FastAPI") -> None:
    """Answer HTTP and validation errors as JSON with the request id."""
    from fastapi import Request
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.responses import JSONResponse

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code,
            content={"detail": _json_safe(exc.detail), "request_id": request.state.request_id},
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Rendered first: what is audited is what the client gets (the middleware audits the 422).
        return JSONResponse(
            status_code=422,
            content={
                "detail": _json_safe(jsonable_encoder(exc.errors())),
                "request_id": request.state.request_id,
            },
        )


def _add_score(
    app: "FastAPI", service: _Service, ScoreRequest: type[BaseModel], errors: dict[int | str, dict[str, Any]]
) -> None:
    """Add ``POST /score``."""
    from fastapi import Request

    @app.post(
        "/score",
        response_model=ScoreResponse,
        responses=errors,
        summary="Score companies",
        description="Calibrated default probabilities of 1 to max_batch companies, each with its top reasons.",
        tags=["scoring"],
    )
    def score(body: ScoreRequest, request: Request):  # type: ignore[valid-type]
        ids: list[str] = body.company_ids  # type: ignore[attr-defined]
        top = body.top_reasons if body.top_reasons is not None else service.top_reasons  # type: ignore[attr-defined]
        features = body.features  # type: ignore[attr-defined]

        def work() -> tuple[BaseModel, list[dict[str, Any]]]:
            service.check_known(ids)
            extra = (
                {} if features is None else {"overrides": features}
            )  # a Scorer without overrides still serves
            scores = service.call(lambda: service.scorer.score(list(ids), top_reasons=top, **extra))
            got = [s.company_id for s in scores]
            if got != ids:
                raise RuntimeError(f"the scorer returned scores for {_show(got)}, asked for {_show(ids)}")
            for s in scores:
                _check_finite(s.company_id, score=s.score, probability=s.probability)
            out = ScoreResponse(model_version=service.model_version, scores=[s.to_dict() for s in scores])
            rows = [
                {"company_id": s.company_id, "score": s.score, "probability": s.probability} for s in scores
            ]
            return out, rows

        return service.handle(
            request, endpoint="/score", company_id=None, sha=_request_sha(request, "/score"), work=work
        )


def _add_explain(app: "FastAPI", service: _Service, errors: dict[int | str, dict[str, Any]]) -> None:
    """Add ``GET /explain/{company_id}``."""
    from fastapi import Path as PathParam
    from fastapi import Query, Request

    @app.get(
        "/explain/{company_id:path}",
        response_model=ExplanationModel,
        responses=errors,
        summary="Explain a company's score",
        description="Every attribution of the company's score, by kind, ranked by absolute contribution.",
        tags=["scoring"],
    )
    def explain(
        request: Request,
        company_id: Annotated[str, PathParam(description="The company's key.", examples=["C0042"])],
        top: Annotated[
            int, Query(ge=0, le=MAX_EXPLAIN_TOP, description="Attributions per kind.", examples=[10])
        ] = 10,
    ):
        def work() -> tuple[BaseModel, list[dict[str, Any]]]:
            service.check_known([company_id])
            explanation = service.call(lambda: service.scorer.explain(company_id, top=top))
            if explanation.company_id != company_id:
                raise RuntimeError(
                    f"the scorer explained {explanation.company_id!r}, asked for {company_id!r}"
                )
            _check_finite(company_id, probability=explanation.probability)
            rows = [{"company_id": company_id, "probability": explanation.probability}]
            return ExplanationModel.model_validate(explanation.to_dict()), rows

        return service.handle(
            request,
            endpoint="/explain",
            company_id=company_id,
            sha=_request_sha(request, "/explain"),
            work=work,
        )


def _add_whatif(app: "FastAPI", service: _Service, errors: dict[int | str, dict[str, Any]]) -> None:
    """Add ``POST /whatif``."""
    from fastapi import Request

    @app.post(
        "/whatif",
        response_model=WhatIfResponse,
        responses=errors,
        summary="Re-score a company under a scenario",
        description="The company's calibrated probability before and after an intervention on the graph.",
        tags=["scoring"],
    )
    def whatif(body: WhatIfRequest, request: Request):
        def work() -> tuple[BaseModel, list[dict[str, Any]]]:
            service.check_known([body.company_id])
            scenario = Scenario(**body.scenario.model_dump())
            try:
                result = service.call(lambda: service.scorer.what_if(body.company_id, scenario))
            except ValueError as exc:  # the protocol: a bad scenario
                error = {
                    "type": "value_error",
                    "loc": ["body", "scenario"],
                    "msg": str(exc),
                    "input": body.scenario.model_dump(),
                }
                raise _Fail(422, {"detail": [error]}) from exc
            _check_finite(body.company_id, before=result.before, after=result.after)
            rows = [{"company_id": body.company_id, "probability": result.after}]
            return WhatIfResponse.model_validate(result.to_dict()), rows

        return service.handle(
            request,
            endpoint="/whatif",
            company_id=body.company_id,
            sha=_request_sha(request, "/whatif"),
            work=work,
        )


def _add_health(app: "FastAPI", service: _Service) -> None:
    """Add ``GET /health``."""

    @app.get(
        "/health", response_model=HealthResponse, summary="Liveness and the model served", tags=["service"]
    )
    def health():
        return HealthResponse(
            status="ok",
            model_version=service.model_version,
            companies=len(service.known),
            uptime_s=round(time.monotonic() - service.started, 3),
        )


def create_app(
    scorer: Scorer,
    *,
    audit_log: str | Path,
    max_batch: int = 256,
    max_body_bytes: int = 1_000_000,
    top_reasons: int = 3,
    audit_fsync: bool = True,
    scorer_thread_safe: bool = False,
) -> "FastAPI":
    """The scoring service over ``scorer``; the audit log is opened (and checked writable) here."""
    from fastapi import FastAPI

    import kgreason

    _check_app_settings(scorer, max_batch, max_body_bytes, top_reasons)
    audit = AuditLog(audit_log, fsync=audit_fsync)
    service = _Service(
        scorer=scorer,
        audit=audit,
        known=frozenset(scorer.company_ids()),
        worker=None if scorer_thread_safe else ThreadPoolExecutor(max_workers=1, thread_name_prefix="scorer"),
        top_reasons=top_reasons,
        started=time.monotonic(),
    )
    ScoreRequest = _score_request_model(max_batch)
    errors: dict[int | str, dict[str, Any]] = {
        404: {"model": ErrorResponse, "description": "Unknown company id(s)."},
        413: {"model": ErrorResponse, "description": f"Request body over {max_body_bytes} bytes."},
        500: {"model": ErrorResponse, "description": "The scorer failed; the request id is in the logs."},
    }

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        audit.close()

    app = FastAPI(
        title="kgreason risk scoring",
        version=kgreason.__version__,
        description=(
            "Default-risk scores of companies with reasons, explanations and what-if scenarios, from a "
            f"company-graph model (model {service.model_version}). Every scoring request is audited."
        ),
        lifespan=lifespan,
    )
    app.state.service = service
    _add_guard(app, service, max_body_bytes)
    _add_error_handlers(app)
    _add_score(app, service, ScoreRequest, errors)
    _add_explain(app, service, errors)
    _add_whatif(app, service, errors)
    _add_health(app, service)
    return app


def serve(
    scorer: Scorer | str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    audit_log: str | Path,
    workers: int = 1,
    log_level: str = "info",
    max_batch: int = 256,
    max_body_bytes: int = 1_000_000,
    top_reasons: int = 3,
    audit_fsync: bool = True,
) -> None:
    """Run the service with uvicorn until interrupted.

    ``scorer`` is a :class:`Scorer`, or an import string ``"module:factory"`` of a zero-argument callable that
    returns one. Several ``workers`` (processes) need the import string: each worker builds its own scorer.
    """
    import uvicorn

    if not (isinstance(workers, int) and workers >= 1):
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    settings = {
        "audit_log": str(audit_log),
        "max_batch": max_batch,
        "max_body_bytes": max_body_bytes,
        "top_reasons": top_reasons,
        "audit_fsync": audit_fsync,
    }
    if workers == 1:
        instance = load_scorer_factory(scorer)() if isinstance(scorer, str) else scorer
        app = create_app(instance, **settings)  # type: ignore[arg-type]
        uvicorn.run(app, host=host, port=port, log_level=log_level)
        return
    if not isinstance(scorer, str):
        raise ConfigError(
            f"workers={workers} needs the scorer as an import string 'module:factory' (each worker process "
            "builds its own scorer); got a scorer object"
        )
    load_scorer_factory(scorer)  # fail here, not in every worker
    AuditLog(audit_log, fsync=False).close()  # same for the audit log
    previous = os.environ.get(CONFIG_ENV)
    os.environ[CONFIG_ENV] = json.dumps({"scorer": scorer, **settings})
    try:
        uvicorn.run(
            "kgreason.finance.service:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
        )
    finally:
        if previous is None:
            os.environ.pop(CONFIG_ENV, None)
        else:
            os.environ[CONFIG_ENV] = previous


def app_from_env() -> "FastAPI":
    """The app of one worker process of :func:`serve`, from the settings in ``$KGREASON_SERVICE_CONFIG``."""
    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        raise ConfigError(f"${CONFIG_ENV} is not set (app_from_env is for serve(..., workers=n))")
    settings = json.loads(raw)
    factory = load_scorer_factory(settings.pop("scorer"))
    return create_app(factory(), **settings)


def load_scorer_factory(spec: str) -> Callable[[], Scorer]:
    """Import ``"module:attribute"``; raise :class:`ConfigError` naming what is missing."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"a scorer factory is 'module:callable', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import scorer factory module {module_name!r}: {exc}") from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ConfigError(f"module {module_name!r} has no callable {attribute!r} (scorer factory {spec!r})")
    return factory


# ---------------------------------------------------------------------------------------------- helpers
def canonical_sha256(payload: Any) -> str:
    """SHA-256 of the canonical JSON of ``payload`` (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _request_sha(request: "Request", endpoint: str) -> str | None:
    if endpoint == "/explain":
        company_id = request.path_params.get("company_id", _audited(request.url.path)[1])
        return canonical_sha256({"company_id": company_id, **request.query_params})
    raw = getattr(request.state, "raw_body", None)
    if raw is None:
        return None
    try:
        return canonical_sha256(_strict_loads(raw))
    except (
        ValueError,
        RecursionError,
        _NonFinite,
    ):  # not (strict) JSON, not UTF-8, too deep: the bytes as sent
        return hashlib.sha256(raw).hexdigest()


def _body_company_id(request: "Request") -> str | None:
    """The ``company_id`` of a JSON object body, when it has a string one (for auditing invalid requests)."""
    try:
        body = json.loads(getattr(request.state, "raw_body", b"") or b"null")
    except (ValueError, RecursionError):
        return None
    value = body.get("company_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def _audited(path: str) -> tuple[str | None, str | None]:
    """The audit endpoint name of a request path, and the company id in it (``/explain/{id}``)."""
    if path in ("/score", "/whatif"):
        return path, None
    if path.startswith("/explain/"):
        return "/explain", path[len("/explain/") :]
    return None, None


class _NonFinite(Exception):
    """A JSON number that is not finite (``NaN``, ``Infinity``, ``1e400``)."""


def _reject_constant(name: str) -> float:
    raise _NonFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    return value


def _strict_loads(raw: bytes) -> Any:
    """``json.loads`` that raises :class:`_NonFinite` on ``NaN``, ``Infinity`` and numbers that overflow."""
    return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)


def _json_problem(raw: bytes) -> dict[str, Any] | None:
    """The 422 error of a body the app must not see (non-finite numbers, too deep); ``None``: let the app parse.

    A body that does not parse as JSON is left to FastAPI (its ``json_invalid`` error names the position).
    """
    try:
        value = _strict_loads(raw)
    except _NonFinite as exc:
        return {
            "type": "finite_number",
            "loc": ["body"],
            "msg": f"{exc.args[0]} is not a finite number (expected finite JSON numbers; JSON has no NaN or Infinity)",
            "input": str(exc.args[0]),
        }
    except RecursionError:
        return _too_deep()
    except json.JSONDecodeError:
        return None
    except ValueError as exc:  # not UTF-8 / UTF-16 / UTF-32, an integer of over 4300 digits
        return {"type": "json_invalid", "loc": ["body"], "msg": f"not a JSON body: {exc}", "input": None}
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > MAX_JSON_DEPTH:
            return _too_deep()
        stack.extend((child, depth + 1) for child in children)
    return None


def _too_deep() -> dict[str, Any]:
    return {
        "type": "json_too_deep",
        "loc": ["body"],
        "msg": f"JSON nested too deep (expected at most {MAX_JSON_DEPTH} levels of arrays / objects)",
        "input": None,
    }


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its name (``"NaN"``, ``"Infinity"``): strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _internal_error(request_id: str) -> "Response":
    from starlette.responses import JSONResponse

    return JSONResponse(
        status_code=500,
        content={"detail": f"internal error (request id {request_id})", "request_id": request_id},
    )


def _check_finite(company_id: str, **values: float) -> None:
    bad = {name: value for name, value in values.items() if not math.isfinite(float(value))}
    if bad:
        raise RuntimeError(f"the scorer returned non-finite values for {company_id!r}: {bad}")


def _show(ids: Iterable[str]) -> str:
    ids = list(ids)
    shown = ", ".join(ids[:_SHOWN_IDS])
    return shown + (f" (and {len(ids) - _SHOWN_IDS} more)" if len(ids) > _SHOWN_IDS else "")
