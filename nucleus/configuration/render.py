"""A configuration value as text for `{configuration:/pointer}`, exactly as classic prints it.

Classic (`componentmanager/KernelConfigResolver.lookupConfigurationValueForComponent`) turns the resolved
configuration into a Jackson tree (`MAPPER.convertValue(config, JsonNode.class).at(pointer)`, jackson-databind
2.16) and prints a value node with `asText()` and a map or list with `toString()`. Each rule below says
where it comes from.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Mapping

from nucleus.configuration.pointer import parse_pointer, resolve
from nucleus.configuration.tree import HIDDEN_PREFIX, java_case_insensitive_key

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def render_value(value: object, *, in_list: bool = False) -> str:
    """The text classic substitutes for `value`.

    - text: as is (`TextNode.asText`); null: `null` (`NullNode.asText`); booleans: `true`/`false`.
    - integers: all their digits, however large (`IntNode`/`LongNode`/`BigIntegerNode`): 10000000000.
    - other numbers: Java's `Double.toString` (`DoubleNode.asText`): 1.0, 1.0E20, 1.0E7, 1.0E-4, 0.001, -0.0.
    - maps and lists: compact JSON (`JsonNode.toString`), numbers printed as above, text escaped as
      Jackson's generator does — `"` `\\` and \\b \\t \\n \\f \\r short, other controls `\\u00XX` in
      upper-case hex, `/` and everything non-ASCII left as is (ESCAPE_NON_ASCII is off by default).
    - key order: the configuration's own maps come from `Topics.toPOJO`, a TreeMap in
      `String.CASE_INSENSITIVE_ORDER`, which Jackson keeps (`MapSerializer._orderEntries` leaves a SortedMap
      alone); maps inside lists are plain maps, which `ORDER_MAP_ENTRIES_BY_KEYS` sorts by UTF-16 code
      units. Pass `in_list=True` for a value reached through a list (the pointer went through a list).
    - keys starting with `_` are not in the configuration's own maps (`toPOJO` leaves them out); inside
      lists they stay.
    """
    if isinstance(value, str):
        return value
    return _json(value, not in_list)


def interpolation_text(configuration: Mapping[str, object], pointer: str) -> str | None:
    """The text for `{configuration:<pointer>}` in a component whose configuration is `configuration`
    (plain JSON), or None where the pointer finds nothing (classic leaves the placeholder as written).

    Keys match exactly, as Jackson's `at` does — the case-insensitivity of the tree stops at `toPOJO`.
    Raises ConfigurationError for a malformed pointer (classic's Jackson throws too, failing the deployment).
    """
    value: object = configuration
    in_list = False
    for token in parse_pointer(pointer):
        if isinstance(value, list):
            in_list = True
        elif isinstance(value, dict) and not in_list and token.startswith(HIDDEN_PREFIX):
            return None  # toPOJO left it out
        found, value = resolve(value, (token,))
        if not found:
            return None
    return render_value(value, in_list=in_list)


def java_double(number: float) -> str:
    """Java's `Double.toString` (JDK 19+; older JDKs print a few rare values with extra digits).

    Shortest digits that read back as the same double — when one digit would do, the closer of the one- or
    two-digit forms (so 5e-324 is 4.9E-324) — in plain notation for 10^-3 ≤ |x| < 10^7, else d.dddEn.
    """
    if number == 0:
        return "-0.0" if math.copysign(1.0, number) < 0 else "0.0"
    sign = "-" if number < 0 else ""
    digits, point = _shortest(abs(number))
    exponent = point - 1
    if -3 <= exponent < 7:
        if point <= 0:
            text = "0." + "0" * -point + digits
        elif point >= len(digits):
            text = digits + "0" * (point - len(digits)) + ".0"
        else:
            text = digits[:point] + "." + digits[point:]
    else:
        text = f"{digits[0]}.{digits[1:] or '0'}E{exponent}"
    return sign + text


def _shortest(number: float) -> tuple[str, int]:
    """(significant digits, point) with number == 0.<digits> × 10^point, shortest that round-trips."""
    mantissa, _, exp = repr(number).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    stripped = all_digits.lstrip("0")
    point = len(whole) + int(exp or 0) - (len(all_digits) - len(stripped))
    digits = stripped.rstrip("0") or "0"
    if len(digits) == 1:  # JDK 19+: with one digit, the closest of the 1- and 2-digit decimals
        exact = decimal.Decimal(number)
        adjusted = exact.adjusted()
        two = exact.scaleb(-adjusted).quantize(decimal.Decimal("0.1"), decimal.ROUND_HALF_EVEN)
        if two < 10 and float(two.scaleb(adjusted)) == number:
            return str(two).replace(".", "").rstrip("0") or "0", adjusted + 1
    return digits, point


def _json(value: object, tree_map: bool) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_json(item, False) for item in value) + "]"
    if isinstance(value, Mapping):
        keys = [k for k in value if not (tree_map and k.startswith(HIDDEN_PREFIX))]
        keys.sort(key=java_case_insensitive_key if tree_map else _utf16)
        return "{" + ",".join(_quote(k) + ":" + _json(value[k], tree_map) for k in keys) + "}"
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _quote(text: str) -> str:
    out = ['"']
    for char in text:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif char < " ":
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")
