"""The server side of event-stream RPC as Greengrass IPC speaks it: a pure connection, bytes in, events out.

Like h11 for HTTP, `Connection` does no I/O: the edge feeds it the socket's bytes (`receive_data`, and
`b""` at end of input), acts on the events it returns, calls it to answer (`accept`, `respond`,
`send_event`, `send_error`, `end_stream`), and writes whatever `data_to_send()` hands back. Replies the
protocol makes without a decision (PING_RESPONSE, PROTOCOL_ERROR, refusing a CONNECT of the wrong version,
an error for a request whose body is not a JSON object) are queued there too.

What the real client (awsiotsdk 1.31 ``awsiot/eventstreamrpc.py`` on awscrt 0.36 / aws-c-event-stream)
sends and expects — read in its source and, wherever a test can show it, proved against the unmodified
SDK by tests/test_ipc_sdk.py:

* Every message carries int32 ``:message-type``, ``:message-flags``, ``:stream-id``; names match in any
  case, and a header of another type does not count (aws-c-event-stream ``event_stream_rpc.c``). Writers
  put them after the message's own headers; the SDK's request adds ``operation`` after them.
* CONNECT, stream 0: exactly ``:version`` (string ``0.1.0``) and the three, payload
  ``{"authToken": "<SVCUID>"}`` — built as ``'{"authToken": "%s"}' % token``, unescaped, so a token must
  never hold ``"`` or ``\\``. CONNECT_ACK with flag 1 (CONNECTION_ACCEPTED) lets ``connect()`` return
  (``greengrasscoreipc.connect`` waits 10 s for it). Without the flag the SDK closes the socket itself and raises
  ``awsiot.eventstreamrpc.AccessDeniedError('aws#AccessDenied', …)`` — *if* the socket is still open when
  it reads the refusal: a server that closes right after writing it makes the SDK raise
  ``awscrt.exceptions.AwsCrtError`` ``AWS_IO_SOCKET_CLOSED`` instead (every time, here). So after
  `refuse` (and after a violation, on which the SDK also hangs up by itself) the edge should wait a
  bounded time for the client to close first. The classic server refuses a ``:version`` other than 0.1.0.
* A request opens the next stream id (the C client numbers streams 1, 2, 3…; the C server refuses any other new
  id, and so do we): ``:content-type: application/json``, ``service-model-type:
  aws.greengrass#<Op>Request``, the three, ``operation: aws.greengrass#<Op>``, flags 0, JSON body.
* Every reply on a stream needs string ``service-model-type`` *and* ``:content-type: application/json``;
  without the content type the SDK raises UnmappedDataError. The first must be ``<operation>Response``,
  later ones the operation's stream event shape. A reply to a non-streaming operation must carry
  TERMINATE_STREAM: the SDK never closes such a stream itself, so it would stay open in both peers until
  the connection ends — hence `respond`'s required ``end_stream``.
* Errors: APPLICATION_ERROR, ``service-model-type: aws.greengrass#<Error>``, JSON ``{"message": …}`` (the
  SDK reads ``message``, not ``_message``; ResourceNotFoundError also ``resourceType``/``resourceName``,
  ServiceError ``context``). It looks the type up among *all* the service's shapes, not only the
  operation's, and raises that class: ``e.message`` holds the text, ``str(e)`` is empty. We always flag
  TERMINATE_STREAM; without it the SDK answers with a TERMINATE_STREAM of its own.
* ``operation.close()`` sends an empty APPLICATION_MESSAGE flagged TERMINATE_STREAM carrying only the
  three headers, and forgets the stream once it is written: no answer is expected. Closing the client
  only closes the socket; nothing is sent first.
* Our empty TERMINATE_STREAM ends the stream in the SDK (``on_stream_closed`` runs; before a response the
  call raises StreamClosedError). The SDK drops messages for streams it has closed.
* Pings: the SDK never pings (it has no keep-alive timer) and never answers our PING
  (``LifecycleHandler.on_ping`` does nothing), so PING cannot probe a component's liveness. We answer a
  client's PING with a PING_RESPONSE echoing its payload and non-``:`` headers, as the classic server does.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Union

from nucleus.errors import Kind, NucleusError
from nucleus.ipc.eventstream import Decoder, FramingError, Header, HeaderType, Message, encode_message

VERSION = "0.1.0"
JSON_CONTENT_TYPE = "application/json"
MODEL_PREFIX = "aws.greengrass#"

MESSAGE_TYPE = ":message-type"
MESSAGE_FLAGS = ":message-flags"
STREAM_ID = ":stream-id"
VERSION_HEADER = ":version"
CONTENT_TYPE = ":content-type"
OPERATION = "operation"
SERVICE_MODEL_TYPE = "service-model-type"


class MessageType(enum.IntEnum):
    APPLICATION_MESSAGE = 0
    APPLICATION_ERROR = 1
    PING = 2
    PING_RESPONSE = 3
    CONNECT = 4
    CONNECT_ACK = 5
    PROTOCOL_ERROR = 6
    INTERNAL_ERROR = 7


class Flag(enum.IntFlag):
    NONE = 0
    CONNECTION_ACCEPTED = 1
    TERMINATE_STREAM = 2


_MESSAGE_TYPES = tuple(MessageType)  # wire value → type, without an enum call per message
_FLAGS = tuple(Flag(bits) for bits in range(4))  # the two known bits; others are ignored, as the C library does


class State(enum.Enum):
    """Where the connection is; `_ROUTES` says which client messages each state takes."""

    AWAITING_CONNECT = "awaiting-connect"
    CONNECT_RECEIVED = "connect-received"  # the caller owes accept() or refuse()
    CONNECTED = "connected"
    CLOSED = "closed"


class StreamState(enum.Enum):
    REQUESTED = "requested"  # the request arrived; the response is owed
    STREAMING = "streaming"  # the response went out; events may follow


class Send(enum.Enum):
    RESPONSE = "response"
    EVENT = "event"
    ERROR = "error"
    END = "end"


# What each send does to a stream: the next state, or None when it closes the stream. A pair that is
# missing is a bug in the caller (LocalProtocolError). respond(end_stream=True) also closes.
_STREAM_SENDS: dict[tuple[StreamState, Send], StreamState | None] = {
    (StreamState.REQUESTED, Send.RESPONSE): StreamState.STREAMING,
    (StreamState.STREAMING, Send.EVENT): StreamState.STREAMING,
    (StreamState.REQUESTED, Send.ERROR): None,
    (StreamState.STREAMING, Send.ERROR): None,
    (StreamState.REQUESTED, Send.END): None,
    (StreamState.STREAMING, Send.END): None,
}

# Why a message is refused in a state, when `_ROUTES` has no entry for it.
_OUT_OF_ORDER = {
    State.AWAITING_CONNECT: "the first message must be CONNECT, not {type}",
    State.CONNECT_RECEIVED: "{type} arrived before the CONNECT_ACK",
    State.CONNECTED: "a client may not send {type} here",
    State.CLOSED: "{type} arrived after the connection closed",
}


# ------------------------------------------------------------------------------------------------ events


@dataclass(frozen=True)
class ConnectRequest:
    """A well-formed CONNECT: check the token, then call accept() or refuse()."""

    auth_token: str


@dataclass(frozen=True)
class OperationRequest:
    """A new stream: answer with respond() (or send_error()) on `stream_id`."""

    stream_id: int
    operation: str  # e.g. "aws.greengrass#PublishToTopic"
    model_type: str | None  # the request's service-model-type, e.g. "aws.greengrass#PublishToTopicRequest"
    body: dict[str, Any]


@dataclass(frozen=True)
class RequestRejected:
    """A new stream whose body was not a JSON object: InvalidArgumentsError is already queued."""

    stream_id: int
    operation: str
    reason: str


@dataclass(frozen=True)
class StreamClosed:
    """The stream ended without the caller's doing: the client closed it, or the connection ended."""

    stream_id: int
    reason: str


