"""The dashboard's pages over HTTP (no browser): every page renders with the strict security
headers, hostile document text and questions come back escaped, the filters filter, bad filter
values are said rather than failing, evaluation reports are served sandboxed and nothing but a
listed report is served, and a state-changing POST from another origin is refused."""

from __future__ import annotations

import httpx
import pytest

from ragkeel.ui.render import CSP

from .conftest import HOSTILE, OFF_TOPIC, PWNED, Site


def get(site: Site, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{site.base}{path}", params=params, timeout=30, follow_redirects=False)


@pytest.mark.parametrize(
    "path",
    ["/ui/traces", "/ui/overtime", "/ui/health", "/ui/overtime?days=90", "/ui/static/ui.css"],
)
def test_every_page_renders_with_the_security_headers(site: Site, path: str) -> None:
    r = get(site, path)
    assert r.status_code == 200, r.text
    assert r.headers["content-security-policy"] == CSP
    assert "script-src" not in CSP and "unsafe" not in CSP  # default-src 'none': no script
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "<script" not in r.text.lower()


def test_each_request_wrote_one_trace(site: Site) -> None:
    # an answer taken by the route used to be traced a second time, as CANCELLED, when its
    # pump was closed right after the answer (api/answers.py)
    stored = site.container.traces.recent(100)
    assert sorted(t.id for t in stored) == sorted(site.trace_ids.values())


def test_the_root_redirects_to_the_traces(site: Site) -> None:
    for path in ("/ui", "/ui/"):
        r = httpx.get(f"{site.base}{path}", follow_redirects=True, timeout=30)
        assert r.status_code == 200 and r.url.path == "/ui/traces"


def test_hostile_text_is_escaped_everywhere(site: Site) -> None:
    listing = get(site, "/ui/traces").text
    hostile_id = site.trace_ids["hostile"]
    page = get(site, f"/ui/traces/{hostile_id}").text
    for html in (listing, page):
        assert "<script>document.title" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;document.title=" in html
    assert page.count("&lt;script&gt;") >= 3  # the question, the chunk text, the answer
    assert PWNED in page and HOSTILE not in page


def test_the_trace_page_shows_what_the_request_did(site: Site) -> None:
    answered = get(site, f"/ui/traces/{site.trace_ids['fallback']}").text
    # documents are named as the API names them to the caller: public ids and file names
    assert "doc_" in answered and "keys.md" in answered
    assert str(site.container.home.parent) not in answered
    for part in ('id="chunks"', 'id="gate"', 'id="prompt"', 'id="citations"', 'id="attempts"'):
        assert part in answered, part
    assert "Rotate every API key every ninety days" in answered
    degraded = get(site, f"/ui/traces/{site.trace_ids['degraded']}").text
    assert 'class="pill degraded"' in degraded
    assert get(site, f"/ui/traces/{'f' * 32}").status_code == 404


def test_the_filters_filter(site: Site) -> None:
    refused = get(site, "/ui/traces", outcome="cannot_answer", route="/v1/query").text
    assert OFF_TOPIC in refused and "How often should I rotate" not in refused
    assert refused.count('class="row-') == refused.count('class="row-cannot_answer"') >= 1
    by_text = get(site, "/ui/traces", q="BANANA BREAD").text
    assert by_text.count('class="row-') == 1
    none = get(site, "/ui/traces", since="2099-01-01T00:00").text
    assert 'id="no-traces"' in none
    assert 'class="row-' in get(site, "/ui/traces", until="2099-01-01T00:00").text
    bad = get(site, "/ui/traces", outcome="nope", since="yesterday", before="x")
    assert bad.status_code == 200
    assert "unknown outcome" in bad.text and "since: not a date" in bad.text


def test_reports_are_listed_and_served_sandboxed(site: Site) -> None:
    health = get(site, "/ui/health").text
    assert "scifact-run/report.html" in health
    r = get(site, "/ui/reports/scifact-run/report.html")
    assert r.status_code == 200 and "eval report" in r.text
    assert "sandbox" in r.headers["content-security-policy"]
    assert "script" not in r.headers["content-security-policy"]
    for bad in ("scifact-run%2F..%2F..%2Ftraces.db", "%2e%2e/traces.db", "traces.db", "x"):
        assert get(site, f"/ui/reports/{bad}").status_code in (403, 404), bad


def test_feedback_from_the_page_and_from_another_origin(site: Site) -> None:
    trace_id = site.trace_ids["refused"]
    url = f"{site.base}/ui/traces/{trace_id}/feedback"
    evil = httpx.post(
        url, data={"rating": "down"}, headers={"Origin": "http://evil.example"}, timeout=30
    )
    assert evil.status_code == 403
    ok = httpx.post(
        url,
        data={"rating": "down", "comment": "should have answered"},
        headers={"Origin": site.base},
        timeout=30,
    )
    assert ok.status_code == 303
    page = get(site, f"/ui/traces/{trace_id}").text
    assert "should have answered" in page
    assert site.container.feedback is not None
    assert [f.rating for f in site.container.feedback.for_trace(trace_id)] == ["down"]
    bad = httpx.post(url, data={"rating": "9"}, headers={"Origin": site.base}, timeout=30)
    assert bad.status_code == 422
