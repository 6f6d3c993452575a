"""Tokens: they expire and can be revoked from the command line (refused at once by every process),
wrong ones are rate-limited per client address and recorded without the secret.

The command runs in a thread of the test (its own event loop and database connections), as it
would in another process; the apps it must affect are already serving."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app import cli
from app.container import Container, build
from app.main import create_app
from app.settings import Settings
from routing.audit.models import AuditEvent
from routing.auth import service as auth_service
from routing.auth.models import ApiToken, StaffSession
from routing.auth.service import AuthEvent, hash_token
from routing.clock import FakeClock
from routing.types import Role
from tests.harness import Harness
from tests.web.console_support import sign_in

RunCli = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def run_cli(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> RunCli:
    """`sos-router ARGS` on the test database: (exit code, stdout, stderr)."""
    monkeypatch.setenv("SOS_DATABASE_URL", settings.database_url)

    async def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = await asyncio.to_thread(cli.main, list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
async def second_process(
    container: Container, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    """Another app on the same database, as a second `sos-router serve` would be."""
    other = build(container.settings, clock=clock, raise_errors=True)
    transport = httpx.ASGITransport(app=create_app(other, run_engine=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://sos.test") as client:
        yield client
    await other.close()


def _secret(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def _token(h: Harness, secret: str) -> ApiToken:
    async with h.container.db() as session:
        token = await session.scalar(
            select(ApiToken).where(ApiToken.token_hash == hash_token(secret))
        )
    assert token is not None
    return token


async def _events(h: Harness, kind: str) -> list[AuditEvent]:
    async with h.container.db() as session:
        query = select(AuditEvent).where(AuditEvent.type == kind).order_by(AuditEvent.id)
        return list(await session.scalars(query))


# --- revocation and expiry ---------------------------------------------------------------------


async def test_a_revoked_token_is_refused_at_once_by_every_process(
    h: Harness, second_process: httpx.AsyncClient, run_cli: RunCli
) -> None:
    await h.staff("Anna")
    staff = h.as_staff("Anna")
    for client in (h.client, second_process):
        assert (await client.get("/v1/sla", headers=staff)).status_code == 200
    assert (await sign_in(h.client, _secret(staff))).status_code == 303
    assert (await h.client.get("/console")).status_code == 200
    token = await _token(h, _secret(staff))

    code, out, _ = await run_cli("token", "revoke", token.id)

    assert code == 0
    assert token.id in out
    for client in (h.client, second_process):
        r = await client.get("/v1/sla", headers=staff)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
    page = await h.client.get("/console")
    assert (page.status_code, page.headers["location"]) == (303, "/console/login")
    async with h.container.db() as session:
        [console] = await session.scalars(select(StaffSession))
    assert console.ended_at is not None
    [revoked] = await _events(h, AuthEvent.TOKEN_REVOKED)
    assert revoked.data["token_id"] == token.id
    assert _secret(staff) not in f"{revoked.detail} {revoked.data}"


async def test_a_token_can_be_revoked_by_its_secret_read_from_stdin(
    h: Harness, run_cli: RunCli
) -> None:
    code, _, _ = await run_cli("token", "revoke", "--secret", stdin=_secret(h.admin) + "\n")

    assert code == 0
    assert (await h.client.get("/v1/staff", headers=h.admin)).status_code == 401
    assert (await h.client.get("/v1/sla", headers=h.app)).status_code == 403  # others still work


async def test_revoking_an_unknown_token_says_so(h: Harness, run_cli: RunCli) -> None:
    code, out, err = await run_cli("token", "revoke", "--secret", stdin="sos_" + "x" * 43)

    assert code == 2
    assert "no such token" in err
    assert "sos_" not in out + err
    assert (await h.client.get("/v1/staff", headers=h.admin)).status_code == 200


async def test_a_token_created_with_an_expiry_stops_working_then(
    h: Harness, run_cli: RunCli
) -> None:
    code, out, err = await run_cli("token", "create", "--role", "admin", "--expires-in", "90d")

    assert code == 0
    [secret] = out.split()
    token = await _token(h, secret)
    assert token.id in err
    assert token.expires_at is not None
    assert token.expires_at - token.created_at == timedelta(days=90)
    headers = {"Authorization": f"Bearer {secret}"}
    h.clock.set(token.expires_at - timedelta(seconds=1))
    assert (await h.client.get("/v1/staff", headers=headers)).status_code == 200
    h.clock.set(token.expires_at)
    assert (await h.client.get("/v1/staff", headers=headers)).status_code == 401
    [failed] = await _events(h, AuthEvent.FAILED)
    assert failed.data["reason"] == "expired"


@pytest.mark.parametrize("duration", ["0d", "90", "d", "-1h", "1y", "abc"])
async def test_an_expiry_must_be_a_positive_duration(
    h: Harness, run_cli: RunCli, duration: str
) -> None:
    with pytest.raises(SystemExit):
        await run_cli("token", "create", "--role", "admin", "--expires-in", duration)
    async with h.container.db() as session:
        assert len(list(await session.scalars(select(ApiToken)))) == 2  # the harness's own


async def test_the_token_list_shows_ids_and_states_never_secrets(
    h: Harness, run_cli: RunCli
) -> None:
    app_token = await _token(h, _secret(h.app))
    await run_cli("token", "revoke", app_token.id)

    code, out, _ = await run_cli("token", "list")

    assert code == 0
    assert "sos_" not in out
    line = next(line for line in out.splitlines() if line.startswith(app_token.id))
    assert "revoked" in line


async def test_an_expired_tokens_console_session_ends_with_it(h: Harness) -> None:
    staff_id = await h.staff("Anna")
    async with h.container.db.begin() as session:
        secret, _ = await auth_service.create(
            session,
            role=Role.STAFF,
            staff_id=staff_id,
            now=h.clock.now(),
            expires_at=h.clock.now() + timedelta(minutes=10),
        )
    assert (await sign_in(h.client, secret)).status_code == 303
    assert (await h.client.get("/console")).status_code == 200

    h.clock.advance(minutes=10)

    assert (await h.client.get("/console")).status_code == 303


# --- failed authentication ---------------------------------------------------------------------


def _from(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 4321))
    return httpx.AsyncClient(transport=transport, base_url="http://sos.test")


async def test_wrong_tokens_from_one_address_are_limited_then_let_through_again(
    h: Harness,
) -> None:
    limit = h.container.settings.auth.failure_limit
    window = h.container.settings.auth.failure_window_seconds
    wrong = {"Authorization": "Bearer sos_" + "w" * 43}
    app = create_app(h.container, run_engine=False)
    async with _from(app, "203.0.113.7") as attacker, _from(app, "198.51.100.1") as neighbour:
        for _ in range(limit):
            assert (await attacker.get("/v1/staff", headers=wrong)).status_code == 401
        h.clock.advance(10)

        refused = await attacker.get("/v1/staff", headers=h.admin)  # even the right token

        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) == window - 10
        assert (await neighbour.get("/v1/staff", headers=h.admin)).status_code == 200
        assert (await attacker.get("/v1/staff")).status_code == 401  # no token: nothing to limit

        h.clock.advance(window - 10)
        assert (await attacker.get("/v1/staff", headers=h.admin)).status_code == 200

    failed = await _events(h, AuthEvent.FAILED)
    assert len(failed) == limit  # the 429s guess nothing and write nothing
    assert {e.actor for e in failed} == {"203.0.113.7"}
    assert {e.data["reason"] for e in failed} == {"unknown"}


async def test_a_failure_is_recorded_with_its_reason_and_never_the_secret(h: Harness) -> None:
    token = await _token(h, _secret(h.app))
    async with h.container.db.begin() as session:
        await session.execute(
            update(ApiToken).where(ApiToken.id == token.id).values(revoked_at=h.clock.now())
        )

    r = await h.client.post("/v1/reports", json={}, headers=h.app)

    assert r.status_code == 401
    [event] = await _events(h, AuthEvent.FAILED)
    assert event.data == {"reason": "revoked", "token_id": token.id, "where": "api"}
    assert event.actor == "127.0.0.1"
    assert _secret(h.app) not in f"{event.detail} {event.data} {event.actor}"


async def test_console_sign_in_failures_count_towards_the_same_limit(h: Harness) -> None:
    await h.staff("Anna")
    limit = h.container.settings.auth.failure_limit
    wrong = {"Authorization": "Bearer sos_" + "w" * 43}
    for _ in range(limit - 1):
        assert (await h.client.get("/v1/sla", headers=wrong)).status_code == 401
    assert (await sign_in(h.client, _secret(h.app))).status_code == 401  # not a console token

    page = await sign_in(h.client, _secret(h.as_staff("Anna")))

    assert page.status_code == 429
    assert int(page.headers["retry-after"]) > 0
    assert "Te veel mislukte pogingen" in page.text
    assert "sos_session" not in page.headers.get("set-cookie", "")
    failed = await _events(h, AuthEvent.FAILED)
    assert [e.data["where"] for e in failed] == ["api"] * (limit - 1) + ["console sign-in"]
    assert failed[-1].data["reason"] == "app token"