@dataclass(frozen=True)
class ProtocolViolation:
    """The client broke the protocol; its answer (PROTOCOL_ERROR, or a refusing CONNECT_ACK) is queued.
    Write data_to_send(), then close this connection's socket (after a bounded wait for the client to
    hang up: the SDK does so on either answer)."""

    reason: str


@dataclass(frozen=True)
class ConnectionClosed:
    """The input ended (receive_data(b"")); every open stream got a StreamClosed first."""

    reason: str


Event = Union[ConnectRequest, OperationRequest, RequestRejected, StreamClosed, ProtocolViolation, ConnectionClosed]


class LocalProtocolError(NucleusError):
    """The caller misused the connection (answered twice, sent on a stream never opened): a nucleus bug."""

    kind = Kind.INTERNAL


@dataclass
class _Stream:
    operation: str
    state: StreamState


class _Violation(Exception):
    """Internal: unwinds message handling to the one place that turns it into ProtocolViolation."""

    def __init__(self, reason: str, *, refuse_connect: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refuse_connect = refuse_connect


# ------------------------------------------------------------------------------------------- connection


class Connection:
    """One client connection's protocol state; one per accepted socket."""

    def __init__(self) -> None:
        self._state = State.AWAITING_CONNECT
        self._decoder = Decoder()
        self._outbox = bytearray()
        self._streams: dict[int, _Stream] = {}
        self._last_stream_id = 0

    @property
    def state(self) -> State:
        return self._state

    @property
    def open_streams(self) -> dict[int, str]:
        """Stream id → operation, for every stream still open (a copy)."""
        return {stream_id: stream.operation for stream_id, stream in self._streams.items()}

    def data_to_send(self) -> bytes:
        """Everything queued for the client since the last call."""
        data = bytes(self._outbox)
        self._outbox.clear()
        return data

    # -------------------------------------------------------------------------------------- incoming

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the socket (b"" at end of input) and get what they mean."""
        if self._state is State.CLOSED:
            return []
        if not data:
            reason = "connection ended inside a message" if self._decoder.buffered else "connection ended"
            return self._close(reason, ConnectionClosed(reason))
        events: list[Event] = []
        try:
            for message in self._decoder.feed(data):
                self._receive(message, events)
        except FramingError as error:
            return events + self._violate(f"bad framing: {error.reason}")
        except _Violation as violation:
            return events + self._violate(violation.reason, refuse_connect=violation.refuse_connect)
        return events

    def _receive(self, message: Message, events: list[Event]) -> None:
        incoming = _incoming(message)
        kind, stream_id = incoming.kind, incoming.stream_id
        route = _ROUTES.get((self._state, kind))
        if route is None:
            raise _Violation(_OUT_OF_ORDER[self._state].format(type=kind.name))
        if (stream_id == 0) != (kind >= MessageType.PING):
            which = "stream 0" if stream_id == 0 else f"stream {stream_id}"
            raise _Violation(f"{kind.name} may not be sent on {which}")
        route(self, incoming, events)

    def _on_connect(self, incoming: _Incoming, events: list[Event]) -> None:
        self._state = State.CONNECT_RECEIVED
        message = incoming.message
        version = message.header(VERSION_HEADER, HeaderType.STRING)
        if version != VERSION:
            raise _Violation(f"CONNECT :version is {version!r}, not {VERSION!r}", refuse_connect=True)
        try:
            token = _json_object(message.payload).get("authToken")
        except _BadBody:
            token = None
        if not isinstance(token, str) or not token:
            raise _Violation("CONNECT payload has no authToken", refuse_connect=True)
        events.append(ConnectRequest(token))

    def _on_ping(self, incoming: _Incoming, events: list[Event]) -> None:
        echoed = [header for header in incoming.message.headers if not header.name.startswith(":")]
        self._queue(MessageType.PING_RESPONSE, Flag.NONE, 0, echoed, incoming.message.payload)

    def _on_ping_response(self, incoming: _Incoming, events: list[Event]) -> None:
        pass

    def _on_stream_message(self, incoming: _Incoming, events: list[Event]) -> None:
        message, stream_id = incoming.message, incoming.stream_id
        terminate = bool(incoming.flags & Flag.TERMINATE_STREAM)
        stream = self._streams.pop(stream_id, None)
        if stream is not None:  # Greengrass operations take no client messages after the request
            if terminate:
                events.append(StreamClosed(stream_id, "the client closed the stream"))
                return
            self._queue_error(stream_id, "InvalidArgumentsError", f"{stream.operation} takes no further messages")
            events.append(StreamClosed(stream_id, "the client sent a message on an open stream"))
            return
        if stream_id <= self._last_stream_id:
            if terminate:  # both sides closed it at once; nothing to do
                return
            raise _Violation(f"stream {stream_id} is closed")
        if stream_id != self._last_stream_id + 1:
            raise _Violation(f"new stream {stream_id} is not {self._last_stream_id + 1}")
        if incoming.kind is not MessageType.APPLICATION_MESSAGE:
            raise _Violation(f"stream {stream_id} opened with {incoming.kind.name}")
        operation = message.header(OPERATION, HeaderType.STRING)
        if not isinstance(operation, str) or not operation:
            raise _Violation(f"new stream {stream_id} has no operation header")
        self._last_stream_id = stream_id
        if terminate:  # a request withdrawn in the same message: never run it
            return
        try:
            body = _json_object(message.payload) if message.payload else {}
        except _BadBody as bad:
            self._queue_error(stream_id, "InvalidArgumentsError", bad.reason)
            events.append(RequestRejected(stream_id, operation, bad.reason))
            return
        model = message.header(SERVICE_MODEL_TYPE, HeaderType.STRING)
        self._streams[stream_id] = _Stream(operation, StreamState.REQUESTED)
        events.append(OperationRequest(stream_id, operation, model if isinstance(model, str) else None, body))

    # -------------------------------------------------------------------------------------- outgoing

    def accept(self) -> None:
        """Accept the pending CONNECT (CONNECT_ACK with CONNECTION_ACCEPTED)."""
        self._expect_connect("accept")
        self._queue(MessageType.CONNECT_ACK, Flag.CONNECTION_ACCEPTED, 0, [], b"")
        self._state = State.CONNECTED

    def refuse(self) -> None:
        """Refuse the pending CONNECT. Write data_to_send(), then give the client a few seconds to hang up
        before closing: it raises AccessDeniedError only if it reads the refusal on an open socket."""
        self._expect_connect("refuse")
        self._queue(MessageType.CONNECT_ACK, Flag.NONE, 0, [], b"")
        self._state = State.CLOSED

    def respond(self, stream_id: int, body: Mapping[str, Any] | None = None, *, end_stream: bool) -> bool:
        """The operation's `…Response`; `end_stream` for every operation without stream events. False when
        the stream (or the connection) has closed meanwhile."""
        stream = self._stream_for(stream_id, Send.RESPONSE)
        if stream is None:
            return False
        model = stream.operation + "Response"
        flags = Flag.TERMINATE_STREAM if end_stream else Flag.NONE
        self._queue(MessageType.APPLICATION_MESSAGE, flags, stream_id, _json_headers(model), _json_bytes(body))
        self._advance(stream_id, stream, Send.RESPONSE, closes=end_stream)
        return True

    def send_event(self, stream_id: int, model_type: str, body: Mapping[str, Any]) -> bool:
        """A stream event (e.g. ``aws.greengrass#SubscriptionResponseMessage``) after the response."""
        stream = self._stream_for(stream_id, Send.EVENT)
        if stream is None:
            return False
        self._queue(MessageType.APPLICATION_MESSAGE, Flag.NONE, stream_id, _json_headers(model_type), _json_bytes(body))
        self._advance(stream_id, stream, Send.EVENT)
        return True

    def send_error(self, stream_id: int, error: str, message: str, **fields: Any) -> bool:
        """APPLICATION_ERROR `error` (``UnauthorizedError`` or ``aws.greengrass#UnauthorizedError``) with
        ``{"message": message, **fields}``; it ends the stream."""
        stream = self._stream_for(stream_id, Send.ERROR)
        if stream is None:
            return False
        self._queue_error(stream_id, error, message, fields)
        self._advance(stream_id, stream, Send.ERROR)
        return True

    def end_stream(self, stream_id: int) -> bool:
        """End a stream with an empty TERMINATE_STREAM (the SDK runs on_stream_closed)."""
        stream = self._stream_for(stream_id, Send.END)
        if stream is None:
            return False
        self._queue(MessageType.APPLICATION_MESSAGE, Flag.TERMINATE_STREAM, stream_id, [], b"")
        self._advance(stream_id, stream, Send.END)
        return True

    # -------------------------------------------------------------------------------------- internals

    def _expect_connect(self, what: str) -> None:
        if self._state is not State.CONNECT_RECEIVED:
            raise LocalProtocolError(f"{what}() needs a pending CONNECT; the connection is {self._state.value}")

    def _stream_for(self, stream_id: int, send: Send) -> _Stream | None:
        stream = self._streams.get(stream_id)
        if stream is None:
            if 0 < stream_id <= self._last_stream_id:
                return None  # closed by the client or the connection: a race, not a bug
            raise LocalProtocolError(f"stream {stream_id} was never opened")
        if (stream.state, send) not in _STREAM_SENDS:
            raise LocalProtocolError(f"cannot send {send.value} on stream {stream_id} in state {stream.state.value}")
        return stream

    def _advance(self, stream_id: int, stream: _Stream, send: Send, *, closes: bool = False) -> None:
        following = _STREAM_SENDS[(stream.state, send)]
        if following is None or closes:
            del self._streams[stream_id]
        else:
            stream.state = following

    def _queue_error(self, stream_id: int, error: str, message: str, fields: Mapping[str, Any] | None = None) -> None:
        model = error if "#" in error else MODEL_PREFIX + error
        body = {"message": message, **(fields or {})}
        self._queue(MessageType.APPLICATION_ERROR, Flag.TERMINATE_STREAM, stream_id, _json_headers(model), _json_bytes(body))

    def _queue(self, kind: MessageType, flags: Flag, stream_id: int, headers: list[Header], payload: bytes) -> None:
        rpc = [Header.int32(MESSAGE_TYPE, kind), Header.int32(MESSAGE_FLAGS, flags), Header.int32(STREAM_ID, stream_id)]
        self._outbox += encode_message(headers + rpc, payload)

    def _violate(self, reason: str, *, refuse_connect: bool = False) -> list[Event]:
        if refuse_connect:
            self._queue(MessageType.CONNECT_ACK, Flag.NONE, 0, [], b"")
        else:
            body = _json_bytes({"message": reason})
            self._queue(MessageType.PROTOCOL_ERROR, Flag.NONE, 0, [Header.string(CONTENT_TYPE, JSON_CONTENT_TYPE)], body)
        return self._close(reason, ProtocolViolation(reason))

    def _close(self, reason: str, final: Event) -> list[Event]:
        events: list[Event] = [StreamClosed(stream_id, reason) for stream_id in sorted(self._streams)]
        self._streams.clear()
        self._state = State.CLOSED
        return [*events, final]


_Route = Callable[[Connection, "_Incoming", list[Event]], None]

# Which client messages each state takes; anything else is a protocol violation (`_OUT_OF_ORDER`).
_ROUTES: dict[tuple[State, MessageType], _Route] = {
    (State.AWAITING_CONNECT, MessageType.CONNECT): Connection._on_connect,
    (State.CONNECTED, MessageType.APPLICATION_MESSAGE): Connection._on_stream_message,
    (State.CONNECTED, MessageType.APPLICATION_ERROR): Connection._on_stream_message,
    (State.CONNECTED, MessageType.PING): Connection._on_ping,
    (State.CONNECTED, MessageType.PING_RESPONSE): Connection._on_ping_response,
}


# ------------------------------------------------------------------------------------------------ helpers


class _BadBody(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Incoming:
    message: Message
    kind: MessageType
    flags: Flag
    stream_id: int


def _incoming(message: Message) -> _Incoming:
    """The message with its three RPC headers read and range-checked."""
    values = []
    for name in (MESSAGE_TYPE, MESSAGE_FLAGS, STREAM_ID):
        value = message.header(name, HeaderType.INT32)
        if not isinstance(value, int):
            raise _Violation(f"a message without an int32 {name} header")
        values.append(value)
    kind, flags, stream_id = values
    if not 0 <= kind < len(_MESSAGE_TYPES):
        raise _Violation(f"unknown message type {kind}")
    if stream_id < 0:
        raise _Violation(f"negative stream id {stream_id}")
    return _Incoming(message, _MESSAGE_TYPES[kind], _FLAGS[flags & 3], stream_id)


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; RecursionError: deep nesting
        raise _BadBody("the body is not JSON") from None
    if not isinstance(value, dict):
        raise _BadBody("the body is not a JSON object")
    return value


def _json_headers(model_type: str) -> list[Header]:
    return [Header.string(CONTENT_TYPE, JSON_CONTENT_TYPE), Header.string(SERVICE_MODEL_TYPE, model_type)]


def _json_bytes(body: Mapping[str, Any] | None) -> bytes:
    return json.dumps(dict(body or {}), separators=(",", ":")).encode("utf-8")
