"""A TCP proxy on loopback that the fault suite puts between its processes and PostgreSQL, to
make the network slow or silent (reliability.md §4: no toxiproxy server or `tc netem` here).

- `forward()`: bytes pass as they come (also `heal()`).
- `delay(seconds)`: every chunk the client sends waits `seconds` before it goes on, in order, so
  each round trip to the database takes that much longer (the answers are not held up again).
- `blackhole()`: connections stay open, new ones are accepted, but nothing passes either way:
  what is sent meanwhile is lost, as a partitioned network loses it, and a client that waits
  for an answer waits until it gives up. A side that closes its socket meanwhile is passed on
  only at the heal (as TCP would deliver the FIN once the network is back).

The proxy runs its own event loop in a daemon thread, so the test's loop and its blocking calls
never stall it; modes can be switched from any thread at any time. `stop()` closes everything
and waits a bounded time for the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from tests.faults.procs import free_port

FORWARD, DELAY, BLACKHOLE = "forward", "delay", "blackhole"


class Proxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.mode = FORWARD
        self.seconds = 0.0
        self.connections = 0  # accepted so far
        self._loop = asyncio.new_event_loop()
        self._healed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> Proxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(5)
        return self

    def url(self, database_url: str) -> str:
        """`database_url` (of the upstream server) through the proxy."""
        return database_url.replace(f":{self.upstream_port}/", f":{self.port}/")

    def forward(self) -> None:
        self._switch(FORWARD, 0.0)

    heal = forward

    def delay(self, seconds: float) -> None:
        self._switch(DELAY, seconds)

    def blackhole(self) -> None:
        self._switch(BLACKHOLE, 0.0)

    def _switch(self, mode: str, seconds: float) -> None:
        self.mode, self.seconds = mode, seconds
        if mode == BLACKHOLE:
            self._loop.call_soon_threadsafe(self._healed.clear)
        else:
            self._loop.call_soon_threadsafe(self._healed.set)

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()

    # --- in the proxy's own loop ------------------------------------------------------------

    async def _listen(self) -> None:
        self._healed.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        """One connection: a pipe each way; when either ends, both sockets close."""
        self.connections += 1
        me = asyncio.current_task()
        assert me is not None
        self._tasks.add(me)
        writers = [client_w]
        pipes: list[asyncio.Task[None]] = []
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            writers.append(server_w)
            pipes = [
                asyncio.ensure_future(self._pipe(client_r, server_w, upstream=True)),
                asyncio.ensure_future(self._pipe(server_r, client_w, upstream=False)),
            ]
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for task in pipes:
                task.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            for writer in writers:
                writer.close()
                with contextlib.suppress(OSError, TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(writer.wait_closed(), 1)
            self._tasks.discard(me)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        """Copy one direction until EOF; chunks wait in a queue until their time has come."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, chunk = await queue.get()
                await asyncio.sleep(due - time.monotonic())
                if self.mode != BLACKHOLE:  # lost if the network went silent meanwhile
                    writer.write(chunk)
                    await writer.drain()
                queue.task_done()

        sender = asyncio.ensure_future(send())
        try:
            while chunk := await reader.read(65536):
                if self.mode == BLACKHOLE:
                    continue
                wait = self.seconds if upstream and self.mode == DELAY else 0.0
                queue.put_nowait((time.monotonic() + wait, chunk))
            await self._healed.wait()  # a close passes only once the network is back
            flushed = asyncio.ensure_future(queue.join())
            await asyncio.wait([flushed, sender], return_when=asyncio.FIRST_COMPLETED)
            flushed.cancel()
        except OSError:
            pass
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
