"""The local credentials endpoint that AWS SDKs in components call (`AWS_CONTAINER_CREDENTIALS_FULL_URI`).

A small HTTP/1.1 server written directly on `asyncio.Protocol`, on the nucleus's own loop: it answers
one fixed GET, so a framework would add weight without adding safety. What it does:
- binds 127.0.0.1 only (the IPv4 literal: `localhost` resolving to `::1` broke Node.js clients);
- keep-alive (HTTP/1.1 default, `Connection: close` honoured; HTTP/1.0 only with `keep-alive`);
- pipelined requests are answered in order, one at a time per connection; connections run concurrently;
- a request body announced by `Content-Length` is read and dropped (up to 64 KiB, else 413 and close);
  `Transfer-Encoding` is refused (400 and close) rather than parsed;
- the header section is capped (8 KiB: 431 and close), idle connections close after 60 s;
- checks, in order: method (405), path (400), `Authorization` (403), then the credentials: a cached
  provider error answers with its status, success is 200 with exactly
  `{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}`, `Expiration` ending in `Z`.
  The path must be exactly `/2016-11-01/credentialprovider/`; a query string is ignored (it is not
  part of the path, and SDKs send the URI they were given as is).
- logs carry the status, the path and whether a token was given; never the token or a credential.

Answers that need no waiting (fresh credentials, errors) are written from `data_received` directly;
only a request that must wait for the upstream fetch gets a task.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timezone
from typing import Any, Protocol

from nucleus.config import TES
from nucleus.errors import NucleusError
from nucleus.tes.provider import Credentials, ProviderError

HOST = "127.0.0.1"
PATH = "/2016-11-01/credentialprovider/"
MAX_HEADER_BYTES = 8192
MAX_HEADER_LINES = 100
MAX_BODY_BYTES = 65536
IDLE_TIMEOUT = 60.0
MAX_PIPELINED = 32  # requests queued on one connection before reading pauses

_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            413: "Content Too Large", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout", 505: "HTTP Version Not Supported"}


class CredentialSource(Protocol):
    """What the server needs from the cache (`CredentialCache` is one)."""

    def get_nowait(self) -> Credentials | None: ...

    async def get(self) -> Credentials: ...


class TokenSet:
    """The component tokens the endpoint accepts; membership is checked in constant time.

    `token in tokens` compares the candidate with every known token using `hmac.compare_digest` and
    never stops early, so the time taken says nothing about which token, or how much of one, matched.
    """

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        self._tokens: list[bytes] = []
        for token in tokens:
            self.add(token)

    @staticmethod
    def _bytes(token: str) -> bytes:
        return token.encode("utf-8", "surrogateescape")

    def add(self, token: str) -> None:
        if not token:
            raise ValueError("an empty token would let any request in")
        value = self._bytes(token)
        if value not in self._tokens:
            self._tokens.append(value)

    def remove(self, token: str) -> None:
        """Forget a token (a component removed); unknown tokens are ignored."""
        value = self._bytes(token)
        self._tokens = [known for known in self._tokens if known != value]

    def __contains__(self, token: object) -> bool:
        if not isinstance(token, str):
            return False
        candidate = self._bytes(token)
        found = False
        for known in self._tokens:
            found |= hmac.compare_digest(known, candidate)
        return found

    def __len__(self) -> int:
        return len(self._tokens)


@dataclass(frozen=True)
class ServerStatistics:
    requests: int
    open_connections: int


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Request:
    method: str
    target: str
    keep_alive: bool
    authorization: str | None
    content_length: int
    http10: bool = False


def parse_head(head: bytes) -> _Request:
    """One request's header section (without the blank line) to a `_Request`; `_BadRequest` if malformed."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise _BadRequest(400, "malformed request line")
    method, target, version = parts
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise _BadRequest(505 if version.startswith(b"HTTP/") else 400, "only HTTP/1.0 and HTTP/1.1 are served")
    if len(lines) > MAX_HEADER_LINES:
        raise _BadRequest(431, "too many header lines")
    authorization: list[bytes] = []
    lengths: set[bytes] = set()
    connection = b""
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            raise _BadRequest(400, "malformed header line")
        key = name.lower()
        value = value.strip(b" \t")
        if key == b"authorization":
            authorization.append(value)
        elif key == b"content-length":
            lengths.add(value)
        elif key == b"transfer-encoding":
            raise _BadRequest(400, "Transfer-Encoding is not supported")
        elif key == b"connection":
            connection += b"," + value.lower()
    if len(lengths) > 1:
        raise _BadRequest(400, "conflicting Content-Length headers")
    length = 0
    if lengths:
        text = lengths.pop()
        if not text.isdigit():
            raise _BadRequest(400, "invalid Content-Length")
        length = int(text)
        if length > MAX_BODY_BYTES:
            raise _BadRequest(413, "request body too large")
    if len(authorization) > 1:
        raise _BadRequest(400, "more than one Authorization header")
    tokens = {token.strip() for token in connection.split(b",")}
    keep_alive = b"close" not in tokens if version == b"HTTP/1.1" else b"keep-alive" in tokens
    return _Request(method.decode("latin-1"), target.decode("latin-1"), keep_alive,
                    authorization[0].decode("latin-1") if authorization else None, length,
                    http10=version == b"HTTP/1.0")


