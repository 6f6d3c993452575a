"""Who may do what: one decision per route of the app, checked against the running app.

`ACCESS` names, for every route, the roles whose bearer tokens get through, or the other guard
that protects it. A route added without a line here fails `test_every_route_has_a_decision`.
Every other role gets 403 (and a denied attempt is recorded), no token gets 401. An app client
never learns whether someone else's report exists: 404, the same answer as for no report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import select

from app.container import Container, build
from app.main import create_app
from app.settings import Settings, SlackSettings, TwilioSettings
from routing.audit.models import AuditEvent
from routing.auth import service as auth_service
from routing.auth.models import ApiToken
from routing.auth.service import AuthEvent
from routing.clock import FakeClock
from routing.report.models import Report
from routing.types import Role
from tests.fakes.vonage import vonage_settings
from tests.harness import Harness
from tests.web.console_support import form_csrf, sign_in

APP, STAFF, ADMIN = Role.APP, Role.STAFF, Role.ADMIN
ROLES = (APP, STAFF, ADMIN)

# Guards other than a role: what protects a route that takes no bearer token.
PUBLIC = "public"  # no secret at all: probes, the API description, static files
SIGNED = "signed"  # a provider webhook: its signature, never a token
CAPABILITY = "capability"  # an unguessable secret in the path: accept links, status pages
FORM = "form"  # a public form: double-submit CSRF (the customer's report, console sign-in)
CONSOLE = "console"  # a console session (a staff or admin token signed in), CSRF on POST

Access = frozenset[Role] | str

ACCESS: dict[tuple[str, str], Access] = {
    # Reports: the app backend reports and follows its own; staff act on them; admins read.
    ("POST", "/v1/reports"): frozenset({APP}),
    ("GET", "/v1/reports/{report_id}"): frozenset({APP, STAFF, ADMIN}),
    ("POST", "/v1/reports/{report_id}/ack"): frozenset({STAFF}),
    ("POST", "/v1/reports/{report_id}/callback"): frozenset({APP, STAFF, ADMIN}),
    ("POST", "/v1/reports/{report_id}/resolve"): frozenset({STAFF}),
    # The rota: admins change it, staff read it.
    ("POST", "/v1/staff"): frozenset({ADMIN}),
    ("GET", "/v1/staff"): frozenset({ADMIN}),
    ("POST", "/v1/staff/{staff_id}/verification"): frozenset({STAFF, ADMIN}),
    ("POST", "/v1/staff/{staff_id}/verification/confirm"): frozenset({STAFF, ADMIN}),
    ("POST", "/v1/chains"): frozenset({ADMIN}),
    ("GET", "/v1/chains"): frozenset({ADMIN}),
    ("GET", "/v1/admin/blocks"): frozenset({ADMIN}),
    ("POST", "/v1/admin/blocks/breakers/{breaker_id}/reset"): frozenset({ADMIN}),
    ("POST", "/v1/schedules"): frozenset({ADMIN}),
    ("GET", "/v1/schedules"): frozenset({STAFF, ADMIN}),
    ("GET", "/v1/schedules/{schedule_id}"): frozenset({STAFF, ADMIN}),
    ("PUT", "/v1/schedules/{schedule_id}"): frozenset({ADMIN}),
    ("DELETE", "/v1/schedules/{schedule_id}"): frozenset({ADMIN}),
    ("POST", "/v1/schedules/{schedule_id}/overrides"): frozenset({ADMIN}),
    ("GET", "/v1/schedules/{schedule_id}/overrides"): frozenset({STAFF, ADMIN}),
    ("DELETE", "/v1/schedules/{schedule_id}/overrides/{override_id}"): frozenset({ADMIN}),
    ("GET", "/v1/oncall"): frozenset({STAFF, ADMIN}),
    ("GET", "/v1/readiness"): frozenset({STAFF, ADMIN}),
    ("GET", "/v1/sla"): frozenset({STAFF, ADMIN}),
    # The demo's simulated phones (404 unless the simulator is in use).
    ("GET", "/v1/simulator/pages"): frozenset({STAFF, ADMIN}),
    ("GET", "/v1/simulator/texts"): frozenset({STAFF, ADMIN}),
    ("POST", "/v1/simulator/pages/{page_id}/accept"): frozenset({STAFF, ADMIN}),
    ("POST", "/v1/simulator/pages/{page_id}/miss"): frozenset({STAFF, ADMIN}),
    # Self-monitoring and the API description: nothing personal in them.
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/heartbeat"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("*", "/static"): PUBLIC,
    # Provider webhooks.
    ("POST", "/webhooks/twilio/pages/{page_id}/voice"): SIGNED,
    ("POST", "/webhooks/twilio/pages/{page_id}/digits"): SIGNED,
    ("POST", "/webhooks/twilio/pages/{page_id}/call-status"): SIGNED,
    ("POST", "/webhooks/twilio/pages/{page_id}/amd"): SIGNED,
    ("POST", "/webhooks/twilio/pages/{page_id}/sms-status"): SIGNED,
    ("POST", "/webhooks/twilio/rooms/{report_id}"): SIGNED,
    ("POST", "/webhooks/twilio/sms"): SIGNED,
    ("POST", "/webhooks/twilio/voice"): SIGNED,
    ("POST", "/webhooks/twilio/voice/language"): SIGNED,
    ("POST", "/webhooks/twilio/voice/category"): SIGNED,
    ("POST", "/webhooks/twilio/voice/hold"): SIGNED,
    ("POST", "/webhooks/twilio/bridge/{call_id}/status"): SIGNED,
    ("POST", "/webhooks/twilio/message-status"): SIGNED,
    ("POST", "/webhooks/vonage/pages/{page_id}/answer"): SIGNED,
    ("POST", "/webhooks/vonage/pages/{page_id}/input"): SIGNED,
    ("POST", "/webhooks/vonage/pages/{page_id}/event"): SIGNED,
    ("POST", "/webhooks/vonage/pages/{page_id}/sms-status"): SIGNED,
    ("POST", "/webhooks/vonage/sms"): SIGNED,
    ("POST", "/webhooks/vonage/texts/{message_id}/sms-status"): SIGNED,
    ("POST", "/webhooks/vonage/texts/{message_id}/call-event"): SIGNED,
    ("POST", "/webhooks/vonage/bridge/{call_id}/event"): SIGNED,
    ("POST", "/webhooks/slack/interactive"): SIGNED,
    # Customer and staff pages.
    ("GET", "/ack/{token}"): CAPABILITY,
    ("POST", "/ack/{token}"): CAPABILITY,
    ("GET", "/status/{token}.json"): CAPABILITY,
    ("GET", "/status/{token}"): CAPABILITY,
    ("POST", "/status/{token}/callback"): CAPABILITY,
    ("GET", "/report"): FORM,
    ("POST", "/report"): FORM,
    ("GET", "/console/login"): FORM,
    ("POST", "/console/login"): FORM,
    ("POST", "/console/logout"): CONSOLE,
    ("GET", "/console"): CONSOLE,
    ("POST", "/console/reports/{report_id}/ack"): CONSOLE,
    ("POST", "/console/reports/{report_id}/resolve"): CONSOLE,
    ("GET", "/console/reports/{report_id}"): CONSOLE,
    ("GET", "/console/sla"): CONSOLE,
    ("GET", "/console/sla.csv"): CONSOLE,
    ("GET", "/console/readiness"): CONSOLE,
    ("GET", "/console/phone"): CONSOLE,
    ("POST", "/console/phone/code"): CONSOLE,
    ("POST", "/console/phone/confirm"): CONSOLE,
}


def routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves; a mount (static files) as ("*", path)."""
    found = set()
    for route in iter_route_contexts(app.routes):
        methods = (route.methods or {"*"}) - {"HEAD"}
        found |= {(method, str(route.path)) for method in methods}
    return found


