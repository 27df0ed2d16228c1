"""Component configuration: the pure core of the configuration store.

A timestamped tree per component (`tree`), written by classic's rules (`merge`), the deployment's
RESET → DefaultConfiguration → MERGE computation (`deployment`), the key paths a subscriber is told
about (`changes`), GetConfiguration/UpdateConfiguration semantics (`operations`), and the text of
`{configuration:/pointer}` (`render`). No I/O and no clock: every time is a parameter, in ms.

The persisted store, the IPC handlers and the deployment wiring build on this; they decide where trees
live, not what they mean. Each module's docstring names the classic source it follows.
"""

from nucleus.configuration.changes import KeyPath, changes
from nucleus.configuration.deployment import (
    DEFAULT_TIMESTAMP,
    ConfigurationUpdate,
    apply_configuration,
    check_reset,
    deploy_configuration,
    reset,
    resolve_configuration,
)
from nucleus.configuration.errors import ConfigurationError
from nucleus.configuration.merge import Behaviour, merge, remove, replace
from nucleus.configuration.operations import (
    CONDITION_FAILED,
    RESTRICTED_KEYS,
    UpdateResult,
    get_configuration,
    update_configuration,
)
from nucleus.configuration.pointer import format_pointer, is_index_token, parse_pointer, resolve
from nucleus.configuration.render import interpolation_text, java_double, render_value
from nucleus.configuration.tree import (
    HIDDEN_PREFIX,
    Branch,
    Leaf,
    Node,
    empty,
    find,
    from_json,
    leaves,
    read,
    read_pointer,
    same_content,
    to_json,
    to_json_map,
)
from nucleus.configuration.values import (
    MAX_DEPTH,
    Json,
    JsonMap,
    checked,
    checked_map,
    configuration_problems,
    fold,
    same_value,
)

__all__ = [
    "CONDITION_FAILED", "DEFAULT_TIMESTAMP", "HIDDEN_PREFIX", "MAX_DEPTH", "RESTRICTED_KEYS",
    "Behaviour", "Branch", "ConfigurationError", "ConfigurationUpdate", "Json", "JsonMap", "KeyPath", "Leaf",
    "Node", "UpdateResult",
    "apply_configuration", "changes", "check_reset", "checked", "checked_map", "configuration_problems",
    "deploy_configuration", "empty", "find", "fold", "format_pointer", "from_json", "get_configuration",
    "interpolation_text", "is_index_token", "java_double", "leaves", "merge", "parse_pointer", "read",
    "read_pointer", "remove", "render_value", "replace", "reset", "resolve", "resolve_configuration",
    "same_content", "same_value", "to_json", "to_json_map", "update_configuration",
]
