"""Signing in to the console as a browser does: open the form (its CSRF cookie and field), post."""

from __future__ import annotations

import re

import httpx


def form_csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    form = await client.get("/console/login")
    return await client.post("/console/login", data={"token": token, "csrf": form_csrf(form.text)})
