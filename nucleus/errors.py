"""One exception family for everything a user can get wrong or that can go wrong.

Each error knows its kind, and the kind alone decides the exit code (see `EXIT_CODES`). `str()` of an
error is what the user reads: one line (or a few, for a recipe with several problems), never a traceback.
Foreign exceptions (yaml, OSError, sqlite3, requests) are translated into these once, where they arise.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence


class Kind(enum.Enum):
    """Who is to blame, which decides the exit code."""

    INVALID = "invalid"  # bad input: a recipe, a config, a flag
    NOT_FOUND = "not-found"  # a missing file, component or nucleus
    CONFLICT = "conflict"  # versions that cannot be satisfied, a lock held by another nucleus
    FAILED = "failed"  # the work itself failed: a component BROKEN, a deployment failed
    INTERNAL = "internal"  # a bug in the nucleus


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

EXIT_CODES = {
    Kind.INVALID: EXIT_USAGE,
    Kind.NOT_FOUND: EXIT_USAGE,
    Kind.CONFLICT: EXIT_USAGE,
    Kind.FAILED: EXIT_FAILED,
    Kind.INTERNAL: EXIT_INTERNAL,
}


class NucleusError(Exception):
    """A problem the user can read and act on: where it is, what is wrong, how to fix it."""

    kind: Kind = Kind.INVALID

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        hint: str | None = None,
        kind: Kind | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint
        if kind is not None:
            self.kind = kind

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.kind]

    def lines(self) -> list[str]:
        """The user-facing lines; most errors have exactly one."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" — {self.hint}"
        return [text]

    def __str__(self) -> str:
        return "\n".join(self.lines())


class NotFoundError(NucleusError):
    """A file, component, or running nucleus that is not there."""

    kind = Kind.NOT_FOUND


class ConflictError(NucleusError):
    """Something is in the way: a lock held by another nucleus, a version conflict."""

    kind = Kind.CONFLICT


class FailedError(NucleusError):
    """The work itself failed (a component BROKEN, a deployment failed): exit 1."""

    kind = Kind.FAILED


class MultiError(NucleusError):
    """Several user-facing lines that belong together (a recipe's diagnostics, a resolution failure)."""

    def __init__(self, lines: Iterable[str], *, kind: Kind | None = None) -> None:
        self._lines = list(lines)
        super().__init__(self._lines[0] if self._lines else "", kind=kind)

    def lines(self) -> list[str]:
        return list(self._lines)


class ResolutionError(MultiError):
    """No set of versions satisfies every requirement, a component is missing, or there is a cycle."""

    kind = Kind.CONFLICT

    def __init__(self, lines: Sequence[str], *, reason: str = "conflict") -> None:
        super().__init__(lines)
        self.reason = reason  # "conflict", "missing", "cycle", "too-deep"
