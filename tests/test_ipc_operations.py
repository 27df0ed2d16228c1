"""nucleus.ipc.operations against the installed SDK's own model (awsiot.greengrasscoreipc.model)."""

from __future__ import annotations

import inspect

import nucleus.ipc
from awsiot import eventstreamrpc
from awsiot.greengrasscoreipc import model
from nucleus.ipc.operations import ERRORS, OPERATIONS, short_name

SDK_OPERATIONS = {
    cls._model_name(): cls
    for _, cls in inspect.getmembers(model, inspect.isclass)
    if issubclass(cls, eventstreamrpc.ClientOperation) and cls is not eventstreamrpc.ClientOperation
}
SDK_ERRORS = {
    cls._model_name(): cls
    for _, cls in inspect.getmembers(model, inspect.isclass)
    if issubclass(cls, model.GreengrassCoreIPCError) and cls is not model.GreengrassCoreIPCError
}

ASKED_FOR = """PublishToTopic SubscribeToTopic UpdateState SubscribeToComponentUpdates DeferComponentUpdate PauseComponent
ResumeComponent ValidateAuthorizationToken ListComponents GetComponentDetails RestartComponent StopComponent
CreateLocalDeployment GetLocalDeploymentStatus ListLocalDeployments GetConfiguration UpdateConfiguration
SubscribeToConfigurationUpdate SubscribeToValidateConfigurationUpdates SendConfigurationValidityReport
PublishToIoTCore SubscribeToIoTCore""".split()


def test_the_table_covers_the_operations_the_nucleus_serves() -> None:
    assert sorted(short_name(name) for name in OPERATIONS) == sorted(ASKED_FOR)


def test_every_shape_name_is_the_sdks() -> None:
    for name, op in OPERATIONS.items():
        sdk = SDK_OPERATIONS[name]
        assert op.request == sdk._request_type()._model_name(), name
        assert op.response == sdk._response_type()._model_name(), name
        stream = sdk._response_stream_type()
        assert op.event == (stream._model_name() if stream else None), name
        assert op.streaming is (stream is not None)


def test_every_error_is_an_sdk_error_shape_of_the_right_kind() -> None:
    assert set(ERRORS) == set(SDK_ERRORS)
    for name, kind in ERRORS.items():
        assert SDK_ERRORS[name]()._get_error_type_string() == kind, name
    for op in OPERATIONS.values():
        assert op.errors and set(op.errors) <= set(ERRORS), op.name
        assert "aws.greengrass#ServiceError" in op.errors, op.name  # every one may fail on the server side


def test_the_package_surface() -> None:
    assert sorted(nucleus.ipc.__all__) == sorted([
        "ERRORS", "MAX_MESSAGE_SIZE", "OPERATIONS", "ConnectRequest", "Connection", "ConnectionClosed", "Decoder",
        "Event", "Flag", "FramingError", "Header", "HeaderType", "LocalProtocolError", "Message", "MessageType",
        "Operation", "OperationRequest", "ProtocolViolation", "RequestRejected", "State", "StreamClosed",
        "decode_message", "encode_message",
    ])
