"""Link downloads through yt-dlp and the SSRF guard, against a platform stand-in on
127.0.0.1 (admitted by a test-host entry) and a fake resolver for the platforms' names:
nothing here reaches the internet — the guard refuses every address the fake resolver hands
out, so a request that got past it would fail the test, not go out."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from resources.intake.fetch import MAX_WAIT_S, LinkTimedOut, LinkTooLarge
from resources.intake.link import LinkRequest, download_link
from resources.intake.ssrf import LinkPolicy, LinkRefused
from tests.intake_server import platform_app
from tests.server import free_port, serve

pytestmark = pytest.mark.video  # serves and downloads a real video


@pytest.fixture(scope="module")
def platform(samples_dir):
    with serve(platform_app(samples_dir / "carphone_pristine.mp4")) as base:
        yield base


@pytest.fixture
def policy(platform):
    return LinkPolicy(test_hosts=frozenset({platform.removeprefix("http://")}))


class FakeDNS:
    """Resolves every name to ``address`` and remembers what it was asked."""

    def __init__(self, address: str):
        self.address, self.asked = address, []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return [self.address]


def _get(url, tmp_path, policy, resolver=None, max_bytes=50_000_000, timeout_s=30.0):
    kwargs = {} if resolver is None else {"resolver": resolver}
    return download_link(LinkRequest(url, max_bytes, timeout_s), tmp_path, policy, **kwargs)


def test_a_video_link_and_a_redirect_to_it_download_the_bytes(platform, policy, tmp_path, samples_dir):
    original = (samples_dir / "carphone_pristine.mp4").read_bytes()
    direct = _get(f"{platform}/video.mp4", tmp_path / "a", policy)
    redirected = _get(f"{platform}/redirect?to=/video.mp4", tmp_path / "b", policy)
    assert direct.read_bytes() == original and redirected.read_bytes() == original


@pytest.mark.parametrize(
    "to",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/video.mp4",
        "https://10.0.0.8/video.mp4",
        "http://127.0.0.1:{other}/video.mp4",  # loopback, but not the admitted port
        "http://localhost:{port}/video.mp4",  # the admitted server under another name
    ],
)
def test_redirects_to_internal_addresses_are_refused(platform, policy, tmp_path, to):
    port = platform.rsplit(":", 1)[1]
    target = to.format(other=free_port(), port=port)
    with pytest.raises(LinkRefused):
        _get(f"{platform}/redirect?to={target}", tmp_path, policy)
    assert not list(tmp_path.glob("*.mp4"))


@pytest.mark.parametrize("address", ["169.254.169.254", "10.20.30.40", "127.0.0.1", "fd00:ec2::254"])
def test_a_redirect_to_an_allowed_name_is_vetted_again(platform, policy, tmp_path, address):
    dns = FakeDNS(address)
    with pytest.raises(LinkRefused, match=re.escape(address)):
        _get(f"{platform}/redirect?to=https://v16.tiktokcdn.com/video.mp4", tmp_path, policy, dns)
    assert dns.asked == ["v16.tiktokcdn.com"]


def test_a_private_address_behind_an_allowed_name_is_refused(policy, tmp_path):
    dns = FakeDNS("10.1.2.3")
    with pytest.raises(LinkRefused, match=re.escape("10.1.2.3")):
        _get("https://www.tiktok.com/@someone/video/7312345678901234567", tmp_path, policy, dns)
    assert dns.asked and set(dns.asked) <= {"www.tiktok.com"}


@pytest.mark.parametrize("declare", ["0", "1"])
def test_an_oversize_download_stops_at_the_cap(platform, policy, tmp_path, declare):
    cap = 1_000_000
    with pytest.raises(LinkTooLarge):
        _get(f"{platform}/big?bytes={5 * cap}&declare={declare}", tmp_path, policy, max_bytes=cap)
    assert all(f.stat().st_size <= cap for f in tmp_path.rglob("*") if f.is_file())


@pytest.mark.slow
def test_a_trickling_download_stops_at_the_time_cap(platform, policy, tmp_path):
    started = time.monotonic()
    with pytest.raises(LinkTimedOut):
        _get(f"{platform}/slow?seconds=30", tmp_path, policy, timeout_s=1.5)
    assert time.monotonic() - started < 1.5 + MAX_WAIT_S


def test_a_link_to_something_else_fails_readably(platform, policy, tmp_path):
    from resources.intake.link import LinkFailed

    with pytest.raises(LinkFailed):
        _get(f"{platform}/nothing-here", tmp_path, policy)


def test_a_link_is_checked_before_any_request(tmp_path):
    dns = FakeDNS("93.184.216.34")
    with pytest.raises(LinkRefused, match="Shorts"):
        _get("https://www.youtube.com/watch?v=dQw4w9WgXcQ", tmp_path, LinkPolicy(), dns)
    assert dns.asked == []
    assert not Path(tmp_path).exists() or not list(Path(tmp_path).iterdir())
