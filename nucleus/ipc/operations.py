"""The Greengrass IPC operations the nucleus serves: wire names, reply shapes and the errors each may raise.

Pure data, so that a service answers with the shapes the SDK expects. Sources: request, response and
stream event names from awsiotsdk 1.31 ``awsiot/greengrasscoreipc/model.py`` (each ``_<Op>Operation``'s
``_request_type``, ``_response_type``, ``_response_stream_type``); the errors from the Smithy model the SDK
is generated from (awslabs/smithy-iot-device-sdk-greengrass-ipc ``greengrass-ipc-model/main.smithy``,
each ``operation``'s ``errors``) — model.py itself does not list them per operation. The SDK maps an
APPLICATION_ERROR by looking its ``service-model-type`` up among *all* error shapes, so any of
`ERRORS` reaches the component as its class; the lists say what the real nucleus may send for each.

The SDK knows more operations than these (GetSecretValue, the shadow operations, client-device auth,
CancelLocalDeployment, CreateDebugPassword, PutComponentMetric, SubscribeToCertificateUpdates,
SubscribeToIoTCoreConnectionStatus); they belong to other components or are not served yet.
tests/test_ipc_operations.py checks this table against the installed SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

PREFIX = "aws.greengrass#"

# Error shape → who is to blame, as the Smithy model's @error("client"/"server") says (SDK: is_server_error).
ERRORS: MappingProxyType[str, Literal["client", "server"]] = MappingProxyType(
    {
        PREFIX + "UnauthorizedError": "client",
        PREFIX + "ResourceNotFoundError": "client",  # message, resourceType, resourceName
        PREFIX + "ConflictError": "client",
        PREFIX + "ComponentNotFoundError": "client",
        PREFIX + "InvalidRecipeDirectoryPathError": "client",
        PREFIX + "InvalidArtifactsDirectoryPathError": "client",
        PREFIX + "InvalidArgumentsError": "client",
        PREFIX + "FailedUpdateConditionCheckError": "client",
        PREFIX + "InvalidCredentialError": "client",
        PREFIX + "InvalidClientDeviceAuthTokenError": "client",
        PREFIX + "ServiceError": "server",  # message, context
        PREFIX + "InvalidTokenError": "server",
    }
)


@dataclass(frozen=True)
class Operation:
    """One operation's shapes, by their full model names (``aws.greengrass#…``)."""

    name: str  # the `operation` header, e.g. "aws.greengrass#PublishToTopic"
    request: str
    response: str
    event: str | None  # the stream event shape; None for request/response operations
    errors: tuple[str, ...]

    @property
    def streaming(self) -> bool:
        return self.event is not None


def _operation(short: str, event: str | None, errors: str) -> Operation:
    return Operation(
        name=PREFIX + short,
        request=f"{PREFIX}{short}Request",
        response=f"{PREFIX}{short}Response",
        event=PREFIX + event if event else None,
        errors=tuple(PREFIX + error for error in errors.split()),
    )


# short name, stream event shape, errors (in the Smithy model's order)
_TABLE = [
    ("PublishToTopic", None, "ServiceError UnauthorizedError"),
    ("SubscribeToTopic", "SubscriptionResponseMessage", "InvalidArgumentsError ServiceError UnauthorizedError"),
    ("UpdateState", None, "ServiceError ResourceNotFoundError"),
    ("SubscribeToComponentUpdates", "ComponentUpdatePolicyEvents", "ServiceError ResourceNotFoundError"),
    ("DeferComponentUpdate", None, "ServiceError ResourceNotFoundError InvalidArgumentsError"),
    ("PauseComponent", None, "UnauthorizedError ServiceError ResourceNotFoundError"),
    ("ResumeComponent", None, "UnauthorizedError ServiceError ResourceNotFoundError"),
    ("ValidateAuthorizationToken", None, "InvalidTokenError UnauthorizedError ServiceError"),
    ("ListComponents", None, "ServiceError"),
    ("GetComponentDetails", None, "ServiceError ResourceNotFoundError InvalidArgumentsError"),
    ("RestartComponent", None, "ServiceError ComponentNotFoundError InvalidArgumentsError"),
    ("StopComponent", None, "ServiceError ComponentNotFoundError InvalidArgumentsError"),
    (
        "CreateLocalDeployment",
        None,
        "ServiceError InvalidRecipeDirectoryPathError InvalidArtifactsDirectoryPathError InvalidArgumentsError",
    ),
    ("GetLocalDeploymentStatus", None, "ServiceError ResourceNotFoundError"),
    ("ListLocalDeployments", None, "ServiceError"),
    ("GetConfiguration", None, "ServiceError ResourceNotFoundError"),
    (
        "UpdateConfiguration",
        None,
        "ServiceError UnauthorizedError ConflictError FailedUpdateConditionCheckError InvalidArgumentsError",
    ),
    ("SubscribeToConfigurationUpdate", "ConfigurationUpdateEvents", "ServiceError ResourceNotFoundError"),
    ("SubscribeToValidateConfigurationUpdates", "ValidateConfigurationUpdateEvents", "ServiceError"),
    ("SendConfigurationValidityReport", None, "InvalidArgumentsError ServiceError"),
    ("PublishToIoTCore", None, "ServiceError UnauthorizedError"),
    ("SubscribeToIoTCore", "IoTCoreMessage", "ServiceError UnauthorizedError"),
]

# The `operation` header value → its shapes.
OPERATIONS: MappingProxyType[str, Operation] = MappingProxyType(
    {op.name: op for op in (_operation(*row) for row in _TABLE)}
)


def short_name(operation: str) -> str:
    """``aws.greengrass#PublishToTopic`` → ``PublishToTopic`` (names without the prefix pass through)."""
    return operation.removeprefix(PREFIX)
