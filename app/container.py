"""Builds the running service from settings: database, clock, providers, engine."""

from __future__ import annotations

import logging
import os
import secrets
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import keys
from app.db import create_engine, create_sessionmaker
from app.metrics import Metrics
from app.settings import Settings
from app.wake import PostgresWake
from providers.base import Channel, MessageSender
from providers.failover import BreakerPolicy, FailoverSender
from providers.registry import ProviderRegistry, UnsupportedChannel
from providers.simulated import SimulatedPhones
from providers.slack import client as slack_client
from providers.slack.sender import SlackChat
from providers.twilio.client import TwilioClient, new_http_client
from providers.twilio.config import TwilioConfig
from providers.twilio.senders import TwilioSms, TwilioVoice
from providers.vonage import client as vonage_client
from providers.vonage.config import VonageConfig
from providers.vonage.senders import VonageSms, VonageVoice
from routing import guard
from routing.clock import Clock, SystemClock
from routing.engine.auditor import Auditor
from routing.engine.bridger import Bridger
from routing.engine.dispatcher import Dispatcher
from routing.engine.engine import Engine
from routing.engine.escalator import Escalator
from routing.engine.hangup import Hangup
from routing.engine.lost_pages import LostPages
from routing.engine.messenger import Messenger
from routing.engine.reconciler import Reconciler
from routing.engine.sealer import Sealer
from routing.notify.outbox import Contact
from routing.page.bundle import PagingLimits
from routing.pumping.rules import Policy
from routing.retention import Retention

log = logging.getLogger(__name__)

# Where the engine calls its crash point (routing/engine/dispatcher.py and escalator.py).
CRASH_POINTS = frozenset({"after_claim", "after_send", "after_timer_claim"})


@dataclass
class Container:
    settings: Settings
    db_engine: AsyncEngine
    db: async_sessionmaker[AsyncSession]
    clock: Clock
    registry: ProviderRegistry
    engine: Engine
    metrics: Metrics
    senders: Sequence[MessageSender] = field(default_factory=list)
    twilio: TwilioConfig | None = None
    vonage: VonageConfig | None = None
    # Signs CSRF tokens and session cookies (from SOS_SECRET_KEY, else random per process).
    secret_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    # On PostgreSQL: wake-up hints between this process's engine and the others'.
    wake: PostgresWake | None = None
    # The SMS and call pumping guard's configuration (SOS_PUMPING__*).
    pumping: Policy = field(default_factory=Policy)

    async def start(self, *, run_engine: bool) -> None:
        """Before serving: on PostgreSQL, announce new work to the other processes' engines (an
        API process without an engine must, or workers only find it at their next poll), and
        when this process runs an engine, listen for their hints too."""
        if self.wake is not None:
            await self.wake.start(listen=run_engine)

    @property
    def simulator(self) -> SimulatedPhones | None:
        """The simulated phones, when they are the ones that ring for voice pages."""
        try:
            voice = self.registry.sender_for(Channel.VOICE)
        except UnsupportedChannel:
            return None
        return voice if isinstance(voice, SimulatedPhones) else None

    def failover(self, channel: Channel) -> FailoverSender | None:
        """The failover sender of `channel`, when two providers share it (Twilio and Vonage)."""
        try:
            sender = self.registry.sender_for(channel)
        except UnsupportedChannel:
            return None
        return sender if isinstance(sender, FailoverSender) else None

    def receipt(self, channel: Channel, provider: str, page_id: int) -> None:
        """A provider's status webhook about a page arrived: its breaker counts it as a receipt."""
        failover = self.failover(channel)
        if failover is not None:
            failover.receipt(provider, page_id)

    async def close(self) -> None:
        self.engine.stop()
        if self.wake is not None:
            await self.wake.stop()
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


def vonage_config(settings: Settings) -> VonageConfig:
    v = settings.vonage
    return VonageConfig(
        application_id=v.application_id,
        private_key=v.private_key.get_secret_value(),
        signature_secret=v.signature_secret.get_secret_value(),
        from_number=v.from_number,
        public_base_url=settings.public_base_url,
        api_key=v.api_key,
        api_base=v.api_base,
        ring_seconds=v.ring_seconds,
        sms_ttl_seconds=v.sms_ttl_seconds,
    )


def slack_config(settings: Settings) -> slack_client.SlackConfig:
    s = settings.slack
    return slack_client.SlackConfig(bot_token=s.bot_token.get_secret_value(), api_base=s.api_base)


def default_senders(
    settings: Settings,
    http: httpx.AsyncClient | None = None,
    *,
    slack_http: httpx.AsyncClient | None = None,
    vonage_http: httpx.AsyncClient | None = None,
    clock: Clock | None = None,
) -> list[MessageSender]:
    """Slack for chat; Twilio and Vonage for voice and SMS when configured, and when both are,
    Twilio first with automatic failover to Vonage (`providers/failover.py`, timed by `clock`);
    the simulated phones for everything else (the registry gives each channel to the first
    sender that has it). `http`, `vonage_http` and `slack_http` replace the Twilio, Vonage and
    Slack HTTP clients (tests point them at fakes)."""
    senders: list[MessageSender] = []
    if settings.slack.enabled:
        config = slack_config(settings)
        http_client = slack_http or slack_client.new_http_client(config)
        senders.append(SlackChat(slack_client.SlackClient(config, http_client), guard=guard.scrub))
    phones: list[list[MessageSender]] = []  # [voice, sms] per provider, in order of preference
    if settings.twilio.enabled:
        twilio = twilio_config(settings)
        client = TwilioClient(twilio, http or new_http_client(twilio))
        phones.append(
            [TwilioVoice(client, guard=guard.scrub), TwilioSms(client, guard=guard.scrub)]
        )
    if settings.vonage.enabled:
        vonage = vonage_config(settings)
        v_client = vonage_client.VonageClient(
            vonage, vonage_http or vonage_client.new_http_client(vonage)
        )
        phones.append(
            [VonageVoice(v_client, guard=guard.scrub), VonageSms(v_client, guard=guard.scrub)]
        )
    if len(phones) == 2:
        policy = BreakerPolicy(**settings.failover.model_dump())
        senders += [
            FailoverSender(primary, secondary, clock=clock or SystemClock(), policy=policy)
            for primary, secondary in zip(*phones, strict=True)
        ]
    elif phones:
        senders += phones[0]
    return [*senders, SimulatedPhones()]


