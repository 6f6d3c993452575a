"""Security headers on every HTML page, and no inline script or style for the policy to allow.

The walk requests every GET route of the app with what it needs to answer (a console session, a
live accept link and status page), plus the error pages, and checks each HTML answer."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from app.web.pages import HERE
from tests.harness import SMS, Harness
from tests.security.test_access import routes
from tests.web.console_support import sign_in

# Inline script and style, which the policy blocks and the pages must not need.
INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "event handler attribute": re.compile(r"<[^>]+\son[a-z]+\s*=", re.I),
    "style attribute": re.compile(r"<[^>]+\sstyle\s*=", re.I),
    "style element": re.compile(r"<style\b", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def directives(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    parts = (part.strip().split(None, 1) for part in policy.split(";") if part.strip())
    return {name: (rest[0] if rest else "") for name, *rest in parts}


def assert_protected(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url.path}"
    csp = directives(response)
    assert csp["frame-ancestors"] == "'none'", where
    assert csp["default-src"] == "'self'", where
    for name in ("script-src", "style-src"):
        sources = csp.get(name, csp["default-src"])
        assert "'unsafe-inline'" not in sources, where
        assert "'unsafe-eval'" not in sources, where
        assert "*" not in sources.split(), where
    assert csp["base-uri"] == "'none'", where
    assert response.headers["x-content-type-options"] == "nosniff", where
    assert response.headers["x-frame-options"] == "DENY", where
    assert response.headers["referrer-policy"] in ("no-referrer", "strict-origin"), where
    for what, pattern in INLINE.items():
        assert not pattern.search(response.text), f"{where}: {what}"


async def _walk_world(h: Harness) -> dict[str, str]:
    """Anna is paged by SMS (an accept link), a report has a status page, Anna is signed in."""
    await h.staff("Anna", languages=["en"])
    await h.chain(("sms", ["Anna"], 3600))
    report = await h.report()
    await h.tick()
    (page,) = h.expect(("Anna", SMS))
    link = re.search(r"/ack/(\S+)$", page.text)
    assert link is not None
    assert (
        await sign_in(h.client, h.staff_tokens["Anna"].removeprefix("Bearer "))
    ).status_code == 303
    return {
        "report_id": str(report["id"]),
        "token": link.group(1),
        "status": str(report["status_url"]).rsplit("/status/", 1)[1],
    }


async def test_every_html_page_carries_the_security_headers(h: Harness) -> None:
    world = await _walk_world(h)
    app = create_app(h.container, run_engine=False)
    seen = []
    for method, path in sorted(routes(app)):
        if method != "GET":
            continue
        token = world["status"] if path.startswith("/status/") else world["token"]
        url = path.format_map(defaultdict(lambda: "x", report_id=world["report_id"], token=token))
        r = await h.client.get("/static/sos.css" if path == "/static" else url)
        assert r.status_code < 500, (url, r.status_code)
        if r.headers.get("content-type", "").startswith("text/html"):
            assert r.status_code == 200, (url, r.status_code)
            assert_protected(r)
            seen.append(path)
        else:
            assert r.headers["x-content-type-options"] == "nosniff", url

    assert set(seen) == {
        "/docs",
        "/ack/{token}",
        "/status/{token}",
        "/report",
        "/console/login",
        "/console",
        "/console/reports/{report_id}",
        "/console/sla",
        "/console/readiness",
        "/console/phone",
    }


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/ack/not-a-link"),
        ("POST", "/ack/not-a-link"),
        ("GET", "/status/not-a-status-page"),
        ("POST", "/report"),  # no CSRF value: 403
        ("POST", "/console/login"),  # no CSRF value: 403
        ("GET", "/console/reports/no-such-report"),
        ("POST", "/console/reports/no-such-report/ack"),  # no CSRF value: 403
    ],
)
async def test_error_pages_carry_them_too(h: Harness, method: str, url: str) -> None:
    await _walk_world(h)

    r = await h.client.request(method, url)

    assert r.status_code in (403, 404), r.status_code
    assert r.headers["content-type"].startswith("text/html")
    assert_protected(r)


async def test_json_csv_and_static_files_are_never_sniffed(h: Harness) -> None:
    await _walk_world(h)
    for url in ("/v1/sla", "/console/sla.csv", "/static/status.js", "/healthz", "/nope"):
        r = await h.client.get(url, headers=h.admin)
        assert r.headers["x-content-type-options"] == "nosniff", url


@pytest.mark.parametrize("template", sorted(p.name for p in (HERE / "templates").glob("*.html")))
def test_templates_hold_no_inline_script_or_style(template: str) -> None:
    text = Path(HERE / "templates" / template).read_text()
    for what, pattern in INLINE.items():
        assert not pattern.search(text), f"{template}: {what}"
    for src in re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]*)"', text):
        assert src.startswith("/static/") or src == "data:,", f"{template}: loads {src}"
