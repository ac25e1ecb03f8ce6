"""A local S3-compatible server: moto's server mode over real HTTP on 127.0.0.1.

The production profile on one machine (``effectlake demo-prod``) and the tests put the lake and
the media store on it; a real deployment points the same code at MinIO or AWS S3 (only the
URIs, the endpoint and the credentials change, ``resources/s3.py``).

One change to moto: writes are served one at a time. Delta commits on S3 rely on the
conditional put ``If-None-Match: *`` being atomic (two writers of version N: exactly one
succeeds, the other gets 412 Precondition Failed and retries at N+1). moto checks the header
and then stores the object in two steps with no lock between them, and its server handles
requests in threads, so two commits arriving together could both pass the check and the second
would silently replace the first. AWS S3 and MinIO make the check and the write one operation;
serializing PUT/POST/DELETE here gives the local server the same guarantee. Reads stay
concurrent.

Run ``python -m pipelines.cli.local_s3 --port N`` to serve until SIGTERM/Ctrl-C (it prints how
many conditional writes it refused when it stops). ``LocalS3`` serves from a thread of the
calling process, which suits boto3 clients only: delta-rs holds the GIL while it waits for
an answer, so a Delta call against a server in its own process never gets one.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

WRITE_METHODS = frozenset({"PUT", "POST", "DELETE"})
# Any key works against moto; the same pair is what the demo hands every process.
ACCESS_KEY_ID = "effectlake-local"
SECRET_ACCESS_KEY = "effectlake-local-secret"
REGION = "us-east-1"


class _SerializedWrites:
    """WSGI middleware: one write request at a time; counts refused conditional writes."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.lock = threading.Lock()
        self.refused_conditional_writes = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] not in WRITE_METHODS:
            return self.app(environ, start_response)
        conditional = "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ

        def recording_start(status: str, headers: list, exc_info: Any = None) -> Any:
            if conditional and status.startswith("412"):
                self.refused_conditional_writes += 1
            return start_response(status, headers, exc_info)

        with self.lock:
            # The whole response is produced under the lock: moto answers from memory, so the
            # body is complete once the application returns.
            return list(self.app(environ, recording_start))


class LocalS3:
    """moto's S3 (and its other AWS APIs) on ``host:port`` in a background thread.

    Args:
        host: address to bind (loopback by default).
        port: TCP port; 0 picks a free one (read ``endpoint_url`` after ``start``).

    Attributes:
        refused_conditional_writes: how many conditional writes (``If-None-Match`` /
            ``If-Match``) were answered 412, i.e. how many commit races a writer lost.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.port = port
        self._app = _SerializedWrites(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def refused_conditional_writes(self) -> int:
        return self._app.refused_conditional_writes

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._server is None:
            raise RuntimeError("LocalS3 is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> LocalS3:
        """Bind and serve in a daemon thread; returns self."""
        # werkzeug logs every request at INFO: thousands of lines per Delta-heavy run.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(self.host, self.port, self._app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-s3", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or Ctrl-C (``python -m pipelines.cli.local_s3 --port N``)."""
    parser = argparse.ArgumentParser(description="local S3-compatible server (moto) with atomic conditional writes")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    server = LocalS3(args.host, args.port).start()
    print(f"local S3 on {server.endpoint_url}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()
    print(f"refused conditional writes: {server.refused_conditional_writes}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
