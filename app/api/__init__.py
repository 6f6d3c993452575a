from fastapi import APIRouter

from app.api import chains, health, reports, simulator, sla, staff

api_router = APIRouter()
for module in (reports, staff, chains, sla, simulator, health):
    api_router.include_router(module.router)
