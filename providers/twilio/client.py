"""A thin Twilio REST client over httpx: the calls sos-router makes, nothing else.

Requests are form-encoded with repeated keys for lists; answers are parsed into plain values.
Errors become the port's error classes (`providers.twilio.errors`). No retries here: whether and
when to retry is the engine's decision, and a create is never blindly repeated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from providers.base import ProviderError
from providers.twilio import errors
from providers.twilio.config import TwilioConfig

CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
# One page of a list is enough to look a page up: it asks about one number, since shortly
# before the page went out. More than this says "not all of them" (`next_page_uri`).
LIST_PAGE_SIZE = 100


class TwilioClient:
    def __init__(self, config: TwilioConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self.http = http
        self.prefix = f"/2010-04-01/Accounts/{config.account_sid}"

    async def _request(
        self,
        method: str,
        path: str,
        data: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        try:
            response = await self.http.request(method, self.prefix + path, data=data, params=params)
        except httpx.TransportError as exc:
            raise errors.from_transport(exc) from exc
        if response.status_code == 404 and method == "GET":
            return None
        if response.status_code >= 300:
            raise errors.from_response(response)
        body: dict[str, Any] = response.json()
        return body

    async def create_call(
        self, *, to: str, url: str, status_callback: str, amd_callback: str, ring_seconds: int
    ) -> str:
        body = await self._request(
            "POST",
            "/Calls.json",
            {
                "To": to,
                "From": self.config.from_number,
                "Url": url,
                "StatusCallback": status_callback,
                "StatusCallbackEvent": CALL_EVENTS,
                "Timeout": str(ring_seconds),
                "MachineDetection": "Enable",
                "AsyncAmd": "true",
                "AsyncAmdStatusCallback": amd_callback,
            },
        )
        assert body is not None
        return str(body["sid"])

    async def create_spoken_call(
        self, *, to: str, twiml: str, status_callback: str, ring_seconds: int
    ) -> str:
        """A call that says something and hangs up: its TwiML goes inline (`Twiml`), so nothing
        is fetched from us when it is answered. Only the final status is called back."""
        body = await self._request(
            "POST",
            "/Calls.json",
            {
                "To": to,
                "From": self.config.from_number,
                "Twiml": twiml,
                "StatusCallback": status_callback,
                "Timeout": str(ring_seconds),
            },
        )
        assert body is not None
        return str(body["sid"])

    async def end_call(self, sid: str) -> None:
        await self._request("POST", f"/Calls/{sid}.json", {"Status": "completed"})

    async def fetch_call(self, sid: str) -> dict[str, Any] | None:
        return await self._request("GET", f"/Calls/{sid}.json")

    async def create_message(
        self, *, to: str, body: str, status_callback: str, validity_seconds: int
    ) -> str:
        answer = await self._request(
            "POST",
            "/Messages.json",
            {
                "To": to,
                "From": self.config.from_number,
                "Body": body,
                "StatusCallback": status_callback,
                "ValidityPeriod": str(validity_seconds),
            },
        )
        assert answer is not None
        return str(answer["sid"])

    async def fetch_message(self, sid: str) -> dict[str, Any] | None:
        return await self._request("GET", f"/Messages/{sid}.json")

    async def list_messages(
        self, *, to: str, sent_after: datetime
    ) -> tuple[list[dict[str, Any]], bool]:
        """Messages from our number to `to` sent on or after `sent_after` (`DateSent>`; a message
        still in Twilio's queue has no sent date yet), newest first; and whether that was all."""
        return await self._list(
            "Messages.json", "messages", {"To": to, "DateSent>": _timestamp(sent_after)}
        )

    async def list_calls(
        self, *, to: str, started_after: datetime | None = None, status: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """Calls from our number to `to` that started (were dialled) on or after `started_after`
        (`StartTime>`), or that are in `status` (`queued`: not dialled yet, so no start time);
        newest first; and whether that was all."""
        params = {"To": to}
        if started_after is not None:
            params["StartTime>"] = _timestamp(started_after)
        if status is not None:
            params["Status"] = status
        return await self._list("Calls.json", "calls", params)

    async def _list(
        self, path: str, key: str, params: dict[str, str]
    ) -> tuple[list[dict[str, Any]], bool]:
        params |= {"From": self.config.from_number, "PageSize": str(LIST_PAGE_SIZE)}
        body = await self._request("GET", f"/{path}", params=params)
        if body is None:
            raise ProviderError(f"twilio 404 listing {path}")
        return list(body.get(key) or []), body.get("next_page_uri") is None

    async def add_participant(
        self,
        *,
        conference: str,
        to: str,
        status_callback: str,
        ring_seconds: int,
        starts_room: bool,
    ) -> str:
        """Call `to` into the room. Whoever `starts_room` opens it; the others hear hold music
        until then, and the room ends when its starter leaves."""
        body = await self._request(
            "POST",
            f"/Conferences/{conference}/Participants.json",
            {
                "From": self.config.from_number,
                "To": to,
                "Timeout": str(ring_seconds),
                "StatusCallback": status_callback,
                "StatusCallbackEvent": "initiated ringing answered completed",
                "EarlyMedia": "false",
                "Beep": "false",
                "StartConferenceOnEnter": "true" if starts_room else "false",
                "EndConferenceOnExit": "true" if starts_room else "false",
            },
        )
        assert body is not None
        return str(body["call_sid"])


def _timestamp(at: datetime) -> str:
    """A list filter's moment: UTC, to the second, as the contract's `date-time` (Twilio's
    helper libraries send the same)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_http_client(config: TwilioConfig, **kwargs: Any) -> httpx.AsyncClient:
    """The production HTTP client: Basic auth, short timeouts (the engine adds a hard deadline)."""
    kwargs.setdefault("timeout", httpx.Timeout(5.0, connect=3.0))
    return httpx.AsyncClient(
        base_url=config.api_base, auth=(config.account_sid, config.auth_token), **kwargs
    )
