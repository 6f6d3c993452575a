"""Builds the running service from settings: database, clock, providers, engine."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import create_engine, create_sessionmaker
from app.settings import Settings
from providers.base import Channel, MessageSender
from providers.registry import ProviderRegistry, UnsupportedChannel
from providers.simulated import SimulatedPhones
from providers.slack import client as slack_client
from providers.slack.sender import SlackChat
from providers.twilio.client import TwilioClient, new_http_client
from providers.twilio.config import TwilioConfig
from providers.twilio.senders import TwilioSms, TwilioVoice
from routing import guard
from routing.clock import Clock, SystemClock
from routing.engine.auditor import Auditor, Contact
from routing.engine.bridger import Bridger
from routing.engine.dispatcher import Dispatcher
from routing.engine.engine import Engine
from routing.engine.escalator import Escalator
from routing.engine.hangup import Hangup
from routing.engine.messenger import Messenger
from routing.engine.reconciler import Reconciler
from routing.page.bundle import PagingLimits


@dataclass
class Container:
    settings: Settings
    db_engine: AsyncEngine
    db: async_sessionmaker[AsyncSession]
    clock: Clock
    registry: ProviderRegistry
    engine: Engine
    senders: Sequence[MessageSender] = field(default_factory=list)
    twilio: TwilioConfig | None = None
    # Signs CSRF tokens and session cookies (from SOS_SECRET_KEY, else random per process).
    secret_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @property
    def simulator(self) -> SimulatedPhones | None:
        """The simulated phones, when they are the ones that ring for voice pages."""
        try:
            voice = self.registry.sender_for(Channel.VOICE)
        except UnsupportedChannel:
            return None
        return voice if isinstance(voice, SimulatedPhones) else None

    async def close(self) -> None:
        self.engine.stop()
        await self.db_engine.dispose()


def public_url(settings: Settings) -> str:
    """Where people reach this service: the configured public URL, else the local address."""
    return settings.public_base_url or f"http://{settings.host}:{settings.port}"


def twilio_config(settings: Settings) -> TwilioConfig:
    t = settings.twilio
    return TwilioConfig(
        account_sid=t.account_sid,
        auth_token=t.auth_token.get_secret_value(),
        from_number=t.from_number,
        public_base_url=settings.public_base_url,
        api_base=t.api_base,
        ring_seconds=t.ring_seconds,
        sms_validity_seconds=t.sms_validity_seconds,
    )


def slack_config(settings: Settings) -> slack_client.SlackConfig:
    s = settings.slack
    return slack_client.SlackConfig(bot_token=s.bot_token.get_secret_value(), api_base=s.api_base)


def default_senders(
    settings: Settings,
    http: httpx.AsyncClient | None = None,
    *,
    slack_http: httpx.AsyncClient | None = None,
) -> list[MessageSender]:
    """Slack for chat and Twilio for voice and SMS when configured; the simulated phones for
    everything else (the registry gives each channel to the first sender that has it).
    `http` replaces the Twilio HTTP client and `slack_http` the Slack one (tests point them at
    fakes)."""
    senders: list[MessageSender] = []
    if settings.slack.enabled:
        config = slack_config(settings)
        http_client = slack_http or slack_client.new_http_client(config)
        senders.append(SlackChat(slack_client.SlackClient(config, http_client), guard=guard.scrub))
    if settings.twilio.enabled:
        twilio = twilio_config(settings)
        client = TwilioClient(twilio, http or new_http_client(twilio))
        senders += [TwilioVoice(client, guard=guard.scrub), TwilioSms(client, guard=guard.scrub)]
    return [*senders, SimulatedPhones()]


def auditor(settings: Settings) -> Auditor:
    """The escalation auditor, alerting the operators' phone (SMS) and/or chat id."""
    operators = settings.operators
    contacts = [
        Contact(channel, to)
        for channel, to in ((Channel.SMS, operators.phone), (Channel.CHAT, operators.chat_id))
        if to
    ]
    return Auditor(
        interval_seconds=settings.auditor.interval_seconds,
        slack_seconds=settings.auditor.slack_seconds,
        prebreach_seconds=settings.prebreach_seconds,
        operators=contacts,
        language=operators.language,
    )


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    senders: Sequence[MessageSender] | None = None,
    raise_errors: bool = False,
    http: httpx.AsyncClient | None = None,
    slack_http: httpx.AsyncClient | None = None,
) -> Container:
    db_engine = create_engine(settings.database_url)
    db = create_sessionmaker(db_engine)
    clock = clock or SystemClock()
    senders = (
        list(senders)
        if senders is not None
        else default_senders(settings, http, slack_http=slack_http)
    )
    registry = ProviderRegistry(senders)
    engine = Engine(
        db,
        clock,
        [
            Escalator(),
            Dispatcher(
                registry,
                clock,
                link_base=public_url(settings),
                limits=PagingLimits(**settings.paging.model_dump()),
            ),
            Messenger(registry, clock),
            Reconciler(registry),
            Hangup(registry),
            Bridger(registry),
            # Last: it judges what the modules above left undone in the same tick.
            auditor(settings),
        ],
        raise_errors=raise_errors,
    )
    twilio = twilio_config(settings) if settings.twilio.enabled else None
    configured = settings.secret_key.get_secret_value().encode()
    secret_key = configured or secrets.token_bytes(32)
    return Container(settings, db_engine, db, clock, registry, engine, senders, twilio, secret_key)
