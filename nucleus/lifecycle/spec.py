"""What the kernel needs to run one component, all recipe variables already rendered; and its token."""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any, NamedTuple

from nucleus.recipe.model import Lifecycle

_TOKEN_ALPHABET = string.ascii_letters + string.digits


def new_token() -> str:
    """A component's SVCUID: 16 random letters and digits, each equally likely.

    From `os.urandom` directly (bytes ≥ 248 are dropped so that `% 62` has no bias): `secrets` would load
    OpenSSL, megabytes of memory for sixteen characters.
    """
    chars: list[str] = []
    while len(chars) < 16:
        chars += [_TOKEN_ALPHABET[byte % 62] for byte in os.urandom(32) if byte < 248]
    return "".join(chars[:16])


class ComponentSpec(NamedTuple):
    """One component as the kernel runs it."""

    name: str
    version: str
    lifecycle: Lifecycle = Lifecycle()
    hard_dependencies: tuple[str, ...] = ()
    soft_dependencies: tuple[str, ...] = ()
    work_dir: Path = Path(".")
    digest: str = ""  # recipe + artifacts: a changed digest means reinstall
    builtin: bool = False
    configuration: Any = {}  # the component's configuration (its recipe's DefaultConfiguration for now)
    bootstrapped: bool = False  # its bootstrap step already ran for this version and digest
