"""Which key paths changed between two trees, as SubscribeToConfigurationUpdate reports them.

Classic (`builtin/services/configstore/ConfigStoreIPCEventStreamAgent.handleConfigNodeUpdate`) sends one
event per node event it sees, and drops `initialized`, `timestampUpdated` and `interiorAdded`. So:
- a leaf added, or whose value changed (1 → 1.0 is a change, as `Objects.equals` sees it): its path;
- a node removed, leaf or whole map: the removed node's path only, not its descendants;
- a map replaced by a leaf, or a leaf by a map: the path (removed), then the new map's leaves;
- a new map is never reported itself, only the leaves under it — so a new empty map is not reported;
- a newer timestamp with the same value is not a change.
Paths use the keys' stored spelling and come depth first, old keys before new ones, without repeats.
"""

from __future__ import annotations

from nucleus.configuration.tree import Branch, Leaf, Node
from nucleus.configuration.values import same_value

KeyPath = tuple[str, ...]


def changes(old: Branch, new: Branch) -> list[KeyPath]:
    """The changed key paths from `old` to `new` (relative to the trees' roots)."""
    found: list[KeyPath] = []
    _diff(old, new, (), found)
    unique: dict[KeyPath, None] = dict.fromkeys(found)  # a map replaced by a leaf shows up twice
    return list(unique)


def _diff(old: Branch, new: Branch, prefix: KeyPath, found: list[KeyPath]) -> None:
    if old is new:
        return
    for key, before in old.children.items():
        after = new.children.get(key)
        if after is None:
            found.append((*prefix, before.name))
        else:
            _node(before, after, prefix, found)
    for key, after in new.children.items():
        if key not in old.children:
            _added(after, prefix, found)


def _node(before: Node, after: Node, prefix: KeyPath, found: list[KeyPath]) -> None:
    if isinstance(before, Branch) and isinstance(after, Branch):
        _diff(before, after, (*prefix, after.name), found)
    elif isinstance(before, Leaf) and isinstance(after, Leaf):
        if not same_value(before.value, after.value):
            found.append((*prefix, after.name))
    else:
        found.append((*prefix, before.name))  # removed, whichever shape it had
        _added(after, prefix, found)


def _added(node: Node, prefix: KeyPath, found: list[KeyPath]) -> None:
    path = (*prefix, node.name)
    if isinstance(node, Leaf):
        found.append(path)
    else:
        for child in node.children.values():
            _added(child, path, found)
