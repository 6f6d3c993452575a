"""All configuration, from `SOS_*` environment variables (nested sections use `__`)."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from phonenumbers import SUPPORTED_REGIONS
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from providers.vonage.auth import load_private_key
from routing.crypto import BadKey, KeyRing
from routing.phone import can_receive_sms, normalize_phone
from routing.pumping.rules import EU_EEA

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./sos-router.db"


class TwilioSettings(BaseModel):
    """Twilio is on when `account_sid` is set; then the rest is required."""

    account_sid: str = ""
    auth_token: SecretStr = SecretStr("")
    from_number: str = ""
    api_base: str = "https://api.twilio.com"
    ring_seconds: int = Field(25, ge=5, le=600)
    sms_validity_seconds: int = Field(300, ge=1, le=36000)

    @property
    def enabled(self) -> bool:
        return bool(self.account_sid)


class VonageSettings(BaseModel):
    """Vonage (voice and SMS) is on when `application_id` is set; then the rest is required.

    The private key signs our REST requests: give the PEM itself (`private_key`) or a file that
    holds it (`private_key_file`). `signature_secret` checks Vonage's signed webhooks; `api_key`,
    when set, must be the `api_key` claim of those webhooks (the secret is per account)."""

    application_id: str = ""
    api_key: str = ""
    private_key: SecretStr = SecretStr("")
    private_key_file: str = ""
    signature_secret: SecretStr = SecretStr("")
    from_number: str = ""
    api_base: str = "https://api.nexmo.com"
    ring_seconds: int = Field(25, ge=5, le=120)
    sms_ttl_seconds: int = Field(300, ge=60, le=259200)

    @property
    def enabled(self) -> bool:
        return bool(self.application_id)


class FailoverSettings(BaseModel):
    """When both Twilio and Vonage are on, Twilio carries voice and SMS and Vonage takes over while
    Twilio's circuit breaker is open (`providers/failover.py`). It opens after
    `failures_in_a_row` failed sends, or when `failure_rate` of the sends of the last
    `window_seconds` failed (at least `min_outcomes` of them); a page with no status webhook within
    `receipt_seconds` counts as failed. After `cooldown_seconds` one trial send goes to Twilio."""

    failures_in_a_row: int = Field(3, ge=1, le=100)
    failure_rate: float = Field(0.5, gt=0, le=1)
    window_seconds: float = Field(60, ge=1, le=3600)
    min_outcomes: int = Field(6, ge=1, le=1000)
    cooldown_seconds: float = Field(60, ge=1, le=3600)
    receipt_seconds: float = Field(90, ge=5, le=3600)


class SlackSettings(BaseModel):
    """The chat channel: a Slack-compatible API (Slack, Mattermost, a test fake)."""

    api_base: str = "https://slack.com/api"
    bot_token: SecretStr = SecretStr("")
    signing_secret: SecretStr = SecretStr("")
    # Reserved: a team channel for chat pages to people without a chat id (not used yet; such a
    # page fails at once and the chain moves on).
    team_channel: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.bot_token.get_secret_value())


class PagingSettings(BaseModel):
    """Per-contact limits, so a wave of reports does not bury a colleague: at most this many calls
    ringing one person at once, and at most `max_sms_per_window` SMS to one person per window
    (further SMS pages wait and go out bundled into one message)."""

    max_calls_at_once: int = Field(1, ge=1, le=10)
    max_sms_per_window: int = Field(5, ge=1, le=100)
    sms_window_seconds: int = Field(900, ge=10, le=86400)


class EngineSettings(BaseModel):
    """Engine timings. The defaults suit production; the fault-injection suite shortens them so a
    killed process's work is taken over within seconds (`SOS_ENGINE__PAGE_LEASE_SECONDS=3`)."""

    # How long a claimed page belongs to its worker; after that it is lost mid-send (`unknown`).
    page_lease_seconds: float = Field(15, gt=0, le=600)
    # The hard deadline on one provider call; shorter than the page lease, so a live send never
    # outlasts its claim.
    send_timeout_seconds: float = Field(8, gt=0, le=600)
    # How long a claimed escalation timer belongs to its worker before another takes it over.
    timer_lease_seconds: float = Field(10, gt=0, le=600)
    # How often the reconciler asks the provider about a page whose outcome is unknown, and after
    # how long (from the page's creation) it gives up and moves on, flagging a possible duplicate.
    reconcile_retry_seconds: float = Field(30, gt=0, le=3600)
    reconcile_give_up_seconds: float = Field(300, gt=0, le=86400)

    @model_validator(mode="after")
    def _send_within_lease(self) -> EngineSettings:
        if self.send_timeout_seconds >= self.page_lease_seconds:
            raise ValueError(
                "SOS_ENGINE__SEND_TIMEOUT_SECONDS must be shorter than "
                "SOS_ENGINE__PAGE_LEASE_SECONDS: a live send must never outlast its lease"
            )
        return self


