"""Every error is an RFC 9457 problem (``application/problem+json``) with a stable code and
the request's trace id, and the OpenAPI document says so for every route."""

from __future__ import annotations

import re

import httpx
import pytest
import structlog
from fastapi import APIRouter

from api.app import create_app
from api.problems import PROBLEM_MEDIA_TYPE, TYPE_PREFIX
from api.tracing import trace_id_from
from resources.store.errors import StoreBusy, UnknownUser
from tests.api_users import ADMIN, new_user
from tests.server import serve

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "code", "trace_id"}
SECRET = "db password is hunter2"


def _failing_routes() -> APIRouter:
    # Routes that fail the ways a real route can, to reach each handler over HTTP.
    router = APIRouter()

    @router.get("/boom")
    def boom() -> dict:
        raise RuntimeError(SECRET)

    @router.get("/busy")
    def busy() -> dict:
        raise StoreBusy("the store is busy; retry")

    @router.get("/unknown-user")
    def unknown_user() -> dict:
        raise UnknownUser("no user 'u_x'")

    return router


@pytest.fixture
def client(settings):
    app = create_app(settings)
    app.include_router(_failing_routes())
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        yield c


def _problem(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = r.json()
    assert set(body) >= PROBLEM_KEYS, body
    assert (body["status"], body["code"], body["type"]) == (status, code, TYPE_PREFIX + code)
    assert body["trace_id"] == r.headers["x-request-id"]
    assert body["instance"] == r.request.url.path
    return body


def test_http_errors_are_problems_with_the_callers_request_id(client):
    user = new_user(client)
    r = client.get("/v1/videos/nope", headers={"X-Request-ID": "req-42.a"} | user["headers"])
    body = _problem(r, 404, "not_found")
    assert body["trace_id"] == "req-42.a" and body["title"] == "Not Found"
    _problem(client.get("/no/such/route"), 404, "not_found")  # the router's own 404
    _problem(client.delete("/healthz"), 405, "method_not_allowed")
    _problem(client.get("/v1/admin/approvals"), 401, "unauthenticated")
    _problem(client.get("/v1/usage"), 401, "unauthenticated")


def test_trace_id_comes_from_traceparent_else_request_id_else_is_made():
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert trace_id_from({"traceparent": traceparent, "X-Request-ID": "other"}) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_from({"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "X-Request-ID": "r1"}) == "r1"
    assert trace_id_from({"traceparent": "garbage", "X-Request-ID": "r1"}) == "r1"
    for bad in ("", "has space", "new\nline", "x" * 129):
        made = trace_id_from({"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", made), bad
    assert trace_id_from({}) != trace_id_from({})


def test_traceparent_reaches_the_response_and_success_responses_carry_the_id(client):
    r = client.get("/healthz", headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    r = client.get("/healthz", headers={"X-Request-ID": "not allowed: spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


def test_validation_errors_list_each_problem_without_echoing_input(client, settings):
    r = client.post("/v1/admin/users/u1/credits", headers=ADMIN, json={"tokens": "lots"})
    body = _problem(r, 422, "validation_failed")
    locs = sorted(tuple(e["loc"]) for e in body["errors"])
    assert locs == [("body", "tokens"), ("body", "topup_id")]
    assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"])
    assert "lots" not in r.text


def test_store_errors_keep_their_code_and_status(client):
    _problem(client.get("/unknown-user"), 404, "unknown_user")
    r = client.get("/busy")
    _problem(r, 503, "store_busy")
    assert r.headers["retry-after"] == "1"


def test_unhandled_errors_are_500_without_internals_and_logged_with_the_trace_id(client):
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        r = client.get("/boom", headers={"X-Request-ID": "trace-boom"})
    body = _problem(r, 500, "internal_error")
    assert SECRET not in r.text and "RuntimeError" not in r.text and "trace-boom" in body["detail"]
    [entry] = [e for e in logs if e["event"] == "unhandled error"]
    assert entry["trace_id"] == "trace-boom" and entry["path"] == "/boom" and entry["log_level"] == "error"
    # Context variables do not leak into the next request's logs.
    assert structlog.contextvars.get_contextvars() == {}


def test_every_documented_error_is_a_problem_and_every_route_documents_what_it_can_answer(settings):
    doc = create_app(settings).openapi()
    schemas = doc["components"]["schemas"]
    assert {"Problem", "ValidationProblem"} <= set(schemas)
    assert "HTTPValidationError" not in schemas
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            statuses = set(op["responses"])
            assert "500" in statuses, where
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    model = "ValidationProblem" if status == "422" else "Problem"
                    assert response["content"] == {
                        PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{model}"}}
                    }, (where, status)
            if path not in ("/healthz", "/metrics"):
                assert "429" in statuses, where
            if "{" in path or op.get("parameters") or "requestBody" in op:
                assert "422" in statuses, where
            if path.startswith("/v1/admin"):
                assert "401" in statuses, where
            if op.get("security"):  # Bearer API key
                assert "401" in statuses, where
    assert {"401", "503"} <= set(doc["paths"]["/v1/usage"]["get"]["responses"])
    assert "400" in doc["paths"]["/v1/effects"]["get"]["responses"]  # invalid cursor
