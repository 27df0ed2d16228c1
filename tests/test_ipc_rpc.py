"""nucleus.ipc.rpc with plain bytes: the handshake, streams, replies, and every way a client can break the rules.

Client messages are built with the codec (itself checked against known frames in test_ipc_eventstream.py);
what the connection answers is decoded back and checked header by header.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nucleus.ipc.eventstream import Decoder, Header, HeaderType, Message, encode_message
from nucleus.ipc.rpc import (
    _OUT_OF_ORDER,
    _ROUTES,
    ConnectionClosed,
    ConnectRequest,
    Connection,
    Flag,
    LocalProtocolError,
    MessageType,
    OperationRequest,
    ProtocolViolation,
    RequestRejected,
    State,
    StreamClosed,
)

TOKEN = "a-component-token"
TERMINATE = Flag.TERMINATE_STREAM


def client_message(
    kind: int, stream_id: int = 0, flags: int = 0, headers: tuple[Header, ...] = (), payload: bytes = b""
) -> bytes:
    rpc = (Header.int32(":message-type", kind), Header.int32(":message-flags", flags), Header.int32(":stream-id", stream_id))
    return encode_message(headers + rpc, payload)


def connect(version: str | None = "0.1.0", payload: bytes = b'{"authToken": "' + TOKEN.encode() + b'"}') -> bytes:
    headers = (Header.string(":version", version),) if version is not None else ()
    return client_message(MessageType.CONNECT, headers=headers, payload=payload)


def request(stream_id: int, op: str = "PublishToTopic", body: bytes = b'{"topic": "t"}', flags: int = 0) -> bytes:
    headers = (
        Header.string(":content-type", "application/json"),
        Header.string("service-model-type", f"aws.greengrass#{op}Request"),
        Header.string("operation", f"aws.greengrass#{op}"),
    )
    return client_message(MessageType.APPLICATION_MESSAGE, stream_id, flags, headers, body)


def client_close(stream_id: int) -> bytes:
    return client_message(MessageType.APPLICATION_MESSAGE, stream_id, TERMINATE)


def sent(conn: Connection) -> list[Message]:
    return Decoder().feed(conn.data_to_send())


def rpc_of(message: Message) -> tuple[int | None, int | None, int | None]:
    return tuple(message.header(n, HeaderType.INT32) for n in (":message-type", ":message-flags", ":stream-id"))  # type: ignore[return-value]


def json_of(message: Message) -> Any:
    return json.loads(message.payload)


def feed(conn: Connection, *chunks: bytes) -> list[Any]:
    """Feed chunks, skipping empty ones (b"" means end of input)."""
    return [event for chunk in chunks if chunk for event in conn.receive_data(chunk)]


def connected() -> Connection:
    conn = Connection()
    assert conn.receive_data(connect()) == [ConnectRequest(TOKEN)]
    conn.accept()
    conn.data_to_send()
    return conn


def violation(conn: Connection, data: bytes) -> str:
    """Feed bytes that break the rules: one ProtocolViolation, a PROTOCOL_ERROR queued, the connection closed."""
    events = conn.receive_data(data)
    assert isinstance(events[-1], ProtocolViolation), events
    [error] = sent(conn)
    assert rpc_of(error) == (MessageType.PROTOCOL_ERROR, 0, 0)
    assert error.header(":content-type", HeaderType.STRING) == "application/json"
    assert json_of(error) == {"message": events[-1].reason}
    assert conn.state is State.CLOSED
    assert conn.receive_data(request(1)) == []  # nothing more is read
    return events[-1].reason


# ------------------------------------------------------------------------------------------------ handshake


def test_connect_then_accept_sends_connect_ack_with_connection_accepted() -> None:
    conn = Connection()
    assert conn.receive_data(connect()) == [ConnectRequest(TOKEN)]
    assert conn.state is State.CONNECT_RECEIVED
    assert conn.data_to_send() == b""  # nothing goes out until the caller decides
    conn.accept()
    [ack] = sent(conn)
    assert rpc_of(ack) == (MessageType.CONNECT_ACK, Flag.CONNECTION_ACCEPTED, 0)
    assert ack.payload == b""
    assert conn.state is State.CONNECTED


def test_refuse_sends_connect_ack_without_the_flag_and_closes() -> None:
    conn = Connection()
    conn.receive_data(connect())
    conn.refuse()
    [ack] = sent(conn)
    assert rpc_of(ack) == (MessageType.CONNECT_ACK, 0, 0)
    assert conn.state is State.CLOSED
    assert conn.receive_data(request(1)) == []


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (connect(version="0.2.0"), "CONNECT :version is '0.2.0', not '0.1.0'"),
        (connect(version=None), "CONNECT :version is None, not '0.1.0'"),
        (connect(payload=b"not json"), "CONNECT payload has no authToken"),
        (connect(payload=b'{"authToken": 7}'), "CONNECT payload has no authToken"),
        (connect(payload=b'{"authToken": ""}'), "CONNECT payload has no authToken"),
        (connect(payload=b""), "CONNECT payload has no authToken"),
    ],
)
def test_a_malformed_connect_is_refused_with_a_connect_ack(data: bytes, reason: str) -> None:
    conn = Connection()
    assert conn.receive_data(data) == [ProtocolViolation(reason)]
    [ack] = sent(conn)
    assert rpc_of(ack) == (MessageType.CONNECT_ACK, 0, 0)  # what the classic nucleus answers a version mismatch
    assert conn.state is State.CLOSED


def test_accept_and_refuse_need_a_pending_connect() -> None:
    with pytest.raises(LocalProtocolError, match="needs a pending CONNECT"):
        Connection().accept()
    with pytest.raises(LocalProtocolError):
        connected().refuse()


@pytest.mark.parametrize(
    "data",
    [request(1), client_message(MessageType.PING), client_message(MessageType.CONNECT_ACK)],
)
def test_anything_before_connect_is_a_violation(data: bytes) -> None:
    assert violation(Connection(), data).startswith("the first message must be CONNECT")


def test_a_message_before_the_connect_ack_is_a_violation() -> None:
    conn = Connection()
    events = conn.receive_data(connect() + client_message(MessageType.PING))
    assert events == [ConnectRequest(TOKEN), ProtocolViolation("PING arrived before the CONNECT_ACK")]


def test_a_second_connect_is_a_violation() -> None:
    assert violation(connected(), connect()) == "a client may not send CONNECT here"


@pytest.mark.parametrize("kind", [MessageType.CONNECT_ACK, MessageType.PROTOCOL_ERROR, MessageType.INTERNAL_ERROR])
def test_server_only_message_types_from_a_client_are_violations(kind: MessageType) -> None:
    assert violation(connected(), client_message(kind)) == f"a client may not send {kind.name} here"


@pytest.mark.parametrize("state", [State.AWAITING_CONNECT, State.CONNECT_RECEIVED, State.CONNECTED])
@pytest.mark.parametrize("kind", list(MessageType))
def test_the_route_table_decides_every_state_and_type(state: State, kind: MessageType) -> None:
    conn = Connection()
    if state is not State.AWAITING_CONNECT:
        conn.receive_data(connect())
    if state is State.CONNECTED:
        conn.accept()
    conn.data_to_send()
    stream_id = 1 if kind <= MessageType.APPLICATION_ERROR else 0
    headers = (Header.string("operation", "aws.greengrass#PublishToTopic"), Header.string(":version", "0.1.0"))
    events = conn.receive_data(client_message(kind, stream_id, 0, headers, b'{"authToken": "t"}'))
    refused_by_table = bool(events) and events[-1] == ProtocolViolation(_OUT_OF_ORDER[state].format(type=kind.name))
    assert refused_by_table is ((state, kind) not in _ROUTES)


# ---------------------------------------------------------------------------------------------------- pings


def test_a_ping_is_answered_with_its_payload_and_non_colon_headers() -> None:
    conn = connected()
    ping = client_message(MessageType.PING, headers=(Header.string("x-echo", "yes"),), payload=b"ping-data")
    assert conn.receive_data(ping) == []
    [pong] = sent(conn)
    assert rpc_of(pong) == (MessageType.PING_RESPONSE, 0, 0)
    assert pong.header("x-echo", HeaderType.STRING) == "yes"
    assert pong.payload == b"ping-data"
    assert [h.name for h in pong.headers] == ["x-echo", ":message-type", ":message-flags", ":stream-id"]


def test_a_ping_response_is_ignored() -> None:
    conn = connected()
    assert conn.receive_data(client_message(MessageType.PING_RESPONSE)) == []
    assert conn.data_to_send() == b""


# ------------------------------------------------------------------------------------------ request/response


def test_a_request_becomes_an_operation_request() -> None:
    conn = connected()
    assert conn.receive_data(request(1)) == [
        OperationRequest(1, "aws.greengrass#PublishToTopic", "aws.greengrass#PublishToTopicRequest", {"topic": "t"})
    ]
    assert conn.open_streams == {1: "aws.greengrass#PublishToTopic"}


def test_respond_sends_the_operations_response_shape_and_can_end_the_stream() -> None:
    conn = connected()
    conn.receive_data(request(1))
    assert conn.respond(1, end_stream=True) is True
    [reply] = sent(conn)
    assert rpc_of(reply) == (MessageType.APPLICATION_MESSAGE, TERMINATE, 1)
    assert reply.header("service-model-type", HeaderType.STRING) == "aws.greengrass#PublishToTopicResponse"
    assert reply.header(":content-type", HeaderType.STRING) == "application/json"
    assert json_of(reply) == {}
    assert conn.open_streams == {}


def test_a_streaming_operation_responds_then_sends_events_then_ends() -> None:
    conn = connected()
    conn.receive_data(request(1, "SubscribeToTopic"))
    with pytest.raises(LocalProtocolError, match="cannot send event on stream 1 in state requested"):
        conn.send_event(1, "aws.greengrass#SubscriptionResponseMessage", {})
    assert conn.respond(1, {}, end_stream=False)
    for n in range(2):
        assert conn.send_event(1, "aws.greengrass#SubscriptionResponseMessage", {"jsonMessage": {"message": n}})
    assert conn.end_stream(1)
    response, first, second, end = sent(conn)
    assert rpc_of(response) == (MessageType.APPLICATION_MESSAGE, 0, 1)
    assert response.header("service-model-type", HeaderType.STRING) == "aws.greengrass#SubscribeToTopicResponse"
    for n, event in enumerate((first, second)):
        assert rpc_of(event) == (MessageType.APPLICATION_MESSAGE, 0, 1)
        assert event.header("service-model-type", HeaderType.STRING) == "aws.greengrass#SubscriptionResponseMessage"
        assert json_of(event) == {"jsonMessage": {"message": n}}
    assert rpc_of(end) == (MessageType.APPLICATION_MESSAGE, TERMINATE, 1)
    assert end.payload == b"" and len(end.headers) == 3


def test_responding_twice_is_refused() -> None:
    conn = connected()
    conn.receive_data(request(1, "SubscribeToTopic"))
    conn.respond(1, end_stream=False)
    with pytest.raises(LocalProtocolError, match="cannot send response"):
        conn.respond(1, end_stream=False)


def test_sending_on_a_stream_never_opened_is_a_bug() -> None:
    conn = connected()
    for send in (
        lambda: conn.respond(1, end_stream=True),
        lambda: conn.send_event(1, "x", {}),
        lambda: conn.send_error(1, "ServiceError", "m"),
        lambda: conn.end_stream(1),
    ):
        with pytest.raises(LocalProtocolError, match="stream 1 was never opened"):
            send()


def test_send_error_is_an_application_error_that_ends_the_stream() -> None:
    conn = connected()
    conn.receive_data(request(1))
    assert conn.send_error(1, "UnauthorizedError", "not authorized to publish to t")
    [error] = sent(conn)
    assert rpc_of(error) == (MessageType.APPLICATION_ERROR, TERMINATE, 1)
    assert error.header("service-model-type", HeaderType.STRING) == "aws.greengrass#UnauthorizedError"
    assert error.header(":content-type", HeaderType.STRING) == "application/json"
    assert json_of(error) == {"message": "not authorized to publish to t"}
    assert conn.open_streams == {}


def test_send_error_carries_extra_fields_and_full_model_names() -> None:
    conn = connected()
    conn.receive_data(request(1, "SubscribeToTopic"))
    conn.respond(1, end_stream=False)
    conn.send_error(1, "aws.greengrass#ResourceNotFoundError", "gone", resourceType="topic", resourceName="t")
    _, error = sent(conn)
    assert error.header("service-model-type", HeaderType.STRING) == "aws.greengrass#ResourceNotFoundError"
    assert json_of(error) == {"message": "gone", "resourceType": "topic", "resourceName": "t"}


def test_a_reply_too_large_for_a_frame_raises_and_leaves_the_stream_open() -> None:
    conn = connected()
    conn.receive_data(request(1))
    with pytest.raises(ValueError, match="over the 25165824-byte limit"):
        conn.respond(1, {"value": "x" * (24 * 1024 * 1024)}, end_stream=True)
    assert conn.open_streams == {1: "aws.greengrass#PublishToTopic"}
    assert conn.send_error(1, "ServiceError", "the value is too large")


def test_a_one_mib_request_and_reply_pass_through() -> None:
    conn = connected()
    blob = "y" * (1024 * 1024)
    [event] = conn.receive_data(request(1, body=json.dumps({"blob": blob}).encode()))
    assert isinstance(event, OperationRequest) and event.body["blob"] == blob
    conn.respond(1, {"blob": blob}, end_stream=True)
    assert json_of(sent(conn)[0]) == {"blob": blob}


# ------------------------------------------------------------------------------------------- stream closing


def test_the_client_closing_a_stream_is_a_stream_closed_event() -> None:
    conn = connected()
    conn.receive_data(request(1, "SubscribeToTopic"))
    conn.respond(1, end_stream=False)
    conn.data_to_send()
    assert conn.receive_data(client_close(1)) == [StreamClosed(1, "the client closed the stream")]
    assert conn.data_to_send() == b""  # the SDK expects no answer
    assert conn.send_event(1, "aws.greengrass#SubscriptionResponseMessage", {}) is False  # a race, not a bug
    assert conn.end_stream(1) is False
    assert conn.data_to_send() == b""


def test_a_request_closed_before_its_response_makes_the_late_response_a_no_op() -> None:
    conn = connected()
    conn.receive_data(request(1))
    assert conn.receive_data(client_close(1)) == [StreamClosed(1, "the client closed the stream")]
    assert conn.respond(1, end_stream=True) is False
    assert conn.data_to_send() == b""


def test_a_close_crossing_ours_is_ignored() -> None:
    conn = connected()
    conn.receive_data(request(1, "SubscribeToTopic"))
    conn.send_error(1, "ServiceError", "bye")
    conn.data_to_send()
    assert conn.receive_data(client_close(1)) == []
    assert conn.data_to_send() == b""
    assert conn.state is State.CONNECTED


def test_a_request_with_terminate_set_is_never_run_but_uses_its_id() -> None:
    conn = connected()
    assert conn.receive_data(request(1, flags=TERMINATE)) == []
    assert isinstance(conn.receive_data(request(2))[0], OperationRequest)


def test_a_further_client_message_on_an_open_stream_ends_it_with_an_error() -> None:
    conn = connected()
    conn.receive_data(request(1, "SubscribeToTopic"))
    conn.respond(1, end_stream=False)
    conn.data_to_send()
    events = conn.receive_data(request(1, "SubscribeToTopic"))
    assert events == [StreamClosed(1, "the client sent a message on an open stream")]
    [error] = sent(conn)
    assert rpc_of(error) == (MessageType.APPLICATION_ERROR, TERMINATE, 1)
    assert error.header("service-model-type", HeaderType.STRING) == "aws.greengrass#InvalidArgumentsError"


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe", b'"text"', b"[" * 200_000, b"1" * 5000])
def test_a_body_that_is_not_a_json_object_is_rejected_on_its_stream(body: bytes) -> None:
    conn = connected()
    [event] = conn.receive_data(request(1, body=body))
    assert isinstance(event, RequestRejected) and event.stream_id == 1
    [error] = sent(conn)
    assert rpc_of(error) == (MessageType.APPLICATION_ERROR, TERMINATE, 1)
    assert error.header("service-model-type", HeaderType.STRING) == "aws.greengrass#InvalidArgumentsError"
    assert json_of(error)["message"] == event.reason
    assert conn.state is State.CONNECTED
    assert isinstance(conn.receive_data(request(2))[0], OperationRequest)  # the id was used


def test_an_empty_body_is_an_empty_request() -> None:
    [event] = connected().receive_data(request(1, "ListComponents", body=b""))
    assert isinstance(event, OperationRequest) and event.body == {}


# --------------------------------------------------------------------------------------------- stream ids


def test_stream_ids_go_up_by_one() -> None:
    conn = connected()
    for stream_id in (1, 2, 3):
        assert isinstance(conn.receive_data(request(stream_id))[0], OperationRequest)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (request(2), "new stream 2 is not 1"),
        (request(1) + request(3), "new stream 3 is not 2"),
        (request(1) + client_close(1) + request(1), "stream 1 is closed"),
        (request(1) + request(2) + client_close(2) + request(2), "stream 2 is closed"),
        (request(1) + request(2) + client_close(1) + request(1), "stream 1 is closed"),
    ],
)
def test_wrong_stream_ids_are_violations(data: bytes, reason: str) -> None:
    assert violation(connected(), data) == reason


def test_stream_ids_must_be_sane_for_the_message_type() -> None:
    assert violation(connected(), client_message(MessageType.APPLICATION_MESSAGE, 0)) == (
        "APPLICATION_MESSAGE may not be sent on stream 0"
    )
    assert violation(connected(), client_message(MessageType.PING, 1)) == "PING may not be sent on stream 1"
    assert violation(connected(), client_message(MessageType.PING, -1)) == "negative stream id -1"


def test_a_new_stream_needs_an_operation_and_an_application_message() -> None:
    no_operation = client_message(MessageType.APPLICATION_MESSAGE, 1, payload=b"{}")
    assert violation(connected(), no_operation) == "new stream 1 has no operation header"
    as_error = client_message(
        MessageType.APPLICATION_ERROR, 1, headers=(Header.string("operation", "aws.greengrass#X"),), payload=b"{}"
    )
    assert violation(connected(), as_error) == "stream 1 opened with APPLICATION_ERROR"


def test_missing_or_mistyped_rpc_headers_are_violations() -> None:
    no_type = encode_message((Header.int32(":message-flags", 0), Header.int32(":stream-id", 0)))
    assert violation(connected(), no_type) == "a message without an int32 :message-type header"
    string_id = encode_message(
        (Header.int32(":message-type", 2), Header.int32(":message-flags", 0), Header.string(":stream-id", "0"))
    )
    assert violation(connected(), string_id) == "a message without an int32 :stream-id header"


def test_rpc_header_names_match_in_any_case() -> None:
    ping = encode_message(
        (Header.int32(":MESSAGE-TYPE", 2), Header.int32(":Message-Flags", 0), Header.int32(":Stream-Id", 0))
    )
    conn = connected()
    assert conn.receive_data(ping) == []
    assert rpc_of(sent(conn)[0])[0] == MessageType.PING_RESPONSE


def test_an_unknown_message_type_is_a_violation() -> None:
    assert violation(connected(), client_message(8)) == "unknown message type 8"


def test_bad_framing_is_a_violation() -> None:
    data = bytearray(request(1))
    data[-1] ^= 0xFF
    assert violation(connected(), bytes(data)) == "bad framing: message CRC mismatch"


# ---------------------------------------------------------------------------------------- the connection ends


def test_events_before_a_violation_are_kept_and_open_streams_close_first() -> None:
    conn = connected()
    events = conn.receive_data(request(1, "SubscribeToTopic") + request(2) + request(9))
    assert [type(e) for e in events] == [OperationRequest, OperationRequest, StreamClosed, StreamClosed, ProtocolViolation]
    assert [e.stream_id for e in events[2:4]] == [1, 2]  # type: ignore[union-attr]
    assert events[-1] == ProtocolViolation("new stream 9 is not 3")
    assert conn.open_streams == {}


def test_end_of_input_closes_every_open_stream_then_the_connection() -> None:
    conn = connected()
    conn.receive_data(request(1, "SubscribeToTopic") + request(2))
    conn.respond(1, end_stream=False)
    conn.data_to_send()
    assert conn.receive_data(b"") == [
        StreamClosed(1, "connection ended"),
        StreamClosed(2, "connection ended"),
        ConnectionClosed("connection ended"),
    ]
    assert conn.state is State.CLOSED
    assert conn.receive_data(b"") == []
    assert conn.send_event(1, "x", {}) is False
    assert conn.respond(2, end_stream=True) is False
    assert conn.data_to_send() == b""


def test_end_of_input_inside_a_message_says_so() -> None:
    conn = connected()
    conn.receive_data(request(1)[:10])
    assert conn.receive_data(b"") == [ConnectionClosed("connection ended inside a message")]


def test_every_split_point_of_a_conversation_gives_the_same_events() -> None:
    hello = connect()
    for split in range(len(hello) + 1):
        conn = Connection()
        assert feed(conn, hello[:split], hello[split:]) == [ConnectRequest(TOKEN)]
    rest = request(1) + client_message(MessageType.PING, payload=b"p") + request(2) + client_close(1)
    expected = [
        OperationRequest(1, "aws.greengrass#PublishToTopic", "aws.greengrass#PublishToTopicRequest", {"topic": "t"}),
        OperationRequest(2, "aws.greengrass#PublishToTopic", "aws.greengrass#PublishToTopicRequest", {"topic": "t"}),
        StreamClosed(1, "the client closed the stream"),
    ]
    for split in range(len(rest) + 1):
        conn = connected()
        assert feed(conn, rest[:split], rest[split:]) == expected, split
        [pong] = sent(conn)
        assert rpc_of(pong)[0] == MessageType.PING_RESPONSE


# ---------------------------------------------------------------------------------------------------- fuzzing


KNOWN_EVENTS = (ConnectRequest, OperationRequest, RequestRejected, StreamClosed, ProtocolViolation, ConnectionClosed)


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=80), max_size=6))
def test_random_bytes_after_connect_give_only_events(chunks: list[bytes]) -> None:
    conn = connected()
    for chunk in chunks + [b""]:
        for event in conn.receive_data(chunk):
            assert isinstance(event, KNOWN_EVENTS)
    assert conn.state is State.CLOSED


_MESSAGE = st.builds(
    client_message,
    st.integers(-1, 9),
    st.integers(-1, 4),
    st.integers(0, 3),
    st.lists(
        st.sampled_from(
            [
                Header.string("operation", "aws.greengrass#PublishToTopic"),
                Header.string(":version", "0.1.0"),
                Header.string("service-model-type", "x"),
            ]
        ),
        max_size=3,
    ).map(tuple),
    st.sampled_from([b"", b"{}", b'{"authToken": "a-component-token"}', b"[]", b"\xff"]),
)


@settings(max_examples=400)
@given(st.lists(_MESSAGE, max_size=10), st.booleans())
def test_random_well_framed_messages_give_only_events(messages: list[bytes], accept: bool) -> None:
    conn = Connection()
    for data in messages:
        for event in conn.receive_data(data):
            assert isinstance(event, KNOWN_EVENTS)
            if isinstance(event, ConnectRequest):
                conn.accept() if accept else conn.refuse()
            if isinstance(event, OperationRequest):
                conn.respond(event.stream_id, end_stream=True)
        Decoder().feed(conn.data_to_send())  # whatever we queue is well framed