class DatabaseSettings(BaseModel):
    """How long the service waits on the database (the URL is `SOS_DATABASE_URL`). A statement,
    commit or rollback on PostgreSQL without an answer within `statement_timeout_seconds` fails
    as a lost connection would: the connection is closed, never handed out again, and the work
    fails (503 with `Retry-After` in the API; the engine tries again on its next pass). A slow or
    silent network then costs seconds, never a hung request or engine loop. Measured on the
    client, so it holds when the network, not the server, is what hangs. The service's own
    statements take milliseconds; command-line tools (migrations, key rotation) have no limit."""

    statement_timeout_seconds: float = Field(5, gt=0, le=3600)


class OperatorsSettings(BaseModel):
    """Who hears about it when the auditor finds stuck or lost escalations: an SMS to `phone`,
    a chat message to `chat_id` (a Slack user or channel id), or both. With neither, the auditor
    can only log at ERROR, which nobody may read in time."""

    phone: str = ""
    chat_id: str = Field("", max_length=20)
    language: Literal["nl", "en"] = "nl"

    @field_validator("phone")
    @classmethod
    def _mobile(cls, value: str) -> str:
        if not value:
            return value
        try:
            phone = normalize_phone(value)
        except ValueError:
            raise ValueError("SOS_OPERATORS__PHONE is not a valid phone number") from None
        if not can_receive_sms(phone):
            raise ValueError("SOS_OPERATORS__PHONE cannot receive SMS (not a mobile number)")
        return phone


class AuditorSettings(BaseModel):
    """The escalation auditor: how often it checks, and how far past its due time a row must be
    before it counts as stuck (normal claim latency is well under a second; the slack keeps a
    busy moment from raising an alert)."""

    interval_seconds: int = Field(30, ge=5, le=3600)
    slack_seconds: int = Field(30, ge=5, le=3600)


class AuthSettings(BaseModel):
    """Sign-in and sessions. A client address that presents `failure_limit` wrong tokens (API or
    console sign-in) within `failure_window_seconds` gets 429 with `Retry-After` until the window
    has passed. Console sessions end after `session_idle_seconds` without a request and
    `session_max_seconds` after sign-in, whichever comes first. `secure_cookies`: unset means
    Secure whenever SOS_PUBLIC_BASE_URL (or the request) is https; false only for plain-http
    local development."""

    failure_limit: int = Field(10, ge=1, le=1000)
    failure_window_seconds: int = Field(300, ge=1, le=86400)
    session_idle_seconds: int = Field(1800, ge=60, le=86400)
    session_max_seconds: int = Field(43200, ge=60, le=7 * 86400)
    secure_cookies: bool | None = None


