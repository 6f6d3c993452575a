"""A thin Slack Web API client over httpx: the three methods sos-router calls, nothing else.

Requests are JSON with the bot token as a Bearer header, sent to the configured API base only (so
Mattermost's Slack-compatible API or a test fake work the same). Slack answers most failures with
HTTP 200 and `{"ok": false, "error": "..."}`; every failure becomes one of the port's errors:

- HTTP 429, `ratelimited`, `service_unavailable`, `request_timeout` (the body never arrived), or a
  connection that never opened: nothing was posted, safe to retry (`TemporaryProviderError`).
- HTTP 5xx, `internal_error`, `fatal_error`, a timeout or broken connection after sending, an
  answer that is not Slack's JSON: the message may exist (`OutcomeUnknownError`).
- Any other error (`channel_not_found`, `not_in_channel`, `is_archived`, `invalid_auth`,
  `account_inactive`, `token_revoked`, `missing_scope`, `invalid_blocks`, ...) and other 4xx:
  rejected; retrying cannot help, so the chain moves on (`PermanentProviderError`).

No retries here: whether and when to retry is the engine's decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from providers.base import (
    OutcomeUnknownError,
    PermanentProviderError,
    ProviderError,
    TemporaryProviderError,
)

TEMPORARY = frozenset({"ratelimited", "rate_limited", "service_unavailable", "request_timeout"})
UNKNOWN = frozenset({"internal_error", "fatal_error"})


@dataclass(frozen=True, slots=True)
class SlackConfig:
    """Everything the Slack adapter needs; built from settings in `app/`."""

    bot_token: str
    api_base: str = "https://slack.com/api"


@dataclass(frozen=True, slots=True)
class Posted:
    """Where a message landed: `channel` is Slack's id (a DM channel when posted to a user)."""

    channel: str
    ts: str


class SlackClient:
    def __init__(self, config: SlackConfig, http: httpx.AsyncClient) -> None:
        """`http` must have `base_url=config.api_base`; the token is added per request."""
        self.config = config
        self.http = http

    async def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one Web API method; returns Slack's answer when `ok`, raises a port error else."""
        try:
            response = await self.http.post(
                f"/{method}",
                json=body,
                headers={"Authorization": f"Bearer {self.config.bot_token}"},
            )
        except httpx.TransportError as exc:
            raise from_transport(exc) from exc
        return answer(method, response)

    async def post_message(
        self, *, channel: str, text: str, blocks: list[dict[str, Any]]
    ) -> Posted:
        """`chat.postMessage`. `text` is the notification and fallback text for `blocks`."""
        body = await self.call(
            "chat.postMessage",
            {"channel": channel, "text": text, "blocks": blocks, "unfurl_links": False},
        )
        ts = body.get("ts")
        if not isinstance(ts, str) or not ts:
            raise OutcomeUnknownError("slack chat.postMessage: ok without a message ts")
        return Posted(str(body.get("channel") or channel), ts)

    async def update_message(
        self, *, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]
    ) -> None:
        """`chat.update`: replace a message the bot posted (its buttons go with it)."""
        await self.call(
            "chat.update", {"channel": channel, "ts": ts, "text": text, "blocks": blocks}
        )

    async def post_ephemeral(self, *, channel: str, user: str, text: str) -> None:
        """`chat.postEphemeral`: a line in `channel` that only `user` sees."""
        await self.call("chat.postEphemeral", {"channel": channel, "user": user, "text": text})


def answer(method: str, response: httpx.Response) -> dict[str, Any]:
    """Slack's JSON answer when it says `ok`; the matching port error otherwise."""
    prefix = f"slack {method}"
    if response.status_code == 429:
        retry_after = _seconds(response.headers.get("Retry-After"))
        raise TemporaryProviderError(
            f"{prefix}: HTTP 429 rate limited", code="ratelimited", retry_after=retry_after
        )
    if response.status_code >= 500:
        raise OutcomeUnknownError(f"{prefix}: HTTP {response.status_code}")
    if response.status_code >= 300:
        raise PermanentProviderError(f"{prefix}: HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise OutcomeUnknownError(f"{prefix}: an answer that is not JSON") from None
    if not isinstance(body, dict):
        raise OutcomeUnknownError(f"{prefix}: an answer that is not a JSON object")
    if body.get("ok") is True:
        return body
    raise from_error(method, str(body.get("error") or "unknown_error"), response)


def from_error(method: str, error: str, response: httpx.Response | None = None) -> ProviderError:
    detail = f"slack {method}: {error}"
    if error in TEMPORARY:
        header = response.headers.get("Retry-After") if response is not None else None
        return TemporaryProviderError(detail, code=error, retry_after=_seconds(header))
    if error in UNKNOWN:
        return OutcomeUnknownError(detail, code=error)
    return PermanentProviderError(detail, code=error)


def from_transport(exc: httpx.TransportError) -> ProviderError:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return TemporaryProviderError(f"slack unreachable: {type(exc).__name__}")
    return OutcomeUnknownError(f"slack: {type(exc).__name__} after sending")


def new_http_client(config: SlackConfig, **kwargs: Any) -> httpx.AsyncClient:
    """The production HTTP client: the API base, short timeouts (the engine adds a deadline)."""
    kwargs.setdefault("timeout", httpx.Timeout(5.0, connect=3.0))
    return httpx.AsyncClient(base_url=config.api_base, **kwargs)


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
