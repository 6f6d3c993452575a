"""Console sessions: the cookie (Secure, HttpOnly, SameSite), idle and absolute timeouts kept on
the server, CSRF on every form, and a sign-out that ends the session for good."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from app.main import create_app
from app.settings import AuthSettings, Settings
from app.web.pages import HERE
from routing.auth.models import StaffSession
from routing.auth.service import hash_token
from routing.notify.models import PhoneVerification
from routing.report.models import Report
from tests.harness import VOICE, Harness
from tests.security.test_access import ACCESS, CONSOLE
from tests.web.console_support import form_csrf, sign_in

COOKIE = "sos_session"


@pytest.fixture
def settings(migrated: str, request: pytest.FixtureRequest) -> Settings:
    """The suite's settings, with a test's changes (`indirect` parametrization)."""
    changes: dict[str, Any] = getattr(request, "param", {})
    return Settings(database_url=migrated, sla_seconds=600, seed_demo=False, **changes)


def _cookie(response: httpx.Response) -> str:
    return next(c for c in response.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}="))


async def _signed_in(h: Harness) -> str:
    """Anna, signed in; returns her staff id."""
    anna = await h.staff("Anna", languages=["en"])
    token = h.staff_tokens["Anna"].removeprefix("Bearer ")
    assert (await sign_in(h.client, token)).status_code == 303
    return anna


async def _session(h: Harness, cookie: str | None = None) -> StaffSession:
    """The session of `cookie` (default: the harness client's)."""
    secret = cookie or h.client.cookies[COOKIE]
    async with h.container.db() as session:
        found = await session.get(StaffSession, hash_token(secret))
    assert found is not None
    return found


def _browser(h: Harness, base_url: str = "http://sos.test") -> httpx.AsyncClient:
    """Another browser (sessions live in the database: any app of the container serves it)."""
    transport = httpx.ASGITransport(app=create_app(h.container, run_engine=False))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


def _alive(response: httpx.Response) -> bool:
    if response.status_code == 200:
        return True
    assert (response.status_code, response.headers["location"]) == (303, "/console/login")
    return False


# --- the cookie --------------------------------------------------------------------------------


async def test_the_session_cookie_is_httponly_strict_and_only_for_the_console(h: Harness) -> None:
    await h.staff("Anna")
    response = await sign_in(h.client, h.staff_tokens["Anna"].removeprefix("Bearer "))

    cookie = _cookie(response).lower()

    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/console" in cookie
    assert "secure" not in cookie  # plain-http local development: no public https URL
    value = re.match(rf"{COOKIE}=([^;]+)", _cookie(response))
    assert value is not None
    assert "sos_" not in value.group(1)  # a session secret, never the token


@pytest.mark.parametrize(
    "settings",
    [{"public_base_url": "https://sos.example.nl"}, {"auth": AuthSettings(secure_cookies=True)}],
    indirect=True,
    ids=["https public URL", "forced on"],
)
async def test_the_cookies_are_secure_behind_https(h: Harness) -> None:
    """Behind a TLS proxy the app itself hears plain http: the setting decides, not the request."""
    await h.staff("Anna")
    async with _browser(h, "https://sos.example.nl") as browser:
        login = await browser.get("/console/login")
        response = await sign_in(browser, h.staff_tokens["Anna"].removeprefix("Bearer "))
        form = await browser.get("/report")

    assert "; secure" in _cookie(response).lower()
    for page in (login, form):
        [cookie] = page.headers.get_list("set-cookie")
        assert "; secure" in cookie.lower()


def test_secure_cookies_cannot_be_turned_off_for_an_https_site(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOS_PUBLIC_BASE_URL", "https://sos.example.nl")
    monkeypatch.setenv("SOS_AUTH__SECURE_COOKIES", "false")
    with pytest.raises(ValidationError, match="SOS_AUTH__SECURE_COOKIES"):
        Settings()


# --- timeouts ----------------------------------------------------------------------------------


async def test_a_session_idle_for_30_minutes_is_over(h: Harness) -> None:
    await _signed_in(h)
    for _ in range(3):  # every request keeps it alive
        h.clock.advance(minutes=29)
        assert _alive(await h.client.get("/console"))

    h.clock.advance(minutes=30, seconds=1)

    assert not _alive(await h.client.get("/console"))
    assert (await _session(h)).ended_at == h.clock.now()
    h.clock.advance(-60)  # the session stays over, whatever the clock does next
    assert not _alive(await h.client.get("/console"))


async def test_a_busy_session_still_ends_12_hours_after_sign_in(h: Harness) -> None:
    await _signed_in(h)
    for _ in range(24):
        h.clock.advance(minutes=29, seconds=59)
        assert _alive(await h.client.get("/console"))
    assert (await _session(h)).ended_at is None
    h.clock.advance(minutes=20)  # 12 h 19 min after sign-in, 20 min after the last request

    assert not _alive(await h.client.get("/console"))


@pytest.mark.parametrize(
    "settings",
    [{"auth": AuthSettings(session_idle_seconds=120, session_max_seconds=600)}],
    indirect=True,
)
async def test_the_timeouts_come_from_the_settings(h: Harness) -> None:
    await _signed_in(h)
    h.clock.advance(119)
    assert _alive(await h.client.get("/console"))
    h.clock.advance(121)
    assert not _alive(await h.client.get("/console"))

    await sign_in(h.client, h.staff_tokens["Anna"].removeprefix("Bearer "))
    for _ in range(5):
        h.clock.advance(110)
        assert _alive(await h.client.get("/console"))
    h.clock.advance(110)
    assert not _alive(await h.client.get("/console"))


# --- CSRF --------------------------------------------------------------------------------------

CONSOLE_POSTS = sorted(
    path for (method, path), guard in ACCESS.items() if guard == CONSOLE and method == "POST"
)


async def _world(h: Harness) -> dict[str, str]:
    anna = await _signed_in(h)
    await h.chain(("voice", ["Anna"], 3600))
    report = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    return {"report_id": str(report["id"]), "staff_id": anna}


async def _nothing_changed(h: Harness) -> None:
    assert (await _session(h)).ended_at is None
    async with h.container.db() as session:
        report = await session.scalar(select(Report))
        assert report is not None
        assert report.acknowledged_at is None
        assert report.resolved_at is None
        assert await session.scalar(select(func.count()).select_from(PhoneVerification)) == 0


@pytest.mark.parametrize("path", CONSOLE_POSTS)
async def test_every_console_form_refuses_a_missing_or_wrong_csrf_value(
    h: Harness, path: str
) -> None:
    world = await _world(h)
    url = path.format(**world)
    page = await h.client.get("/console")
    good = form_csrf(page.text)
    async with _browser(
        h
    ) as other:  # a second browser, signed in as Anna too: its value is not this session's
        await sign_in(other, h.staff_tokens["Anna"].removeprefix("Bearer "))
        theirs = form_csrf((await other.get("/console")).text)
    assert theirs != good

    for form in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": good[:-1]}, {"csrf": theirs}):
        r = await h.client.post(url, data={**form, "code": "123456", "channel": "sms"})
        assert r.status_code == 403, (form, r.status_code)

    await _nothing_changed(h)
    assert _alive(await h.client.get("/console"))


async def test_the_sign_in_form_refuses_a_missing_or_forged_csrf_value(h: Harness) -> None:
    await h.staff("Anna")
    token = h.staff_tokens["Anna"].removeprefix("Bearer ")
    good = form_csrf((await h.client.get("/console/login")).text)
    value = h.client.cookies["sos_login_csrf"]

    for form in ({}, {"csrf": ""}, {"csrf": f"{value}.{'0' * 64}"}, {"csrf": good + "0"}):
        r = await h.client.post("/console/login", data={"token": token, **form})
        assert r.status_code == 403, form
    h.client.cookies.clear()  # a forged cross-site post: the browser has no such cookie
    r = await h.client.post("/console/login", data={"token": token, "csrf": good})
    assert r.status_code == 403

    async with h.container.db() as session:
        assert await session.scalar(select(func.count()).select_from(StaffSession)) == 0


def test_every_form_that_posts_carries_a_csrf_value_or_a_secret_link() -> None:
    """Forms of a session or the public forms carry `csrf`; the accept link and the status page
    post to their own unguessable URL and need no cookie (there is nothing to forge)."""
    forms = [
        (path.name, form)
        for path in sorted(Path(HERE / "templates").glob("*.html"))
        for form in re.findall(r"<form\b.*?</form>", path.read_text(), flags=re.S)
        if 'method="post"' in form
    ]
    assert len(forms) >= 8
    for name, form in forms:
        action = re.search(r'action="([^"]*)"', form)
        assert action is not None, name
        capability = "{{ token }}" in action.group(1)
        assert capability or 'name="csrf"' in form, f"{name}: {action.group(1)} has no csrf"


# --- sign-out ----------------------------------------------------------------------------------


async def test_signing_out_ends_the_session_on_the_server(h: Harness) -> None:
    await _signed_in(h)
    old = h.client.cookies[COOKIE]
    csrf = form_csrf((await h.client.get("/console")).text)
    h.clock.advance(60)

    out = await h.client.post("/console/logout", data={"csrf": csrf})

    assert (out.status_code, out.headers["location"]) == (303, "/console/login")
    assert COOKIE not in h.client.cookies  # the browser forgets it
    assert (await _session(h, old)).ended_at == h.clock.now()
    async with _browser(h) as thief:  # someone who kept a copy of the cookie
        thief.cookies.set(COOKIE, old)
        assert not _alive(await thief.get("/console"))
        replay = await thief.post("/console/reports/x/ack", data={"csrf": csrf})
        assert (replay.status_code, replay.headers["location"]) == (303, "/console/login")


async def test_every_sign_in_gets_a_new_session(h: Harness) -> None:
    await _signed_in(h)
    first = h.client.cookies[COOKIE]
    token = h.staff_tokens["Anna"].removeprefix("Bearer ")

    await sign_in(h.client, token)

    assert h.client.cookies[COOKIE] != first
    async with h.container.db() as session:
        assert await session.scalar(select(func.count()).select_from(StaffSession)) == 2
