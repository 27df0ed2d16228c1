"""What a configuration may hold, and when two values are the same.

A configuration is JSON: maps with string keys, lists, strings, numbers (finite), booleans and null.
Keys of the configuration's own maps are case-insensitive, as in classic (`config/Topics.java` keys its
children by `CaseInsensitiveString`): `Port` and `port` name one node, whose spelling is the first one
written. Two keys of one map that differ only in case would silently overwrite each other there, so they
are refused. Maps inside lists are plain values (classic stores a list as one leaf) and keep exact keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Union

from nucleus.configuration.errors import ConfigurationError
from nucleus.configuration.pointer import format_pointer

Json = Union[None, bool, int, float, str, list["Json"], dict[str, "Json"]]
JsonMap = dict[str, Json]

MAX_DEPTH = 100  # far beyond any real configuration; keeps every recursive walk well inside Python's stack


def fold(key: str) -> str:
    """The case-insensitive identity of a key (classic `CaseInsensitiveString`: `toLowerCase()`)."""
    return key.lower()


def same_value(a: Json, b: Json) -> bool:
    """Equality as classic's `Objects.equals` sees it: 1, 1.0 and true differ; so do 0.0 and -0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, float):
        assert isinstance(b, float)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return a == b


def configuration_problems(value: object, path: Sequence[str | int] = (), *,
                           in_list: bool = False) -> list[ConfigurationError]:
    """Every reason `value` cannot be stored at `path`, each naming its pointer."""
    problems: list[ConfigurationError] = []
    _check(value, list(path), in_list, problems)
    return problems


def checked(value: object, path: Sequence[str | int] = ()) -> Json:
    """`value` as plain JSON (fresh dicts and lists the caller cannot mutate under us), or the first problem."""
    problems = configuration_problems(value, path)
    if problems:
        raise problems[0]
    return _plain(value)


def checked_map(value: object, path: Sequence[str | int] = (), what: str = "a configuration") -> JsonMap:
    """Like `checked`, for a value that must be a map (a MERGE, a DefaultConfiguration, an IPC valueToMerge)."""
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{what} must be a map, not {_kind(value)}", pointer=format_pointer(path),
                                 code="not-a-map")
    result = checked(value, path)
    assert isinstance(result, dict)
    return result


def _check(value: object, path: list[str | int], in_list: bool, problems: list[ConfigurationError]) -> None:
    def problem(message: str, code: str, hint: str | None = None) -> None:
        problems.append(ConfigurationError(message, pointer=format_pointer(path), code=code, hint=hint))

    if len(path) > MAX_DEPTH:
        problem(f"nested deeper than {MAX_DEPTH} levels", "too-deep")
    elif value is None or isinstance(value, (bool, int)):
        pass
    elif isinstance(value, float):
        if not math.isfinite(value):
            problem(f"{value!r} is not a JSON number", "invalid-value")
    elif isinstance(value, str):
        if not _is_unicode(value):
            problem("the text is not valid Unicode (it holds a lone surrogate)", "invalid-value")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check(item, [*path, index], True, problems)
    elif isinstance(value, Mapping):
        seen: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                problem(f"the key {key!r} is {_kind(key)}, not a string", "invalid-key",
                        "quote it in YAML or JSON")
                continue
            if not _is_unicode(key):
                problem(f"the key {key!r} is not valid Unicode", "invalid-key")
                continue
            if not in_list:
                other = seen.setdefault(fold(key), key)
                if other != key:
                    problems.append(ConfigurationError(
                        f"the keys {other!r} and {key!r} differ only in case",
                        pointer=format_pointer([*path, key]), code="duplicate-key",
                        hint="configuration keys are case-insensitive in Greengrass; keep one"))
                    continue
            _check(item, [*path, key], in_list, problems)
    else:
        problem(f"{_kind(value)} is not a JSON value", "invalid-value",
                "use a map, list, string, number, boolean or null")


def _plain(value: object) -> Json:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    assert value is None
    return None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(value: object) -> str:
    names = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string",
             list: "a list", tuple: "a list", dict: "a map"}
    return names.get(type(value), f"a value of type {type(value).__name__}")
