"""The console's readiness page: the same findings as `GET /v1/readiness`, reachable from the
console navigation, in the staff member's language, times in the configured zone."""

from __future__ import annotations

import re

from sqlalchemy import update

from routing.staff.models import Staff
from tests.harness import Harness
from tests.web.console_support import sign_in


async def _sign_in(h: Harness, name: str) -> None:
    token = h.staff_tokens[name].removeprefix("Bearer ")
    assert (await sign_in(h.client, token)).status_code == 303


async def _setup(h: Harness) -> None:
    await h.staff("Anna", languages=["en"])
    await h.staff("Bram", "+31687654321", languages=["nl"])
    async with h.container.db.begin() as session:
        await session.execute(
            update(Staff)
            .where(Staff.id == h.names["Bram"])
            .values(sms_stopped_at=h.clock.now(), phone_verified_at=h.clock.now())
        )
    body = {
        "name": "fraud-days",
        "layers": [
            {
                "name": "days",
                "members": [h.names["Anna"]],
                "rotation": "daily",
                "handoff_time": "08:00",
                "start_date": "2026-01-01",
                "active": {"from": "08:00", "to": "20:00"},
            }
        ],
    }
    r = await h.client.post("/v1/schedules", json=body, headers=h.admin)
    assert r.status_code == 201, r.text
    chain = {
        "name": "fraud",
        "categories": ["fraud"],
        "steps": [{"channel": "chat", "schedules": [r.json()["id"]], "wait_seconds": 60}],
    }
    assert (await h.client.post("/v1/chains", json=chain, headers=h.admin)).status_code == 201


async def test_the_readiness_page_lists_what_could_break_the_promise(h: Harness) -> None:
    await _setup(h)
    await _sign_in(h, "Anna")

    page = await h.client.get("/console/readiness")

    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    gaps = re.search(r'<ul id="coverage-gaps">(.*?)</ul>', html, re.S)
    assert gaps
    # 20:00 to 08:00 Amsterdam time, seven nights
    assert "fraud: from 2026-01-05 20:00 to 2026-01-06 08:00" in gaps.group(1)
    assert gaps.group(1).count("<li>") == 7
    unreachable = re.search(r'<ul id="unreachable-chains">(.*?)</ul>', html, re.S)
    assert unreachable
    assert "Anna: no chat id" in unreachable.group(1)
    stopped = re.search(r'<ul id="staff-sms-stopped">(.*?)</ul>', html, re.S)
    assert stopped
    assert "Bram" in stopped.group(1)
    unverified = re.search(r'<ul id="staff-unverified">(.*?)</ul>', html, re.S)
    assert unverified
    assert "Anna" in unverified.group(1)
    assert "Bram" not in unverified.group(1)
    assert 'id="readiness-ok"' not in html
    assert "<script>" not in html


async def test_the_console_navigation_links_to_readiness_in_dutch_too(h: Harness) -> None:
    await _setup(h)
    await _sign_in(h, "Bram")

    home = (await h.client.get("/console")).text
    page = (await h.client.get("/console/readiness")).text

    assert 'href="/console/readiness">Paraatheid<' in home
    assert "Niemand van dienst" in page
    assert "fraud: van 2026-01-05 20:00 tot 2026-01-06 08:00" in page


async def test_the_readiness_page_needs_a_sign_in(h: Harness) -> None:
    r = await h.client.get("/console/readiness")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login"
