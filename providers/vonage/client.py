"""A thin Vonage REST client over httpx: the calls sos-router makes, nothing else.

Voice API v1: create a call (`POST /v1/calls`, with an `answer_url` or an inline `ncco`), end it
(`PUT /v1/calls/{uuid}` with `{"action": "hangup"}`), look it up (`GET /v1/calls/{uuid}`).
Messages API v1: send an SMS (`POST /v1/messages`, `channel: sms`). The Messages API has no way to
look a message up (Vonage's Reports API is a separate, paid product): its status webhook is the
only word on an SMS.

Bodies are JSON; numbers go without their `+`. Errors become the port's error classes
(`providers.vonage.errors`). No retries here: whether and when to retry is the engine's decision,
and a create is never blindly repeated.
"""

from __future__ import annotations

from typing import Any

import httpx

from providers.vonage import errors
from providers.vonage.auth import ApplicationJwt
from providers.vonage.config import VonageConfig, msisdn

Ncco = list[dict[str, Any]]


class VonageClient:
    def __init__(self, config: VonageConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self.http = http

    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        try:
            response = await self.http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise errors.from_transport(exc) from exc
        if response.status_code == 404 and method == "GET":
            return None
        if response.status_code >= 300:
            raise errors.from_response(response)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            answer: dict[str, Any] = response.json()
        except ValueError as exc:
            raise errors.from_response(response) from exc
        return answer

    def _phone(self, number: str) -> dict[str, str]:
        return {"type": "phone", "number": msisdn(number)}

    async def create_call(
        self,
        *,
        to: str,
        event_url: str,
        ring_seconds: int,
        answer_url: str | None = None,
        ncco: Ncco | None = None,
        detect_machine: bool = False,
    ) -> str:
        """Ring `to` from our number. When answered, Vonage fetches the NCCO from `answer_url`
        (POST), or runs `ncco` as given; every call event is posted to `event_url`.
        `detect_machine` asks for a `machine` or `human` event, and keeps the call going."""
        assert (answer_url is None) != (ncco is None), "exactly one of answer_url and ncco"
        body: dict[str, Any] = {
            "to": [self._phone(to)],
            "from": self._phone(self.config.from_number),
            "event_url": [event_url],
            "event_method": "POST",
            "ringing_timer": ring_seconds,
        }
        if answer_url is not None:
            body |= {"answer_url": [answer_url], "answer_method": "POST"}
        else:
            body["ncco"] = ncco
        if detect_machine:
            body["machine_detection"] = "continue"
        answer = await self._request("POST", "/v1/calls", body)
        assert answer is not None
        return str(answer["uuid"])

    async def hang_up(self, uuid: str) -> None:
        await self._request("PUT", f"/v1/calls/{uuid}", {"action": "hangup"})

    async def fetch_call(self, uuid: str) -> dict[str, Any] | None:
        return await self._request("GET", f"/v1/calls/{uuid}")

    async def send_sms(
        self, *, to: str, text: str, status_url: str, reference: str, ttl_seconds: int
    ) -> str:
        """Send `text` from our number; its status webhooks go to `status_url` (this message
        only), and `reference` comes back in them as `client_ref`."""
        answer = await self._request(
            "POST",
            "/v1/messages",
            {
                "message_type": "text",
                "channel": "sms",
                "to": msisdn(to),
                "from": msisdn(self.config.from_number),
                "text": text,
                "client_ref": reference[:100],
                "webhook_url": status_url,
                "ttl": ttl_seconds,
            },
        )
        assert answer is not None
        return str(answer["message_uuid"])


def new_http_client(config: VonageConfig, **kwargs: Any) -> httpx.AsyncClient:
    """The production HTTP client: an application JWT on every request, short timeouts (the
    engine adds a hard deadline)."""
    kwargs.setdefault("timeout", httpx.Timeout(5.0, connect=3.0))
    return httpx.AsyncClient(
        base_url=config.api_base,
        auth=ApplicationJwt(config.application_id, config.private_key),
        **kwargs,
    )
