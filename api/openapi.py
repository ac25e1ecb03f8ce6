"""The OpenAPI document says how every route can fail, each failure a problem document.

FastAPI documents what a route declares; this adds what the app around it does and rewrites
every error response to ``application/problem+json`` with the ``Problem`` schema (422:
``ValidationProblem``), whatever model the route declared:

- 500 on every route (``api.tracing``), 429 on every rate-limited route (``api.ratelimit``);
- 422 on every route with parameters or a body (request validation); on a route with a body,
  400 (a body that does not parse) and the body limits' 413 and 408 (``api.limits``);
- 409 on every route taking an ``Idempotency-Key`` (the first request with it still runs);
- the statuses of the dependencies a route uses (``DEPENDENCY_PROBLEMS``: an API key → 401,
  the admin role → 403, the store → 503 when busy), found by walking its dependency tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from api import admission, deps
from api.problems import DESCRIPTIONS, PROBLEM_MEDIA_TYPE, Problem, ValidationProblem
from api.ratelimit import EXEMPT_PATHS

REF = "#/components/schemas/{model}"
# What a dependency can answer. ``require_admin`` (the X-Admin-Key check) goes once the admin
# routes use ``AdminDep``; looked up so this table does not outlive it.
DEPENDENCY_PROBLEMS: dict[Callable[..., Any], tuple[int, ...]] = {
    deps.current_caller: (401,),
    deps.admin_caller: (401, 403),
    deps.store_client: (503,),
    admission.gpu_admission: (403, 429),
    **({deps.require_admin: (401,)} if hasattr(deps, "require_admin") else {}),
}


def _calls(dependant: Dependant) -> set[Callable[..., Any]]:
    calls = set()
    for sub in dependant.dependencies:
        if sub.call is not None:
            calls.add(sub.call)
        calls |= _calls(sub)
    return calls


def route_problems(route: Any) -> set[int]:
    """The error statuses ``route`` (an ``APIRoute`` or FastAPI's ``RouteContext`` of one)
    can answer besides those it declares itself."""
    statuses = {500}
    if route.path_format not in EXEMPT_PATHS:
        statuses.add(429)
    dependant = route.dependant
    if dependant.path_params or dependant.query_params or dependant.header_params or dependant.body_params:
        statuses.add(422)
    if dependant.cookie_params or route.body_field is not None:
        statuses.add(422)
    if route.body_field is not None:
        statuses |= {400, 408, 413}
    if any(p.alias.lower() == "idempotency-key" for p in dependant.header_params):
        statuses.add(409)
    for call in _calls(dependant):
        statuses |= set(DEPENDENCY_PROBLEMS.get(call, ()))
    return statuses


def _problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    model = ValidationProblem if status == 422 else Problem
    return {
        "description": description or DESCRIPTIONS.get(status, "Error"),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": REF.format(model=model.__name__)}}},
    }


def problem_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with every error response a problem (module docstring)."""
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, ValidationProblem):
        components[model.__name__] = model.model_json_schema(ref_template=REF)
    # Routes of included routers are reached through their contexts (prefix applied).
    routes = {
        (r.path_format, m.lower()): r
        for r in iter_route_contexts(app.routes)
        if isinstance(r.original_route, APIRoute)
        for m in r.methods or ()
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            route = routes.get((path, method))
            responses = operation.setdefault("responses", {})
            for status in route_problems(route) if route else {500}:
                responses.setdefault(str(status), {})
            for status, response in list(responses.items()):
                if status.isdigit() and int(status) >= 400:
                    description = response.get("description")
                    generic = description in (None, "Validation Error", "Unprocessable Content")
                    responses[status] = _problem_response(int(status), None if generic else description)
    # Drop the schemas nothing refers to any more (FastAPI's 422 models, the error models
    # routes declared before their responses became problems).
    used: set[str] = set()
    pending = [schema["paths"]]
    while pending:
        refs = {r.rsplit("/", 1)[1] for r in _refs(pending.pop())} - used
        used |= refs
        pending += [components[name] for name in refs if name in components]
    for name in set(components) - used:
        del components[name]
    return schema


def _refs(node: Any) -> list[str]:
    """Every ``$ref`` value under ``node``."""
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def install_problem_openapi(app: FastAPI) -> None:
    """Serve ``problem_openapi`` (built once, on first request) as the app's OpenAPI."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problem_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