def guarded_by(kind: str) -> list[tuple[str, str]]:
    return sorted(key for key, access in ACCESS.items() if access == kind)


BEARER = sorted(key for key, access in ACCESS.items() if not isinstance(access, str))
REPORT_SCOPED = [key for key in BEARER if "{report_id}" in key[1]]


def ids(keys: list[tuple[str, str]]) -> list[str]:
    return [f"{method} {path}" for method, path in keys]


@dataclass
class World:
    """A report by app client A, a staff member with a token, a schedule with an override."""

    h: Harness
    tokens: dict[Role, dict[str, str]]
    other_app: dict[str, str]
    params: dict[str, str]

    def path(self, template: str, **given: str) -> str:
        return template.format(**{**self.params, **given})


@pytest.fixture
async def world(h: Harness) -> World:
    anna = await h.staff("Anna")
    await h.chain(("voice", ["Anna"], 3600))
    report = await h.report()
    schedule = await h.client.post(
        "/v1/schedules",
        json={
            "name": "nights",
            "layers": [
                {
                    "name": "nights",
                    "members": [anna],
                    "rotation": "daily",
                    "handoff_time": "20:00",
                    "start_date": "2026-01-01",
                }
            ],
        },
        headers=h.admin,
    )
    assert schedule.status_code == 201, schedule.text
    override = await h.client.post(
        f"/v1/schedules/{schedule.json()['id']}/overrides",
        json={
            "kind": "add",
            "staff_id": anna,
            "starts_at": "2026-01-05T10:00:00Z",
            "ends_at": "2026-01-05T12:00:00Z",
        },
        headers=h.admin,
    )
    assert override.status_code == 201, override.text
    return World(
        h=h,
        tokens={APP: h.app, STAFF: h.as_staff("Anna"), ADMIN: h.admin},
        other_app=await h.token(APP),
        params={
            "report_id": str(report["id"]),
            "staff_id": anna,
            "schedule_id": schedule.json()["id"],
            "override_id": override.json()["id"],
            "page_id": "1",
            "breaker_id": "1",
            "call_id": "CA0",
            "message_id": "1",
            "token": "x" * 43,
        },
    )


