"""Text → plain values, remembering where every node was written.

Both loaders return a `Document`: the values as plain dicts, lists and scalars, plus a table from each
node's path (a tuple of keys and list indexes) to its 1-based line and column. Messages can then point at
the exact place in the file without the rest of the code carrying positions around.

YAML is read as Greengrass reads it: an unquoted `2020-01-25` stays the string it looks like, and a key
given twice in one mapping is an error (PyYAML would silently keep the last). JSON is strict JSON, parsed
by its own small reader — never by the YAML parser, which would accept trailing commas and comments.
"""

from __future__ import annotations

import bisect
import json
import re
from typing import Any

NodePath = tuple[Any, ...]  # of str (mapping keys) and int (list indexes)
MAX_DEPTH = 200  # nesting deeper than any recipe needs; beyond it, an error instead of a recursion crash
Mark = tuple[int, int]  # (line, column), both 1-based


class Document:
    """A parsed file: plain values plus where each node was written."""

    def __init__(self, source: str, data: Any, marks: dict[NodePath, Mark] | None = None) -> None:
        self.source = source
        self.data = data
        self.marks: dict[NodePath, Mark] = marks if marks is not None else {}
        # YAML scalars that resolved to a non-string (`1.0`, `1`, `true`) keep their text here, so a field
        # that must be a string can use what the user wrote instead of Python's rendering of it.
        self.texts: dict[NodePath, str] = {}

    def mark(self, path: NodePath) -> Mark:
        """The position of `path`, or of its nearest written ancestor."""
        path = tuple(path)
        while path not in self.marks and path:
            path = path[:-1]
        return self.marks.get(path, (1, 1))


class LoadError(Exception):
    """The text is not well-formed YAML or JSON; carries the place and the reason."""

    def __init__(self, source: str, line: int, column: int, message: str, hint: str) -> None:
        super().__init__(message)
        self.source, self.line, self.column, self.message, self.hint = source, line, column, message, hint

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}: {self.message} — {self.hint}"


def parse_document(text: str, source: str, fmt: str) -> Document:
    """Parse `text` as `fmt` ("json" or "yaml"); raises `LoadError`."""
    if fmt == "json":
        return _JsonReader(text, source).read()
    return _read_yaml(text, source)


def format_of(path: str) -> str:
    """JSON for `.json` files, YAML for everything else (`.yaml`, `.yml`, no extension)."""
    return "json" if path.lower().endswith(".json") else "yaml"


# --------------------------------------------------------------------------------------------- YAML


