"""The SSRF guard's pure checks: which URLs and which addresses the link intake may reach."""

from __future__ import annotations

import re

import pytest

from resources.intake.link import check_link
from resources.intake.ssrf import LinkPolicy, LinkRefused, Target, check_url, vet_addresses

POLICY = LinkPolicy()
TEST_POLICY = LinkPolicy(test_hosts=frozenset({"127.0.0.1:8765"}))


@pytest.mark.parametrize(
    "url",
    [
        "https://www.tiktok.com/@someone/video/7312345678901234567",
        "https://vm.tiktok.com/ZMabc123/",
        "https://www.instagram.com/reel/Cabc123/",
        "https://youtu.be/dQw4w9WgXcQ",
        "https://www.youtube.com/shorts/dQw4w9WgXcQ",
        "https://m.youtube.com/shorts/dQw4w9WgXcQ",
        "HTTPS://WWW.TIKTOK.COM./@x/video/1",
    ],
)
def test_platform_links_pass(url):
    check_link(url, POLICY)


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://www.tiktok.com/@x/video/1", "https"),
        ("ftp://www.tiktok.com/x.mp4", "https"),
        ("file:///etc/passwd", "https"),
        ("www.tiktok.com/@x/video/1", "https"),
        ("https://user:pw@www.tiktok.com/@x/video/1", "credentials"),
        ("https://evil.example/video.mp4", "not a supported platform"),
        ("https://tiktok.com.evil.example/video.mp4", "not a supported platform"),
        ("https://eviltiktok.com/video.mp4", "not a supported platform"),
        ("https://169.254.169.254/latest/meta-data/", "not a supported platform"),
        ("https://[::1]/", "not a supported platform"),
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "Shorts"),
        ("https://127.0.0.1:8765/video.mp4", "not a supported platform"),  # test hosts are off by default
        ("https://www.tiktok.com:99999/", "valid URL"),
        ("https:///nohost", "no host"),
    ],
)
def test_other_links_are_refused_before_any_network(url, reason):
    with pytest.raises(LinkRefused, match=reason):
        check_link(url, POLICY)


def test_a_test_host_is_admitted_exactly_and_over_http():
    assert check_url("http://127.0.0.1:8765/video.mp4", TEST_POLICY) == Target("http", "127.0.0.1", 8765, True)
    for other in ("http://127.0.0.1:8766/video.mp4", "http://localhost:8765/video.mp4"):
        with pytest.raises(LinkRefused):
            check_url(other, TEST_POLICY)


def test_test_hosts_are_refused_in_production():
    assert LinkPolicy.from_settings_value("", production=True).test_hosts == frozenset()
    assert LinkPolicy.from_settings_value(" 127.0.0.1:1 ,", production=False).test_hosts == {"127.0.0.1:1"}
    with pytest.raises(LinkRefused, match="production"):
        LinkPolicy.from_settings_value("127.0.0.1:1", production=True)


def _resolving_to(*addresses):
    asked = []

    def resolver(host, port):
        asked.append((host, port))
        return list(addresses)

    resolver.asked = asked
    return resolver


TIKTOK = Target("https", "www.tiktok.com", 443)


@pytest.mark.parametrize(
    "address, why",
    [
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "metadata"),
        ("169.254.10.10", "link-local"),
        ("fd00:ec2::254", "metadata"),
        ("fe80::1", "link-local"),
        ("::1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "private|unspecified"),
        ("100.64.0.1", "not a public"),  # carrier-grade NAT
    ],
)
def test_an_allowed_name_on_a_non_public_address_is_refused(address, why):
    resolver = _resolving_to(address)
    with pytest.raises(LinkRefused, match=why):
        vet_addresses(TIKTOK, resolver)
    assert resolver.asked == [("www.tiktok.com", 443)]


def test_one_bad_address_among_good_ones_refuses_the_host():
    with pytest.raises(LinkRefused, match=re.escape("10.0.0.1")):
        vet_addresses(TIKTOK, _resolving_to("93.184.216.34", "10.0.0.1"))


def test_public_addresses_pass_and_unresolvable_names_are_refused():
    assert vet_addresses(TIKTOK, _resolving_to("93.184.216.34", "2606:2800:220:1::1")) == [
        "93.184.216.34",
        "2606:2800:220:1::1",
    ]
    with pytest.raises(LinkRefused, match="does not resolve"):
        vet_addresses(TIKTOK, _resolving_to())

    def failing(host, port):
        raise OSError("Name or service not known")

    with pytest.raises(LinkRefused, match="does not resolve"):
        vet_addresses(TIKTOK, failing)


def test_a_test_host_is_not_resolved_nor_vetted():
    target = check_url("http://127.0.0.1:8765/x", TEST_POLICY)
    assert vet_addresses(target, _resolving_to("10.0.0.1")) == ["127.0.0.1"]