async def _denials(h: Harness) -> list[AuditEvent]:
    async with h.container.db() as session:
        query = select(AuditEvent).where(AuditEvent.type == AuthEvent.DENIED)
        return list(await session.scalars(query.order_by(AuditEvent.id)))


async def _token_id(h: Harness, secret: str) -> str | None:
    async with h.container.db() as session:
        return await session.scalar(
            select(ApiToken.id).where(ApiToken.token_hash == auth_service.hash_token(secret))
        )


def test_every_route_has_a_decision(container: Container) -> None:
    served = routes(create_app(container, run_engine=False))

    assert served - ACCESS.keys() == set(), "routes without an access decision in ACCESS"
    assert ACCESS.keys() - served == set(), "decisions for routes the app no longer serves"


@pytest.mark.parametrize(("method", "path"), BEARER, ids=ids(BEARER))
async def test_each_role_gets_exactly_the_routes_meant_for_it(
    world: World, method: str, path: str
) -> None:
    h, allowed = world.h, ACCESS[(method, path)]
    assert isinstance(allowed, frozenset)
    url = world.path(path)

    anonymous = await h.client.request(method, url)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["www-authenticate"] == "Bearer"

    for role in sorted(set(ROLES) - allowed):  # refused before anything happens
        refused = await h.client.request(method, url, headers=world.tokens[role])
        assert refused.status_code == 403, (role, refused.text)
        assert refused.json()["error"]["code"] == "forbidden"
    denied = await _denials(h)
    assert [e.data["role"] for e in denied] == [str(r) for r in sorted(set(ROLES) - allowed)]
    assert all(e.data["action"] == f"{method} {url}" for e in denied)

    for role in sorted(allowed):
        r = await h.client.request(method, url, headers=world.tokens[role], json={})
        assert r.status_code not in (401, 403), (role, r.status_code, r.text)
    assert len(await _denials(h)) == len(denied)


async def test_a_denied_admin_attempt_is_recorded_without_the_token(world: World) -> None:
    h = world.h
    secret = world.tokens[STAFF]["Authorization"].removeprefix("Bearer ")

    r = await h.client.post("/v1/chains", json={"name": "mine"}, headers=world.tokens[STAFF])

    assert r.status_code == 403
    [event] = await _denials(h)
    assert event.data == {
        "role": "staff",
        "staff_id": world.params["staff_id"],
        "action": "POST /v1/chains",
    }
    assert event.actor == await _token_id(h, secret)
    assert secret not in f"{event.detail} {event.data}"


@pytest.mark.parametrize(("method", "path"), REPORT_SCOPED, ids=ids(REPORT_SCOPED))
async def test_another_clients_report_looks_like_no_report(
    world: World, method: str, path: str
) -> None:
    """App client B asks about A's report: the very answer it gets for a report that does not
    exist (404 where apps may go, the role's 403 elsewhere), and A's report is unchanged."""
    h = world.h
    body = {"at": "2026-01-05T12:00:00Z"}
    before = await h.get(world.params["report_id"])

    theirs = await h.client.request(method, world.path(path), headers=world.other_app, json=body)
    none = await h.client.request(
        method, world.path(path, report_id="no-such-report"), headers=world.other_app, json=body
    )

    assert (theirs.status_code, theirs.json()) == (none.status_code, none.json())
    assert theirs.status_code == (404 if APP in ACCESS[(method, path)] else 403)
    assert await h.get(world.params["report_id"]) == before
    mine = await h.client.get(world.path("/v1/reports/{report_id}"), headers=world.tokens[APP])
    assert mine.status_code == 200


