"""Abuse limits on requests: body size and request rates, as pure ASGI middleware, and the
per-phone limit the intake routes call.

- **Body size**: a body over `SOS_LIMITS__MAX_BODY_BYTES` (webhooks:
  `SOS_LIMITS__MAX_WEBHOOK_BODY_BYTES`) gets 413 before anything parses it: at once when its
  `Content-Length` says so; a body without one (chunked) is read up to the limit and no further.
- **Rates**: token buckets per client address, per bearer token and per phone number, on the
  service clock. Over the limit → 429 with `Retry-After` (whole seconds). The address limit skips
  `/webhooks/` (the providers call from shared addresses, and sign every request) and the
  `exempt_addresses` (loopback by default: health checks, the benchmarks). The phone limit is
  checked by the intake routes before anything is stored, so a limited request creates nothing.

The client address is the socket peer; `X-Forwarded-For` counts only when the peer is one of
`SOS_LIMITS__TRUSTED_PROXIES`, and then the address nearest to us that is not a trusted proxy
wins. Keys are keyed hashes (a token, a phone number or an address never sits in memory as
itself), and every limit remembers at most `max_clients` keys, least recently seen forgotten.

Buckets live in each process: with N processes behind a balancer a client gets up to N times as
much. That bounds floods; the pumping breakers (`routing/pumping/`), which count in the database,
are what bound cost.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.container import Container
from app.errors import error_body
from app.settings import LimitsSettings
from routing.clock import Clock
from routing.errors import TooManyRequests
from routing.phone import normalize_phone

WEBHOOKS = "/webhooks/"
Networks = tuple[IPv4Network | IPv6Network, ...]


class Limited(TooManyRequests):
    """Over a rate limit: 429, `Retry-After: retry_after`."""

    def __init__(self, message: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


def limited_response(exc: Limited) -> JSONResponse:
    return JSONResponse(
        error_body(exc.code, exc.message, exc.field),
        status_code=429,
        headers={"Retry-After": str(exc.retry_after)},
    )


class Buckets:
    """Token buckets: `limit` per `window` seconds per key, in bursts of up to `limit`. At most
    `max_keys` keys are kept; the least recently seen is forgotten first."""

    def __init__(self, limit: int, window: float, *, max_keys: int) -> None:
        self.capacity, self.rate, self.max_keys = float(limit), limit / window, max_keys
        self._buckets: dict[bytes, tuple[float, float]] = {}  # key → (tokens, when)

    def take(self, key: bytes, now: float) -> int:
        """Take one token: 0 when there was one, else the whole seconds until there is."""
        tokens, then = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - then) * self.rate)
        wait = 0 if tokens >= 1 else max(1, math.ceil((1 - tokens) / self.rate))
        self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
        if len(self._buckets) > self.max_keys:
            del self._buckets[next(iter(self._buckets))]
        return wait


class RateLimits:
    """This process's buckets, on `clock`; keys are HMACs under `secret`."""

    def __init__(self, settings: LimitsSettings, *, secret: bytes, clock: Clock) -> None:
        self.clock, self.secret = clock, secret
        keep = settings.max_clients
        self.address = (
            Buckets(settings.per_address, 60, max_keys=keep) if settings.per_address else None
        )
        self.token = Buckets(settings.per_token, 60, max_keys=keep) if settings.per_token else None
        self.phones = (
            Buckets(settings.per_phone, settings.phone_window_seconds, max_keys=keep)
            if settings.per_phone
            else None
        )
        self.exempt = _networks(settings.exempt_addresses)
        self.proxies = _networks(settings.trusted_proxies)

    def _wait(self, buckets: Buckets | None, kind: str, value: str) -> int:
        if buckets is None:
            return 0
        key = hmac.digest(self.secret, f"{kind}:{value}".encode(), "sha256")[:16]
        return buckets.take(key, self.clock.now().timestamp())

    def phone(self, raw: str) -> None:
        """Count one report (or SMS, or call) from phone number `raw`; raises `Limited` when the
        number is over its limit. A withheld or invalid number is not counted here."""
        try:
            phone = normalize_phone(raw)
        except ValueError:
            return
        wait = self._wait(self.phones, "phone", phone)
        if wait:
            raise Limited(
                "too many reports from this phone number; try again later",
                retry_after=wait,
                field="callback_phone",
            )

    def request(self, scope: Scope) -> Limited | None:
        """The address and token limits for one request (None: within them)."""
        if scope["path"].startswith(WEBHOOKS):
            return None
        address = client_address(scope, self.proxies)
        if not _within(address, self.exempt):
            wait = self._wait(self.address, "address", address)
            if wait:
                return Limited("too many requests from this address", retry_after=wait)
        token = _bearer(scope)
        if token:
            wait = self._wait(self.token, "token", token)
            if wait:
                return Limited("too many requests with this token", retry_after=wait)
        return None


