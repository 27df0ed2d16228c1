"""A component's configuration after a deployment, computed in classic's order.

Classic does it in two steps, and so do we:

1. `resolve_configuration` (classic `componentmanager/KernelConfigResolver.resolveConfigurationToApply`):
   copy the running configuration with its timestamps; remove every RESET pointer (`""` empties it);
   merge the recipe's DefaultConfiguration as of time 1 (`Topic.DEFAULT_VALUE_TIMESTAMP`), so it fills
   only what is missing; merge MERGE as of the deployment's time. The result is plain JSON.
2. `apply_configuration` (classic `deployment/activator/DeploymentActivator`: `configuration` is REPLACEd
   as of the deployment's time): keys the result lacks are removed, and every leaf takes the deployment's
   time unless it is newer — including defaults, which therefore stop being "defaults": a later recipe
   version's different default does not reach a key that is already there; RESET it to get the new one.

What follows from that, as in classic: keys that an older DefaultConfiguration had and the new one
lacks stay until RESET; a leaf written after the deployment's time (IPC UpdateConfiguration) survives
the deployment, even a RESET of it; keys starting with `_` do not survive (they are memory-only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nucleus.configuration.errors import ConfigurationError
from nucleus.configuration.merge import merge, remove, replace
from nucleus.configuration.pointer import format_pointer, is_index_token, parse_pointer
from nucleus.configuration.tree import Branch, empty, to_json_map
from nucleus.configuration.values import JsonMap, checked_map

DEFAULT_TIMESTAMP = 1  # classic Topic.DEFAULT_VALUE_TIMESTAMP: "defaults come from the dawn of time"


@dataclass(frozen=True)
class ConfigurationUpdate:
    """A deployment's `configurationUpdate` for one component: RESET pointers, then a MERGE map."""

    merge: Mapping[str, object] | None = None
    reset: tuple[str, ...] = ()


def check_reset(pointers: Sequence[str]) -> list[tuple[str, ...]]:
    """The key paths of RESET pointers, or a ConfigurationError naming the first bad one.

    Every pointer is checked, even after a `""` (which classic stops at), so that a document is valid
    or not on its own, whatever the device holds.
    """
    paths = []
    for pointer in pointers:
        tokens = parse_pointer(pointer)
        for depth, token in enumerate(tokens):
            if is_index_token(token):
                parent = format_pointer(tokens[:depth])
                raise ConfigurationError(f"RESET cannot reset a list element, and {token!r} may be a list index",
                                         pointer=pointer, code="reset-list-element",
                                         hint=f"reset the whole list instead ('{parent}')")
        paths.append(tokens)
    return paths


def reset(tree: Branch, pointers: Sequence[str]) -> Branch:
    """`tree` without the nodes RESET names (case-insensitively); `""` removes everything."""
    for path in check_reset(pointers):
        tree = remove(tree, path)
        if not path:
            break
    return tree


def resolve_configuration(running: Branch | None, defaults: Mapping[str, object] | None,
                          update: ConfigurationUpdate | None, timestamp: int) -> JsonMap:
    """Step 1: the configuration to apply, as plain JSON (`timestamp` is the deployment's, in ms)."""
    tree = running if running is not None else empty()
    if update is not None:
        tree = reset(tree, update.reset)
    tree = merge(tree, (), checked_map(defaults or {}, what="DefaultConfiguration"), DEFAULT_TIMESTAMP)
    if update is not None and update.merge is not None:
        tree = merge(tree, (), checked_map(update.merge, what="MERGE"), timestamp)
    return to_json_map(tree)


def apply_configuration(running: Branch | None, resolved: Mapping[str, object], timestamp: int) -> Branch:
    """Step 2: the running tree made to hold `resolved`, as of the deployment's `timestamp`."""
    return replace(running if running is not None else empty(timestamp), resolved, timestamp)


def deploy_configuration(running: Branch | None, defaults: Mapping[str, object] | None,
                         update: ConfigurationUpdate | None, timestamp: int) -> Branch:
    """Both steps: the component's configuration tree once the deployment is applied."""
    return apply_configuration(running, resolve_configuration(running, defaults, update, timestamp), timestamp)
