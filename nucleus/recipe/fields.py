"""The typed fields of a lifecycle step — Timeout, RequiresPrivilege, Skipif — and the text each accepts.

One set of rules, applied twice: when a recipe is read, and again at plan time to a value that held a
recipe variable (`Timeout: "{configuration:/startupTimeoutSeconds}"`, as AWS's own components write it),
once the variable is substituted. Greengrass also substitutes first and types after, but it types
leniently (`Coerce.toInt("abc")` is a timeout of 0, `Coerce.toBoolean("abc")` is false); nucleus refuses a
value that is not clearly meant, with the reason, as it does for a value written directly.

Pure: values in, (value, problem) out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

MAX_TIMEOUT = 2**31 - 1  # Greengrass reads Timeout as a Java int
SKIPIF_PATTERN = re.compile(r"^(!?)\s*(onpath|exists)\s+(\S.*)$", re.IGNORECASE)

# Each problem reads after the value in quotes: `'ninety' is not a positive whole number of seconds`.
NOT_SECONDS = "is not a positive whole number of seconds"
TOO_MANY_SECONDS = "seconds is more than Greengrass allows"
NOT_A_FLAG = "is not true or false"
NOT_A_CHECK = "is not a check Greengrass knows"
HINTS = {
    NOT_SECONDS: "write the number of seconds, e.g. Timeout: 300",
    TOO_MANY_SECONDS: f"use at most {MAX_TIMEOUT} (about 68 years), or leave Timeout out",
    NOT_A_FLAG: "write RequiresPrivilege: true",
    NOT_A_CHECK: "use 'onpath <program>' or 'exists <file>', optionally with '!' in front",
}
# What a field needs, for a value that came out of a substitution.
AFTER_SUBSTITUTION = {
    NOT_SECONDS: "a positive whole number of seconds, e.g. 300",
    TOO_MANY_SECONDS: f"at most {MAX_TIMEOUT} seconds",
    NOT_A_FLAG: "true or false",
    NOT_A_CHECK: "'onpath <program>' or 'exists <path>', optionally with '!' in front",
}


def timeout_seconds(value: Any) -> tuple[int | None, str]:
    """(seconds, "") for `300`, `300.0` or `"300"`; (None, the problem) for anything else."""
    number: float | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\.0*)?\s*", value):
        number = float(value)
    if number is None or not math.isfinite(number) or number != int(number) or number <= 0:
        return None, NOT_SECONDS
    if number > MAX_TIMEOUT:
        return None, TOO_MANY_SECONDS
    return int(number), ""


def privilege_flag(value: Any) -> tuple[bool | None, str]:
    """(flag, "") for a boolean or `"true"`/`"false"` in any case; (None, the problem) otherwise."""
    if isinstance(value, bool):
        return value, ""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true", ""
    return None, NOT_A_FLAG


def skipif_check(value: Any) -> tuple[str | None, str]:
    """(the check without surrounding blanks, "") for `onpath <program>` / `exists <path>`, maybe `!`-ed."""
    if isinstance(value, str) and SKIPIF_PATTERN.match(value.strip()):
        return value.strip(), ""
    return None, NOT_A_CHECK


# model attribute → (the recipe's key, its rule)
TYPED: dict[str, tuple[str, Callable[[Any], tuple[Any, str]]]] = {
    "timeout": ("Timeout", timeout_seconds),
    "requires_privilege": ("RequiresPrivilege", privilege_flag),
    "skipif": ("Skipif", skipif_check),
}
