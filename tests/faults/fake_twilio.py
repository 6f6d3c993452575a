"""A fake Twilio REST API on a loopback port, for real `sos-router` processes.

It takes what the Twilio adapter sends (`POST …/Messages.json`, `POST …/Calls.json`, ending a
call, and for the reconciler `GET` of one message or call, or of the list of them to a number:
`To`, `From`, `Status`, `DateSent>` / `StartTime>`), in Twilio's shape, and records every send
with the page id (or customer-text id) read from its StatusCallback URL, and the account SID it
came in on (the suite gives every process its own, so a send names its process). A message
counts as sent, and a call as dialled, the moment it arrives.

It is the oracle for "no page sent twice": processes may crash at any point, but every request
that reached it is in `sends`. Faults on demand: `delay` every answer, `hang` (hold every answer
until `release()`), or `fail(status)` the next n creates. It never calls back: a page's outcome
stays whatever the engine recorded, which is what the crash tests want to observe.

Run in a thread of the test (or benchmark) process; `GET /_fake/sends` serves the records as JSON
to anyone else.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

API = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-f]{32})/(?P<rest>[^?]*)$")
PAGE_CALLBACK = re.compile(r"/webhooks/twilio/pages/(?P<id>\d+)/")
TEXT_CALLBACK = re.compile(r"/webhooks/twilio/message-status\?message=(?P<id>\d+)")


@dataclass(frozen=True)
class Send:
    """One create request the fake accepted."""

    sid: str
    kind: str  # "sms" or "call"
    to: str
    from_: str
    body: str
    account: str
    page_id: int | None  # a page to staff
    text_id: int | None  # a text to a customer (receipt, "calls you now")
    at: datetime  # when it arrived (UTC wall clock: comparable with the database's times)


class FakeTwilio:
    def __init__(self, auth_token: str) -> None:
        self.auth_token = auth_token
        self.sends: list[Send] = []
        self.requests = 0
        self.delay = 0.0
        self._lock = threading.Lock()
        self._failures: list[int] = []
        self._released = threading.Event()
        self._released.set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeTwilio:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # --- faults -------------------------------------------------------------------------------

    def fail(self, status: int, times: int = 1) -> None:
        """Answer the next `times` creates with `status` (429, 500, …) and store nothing."""
        with self._lock:
            self._failures += [status] * times

    def hang(self) -> None:
        """Hold every answer from now until `release()` (a provider that accepts and goes
        silent); the requests are recorded all the same."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def _answer_when_released(self) -> None:
        if self.delay:
            time.sleep(self.delay)
        self._released.wait(120)  # at the latest, shutting the fake down releases it

    # --- records ------------------------------------------------------------------------------

    def snapshot(self) -> list[Send]:
        with self._lock:
            return list(self.sends)

    def pages(self) -> list[Send]:
        return [s for s in self.snapshot() if s.page_id is not None]

    def by_page(self) -> dict[int, list[Send]]:
        found: dict[int, list[Send]] = {}
        for send in self.pages():
            assert send.page_id is not None
            found.setdefault(send.page_id, []).append(send)
        return found

    def page_sent_at(self, page_id: int) -> datetime | None:
        return next((s.at for s in self.pages() if s.page_id == page_id), None)

    # --- serving ------------------------------------------------------------------------------

    def _create(self, account: str, kind: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests += 1
            if self._failures:
                status = self._failures.pop(0)
                code = 20429 if status == 429 else 20500
                return status, {"code": code, "message": "scripted failure", "status": status}
            callback = form.get("StatusCallback", "")
            page = PAGE_CALLBACK.search(callback)
            text = TEXT_CALLBACK.search(callback)
            send = Send(
                sid=("SM" if kind == "sms" else "CA") + secrets.token_hex(16),
                kind=kind,
                to=form.get("To", ""),
                from_=form.get("From", ""),
                body=form.get("Body", ""),
                account=account,
                page_id=int(page["id"]) if page else None,
                text_id=int(text["id"]) if text else None,
                at=datetime.now(UTC),
            )
            self.sends.append(send)
        return 201, _resource(send, "queued")

    def _find(self, sid: str) -> Send | None:
        with self._lock:
            return next((s for s in self.sends if s.sid == sid), None)

    def answer(
        self, method: str, path: str, form: dict[str, str], authorization: str
    ) -> tuple[int, Any]:
        if method == "GET" and path == "/_fake/sends":
            return 200, [{**asdict(s), "at": s.at.isoformat()} for s in self.snapshot()]
        match = API.match(path)
        if match is None:
            return 404, {"code": 20404, "message": f"no route {method} {path}", "status": 404}
        account, rest = match["account"], match["rest"]
        expected = base64.b64encode(f"{account}:{self.auth_token}".encode()).decode()
        if authorization != f"Basic {expected}":
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if method == "POST" and rest == "Messages.json":
            return self._create(account, "sms", form)
        if method == "POST" and rest == "Calls.json":
            return self._create(account, "call", form)
        if method == "GET" and rest in ("Messages.json", "Calls.json"):
            return self._list("sms" if rest == "Messages.json" else "call", form)
        sid = re.fullmatch(r"(?:Messages|Calls)/(?P<sid>\w+)\.json", rest)
        found = self._find(sid["sid"]) if sid else None
        if found is None:
            return 404, {"code": 20404, "message": "not found", "status": 404}
        if method == "POST":  # ending a call
            return 200, _resource(found, form.get("Status", "completed"))
        return 200, _resource(found, "sent" if found.kind == "sms" else "ringing")

    def _list(self, kind: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Sends of `kind`, newest first, filtered on `To`, `From`, `Status` and the sent
        (started) date; all on one page. Of every account: the suite's per-process accounts
        stand for the one Twilio account a deployment has (a fetch by sid ignores them too)."""
        dated = form.get("DateSent>" if kind == "sms" else "StartTime>")
        after = datetime.fromisoformat(dated) if dated else None
        status = "sent" if kind == "sms" else "ringing"
        found = [
            _resource(s, status)
            for s in reversed(self.snapshot())
            if s.kind == kind
            and s.to == form.get("To", s.to)
            and s.from_ == form.get("From", s.from_)
            and form.get("Status", status) == status
            and (after is None or s.at >= after)
        ]
        key = "messages" if kind == "sms" else "calls"
        return 200, {key: found, "page": 0, "page_size": 50, "next_page_uri": None}


def _resource(send: Send, status: str) -> dict[str, Any]:
    kind = "Messages" if send.kind == "sms" else "Calls"
    at = send.at.strftime("%a, %d %b %Y %H:%M:%S +0000")
    return {
        "sid": send.sid,
        "account_sid": send.account,
        "to": send.to,
        "from": send.from_,
        "status": status,
        "body": send.body,
        "date_created": at,
        "date_sent" if kind == "Messages" else "start_time": at,
        "uri": f"/2010-04-01/Accounts/{send.account}/{kind}/{send.sid}.json",
    }


def _handler(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            path, _, query = self.path.partition("?")
            form = dict(parse_qsl(body or query, keep_blank_values=True))
            status, payload = fake.answer(method, path, form, self.headers.get("Authorization", ""))
            fake._answer_when_released()
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, *_: Any) -> None:  # quiet: the test reports what matters
            pass

    return Handler
