"""One nucleus per root: an exclusive lock on `<root>/nucleus.lock`, held for the process's lifetime.

The kernel releases the lock when the process exits, however it exits (even kill -9), so a stale lock file
never blocks the next nucleus.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from nucleus.errors import ConflictError


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
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise ConflictError(f"another nucleus is running on {self.path.parent} ({holder})",
                                hint="wait for it to finish, stop it, or use another --root") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {purpose}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
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
        return os.read(fd, 200).decode(errors="replace").strip() or "another process"
    finally:
        os.close(fd)
    return None
