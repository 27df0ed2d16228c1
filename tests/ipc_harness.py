"""A test-only IPC server: asyncio Unix socket + nucleus.ipc's pure core, to prove the core against the SDK.

Not the nucleus's IPC edge (that lives in nucleus/ipc/server.py when it comes); just enough to accept
connections, check the token in constant time, hand each request to a test's handler and record
everything: the events the core produced and, decoded on the side, every message the client sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nucleus.ipc import eventstream, rpc

CLIENT_SCRIPT = Path(__file__).with_name("ipc_sdk_client.py")


@dataclass
class Session:
    """One client connection as the harness saw it."""

    conn: rpc.Connection
    writer: asyncio.StreamWriter
    events: list[rpc.Event] = field(default_factory=list)
    wire: list[eventstream.Message] = field(default_factory=list)  # what the client sent, in order
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def write_raw(self, data: bytes) -> None:
        """Bypass the core (to send what it never would, e.g. a PING)."""
        self.writer.write(data)


Handler = Callable[[Session, rpc.OperationRequest], None]


class Harness:
    def __init__(self, token: str, handler: Handler) -> None:
        self.token = token
        self.handler = handler
        self.sessions: list[Session] = []
        self._dir = tempfile.mkdtemp(prefix="ipc", dir="/tmp")  # short: AF_UNIX paths stop at 108 bytes
        self.socket_path = os.path.join(self._dir, "ipc.socket")
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> Harness:
        self._server = await asyncio.start_unix_server(self._serve, path=self.socket_path)
        os.chmod(self.socket_path, 0o600)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for session in self.sessions:
            session.writer.close()
        await self._server.wait_closed()
        os.unlink(self.socket_path)
        os.rmdir(self._dir)

    async def run_client(self, scenario: str, token: str | None = None) -> tuple[int, str, str]:
        """Run tests/ipc_sdk_client.py SCENARIO as a component would: the socket and SVCUID in its env."""
        env = dict(os.environ)
        env["AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"] = self.socket_path
        env["SVCUID"] = self.token if token is None else token
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(CLIENT_SCRIPT), scenario,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=60)  # a sanity bound, not a timing
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def wait_sessions_done(self) -> None:
        """Every connection so far has ended (the client closed it, or we did)."""
        await asyncio.wait_for(asyncio.gather(*(s.done.wait() for s in self.sessions)), timeout=30)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(rpc.Connection(), writer)
        self.sessions.append(session)
        side_decoder = eventstream.Decoder()
        try:
            while session.conn.state is not rpc.State.CLOSED:
                data = await reader.read(65536)
                if data:
                    session.wire.extend(side_decoder.feed(data))
                for event in session.conn.receive_data(data):
                    session.events.append(event)
                    self._handle(session, event)
                writer.write(session.conn.data_to_send())
                await writer.drain()
                if not data:
                    break
            if data:  # we ended it: let the client hang up first (see rpc.Connection.refuse)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.read(), timeout=10)
        finally:
            writer.close()
            session.done.set()

    def _handle(self, session: Session, event: rpc.Event) -> None:
        if isinstance(event, rpc.ConnectRequest):
            if hmac.compare_digest(event.auth_token.encode(), self.token.encode()):
                session.conn.accept()
            else:
                session.conn.refuse()
        elif isinstance(event, rpc.OperationRequest):
            self.handler(session, event)