def _path_of(target: str) -> str:
    if target.startswith(("http://", "https://")):  # absolute form: drop scheme and authority
        slash = target.find("/", target.find("//") + 2)
        target = target[slash:] if slash >= 0 else "/"
    return target.split("?", 1)[0]


def _response(status: int, body: bytes, keep_alive: bool, extra: bytes = b"") -> bytes:
    connection = b"" if keep_alive else b"Connection: close\r\n"
    return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Cache-Control: no-store\r\n%s%s\r\n" % (status, _REASONS.get(status, "Error").encode(),
                                                       len(body), connection, extra)) + body


def _message(text: str) -> bytes:
    return json.dumps({"message": text}).encode()


def credentials_body(creds: Credentials) -> bytes:
    """The container-credentials JSON that AWS SDKs read."""
    expiration = creds.expiration.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"AccessKeyId": creds.access_key_id, "SecretAccessKey": creds.secret_access_key,
                       "Token": creds.session_token, "Expiration": expiration}).encode()


def _printable(text: str, limit: int = 120) -> str:
    text = text[:limit]
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


class CredentialServer:
    """The loopback endpoint; `start()` returns the port, `close()` ends every connection."""

    def __init__(self, source: CredentialSource, is_authorized: Callable[[str], bool], *, port: int = 0,
                 log: Callable[..., None] | None = None, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self._source = source
        self._is_authorized = is_authorized
        self._port = port
        self._log = log
        self.idle_timeout = idle_timeout
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Connection] = set()
        self._requests = 0
        self._body_for: tuple[Credentials | None, bytes] = (None, b"")

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The value for `AWS_CONTAINER_CREDENTIALS_FULL_URI`."""
        return f"http://{HOST}:{self._port}{PATH}"

    async def start(self) -> int:
        """Listen on 127.0.0.1 and return the port; a port in use is one clear `NucleusError`."""
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: _Connection(self), HOST, self._port,
                                                    reuse_address=True)
        except OSError as exc:
            raise NucleusError(f"the token exchange service cannot listen on {HOST}:{self._port} "
                               f"({exc.strerror or exc})", where=f"services.{TES}.configuration.port",
                               hint="choose another port, or 0 for any free one") from None
        self._port = self._server.sockets[0].getsockname()[1]
        return self._port

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        connections = list(self._connections)
        for connection in connections:
            connection.shut()
        tasks = [c.task for c in connections if c.task is not None]
        if tasks:
            await asyncio.wait(tasks)
        await self._server.wait_closed()
        self._server = None

    def statistics(self) -> ServerStatistics:
        return ServerStatistics(requests=self._requests, open_connections=len(self._connections))

    # -- answering ------------------------------------------------------------------------------------

    def _check(self, request: _Request) -> tuple[int, bytes] | None:
        """The refusal for a request (status, body), or None when it may have credentials."""
        if request.method != "GET":
            return 405, _message("only GET is allowed")
        if _path_of(request.target) != PATH:
            return 400, _message(f"unknown path; the credentials are at {PATH}")
        if request.authorization is None:
            return 403, _message("no Authorization header: send the component's "
                                 "AWS_CONTAINER_AUTHORIZATION_TOKEN")
        if not self._is_authorized(request.authorization):
            return 403, _message("the Authorization token is not one of a deployed component")
        return None

    def _answer_nowait(self, request: _Request) -> tuple[int, bytes] | None:
        """The full answer when it needs no waiting; None when it must wait for the upstream fetch."""
        refusal = self._check(request)
        if refusal is not None:
            return refusal
        try:
            creds = self._source.get_nowait()
        except ProviderError as exc:
            return exc.status, _message(exc.describe())
        return None if creds is None else (200, self._body(creds))

    async def _answer(self, request: _Request) -> tuple[int, bytes]:
        """The answer, waiting for the upstream fetch when there is nothing to hand out yet."""
        refusal = self._check(request)
        if refusal is not None:
            return refusal
        try:
            return 200, self._body(await self._source.get())
        except ProviderError as exc:
            return exc.status, _message(exc.describe())
        except Exception as exc:  # a bug: answer, and report the type only
            if self._log is not None:
                self._log("tes-internal-error", error=type(exc).__name__)
            return 500, _message("internal error in the token exchange service")

    def _body(self, creds: Credentials) -> bytes:
        cached, body = self._body_for
        if cached is not creds:
            body = credentials_body(creds)
            self._body_for = (creds, body)
        return body

    def _record(self, request: _Request | None, status: int) -> None:
        self._requests += 1
        if self._log is not None:
            self._log("tes-request", status=status, path=_printable(request.target) if request else "-",
                      token=bool(request and request.authorization))


class _Connection(asyncio.Protocol):
    """One client connection: parse, answer in order, keep alive or close."""

    def __init__(self, server: CredentialServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.queue: deque[_Request | _BadRequest] = deque()
        self.task: asyncio.Task[None] | None = None
        self.closing = False
        self.broken = False
        self.write_paused = False
        self.reading_paused = False
        self.last_active = 0.0
        self.idle_handle: asyncio.TimerHandle | None = None

    # -- asyncio callbacks ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._connections.add(self)
        loop = asyncio.get_running_loop()
        self.last_active = loop.time()
        self.idle_handle = loop.call_later(self.server.idle_timeout, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server._connections.discard(self)
        if self.idle_handle is not None:
            self.idle_handle.cancel()
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        if self.closing or self.broken:
            return
        self.buffer += data
        self.last_active = asyncio.get_running_loop().time()
        self._parse()

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._update_reading()
        self._parse()

    # -- requests ------------------------------------------------------------------------------------

    def _parse(self) -> None:
        """Take every complete request out of the buffer and answer or queue it."""
        while not self.closing and not self.broken and not self.write_paused:
            while self.buffer.startswith(b"\r\n"):  # empty lines between requests are allowed
                del self.buffer[:2]
            end = self.buffer.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES + 4)
            if end < 0:
                if len(self.buffer) > MAX_HEADER_BYTES:
                    self._enqueue(_BadRequest(431, "request headers too large"))
                return
            try:
                request = parse_head(bytes(self.buffer[:end]))
            except _BadRequest as exc:
                self._enqueue(exc)
                return
            total = end + 4 + request.content_length
            if len(self.buffer) < total:
                return  # the body is still arriving
            del self.buffer[:total]
            self._enqueue(request)

    def _enqueue(self, request: _Request | _BadRequest) -> None:
        """Answer now when nothing is ahead of it and no waiting is needed; otherwise queue in order."""
        if isinstance(request, _BadRequest):
            self.broken = True  # nothing after a request we could not read is trustworthy
            self.buffer.clear()
        if self.task is None and not self.queue:
            if isinstance(request, _BadRequest):
                self._fail(request)
                return
            answer = self.server._answer_nowait(request)
            if answer is not None:
                self._send(request, *answer)
                return
        self.queue.append(request)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._answer_queue())
        self._update_reading()

    async def _answer_queue(self) -> None:
        try:
            while self.queue and not self.closing:
                request = self.queue.popleft()
                if isinstance(request, _BadRequest):
                    self._fail(request)
                    return
                status, body = await self.server._answer(request)
                if self.closing:
                    return
                self._send(request, status, body)
                self._update_reading()
        finally:
            self.task = None
        if not self.closing and self.buffer:
            self._parse()  # requests that arrived while reading was paused

    def _send(self, request: _Request, status: int, body: bytes) -> None:
        assert self.transport is not None
        extra = b"Allow: GET\r\n" if status == 405 else b""
        keep_alive = request.keep_alive and not self.closing
        if keep_alive and request.http10:
            extra += b"Connection: keep-alive\r\n"
        self.transport.write(_response(status, body, keep_alive, extra))
        self.server._record(request, status)
        if not keep_alive:
            self.shut()

    def _fail(self, error: _BadRequest) -> None:
        """Answer a request we could not read, then close: the rest of the stream is not trustworthy."""
        if self.transport is not None and not self.closing:
            self.transport.write(_response(error.status, _message(error.message), False))
            self.server._record(None, error.status)
        self.shut()

    def shut(self) -> None:
        """Close after pending writes are flushed; further requests on this connection are ignored."""
        self.closing = True
        self.queue.clear()
        if self.transport is not None:
            self.transport.close()
        if self.task is not None and self.task is not _current_task():
            self.task.cancel()

    def _update_reading(self) -> None:
        if self.transport is None or self.closing:
            return
        should_pause = self.write_paused or len(self.queue) >= MAX_PIPELINED
        if should_pause and not self.reading_paused:
            self.transport.pause_reading()
        elif not should_pause and self.reading_paused:
            self.transport.resume_reading()
        self.reading_paused = should_pause

    def _check_idle(self) -> None:
        if self.closing:
            return
        loop = asyncio.get_running_loop()
        quiet = loop.time() - self.last_active
        if self.task is None and not self.queue and quiet >= self.server.idle_timeout:
            self.shut()
        else:
            self.idle_handle = loop.call_later(max(self.server.idle_timeout - quiet, 0.05), self._check_idle)


def _current_task() -> Any:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
