"""`sos-router demo`: one complete simulated emergency, in the terminal.

It runs the real service in-process (API, engine, database) against the simulated phones, on a
throwaway SQLite database, with a clock that skips the waiting: report → call → missed → SMS →
a colleague accepts → the verdict on the 10-minute promise, then the report's timeline.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from app import migrate
from app.container import build
from app.main import create_app
from app.seed import seed_demo
from app.settings import PrivacySettings, Settings
from routing import crypto
from routing.clock import FakeClock, SystemClock


def throwaway_keys() -> PrivacySettings:
    return PrivacySettings(
        data_keys=SecretStr(f"demo:{crypto.new_key()}"), lookup_key=SecretStr(crypto.new_key())
    )


def _line(start: datetime, at: str | datetime, text: str) -> None:
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    seconds = int((when - start).total_seconds())
    print(f"  +{seconds // 60:02d}:{seconds % 60:02d}  {text}")


async def run_demo(database_url: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sos-router-demo-") as tmp:
        url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}"
        await migrate.upgrade_async(url)
        clock = FakeClock(SystemClock().now())
        settings = Settings(database_url=url, seed_demo=False)
        if database_url is None and not settings.privacy.configured:
            settings.privacy = throwaway_keys()  # a throwaway database needs no lasting keys
        container = build(settings, clock=clock)
        async with container.db.begin() as session:
            rota = await seed_demo(session, now=clock.now())
        app = create_app(container, run_engine=False)
        transport = httpx.ASGITransport(app=app)
        engine = container.engine
        start = clock.now()
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as api:
            app_auth = {"Authorization": f"Bearer {rota.tokens['app']}"}
            staff_auth = {"Authorization": f"Bearer {rota.tokens['admin']}"}

            print("\nA customer sees money leaving their account and presses SOS in the app.\n")
            response = await api.post(
                "/v1/reports",
                headers=app_auth,
                json={
                    "category": "fraud",
                    "callback_phone": "06 12345678",
                    "language": "nl",
                    "description": "Er gaat geld van mijn rekening af dat ik niet heb overgemaakt.",
                },
            )
            response.raise_for_status()
            report = response.json()
            _line(
                start,
                report["received_at"],
                f"report {report['reference']} received; the promise: a human by "
                f"{datetime.fromisoformat(report['deadline_at']):%H:%M:%S}",
            )
            await engine.run_until_idle()
            pages = (await api.get("/v1/simulator/pages", headers=staff_auth)).json()
            for page in reversed(pages):
                _line(start, clock.now(), f"ringing {page['staff_name']} ({page['channel']})")

            clock.advance(20)
            call = pages[0]
            await api.post(f"/v1/simulator/pages/{call['id']}/miss", headers=staff_auth)
            _line(start, clock.now(), f"{call['staff_name']} does not answer: falling back now")
            await engine.run_until_idle()
            pages = (await api.get("/v1/simulator/pages", headers=staff_auth)).json()
            sms = [p for p in pages if p["step"] == 2]
            for page in reversed(sms):
                _line(start, clock.now(), f"SMS to {page['staff_name']}")

            clock.advance(25)
            bram = next(p for p in sms if p["staff_name"].startswith("Bram"))
            await api.post(f"/v1/simulator/pages/{bram['id']}/accept", headers=staff_auth)
            _line(start, clock.now(), f"{bram['staff_name']} replies 1 and takes the case")
            await engine.run_until_idle()

            final = (await api.get(f"/v1/reports/{report['id']}", headers=staff_auth)).json()
        await container.close()

    verdict = {True: "MET", False: "MISSED", None: "OPEN"}[final["sla"]["met"]]
    print(
        f"\nVerdict: promise {verdict} — a human accepted after "
        f"{final['sla']['time_to_ack_seconds']:.0f} s (limit 600 s).\n"
    )
    print(f"Timeline of report {final['reference']} (as GET /v1/reports/{{id}} shows it):")
    for event in final["timeline"]:
        _line(start, event["at"], f"{event['type']:<14} {event['detail']}")
    print("\n(Simulated phones and simulated time: nobody was really called.)")
    return dict(final)


def main(database_url: str | None = None) -> int:
    final = asyncio.run(run_demo(database_url))
    return 0 if final["sla"]["met"] else 1
