"""A stateful, in-process fake of Twilio and of the phones it rings (GoAlert's mocktwilio).

REST side: `FakeTwilio.transport` serves the five requests of telephony.md §3.1, and the lists of
calls and messages the reconciler looks a page up in (filtered on `To`, `From`, `Status`,
`DateSent>`/`<` and `StartTime>`/`<`, paged by `PageSize`; a message has a sent date once it is
`sent`, a call a start time once it is dialled, as at Twilio). Every request is checked for Basic
auth and against Twilio's official OpenAPI contract, plus the rules the contract states only in
prose, formats or `x-twilio` (and no query parameter the contract does not name); a violation
answers 400 and fails `assert_clean()`.

Phone side: the test answers, presses keys, hangs up, delivers messages and sends inbound SMS. The
fake posts form-encoded webhooks signed like Twilio (`X-Twilio-Signature`) into the app through
`webhook_transport`, follows the TwiML it gets back, and records any answer Twilio would log as an
error. Callbacks caused by a REST request (the `canceled` callback of a call ended by the API) are
queued and posted at the start and end of the next phone action, or by `await fake.flush()`: never
from inside the REST request, as Twilio is asynchronous too.

Oracle: `assert_clean()` fails on any contract violation, any webhook answered wrongly, and any
call, message or participant the test did not take with `expect_*` (no double page).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, urljoin, urlsplit
from xml.etree import ElementTree

import httpx
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockRequest, MockResponse
from twilio.request_validator import RequestValidator

from routing.clock import Clock, SystemClock

CONTRACT = Path("shared") / "contracts" / "twilio_api_v2010.json"
# The contract sits next to the checkout (`../shared/`); a git worktree is one level deeper.
SPEC_PATH = next(
    (d / CONTRACT for d in Path(__file__).resolve().parents if (d / CONTRACT).is_file()),
    Path(__file__).resolve().parents[3] / CONTRACT,
)
SPEC_HOST = "https://api.twilio.com"  # the spec's only server; our base URL does not matter
API_VERSION = "2010-04-01"
ACCOUNT_PREFIX = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)(?P<rest>/.*)$")
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
CALL_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
CALL_ENDED = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
MESSAGE_ENDED = frozenset({"delivered", "undelivered", "failed", "read"})
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
CONTRACT_CODE = 20001  # what the fake answers for a contract violation (the test fails anyway)
MAX_HOPS = 25  # TwiML documents per phone action, against <Redirect> loops
# Rules the spec states only in a field's description (its schema says just "integer"/"string").
PROSE_RULES: dict[tuple[str, str], tuple[str, ...] | range] = {
    ("Calls", "Timeout"): range(1, 601),
    ("Participants", "Timeout"): range(5, 601),
    ("Messages", "ValidityPeriod"): range(1, 36001),
    ("Calls", "AsyncAmd"): ("true", "false"),
    ("Calls", "MachineDetection"): ("Enable", "DetectMessageEnd"),
    ("Participants", "MachineDetection"): ("Enable", "DetectMessageEnd"),
}
VOICE_VERBS = frozenset({"Say", "Play", "Pause", "Gather", "Redirect", "Dial", "Hangup", "Reject"})
TWIML_MAX = 4000  # inline `Twiml` on a call, per the spec's description

NO_EXTRA: Mapping[str, str] = MappingProxyType({})
Resource = Literal["Calls", "Messages", "Participants"]
Form = dict[str, list[str]]
Handler = Callable[[Form, dict[str, str]], tuple[int, dict[str, Any]]]


# --- the contract -----------------------------------------------------------------------------


@cache
def spec_document() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as f:
        document: dict[str, Any] = json.load(f)
    return document


@cache
def twilio_spec() -> OpenAPI:
    """Twilio's OpenAPI description, loaded once per process (~2 s)."""
    return OpenAPI.from_dict(spec_document())


def form_schema(template: str, method: str) -> dict[str, Any]:
    operation = spec_document()["paths"][f"/2010-04-01/Accounts/{{AccountSid}}{template}"][method]
    content = operation.get("requestBody", {}).get("content", {})
    schema: dict[str, Any] = content.get("application/x-www-form-urlencoded", {}).get("schema", {})
    return schema


def query_parameters(template: str, method: str) -> set[str]:
    operation = spec_document()["paths"][f"/2010-04-01/Accounts/{{AccountSid}}{template}"][method]
    return {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}


def conditional_groups(template: str) -> list[list[str]]:
    """`x-twilio.conditional` (snake_case names) as form names: at least one of each group."""
    path = spec_document()["paths"][f"/2010-04-01/Accounts/{{AccountSid}}{template}"]
    groups = path["post"].get("x-twilio", {}).get("conditional", [])
    return [["".join(p.capitalize() for p in name.split("_")) for name in g] for g in groups]


def prose_problems(resource: str, form: Form) -> list[str]:
    problems = []
    for (where, name), allowed in PROSE_RULES.items():
        value = first(form, name)
        if where != resource or value is None:
            continue
        if isinstance(allowed, range):
            ok = value.isdigit() and int(value) in allowed
            shown = f"{allowed.start}..{allowed.stop - 1}"
        else:
            ok, shown = value in allowed, "/".join(allowed)
        if not ok:
            problems.append(f"{name}={value!r} is outside {shown} (the spec's description)")
    return problems


