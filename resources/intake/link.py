"""Download the video behind a TikTok, Instagram or YouTube Shorts link with yt-dlp, every
byte of it through the SSRF guard.

yt-dlp knows how each platform serves its videos (pages, APIs, signed CDN URLs) and is kept
up to date as they change; what it must not do is open connections of its own. Its network
layer takes pluggable request handlers, so the ``YoutubeDL`` here has exactly one:
``GuardedRH``, which sends every request — page, API call, media file, each redirect — through
``fetch.GuardedClient`` (allowed hosts, vetted and pinned addresses, byte and time caps).
Nothing else fetches: single-file formats only (no ffmpeg merging or HLS via ffmpeg, which
would fetch URLs itself), no post-processing.

The downloaded file then goes through the same acceptance as a direct upload
(``resources.intake.acceptance``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from yt_dlp import YoutubeDL
from yt_dlp.networking.common import Features, Request, RequestHandler, Response
from yt_dlp.networking.exceptions import HTTPError, RequestError, TransportError
from yt_dlp.utils import YoutubeDLError

from resources.intake.fetch import GuardedClient, GuardedResponse, LinkTimedOut, LinkTooLarge
from resources.intake.ssrf import LinkPolicy, LinkRefused, Resolver, check_url, system_resolver

# yt-dlp's extractors for the supported platforms, plus the generic one (a direct video URL:
# what the tests' local server offers). Regexes over extractor names, case-insensitive.
EXTRACTORS = ["tiktok", "instagram", "youtube", "generic"]
# One file with audio and video in it: anything that needs merging would run ffmpeg, which
# fetches by itself.
FORMAT = "best[acodec!=none][vcodec!=none]/best"


class LinkFailed(Exception):
    """The link pointed at something yt-dlp could not download (no video, removed, private,
    the site refused); the message is yt-dlp's."""


@dataclass(frozen=True)
class LinkRequest:
    """A link to download.

    Attributes:
        url: the link as the user sent it.
        max_bytes: size cap, bytes (``Settings.max_upload_bytes``).
        timeout_s: time cap of the whole download, seconds (``Settings.link_timeout_s``).
    """

    url: str
    max_bytes: int
    timeout_s: float


def check_link(url: str, policy: LinkPolicy) -> None:
    """Refuse a link that is not a platform's video link before any network access: the
    guard's URL check, and on youtube.com only Shorts (``/shorts/<id>``).

    Raises:
        ssrf.LinkRefused: with the reason.
    """
    target = check_url(url, policy)
    if target.test_host:
        return
    host, path = target.host, urlsplit(url.strip()).path
    if (host == "youtube.com" or host.endswith(".youtube.com")) and not path.startswith("/shorts/"):
        raise LinkRefused("only YouTube Shorts links (youtube.com/shorts/…) are accepted from YouTube")


class _Outcome:
    """The first guard refusal of a download: yt-dlp wraps network errors into its own, and
    the caller must answer with the guard's reason, not yt-dlp's rewording."""

    def __init__(self) -> None:
        self.error: Exception | None = None

    def note(self, exc: Exception) -> Exception:
        if self.error is None:
            self.error = exc
        return exc


def _handler(client: GuardedClient, outcome: _Outcome) -> type[RequestHandler]:
    """A yt-dlp request handler class bound to ``client`` (yt-dlp instantiates handlers
    itself, with its own arguments)."""

    class GuardedRH(RequestHandler):
        _SUPPORTED_URL_SCHEMES = ("http", "https")
        # Proxies are ignored, not refused: the connection goes to the vetted address.
        _SUPPORTED_PROXY_SCHEMES = None
        _SUPPORTED_FEATURES = (Features.ALL_PROXY, Features.NO_PROXY)

        def _check_extensions(self, extensions):
            super()._check_extensions(extensions)
            for name in ("cookiejar", "timeout", "legacy_ssl", "keep_header_casing"):
                extensions.pop(name, None)

        def _send(self, request: Request) -> Response:
            data = request.data
            if data is not None and not isinstance(data, bytes):
                data = data.read() if hasattr(data, "read") else b"".join(data)
            headers = self._get_headers(request)
            headers["Accept-Encoding"] = "identity"  # video is not compressed; pages may be larger
            try:
                guarded = client.send(
                    request.method, request.url, headers, data, cookiejar=self._get_cookiejar(request)
                )
            except (LinkRefused, LinkTimedOut, LinkTooLarge) as exc:
                raise RequestError(str(outcome.note(exc))) from exc
            except httpx.HTTPError as exc:
                raise TransportError(cause=exc) from exc
            response = _YtResponse(guarded, outcome)
            if not 200 <= response.status < 300:
                raise HTTPError(response)
            return response

    return GuardedRH