def crash_point_from(environ: Mapping[str, str]) -> Callable[[str], None]:
    """Fault injection for the crash tests (tests/faults/): with `SOS_CRASH_AT=<point>` the
    process SIGKILLs itself the `SOS_CRASH_AFTER`-th time (default: the first) the engine passes
    that point, so a test can stop it at an exact spot. Without `SOS_CRASH_AT`, as in production,
    the crash point does nothing."""
    point = environ.get("SOS_CRASH_AT", "")
    if not point:
        return lambda _point: None
    if point not in CRASH_POINTS:
        raise ValueError(f"SOS_CRASH_AT={point!r} is not one of {', '.join(sorted(CRASH_POINTS))}")
    after = int(environ.get("SOS_CRASH_AFTER", "1"))
    hits = 0

    def crash(at: str) -> None:
        nonlocal hits
        if at != point:
            return
        hits += 1
        if hits >= after:
            log.critical("crash point %s reached (hit %d): killing this process", at, hits)
            os.kill(os.getpid(), signal.SIGKILL)

    return crash


def operators(settings: Settings) -> tuple[Contact, ...]:
    """The operators' phone (SMS) and/or chat id, for the auditor's and the breakers' alerts."""
    o = settings.operators
    return tuple(
        Contact(channel, to)
        for channel, to in ((Channel.SMS, o.phone), (Channel.CHAT, o.chat_id))
        if to
    )


def auditor(settings: Settings) -> Auditor:
    """The escalation auditor, alerting the operators."""
    return Auditor(
        interval_seconds=settings.auditor.interval_seconds,
        slack_seconds=settings.auditor.slack_seconds,
        prebreach_seconds=settings.prebreach_seconds,
        operators=operators(settings),
        language=settings.operators.language,
    )


def pumping_policy(settings: Settings, secret_key: bytes) -> Policy:
    p = settings.pumping
    return Policy(
        secret=secret_key,
        regions=frozenset(p.allowed_regions),
        per_number=p.per_number,
        per_prefix=p.per_prefix,
        per_all=p.per_all,
        window=timedelta(seconds=p.window_seconds),
        cooldown=timedelta(seconds=p.cooldown_seconds),
        operators=operators(settings),
        language=settings.operators.language,
    )


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    senders: Sequence[MessageSender] | None = None,
    raise_errors: bool = False,
    http: httpx.AsyncClient | None = None,
    slack_http: httpx.AsyncClient | None = None,
    vonage_http: httpx.AsyncClient | None = None,
) -> Container:
    keys.install(settings)  # before any model reads or writes personal data
    db_engine = create_engine(
        settings.database_url, statement_timeout=settings.database.statement_timeout_seconds
    )
    db = create_sessionmaker(db_engine)
    clock = clock or SystemClock()
    senders = (
        list(senders)
        if senders is not None
        else default_senders(
            settings, http, slack_http=slack_http, vonage_http=vonage_http, clock=clock
        )
    )
    registry = ProviderRegistry(senders)
    metrics = Metrics(db, clock)
    timings = settings.engine
    crash_point = crash_point_from(os.environ)
    configured = settings.secret_key.get_secret_value().encode()
    secret_key = configured or secrets.token_bytes(32)
    pumping = pumping_policy(settings, secret_key)
    engine = Engine(
        db,
        clock,
        [
            Escalator(lease_seconds=timings.timer_lease_seconds, crash_point=crash_point),
            Dispatcher(
                registry,
                clock,
                lease_seconds=timings.page_lease_seconds,
                send_timeout=timings.send_timeout_seconds,
                link_base=public_url(settings),
                limits=PagingLimits(**settings.paging.model_dump()),
                crash_point=crash_point,
            ),
            # Before the dispatcher in a tick: a page that was never sent goes out in the same one.
            LostPages(),
            Messenger(registry, clock, pumping=pumping),
            Reconciler(
                registry,
                retry_seconds=timings.reconcile_retry_seconds,
                give_up_seconds=timings.reconcile_give_up_seconds,
            ),
            Hangup(registry),
            Bridger(registry, pumping=pumping),
            Retention(
                days=settings.retention.days, unresolved_days=settings.retention.unresolved_days
            ),
            # It judges what the modules above left undone in the same tick.
            auditor(settings),
            # Last: it chains the audit events the modules above recorded in the same tick.
            Sealer(
                interval_seconds=settings.audit.seal_interval_seconds,
                settle_seconds=settings.audit.settle_seconds,
            ),
        ],
        raise_errors=raise_errors,
        observer=metrics,
    )
    twilio = twilio_config(settings) if settings.twilio.enabled else None
    vonage = vonage_config(settings) if settings.vonage.enabled else None
    wake = None if settings.is_sqlite else PostgresWake(settings.database_url, engine)
    return Container(
        settings=settings,
        db_engine=db_engine,
        db=db,
        clock=clock,
        registry=registry,
        engine=engine,
        metrics=metrics,
        senders=senders,
        twilio=twilio,
        vonage=vonage,
        secret_key=secret_key,
        wake=wake,
        pumping=pumping,
    )