def twiml_problems(form: Form) -> list[str]:
    """Inline `Twiml` (its schema says only `format: twiml`): at most 4000 characters, a
    well-formed `<Response>` of voice verbs."""
    twiml = first(form, "Twiml")
    if twiml is None:
        return []
    problems = []
    if len(twiml) > TWIML_MAX:
        problems.append(f"Twiml is {len(twiml)} characters, more than {TWIML_MAX}")
    try:
        root = ElementTree.fromstring(twiml)
    except ElementTree.ParseError as exc:
        return [*problems, f"Twiml is not well-formed XML: {exc}"]
    if root.tag != "Response":
        problems.append(f"Twiml has <{root.tag}> at its root, not <Response>")
    problems += [f"Twiml holds <{v.tag}>, no voice verb" for v in root if v.tag not in VOICE_VERBS]
    return problems


def describe(exc: Exception) -> str:
    details = [str(e.message) for e in getattr(exc.__cause__, "schema_errors", ())]
    return f"{type(exc).__name__}: {exc}" + (f" [{'; '.join(details)}]" if details else "")


# --- small helpers -----------------------------------------------------------------------------


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def parse_form(body: bytes) -> Form:
    form: Form = {}
    for name, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
        form.setdefault(name, []).append(value)
    return form


def first(form: Form, name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def rfc2822(when: datetime | None) -> str | None:
    return format_datetime(when) if when else None


def parse_moment(value: str) -> datetime:
    """A list filter's moment: `YYYY-MM-DD` (midnight UTC) or an ISO date-time."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def text_of(element: ElementTree.Element) -> str:
    return "".join(element.itertext()).strip()


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return {"code": code, "message": message, "more_info": more_info, "status": status}


def is_absolute(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@dataclass
class Fault:
    kind: Literal["fail", "hang", "drop", "lose"]
    status: int = 0
    code: int = 0
    retry_after: int | None = None


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    template: str  # the spec path under /2010-04-01/Accounts/{AccountSid}
    handler: Handler
    resource: Resource | None  # a create: `fail_next`, `hang_next`, ... apply to it
    listed: Literal["Calls", "Messages"] | None = None  # a list: `fail_next_list` applies


# --- what the fake created ---------------------------------------------------------------------


class Created:
    """A call or message the fake created; the test must take it with `expect_*`."""

    kind: str

    def __init__(self, fake: FakeTwilio, *, sid: str, to: str, from_: str, form: Form) -> None:
        self.fake = fake
        self.sid = sid
        self.to = to
        self.from_ = from_
        self.form = form
        self.taken = False
        self.duplicate = False  # post each status callback twice
        self.callbacks_lost = False  # its status callbacks never reach us (the state still moves)
        self.created_at = fake.now()

    def param(self, name: str) -> str | None:
        """The first value of a form field of the create request."""
        return first(self.form, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind} {self.sid} to {self.to}>"


T = TypeVar("T", bound=Created)


@dataclass
class Gather:
    """A `<Gather>` waiting for keys; `rest` are the verbs after it (run when no input comes)."""

    action: str
    method: str
    num_digits: int | None
    finish_on_key: str
    action_on_empty_result: bool
    rest: list[ElementTree.Element]
    url: str

    @classmethod
    def parse(cls, verb: ElementTree.Element, rest: list[ElementTree.Element], url: str) -> Gather:
        digits = verb.get("numDigits")
        return cls(
            action=verb.get("action") or url,
            method=verb.get("method", "POST"),
            num_digits=int(digits) if digits else None,
            finish_on_key=verb.get("finishOnKey", "#"),
            action_on_empty_result=verb.get("actionOnEmptyResult") == "true",
            rest=rest,
            url=url,
        )

    def keys(self, digits: str) -> dict[str, str]:
        if self.num_digits is not None and len(digits) >= self.num_digits:
            return {"Digits": digits[: self.num_digits]}
        if self.finish_on_key and digits.endswith(self.finish_on_key):
            return {
                "Digits": digits[: -len(self.finish_on_key)],
                "FinishedOnKey": self.finish_on_key,
            }
        return {"Digits": digits}


class FakeCall(Created):
    """One call leg: outbound (`kind` "call" or "participant") or inbound. Driven by the test."""

    def __init__(
        self,
        fake: FakeTwilio,
        *,
        sid: str,
        to: str,
        from_: str,
        form: Form,
        kind: Literal["call", "participant", "inbound"] = "call",
        conference: str | None = None,
    ) -> None:
        super().__init__(fake, sid=sid, to=to, from_=from_, form=form)
        self.kind = kind
        self.direction = "inbound" if kind == "inbound" else "outbound-api"
        self.status = "queued"
        self.heard: list[str] = []
        self.gather: Gather | None = None
        self.conference = conference
        self.conference_sid: str | None = None
        self.dialed: list[str] = []
        self.answered_by: str | None = None
        self.ended_by: Literal["phone", "twiml", "api"] | None = None
        self.started_at: datetime | None = None  # dialled (Twilio's `start_time`)
        self.answered_at: datetime | None = None
        self.ended_at: datetime | None = None
        self._sequence = 0
        self._hops = 0

    # --- the phone, driven by the test ---------------------------------------------------------

    async def ring(self) -> None:
        """Post `initiated` and `ringing` (as requested); `answer()` does this when needed."""
        await self.fake.flush()
        self._require("queued")
        self.started_at = self.fake.now()
        await self._progress("initiated", "initiated")
        self.status = "ringing"
        await self._progress("ringing", "ringing")

    async def answer(self, human: bool = True) -> None:
        await self.fake.flush()
        if self.status == "queued":
            await self.ring()
        self._require("ringing")
        self.status, self.answered_at, self._hops = "in-progress", self.fake.now(), 0
        if self._amd_requested():
            self.answered_by = "human" if human else "machine_end_beep"
        await self._progress("answered", "in-progress")
        await self._start()
        await self._post_async_amd()
        await self.fake.flush()

    async def press(self, digits: str) -> None:
        await self.fake.flush()
        self._require("in-progress")
        gather = self._take_gather(digits)
        self._hops = 0
        await self._fetch(gather.action, gather.method, gather.keys(digits))
        await self.fake.flush()

    async def no_input(self) -> None:
        """Let the waiting `<Gather>` time out: its action with empty Digits, or the next verbs."""
        await self.fake.flush()
        self._require("in-progress")
        gather = self._take_gather("")
        self._hops = 0
        if gather.action_on_empty_result:
            await self._fetch(gather.action, gather.method, {"Digits": ""})
        else:
            await self._run(gather.rest, gather.url)
        await self.fake.flush()

    async def hang_up(self) -> None:
        """The person hangs up. Nothing happens if the call already ended (TwiML or the API)."""
        await self.fake.flush()
        if self.status not in CALL_ENDED:
            self._require("in-progress")
            await self._end("completed", "phone")
        await self.fake.flush()

    async def no_answer(self) -> None:
        await self._unanswered("no-answer", ring=True)

    async def busy(self) -> None:
        await self._unanswered("busy", ring=False)

    async def fail(self, sip_response_code: int | None = None) -> None:
        extra = {"SipResponseCode": str(sip_response_code)} if sip_response_code else {}
        await self._unanswered("failed", ring=False, extra=extra)

    async def voicemail(self) -> None:
        await self.answer(human=False)
        await self.hang_up()

    # --- REST side -------------------------------------------------------------------------------

    def resource(self) -> dict[str, Any]:
        uri = f"/2010-04-01/Accounts/{self.fake.account_sid}/Calls/{self.sid}"
        ended = self.status in CALL_ENDED
        return {
            "sid": self.sid,
            "date_created": rfc2822(self.created_at),
            "date_updated": rfc2822(self.fake.now()),
            "parent_call_sid": None,
            "account_sid": self.fake.account_sid,
            "to": self.to,
            "to_formatted": self.to,
            "from": self.from_,
            "from_formatted": self.from_,
            "phone_number_sid": None,
            "status": self.status,
            "start_time": rfc2822(self.started_at),
            "end_time": rfc2822(self.ended_at),
            "duration": str(self._duration()) if ended else None,
            "price": None,
            "price_unit": "USD",
            "direction": self.direction,
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "uri": uri + ".json",
            "subresource_uris": {"recordings": uri + "/Recordings.json"},
        }

    def end_by_api(self, requested: str) -> None:
        """`Status=canceled|completed`: state now, the callback later (Twilio is asynchronous)."""
        if self.status in CALL_ENDED:
            return
        if self.status in ("queued", "ringing"):
            self._mark_ended("canceled", "api")
        elif requested == "completed":
            self._mark_ended("completed", "api")
        else:
            return  # Twilio ignores `canceled` for a call in progress
        self.fake.later(self._post_final)

    # --- internals -----------------------------------------------------------------------------

    def _require(self, *states: str) -> None:
        if self.status not in states:
            raise AssertionError(f"{self!r} is {self.status}, expected {' or '.join(states)}")

    def _take_gather(self, digits: str) -> Gather:
        if self.gather is None:
            raise AssertionError(f"{self!r}: no <Gather> waits for {digits!r}; heard {self.heard}")
        gather, self.gather = self.gather, None
        return gather

    def _events(self) -> set[str]:
        values = self.form.get("StatusCallbackEvent", [])
        return {event for value in values for event in value.split()} | {"completed"}

    def _amd_requested(self) -> bool:
        return bool(self.param("MachineDetection"))

    def _voice_params(self) -> dict[str, str]:
        return {
            "CallSid": self.sid,
            "AccountSid": self.fake.account_sid,
            "From": self.from_,
            "To": self.to,
            "Caller": self.from_,
            "Called": self.to,
            "CallStatus": self.status,
            "Direction": self.direction,
            "ApiVersion": API_VERSION,
        }

    def _duration(self) -> int:
        if self.answered_at is None or self.ended_at is None:
            return 0
        return int((self.ended_at - self.answered_at).total_seconds())

    async def _progress(self, event: str, status: str, extra: Mapping[str, str] = NO_EXTRA) -> None:
        url = self.param("StatusCallback")
        if url is None or event not in self._events() or self.callbacks_lost:
            return
        params = self._voice_params() | {
            "CallStatus": status,
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(self._sequence),
            "Timestamp": format_datetime(self.fake.now()),
        }
        self._sequence += 1
        await self.fake.callback(url, params | dict(extra), duplicate=self.duplicate)

    async def _unanswered(
        self, status: str, *, ring: bool, extra: Mapping[str, str] = NO_EXTRA
    ) -> None:
        await self.fake.flush()
        self._require("queued", "ringing")
        if ring and self.status == "queued":
            await self.ring()
        elif self.status == "queued":
            self.started_at = self.fake.now()
            await self._progress("initiated", "initiated")
        await self._end(status, "phone", extra)
        await self.fake.flush()

    def _mark_ended(self, status: str, by: Literal["phone", "twiml", "api"]) -> None:
        self.status, self.ended_by, self.ended_at, self.gather = status, by, self.fake.now(), None

    async def _end(
        self, status: str, by: Literal["phone", "twiml", "api"], extra: Mapping[str, str] = NO_EXTRA
    ) -> None:
        if self.status not in CALL_ENDED:
            self._mark_ended(status, by)
            await self._post_final(extra)

    async def _post_final(self, extra: Mapping[str, str] = NO_EXTRA) -> None:
        final = {"CallDuration": str(self._duration())} | dict(extra)
        if self.answered_by:
            final["AnsweredBy"] = self.answered_by
        await self._progress("completed", self.status, final)

    async def _post_async_amd(self) -> None:
        key = "AmdStatusCallback" if self.kind == "participant" else "AsyncAmdStatusCallback"
        url = self.param(key)
        is_async = self.kind == "participant" or self.param("AsyncAmd") == "true"
        if url is None or self.answered_by is None or not is_async:
            return
        params = self._voice_params() | {
            "AnsweredBy": self.answered_by,
            "MachineDetectionDuration": "2300",
        }
        await self.fake.callback(url, params, duplicate=self.duplicate)

    async def _start(self) -> None:
        """Run the call's TwiML: fetch `Url` (or use `Twiml`). A participant joins its room."""
        if self.kind == "participant":
            return
        url, twiml = self.param("Url"), self.param("Twiml")
        extra: dict[str, str] = {}
        if self.answered_by and self.param("AsyncAmd") != "true":  # synchronous AMD
            extra["AnsweredBy"] = self.answered_by
        if url is not None:
            await self._fetch(url, self.param("Method") or "POST", extra)
        elif twiml is not None:
            await self._run_document(twiml, self.fake.public_base_url)

    async def _fetch(self, url: str, method: str, extra: Mapping[str, str]) -> None:
        self._hops += 1
        if self._hops > MAX_HOPS:
            self.fake.error(f"{self!r}: more than {MAX_HOPS} TwiML documents (a redirect loop?)")
            await self._end("completed", "twiml")
            return
        if method.upper() != "POST":
            self.fake.error(f"{self!r}: the fake only models POST webhooks, got {method} {url}")
        twiml = await self.fake.webhook(url, self._voice_params() | dict(extra), twiml=True)
        if self.status == "ringing":  # an inbound call is answered by its first TwiML
            self.status, self.answered_at = "in-progress", self.fake.now()
        if twiml is None:  # the caller hears "an application error has occurred"
            await self._end("completed", "twiml")
        else:
            await self._run_document(twiml, url)

    async def _run_document(self, twiml: str, url: str) -> None:
        await self._run(list(ElementTree.fromstring(twiml)), url)

    async def _run(self, verbs: list[ElementTree.Element], url: str) -> None:
        for index, verb in enumerate(verbs):
            if verb.tag not in VOICE_VERBS:
                self.fake.error(f"{self!r}: the fake does not model <{verb.tag}> (from {url})")
            elif verb.tag == "Say":
                self.heard.append(text_of(verb))
            elif verb.tag == "Gather":
                self._gather(verb, verbs[index + 1 :], url)
                return
            elif verb.tag == "Redirect":
                target = self._absolute(text_of(verb), url)
                await self._fetch(target, verb.get("method", "POST"), {})
                return
            elif verb.tag == "Dial":
                self._dial(verb)
                return
            elif verb.tag in ("Hangup", "Reject"):
                break
        await self._end("completed", "twiml")  # no verbs left: Twilio hangs up

    def _gather(self, verb: ElementTree.Element, rest: list[ElementTree.Element], url: str) -> None:
        for child in verb:
            if child.tag == "Say":
                self.heard.append(text_of(child))
            elif child.tag not in ("Play", "Pause"):
                self.fake.error(f"{self!r}: <{child.tag}> is not allowed inside <Gather>")
        gather = Gather.parse(verb, rest, url)
        gather.action = self._absolute(gather.action, url)
        self.gather = gather

    def _dial(self, verb: ElementTree.Element) -> None:
        """`<Dial>` holds the line until someone hangs up; `hang_up()` ends it."""
        for child in verb:
            if child.tag == "Conference":
                self.conference = text_of(child)
            elif child.tag == "Number":
                self.dialed.append(text_of(child))
        if len(verb) == 0 and text_of(verb):
            self.dialed.append(text_of(verb))

    def _absolute(self, target: str, url: str) -> str:
        if not is_absolute(target):
            self.fake.error(f"{self!r}: relative URL {target!r} in TwiML from {url}")
            return urljoin(url, target)
        return target


class FakeSms(Created):
    """One outbound message; the test walks it through Twilio's message states."""

    kind = "sms"

    def __init__(self, fake: FakeTwilio, *, sid: str, to: str, from_: str, form: Form) -> None:
        super().__init__(fake, sid=sid, to=to, from_=from_, form=form)
        self.body = self.param("Body") or ""
        self.status = "queued" if from_ else "accepted"
        self.error_code: int | None = None
        self.sent_at: datetime | None = None  # left Twilio's queue (its `date_sent`)

    async def deliver(self, *, out_of_order: bool = False) -> None:
        await self._walk(["delivered", "sent"] if out_of_order else ["sent", "delivered"])

    async def mark_sent(self) -> None:
        """Twilio handed it to the carrier (`sent`); delivery may follow later."""
        await self._walk(["sent"])

    async def undeliver(self, error_code: int = 30003) -> None:
        await self._walk(["sent", "undelivered"], error_code)

    async def fail(self, error_code: int = 30008) -> None:
        """`failed` means never sent: no `sent` callback comes first."""
        await self._walk(["failed"], error_code)

    def resource(self) -> dict[str, Any]:
        uri = f"/2010-04-01/Accounts/{self.fake.account_sid}/Messages/{self.sid}"
        return {
            "sid": self.sid,
            "account_sid": self.fake.account_sid,
            "body": self.body,
            "num_segments": "1",
            "num_media": "0",
            "direction": "outbound-api",
            "from": self.from_ or None,
            "to": self.to,
            "messaging_service_sid": self.param("MessagingServiceSid"),
            "status": self.status,
            "error_code": self.error_code,
            "error_message": None,
            "price": None,
            "price_unit": "USD",
            "api_version": API_VERSION,
            "date_created": rfc2822(self.created_at),
            "date_updated": rfc2822(self.fake.now()),
            "date_sent": rfc2822(self.sent_at),
            "uri": uri + ".json",
            "subresource_uris": {"media": uri + "/Media.json"},
        }

    async def _walk(self, states: list[str], error_code: int | None = None) -> None:
        await self.fake.flush()
        if self.status in MESSAGE_ENDED:
            raise AssertionError(f"{self!r} is already {self.status}")
        self.status = next((s for s in states if s != "sent"), states[-1])
        self.error_code = error_code
        if self.status != "failed" and self.sent_at is None:  # `failed`: it never left
            self.sent_at = self.fake.now()
        url = None if self.callbacks_lost else self.param("StatusCallback")
        for state in states if url else []:
            params = {
                "MessageSid": self.sid,
                "SmsSid": self.sid,
                "AccountSid": self.fake.account_sid,
                "From": self.from_,
                "To": self.to,
                "MessageStatus": state,
                "SmsStatus": state,
                "ApiVersion": API_VERSION,
            }
            if error_code is not None and state in ("undelivered", "failed"):
                params["ErrorCode"] = str(error_code)
            await self.fake.callback(str(url), params, duplicate=self.duplicate)
        await self.fake.flush()


# --- the fake ----------------------------------------------------------------------------------


class FakeTwilio:
    """Twilio's REST API (`transport`) plus the phones it rings, with a no-double-page oracle."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        public_base_url: str = "https://sos.example.test",
        *,
        clock: Clock | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.public_base_url = public_base_url.rstrip("/")
        self.errors: list[str] = []
        self.calls: list[FakeCall] = []
        self.messages: list[FakeSms] = []
        self.transport = httpx.MockTransport(self._handle)
        self.webhook_transport = webhook_transport
        self._clock = clock or SystemClock()
        self._faults: dict[str, list[Fault]] = {}
        self._pending: list[Callable[[], Awaitable[None]]] = []
        self._rooms: dict[str, str] = {}
        self._opted_out: set[tuple[str, str]] = set()  # (staff number, our number)
        self._routes = self._route_table()

    # --- test API: faults ------------------------------------------------------------------------

    def fail_next(
        self, resource: Resource, status: int, code: int, retry_after: int | None = None
    ) -> None:
        self._faults.setdefault(resource, []).append(Fault("fail", status, code, retry_after))

    def hang_next(self, resource: Resource) -> None:
        """Create the resource, then time out reading the answer (accept-then-silence)."""
        self._faults.setdefault(resource, []).append(Fault("hang"))

    def drop_next(self, resource: Resource) -> None:
        """Time out connecting: nothing is created."""
        self._faults.setdefault(resource, []).append(Fault("drop"))

    def fail_next_list(
        self, listed: Literal["Calls", "Messages"], status: int, code: int, *, times: int = 1
    ) -> None:
        """Answer the next `times` list requests of calls or messages with an error."""
        self._faults.setdefault(f"{listed} list", []).extend(
            Fault("fail", status, code) for _ in range(times)
        )

    def lose_next(self, resource: Resource) -> None:
        """Time out reading the answer, though nothing is created: the request was sent but
        never reached Twilio (the caller cannot tell this from `hang_next`)."""
        self._faults.setdefault(resource, []).append(Fault("lose"))

    # --- test API: expecting ---------------------------------------------------------------------

    def calls_to(self, number: str) -> list[FakeCall]:
        """Every outbound call to `number`, taken or not (inspection only)."""
        return [c for c in self.calls if c.kind == "call" and c.to == number]

    async def expect_call(self, *, to: str, duplicate: bool = False) -> FakeCall:
        return self._take([c for c in self.calls if c.kind == "call"], "call", to, duplicate)

    async def expect_participant(self, *, to: str, duplicate: bool = False) -> FakeCall:
        participants = [c for c in self.calls if c.kind == "participant"]
        return self._take(participants, "participant", to, duplicate)

    async def expect_sms(self, *, to: str, duplicate: bool = False) -> FakeSms:
        return self._take(self.messages, "sms", to, duplicate)

    def assert_clean(self) -> None:
        untaken: list[Created] = [c for c in self.calls if not c.taken]
        untaken += [m for m in self.messages if not m.taken]
        problems = self.errors + [f"unexpected {item!r}" for item in untaken]
        if problems:
            raise AssertionError("fake Twilio is not clean:\n- " + "\n- ".join(problems))

    # --- test API: the outside world writes to us ------------------------------------------------

    async def send_sms(
        self, *, from_: str, body: str, to: str, url: str | None = None
    ) -> list[str]:
        """An inbound SMS; returns the `<Message>` texts of the TwiML reply."""
        await self.flush()
        self._track_opt_out(from_, to, body)
        sid = new_sid("SM")
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "To": to,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": API_VERSION,
        }
        twiml = await self.webhook(url or self.public_base_url + "/webhooks/twilio/sms", params)
        await self.flush()
        return [] if twiml is None else self._message_texts(twiml)

    async def incoming_call(self, *, from_: str, to: str, url: str | None = None) -> FakeCall:
        """A call to our number; its TwiML runs as for outbound calls (`press` works on it)."""
        await self.flush()
        voice_url = url or self.public_base_url + "/webhooks/twilio/voice"
        call = FakeCall(
            self, sid=new_sid("CA"), to=to, from_=from_, form={"Url": [voice_url]}, kind="inbound"
        )
        call.taken, call.status = True, "ringing"
        self.calls.append(call)
        await call._start()
        await self.flush()
        return call

    async def flush(self) -> None:
        """Post the callbacks that REST requests caused (in order)."""
        while self._pending:
            await self._pending.pop(0)()

    # --- used by FakeCall / FakeSms --------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock.now()

    def error(self, problem: str) -> None:
        self.errors.append(problem)

    def later(self, job: Callable[[], Awaitable[None]]) -> None:
        self._pending.append(job)

    async def callback(self, url: str, params: Mapping[str, str], *, duplicate: bool) -> None:
        token = new_sid("")  # I-Twilio-Idempotency-Token: one per event, reused on redelivery
        for _ in range(2 if duplicate else 1):
            await self.webhook(url, params, twiml=False, token=token)

    async def webhook(
        self, url: str, params: Mapping[str, str], *, twiml: bool = True, token: str = ""
    ) -> str | None:
        """POST a signed form to the app; return the TwiML (or None when none or wrong)."""
        if self.webhook_transport is None:
            raise AssertionError("FakeTwilio needs webhook_transport to post webhooks")
        if not url.startswith(self.public_base_url + "/"):
            self.error(f"webhook URL {url} is not under {self.public_base_url}")
            return None
        url = url.split("#", 1)[0]
        request = self._signed_request(url, params, token or new_sid(""))
        response = await self.webhook_transport.handle_async_request(request)
        content = await response.aread()
        if twiml:
            return self._check_twiml(url, response, content)
        if not (response.status_code == 204 or (response.status_code == 200 and not content)):
            self.error(f"status callback {url} answered {response.status_code} {content[:80]!r}")
        return None

    # --- webhook internals -----------------------------------------------------------------------

    def _signed_request(self, url: str, params: Mapping[str, str], token: str) -> httpx.Request:
        signature = RequestValidator(self.auth_token).compute_signature(url, dict(params))
        headers = {
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": token,
            "User-Agent": "TwilioProxy/1.1",
        }
        request = httpx.Request("POST", url, data=dict(params), headers=headers)
        parts = urlsplit(url)
        sent_as = parts.path + (f"?{parts.query}" if parts.query else "")
        if request.url.raw_path.decode("ascii") != sent_as:
            self.error(f"webhook URL {url} cannot be sent verbatim (httpx re-encodes it)")
        return request

    def _check_twiml(self, url: str, response: httpx.Response, content: bytes) -> str | None:
        content_type = response.headers.get("content-type", "")
        if response.status_code != 200 or not content_type.startswith(
            ("text/xml", "application/xml")
        ):
            self.error(f"TwiML webhook {url} answered {response.status_code} {content_type!r}")
            return None
        try:
            root = ElementTree.fromstring(content)
        except ElementTree.ParseError as exc:
            self.error(f"TwiML webhook {url} answered malformed XML: {exc}")
            return None
        if root.tag != "Response":
            self.error(f"TwiML webhook {url} answered <{root.tag}>, not <Response>")
            return None
        return content.decode("utf-8")

    def _message_texts(self, twiml: str) -> list[str]:
        texts = []
        for message in ElementTree.fromstring(twiml).iter("Message"):
            body = message.find("Body")
            texts.append(text_of(body if body is not None else message))
        return texts

    def _track_opt_out(self, staff: str, ours: str, body: str) -> None:
        word = body.strip().upper()
        if word in STOP_WORDS:
            self._opted_out.add((staff, ours))
        elif word in START_WORDS:
            self._opted_out.discard((staff, ours))

    def _take(self, items: Iterable[T], kind: str, to: str, duplicate: bool) -> T:
        for item in items:
            if item.to == to and not item.taken:
                item.taken, item.duplicate = True, duplicate
                return item
        others = [c for c in self.calls if not c.taken] + [m for m in self.messages if not m.taken]
        raise AssertionError(f"expected a {kind} to {to}; not taken: {others}")

    # --- REST -------------------------------------------------------------------------------------

    def _route_table(self) -> list[Route]:
        def route(
            method: str, path: str, template: str, handler: Handler, resource: Resource | None
        ) -> Route:
            return Route(method, re.compile(f"^{path}$"), template, handler, resource)

        call, message = r"/Calls/(?P<sid>[^/]+)\.json", r"/Messages/(?P<sid>[^/]+)\.json"
        return [
            route("POST", r"/Calls\.json", "/Calls.json", self._create_call, "Calls"),
            replace(
                route("GET", r"/Calls\.json", "/Calls.json", self._list_calls, None),
                listed="Calls",
            ),
            route("GET", call, "/Calls/{Sid}.json", self._fetch_call, None),
            route("POST", call, "/Calls/{Sid}.json", self._update_call, None),
            route("POST", r"/Messages\.json", "/Messages.json", self._create_message, "Messages"),
            replace(
                route("GET", r"/Messages\.json", "/Messages.json", self._list_messages, None),
                listed="Messages",
            ),
            route("GET", message, "/Messages/{Sid}.json", self._fetch_message, None),
            route(
                "POST",
                r"/Conferences/(?P<room>[^/]+)/Participants\.json",
                "/Conferences/{ConferenceSid}/Participants.json",
                self._create_participant,
                "Participants",
            ),
        ]

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        form = parse_form(body if request.method == "POST" else request.url.query)
        if request.headers.get("authorization") != self._basic_auth():
            return self._error(401, 20003, "Authenticate")
        spec_request = MockRequest(
            SPEC_HOST,
            request.method,
            request.url.path,
            headers=dict(request.headers),
            args=dict(request.url.params),
            data=body,
            content_type=request.headers.get("content-type", "application/x-www-form-urlencoded"),
        )
        route, groups = self._match(request.method, request.url.path)
        problems = self._spec_problems(spec_request)
        if route is not None:
            problems += self._rule_problems(route, form)
        where = f"{request.method} {request.url.path}"
        if problems:
            self.errors.extend(f"{where}: {p}" for p in problems)
            return self._error(400, CONTRACT_CODE, "; ".join(problems))
        if route is None:
            self.error(f"{where}: in the spec, but the fake does not serve it")
            return self._error(404, 20404, f"The requested resource {request.url.path} not found")
        return await self._serve(request, route, groups, form, spec_request)

    async def _serve(
        self,
        request: httpx.Request,
        route: Route,
        groups: dict[str, str],
        form: Form,
        spec_request: MockRequest,
    ) -> httpx.Response:
        fault = self._next_fault(route.resource or (route.listed and f"{route.listed} list"))
        if fault is not None and fault.kind == "drop":
            raise httpx.ConnectTimeout("fake Twilio: connect timeout", request=request)
        if fault is not None and fault.kind == "lose":
            raise httpx.ReadTimeout("fake Twilio: read timeout, nothing created", request=request)
        if fault is not None and fault.kind == "fail":
            message = f"fake Twilio: injected error {fault.code}"
            return self._error(fault.status, fault.code, message, fault.retry_after)
        status, payload = route.handler(form, groups)
        if status < 300:
            self._check_response(spec_request, status, payload)
        if fault is not None and fault.kind == "hang":
            raise httpx.ReadTimeout("fake Twilio: read timeout", request=request)
        return httpx.Response(status, json=payload)

    def _next_fault(self, key: str | None) -> Fault | None:
        queue = self._faults.get(key or "", [])
        return queue.pop(0) if queue else None

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        prefix = ACCOUNT_PREFIX.match(path)
        if prefix is None or prefix["account"] != self.account_sid:
            return None, {}
        for route in self._routes:
            found = route.pattern.match(prefix["rest"])
            if found and route.method == method:
                return route, found.groupdict()
        return None, {}

    def _basic_auth(self) -> str:
        pair = f"{self.account_sid}:{self.auth_token}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def _error(
        self, status: int, code: int, message: str, retry_after: int | None = None
    ) -> httpx.Response:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return httpx.Response(status, json=error_body(status, code, message), headers=headers)

    # --- contract checks -------------------------------------------------------------------------

    def _spec_problems(self, spec_request: MockRequest) -> list[str]:
        try:
            twilio_spec().validate_request(spec_request)
        except OpenAPIError as exc:
            return [describe(exc)]
        return []

    def _rule_problems(self, route: Route, form: Form) -> list[str]:
        """What the spec states only in prose, formats or `x-twilio`: checked here."""
        if route.method != "POST":
            named = query_parameters(route.template, route.method.lower())
            return [
                f"unknown query parameter {n} (Twilio ignores it)" for n in form if n not in named
            ]
        properties = form_schema(route.template, "post").get("properties", {})
        problems = [
            f"unknown parameter {n} (Twilio ignores it)" for n in form if n not in properties
        ]
        for name, values in form.items():
            if properties.get(name, {}).get("format") == "uri":
                problems += [
                    f"{name}={v!r} is no absolute URL" for v in values if not is_absolute(v)
                ]
        if route.resource is not None:
            problems += self._conditional_problems(route, form)
            problems += prose_problems(route.resource, form)
        if route.resource in ("Calls", "Participants"):
            problems += self._event_problems(route.resource, form)
        if route.resource == "Calls":
            problems += twiml_problems(form)
        return problems

    def _conditional_problems(self, route: Route, form: Form) -> list[str]:
        problems = []
        for group in conditional_groups(route.template):
            present = [name for name in group if first(form, name)]
            if not present:
                problems.append(f"one of {'/'.join(group)} is required")
            elif route.resource == "Calls" and len(present) > 1:
                problems.append(f"exactly one of {'/'.join(group)} is allowed, got {present}")
        return problems

    def _event_problems(self, resource: str, form: Form) -> list[str]:
        values = form.get("StatusCallbackEvent", [])
        problems = []
        if resource == "Calls" and any(len(v.split()) > 1 for v in values):
            problems.append("Calls take one StatusCallbackEvent per key, not space-separated")
        unknown = {e for v in values for e in v.split()} - CALL_EVENTS
        if unknown:
            problems.append(f"unknown StatusCallbackEvent {sorted(unknown)}")
        return problems

    def _check_response(self, spec_request: MockRequest, status: int, payload: Any) -> None:
        response = MockResponse(json.dumps(payload).encode(), status_code=status)
        try:
            twilio_spec().validate_response(spec_request, response)
        except OpenAPIError as exc:
            self.error(f"fake bug: its answer breaks the spec: {describe(exc)}")

    # --- REST handlers ---------------------------------------------------------------------------

    def _rejects_to(self, form: Form) -> tuple[int, dict[str, Any]] | None:
        to = first(form, "To") or ""
        if not E164.match(to):
            return 400, error_body(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        return None

    def _not_found(self, kind: str, sid: str) -> tuple[int, dict[str, Any]]:
        path = f"/2010-04-01/Accounts/{self.account_sid}/{kind}/{sid}.json"
        return 404, error_body(404, 20404, f"The requested resource {path} was not found")

    def _create_call(self, form: Form, _: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if rejected := self._rejects_to(form):
            return rejected
        to, from_ = first(form, "To") or "", first(form, "From") or ""
        call = FakeCall(self, sid=new_sid("CA"), to=to, from_=from_, form=form)
        self.calls.append(call)
        return 201, call.resource()

    def _find_call(self, sid: str) -> FakeCall | None:
        return next((c for c in self.calls if c.sid == sid), None)

    def _list_calls(self, form: Form, _: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """`GET Calls.json?To=…&From=…&StartTime>=…` (or `Status=queued`): how a caller who lost
        the create answer finds the call. Outbound calls only (as `From` our number asks)."""
        calls = [(c.resource(), c.started_at) for c in self.calls if c.kind != "inbound"]
        return self._page("calls", calls, form, "StartTime")

    def _list_messages(self, form: Form, _: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """`GET Messages.json?To=…&From=…&DateSent>=…`: a message still queued has no sent date,
        so a date filter leaves it out, as at Twilio."""
        messages = [(m.resource(), m.sent_at) for m in self.messages]
        return self._page("messages", messages, form, "DateSent")

    def _page(
        self,
        key: str,
        resources: list[tuple[dict[str, Any], datetime | None]],
        form: Form,
        dated: str,
    ) -> tuple[int, dict[str, Any]]:
        """Newest first, filtered on To, From, Status and the date (`dated` with `>` or `<`:
        on or after, before), one page of `PageSize` (50)."""
        wanted = {
            name.lower(): value for name in ("To", "From", "Status") if (value := first(form, name))
        }
        bounds = {op: first(form, dated + op) for op in (">", "<")}
        try:
            after, before = (None if v is None else parse_moment(v) for v in bounds.values())
        except ValueError as exc:
            return 400, error_body(400, 20001, f"Invalid date value: {exc}")
        found = [
            resource
            for resource, at in reversed(resources)
            if all(resource[k] == v for k, v in wanted.items())
            and (after is None or (at is not None and at >= after))
            and (before is None or (at is not None and at < before))
        ]
        size = int(first(form, "PageSize") or 50)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/{key.capitalize()}.json"
        more = f"{uri}?PageSize={size}&Page=1&PageToken=PAfake" if len(found) > size else None
        return 200, {
            key: found[:size],
            "page": 0,
            "page_size": size,
            "start": 0,
            "end": max(min(len(found), size) - 1, 0),
            "uri": uri,
            "first_page_uri": uri,
            "next_page_uri": more,
            "previous_page_uri": None,
        }

    def _fetch_call(self, _: Form, groups: dict[str, str]) -> tuple[int, dict[str, Any]]:
        call = self._find_call(groups["sid"])
        return (200, call.resource()) if call else self._not_found("Calls", groups["sid"])

    def _update_call(self, form: Form, groups: dict[str, str]) -> tuple[int, dict[str, Any]]:
        call = self._find_call(groups["sid"])
        if call is None:
            return self._not_found("Calls", groups["sid"])
        if first(form, "Url") or first(form, "Twiml"):
            self.error(f"{call!r}: the fake does not model redirecting a live call")
        if status := first(form, "Status"):
            call.end_by_api(status)
        return 200, call.resource()

    def _create_message(self, form: Form, _: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if rejected := self._rejects_to(form):
            return rejected
        to, from_ = first(form, "To") or "", first(form, "From") or ""
        if (to, from_) in self._opted_out:
            return 400, error_body(400, 21610, "Attempt to send to unsubscribed recipient")
        if len(first(form, "Body") or "") > 1600:
            return 400, error_body(400, 21617, "The concatenated message body exceeds 1600 chars")
        message = FakeSms(self, sid=new_sid("SM"), to=to, from_=from_, form=form)
        self.messages.append(message)
        return 201, message.resource()

    def _fetch_message(self, _: Form, groups: dict[str, str]) -> tuple[int, dict[str, Any]]:
        message = next((m for m in self.messages if m.sid == groups["sid"]), None)
        if message is None:
            return self._not_found("Messages", groups["sid"])
        return 200, message.resource()

    def _create_participant(self, form: Form, groups: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if rejected := self._rejects_to(form):
            return rejected
        room = groups["room"]
        room_sid = self._rooms.setdefault(room, room if room.startswith("CF") else new_sid("CF"))
        to, from_ = first(form, "To") or "", first(form, "From") or ""
        call = FakeCall(
            self,
            sid=new_sid("CA"),
            to=to,
            from_=from_,
            form=form,
            kind="participant",
            conference=room,
        )
        call.conference_sid = room_sid
        self.calls.append(call)
        return 201, self._participant(call, room_sid)

    def _participant(self, call: FakeCall, room_sid: str) -> dict[str, Any]:
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Conferences/{room_sid}"
        return {
            "account_sid": self.account_sid,
            "call_sid": call.sid,
            "conference_sid": room_sid,
            "label": call.param("Label"),
            "call_sid_to_coach": None,
            "coaching": False,
            "muted": call.param("Muted") == "true",
            "hold": False,
            "start_conference_on_enter": call.param("StartConferenceOnEnter") != "false",
            "end_conference_on_exit": call.param("EndConferenceOnExit") == "true",
            "status": "queued",
            "queue_time": "0",
            "date_created": rfc2822(call.created_at),
            "date_updated": rfc2822(call.created_at),
            "uri": f"{uri}/Participants/{call.sid}.json",
        }
