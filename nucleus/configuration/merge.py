"""Writing into a configuration tree with timestamps, by classic's rules.

Classic (`config/Topics.java` `updateFromMap`/`updateChild`, `Topic.java` `withNewerValue`):
- A map merges key by key into a map; any other value (a list too) replaces.
- The timestamp is checked **per leaf**: a leaf whose time is newer than the update keeps its value and
  the rest of the update still applies. An equal value with a newer time only moves the time forward.
- A change of shape — a map where a leaf was, or a leaf where a map was — replaces the old node whatever
  its timestamp: classic removes it without a check.
- MERGE keeps keys the update does not name; REPLACE (what a deployment uses for a component's whole
  configuration, `deployment/activator/DeploymentActivator.java`) removes them, with no timestamp check.
- A map's own time settles as classic's `Topics.childChanged` leaves it once its publish queue has run:
  for each change beneath it, the changed (or removed) node's time if that is newer, else the newest
  of its remaining children. A new map starts at the update's time (classic: the wall clock).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from nucleus.configuration.tree import Branch, Leaf, Node
from nucleus.configuration.values import Json, JsonMap, checked_map, fold, same_value


class Behaviour(enum.Enum):
    MERGE = "merge"  # keys the update leaves out stay
    REPLACE = "replace"  # keys the update leaves out go


def merge(tree: Branch, path: Sequence[str], value: object, timestamp: int) -> Branch:
    """`tree` with `value` merged at key `path` as of `timestamp` (ms); raises ConfigurationError if invalid.

    Missing maps on the path are created; a leaf on the path is replaced by a map (a change of shape).
    """
    nested = value
    for key in reversed(path):
        nested = {key: nested}
    return _update(tree, checked_map(nested), Behaviour.MERGE, timestamp)[0]


def replace(tree: Branch, value: Mapping[str, object], timestamp: int) -> Branch:
    """`tree` made to hold exactly `value`, except leaves newer than `timestamp`, which keep their value."""
    return _update(tree, checked_map(value), Behaviour.REPLACE, timestamp)[0]


def remove(tree: Branch, path: Sequence[str], timestamp: int | None = None) -> Branch:
    """`tree` without the node at `path` (nothing to do if there is none).

    With a timestamp, a node newer than it stays (classic `Node.remove(long)`); without, it goes
    (classic `Node.remove()`, which RESET uses). `()` empties the whole tree.
    """
    if not path:
        return _update(tree, {}, Behaviour.REPLACE, timestamp or 0)[0]
    return _remove(tree, path, timestamp)[0]


def _update(branch: Branch, mapping: JsonMap, behaviour: Behaviour, ts: int) -> tuple[Branch, list[Node]]:
    """The branch after the update, and the nodes that changed under it in classic's event order."""
    children = dict(branch.children)
    events: list[Node] = []
    named: set[str] = set()
    for key, value in mapping.items():
        folded = fold(key)
        named.add(folded)
        old = children.get(folded)
        new: Node
        if isinstance(value, dict):
            if isinstance(old, Branch):
                new, below = _update(old, value, behaviour, ts)
            else:
                if old is not None:
                    events.append(old)  # the leaf is removed: childRemoved
                new, below = _update(Branch(key, ts, {}), value, behaviour, ts)
                events.append(new)  # interiorAdded, seen with its settled time
            events.extend(below)
        else:
            if isinstance(old, Leaf):
                new = _write(old, value, ts)
            else:
                if old is not None:
                    events.append(old)  # the map is removed: childRemoved
                new = _write(Leaf(key, None, 0), value, ts)  # classic creates the leaf at time 0
            if new is not old:
                events.append(new)
        children[folded] = new
    if behaviour is Behaviour.REPLACE:
        for folded in [k for k in children if k not in named]:
            events.append(children.pop(folded))
    if not events:
        return branch, []
    return Branch(branch.name, _settle(branch.modtime, events, children), children), events


def _write(leaf: Leaf, value: Json, ts: int) -> Leaf:
    """classic `withNewerValue(ts, value, allowTimestampToDecrease=false, allowTimestampToIncrease…=true)`."""
    if ts < leaf.modtime:
        return leaf  # refused: the leaf is newer than the update
    if ts == leaf.modtime and same_value(value, leaf.value):
        return leaf
    return Leaf(leaf.name, value, ts)


def _remove(branch: Branch, path: Sequence[str], ts: int | None) -> tuple[Branch, list[Node]]:
    folded = fold(path[0])
    node = branch.children.get(folded)
    if node is None:
        return branch, []
    children = dict(branch.children)
    if len(path) == 1:
        if ts is not None and ts < node.modtime:
            return branch, []
        del children[folded]
        removed: Node = node if ts is None else _stamped(node, ts)
        events = [removed]
    else:
        if not isinstance(node, Branch):
            return branch, []
        changed, events = _remove(node, path[1:], ts)
        if not events:
            return branch, []
        children[folded] = changed
    return Branch(branch.name, _settle(branch.modtime, events, children), children), events


def _stamped(node: Node, ts: int) -> Node:
    return Leaf(node.name, node.value, ts) if isinstance(node, Leaf) else Branch(node.name, ts, node.children)


def _settle(modtime: int, events: list[Node], children: Mapping[str, Node]) -> int:
    """classic `Topics.childChanged`, applied once per event against the final children."""
    newest = max((c.modtime for c in children.values()), default=None)
    for node in events:
        if node.modtime > modtime or newest is None:
            modtime = node.modtime
        else:
            modtime = newest
    return modtime
