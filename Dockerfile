# syntax=docker/dockerfile:1
#
# sos-router in a container: the API and the escalation engine, SQLite on the /data volume.
#   docker build -t sos-router .
#   docker run --rm -p 8000:8000 -v sos-router-data:/data sos-router
# PostgreSQL instead: -e SOS_DATABASE_URL=postgresql+asyncpg://user:pass@host:5432/sos_router
# The test suite in a container (SQLite):
#   docker build --target test -t sos-router-test . && docker run --rm sos-router-test

FROM python:3.11-slim AS python
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Optional stage, only built with --target test.
FROM python AS test
WORKDIR /src
COPY . .
RUN pip install -e ".[dev]"
CMD ["scripts/test"]

# The default target (last stage).
FROM python AS runtime
WORKDIR /src
COPY . .
RUN pip install . \
    && cd / && rm -rf /src
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin sos \
    && mkdir -p /data \
    && chown sos:sos /data
ENV SOS_HOST=0.0.0.0 \
    SOS_PORT=8000 \
    SOS_DATABASE_URL=sqlite+aiosqlite:////data/sos-router.db
WORKDIR /data
VOLUME ["/data"]
USER sos
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('SOS_PORT', '8000')}/healthz\", timeout=2)"]
CMD ["sos-router", "serve"]
