"""A stand-in for a video platform on 127.0.0.1, for the link intake's tests: a real video,
redirects to wherever a test asks, a body larger than a cap, a body that trickles."""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route


def platform_app(video: Path) -> Starlette:
    """Routes: ``/video.mp4`` (the file), ``/redirect?to=<url>`` (302 there),
    ``/big?bytes=N&declare=0|1`` (N bytes of an MP4-looking body, with or without
    Content-Length), ``/slow?seconds=S`` (a byte every 0.1 s for S seconds)."""

    head = video.read_bytes()[:4096]  # a real MP4's first bytes: the sniff passes

    async def video_file(request: Request) -> Response:
        return FileResponse(video, media_type="video/mp4")

    async def redirect(request: Request) -> Response:
        return RedirectResponse(request.query_params["to"], status_code=302)

    async def big(request: Request) -> Response:
        size = int(request.query_params["bytes"])

        async def body():
            yield head
            sent = len(head)
            while sent < size:
                chunk = b"\0" * min(64 * 1024, size - sent)
                sent += len(chunk)
                yield chunk

        headers = {"Content-Length": str(size)} if request.query_params.get("declare") == "1" else {}
        return StreamingResponse(body(), media_type="video/mp4", headers=headers)

    async def slow(request: Request) -> Response:
        seconds = float(request.query_params["seconds"])

        async def body():
            for i in range(int(seconds * 10)):
                yield head[i : i + 1] if i < len(head) else b"\0"
                await asyncio.sleep(0.1)

        return StreamingResponse(body(), media_type="video/mp4")

    return Starlette(
        routes=[
            Route("/video.mp4", video_file),
            Route("/redirect", redirect),
            Route("/big", big),
            Route("/slow", slow),
        ]
    )