class _YtResponse(Response):
    """A ``GuardedResponse`` in yt-dlp's ``Response`` shape; guard errors while reading are
    noted and raised as yt-dlp's ``TransportError``."""

    def __init__(self, guarded: GuardedResponse, outcome: _Outcome):
        super().__init__(fp=guarded, url=guarded.url, headers=guarded.headers, status=guarded.status)  # type: ignore[arg-type]
        self._outcome = outcome

    def read(self, amt: int | None = None) -> bytes:
        try:
            return self.fp.read(amt)
        except (LinkTooLarge, LinkTimedOut) as exc:
            raise TransportError(cause=self._outcome.note(exc)) from exc
        except httpx.HTTPError as exc:
            raise TransportError(cause=exc) from exc


class _GuardedYoutubeDL(YoutubeDL):
    """A ``YoutubeDL`` whose only request handler is the guarded one."""

    def __init__(self, params: dict, handler: type[RequestHandler]):
        self._guarded_handler = handler  # before super().__init__, which may send requests
        super().__init__(params)

    def build_request_director(self, handlers, preferences=None):
        return super().build_request_director([self._guarded_handler])


class _QuietLogger:
    """yt-dlp's messages go nowhere (the outcome is the return value or the exception)."""

    def debug(self, msg: str) -> None: ...

    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...

    def error(self, msg: str) -> None: ...


def download_link(link: LinkRequest, dest_dir: Path, policy: LinkPolicy, resolver: Resolver = system_resolver) -> Path:
    """Download the video behind ``link.url`` into ``dest_dir``; the file's path.

    Args:
        policy: what may be fetched (``ssrf.LinkPolicy``).
        resolver: DNS (``ssrf.system_resolver``; tests inject one).

    Raises:
        ssrf.LinkRefused: the link, a redirect or any URL yt-dlp wanted is refused.
        fetch.LinkTooLarge: a response passed ``link.max_bytes`` (or declared it would).
        fetch.LinkTimedOut: past ``link.timeout_s``.
        LinkFailed: yt-dlp found no video or the site refused.
    """
    check_link(link.url, policy)
    outcome = _Outcome()
    client = GuardedClient(
        policy,
        max_bytes=link.max_bytes,
        timeout_s=link.timeout_s,
        resolver=resolver,
    )
    params = {
        "outtmpl": {"default": str(dest_dir / "link.%(ext)s")},
        "format": FORMAT,
        "allowed_extractors": EXTRACTORS,
        "noplaylist": True,
        "playlist_items": "1",
        "max_filesize": link.max_bytes,
        "retries": 0,
        "fragment_retries": 0,
        "extractor_retries": 0,
        "file_access_retries": 0,
        "socket_timeout": link.timeout_s,
        "external_downloader": {"default": "native"},
        "fixup": "never",
        "cachedir": False,
        "noprogress": True,
        "quiet": True,
        "no_warnings": True,
        "logger": _QuietLogger(),
        "overwrites": True,
    }
    try:
        with _GuardedYoutubeDL(params, _handler(client, outcome)) as ydl:
            info = ydl.extract_info(link.url, download=True)
    except YoutubeDLError as exc:  # DownloadError, or a network error yt-dlp let through
        if outcome.error is not None:
            raise outcome.error from exc
        message = str(exc).removeprefix("ERROR: ").strip()
        raise LinkFailed(message or "the link could not be downloaded") from exc
    finally:
        client.close()
    if outcome.error is not None:  # a refusal yt-dlp reported only as a warning
        raise outcome.error
    files = [Path(d["filepath"]) for d in (info or {}).get("requested_downloads", []) if d.get("filepath")]
    files = [f for f in files if f.is_file()]
    if not files:
        # yt-dlp skips, without an error, a file whose declared size is over max_filesize.
        size = (info or {}).get("filesize") or (info or {}).get("filesize_approx")
        if size and size > link.max_bytes:
            raise LinkTooLarge(f"the video is over the {link.max_bytes} byte limit")
        raise LinkFailed("the link led to no downloadable video")
    return files[0]
