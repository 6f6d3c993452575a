"""`/docs`: the API reference, rendered on the server from the OpenAPI description.

The usual interactive pages load their script from the internet and run inline script, which the
Content-Security-Policy of every page forbids; this one needs no script. Tools read
`/openapi.json`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.web.pages import render

router = APIRouter(include_in_schema=False)

METHODS = ("get", "post", "put", "patch", "delete")


@router.get("/docs", response_class=HTMLResponse)
async def api_docs(request: Request) -> HTMLResponse:
    schema: dict[str, Any] = request.app.openapi()
    operations = [
        {
            "method": method.upper(),
            "path": path,
            "summary": op.get("summary", ""),
            "description": op.get("description", ""),
            "tag": (op.get("tags") or [""])[0],
        }
        for path, item in schema.get("paths", {}).items()
        for method, op in item.items()
        if method in METHODS
    ]
    return render(
        "api_docs.html",
        info=schema.get("info", {}),
        operations=sorted(operations, key=lambda o: (o["tag"], o["path"])),
    )
