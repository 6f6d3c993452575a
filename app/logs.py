"""Logging for every process: one JSON object per line for log collectors, or readable lines for a
person at a terminal, with phone numbers and secrets masked before anything is written.

`setup()` puts one handler on the root logger and makes uvicorn's loggers (its access log too)
propagate to it, so every line, ours or the server's, has the same shape and passes the same
`Redact` filter. The filter is the last line of defence: code logs ids (report, page, staff), never
a description, a phone number or a token, and `extra={"report_id": ...}` carries the report a line
is about.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from routing.phone import mask_numbers

LogFormat = Literal["auto", "json", "text"]

# Loggers uvicorn configures for itself; we route them through our handler instead.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")

# Every attribute a plain LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# uvicorn adds a coloured copy of some messages for its own formatter.
_IGNORED_EXTRAS = frozenset({"color_message"})

_HIDDEN = "[redacted]"

_SECRETS = (
    # One-time accept links and customer status pages carry their secret in the path.
    (re.compile(r"/(ack|status)/[^/\s?#.\"']+"), rf"/\1/{_HIDDEN}"),
    (
        re.compile(r"([?&](?:token|code|secret|signature|key|password)=)[^&\s#\"']+", re.I),
        rf"\1{_HIDDEN}",
    ),
    (
        re.compile(
            r"(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic)\s+)?[^\s,;\"']+", re.I
        ),
        rf"\1{_HIDDEN}",
    ),
    (re.compile(r"\b(bearer|basic)\s+(?!\[redacted\])[^\s,;\"']+", re.I), rf"\1 {_HIDDEN}"),
    # API tokens (`sos_` + 43 characters), wherever they turn up.
    (re.compile(r"\bsos_[A-Za-z0-9_-]{16,}"), f"sos_{_HIDDEN}"),
    # SQLAlchemy puts a failed statement's values in its error text; pydantic the input it refused.
    (re.compile(r"\[parameters: [^\n]*"), f"[parameters: {_HIDDEN}]"),
    (re.compile(r"input_value=.*?(?=, input_type=|$)", re.M), f"input_value={_HIDDEN}"),
)


def redact(text: str) -> str:
    """`text` with phone numbers masked and tokens, auth headers and SQL values replaced."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return mask_numbers(text)


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """What the log call added with `extra=` (report_id, page_id, ...)."""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD and key not in _IGNORED_EXTRAS
    }


class Redact(logging.Filter):
    """Masks the finished message, the exception text and string extras of every record a
    handler writes. It changes the record itself, so handlers after it see the masked text too."""

    _exceptions = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken log call must not break the code that made it
            message = f"{record.msg!s} (log arguments did not fit: {record.args!r})"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exceptions.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in extras(record).items():
            if isinstance(value, str):
                setattr(record, key, redact(value))
        return True


def _timestamp(record: logging.LogRecord) -> str:
    when = datetime.fromtimestamp(record.created, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _exception(record: logging.LogRecord, formatter: logging.Formatter) -> str | None:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    return record.exc_text or None


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", ...extras, "exc"}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            **extras(record),  # first, so an extra cannot pass itself off as a core field
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if (exc := _exception(record, self)) is not None:
            entry["exc"] = exc
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`2026-01-05T09:00:00.000Z WARNING routing.engine.escalator: ... report_id=...`."""

    def format(self, record: logging.LogRecord) -> str:
        fields = "".join(f" {key}={value}" for key, value in extras(record).items())
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        exc = _exception(record, self)
        return line + fields + (f"\n{exc}" if exc else "")


def formatter(log_format: LogFormat, stream: TextIO) -> logging.Formatter:
    """`auto` is JSON, unless a person is watching: then text."""
    if log_format == "auto":
        log_format = "text" if stream.isatty() else "json"
    return JsonFormatter() if log_format == "json" else TextFormatter()


def handler(log_format: LogFormat = "json", stream: TextIO | None = None) -> logging.Handler:
    """A handler writing to `stream` (stderr) in `log_format`, through the redaction filter."""
    stream = stream or sys.stderr
    out = logging.StreamHandler(stream)
    out.setFormatter(formatter(log_format, stream))
    out.addFilter(Redact())
    return out


def setup(*, level: str, log_format: LogFormat, stream: TextIO | None = None) -> None:
    """Make the root handler the only one, at `level`, and send uvicorn's loggers through it
    (run uvicorn with `log_config=None` so it does not install its own)."""
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler(log_format, stream))
    root.setLevel(level.upper())
    for name in UVICORN_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
