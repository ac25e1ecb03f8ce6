"""Request bodies are refused while they arrive: a declared size over the limit before a byte
is read, a chunked body as soon as it passes the limit, a stalled or trickling body on a
timer. Over a real socket to uvicorn, since these are about what a server does mid-body."""

from __future__ import annotations

import select
import socket
import time

import httpx
import pytest

from api.app import create_app
from api.limits import JSON_BODY_LIMIT, MULTIPART_OVERHEAD_BYTES
from tests.server import serve

LIMIT = 100_000
BOUNDARY = "effectlakeboundary"
PART_HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
).encode()


@pytest.fixture
def base(settings):
    limited = settings.model_copy(
        update={"max_upload_bytes": LIMIT, "upload_idle_timeout_s": 0.5, "upload_min_bytes_per_s": 10_000}
    )
    with serve(create_app(limited)) as url:
        yield url


def _chunks(total: int, size: int = 16 * 1024):
    yield PART_HEAD
    sent = 0
    while sent < total:
        sent += size
        yield b"\0" * size


def _raw(base: str, head: str, parts, pause_s: float = 0.0) -> tuple[str, float, bool]:
    """Send a request head and then ``parts`` (``pause_s`` apart) over a plain socket,
    stopping as soon as the server answers; the response's status line, the seconds until
    it arrived, and whether the server then closed the connection."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head.encode())
        try:
            for part in parts:
                if select.select([sock], [], [], 0)[0]:
                    break  # answered mid-body
                sock.sendall(part)
                time.sleep(pause_s)
        except OSError:
            pass  # the server answered and closed while we were still sending
        answer = sock.recv(65536)
        seconds = time.monotonic() - started
        try:
            while chunk := sock.recv(65536):  # the rest of the response, then EOF
                answer += chunk
            closed = True
        except TimeoutError:
            closed = False
        return answer.decode(errors="replace").split("\r\n", 1)[0], seconds, closed


def _head(length: int | None = None) -> str:
    size = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (
        f"POST /v1/uploads HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"{size}\r\n"
    )


def test_a_declared_size_over_the_limit_is_refused_before_the_body(base):
    status, _, closed = _raw(base, _head(LIMIT + MULTIPART_OVERHEAD_BYTES + 1), [PART_HEAD])
    assert status.startswith("HTTP/1.1 413") and closed, status
    r = httpx.post(
        f"{base}/v1/uploads",
        content=b"\0" * (LIMIT + MULTIPART_OVERHEAD_BYTES + 1),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_a_chunked_body_is_refused_once_it_passes_the_limit(base):
    sent = 0

    def body():
        nonlocal sent
        for chunk in _chunks(LIMIT * 50):
            sent += len(chunk)
            yield chunk

    r = httpx.post(
        f"{base}/v1/uploads", content=body(), headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    )
    assert r.status_code == 413 and r.headers["connection"] == "close"
    # The client stopped long before the 5 MB it meant to send (socket buffers hold a few 100 kB).
    assert sent < LIMIT * 50


def test_json_bodies_have_their_own_small_limit(base):
    r = httpx.post(
        f"{base}/v1/uploads/presign",
        content=b'{"filename": "' + b"a" * JSON_BODY_LIMIT + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413 and str(JSON_BODY_LIMIT) in r.json()["detail"]


def test_a_stalled_body_times_out_with_408(base):
    status, seconds, closed = _raw(base, _head(50_000), [PART_HEAD, b"\0" * 100])
    assert status.startswith("HTTP/1.1 408") and closed, status
    assert 0.5 <= seconds < 3


def test_a_trickling_body_times_out_with_408(base):
    # 50 bytes every 0.1 s: 500 bytes/s, under the 10,000 bytes/s floor, never idle.
    parts = [PART_HEAD, *([b"\0" * 50] * 100)]
    status, seconds, closed = _raw(base, _head(len(PART_HEAD) + 5000), parts, pause_s=0.1)
    assert status.startswith("HTTP/1.1 408") and closed, status
    assert seconds < 3


@pytest.mark.video
def test_a_body_within_the_limits_reaches_the_route(base, short_bikes):
    r = httpx.post(f"{base}/v1/uploads", files={"file": ("b.mp4", short_bikes.read_bytes()[:LIMIT], "video/mp4")})
    assert r.status_code not in (408, 413), r.text  # the route's own answer
