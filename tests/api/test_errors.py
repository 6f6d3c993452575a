"""Every mistake a client can make is a 4xx with `{"error": {"code", "message", "field"}}`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from routing.auth import service as auth_service
from routing.report.models import Report
from routing.staff.models import Staff
from routing.types import Role
from tests.harness import Harness

BODY: dict[str, Any] = {"category": "fraud", "callback_phone": "06 12345678"}
JSON = {"Content-Type": "application/json"}


def assert_error(
    r: httpx.Response, status: int, *, code: str | None = None, field: str | None = None
) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert {"code", "message", "field"} <= set(error)
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["field"] is None or isinstance(error["field"], str)
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert error["field"] == field, error
    return error


async def raw_post(
    h: Harness, path: str, content: bytes, headers: dict[str, str]
) -> httpx.Response:
    return await h.client.post(path, content=content, headers={**h.app, **headers})


class TestMalformedBodies:
    @pytest.mark.parametrize(
        "content",
        [
            b'{"category": "fraud",',
            b"{category: fraud}",
            b"{'category': 'fraud'}",
            b'{"category": "fraud"} trailing',
            b"not json at all",
        ],
        ids=["truncated", "unquoted", "single-quotes", "trailing", "text"],
    )
    async def test_malformed_json_is_a_422_json_error(self, h: Harness, content: bytes) -> None:
        r = await raw_post(h, "/v1/reports", content, JSON)
        assert_error(r, 422, field="body")
        assert await h.count(Report) == 0

    async def test_an_empty_body_is_a_422(self, h: Harness) -> None:
        assert_error(await raw_post(h, "/v1/reports", b"", JSON), 422)

    @pytest.mark.parametrize(
        "content",
        [b"\xff\xfe{}", b'{"category": "\xc3"}', b"[" * 100_000, b"1" * 100_000],
        ids=["not-utf8", "broken-utf8", "deeply-nested", "huge-number"],
    )
    async def test_hostile_bodies_are_4xx_not_500(self, h: Harness, content: bytes) -> None:
        r = await raw_post(h, "/v1/reports", content, JSON)
        assert 400 <= r.status_code < 500, r.text
        assert_error(r, r.status_code)
        assert await h.count(Report) == 0

    @pytest.mark.parametrize(
        "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
    )
    async def test_a_body_that_is_not_json_is_rejected(self, h: Harness, content_type: str) -> None:
        r = await raw_post(
            h,
            "/v1/reports",
            b'{"category": "fraud", "callback_phone": "06 12345678"}',
            {"Content-Type": content_type},
        )
        assert r.status_code in (415, 422), r.text
        assert_error(r, r.status_code)
        assert await h.count(Report) == 0

    async def test_json_with_a_charset_is_fine(self, h: Harness) -> None:
        r = await raw_post(
            h,
            "/v1/reports",
            b'{"category": "fraud", "callback_phone": "06 12345678"}',
            {"Content-Type": "application/json; charset=utf-8"},
        )
        assert r.status_code == 201, r.text

    @pytest.mark.parametrize("path", ["/v1/staff", "/v1/chains"])
    async def test_admin_endpoints_reject_malformed_json_too(self, h: Harness, path: str) -> None:
        r = await h.client.post(path, content=b"{", headers={**h.admin, **JSON})
        assert_error(r, 422, field="body")


class TestNulCharacters:
    """PostgreSQL cannot store NUL in text: such input must be refused, not crash the database."""

    @pytest.mark.parametrize("name", ["customer_ref", "description"])
    async def test_nul_in_a_report_field_is_422(self, h: Harness, name: str) -> None:
        r = await h.client.post("/v1/reports", json={**BODY, name: "a\x00b"}, headers=h.app)
        assert_error(r, 422, field=name)
        assert await h.count(Report) == 0

    async def test_nul_in_a_staff_field_is_422(self, h: Harness) -> None:
        body = {"name": "An\x00na", "phone": "06 12345678", "chat_id": "x\x00"}
        r = await h.client.post("/v1/staff", json=body, headers=h.admin)
        assert_error(r, 422, field="name")
        assert await h.count(Staff) == 0

    async def test_nul_in_a_chain_target_is_422(self, h: Harness) -> None:
        body = {"name": "x", "steps": [{"channel": "sms", "targets": ["\x00"], "wait_seconds": 9}]}
        r = await h.client.post("/v1/chains", json=body, headers=h.admin)
        assert_error(r, 422, field="steps.0.targets.0")

    @pytest.mark.parametrize("suffix", ["", "/ack", "/resolve"])
    async def test_nul_in_a_report_id_is_404(self, h: Harness, suffix: str) -> None:
        await h.staff("Anna")
        method = h.client.get if not suffix else h.client.post
        headers = h.admin if not suffix else h.as_staff("Anna")
        r = await method(f"/v1/reports/a%00b{suffix}", headers=headers)
        assert_error(r, 404, code="not_found")


class TestRoutes:
    @pytest.mark.parametrize("path", ["/v1/nope", "/v2/reports", "/", "/v1/reports/x/y/z"])
    async def test_unknown_route_is_a_json_404(self, h: Harness, path: str) -> None:
        r = await h.client.get(path, headers=h.admin)
        assert_error(r, 404, code="not_found")

    @pytest.mark.parametrize(
        ("method", "path", "allowed"),
        [
            ("DELETE", "/v1/reports", {"POST"}),
            ("PUT", "/v1/staff", {"GET", "POST"}),
            ("PATCH", "/v1/chains", {"GET", "POST"}),
            ("POST", "/v1/sla", {"GET"}),
            ("GET", "/v1/reports/x/ack", {"POST"}),
            ("DELETE", "/v1/reports/x", {"GET"}),
        ],
    )
    async def test_wrong_method_is_a_json_405(
        self, h: Harness, method: str, path: str, allowed: set[str]
    ) -> None:
        r = await h.client.request(method, path, headers=h.admin)
        assert_error(r, 405, code="method_not_allowed")
        offered = {m.strip() for m in r.headers["allow"].split(",")}
        assert offered, r.headers
        assert offered <= allowed | {"HEAD"}, offered


class TestAuthentication:
    @pytest.mark.parametrize(
        "authorization",
        [
            None,
            "",
            "Bearer",
            "Bearer ",
            "Bearer not-a-token",
            "Bearer sos_" + "x" * 43,
            "Basic YWRtaW46YWRtaW4=",
            "Token sos_abc",
        ],
        ids=["none", "empty", "scheme-only", "blank", "garbage", "unknown", "basic", "other"],
    )
    async def test_missing_or_invalid_bearer_is_401_with_challenge(
        self, h: Harness, authorization: str | None
    ) -> None:
        headers = {} if authorization is None else {"Authorization": authorization}
        for r in (
            await h.client.post("/v1/reports", json=BODY, headers=headers),
            await h.client.get("/v1/staff", headers=headers),
            await h.client.get("/v1/sla", headers=headers),
        ):
            assert_error(r, 401, code="unauthorized")
            assert r.headers["www-authenticate"] == "Bearer"
        assert await h.count(Report) == 0

    async def test_the_scheme_is_case_insensitive(self, h: Harness) -> None:
        secret = h.admin["Authorization"].removeprefix("Bearer ")
        r = await h.client.get("/v1/staff", headers={"Authorization": f"bearer {secret}"})
        assert r.status_code == 200, r.text

    async def test_a_secret_with_one_character_changed_is_401(self, h: Harness) -> None:
        typo = h.admin["Authorization"][:-1] + ("A" if h.admin["Authorization"][-1] != "A" else "B")
        assert_error(await h.client.get("/v1/staff", headers={"Authorization": typo}), 401)

    async def test_a_revoked_token_is_401(self, h: Harness) -> None:
        async with h.container.db.begin() as session:
            secret, token = await auth_service.create(session, role=Role.APP, now=h.clock.now())
            token.revoked_at = h.clock.now()

        r = await h.client.post(
            "/v1/reports", json=BODY, headers={"Authorization": f"Bearer {secret}"}
        )

        assert_error(r, 401, code="unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
        assert await h.count(Report) == 0

    async def test_a_token_works_until_it_expires(self, h: Harness) -> None:
        expires_at = h.clock.now() + timedelta(hours=1)
        async with h.container.db.begin() as session:
            secret, _ = await auth_service.create(
                session, role=Role.ADMIN, now=h.clock.now(), expires_at=expires_at
            )
        headers = {"Authorization": f"Bearer {secret}"}

        h.clock.set(expires_at - timedelta(seconds=1))
        assert (await h.client.get("/v1/staff", headers=headers)).status_code == 200
        h.clock.set(expires_at)
        r = await h.client.get("/v1/staff", headers=headers)
        assert_error(r, 401, code="unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"

    async def test_an_already_expired_token_is_401(self, h: Harness) -> None:
        async with h.container.db.begin() as session:
            secret, _ = await auth_service.create(
                session,
                role=Role.APP,
                now=h.clock.now(),
                expires_at=h.clock.now() - timedelta(days=1),
            )
        r = await h.client.post(
            "/v1/reports", json=BODY, headers={"Authorization": f"Bearer {secret}"}
        )
        assert_error(r, 401, code="unauthorized")
        assert await h.count(Report) == 0

    async def test_a_staff_token_expiry_blocks_acknowledging(self, h: Harness) -> None:
        staff_id = await h.staff("Anna")
        async with h.container.db.begin() as session:
            secret, _ = await auth_service.create(
                session,
                role=Role.STAFF,
                staff_id=staff_id,
                now=h.clock.now(),
                expires_at=h.clock.now() + timedelta(minutes=5),
            )
        report = await h.report()
        h.clock.advance(minutes=5)

        r = await h.client.post(
            f"/v1/reports/{report['id']}/ack", headers={"Authorization": f"Bearer {secret}"}
        )

        assert_error(r, 401, code="unauthorized")
        assert (await h.get(report["id"]))["status"] == "open"


class TestForbidden:
    async def test_403_is_a_json_error_naming_no_field(self, h: Harness) -> None:
        r = await h.client.get("/v1/staff", headers=h.app)
        error = assert_error(r, 403, code="forbidden")
        assert error["field"] is None
        assert "www-authenticate" not in r.headers


class TestValidationErrorShape:
    async def test_the_first_problem_is_named_in_field_and_message(self, h: Harness) -> None:
        r = await h.client.post(
            "/v1/reports",
            json={"category": "theft", "callback_phone": "nope", "extra": 1},
            headers=h.app,
        )

        error = assert_error(r, 422, code="validation_error")
        assert error["field"] in {"category", "callback_phone", "extra"}
        assert error["field"] in error["message"]

    async def test_times_in_responses_are_iso_8601_with_a_zone(self, h: Harness) -> None:
        r = await h.client.post("/v1/reports", json=BODY, headers=h.app)
        for name in ("received_at", "deadline_at"):
            parsed = datetime.fromisoformat(r.json()[name])
            assert parsed.utcoffset() == timedelta(0)