def _yaml_loader_class() -> type:
    """A safe loader (libyaml's when present) that keeps timestamps as strings, built on first use."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class GreengrassLoader(base):  # type: ignore[misc, valid-type]
        pass

    GreengrassLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    return GreengrassLoader


_LOADER: type | None = None


def _read_yaml(text: str, source: str) -> Document:
    global _LOADER
    import yaml

    if _LOADER is None:
        _LOADER = _yaml_loader_class()
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        doc = Document(source, None, {(): (1, 1)})
        if node is not None:
            doc.marks[()] = _node_mark(node)
            doc.data = _YamlBuilder(loader, doc).build(node, ())
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "not valid YAML"
        lines = text.splitlines() or [""]
        if line > len(lines):  # the end of the file: point at the end of its last line
            line, column = len(lines), len(lines[-1]) + 1
        at = lines[line - 1][column - 1:column]
        hint = "YAML indents with spaces, not tabs" if at == "\t" else _yaml_hint(problem)
        raise LoadError(source, line, column, f"invalid YAML: {problem}", hint) from None
    except yaml.YAMLError as exc:
        raise LoadError(source, 1, 1, f"invalid YAML: {exc}", "check the file is YAML") from None
    finally:
        loader.dispose()


def _yaml_hint(problem: str) -> str:
    if "mapping values are not allowed" in problem:
        return "this line has a second 'key: value' after a key: put it on its own line, indented, or quote it"
    return "check the indentation, the colons and the quoting on this line and the one above"


def _node_mark(node: Any) -> Mark:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _YamlBuilder:
    """Turns a composed node tree into plain values, recording marks and rejecting duplicate keys."""

    MAX_NODES = 200_000  # aliases can multiply a small file into a huge tree ("billion laughs")

    def __init__(self, loader: Any, doc: Document) -> None:
        self.loader, self.doc = loader, doc
        self._active: set[int] = set()  # nodes on the current path: an alias back to one is a cycle
        self._count = 0
        self._built: set[int] = set()  # nodes built once: meeting one again means an alias expanded it
        self._aliased = False

    def build(self, node: Any, path: NodePath) -> Any:
        import yaml

        self._count += 1
        if id(node) in self._active:
            line, column = _node_mark(node)
            raise LoadError(self.doc.source, line, column, "an alias refers to itself",
                            "write the values out instead of using anchors and aliases here")
        if id(node) in self._built:
            self._aliased = True
        self._built.add(id(node))
        if self._count > self.MAX_NODES:
            line, column = _node_mark(node)
            if self._aliased:
                raise LoadError(self.doc.source, line, column,
                                f"aliases expand the file to more than {self.MAX_NODES:,} values",
                                "write the values out instead of using anchors and aliases here")
            raise LoadError(self.doc.source, line, column, f"the file holds more than {self.MAX_NODES:,} values "
                            "(mappings, lists and scalars): more than a recipe or config may have",
                            "split it, or remove what it repeats")
        if len(path) > MAX_DEPTH:
            line, column = _node_mark(node)
            raise LoadError(self.doc.source, line, column, f"values are nested more than {MAX_DEPTH} deep",
                            "flatten the structure")
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            self._active.add(id(node))
            try:
                return self._collection(node, path)
            finally:
                self._active.discard(id(node))
        try:
            value = self.loader.construct_object(node, deep=True)
        except (ValueError, TypeError, OverflowError) as exc:  # `!!int abc`, `!!timestamp 2020-13-45`
            line, column = _node_mark(node)
            raise LoadError(self.doc.source, line, column, f"invalid YAML: {node.value!r} cannot be read as "
                            f"{node.tag.rsplit(':', 1)[-1]} ({exc})", "remove the tag, or quote the value") from None
        if not isinstance(value, str) and value is not None:
            self.doc.texts[path] = node.value
        return value

    def _collection(self, node: Any, path: NodePath) -> Any:
        import yaml

        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, child in enumerate(node.value):
                self.doc.marks[path + (index,)] = _node_mark(child)
                items.append(self.build(child, path + (index,)))
            return items

    def _mapping(self, node: Any, path: NodePath) -> dict[str, Any]:
        import yaml

        result: dict[str, Any] = {}
        seen: dict[str, Mark] = {}
        for key_node, value_node in self._merged_pairs(node):
            if not isinstance(key_node, yaml.ScalarNode):
                line, column = _node_mark(key_node)
                raise LoadError(self.doc.source, line, column, "a key must be a plain name, not a list or a mapping",
                                "write the key as text")
            key = str(key_node.value)
            mark = _node_mark(key_node)
            if key in seen:
                raise LoadError(
                    self.doc.source, mark[0], mark[1],
                    f"the key '{key}' is given twice (first on line {seen[key][0]}, again on line {mark[0]})",
                    "keep one of them",
                )
            seen[key] = mark
            self.doc.marks[path + (key,)] = mark
            result[key] = self.build(value_node, path + (key,))
        return result

    @staticmethod
    def _merged_pairs(node: Any) -> list[tuple[Any, Any]]:
        """The mapping's pairs with YAML merge keys (`<<: *base`) expanded; explicit keys win."""
        import yaml

        pairs, merged = [], []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        merged.extend(_YamlBuilder._merged_pairs(source))
            else:
                pairs.append((key_node, value_node))
        explicit = {k.value for k, _ in pairs if isinstance(k, yaml.ScalarNode)}
        inherited, seen = [], set()
        for key_node, value_node in merged:
            if key_node.value not in explicit and key_node.value not in seen:
                seen.add(key_node.value)
                inherited.append((key_node, value_node))
        return inherited + pairs


# --------------------------------------------------------------------------------------------- JSON

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_LITERALS = {"true": True, "false": False, "null": None}


