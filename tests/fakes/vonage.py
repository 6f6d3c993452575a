"""A stateful, in-process fake of Vonage (Voice API v1, Messages API v1) and of the phones it rings.

REST side: `FakeVonage.transport` serves `POST /v1/calls`, `GET` and `PUT /v1/calls/{uuid}` and
`POST /v1/messages`. Every request must carry an application JWT that verifies with the
application's public key (RS256; `application_id`, `iat`, `jti`, `exp`; not expired; a `jti`
never seen before) and must have the shape Vonage documents: numbers without `+`, absolute
callback URLs, exactly one of `answer_url` and `ncco`, NCCO actions with their required fields,
no unknown fields. A violation answers 401 or 400 and fails `assert_clean()`.

Phone side: the test rings, answers, presses keys, hangs up, lets voicemail pick up, delivers or
rejects messages and sends inbound SMS. The fake posts JSON webhooks signed like Vonage (HS256 JWT
with the signature secret, `iat` from the test's clock, `payload_hash` of the body) into the app
through `webhook_transport`, runs the NCCO it gets back (`talk`, `input`, `conversation`) and
records any answer Vonage would treat as an error. Events caused by a REST request (the
`cancelled` event of a call hung up by the API) are posted at the start and end of the next phone
action, or by `await fake.flush()`: never from inside the REST request.

Oracle: `assert_clean()` fails on any violation, any webhook answered wrongly, and any call or
message the test did not take with `expect_*` (no double page).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.settings import VonageSettings
from routing.clock import Clock, SystemClock

Resource = Literal["calls", "messages"]
MSISDN = re.compile(r"^[1-9]\d{6,14}$")
CALL_ENDED = frozenset(
    {"completed", "busy", "timeout", "unanswered", "rejected", "failed", "cancelled"}
)
CALL_FIELDS = frozenset(
    {
        "to",
        "from",
        "ncco",
        "answer_url",
        "answer_method",
        "event_url",
        "event_method",
        "machine_detection",
        "ringing_timer",
        "length_timer",
    }
)
MESSAGE_FIELDS = frozenset(
    {"message_type", "channel", "to", "from", "text", "client_ref", "webhook_url", "ttl", "sms"}
)
NCCO_ACTIONS = frozenset({"talk", "input", "conversation"})  # what the fake can play
MAX_HOPS = 25

# A test account: the app is configured with these, the fake checks and signs with them.
APPLICATION_ID = "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab"
API_KEY = "abcd1234"
SIGNATURE_SECRET = "sos-router-test-signature-secret-0123456789abcdef"
API_BASE = "https://api.vonage.test"


@cache
def key_pair() -> tuple[str, str]:
    """A private key (PEM) for the app and its public key (PEM) for the fake, once per run."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def vonage_settings(from_number: str) -> VonageSettings:
    """The app's settings for the test account (the fake checks and signs with the same)."""
    private, _ = key_pair()
    return VonageSettings.model_validate(
        {
            "application_id": APPLICATION_ID,
            "api_key": API_KEY,
            "private_key": private,
            "signature_secret": SIGNATURE_SECRET,
            "from_number": from_number,
            "api_base": API_BASE,
        }
    )


