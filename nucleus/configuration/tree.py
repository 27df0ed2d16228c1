"""The configuration tree: immutable maps of timestamped nodes, read by key path or JSON pointer.

Shaped like classic's `config/Topics.java` (a map node) and `Topic.java` (a leaf): a leaf holds any JSON
value other than a map — lists are leaves — and every node carries a modification time in milliseconds.
Nodes are frozen; every change (see `merge.py`) returns a new tree sharing the untouched parts, so the old
and the new tree can be compared (`changes.py`) and a snapshot costs nothing.

Keys are case-insensitive and keep the first spelling (`values.fold`). Keys starting with `_` are
memory-only in classic: `Topics.toPOJO` leaves them out, so `to_json` does too unless asked, and
classic's transaction log never writes them (`config/README.md`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Union, cast

from nucleus.configuration.errors import ConfigurationError
from nucleus.configuration.pointer import format_pointer, parse_pointer, resolve
from nucleus.configuration.values import Json, JsonMap, checked_map, fold, same_value
from nucleus.errors import Kind

HIDDEN_PREFIX = "_"


@dataclass(frozen=True, slots=True, eq=False)
class Leaf:
    """A value that is not a map (lists included), with the time it was last written."""

    name: str
    value: Json
    modtime: int


@dataclass(frozen=True, slots=True, eq=False)
class Branch:
    """A map node. `children` is keyed by the folded key and never mutated after construction."""

    name: str
    modtime: int
    children: Mapping[str, Node] = field(default_factory=dict)

    def child(self, key: str) -> Node | None:
        return self.children.get(fold(key))


Node = Union[Leaf, Branch]


def empty(modtime: int = 0) -> Branch:
    """A configuration with nothing in it."""
    return Branch("", modtime, {})


def from_json(value: Mapping[str, object], modtime: int) -> Branch:
    """A tree holding `value`, every node written at `modtime` (raises ConfigurationError if invalid)."""
    return _build("", checked_map(value), modtime)


def _build(name: str, mapping: JsonMap, modtime: int) -> Branch:
    children: dict[str, Node] = {}
    for key, value in mapping.items():
        children[fold(key)] = _build(key, value, modtime) if isinstance(value, dict) else Leaf(key, value, modtime)
    return Branch(name, modtime, children)


def to_json(node: Node, *, include_hidden: bool = False) -> Json:
    """Plain JSON for a node, as classic's `toPOJO`: keys in case-insensitive order, `_`-keys left out."""
    if isinstance(node, Leaf):
        return _copy(node.value)
    result: JsonMap = {}
    for child in sorted(node.children.values(), key=lambda c: java_case_insensitive_key(c.name)):
        if include_hidden or not child.name.startswith(HIDDEN_PREFIX):
            result[child.name] = to_json(child, include_hidden=include_hidden)
    return result


def to_json_map(tree: Branch, *, include_hidden: bool = False) -> JsonMap:
    """`to_json` of a branch, typed as the map it always is."""
    result = to_json(tree, include_hidden=include_hidden)
    assert isinstance(result, dict)
    return result


def _copy(value: Json) -> Json:
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def find(tree: Branch, path: Sequence[str]) -> Node | None:
    """The node at a key path (case-insensitive), or None; `()` is the tree itself."""
    node: Node = tree
    for key in path:
        if not isinstance(node, Branch):
            return None
        found = node.child(key)
        if found is None:
            return None
        node = found
    return node


def read(tree: Branch, path: Sequence[str]) -> Json:
    """The JSON value at a key path; a missing key is a not-found ConfigurationError naming it."""
    node = find(tree, path)
    if node is None:
        raise _not_found(format_pointer(path))
    return to_json(node)


def read_pointer(tree: Branch, pointer: str) -> Json:
    """The JSON value at an RFC 6901 pointer. Map keys of the tree match case-insensitively; past a
    leaf the pointer continues into its value (list positions, maps inside lists) with exact keys."""
    tokens = parse_pointer(pointer)
    node: Node = tree
    for depth, token in enumerate(tokens):
        if isinstance(node, Leaf):
            found, value = resolve(node.value, tokens[depth:])
            if not found:
                raise _not_found(pointer)
            return _copy(cast(Json, value))  # part of a Json value
        child = node.child(token)
        if child is None:
            raise _not_found(pointer)
        node = child
    return to_json(node)


def leaves(tree: Branch, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Leaf]]:
    """Every leaf with its key path, depth first."""
    for child in tree.children.values():
        path = (*prefix, child.name)
        if isinstance(child, Leaf):
            yield path, child
        else:
            yield from leaves(child, path)


def same_content(a: Node, b: Node) -> bool:
    """Whether two nodes hold the same JSON, ignoring timestamps and the spelling of keys."""
    if isinstance(a, Leaf) or isinstance(b, Leaf):
        return isinstance(a, Leaf) and isinstance(b, Leaf) and same_value(a.value, b.value)
    if a.children.keys() != b.children.keys():
        return False
    return all(same_content(child, b.children[key]) for key, child in a.children.items())


def java_case_insensitive_key(text: str) -> tuple[int, ...]:
    """A sort key equal to Java's `String.CASE_INSENSITIVE_ORDER` (per UTF-16 unit: upper-, then lower-case)."""
    units = text.encode("utf-16-be", "surrogatepass")
    key = []
    for i in range(0, len(units), 2):
        unit = chr(int.from_bytes(units[i:i + 2], "big"))
        upper = unit.upper()
        upper = upper if len(upper) == 1 else unit  # Java maps one char to one char ('ß' stays 'ß')
        lower = upper.lower()
        key.append(ord(lower if len(lower) == 1 else upper))
    return tuple(key)


def _not_found(pointer: str) -> ConfigurationError:
    return ConfigurationError("no such key", pointer=pointer, code="not-found", kind=Kind.NOT_FOUND)
