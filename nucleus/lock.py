"""One nucleus per root: an exclusive lock on `<root>/nucleus.lock`, held for the process's lifetime.

The kernel releases the lock when the process exits, however it exits (even kill -9), so a stale lock file
never blocks the next nucleus.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from nucleus.errors import ConflictError

ANONYMOUS_HOLDER = "another process"  # a holder that has not written its note (yet)


class LockHeld(ConflictError):
    """Another nucleus holds the root."""


class RootLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, purpose: str) -> "RootLock":
        """Take the lock or raise `ConflictError` naming the nucleus that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or ANONYMOUS_HOLDER
            os.close(fd)
            raise LockHeld(f"another nucleus is running on {self.path.parent} ({holder})",
                                hint="wait for it to finish, stop it, or use another --root") from None
        self._fd = fd
        self.note(purpose)
        return self

    def note(self, purpose: str) -> None:
        """Say who holds the root and what it does (`daemon, starting` → `daemon`), for `holder_of`."""
        if self._fd is not None:
            text = f"pid {os.getpid()}, {purpose}\n".encode()
            try:
                os.pwrite(self._fd, text, 0)
                os.ftruncate(self._fd, len(text))
            except OSError:  # a full or read-only disk: the lock holds all the same, unnamed
                pass

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RootLock":
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def holder_of(path: Path) -> str | None:
    """Who holds the lock on `path` now (its note), or None when nobody does."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.read(fd, 200).decode(errors="replace").strip() or ANONYMOUS_HOLDER
    finally:
        os.close(fd)
    return None
