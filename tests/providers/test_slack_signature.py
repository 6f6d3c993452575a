"""X-Slack-Signature: Slack's worked example, the 300 s window both ways, and replays."""

import pytest

from providers.slack import signature
from tests.fakes.slack import slack_signature

# The worked example of "Verifying requests from Slack" (docs.slack.dev).
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TS = "1531420618"
DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmib"
    b"IGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
NOW = float(DOC_TS) + 42


def check(
    *,
    secret: str = DOC_SECRET,
    timestamp: str = DOC_TS,
    body: bytes = DOC_BODY,
    given: str = DOC_SIG,
    now: float = NOW,
) -> str | None:
    return signature.problem(
        secret=secret, timestamp=timestamp, body=body, signature=given, now=now
    )


def test_slacks_worked_example_is_what_we_compute_and_accept() -> None:
    assert signature.compute(DOC_SECRET, DOC_TS, DOC_BODY) == DOC_SIG
    assert slack_signature(DOC_SECRET, DOC_TS, DOC_BODY) == DOC_SIG  # the fake signs alike
    assert check() is None
    assert signature.is_valid(
        secret=DOC_SECRET, timestamp=DOC_TS, body=DOC_BODY, signature=DOC_SIG, now=NOW
    )


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"secret": "another-apps-secret"}, "invalid"),
        ({"body": DOC_BODY.replace(b"text=", b"text=1")}, "invalid"),
        ({"given": DOC_SIG.replace("v0=a", "v0=b")}, "invalid"),
        ({"given": DOC_SIG.upper()}, "invalid"),
        ({"given": "garbage"}, "invalid"),
        ({"given": ""}, "missing"),
        ({"timestamp": ""}, "missing"),
        ({"timestamp": "1531420618.5"}, "not a number"),
        ({"timestamp": "-1531420618"}, "not a number"),
        ({"secret": ""}, "no Slack signing secret"),
    ],
    ids=[
        "secret",
        "body",
        "signature",
        "case",
        "garbage",
        "no-signature",
        "no-timestamp",
        "fraction",
        "negative",
        "unconfigured",
    ],
)
def test_anything_changed_is_refused(changes: dict[str, str], why: str) -> None:
    problem = check(**changes)  # type: ignore[arg-type]
    assert problem is not None
    assert why in problem


def test_the_window_is_five_minutes_both_ways() -> None:
    sent = float(DOC_TS)
    assert check(now=sent + 300) is None
    assert check(now=sent - 300) is None
    assert check(now=sent + 301) == "the Slack timestamp is too old or in the future"
    assert check(now=sent - 301) == "the Slack timestamp is too old or in the future"


def test_an_old_request_replayed_under_a_fresh_timestamp_is_refused() -> None:
    later = str(int(DOC_TS) + 3600)
    # The original signature covers the original timestamp, not the new header.
    assert check(timestamp=later, now=float(later)) == "invalid Slack signature"
    # Only someone with the secret can sign the same body at the new time.
    resigned = slack_signature(DOC_SECRET, later, DOC_BODY)
    assert check(timestamp=later, given=resigned, now=float(later)) is None
