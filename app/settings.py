"""All configuration, from `SOS_*` environment variables (nested sections use `__`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./sos-router.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOS_", env_nested_delimiter="__", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    sla_seconds: int = Field(600, ge=1, description="the promise: a human within this many seconds")
    host: str = "127.0.0.1"
    port: int = 8000
    # Seed a demo rota and print demo tokens when the database is empty (zero-setup start).
    seed_demo: bool = True
    log_level: str = "INFO"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
