"""``/metrics``: operational figures by route template and status, served to the allow-list
only, and never a figure about money."""

from __future__ import annotations

import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.metrics import client_allowed
from tests.api_users import new_user
from tests.server import serve

MONEY = re.compile(r"margin|revenue|price|tokens?_charged|charged|cost|usd", re.IGNORECASE)


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.video
def test_requests_uploads_and_statuses_are_counted_by_route_template(settings):
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=30) as c:
        c.headers.update(new_user(c)["headers"])
        assert c.get("/v1/videos/v_one").status_code == 404
        assert c.get("/v1/videos/v_two").status_code == 404
        assert c.get("/healthz").status_code == 200
        assert c.get("/no/such/path").status_code == 404
        refused = c.post("/v1/uploads", files={"file": ("a.mp4", b"plain text", "video/mp4")})
        assert refused.status_code == 415
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = _samples(r.text)
    videos = (
        "effectlake_http_requests_total",
        (("method", "GET"), ("route", "/v1/videos/{video_id}"), ("status", "404")),
    )
    assert samples[videos] == 2
    assert (
        samples[("effectlake_http_requests_total", (("method", "GET"), ("route", "<unmatched>"), ("status", "404")))]
        == 1
    )
    latency = ("effectlake_http_request_duration_seconds_count", (("method", "GET"), ("route", "/healthz")))
    assert samples[latency] == 1
    assert samples[("effectlake_uploads_rejected_total", (("code", "not_a_video"),))] == 1
    assert samples[("effectlake_uploads_accepted_total", ())] == 0
    assert not any("v_one" in str(labels) for _, labels in samples)  # ids never become labels
    assert not any(route == "/metrics" for _, labels in samples for k, route in labels if k == "route")


def test_no_metric_name_or_label_is_about_money(settings):
    with serve(create_app(settings)) as base, httpx.Client(base_url=base) as c:
        c.get("/v1/effects")
        text = c.get("/metrics").text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"effectlake_http_requests", "effectlake_store_busy", "effectlake_admission_decisions"} <= names
    for family in text_string_to_metric_families(text):
        assert not MONEY.search(family.name), family.name
        assert not MONEY.search(family.documentation), family.documentation
        for sample in family.samples:
            assert not MONEY.search(sample.name), sample.name
            for label, value in sample.labels.items():
                assert not MONEY.search(label) and not MONEY.search(value), (label, value)


def test_metrics_are_served_to_the_allow_list_only(settings):
    elsewhere = settings.model_copy(update={"metrics_allow": "10.0.0.0/8"})
    with serve(create_app(elsewhere)) as base, httpx.Client(base_url=base) as c:
        r = c.get("/metrics")
    assert r.status_code == 403 and r.json()["code"] == "metrics_forbidden"
    assert "effectlake_" not in r.text


def test_client_allowed():
    import ipaddress

    nets = [ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"), ipaddress.ip_network("10.0.0.0/8")]
    assert client_allowed("127.0.0.1", nets) and client_allowed("::1", nets) and client_allowed("10.2.3.4", nets)
    assert not client_allowed("192.168.1.1", nets) and not client_allowed("testclient", nets)
    assert not client_allowed(None, nets)
