"""Server-rendered HTML: Jinja2 with autoescaping, one stylesheet and small scripts shipped with
the project, and what guards every page: the security headers (`SecurityHeaders`, on every HTML
response of the app) and the double-submit CSRF check of the forms that have no session yet.

Every value a page shows is also `guard.plain`: a staff name with a right-to-left override or a
terminal escape is stored as typed, but shown without them (it cannot reverse the line it is in)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import Settings
from routing.guard import plain

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"


def _shown(value: Any) -> Any:
    """What `{{ value }}` shows: text made plain (markup a template marked safe passes as is)."""
    return plain(value) if isinstance(value, str) and not isinstance(value, Markup) else value


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    finalize=_shown,
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class SecurityHeaders:
    """ASGI middleware: every HTML response gets `SECURITY_HEADERS` (those it does not set
    itself), every other response `X-Content-Type-Options: nosniff`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                html = headers.get("content-type", "").startswith("text/html")
                for name, value in (SECURITY_HEADERS if html else NOSNIFF).items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


NOSNIFF = {"X-Content-Type-Options": "nosniff"}


def secure_cookies(settings: Settings, request: Request) -> bool:
    """Cookies are Secure unless SOS_AUTH__SECURE_COOKIES says otherwise (plain-http local
    development only); unset, whenever the public URL or the request is https."""
    if settings.auth.secure_cookies is not None:
        return settings.auth.secure_cookies
    return settings.public_base_url.startswith("https://") or request.url.scheme == "https"


class DoubleSubmit:
    """CSRF for a form before any session exists (the customer's report form, console sign-in):
    a random value in an HttpOnly, SameSite=Strict cookie, and the same value with its
    HMAC-SHA256 under the app's secret key in a hidden field; both compared in constant time."""

    _VALUE = re.compile(r"[A-Za-z0-9_-]{43}")

    def __init__(self, cookie: str, path: str) -> None:
        self.cookie, self.path = cookie, path

    def _sign(self, key: bytes, value: str) -> str:
        return hmac.new(key, f"{self.cookie}:{value}".encode(), hashlib.sha256).hexdigest()

    def field(self, key: bytes, value: str) -> str:
        """The hidden field for cookie value `value`: the value and its HMAC."""
        return f"{value}.{self._sign(key, value)}"

    def value(self, request: Request) -> str:
        """The browser's cookie value when well-formed (two open tabs both work), else new."""
        value = request.cookies.get(self.cookie, "")
        return value if self._VALUE.fullmatch(value) else secrets.token_urlsafe(32)

    def set(self, response: Response, value: str, *, secure: bool) -> None:
        response.set_cookie(
            self.cookie, value, path=self.path, httponly=True, samesite="strict", secure=secure
        )

    def ok(self, key: bytes, request: Request, field: str) -> bool:
        """True when `field` carries the cookie's value with a valid HMAC."""
        cookie = request.cookies.get(self.cookie, "")
        value, _, mac = field.rpartition(".")
        if not value or not cookie:
            return False
        good_mac = hmac.compare_digest(mac.encode(), self._sign(key, value).encode())
        same = hmac.compare_digest(value.encode(), cookie.encode())
        return good_mac and same


def render(name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page; its security headers come from `SecurityHeaders`, like every HTML answer's."""
    html = templates.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code)


def duration(seconds: float) -> str:
    seconds = int(abs(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