async def test_web_reports_belong_to_no_app_client(world: World) -> None:
    h = world.h
    csrf = form_csrf((await h.client.get("/report")).text)
    posted = await h.client.post(
        "/report", data={"category": "fraud", "callback_phone": "06 87654321", "csrf": csrf}
    )
    assert posted.status_code == 303
    async with h.container.db() as session:
        web = await session.scalar(select(Report.id).where(Report.channel == "web"))

    r = await h.client.get(f"/v1/reports/{web}", headers=world.tokens[APP])

    assert r.status_code == 404
    assert (
        await h.client.get(f"/v1/reports/{web}", headers=world.tokens[STAFF])
    ).status_code == 200


@pytest.mark.parametrize(("method", "path"), guarded_by(CONSOLE), ids=ids(guarded_by(CONSOLE)))
async def test_console_pages_need_a_console_session_not_a_bearer_token(
    world: World, method: str, path: str
) -> None:
    h = world.h
    url = world.path(path)

    for headers in ({}, world.tokens[ADMIN], world.tokens[STAFF]):
        r = await h.client.request(method, url, headers=headers)
        assert (r.status_code, r.headers.get("location")) == (303, "/console/login")

    for role in (STAFF, ADMIN):
        h.client.cookies.clear()
        token = world.tokens[role]["Authorization"].removeprefix("Bearer ")
        assert (await sign_in(h.client, token)).status_code == 303
        r = await h.client.request(method, url)
        assert r.headers.get("location") != "/console/login", (role, r.status_code)
        assert r.status_code not in (401, 500), (role, r.text)
    h.client.cookies.clear()
    app_token = world.tokens[APP]["Authorization"].removeprefix("Bearer ")
    assert (await sign_in(h.client, app_token)).status_code == 401


@pytest.mark.parametrize(
    ("method", "path"), guarded_by(CAPABILITY), ids=ids(guarded_by(CAPABILITY))
)
async def test_a_capability_page_with_a_wrong_secret_is_404_whatever_token_comes(
    world: World, method: str, path: str
) -> None:
    for headers in ({}, world.tokens[ADMIN]):
        r = await world.h.client.request(
            method, world.path(path), headers=headers, data={"when": "30"}
        )
        assert r.status_code == 404, r.text


@pytest.mark.parametrize(("method", "path"), guarded_by(PUBLIC), ids=ids(guarded_by(PUBLIC)))
async def test_public_routes_need_nothing(world: World, method: str, path: str) -> None:
    url = "/static/sos.css" if path == "/static" else world.path(path)
    r = await world.h.client.request("GET" if method == "*" else method, url)
    assert r.status_code not in (401, 403, 404), r.status_code


@pytest.fixture
async def providers_on(
    settings: Settings, clock: FakeClock, clean_db: None
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """The app with Twilio, Vonage and Slack configured (so their webhooks check signatures),
    and an admin token."""
    del clean_db
    configured = settings.model_copy(
        update={
            "public_base_url": "https://sos.test",
            "twilio": TwilioSettings(
                account_sid="AC0", auth_token="twilio-test", from_number="+3197010000000"
            ),
            "vonage": vonage_settings("+3197010000001"),
            "slack": SlackSettings(bot_token="xoxb-0", signing_secret="slack-test"),
        }
    )
    container = build(configured, clock=clock, raise_errors=True)
    async with container.db.begin() as session:
        secret, _ = await auth_service.create(session, role=ADMIN, now=clock.now())
    transport = httpx.ASGITransport(app=create_app(container, run_engine=False))
    async with httpx.AsyncClient(transport=transport, base_url="https://sos.test") as client:
        yield client, {"Authorization": f"Bearer {secret}"}
    await container.close()


@pytest.mark.parametrize(("method", "path"), guarded_by(SIGNED), ids=ids(guarded_by(SIGNED)))
async def test_a_webhook_wants_its_signature_and_no_token_replaces_it(
    providers_on: tuple[httpx.AsyncClient, dict[str, str]], method: str, path: str
) -> None:
    client, admin = providers_on
    url = path.format(page_id=1, report_id="r", call_id="c", message_id=1)

    r = await client.request(method, url, headers=admin, data={"From": "+31612345678"})

    assert r.status_code in (401, 403), r.text  # Slack: 401 when the signature is missing
