"""Schemathesis against the REST API's OpenAPI description: positive and negative requests to
every operation, each sent without a token and with an app, a staff and an admin token. No answer
may be a 5xx, and every answer must match the description (status, content type, headers, body),
with valid data accepted and invalid data refused with a 4xx.

In-process and on the test database (SQLite, or PostgreSQL with SOS_TEST_DATABASE_URL): the app
runs with a fake clock and the simulated phones as its only provider, so whatever a request makes
the engine page or text goes nowhere. After every request that changed something the engine runs
until idle, so fuzzed names and texts also pass through routing, paging and the outbound texts.

Bounded for CI (`SOS_FUZZ_EXAMPLES`, default 12 per operation and mode; one to three minutes per
database). With `CI` set the run is derandomized: CI fails on a change, not on a rare example
found by chance. Raise `SOS_FUZZ_EXAMPLES` for a longer hunt.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from app.container import Container, build
from app.main import create_app
from app.settings import Settings
from providers.simulated import SimulatedPhones
from routing.clock import FakeClock
from tests.conftest import _empty_tables
from tests.harness import Harness

EXAMPLES = int(os.environ.get("SOS_FUZZ_EXAMPLES", "12"))
BASE_URL = "http://sos.test"
HOUR = timedelta(hours=1)

# A business rule the description cannot state (a callback within 7 days, `until` after
# `since`, a chain naming staff that exist) refuses valid-looking data with a 422: allowed here.
CONFIG = f"""
[generation]
mode = "all"
max-examples = {EXAMPLES}
deterministic = {"true" if os.environ.get("CI") else "false"}

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]
"""


def description() -> dict[str, Any]:
    """The OpenAPI description the app serves (its container never connects)."""
    unused = Settings(database_url="sqlite+aiosqlite:///unused-by-the-description.db")
    app = create_app(build(unused), run_engine=False)
    return app.openapi()


schema = schemathesis.openapi.from_dict(description(), config=schemathesis.Config.from_str(CONFIG))


@dataclass
class Service:
    """The app on the test database, seeded, with one token per role, run on its own loop."""

    runner: asyncio.Runner
    h: Harness
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    known: dict[str, str | int] = field(default_factory=dict)
    round: int = 0
    numbers: int = 0

    @property
    def container(self) -> Container:
        return self.h.container

    async def seed(self) -> None:
        """Objects for path parameters to name: the fuzzed requests may delete or change them,
        so every operation gets fresh ones."""
        h = self.h
        self.round += 1
        name = f"Anna {self.round}"
        staff_id = await h.staff(name, chat_id=f"U{self.round}")
        other_staff_id = await h.staff(f"Bram {self.round}", "+31687654321")
        await h.chain(("voice", [name], 60), name=f"chain {self.round}")
        layer = {
            "name": "day",
            "members": [staff_id],
            "rotation": "daily",
            "handoff_time": "09:00",
            "start_date": "2025-01-01",
        }
        r = await h.client.post(
            "/v1/schedules", json={"name": f"rota {self.round}", "layers": [layer]}, headers=h.admin
        )
        assert r.status_code == 201, r.text
        schedule_id = r.json()["id"]
        now = h.clock.now()
        r = await h.client.post(
            f"/v1/schedules/{schedule_id}/overrides",
            json={
                "kind": "add",
                "staff_id": staff_id,
                "starts_at": now.isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
            },
            headers=h.admin,
        )
        assert r.status_code == 201, r.text
        override_id = r.json()["id"]
        report = await h.report(description="fuzzing")
        await h.tick()
        pages = await h.client.get("/v1/simulator/pages?limit=1", headers=h.admin)
        self.known = {
            "staff_id": staff_id,
            "other_staff_id": other_staff_id,
            "schedule_id": schedule_id,
            "override_id": override_id,
            "report_id": report["id"],
            "page_id": pages.json()[0]["id"],
        }
        self.tokens = {
            "no token": {},
            "app": h.app,
            "staff": h.as_staff(name),
            "admin": h.admin,
        }

    def variants(self, case: schemathesis.Case) -> Iterator[None]:
        """The case as generated; then, when it is a valid one, naming the seeded objects and
        with numbers and ids that exist (a made-up phone number or id only ever reaches a 422
        or a 404), so the fuzzed names and texts get stored, routed and paged."""
        yield
        if not (case.meta and case.meta.generation.mode.is_positive):
            return
        if not case.path_parameters and not isinstance(case.body, dict):
            return
        if case.path_parameters:
            case.path_parameters = {
                k: self.known.get(k, v) for k, v in case.path_parameters.items()
            }
        if isinstance(case.body, dict):
            case.body = self.real(case.body)
        yield

    def real(self, value: Any, key: str = "") -> Any:
        """`value` with every phone number, staff id, schedule, time zone and time replaced by
        one the service accepts."""
        now = self.h.clock.now()
        if isinstance(value, dict):
            fixed = {k: self.real(v, k) for k, v in value.items()}
            if "starts_at" in fixed:  # an override: an hour from now, of the seeded person
                fixed.update(starts_at=now.isoformat(), ends_at=(now + HOUR).isoformat())
                if fixed.get("kind") != "replace":
                    fixed.pop("replaces_staff_id", None)
            return fixed
        if key in ("targets", "members") and isinstance(value, list):
            return [self.known["staff_id"]]
        if isinstance(value, list):
            return [self.real(v, key) for v in value]
        self.numbers += 1
        known = {
            "callback_phone": f"+3161{3000000 + self.numbers:07d}",
            "phone": f"+3161{2000000 + self.numbers:07d}",
            "staff_id": self.known["staff_id"],
            "replaces_staff_id": self.known["other_staff_id"],
            "schedules": self.known["schedule_id"],
            "time_zone": "Europe/Amsterdam",
            "callback_at": (now + HOUR).isoformat(),
            "at": (now + 2 * HOUR).isoformat(),
        }
        return known.get(key, value) if isinstance(value, str) else value

    async def send(self, case: schemathesis.Case, token: dict[str, str]) -> httpx.Response:
        """The request as schemathesis serializes it, with `token`, into the app."""
        kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=token)
        prepared = requests.Request(**kwargs).prepare()
        response = await self.h.client.request(
            prepared.method or "GET",
            prepared.url or BASE_URL,
            headers=dict(prepared.headers),
            content=prepared.body,
        )
        if response.status_code < 300 and case.method.upper() != "GET":
            await self.h.tick()  # what it started runs now, on the simulated phones
        return response


async def _start(database_url: str) -> Harness:
    await _empty_tables(database_url)
    service_settings = Settings(database_url=database_url, sla_seconds=600, seed_demo=False)
    clock = FakeClock()
    phones = SimulatedPhones()
    container = build(service_settings, clock=clock, senders=[phones], raise_errors=True)
    app = create_app(container, run_engine=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    client = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
    h = Harness(client, container, clock, phones)  # type: ignore[arg-type]
    await h.setup()
    return h


async def _stop(h: Harness) -> None:
    await h.client.aclose()
    await h.container.close()


@pytest.fixture(scope="module")
def service(migrated: str) -> Iterator[Service]:
    # The test client's own request lines hold the fuzzed URLs (a `+3161…` in a query string):
    # they are not the service's log, which `log_leaks` still checks.
    client_log = logging.getLogger("httpx")
    level = client_log.level
    client_log.setLevel(logging.WARNING)
    # Its own event loop: Hypothesis calls the test synchronously, once per example.
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        h = runner.run(_start(migrated))
        try:
            yield Service(runner, h)
        finally:
            runner.run(_stop(h))
            client_log.setLevel(level)


@pytest.fixture
def seeded(service: Service) -> Service:
    service.runner.run(service.seed())
    return service


@schema.parametrize()
@settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_matches_its_description(case: schemathesis.Case, seeded: Service) -> None:
    for _ in seeded.variants(case):
        for who, token in seeded.tokens.items():
            response = seeded.runner.run(seeded.send(case, token))
            assert response.status_code < 500, f"{who}: {response.status_code} {response.text}"
            case.validate_response(response)


DESCRIBED = description()["paths"]


@pytest.mark.parametrize("path", sorted(DESCRIBED))
async def test_a_wrong_method_names_every_method_the_path_takes(h: Harness, path: str) -> None:
    described = {m.upper() for m in DESCRIBED[path]}
    wrong = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in described)

    r = await h.client.request(wrong, path.replace("{", "x").replace("}", ""), headers=h.admin)

    assert r.status_code == 405, r.text
    assert set(r.headers["allow"].split(", ")) - {"HEAD"} == described
