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


def format_size(count: float) -> str:
    """Bytes as a person reads them: `512 bytes`, `3.2 MiB`."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


class DiskFullError(FailedError):
    """The disk (or the user's quota) is full: the environment's fault, exit 1."""


def disk_error(exc: OSError, path: object = None) -> NucleusError | None:
    """The one line for an `OSError` that is the disk's fault — full, over quota, read-only — naming the path
    (the error's own, else `path`) and the free space there; None for any other error (the caller reports
    those itself)."""
    import errno

    target = exc.filename2 or exc.filename or path  # a copy's or a rename's error is about its destination
    where = f" while writing {target}" if target else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"no space left on the device{where} ({_free_near(target)} free there)",
                             hint="free some disk space, then try again")
    if exc.errno == errno.EROFS:
        return NucleusError(f"{target or 'the nucleus root'} is on a read-only file system",
                            hint="make the nucleus root writable, or use another --root")
    return None


def _free_near(target: object) -> str:
    """The free space on the file system of `target` (its nearest existing folder)."""
    import os
    import shutil

    folder = os.fspath(target) if isinstance(target, (str, os.PathLike)) else ""
    while folder and not os.path.isdir(folder):
        parent = os.path.dirname(folder)
        folder = "" if parent == folder else parent
    try:
        return format_size(shutil.disk_usage(folder).free) if folder else "unknown space"
    except OSError:
        return "unknown space"