class _JsonReader:
    """A strict JSON reader (RFC 8259) that records the position of every key and item."""

    def __init__(self, text: str, source: str) -> None:
        self.text, self.source, self.pos = text, source, 0
        self.doc = Document(source, None, {(): (1, 1)})
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def read(self) -> Document:
        if self.text.startswith("\ufeff"):
            self.pos = 1
        self._skip()
        if self.pos >= len(self.text):
            self._fail("the file is empty", "a recipe is a JSON object: { \"RecipeFormatVersion\": … }")
        self.doc.marks[()] = self._mark(self.pos)
        self.doc.data = self._value(())
        self._skip()
        if self.pos < len(self.text):
            self._fail("unexpected text after the end of the JSON document", "remove it")
        return self.doc

    def _mark(self, pos: int) -> Mark:
        line = bisect.bisect_right(self._line_starts, pos)
        return (line, pos - self._line_starts[line - 1] + 1)

    def _fail(self, message: str, hint: str, pos: int | None = None) -> None:
        line, column = self._mark(self.pos if pos is None else pos)
        raise LoadError(self.source, line, column, f"invalid JSON: {message}", hint)

    def _skip(self) -> None:
        self.pos = _WHITESPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def _value(self, path: NodePath) -> Any:
        text, pos = self.text, self.pos
        if pos >= len(text):
            self._fail("the document ends too early", "close every { and [ that is opened")
        if len(path) > MAX_DEPTH:
            self._fail(f"values are nested more than {MAX_DEPTH} deep", "flatten the structure")
        char = text[pos]
        if char == "{":
            return self._object(path)
        if char == "[":
            return self._array(path)
        if char == '"':
            return self._string()
        number = _NUMBER.match(text, pos)
        if number and number.end() > pos:
            self.pos = number.end()
            raw = number.group()
            self.doc.texts[path] = raw
            return float(raw) if number.group(1) or number.group(2) else int(raw)
        for word, value in _LITERALS.items():
            if text.startswith(word, pos):
                self.pos += len(word)
                if value is not None:
                    self.doc.texts[path] = word
                return value
        self._unexpected("expected a value: a string, number, object, array, true, false or null")

    def _unexpected(self, expected: str) -> None:
        """Fail at the current character, naming the usual culprits: comments, single quotes, the end."""
        char = self.text[self.pos] if self.pos < len(self.text) else ""
        if not char:
            self._fail("the document ends too early", "close every { and [ that is opened")
        if char in "/#":
            self._fail("comments are not allowed in JSON", "remove the comment (or write the recipe in YAML)")
        if char == "'":
            self._fail("strings must use double quotes", "replace the single quotes with double quotes")
        self._fail(f"unexpected character {char!r}", expected)

    def _string(self) -> str:
        try:
            value: str
            value, self.pos = json.decoder.scanstring(self.text, self.pos + 1, True)  # type: ignore[attr-defined]
        except json.JSONDecodeError as exc:
            self._fail(exc.msg.lower(), "close the string with a double quote and escape control characters",
                       exc.pos)
        return value

    def _object(self, path: NodePath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        seen: dict[str, Mark] = {}
        self.pos += 1
        self._skip()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return result
        while True:
            self._skip()
            if not self.text.startswith('"', self.pos):
                if self.text.startswith("}", self.pos):
                    self._fail("trailing comma before '}'", "remove the last comma")
                self._unexpected("expected a property name in double quotes: \"Key\": value")
            mark = self._mark(self.pos)
            key = self._string()
            if key in seen:
                self._fail(f"the key \"{key}\" is given twice (first on line {seen[key][0]}, again on line "
                           f"{mark[0]})", "keep one of them", self.pos - len(key) - 2)
            seen[key] = mark
            self.doc.marks[path + (key,)] = mark
            self._skip()
            if not self.text.startswith(":", self.pos):
                self._unexpected("expected ':' after the property name: \"Key\": value")
            self.pos += 1
            self._skip()
            result[key] = self._value(path + (key,))
            self._skip()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            if self.text.startswith("}", self.pos):
                self.pos += 1
                return result
            self._unexpected("expected ',' or '}' after a property value: separate properties with commas "
                             "and close the object with }")

    def _array(self, path: NodePath) -> list[Any]:
        items: list[Any] = []
        self.pos += 1
        self._skip()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return items
        while True:
            self._skip()
            if self.text.startswith("]", self.pos):
                self._fail("trailing comma before ']'", "remove the last comma")
            index = len(items)
            self.doc.marks[path + (index,)] = self._mark(self.pos)
            items.append(self._value(path + (index,)))
            self._skip()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            if self.text.startswith("]", self.pos):
                self.pos += 1
                return items
            self._unexpected("expected ',' or ']' after an array item: separate items with commas and close "
                             "the array with ]")
