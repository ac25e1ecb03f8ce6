"""The local S3 server (``pipelines.cli.local_s3``) as its own process, for tests that use
delta-rs against it (delta-rs holds the GIL while waiting, so the server cannot be a thread
of the test process)."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.cli.local_s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from resources.processes import ChildGroup
from resources.s3 import s3_environment
from tests.server import free_port


@contextmanager
def local_s3_process(log: Path) -> Iterator[dict[str, str]]:
    """Start the server on a free port of 127.0.0.1 (output to ``log``); yield the AWS
    environment that points at it; stop it on exit."""
    port = free_port()
    with ChildGroup(grace_s=10) as children:
        proc = children.spawn([sys.executable, "-m", "pipelines.cli.local_s3", "--port", str(port)], log=log)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"local S3 server did not start: {log.read_text()}") from None
                time.sleep(0.1)
        yield s3_environment(f"http://127.0.0.1:{port}", ACCESS_KEY_ID, SECRET_ACCESS_KEY, REGION)
