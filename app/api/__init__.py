from fastapi import APIRouter

from app.api import (
    blocks,
    chains,
    health,
    heartbeat,
    readiness,
    reports,
    schedules,
    simulator,
    sla,
    staff,
)
from app.api.webhooks import twilio as twilio_webhooks
from app.api.webhooks import vonage as vonage_webhooks

api_router = APIRouter()
for module in (
    reports,
    staff,
    chains,
    schedules,
    readiness,
    sla,
    simulator,
    health,
    heartbeat,
    blocks,
    twilio_webhooks,
    vonage_webhooks,
):
    api_router.include_router(module.router)