class LimitsSettings(BaseModel):
    """Abuse limits on requests (`app/limits.py`). Bodies over `max_body_bytes` (webhooks:
    `max_webhook_body_bytes`) get 413 before they are parsed. Rate limits give 429 with
    `Retry-After`: `per_address` requests per minute per client address (webhooks, which come
    from the providers' shared addresses, and `exempt_addresses` are not counted), `per_token`
    per minute per bearer token, and `per_phone` reports per `phone_window_seconds` per phone
    number (API intake, SMS and the SOS line). Counted in each process: with N processes behind
    a balancer a client gets up to N times as much. 0 turns a rate limit off.

    The client address is the socket peer; only when that peer is one of `trusted_proxies`
    (addresses or networks) is it taken from `X-Forwarded-For`.

    A request not answered within `request_timeout_seconds` (a slow database: each statement
    may take up to SOS_DATABASE__STATEMENT_TIMEOUT_SECONDS) is cut off and answered 503 with
    `Retry-After` (`app/deadline.py`)."""

    max_body_bytes: int = Field(64 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_webhook_body_bytes: int = Field(256 * 1024, ge=1024, le=64 * 1024 * 1024)
    per_address: int = Field(600, ge=0)
    per_token: int = Field(120_000, ge=0)
    per_phone: int = Field(20, ge=0)
    phone_window_seconds: int = Field(3600, ge=1, le=7 * 86400)
    exempt_addresses: list[str] = ["127.0.0.1", "::1"]
    trusted_proxies: list[str] = []
    # How many clients each limit remembers at most (memory stays bounded under a flood).
    max_clients: int = Field(100_000, ge=100)
    request_timeout_seconds: float = Field(10, gt=0, le=600)

    @field_validator("exempt_addresses", "trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value


class PumpingSettings(BaseModel):
    """SMS and call pumping (`routing/pumping/`): customer texts and calls go only to numbers in
    `allowed_regions` (ISO codes; default the EU and EEA) of a type a customer's phone has (never
    premium-rate, shared-cost, UAN, personal, pager...). More than `per_number` sends to one
    number, `per_prefix` to one range (the number without its last 4 digits) or `per_all` in
    all within `window_seconds` opens a breaker: customer texts and calls in that scope stop for
    `cooldown_seconds` (or until an admin resets it) and the operators (SOS_OPERATORS__*) are
    alerted. Staff paging never stops. Counted in the database, shared by every process (set
    SOS_SECRET_KEY, which keys the numbers' hashes, the same in all of them).

    The limits count every customer text and call (receipts, "calls you now", callback
    confirmations, bridge calls). The defaults are generous; real customers seldom share a
    range, so `per_prefix` may go far lower (say 30) where the traffic allows."""

    allowed_regions: list[str] = sorted(EU_EEA)
    per_number: int = Field(20, ge=1)
    per_prefix: int = Field(300, ge=1)
    per_all: int = Field(2000, ge=1)
    window_seconds: int = Field(3600, ge=60, le=7 * 86400)
    cooldown_seconds: int = Field(3600, ge=60, le=7 * 86400)

    @field_validator("allowed_regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        regions = [r.strip().upper() for r in value]
        unknown = [r for r in regions if r not in SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown region codes: {', '.join(unknown)}")
        return regions


class AuditSettings(BaseModel):
    """The audit log's hash chain: how often the sealer appends new events to it, and how long it
    looks again for an event id it skipped (a transaction that committed late) before taking it
    for a rolled-back one."""

    seal_interval_seconds: float = Field(1, gt=0, le=60)
    settle_seconds: int = Field(300, ge=10, le=86400)


class PrivacySettings(BaseModel):
    """Keys for personal data at rest (`routing/crypto.py`, README "Security").

    `data_keys` is the key ring: `id:base64key,id2:base64key2`, each key 32 random bytes; the
    first encrypts, all decrypt (to rotate: put a new key first, run `sos-router keys rotate`,
    then drop the old one). `lookup_key` (base64, at least 32 bytes) keys the hash phone numbers
    are found by; changing it needs `sos-router keys rotate` right away. Without either, a
    development key file is used (`dev_key_file`, created when missing): by default beside a
    SQLite database; on PostgreSQL only when set explicitly, else the start is refused."""

    data_keys: SecretStr = SecretStr("")
    lookup_key: SecretStr = SecretStr("")
    dev_key_file: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.data_keys.get_secret_value() or self.lookup_key.get_secret_value())

    def key_ring(self) -> KeyRing:
        return KeyRing.parse(self.data_keys.get_secret_value(), self.lookup_key.get_secret_value())


class RetentionSettings(BaseModel):
    """How long customers' personal data is kept (`routing/retention.py`): `days` after a report
    was resolved, and `unresolved_days` after it arrived for one never resolved. Then the phone
    number, description, customer_ref, texts and call records go; the verdict stays."""

    days: int = Field(90, ge=1, le=3650)
    unresolved_days: int = Field(365, ge=1, le=3650)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOS_", env_nested_delimiter="__", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    sla_seconds: int = Field(600, ge=1, description="the promise: a human within this many seconds")
    # At deadline - prebreach_seconds without acceptance, the chain's all-hands targets are paged.
    prebreach_seconds: int = Field(180, ge=0)
    # The zone schedule times (hand-offs, shifts) are read in.
    time_zone: str = "Europe/Amsterdam"
    host: str = "127.0.0.1"
    port: int = 8000
    # Seed a demo rota and print demo tokens when the database is empty (zero-setup start).
    seed_demo: bool = True
    log_level: str = "INFO"
    # json: one JSON object per line; text: readable lines; auto: text on a terminal, else json.
    log_format: Literal["auto", "json", "text"] = "auto"
    # The public URL Twilio calls back; webhook signatures are checked against it.
    public_base_url: str = ""
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    vonage: VonageSettings = Field(default_factory=VonageSettings)
    failover: FailoverSettings = Field(default_factory=FailoverSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    paging: PagingSettings = Field(default_factory=PagingSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    operators: OperatorsSettings = Field(default_factory=OperatorsSettings)
    auditor: AuditorSettings = Field(default_factory=AuditorSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    pumping: PumpingSettings = Field(default_factory=PumpingSettings)

    audit: AuditSettings = Field(default_factory=AuditSettings)
    # Signs CSRF tokens and session cookies. Empty: a random key per process (sessions and forms
    # then do not survive a restart, and several processes do not share them).
    secret_key: SecretStr = SecretStr("")
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    @field_validator("log_format", mode="before")
    @classmethod
    def _known_log_format(cls, value: object) -> object:
        if isinstance(value, str) and value.lower() in ("auto", "json", "text"):
            return value.lower()
        raise ValueError(f"SOS_LOG_FORMAT {value!r} is not one of auto, json, text")

    @model_validator(mode="after")
    def _known_zone(self) -> Settings:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"SOS_TIME_ZONE {self.time_zone!r} is not a known time zone") from None
        return self

    @model_validator(mode="after")
    def _secure_cookies_on_https(self) -> Settings:
        if self.auth.secure_cookies is False and self.public_base_url.startswith("https://"):
            raise ValueError(
                "SOS_AUTH__SECURE_COOKIES=false is only for plain-http local development, but "
                "SOS_PUBLIC_BASE_URL is https"
            )
        return self

    @model_validator(mode="after")
    def _slack_complete(self) -> Settings:
        if self.slack.enabled and not self.slack.signing_secret.get_secret_value():
            raise ValueError(
                "the chat channel is on (SOS_SLACK__BOT_TOKEN is set) but "
                "SOS_SLACK__SIGNING_SECRET is missing: Accept buttons could not be verified"
            )
        return self

    @model_validator(mode="after")
    def _twilio_complete(self) -> Settings:
        if not self.twilio.enabled:
            return self
        missing = [
            name
            for name, value in (
                ("SOS_TWILIO__AUTH_TOKEN", self.twilio.auth_token.get_secret_value()),
                ("SOS_TWILIO__FROM_NUMBER", self.twilio.from_number),
                ("SOS_PUBLIC_BASE_URL", self.public_base_url),
            )
            if not value
        ]
        if missing:
            raise ValueError(
                "Twilio is enabled (SOS_TWILIO__ACCOUNT_SID is set) but these are missing: "
                + ", ".join(missing)
            )
        try:
            self.twilio.from_number = normalize_phone(self.twilio.from_number)
        except ValueError:
            raise ValueError("SOS_TWILIO__FROM_NUMBER is not a valid phone number") from None
        if not self.public_base_url.startswith(("https://", "http://")):
            raise ValueError("SOS_PUBLIC_BASE_URL must be an absolute http(s) URL")
        return self

    @model_validator(mode="after")
    def _vonage_complete(self) -> Settings:
        vonage = self.vonage
        if not vonage.enabled:
            return self
        key, key_file = vonage.private_key.get_secret_value(), vonage.private_key_file
        missing = [
            name
            for name, value in (
                ("SOS_VONAGE__PRIVATE_KEY or SOS_VONAGE__PRIVATE_KEY_FILE", key or key_file),
                ("SOS_VONAGE__SIGNATURE_SECRET", vonage.signature_secret.get_secret_value()),
                ("SOS_VONAGE__FROM_NUMBER", vonage.from_number),
                ("SOS_PUBLIC_BASE_URL", self.public_base_url),
            )
            if not value
        ]
        if missing:
            raise ValueError(
                "Vonage is enabled (SOS_VONAGE__APPLICATION_ID is set) but these are missing: "
                + ", ".join(missing)
            )
        if key and key_file:
            raise ValueError(
                "set SOS_VONAGE__PRIVATE_KEY or SOS_VONAGE__PRIVATE_KEY_FILE, not both"
            )
        if key_file:
            try:
                key = Path(key_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(
                    f"SOS_VONAGE__PRIVATE_KEY_FILE cannot be read: {exc.strerror}"
                ) from None
            vonage.private_key = SecretStr(key)
        try:
            load_private_key(key)
        except ValueError as exc:
            raise ValueError(f"the Vonage private key is unusable: {exc}") from None
        try:
            vonage.from_number = normalize_phone(vonage.from_number)
        except ValueError:
            raise ValueError("SOS_VONAGE__FROM_NUMBER is not a valid phone number") from None
        if not self.public_base_url.startswith(("https://", "http://")):
            raise ValueError("SOS_PUBLIC_BASE_URL must be an absolute http(s) URL")
        return self

    @model_validator(mode="after")
    def _keys_usable(self) -> Settings:
        privacy = self.privacy
        if privacy.configured:
            missing = [
                name
                for name, value in (
                    ("SOS_PRIVACY__DATA_KEYS", privacy.data_keys),
                    ("SOS_PRIVACY__LOOKUP_KEY", privacy.lookup_key),
                )
                if not value.get_secret_value()
            ]
            if missing:
                raise ValueError(f"{' and '.join(missing)} missing: set both keys, or neither")
            try:
                privacy.key_ring()
            except BadKey as exc:
                raise ValueError(f"SOS_PRIVACY__DATA_KEYS / LOOKUP_KEY: {exc}") from None
        elif not self.is_sqlite and not privacy.dev_key_file:
            raise ValueError(
                "no key for personal data: set SOS_PRIVACY__DATA_KEYS and "
                "SOS_PRIVACY__LOOKUP_KEY (or SOS_PRIVACY__DEV_KEY_FILE for a development key)"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
