"""An open-loop HTTP/1.1 load generator on raw asyncio streams, for loopback benchmarks.

Requests fire on a fixed schedule (request i is due at start + i / rate), whether or not earlier
ones have answered, and latency counts from when a request was *due*: a slow server cannot hide
its queue behind a waiting client (no coordinated omission). Keep-alive connections come from a
pool; a request due while every connection is busy waits for one, and that wait is latency too.

httpx costs ~1 ms of CPU per request, which on a 2-core machine would measure the client; this
client writes and parses the few bytes HTTP/1.1 needs itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    offered_rate: float
    requests: int
    elapsed: float
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    # Requests answered 503 (overloaded: retry later), by index.
    retry_later: list[int] = field(default_factory=list)

    @property
    def achieved_rate(self) -> float:
        ok = sum(n for status, n in self.statuses.items() if 200 <= status < 300)
        return ok / self.elapsed if self.elapsed else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "offered_rate": self.offered_rate,
            "requests": self.requests,
            "achieved_rate": round(self.achieved_rate, 1),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "p50_ms": round(percentile(self.latencies, 0.50) * 1000, 2),
            "p99_ms": round(percentile(self.latencies, 0.99) * 1000, 2),
            "max_ms": round(max(self.latencies, default=float("nan")) * 1000, 2),
        }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> int:
        self.writer.write(request)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        close = False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            raise ConnectionResetError("server asked to close")
        return status


class Client:
    """A pool of keep-alive connections to one host:port."""

    def __init__(self, host: str, port: int, *, connections: int = 64) -> None:
        self.host = host
        self.port = port
        self.size = connections
        self._idle: asyncio.Queue[_Connection] = asyncio.Queue()
        self._opened = 0

    async def _get(self) -> _Connection:
        if self._idle.empty() and self._opened < self.size:
            self._opened += 1
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                self._opened -= 1
                raise
            return _Connection(reader, writer)
        return await self._idle.get()

    async def send(self, request: bytes) -> int:
        """The response's status, or 0 when the connection failed."""
        conn = await self._get()
        try:
            status = await conn.exchange(request)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            conn.writer.close()
            self._opened -= 1
            return 0
        self._idle.put_nowait(conn)
        return status

    async def close(self) -> None:
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            conn.writer.close()


def request_bytes(
    method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None
) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def open_loop(
    client: Client, make: Callable[[int], bytes], *, rate: float, seconds: float
) -> Result:
    """Offer `rate` requests per second for `seconds`; `make(i)` builds request i."""
    total = max(1, int(rate * seconds))
    result = Result(offered_rate=rate, requests=total, elapsed=0.0)
    start = time.perf_counter() + 0.05

    async def one(i: int, due: float) -> None:
        status = await client.send(make(i))
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if status == 503:
            result.retry_later.append(i)
        result.latencies.append(time.perf_counter() - due)

    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - start
    return result


async def closed_loop(
    client: Client, make: Callable[[int], bytes], *, seconds: float, offset: int = 0
) -> Result:
    """As fast as the server goes: every connection sends its next request as soon as the last
    one answered, for `seconds`. Gives the sustained rate (latency here is service time)."""
    result = Result(offered_rate=float("inf"), requests=0, elapsed=0.0)
    counter = iter(range(offset, offset + 10**9))
    start = time.perf_counter()
    stop = start + seconds

    async def worker() -> None:
        while time.perf_counter() < stop:
            sent = time.perf_counter()
            status = await client.send(make(next(counter)))
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.latencies.append(time.perf_counter() - sent)
            result.requests += 1

    await asyncio.gather(*(worker() for _ in range(client.size)))
    result.elapsed = time.perf_counter() - start
    return result
