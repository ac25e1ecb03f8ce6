"""``Idempotency-Key`` on the POSTs that create something: the same key with the same body
replays the first response; with another body it is a 422; while the first request is still
running, a 409 (``resources.store.idempotency`` holds the rules and the claims).

A route passes the key, a hash of everything that makes its request (body, path parameters)
and a function that does the work and returns (status, response model); ``respond`` claims
the key, runs the work once, stores the response and answers it — or replays the stored one.
Without a key the work simply runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Annotated

from fastapi import Header, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from api.deps import Caller
from resources.services.uploads import CHUNK
from resources.store.client import Store
from resources.store.idempotency import MAX_KEY_LENGTH, request_hash

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description="makes the request safe to retry: the same key and body replay the first response",
    ),
]


def respond(
    store: Store,
    caller: Caller,
    route: str,
    key: str | None,
    fingerprint: str,
    work: Callable[[], tuple[int, BaseModel]],
) -> Response:
    """The response of ``work()`` (status, model), run at most once per (caller, route, key).

    Args:
        route: the operation, e.g. ``"POST /v1/uploads"`` (keys are scoped per caller and route).
        fingerprint: ``resources.store.idempotency.request_hash`` of the request (``body_fingerprint``).

    Raises:
        resources.store.errors.IdempotencyMismatch: the key was used with another body (422).
        resources.store.errors.IdempotencyInProgress: the first request is still running (409).
        Whatever ``work`` raises; the claim is released first so the key can be retried.
    """
    if key is None:
        status, model = work()
        return json_response(status, model.model_dump_json())
    stored = store.claim_idempotency(caller.user_id, route, key, fingerprint)
    if stored is not None:
        return json_response(stored.status, stored.body)
    try:
        status, model = work()
    except BaseException:
        # A refusal or a failure is not a response to replay: the key may be sent again.
        store.release_idempotency(caller.user_id, route, key)
        raise
    body = model.model_dump_json()
    store.complete_idempotency(caller.user_id, route, key, status, body)
    return json_response(status, body)


def body_fingerprint(body: BaseModel, *path: str) -> str:
    """The request hash of a JSON ``body`` and the route's ``path`` parameters (the same key
    on another subject is another request)."""
    return request_hash({"body": body.model_dump(mode="json"), "path": list(path)})


def form_fingerprint(file: UploadFile | None, *fields: str | None) -> str:
    """The request hash of a multipart form: the file's bytes (sha256, read in chunks and
    rewound for the work itself; none when no file was sent) and the other fields, path
    parameters included."""
    digest = None
    if file is not None:
        sha = hashlib.sha256()
        while chunk := file.file.read(CHUNK):
            sha.update(chunk)
        file.file.seek(0)
        digest = sha.hexdigest()
    return request_hash({"file": digest, "fields": list(fields)})


def json_response(status: int, body: str) -> Response:
    """A JSON response of already serialized ``body`` (a replay answers the stored bytes)."""
    return Response(content=body, status_code=status, media_type="application/json")
