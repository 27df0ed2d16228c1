"""nucleus.ipc's pure core against the real client: awsiotsdk's GreengrassCoreIPCClientV2, unmodified.

Each test starts tests/ipc_harness.py (asyncio Unix socket + the core) and runs tests/ipc_sdk_client.py in a
subprocess with AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT and SVCUID, as a component runs. It
checks both sides: what the SDK returned, raised or called back, and what it put on the wire.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ipc_harness import Harness, Handler, Session
from nucleus.ipc import eventstream, rpc
from nucleus.ipc.eventstream import HeaderType

TOKEN = "3b1c6a0e9f2d4c7b8a5e1f0d2c3b4a59"
LARGE = 1024 * 1024
EVENT = "aws.greengrass#SubscriptionResponseMessage"


def run(handler: Handler, scenario: str, token: str | None = None) -> tuple[dict[str, Any], Session]:
    """Run one client scenario to its end; return its printed result and the one connection it made."""

    async def main() -> tuple[int, str, str, Harness]:
        async with Harness(TOKEN, handler) as harness:
            code, out, err = await harness.run_client(scenario, token)
            await harness.wait_sessions_done()
            return code, out, err, harness

    code, out, err, harness = asyncio.run(main())
    assert code == 0, err
    [session] = harness.sessions
    return json.loads(out), session


def headers(message: eventstream.Message) -> list[tuple[str, str, Any]]:
    return [(h.name, h.type.name, h.value) for h in message.headers]


def respond_empty(session: Session, request: rpc.OperationRequest) -> None:
    session.conn.respond(request.stream_id, end_stream=True)


def message_event(n: Any) -> dict[str, Any]:
    return {"jsonMessage": {"message": n, "context": {"topic": "test/topic"}}}


def test_connect_is_accepted_with_the_right_token() -> None:
    result, session = run(respond_empty, "connect")
    assert result == {"connected": True}
    [hello] = session.wire
    assert headers(hello) == [
        (":version", "STRING", "0.1.0"),
        (":message-type", "INT32", rpc.MessageType.CONNECT),
        (":message-flags", "INT32", 0),
        (":stream-id", "INT32", 0),
    ]
    assert hello.payload == b'{"authToken": "' + TOKEN.encode() + b'"}'
    assert session.events == [rpc.ConnectRequest(TOKEN), rpc.ConnectionClosed("connection ended")]


def test_a_wrong_token_is_refused_and_the_sdk_raises_access_denied() -> None:
    result, session = run(respond_empty, "refused", token="not-the-token")
    assert result == {
        "error": "awsiot.eventstreamrpc.AccessDeniedError",
        "args": ["aws#AccessDenied", "Connection access denied to event stream RPC server"],
    }
    assert session.events == [rpc.ConnectRequest("not-the-token")]
    assert session.conn.state is rpc.State.CLOSED


def test_publish_to_topic_gets_an_empty_response() -> None:
    result, session = run(respond_empty, "publish")
    assert result == {"response": "PublishToTopicResponse"}
    _, request = session.wire
    assert headers(request) == [
        (":content-type", "STRING", "application/json"),
        ("service-model-type", "STRING", "aws.greengrass#PublishToTopicRequest"),
        (":message-type", "INT32", rpc.MessageType.APPLICATION_MESSAGE),
        (":message-flags", "INT32", 0),
        (":stream-id", "INT32", 1),
        ("operation", "STRING", "aws.greengrass#PublishToTopic"),
    ]
    assert session.events[1] == rpc.OperationRequest(
        1,
        "aws.greengrass#PublishToTopic",
        "aws.greengrass#PublishToTopicRequest",
        {"topic": "test/topic", "publishMessage": {"jsonMessage": {"message": {"hello": "world"}}}},
    )


def _subscription(events: int, *, end: bool = False) -> Handler:
    def handler(session: Session, request: rpc.OperationRequest) -> None:
        if request.operation != "aws.greengrass#SubscribeToTopic":
            session.conn.respond(request.stream_id, end_stream=True)
            return
        session.conn.respond(request.stream_id, end_stream=False)
        for n in range(events):
            session.conn.send_event(request.stream_id, EVENT, message_event(n))
        if end:
            session.conn.end_stream(request.stream_id)

    return handler


def test_subscribe_gets_the_response_then_the_pushed_events_and_the_client_closes_the_stream() -> None:
    result, session = run(_subscription(3), "subscribe")
    assert result == {
        "response": "SubscribeToTopicResponse",
        "events": [{"message": n, "topic": "test/topic"} for n in range(3)],
        "after": "PublishToTopicResponse",
    }
    _, _, close, _ = session.wire
    # operation.close(): an empty APPLICATION_MESSAGE flagged TERMINATE_STREAM, the three headers only
    assert headers(close) == [
        (":message-type", "INT32", rpc.MessageType.APPLICATION_MESSAGE),
        (":message-flags", "INT32", rpc.Flag.TERMINATE_STREAM),
        (":stream-id", "INT32", 1),
    ]
    assert close.payload == b""
    assert [type(e) for e in session.events] == [
        rpc.ConnectRequest, rpc.OperationRequest, rpc.StreamClosed, rpc.OperationRequest, rpc.ConnectionClosed
    ]
    assert session.events[2] == rpc.StreamClosed(1, "the client closed the stream")
    assert session.events[3].stream_id == 2  # type: ignore[union-attr]


def test_the_server_ending_a_stream_runs_the_sdks_on_stream_closed() -> None:
    result, session = run(_subscription(1, end=True), "server_ends")
    assert result == {"response": "SubscribeToTopicResponse", "event": {"message": 0, "topic": "test/topic"}, "closed": True}
    assert len(session.wire) == 2  # the SDK sends nothing back for a stream we ended
    assert session.conn.open_streams == {}


def test_an_application_error_becomes_the_sdks_exception_with_the_message() -> None:
    def refuse(session: Session, request: rpc.OperationRequest) -> None:
        session.conn.send_error(request.stream_id, "UnauthorizedError", "not authorized to publish to test/topic")

    result, session = run(refuse, "error")
    assert result == {
        "error": "awsiot.greengrasscoreipc.model.UnauthorizedError",
        "message": "not authorized to publish to test/topic",
        "text": "",  # the message is an attribute, not the exception's text
        "client_error": True,
    }
    assert len(session.wire) == 2  # TERMINATE_STREAM on the error: the SDK need not close the stream itself


def test_resource_not_found_carries_its_resource_fields() -> None:
    def not_found(session: Session, request: rpc.OperationRequest) -> None:
        assert request.body == {"componentName": "Missing", "keyPath": ["a"]}
        session.conn.send_error(
            request.stream_id, "ResourceNotFoundError", "no such key", resourceType="configuration", resourceName="a"
        )

    result, _ = run(not_found, "not_found")
    assert result == {"message": "no such key", "resource_type": "configuration", "resource_name": "a"}


def test_a_one_mib_request_and_a_one_mib_event_pass() -> None:
    seen: list[int] = []

    def handler(session: Session, request: rpc.OperationRequest) -> None:
        if request.operation == "aws.greengrass#PublishToTopic":
            seen.append(len(request.body["publishMessage"]["jsonMessage"]["message"]["blob"]))
            session.conn.respond(request.stream_id, end_stream=True)
        else:
            session.conn.respond(request.stream_id, end_stream=False)
            session.conn.send_event(request.stream_id, EVENT, message_event({"blob": "z" * LARGE}))

    result, _ = run(handler, "large")
    assert seen == [LARGE]
    assert result == {"response": "SubscribeToTopicResponse", "event_length": LARGE}


def test_the_sdk_does_not_answer_a_server_ping() -> None:
    def ping_first(session: Session, request: rpc.OperationRequest) -> None:
        if request.stream_id == 1:
            ping = (
                eventstream.Header.int32(":message-type", rpc.MessageType.PING),
                eventstream.Header.int32(":message-flags", 0),
                eventstream.Header.int32(":stream-id", 0),
            )
            session.write_raw(eventstream.encode_message(ping, b"are you there"))
        session.conn.respond(request.stream_id, end_stream=True)

    result, session = run(ping_first, "two_publishes")
    assert result == {"responses": ["PublishToTopicResponse", "PublishToTopicResponse"]}
    # The PING reached the SDK before the first response, and the second request left after that response:
    # a PING_RESPONSE, had the SDK sent one, would sit between the two requests.
    kinds = [m.header(":message-type", HeaderType.INT32) for m in session.wire]
    assert kinds == [rpc.MessageType.CONNECT, rpc.MessageType.APPLICATION_MESSAGE, rpc.MessageType.APPLICATION_MESSAGE]


def test_a_reply_without_content_type_is_unmapped_data_to_the_sdk() -> None:
    # What the core never sends, written raw: why every reply carries :content-type.
    def bare_reply(session: Session, request: rpc.OperationRequest) -> None:
        bare = (
            eventstream.Header.string("service-model-type", "aws.greengrass#PublishToTopicResponse"),
            eventstream.Header.int32(":message-type", rpc.MessageType.APPLICATION_MESSAGE),
            eventstream.Header.int32(":message-flags", 0),
            eventstream.Header.int32(":stream-id", request.stream_id),
        )
        session.write_raw(eventstream.encode_message(bare, b"{}"))

    result, _ = run(bare_reply, "error")
    assert result["error"] == "awsiot.eventstreamrpc.UnmappedDataError"
    assert "Missing header: :content-type" in result["text"]


def test_ending_a_stream_before_its_response_raises_stream_closed_in_the_sdk() -> None:
    def give_up(session: Session, request: rpc.OperationRequest) -> None:
        session.conn.end_stream(request.stream_id)

    result, session = run(give_up, "error")
    assert result["error"] == "awsiot.eventstreamrpc.StreamClosedError"
    assert len(session.wire) == 2
