"""All configuration, from `SOS_*` environment variables (nested sections use `__`)."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from routing.phone import can_receive_sms, normalize_phone

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
    # The public URL Twilio calls back; webhook signatures are checked against it.
    public_base_url: str = ""
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    paging: PagingSettings = Field(default_factory=PagingSettings)
    operators: OperatorsSettings = Field(default_factory=OperatorsSettings)
    auditor: AuditorSettings = Field(default_factory=AuditorSettings)
    # Signs CSRF tokens and session cookies. Empty: a random key per process (sessions and forms
    # then do not survive a restart, and several processes do not share them).
    secret_key: SecretStr = SecretStr("")

    @model_validator(mode="after")
    def _known_zone(self) -> Settings:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"SOS_TIME_ZONE {self.time_zone!r} is not a known time zone") from None
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

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