def signed_headers(
    body: bytes, *, secret: str, issued_at: datetime, api_key: str, application_id: str
) -> dict[str, str]:
    """The headers of a webhook as Vonage signs it."""
    claims = {
        "iat": int(issued_at.timestamp()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": api_key,
        "application_id": application_id,
    }
    token = jwt.encode(claims, secret, algorithm="HS256")
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def compact(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def is_absolute(url: object) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def e164(number: str) -> str:
    return "+" + number


@dataclass
class Fault:
    kind: Literal["fail", "hang", "drop"]
    status: int = 0
    retry_after: int | None = None


# --- request shapes ------------------------------------------------------------------------------


def call_problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    problems = [f"unknown field {name!r}" for name in body if name not in CALL_FIELDS]
    to = body.get("to")
    if not (isinstance(to, list) and len(to) == 1):
        problems.append("`to` must be a list of one endpoint")
    else:
        problems += phone_problems("to[0]", to[0])
    problems += phone_problems("from", body.get("from"))
    if ("ncco" in body) == ("answer_url" in body):
        problems.append("exactly one of `ncco` and `answer_url` is required")
    for name in ("answer_url", "event_url"):
        urls = body.get(name)
        if urls is not None and not (isinstance(urls, list) and all(map(is_absolute, urls))):
            problems.append(f"`{name}` must be a list of absolute URLs")
    for name in ("answer_method", "event_method"):
        if body.get(name, "POST") not in ("GET", "POST"):
            problems.append(f"`{name}` must be GET or POST")
    timer = body.get("ringing_timer", 60)
    if not (isinstance(timer, int) and 1 <= timer <= 120):
        problems.append(f"`ringing_timer` {timer!r} is outside 1..120")
    if body.get("machine_detection", "continue") not in ("continue", "hangup"):
        problems.append("`machine_detection` must be continue or hangup")
    if "ncco" in body:
        problems += ncco_problems(body["ncco"])
    return problems


def phone_problems(where: str, endpoint: Any) -> list[str]:
    if not isinstance(endpoint, dict) or endpoint.get("type") != "phone":
        return [f"`{where}` must be a phone endpoint"]
    number = endpoint.get("number")
    if not (isinstance(number, str) and MSISDN.match(number)):
        return [f"`{where}.number` {number!r} is not E.164 without `+`"]
    return []


def ncco_problems(ncco: Any) -> list[str]:
    if not (isinstance(ncco, list) and ncco):
        return ["an NCCO must be a non-empty list of actions"]
    problems = []
    for action in ncco:
        kind = action.get("action") if isinstance(action, dict) else None
        if kind not in NCCO_ACTIONS:
            problems.append(f"NCCO action {kind!r} is unknown to the fake")
        elif kind == "talk":
            said = action.get("text")
            if not (isinstance(said, str) and 0 < len(said) <= 1500):
                problems.append("`talk` needs a text of 1..1500 characters")
        elif kind == "input":
            dtmf = action.get("dtmf", {})
            if action.get("type") != ["dtmf"] or not isinstance(dtmf, dict):
                problems.append("`input` must take dtmf only")
            elif not 1 <= dtmf.get("maxDigits", 4) <= 20 or not 0 <= dtmf.get("timeOut", 3) <= 10:
                problems.append("`input.dtmf` has maxDigits outside 1..20 or timeOut outside 0..10")
            urls = action.get("eventUrl")
            if not (isinstance(urls, list) and all(map(is_absolute, urls))):
                problems.append("`input.eventUrl` must be a list of absolute URLs")
        elif kind == "conversation" and not isinstance(action.get("name"), str):
            problems.append("`conversation` needs a name")
    return problems


def message_problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    problems = [f"unknown field {name!r}" for name in body if name not in MESSAGE_FIELDS]
    if body.get("message_type") != "text" or body.get("channel") != "sms":
        problems.append("only `message_type: text` on `channel: sms` is expected")
    for name in ("to", "from"):
        if not (isinstance(body.get(name), str) and MSISDN.match(body[name])):
            problems.append(f"`{name}` {body.get(name)!r} is not E.164 without `+`")
    said = body.get("text")
    if not (isinstance(said, str) and 0 < len(said) <= 1000):
        problems.append("`text` must hold 1..1000 characters")
    if len(str(body.get("client_ref", ""))) > 100:
        problems.append("`client_ref` is longer than 100 characters")
    if "webhook_url" in body and not is_absolute(body["webhook_url"]):
        problems.append("`webhook_url` must be an absolute URL")
    if "ttl" in body and not isinstance(body["ttl"], int):
        problems.append("`ttl` must be whole seconds")
    return problems


# --- what the fake created -----------------------------------------------------------------------


class FakeCall:
    """One outbound call, driven by the test."""

    kind = "call"

    def __init__(self, fake: FakeVonage, body: dict[str, Any]) -> None:
        self.fake = fake
        self.body = body
        self.uuid = str(uuid.uuid4())
        self.conversation_uuid = "CON-" + str(uuid.uuid4())
        self.to = e164(body["to"][0]["number"])
        self.from_ = e164(body["from"]["number"])
        self.status = "started"
        self.heard: list[str] = []
        self.room: str | None = None
        self.ended_by: Literal["phone", "ncco", "api"] | None = None
        self.taken = False
        self.duplicate = False
        self._input: dict[str, Any] | None = None
        self._answered = False
        self._hops = 0

    def __repr__(self) -> str:
        return f"<FakeCall {self.uuid} to {self.to} {self.status}>"

    @property
    def is_bridge(self) -> bool:
        """A call that joins a room straight away (`ncco` with a conversation)."""
        return any(a.get("action") == "conversation" for a in self.body.get("ncco", []))

    # --- the phone ---------------------------------------------------------------------------

    async def ring(self) -> None:
        await self.fake.flush()
        self._require("started")
        self.status = "ringing"
        await self._event("ringing")

    async def answer(self, *, human: bool = True) -> None:
        await self.fake.flush()
        if self.status == "started":
            await self.ring()
        self._require("ringing")
        self.status, self._answered = "answered", True
        await self._event("answered")
        if "machine_detection" in self.body:
            await self._event("human" if human else "machine")
        if self.status == "answered":  # the app may have hung up on a machine meanwhile
            await self._start()
        await self.fake.flush()

    async def press(self, digits: str) -> None:
        await self.fake.flush()
        self._require("answered")
        await self._submit_input(digits, timed_out=False)
        await self.fake.flush()

    async def no_input(self) -> None:
        await self.fake.flush()
        self._require("answered")
        await self._submit_input("", timed_out=True)
        await self.fake.flush()

    async def hang_up(self) -> None:
        await self.fake.flush()
        if self.status not in CALL_ENDED:
            self._require("answered")
            await self._end("completed", "phone")
        await self.fake.flush()

    async def no_answer(self) -> None:
        await self._unanswered("timeout")

    async def busy(self) -> None:
        await self._unanswered("busy")

    async def voicemail(self) -> None:
        await self.answer(human=False)
        await self.hang_up()

    # --- REST side -----------------------------------------------------------------------------

    def resource(self) -> dict[str, Any]:
        return {
            "_links": {"self": {"href": f"/v1/calls/{self.uuid}"}},
            "uuid": self.uuid,
            "conversation_uuid": self.conversation_uuid,
            "to": {"type": "phone", "number": self.to[1:]},
            "from": {"type": "phone", "number": self.from_[1:]},
            "status": self.status,
            "direction": "outbound",
        }

    def end_by_api(self) -> None:
        """`PUT {"action": "hangup"}`: state now, the event later (Vonage is asynchronous)."""
        if self.status in CALL_ENDED:
            return
        self.status = "completed" if self._answered else "cancelled"
        self.ended_by, self._input = "api", None
        status = self.status
        self.fake.later(lambda: self._event(status))

    # --- internals -----------------------------------------------------------------------------

    def _require(self, *states: str) -> None:
        if self.status not in states:
            raise AssertionError(f"{self!r} is {self.status}, expected {' or '.join(states)}")

    async def _unanswered(self, status: str) -> None:
        await self.fake.flush()
        self._require("started", "ringing")
        if self.status == "started":
            await self.ring()
        await self._end(status, "phone")
        await self.fake.flush()

    async def _end(self, status: str, by: Literal["phone", "ncco", "api"]) -> None:
        if self.status not in CALL_ENDED:
            self.status, self.ended_by, self._input = status, by, None
            await self._event(status)

    async def _event(self, status: str) -> None:
        for url in self.body.get("event_url", []):
            payload = self._fields() | {"status": status, "direction": "outbound"}
            await self.fake.post_event(url, payload, duplicate=self.duplicate)

    def _fields(self) -> dict[str, Any]:
        return {
            "from": self.from_[1:],
            "to": self.to[1:],
            "uuid": self.uuid,
            "conversation_uuid": self.conversation_uuid,
            "timestamp": self.fake.now().isoformat(),
        }

    async def _start(self) -> None:
        if "ncco" in self.body:
            await self._run(self.body["ncco"])
        else:
            await self._fetch(self.body["answer_url"][0], self._fields())

    async def _submit_input(self, digits: str, *, timed_out: bool) -> None:
        if self._input is None:
            raise AssertionError(
                f"{self!r}: no input action waits for {digits!r}; heard {self.heard}"
            )
        action, self._input = self._input, None
        payload = self._fields() | {"dtmf": {"digits": digits, "timed_out": timed_out}}
        self._hops = 0
        await self._fetch(action["eventUrl"][0], payload)

    async def _fetch(self, url: str, payload: dict[str, Any]) -> None:
        self._hops += 1
        if self._hops > MAX_HOPS:
            self.fake.error(f"{self!r}: more than {MAX_HOPS} NCCO documents")
            await self._end("completed", "ncco")
            return
        ncco = await self.fake.post_for_ncco(url, payload)
        if ncco is None:  # Vonage would play its error message and hang up
            await self._end("failed", "ncco")
        else:
            await self._run(ncco)

    async def _run(self, ncco: list[dict[str, Any]]) -> None:
        for action in ncco:
            kind = action["action"]
            if kind == "talk":
                self.heard.append(action["text"])
            elif kind == "input":
                self._input = action
                return
            elif kind == "conversation":
                self.room = action["name"]
                return  # in the room until someone hangs up
        await self._end("completed", "ncco")  # no actions left: Vonage hangs up


class FakeMessage:
    """One outbound SMS; the test walks it through the Messages API's statuses."""

    kind = "sms"

    def __init__(self, fake: FakeVonage, body: dict[str, Any]) -> None:
        self.fake = fake
        self.body = body
        self.uuid = str(uuid.uuid4())
        self.to = e164(body["to"])
        self.from_ = e164(body["from"])
        self.text: str = body["text"]
        self.status = "accepted"
        self.taken = False
        self.duplicate = False

    def __repr__(self) -> str:
        return f"<FakeMessage {self.uuid} to {self.to} {self.status}>"

    async def deliver(self) -> None:
        await self._walk("submitted", "delivered")

    async def submit(self) -> None:
        """Only `submitted`: the carrier has it, no receipt yet."""
        await self._walk("submitted")

    async def reject(self, title: str = "Non White-listed Destination") -> None:
        await self._walk(
            "rejected",
            error={"type": "https://developer.vonage.com/api-errors#1320", "title": title},
        )

    async def undeliver(self) -> None:
        await self._walk("submitted", "undeliverable", error={"title": "Absent subscriber"})

    async def _walk(self, *statuses: str, error: dict[str, str] | None = None) -> None:
        await self.fake.flush()
        for status in statuses:
            self.status = status
            payload: dict[str, Any] = {
                "message_uuid": self.uuid,
                "to": self.to[1:],
                "from": self.from_[1:],
                "timestamp": self.fake.now().isoformat(),
                "status": status,
                "channel": "sms",
                "client_ref": self.body.get("client_ref", ""),
            }
            if error is not None and status in ("rejected", "undeliverable"):
                payload["error"] = error
            if "webhook_url" in self.body:
                await self.fake.post_event(
                    self.body["webhook_url"], payload, duplicate=self.duplicate
                )
        await self.fake.flush()


# --- the fake ------------------------------------------------------------------------------------


class FakeVonage:
    """Vonage's REST API (`transport`) plus the phones it rings, with a no-double-page oracle."""

    def __init__(
        self,
        application_id: str,
        public_key: str,
        signature_secret: str,
        *,
        api_key: str = API_KEY,
        public_base_url: str = "https://sos.example.test",
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.application_id = application_id
        self.public_key = public_key
        self.signature_secret = signature_secret
        self.api_key = api_key
        self.public_base_url = public_base_url.rstrip("/")
        self.webhook_transport = webhook_transport
        self.transport = httpx.MockTransport(self._handle)
        self.calls: list[FakeCall] = []
        self.messages: list[FakeMessage] = []
        self.errors: list[str] = []
        self.requests: list[httpx.Request] = []
        self._clock = clock or SystemClock()
        self._faults: dict[str, list[Fault]] = {}
        self._pending: list[Callable[[], Awaitable[None]]] = []
        self._seen_jti: set[str] = set()

    # --- test API --------------------------------------------------------------------------------

    def fail_next(self, resource: Resource, status: int, retry_after: int | None = None) -> None:
        self._faults.setdefault(resource, []).append(Fault("fail", status, retry_after))

    def hang_next(self, resource: Resource) -> None:
        """Create the call or message, then time out reading the answer."""
        self._faults.setdefault(resource, []).append(Fault("hang"))

    def drop_next(self, resource: Resource) -> None:
        """Time out connecting: nothing is created."""
        self._faults.setdefault(resource, []).append(Fault("drop"))

    def calls_to(self, number: str) -> list[FakeCall]:
        return [c for c in self.calls if c.to == number]

    async def expect_call(self, *, to: str, duplicate: bool = False) -> FakeCall:
        return self._take([c for c in self.calls if not c.is_bridge], to, "call", duplicate)

    async def expect_bridge_call(self, *, to: str) -> FakeCall:
        return self._take([c for c in self.calls if c.is_bridge], to, "bridge call", False)

    async def expect_sms(self, *, to: str, duplicate: bool = False) -> FakeMessage:
        return self._take(self.messages, to, "sms", duplicate)

    def assert_clean(self) -> None:
        untaken = [f"unexpected {c!r}" for c in [*self.calls, *self.messages] if not c.taken]
        problems = self.errors + untaken
        if problems:
            raise AssertionError("fake Vonage is not clean:\n- " + "\n- ".join(problems))

    async def send_sms(self, *, from_: str, text: str, to: str) -> httpx.Response:
        """An inbound SMS to our number, posted to the app's inbound webhook."""
        await self.flush()
        payload = {
            "channel": "sms",
            "message_uuid": str(uuid.uuid4()),
            "to": to.removeprefix("+"),
            "from": from_.removeprefix("+"),
            "timestamp": self.now().isoformat(),
            "text": text,
            "message_type": "text",
            "sms": {"num_messages": "1"},
        }
        response = await self.post(self.public_base_url + "/webhooks/vonage/sms", payload)
        if response.status_code not in (200, 204):
            self.error(f"inbound SMS webhook answered {response.status_code}")
        await self.flush()
        return response

    async def flush(self) -> None:
        while self._pending:
            await self._pending.pop(0)()

    # --- used by FakeCall / FakeMessage --------------------------------------------------------

    def now(self) -> datetime:
        return self._clock.now()

    def error(self, problem: str) -> None:
        self.errors.append(problem)

    def later(self, job: Callable[[], Awaitable[None]]) -> None:
        self._pending.append(job)

    def signed(self, body: bytes) -> dict[str, str]:
        return signed_headers(
            body,
            secret=self.signature_secret,
            issued_at=self.now(),
            api_key=self.api_key,
            application_id=self.application_id,
        )

    async def post(self, url: str, payload: Mapping[str, Any]) -> httpx.Response:
        """POST a signed JSON webhook to the app, exactly as Vonage would."""
        if self.webhook_transport is None:
            raise AssertionError("FakeVonage needs webhook_transport to post webhooks")
        if not url.startswith(self.public_base_url + "/"):
            self.error(f"webhook URL {url} is not under {self.public_base_url}")
        body = compact(payload)
        request = httpx.Request("POST", url, content=body, headers=self.signed(body))
        response = await self.webhook_transport.handle_async_request(request)
        await response.aread()
        return response

    async def post_event(self, url: str, payload: Mapping[str, Any], *, duplicate: bool) -> None:
        for _ in range(2 if duplicate else 1):
            response = await self.post(url, payload)
            if response.status_code not in (200, 204):
                self.error(f"event webhook {url} answered {response.status_code}")

    async def post_for_ncco(
        self, url: str, payload: Mapping[str, Any]
    ) -> list[dict[str, Any]] | None:
        response = await self.post(url, payload)
        if response.status_code != 200:
            self.error(f"NCCO webhook {url} answered {response.status_code}")
            return None
        try:
            ncco = response.json()
        except ValueError:
            ncco = None
        problems = ncco_problems(ncco)
        if problems:
            self.error(f"NCCO from {url}: {'; '.join(problems)}")
            return None
        return list(ncco)

    # --- REST ------------------------------------------------------------------------------------

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        where = f"{request.method} {request.url.path}"
        if (problem := self._auth_problem(request)) is not None:
            self.error(f"{where}: {problem}")
            return self._problem(401, "Unauthorized", problem)
        body: Any = None
        if request.method in ("POST", "PUT"):
            try:
                body = json.loads(await request.aread())
            except ValueError:
                body = None
        path = request.url.path
        if request.method == "POST" and path == "/v1/calls":
            return await self._create(request, "calls", call_problems(body), body)
        if request.method == "POST" and path == "/v1/messages":
            return await self._create(request, "messages", message_problems(body), body)
        found = re.fullmatch(r"/v1/calls/(?P<uuid>[^/]+)", path)
        call = next((c for c in self.calls if found and c.uuid == found["uuid"]), None)
        if found and request.method == "GET":
            if call is None:
                return self._problem(404, "Not Found", "call not found")
            return httpx.Response(200, json=call.resource())
        if found and request.method == "PUT":
            if body != {"action": "hangup"}:
                self.error(f"{where}: only a hangup is expected, got {body!r}")
                return self._problem(400, "Bad Request", "unexpected action")
            if call is None:
                return self._problem(404, "Not Found", "call not found")
            call.end_by_api()
            return httpx.Response(204)
        self.error(f"{where}: not served by the fake")
        return self._problem(404, "Not Found", "no such resource")

    async def _create(
        self, request: httpx.Request, resource: Resource, problems: list[str], body: Any
    ) -> httpx.Response:
        where = f"{request.method} {request.url.path}"
        if problems:
            self.errors.extend(f"{where}: {p}" for p in problems)
            return self._problem(400, "Bad Request", "; ".join(problems))
        queue = self._faults.get(resource, [])
        fault = queue.pop(0) if queue else None
        if fault is not None and fault.kind == "drop":
            raise httpx.ConnectTimeout("fake Vonage: connect timeout", request=request)
        if fault is not None and fault.kind == "fail":
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
            return self._problem(fault.status, "Injected failure", "fake Vonage", headers=headers)
        if resource == "calls":
            call = FakeCall(self, body)
            self.calls.append(call)
            answer: dict[str, Any] = {
                "uuid": call.uuid,
                "status": "started",
                "direction": "outbound",
                "conversation_uuid": call.conversation_uuid,
            }
            status = 201
        else:
            message = FakeMessage(self, body)
            self.messages.append(message)
            answer, status = {"message_uuid": message.uuid}, 202
        if fault is not None and fault.kind == "hang":
            raise httpx.ReadTimeout("fake Vonage: read timeout", request=request)
        return httpx.Response(status, json=answer)

    def _auth_problem(self, request: httpx.Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            return "no application JWT"
        try:
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "jti", "application_id"]},
            )
        except jwt.InvalidTokenError as exc:
            return f"the application JWT does not verify: {exc}"
        if claims["application_id"] != self.application_id:
            return "the JWT names another application"
        if claims["jti"] in self._seen_jti:
            return "a JWT was used twice (jti)"
        self._seen_jti.add(claims["jti"])
        return None

    def _problem(
        self, status: int, title: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        body = {
            "type": f"https://developer.vonage.com/api-errors#{status}",
            "title": title,
            "detail": detail,
            "instance": str(uuid.uuid4()),
        }
        return httpx.Response(status, json=body, headers=dict(headers or {}))

    def _take(self, items: list[Any], to: str, kind: str, duplicate: bool) -> Any:
        for item in items:
            if item.to == to and not item.taken:
                item.taken, item.duplicate = True, duplicate
                return item
        untaken = [c for c in [*self.calls, *self.messages] if not c.taken]
        raise AssertionError(f"expected a {kind} to {to} on Vonage; not taken: {untaken}")
