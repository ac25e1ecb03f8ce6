"""An HTTP client that only reaches what the SSRF guard admits, within a size and a time cap.

``GuardedClient.send`` follows redirects itself, one hop at a time, and every hop — the first
URL and each ``Location`` — passes ``ssrf.check_url`` and ``ssrf.vet_addresses`` before a
connection is opened. The connection then goes to the vetted address itself (the URL's host
is replaced by it, the ``Host`` header and, for https, the TLS server name and certificate
check keep the real name), so a second DNS answer can never send it elsewhere. Response
bodies are read through ``GuardedResponse``, which stops at ``max_bytes`` and at the
deadline.
"""

from __future__ import annotations

import email.message
import ipaddress
import time
import urllib.request
from collections.abc import Iterator, Mapping
from http.cookiejar import CookieJar
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from resources.intake.ssrf import LinkPolicy, LinkRefused, Resolver, check_url, system_resolver, vet_addresses

MAX_REDIRECTS = 10  # what browsers and yt-dlp's own handlers allow
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# A single network wait (connect, or one read) lasts at most this long, seconds, so the
# deadline is checked at least this often even against a server that stops sending.
MAX_WAIT_S = 5.0


class LinkTooLarge(Exception):
    """A response body passed the byte cap."""


class LinkTimedOut(Exception):
    """The download passed its deadline."""


class GuardedResponse:
    """A streamed response: ``status``, final ``url`` (the real host, not the pinned
    address), ``headers``, and ``read(amt)`` — decoded bytes, at most ``max_bytes`` in all,
    before the deadline.

    Raises (from ``read``):
        LinkTooLarge, LinkTimedOut; httpx.HTTPError for a broken transfer.
    """

    def __init__(self, response: httpx.Response, url: str, max_bytes: int, deadline: float):
        self._response = response
        self.status = response.status_code
        self.reason = response.reason_phrase
        self.url = url
        headers = dict(response.headers.multi_items())
        if "content-encoding" in response.headers:
            # ``read`` returns decoded bytes: the encoding and its length no longer apply.
            headers = {k: v for k, v in headers.items() if k.lower() not in ("content-encoding", "content-length")}
        self.headers = headers
        self._max_bytes = max_bytes
        self._deadline = deadline
        # No chunk size: bytes are handed on as they arrive (a chunk size would wait to fill
        # it, past the deadline for a trickling server).
        self._chunks: Iterator[bytes] = response.iter_bytes()
        self._buffer = b""
        self._read = 0
        self.closed = False

    def read(self, amt: int | None = None) -> bytes:
        out = bytearray()
        while amt is None or len(out) < amt:
            if not self._buffer:
                if time.monotonic() > self._deadline:
                    raise LinkTimedOut("the download took longer than its time cap")
                chunk = next(self._chunks, None)
                if chunk is None:
                    self.close()
                    break
                self._read += len(chunk)
                if self._read > self._max_bytes:
                    raise LinkTooLarge(f"the video is over the {self._max_bytes} byte limit")
                self._buffer = chunk
            take = len(self._buffer) if amt is None else amt - len(out)
            out += self._buffer[:take]
            self._buffer = self._buffer[take:]
        return bytes(out)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._response.close()


class GuardedClient:
    """Sends requests only to URLs and addresses ``policy`` admits.

    Args:
        policy: the SSRF policy (``ssrf.LinkPolicy``).
        resolver: ``(host, port) → addresses`` (``ssrf.system_resolver``; tests inject one).
        max_bytes: cap on each response body, bytes (``Settings.max_upload_bytes``).
        timeout_s: time cap of everything sent through this client, seconds, from its
            creation (``Settings.link_timeout_s``).
        verify: check TLS certificates (always, but for tests of http-only test hosts).
    """

    def __init__(
        self,
        policy: LinkPolicy,
        *,
        max_bytes: int,
        timeout_s: float,
        resolver: Resolver = system_resolver,
        verify: bool = True,
    ):
        self.policy = policy
        self.resolver = resolver
        self.max_bytes = max_bytes
        self.deadline = time.monotonic() + timeout_s
        # No environment proxies (the connection must go where the guard decided) and no
        # automatic redirects (each hop is checked here).
        # No kept-alive connections: the pool is keyed by address, and a connection opened
        # with one host's TLS name must not carry another host's request.
        self._http = httpx.Client(
            trust_env=False,
            follow_redirects=False,
            verify=verify,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def close(self) -> None:
        self._http.close()

    def _timeout(self) -> httpx.Timeout:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise LinkTimedOut("the download took longer than its time cap")
        return httpx.Timeout(min(remaining, MAX_WAIT_S))

    def _pinned(self, method: str, url: str, headers: Mapping[str, str], content: bytes | None) -> httpx.Request:
        target = check_url(url, self.policy)
        address = vet_addresses(target, self.resolver)[0]
        parts = urlsplit(url)
        literal = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
        pinned_url = urlunsplit((target.scheme, f"{literal}:{target.port}", parts.path or "/", parts.query, ""))
        host_header = target.host if parts.port is None else f"{target.host}:{target.port}"
        extensions: dict = {"timeout": self._timeout().as_dict()}
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host  # TLS name and certificate check: the real host
        return self._http.build_request(
            method,
            pinned_url,
            headers={**headers, "Host": host_header},
            content=content,
            extensions=extensions,
        )

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        cookiejar: CookieJar | None = None,
    ) -> GuardedResponse:
        """Send the request, following redirects; the final response, streamed.

        Args:
            cookiejar: cookies to send and to store from every hop (yt-dlp's jar).

        Raises:
            ssrf.LinkRefused: a URL or an address (first or any redirect) is refused, or too
                many redirects.
            LinkTooLarge: the final response declares a body over ``max_bytes``.
            LinkTimedOut: past the deadline.
            httpx.HTTPError: the connection failed.
        """
        headers = dict(headers or {})
        for _ in range(MAX_REDIRECTS + 1):
            hop_headers = _with_cookies(cookiejar, url, headers)
            request = self._pinned(method, url, hop_headers, content)
            try:
                response = self._http.send(request, stream=True)
            except httpx.TimeoutException as exc:
                raise LinkTimedOut(f"no answer from {urlsplit(url).hostname} in time") from exc
            _store_cookies(cookiejar, url, hop_headers, response)
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    response.close()
                    raise LinkTooLarge(f"the video is over the {self.max_bytes} byte limit ({declared} bytes)")
                return GuardedResponse(response, url, self.max_bytes, self.deadline)
            response.close()
            url = urljoin(url, location)
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method, content = "GET", None  # what browsers do (RFC 9110 §15.4)
                headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
        raise LinkRefused(f"more than {MAX_REDIRECTS} redirects")


class _CookieResponse:
    """The one method ``CookieJar.extract_cookies`` needs of a response."""

    def __init__(self, headers: httpx.Headers):
        self._message = email.message.Message()
        for name, value in headers.multi_items():
            self._message[name] = value

    def info(self) -> email.message.Message:
        return self._message


def _with_cookies(cookiejar: CookieJar | None, url: str, headers: dict[str, str]) -> dict[str, str]:
    if cookiejar is None:
        return headers
    probe = urllib.request.Request(url, headers=headers)
    cookiejar.add_cookie_header(probe)
    return {**headers, **dict(probe.unredirected_hdrs)}


def _store_cookies(cookiejar: CookieJar | None, url: str, headers: dict[str, str], response: httpx.Response) -> None:
    if cookiejar is not None:
        cookiejar.extract_cookies(_CookieResponse(response.headers), urllib.request.Request(url, headers=headers))  # type: ignore[arg-type]
