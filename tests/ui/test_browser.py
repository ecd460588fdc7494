"""The dashboard in a real browser: Playwright for Python driving Debian's chromium (headless;
browsers are never downloaded) against ragkeel served by uvicorn on 127.0.0.1 with traffic sent
through its API. Each page loads without one Content-Security-Policy violation or script error,
the filters filter, a trace opens with its chunks, gate, prompt, answer and gateway attempts,
feedback is given from the page, hostile document text and questions are shown, never run, an
evaluation report's own script does not run, and with auth required the browser signs in with
a key through the form.

Screenshots of every page are saved under ``tmp_path``, and into ``RAGKEEL_UI_SCREENSHOTS``
when set (how ``docs/images/`` is made: README, section Dashboard)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from api.conftest import serve
from ragkeel.api import create_app
from ragkeel.observability.trace import new_trace_id
from ragkeel.testing import FaultServer
from ragkeel.testing.contracts.trace_store import full_trace

from .conftest import GOOD, HOSTILE_DOC, PWNED, Site, build_container, send_traffic

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: object, tmp_path: Path) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})  # type: ignore[attr-defined]
    context.set_default_timeout(TIMEOUT_MS)
    p = context.new_page()
    p.problems = []  # CSP violations, script errors, failed requests
    p.on("console", lambda m: p.problems.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: p.problems.append(str(e)))
    yield p
    context.close()


def shot(page: object, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    assert path.stat().st_size > 5_000
    target = os.environ.get("RAGKEEL_UI_SCREENSHOTS")
    if target:  # committed images: 64-colour palette PNGs, a fraction of the size
        from PIL import Image

        Path(target).mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            small = image.convert("RGB").quantize(colors=64)
            small.save(Path(target) / path.name, optimize=True)


def not_run(page: object) -> None:
    """No hostile script ran on the page, and nothing the page did broke its own CSP."""
    assert page.title() != PWNED  # type: ignore[attr-defined]
    assert page.evaluate("typeof window.pwned") == "undefined"  # type: ignore[attr-defined]
    assert page.locator("img[src='x']").count() == 0  # type: ignore[attr-defined]
    assert page.problems == []  # type: ignore[attr-defined]


def rows(page: object) -> list[str]:
    return page.locator("#trace-list tbody tr").evaluate_all(  # type: ignore[attr-defined]
        "rows => rows.map(r => r.className)"
    )


def test_traces_filters_and_a_trace(site: Site, page: object, tmp_path: Path) -> None:
    p = page
    p.goto(f"{site.base}/ui/traces")  # type: ignore[attr-defined]
    assert len(rows(p)) == len(site.trace_ids)
    not_run(p)
    shot(p, tmp_path, "dashboard-traces")

    p.select_option("#f-outcome", "cannot_answer")  # type: ignore[attr-defined]
    p.click("#f-apply")  # type: ignore[attr-defined]
    p.wait_for_url("**outcome=cannot_answer**")  # type: ignore[attr-defined]
    assert rows(p) == ["row-cannot_answer"]
    p.select_option("#f-outcome", "")  # type: ignore[attr-defined]
    p.fill("#f-text", "rotate keys")  # type: ignore[attr-defined]
    p.click("#f-apply")  # type: ignore[attr-defined]
    p.wait_for_url("**q=rotate+keys**")  # type: ignore[attr-defined]
    assert rows(p) == ["row-answered"]
    p.fill("#f-text", "")  # type: ignore[attr-defined]
    p.fill("#f-since", "2099-01-01T00:00")  # type: ignore[attr-defined]
    p.click("#f-apply")  # type: ignore[attr-defined]
    p.wait_for_url("**since=2099**")  # type: ignore[attr-defined]
    assert p.locator("#no-traces").is_visible()  # type: ignore[attr-defined]

    p.goto(f"{site.base}/ui/traces?outcome=answered")  # type: ignore[attr-defined]
    p.locator("td.question a", has_text="rotate keys").click()  # type: ignore[attr-defined]
    p.wait_for_url(f"**/ui/traces/{site.trace_ids['fallback']}")  # type: ignore[attr-defined]
    assert p.locator("#chunks tbody tr").count() >= 1  # type: ignore[attr-defined]
    attempts = p.locator("#attempts tbody tr").all_inner_texts()  # type: ignore[attr-defined]
    assert any("d0" in a and "error" in a for a in attempts), attempts
    assert any("d1" in a and "ok" in a for a in attempts), attempts
    assert "passed" in p.inner_text("#gate")  # type: ignore[attr-defined]
    assert GOOD in p.inner_text("#answer")  # type: ignore[attr-defined]
    assert p.locator("svg.waterfall rect").count() >= 3  # type: ignore[attr-defined]
    p.click("details summary")  # type: ignore[attr-defined]
    assert "ninety days" in p.inner_text("#prompt")  # type: ignore[attr-defined]
    not_run(p)
    shot(p, tmp_path, "dashboard-trace")

    p.select_option("#r-rating", "2")  # type: ignore[attr-defined]
    p.fill("#r-comment", "cites the wrong document")  # type: ignore[attr-defined]
    p.click("#r-send")  # type: ignore[attr-defined]
    p.wait_for_selector("#feedback")  # type: ignore[attr-defined]
    assert "cites the wrong document" in p.inner_text("#feedback")  # type: ignore[attr-defined]
    not_run(p)


def test_hostile_text_is_shown_never_run(site: Site, page: object) -> None:
    p = page
    p.goto(f"{site.base}/ui/traces/{site.trace_ids['hostile']}")  # type: ignore[attr-defined]
    shown = p.inner_text("#chunks")  # type: ignore[attr-defined]
    assert "<script>document.title" in shown and "Key rotation handbook" in shown
    assert "<script>" in p.inner_text("#question")  # type: ignore[attr-defined]
    assert "<img src=x onerror" in p.inner_text("#answer")  # type: ignore[attr-defined]
    assert p.locator("main b").count() == 0  # type: ignore[attr-defined]  # <b> stayed text
    not_run(p)
    p.goto(f"{site.base}/ui/traces")  # type: ignore[attr-defined]
    assert "<script>" in p.inner_text("#trace-list")  # type: ignore[attr-defined]
    not_run(p)
    assert HOSTILE_DOC.split("<")[0] in shown


def history(site: Site, days: int = 13) -> int:
    """Synthetic traces on the days before today (the API's traffic is all from today), so the
    over-time charts have a history to draw: a few requests a day, latency, cost and refusals
    varying by day. How many were recorded."""
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    n = 0
    for day in range(1, days + 1):
        for i in range(3 + day % 4):
            outcome = "cannot_answer" if (i + day) % 5 == 0 else "answered"
            trace = full_trace(
                outcome,
                latency_ms={"total": 400.0 + 90 * (day % 5) + 40 * i},
                cost=0.0002 * (1 + day % 3),
            )
            when = (midnight - timedelta(days=day, hours=-(2 + 3 * i))).timestamp()
            site.container.traces.record(replace(trace, id=new_trace_id(), created_at=when))
            n += 1
    return n


def test_over_time_and_health(site: Site, page: object, tmp_path: Path) -> None:
    p = page
    older = history(site)
    p.goto(f"{site.base}/ui/overtime")  # type: ignore[attr-defined]
    assert f"{len(site.trace_ids) + older} requests" in p.inner_text("main")  # type: ignore[attr-defined]
    assert p.locator("#charts figure").count() == 4  # type: ignore[attr-defined]
    assert p.locator("#charts path.line").count() >= 4  # type: ignore[attr-defined]
    assert "monitor not running" in p.inner_text("#drift").lower()  # type: ignore[attr-defined]
    today = p.locator("#days tbody tr").first.inner_text()  # type: ignore[attr-defined]
    assert f"\t{len(site.trace_ids)}\t" in today, today
    not_run(p)
    shot(p, tmp_path, "dashboard-overtime")

    p.goto(f"{site.base}/ui/health")  # type: ignore[attr-defined]
    assert "open" in p.inner_text("#breakers")  # type: ignore[attr-defined]  # both were down
    assert "ready" in p.inner_text("#readiness")  # type: ignore[attr-defined]
    not_run(p)
    shot(p, tmp_path, "dashboard-health")
    p.click("#reports a")  # type: ignore[attr-defined]
    p.wait_for_url("**/ui/reports/scifact-run/report.html")  # type: ignore[attr-defined]
    assert "eval report" in p.inner_text("h1")  # type: ignore[attr-defined]
    assert p.evaluate("typeof window.pwned") == "undefined"  # type: ignore[attr-defined]


def test_signing_in_with_a_key(browser: object, tmp_path: Path) -> None:
    with FaultServer(seed=1) as model:
        model.set(reply=GOOD)
        container = build_container(tmp_path / "home", tmp_path / "docs", model.base_url)
        token = container.keys.create("team-a", "query")[1]
        with serve(create_app(container, host="0.0.0.0")) as base:  # auth auto -> required
            with httpx.Client(base_url=base, timeout=30) as client:
                send_traffic(client, model, model, {"Authorization": f"Bearer {token}"})
            context = browser.new_context(viewport={"width": 1100, "height": 700})  # type: ignore[attr-defined]
            context.set_default_timeout(TIMEOUT_MS)
            p = context.new_page()
            p.problems = []
            p.on("pageerror", lambda e: p.problems.append(str(e)))
            p.goto(f"{base}/ui/traces")
            p.wait_for_url("**/ui/login")
            shot(p, tmp_path, "dashboard-login")
            p.fill("#key", token)
            p.click("button[type=submit]")
            p.wait_for_url("**/ui/traces")
            assert "tenant team-a" in p.inner_text("header")
            assert len(rows(p)) == 5
            cookie = next(c for c in context.cookies() if c["name"] == "ragkeel_ui")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            assert p.evaluate("document.cookie") == ""  # no script can read it
            p.click("text=Sign out")
            p.wait_for_url("**/ui/login")
            p.goto(f"{base}/ui/traces")
            p.wait_for_url("**/ui/login")
            assert p.problems == []
            context.close()
