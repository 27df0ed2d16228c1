"""A Greengrass component's side of the IPC tests: the unmodified SDK client, one scenario per run.

Run by tests/ipc_harness.py with AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT and SVCUID set, as
a nucleus starts a component. Prints one JSON object: what the SDK returned, raised or called back.
The waits below are sanity bounds against a hang, never timings.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from typing import Any

from awsiot.greengrasscoreipc import model
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

WAIT = 30.0
LARGE = 1024 * 1024


def _publish(client: GreengrassCoreIPCClientV2, message: Any) -> Any:
    return client.publish_to_topic(
        topic="test/topic", publish_message=model.PublishMessage(json_message=model.JsonMessage(message=message))
    )


def connect() -> dict[str, Any]:
    client = GreengrassCoreIPCClientV2()
    client.close()
    return {"connected": True}


def refused() -> dict[str, Any]:
    try:
        GreengrassCoreIPCClientV2()
    except Exception as error:  # noqa: BLE001 - what the SDK raises is the point
        return {"error": f"{type(error).__module__}.{type(error).__name__}", "args": [str(a) for a in error.args]}
    return {"error": None}


def publish() -> dict[str, Any]:
    client = GreengrassCoreIPCClientV2()
    response = _publish(client, {"hello": "world"})
    client.close()
    return {"response": type(response).__name__}


def two_publishes() -> dict[str, Any]:
    client = GreengrassCoreIPCClientV2()
    first = _publish(client, {"n": 1})
    second = _publish(client, {"n": 2})
    client.close()
    return {"responses": [type(first).__name__, type(second).__name__]}


def error() -> dict[str, Any]:
    client = GreengrassCoreIPCClientV2()
    try:
        _publish(client, {"x": 1})
    except Exception as raised:  # noqa: BLE001
        result = {
            "error": f"{type(raised).__module__}.{type(raised).__name__}",
            "message": getattr(raised, "message", None),
            "text": str(raised),
            "client_error": raised.is_client_error() if hasattr(raised, "is_client_error") else None,
        }
    else:
        result = {"error": None}
    client.close()
    return result


def not_found() -> dict[str, Any]:
    client = GreengrassCoreIPCClientV2()
    try:
        client.get_configuration(component_name="Missing", key_path=["a"])
    except model.ResourceNotFoundError as raised:
        result = {"message": raised.message, "resource_type": raised.resource_type, "resource_name": raised.resource_name}
    client.close()
    return result


def _subscribe(client: GreengrassCoreIPCClientV2) -> tuple[Any, Any, queue.Queue[Any], threading.Event]:
    events: queue.Queue[Any] = queue.Queue()
    closed = threading.Event()
    response, operation = client.subscribe_to_topic(
        topic="test/topic",
        on_stream_event=events.put,
        on_stream_error=lambda error: events.put(error) or True,
        on_stream_closed=closed.set,
    )
    return response, operation, events, closed


def _message_of(event: Any) -> Any:
    if isinstance(event, Exception):
        return {"error": type(event).__name__}
    return {"message": event.json_message.message, "topic": event.json_message.context.topic}


def subscribe() -> dict[str, Any]:
    client = GreengrassCoreIPCClientV2()
    response, operation, events, _ = _subscribe(client)
    received = [_message_of(events.get(timeout=WAIT)) for _ in range(3)]
    operation.close().result(WAIT)  # the client ends the stream
    # a request after the close proves the connection is still good, and orders the close before it
    after = _publish(client, {"after": "close"})
    client.close()
    return {"response": type(response).__name__, "events": received, "after": type(after).__name__}


def server_ends() -> dict[str, Any]:
    client = GreengrassCoreIPCClientV2()
    response, _, events, closed = _subscribe(client)
    first = _message_of(events.get(timeout=WAIT))
    ended = closed.wait(WAIT)
    client.close()
    return {"response": type(response).__name__, "event": first, "closed": ended}


def large() -> dict[str, Any]:
    client = GreengrassCoreIPCClientV2()
    _publish(client, {"blob": "x" * LARGE})
    response, _, events, _ = _subscribe(client)
    event = events.get(timeout=WAIT)
    client.close()
    return {"response": type(response).__name__, "event_length": len(event.json_message.message["blob"])}


SCENARIOS = {f.__name__: f for f in (connect, refused, publish, two_publishes, error, not_found, subscribe, server_ends, large)}

if __name__ == "__main__":
    print(json.dumps(SCENARIOS[sys.argv[1]]()), flush=True)
