"""Greengrass component IPC: the event-stream RPC protocol the AWS IoT Device SDK speaks, as pure cores.

`eventstream` frames bytes into messages and back; `rpc` is one server-side connection (bytes in →
events; calls → bytes out) with the SDK's rules written into its docstring; `operations` lists each
operation's reply, event and error shapes. No sockets here: the edge feeds them.
"""

from nucleus.ipc.eventstream import (
    MAX_MESSAGE_SIZE,
    Decoder,
    FramingError,
    Header,
    HeaderType,
    Message,
    decode_message,
    encode_message,
)
from nucleus.ipc.operations import ERRORS, OPERATIONS, Operation
from nucleus.ipc.rpc import (
    ConnectionClosed,
    ConnectRequest,
    Connection,
    Event,
    Flag,
    LocalProtocolError,
    MessageType,
    OperationRequest,
    ProtocolViolation,
    RequestRejected,
    State,
    StreamClosed,
)

__all__ = [
    "ERRORS",
    "MAX_MESSAGE_SIZE",
    "OPERATIONS",
    "ConnectRequest",
    "Connection",
    "ConnectionClosed",
    "Decoder",
    "Event",
    "Flag",
    "FramingError",
    "Header",
    "HeaderType",
    "LocalProtocolError",
    "Message",
    "MessageType",
    "Operation",
    "OperationRequest",
    "ProtocolViolation",
    "RequestRejected",
    "State",
    "StreamClosed",
    "decode_message",
    "encode_message",
]
