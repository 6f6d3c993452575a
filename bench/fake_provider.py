"""A loopback stand-in for the messaging providers, for benchmarks: it accepts every page at once.

Answers Slack's `chat.postMessage` and Twilio's create-message and create-call requests the way
the real APIs do on success, and counts them (`GET /_count`). No checks, no callbacks: the
benchmark measures sos-router, and the contract tests (tests/fakes/) check the requests.

    python -m bench.fake_provider --port 8200
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_ids = itertools.count(1)
_count = {"chat": 0, "sms": 0, "voice": 0}


def _answer(path: str) -> tuple[int, dict[str, Any]]:
    n = next(_ids)
    if path.endswith("/chat.postMessage"):
        _count["chat"] += 1
        return 200, {"ok": True, "channel": "DBENCH", "ts": f"1700000000.{n:06d}"}
    if path.endswith("/Messages.json"):
        _count["sms"] += 1
        return 201, {"sid": f"SM{n:032x}", "status": "queued"}
    if path.endswith("/Calls.json"):
        _count["voice"] += 1
        return 201, {"sid": f"CA{n:032x}", "status": "queued"}
    if path == "/_count":
        return 200, dict(_count)
    return 200, {"ok": True}


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    status, body = _answer(scope["path"])
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
