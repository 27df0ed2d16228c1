"""GetConfiguration and UpdateConfiguration on one component's tree, as classic answers them.

Classic: `builtin/services/configstore/ConfigStoreIPCEventStreamAgent.java`. The IPC layer turns
ConfigurationError into the IPC error (`not-found` → ResourceNotFoundError, the rest → InvalidArgumentsError)
and `UpdateResult.failed_condition_check` into FailedUpdateConditionCheckError with `CONDITION_FAILED`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nucleus.configuration.errors import ConfigurationError
from nucleus.configuration.merge import merge
from nucleus.configuration.pointer import format_pointer
from nucleus.configuration.tree import Branch, Leaf, find, to_json
from nucleus.configuration.values import Json, checked_map, fold
from nucleus.errors import Kind

RESTRICTED_KEYS = ("accessControl",)  # classic: UpdateConfiguration may not touch these top-level keys
CONDITION_FAILED = "Proposed timestamp is older than the config's latest modified timestamp"


def get_configuration(tree: Branch, key_path: Sequence[str]) -> Json:
    """GetConfiguration's `value`: a map for a map, `{name: value}` for a leaf (classic wraps leaves)."""
    node = find(tree, key_path)
    if node is None:
        raise ConfigurationError("Key not found", pointer=format_pointer(key_path), code="not-found",
                                 kind=Kind.NOT_FOUND)
    if isinstance(node, Leaf):
        return {node.name: to_json(node)}
    return to_json(node)


@dataclass(frozen=True)
class UpdateResult:
    """The tree after an UpdateConfiguration, and whether classic answers FailedUpdateConditionCheckError.

    Classic applies the merge first — per leaf, so leaves newer than the request keep their values and the
    others change — and only then compares: the error says the node at `keyPath` is now newer than the
    request (a refused leaf, or any newer leaf under it). The changes it did make stay.
    """

    tree: Branch
    failed_condition_check: bool


def update_configuration(tree: Branch, key_path: Sequence[str], value_to_merge: object, timestamp: int,
                         now: int) -> UpdateResult:
    """UpdateConfiguration `{keyPath, valueToMerge, timestamp}` (ms) on the caller's own tree.

    Where `keyPath` does not exist yet, classic creates it and merges as of `now`, ignoring the request's
    timestamp; where it names a leaf, the leaf becomes the map `valueToMerge` whatever its time.
    """
    if value_to_merge is None:
        raise ConfigurationError("ValueToMerge is required", pointer=format_pointer(key_path),
                                 code="invalid-value")
    value = checked_map(value_to_merge, key_path, "valueToMerge")
    top = [key_path[0]] if key_path else list(value)
    restricted = {fold(key) for key in RESTRICTED_KEYS}
    if any(fold(key) in restricted for key in top):  # classic compares exactly; `AccessControl` slipped by
        fields = ", ".join(RESTRICTED_KEYS)
        raise ConfigurationError(f"Config update is not allowed for following fields [{fields}]",
                                 pointer=format_pointer(key_path), code="restricted-key")
    used = timestamp
    if find(tree, key_path) is None:
        for depth in range(len(key_path)):
            if isinstance(find(tree, key_path[:depth]), Leaf):
                raise ConfigurationError("this is a value, not a map, so it cannot hold keys",
                                         pointer=format_pointer(key_path[:depth]), code="not-a-map",
                                         hint="update the key that holds it instead")
        used = now
    tree = merge(tree, key_path, value, used)
    node = find(tree, key_path)
    assert node is not None
    return UpdateResult(tree, used < node.modtime)
