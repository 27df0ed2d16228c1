"""`nucleus start`: the nucleus as a long-running service — its lifetime and its control socket.

On start it ends whatever a killed predecessor left behind, marks deployments that a crash interrupted as
FAILED, and restores the last deployed set (components stopped with `nucleus stop` stay stopped). It then
serves requests on `<root>/nucleus.sock` — each line decoded and checked here (`control.py`), answered by
`control_api.py` — and runs what was still queued, until SIGTERM, SIGINT or a `shutdown` request; then it
stops every component cleanly and exits 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from nucleus.config import NucleusConfig
from nucleus.control import BadRequest, decode_request, encode, short_socket_path
from nucleus.control_api import ControlAPI, done, failure
from nucleus.errors import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE
from nucleus.paths import RootLayout
from nucleus.runtime import Runtime

MAX_REQUEST = 16 * 1024**2  # one request line (a deploy of thousands of recipe paths fits)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class SocketChannel:
    """One client connection as a `control_api.Channel`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    def send(self, message: dict[str, Any]) -> None:
        if not self._writer.is_closing():
            self._writer.write(encode(message))

    def pending(self) -> int:
        """Bytes written but not yet taken by the client."""
        return self._writer.transport.get_write_buffer_size()

    async def wait_closed(self) -> None:
        """Until the client goes away (Ctrl-C on `nucleus logs -f`)."""
        await self._reader.read()


class Daemon:
    """The runtime plus the control socket, for one root."""

    def __init__(self, layout: RootLayout, config: NucleusConfig, ready: Callable[[], None] | None = None) -> None:
        self.layout, self.config = layout, config
        self._ready = ready  # told once the socket serves (the lock's note becomes `daemon`)
        self.runtime = Runtime(layout, config, mirror=_stderr, daemon=True)
        self._stop: asyncio.Future[str] | None = None
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[Any]] = set()
        self.api = ControlAPI(layout, config, self.runtime.kernel, self.runtime.manager, self._request_stop)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = loop.create_future()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._request_stop, signal.Signals(signum).name)
        log = self.runtime.log
        kernel = self.runtime.kernel
        try:
            log.event("nucleus-start", root=self.layout.path, pid=os.getpid())
            leftovers = await self.runtime.open()
            if leftovers:
                log.event("leftovers-ended", level="WARN", processes=leftovers)
            reason = "it failed"
            try:
                queued = await self.runtime.manager.recover()
                await self._serve()
                if self._ready is not None:
                    self._ready()
                log.event("nucleus-ready", socket=self.layout.socket_path)
                if queued:
                    kernel.spawn_task(self.runtime.manager.run_queued(queued), "queued-deployments")
                reason = await self._stop
            finally:  # whatever ends the service, nothing it started keeps running
                log.event("nucleus-stopping", reason=reason)
                await self._close_server()
                await kernel.stop_all(f"the nucleus is stopping ({reason})")
                log.event("nucleus-stopped")
            return EXIT_OK
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            self.layout.socket_path.unlink(missing_ok=True)
            self.runtime.close()

    def _request_stop(self, reason: str) -> None:
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(reason)

    # -- the socket --------------------------------------------------------------------------------

    async def _serve(self) -> None:
        self.layout.socket_path.unlink(missing_ok=True)  # a stale one: we hold the root's lock
        previous = os.umask(0o177)
        try:
            with short_socket_path(self.layout.path) as path:
                self._server = await asyncio.start_unix_server(self._client, path=path, limit=MAX_REQUEST)
        finally:
            os.umask(previous)
        os.chmod(self.layout.socket_path, 0o600)

    async def _close_server(self) -> None:
        """Stop accepting, end the connections still open (a `logs -f`, a queued deploy), then wait."""
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.wait(list(self._clients), timeout=5)
        if self._server is not None:
            await asyncio.wait_for(self._server.wait_closed(), timeout=5)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        channel = SocketChannel(reader, writer)
        try:
            raw = await reader.readline()
            try:
                request = decode_request(raw)
            except BadRequest as exc:
                channel.send(failure(exc))
                return
            try:
                channel.send(await self.api.handle(request, channel))
            except Exception as exc:  # noqa: BLE001 - a bug: say so in one line, keep serving
                self.runtime.log.event("request-error", level="ERROR", command=request.get("command"),
                                       error=f"{type(exc).__name__}: {exc}")
                channel.send(done(EXIT_INTERNAL, lines=[f"internal error in the nucleus: {type(exc).__name__}: "
                                                        f"{exc} — this is a bug; see logs/nucleus.log and report it"]))
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        except ValueError:  # a request line over the limit
            channel.send(done(EXIT_USAGE, lines=[f"the request is longer than {MAX_REQUEST // 1024**2} MiB"]))
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
