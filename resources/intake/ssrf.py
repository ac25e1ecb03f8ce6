"""Which URLs the link intake may fetch: the server-side request forgery guard.

A user-supplied link makes the server open connections, so a link (or a redirect, or any
URL the downloader decides to fetch) must never reach the API's own network: loopback,
private ranges, link-local (where cloud metadata lives), multicast, reserved space.

Every URL is checked in two steps, each a pure function of its inputs:

1. ``check_url``: the scheme is ``https`` (``http`` only for a test host), there are no
   credentials in it, and the host is one of the allowed platforms' domains (or a subdomain
   of one), or a test host (``host:port``, exactly).
2. ``vet_addresses``: the host's addresses, from an injected resolver, are all public
   (``ipaddress``'s ``is_global``, which covers RFC 6890's special-purpose registries) and
   none is a cloud-metadata address. One bad address refuses the host: a resolver answering
   a mix would otherwise choose for us.

The caller connects to an address that passed (``fetch.GuardedClient`` pins it), so a DNS
answer that changes between the check and the connection (rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

# The platforms of the link intake: TikTok, Instagram, YouTube (Shorts and youtu.be links),
# and the content hosts their pages send the video from (yt-dlp's extractors fetch those).
ALLOWED_DOMAINS = (
    "tiktok.com",
    "tiktokv.com",
    "tiktokcdn.com",
    "tiktokcdn-us.com",
    "byteoversea.com",
    "ibytedtos.com",
    "instagram.com",
    "cdninstagram.com",
    "fbcdn.net",
    "youtube.com",
    "youtu.be",
    "googlevideo.com",
    "ytimg.com",
    "ggpht.com",
    "googleapis.com",
)
# AWS, GCP, Azure and most others answer on 169.254.169.254; AWS's IPv6 endpoint is
# fd00:ec2::254. Both are non-global anyway; named so a change to that rule cannot let them in.
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
DEFAULT_PORTS = {"https": 443, "http": 80}


class LinkRefused(Exception):
    """A URL the guard will not fetch; the message says why (safe to show the user)."""


@dataclass(frozen=True)
class Target:
    """A URL that passed ``check_url``: its ``scheme``, lower-cased ``host`` (no brackets for
    IPv6) and ``port``; ``test_host`` when admitted by a test entry (addresses unchecked)."""

    scheme: str
    host: str
    port: int
    test_host: bool = False


@dataclass(frozen=True)
class LinkPolicy:
    """What the guard admits.

    Attributes:
        domains: registrable domains whose hosts (the domain and any subdomain) may be
            fetched over https.
        test_hosts: ``host:port`` entries admitted over http or https whatever their
            addresses — tests only (``Settings.link_test_hosts``; refused in production).
    """

    domains: tuple[str, ...] = ALLOWED_DOMAINS
    test_hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_settings_value(cls, test_hosts: str, *, production: bool) -> LinkPolicy:
        """The default policy plus the comma-separated ``Settings.link_test_hosts``.

        Raises:
            LinkRefused: test hosts configured in production.
        """
        entries = frozenset(e.strip().lower() for e in test_hosts.split(",") if e.strip())
        if entries and production:
            raise LinkRefused("test hosts are not allowed in production")
        return cls(test_hosts=entries)


def _host_allowed(host: str, domains: Sequence[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def check_url(url: str, policy: LinkPolicy) -> Target:
    """The ``Target`` of ``url`` when its scheme, credentials and host pass ``policy``.

    Raises:
        LinkRefused: not http(s), http to a non-test host, user info in the URL, no host, a
            host outside the allowed domains.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise LinkRefused(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise LinkRefused(f"only https links are accepted, not {scheme or 'a scheme-less link'}")
    if parts.username is not None or parts.password is not None:
        raise LinkRefused("links with credentials are not accepted")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise LinkRefused("the link has no host")
    port = port or DEFAULT_PORTS[scheme]
    if f"{host}:{port}" in policy.test_hosts:
        return Target(scheme, host, port, test_host=True)
    if scheme != "https":
        raise LinkRefused("only https links are accepted")
    if not _host_allowed(host, policy.domains):
        raise LinkRefused(f"{host} is not a supported platform (TikTok, Instagram, YouTube Shorts)")
    return Target(scheme, host, port)


def refused_address(address: IPAddress) -> str | None:
    """Why ``address`` must not be connected to (None when it is a public unicast address)."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:  # ::ffff:10.0.0.1 reaches 10.0.0.1
        return refused_address(mapped)
    for flag, why in (
        # Most specific first: ``is_private`` also covers the link-local and reserved ranges.
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_unspecified", "the unspecified address"),
        ("is_private", "a private address"),
    ):
        if getattr(address, flag):
            return why
    if not address.is_global:
        return "not a public address"
    return None


def vet_addresses(target: Target, resolver: Resolver) -> list[str]:
    """The addresses of ``target`` to connect to, all checked (a test host's are taken as
    resolved, unchecked).

    Raises:
        LinkRefused: the host does not resolve, or any of its addresses is refused.
    """
    try:
        ipaddress.ip_address(target.host)
        answers: Sequence[str] = [target.host]  # a literal address: nothing to resolve
    except ValueError:
        try:
            answers = resolver(target.host, target.port)
        except OSError as exc:
            raise LinkRefused(f"{target.host} does not resolve: {exc}") from None
    if not answers:
        raise LinkRefused(f"{target.host} does not resolve")
    addresses = [ipaddress.ip_address(a.split("%")[0]) for a in answers]
    if not target.test_host:
        for address in addresses:
            if (why := refused_address(address)) is not None:
                raise LinkRefused(f"{target.host} resolves to {address}, {why}")
    return [str(a) for a in addresses]


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (``getaddrinfo``), in its order,
    without repeats.

    Raises:
        OSError: (``socket.gaierror``) the name does not resolve.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
