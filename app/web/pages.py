"""Server-rendered HTML: Jinja2 with autoescaping, one stylesheet shipped with the project.

Every value a page shows is also `guard.plain`: a staff name with a right-to-left override or a
terminal escape is stored as typed, but shown without them (it cannot reverse the line it is in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

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


def render(name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = templates.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def duration(seconds: float) -> str:
    seconds = int(abs(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
