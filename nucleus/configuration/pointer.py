"""RFC 6901 JSON pointers: `/a/b~1c/0` ⇄ `("a", "b/c", "0")`, and lookups in plain JSON.

Stricter than classic on purpose: classic compiles pointers with Jackson, which keeps a `~` that is not
followed by `0` or `1` as a literal; here that is an error naming the pointer, because such a pointer is
almost always a typo and RFC 6901 calls it invalid.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from nucleus.configuration.errors import ConfigurationError

_BAD_ESCAPE = re.compile(r"~(?![01])")
_INT_MAX = 2**31 - 1


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """The reference tokens of `pointer`; `""` is the whole document, `"/"` the key `""`."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ConfigurationError("a JSON pointer is empty or starts with '/'", pointer=pointer,
                                 code="invalid-pointer", hint=f"write '/{pointer}'")
    if _BAD_ESCAPE.search(pointer):
        raise ConfigurationError("'~' must be followed by 0 or 1", pointer=pointer, code="invalid-pointer",
                                 hint="write ~0 for '~' and ~1 for '/' (RFC 6901)")
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/"))


def format_pointer(path: Iterable[str | int]) -> str:
    """The pointer for a key path; list positions may be given as ints."""
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in path)


def is_index_token(token: str) -> bool:
    """Whether `token` could select a list element, by Jackson's rule (`JsonPointer.mayMatchElement`).

    Classic refuses to RESET any pointer with such a token, even where the data holds a map with that key
    (KernelConfigResolver.pointsToArrayElement), so the same pointer is valid or not whatever the device holds.
    """
    if not token or len(token) > 10 or not token.isascii() or not token.isdigit():
        return False
    if token.startswith("0"):
        return token == "0"
    return int(token) <= _INT_MAX


def resolve(document: object, tokens: Sequence[str]) -> tuple[bool, object]:
    """(True, value) at `tokens` inside plain JSON, else (False, None); keys match exactly, as Jackson's `at`."""
    value = document
    for token in tokens:
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and is_index_token(token) and int(token) < len(value):
            value = value[int(token)]
        else:
            return False, None
    return True, value