def get_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.limits
    return limits


Limits = Annotated[RateLimits, Depends(get_limits)]


# --- the client address --------------------------------------------------------------------------


def _networks(items: Iterable[str]) -> Networks:
    return tuple(ip_network(item, strict=False) for item in items)


def _within(address: str, networks: Networks) -> bool | None:
    """Whether `address` is in one of `networks`; None when it is not an IP address."""
    try:
        ip = ip_address(address)
    except ValueError:
        return None
    return any(ip in network for network in networks)


def _header(scope: Scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope["headers"] if k == name]


def client_address(scope: Scope, trusted_proxies: Networks) -> str:
    """The socket peer; when it is a trusted proxy, the nearest `X-Forwarded-For` entry that is
    not one (a client may write anything at the far end of that header)."""
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not trusted_proxies or not _within(peer, trusted_proxies):
        return peer
    hops = [h.strip() for value in _header(scope, b"x-forwarded-for") for h in value.split(",")]
    for hop in reversed(hops):
        trusted = _within(hop, trusted_proxies)
        if not trusted:
            return peer if trusted is None else hop  # garbage: the proxy is all we know
    return peer


def _bearer(scope: Scope) -> str:
    for value in _header(scope, b"authorization"):
        scheme, _, secret = value.partition(" ")
        if scheme.lower() == "bearer" and secret.strip():
            return secret.strip()
    return ""


# --- middleware ----------------------------------------------------------------------------------


class RateLimit:
    """429 with `Retry-After` for a request over its address or token limit."""

    def __init__(self, app: ASGIApp, *, limits: RateLimits) -> None:
        self.app, self.limits = app, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (limited := self.limits.request(scope)) is not None:
            await limited_response(limited)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for a body over the limit, before the application reads any of it."""

    def __init__(self, app: ASGIApp, *, settings: LimitsSettings) -> None:
        self.app = app
        self.limit, self.webhook_limit = settings.max_body_bytes, settings.max_webhook_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.webhook_limit if scope["path"].startswith(WEBHOOKS) else self.limit
        length = _header(scope, b"content-length")
        if length:
            if not length[0].isdigit() or int(length[0]) > limit:
                await _too_large(limit, scope, receive, send)
                return
            await self.app(scope, receive, send)  # the server delivers exactly that many bytes
        elif _header(scope, b"transfer-encoding"):
            await self._chunked(limit, scope, receive, send)
        else:
            await self.app(scope, receive, send)  # no body at all

    async def _chunked(self, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        """Read a body of unknown length up to `limit`, then hand it on whole."""
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(limit, scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]

        async def replay() -> Message:
            return body.pop() if body else await receive()

        await self.app(scope, replay, send)


async def _too_large(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    body = error_body("payload_too_large", f"the body is larger than {limit} bytes", "body")
    await JSONResponse(body, status_code=413, headers={"Connection": "close"})(scope, receive, send)


async def _limited(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Limited)
    return limited_response(exc)


def install(app: FastAPI, container: Container) -> None:
    """The body and rate limits around `app` (outermost: they run before anything else), and
    the phone limit for its routes (`Limits`)."""
    settings = container.settings.limits
    limits = RateLimits(settings, secret=container.secret_key, clock=container.clock)
    app.state.limits = limits
    app.add_exception_handler(Limited, _limited)
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(RateLimit, limits=limits)
