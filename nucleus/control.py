"""The control socket: how `nucleus deploy|list|logs|…` talk to `nucleus start`.

`<root>/nucleus.sock`, a Unix socket that only its owner can use (0600). The protocol is one JSON object
per line. A request is `{"v": 1, "command": NAME, …arguments}`; the daemon answers with any number of
`{"event": …}` lines (progress, log lines) and ends with one `{"done": {"exit": N, "result": …,
"lines": […]}}` line. `lines` are what the CLI prints on stderr (errors), `result` what it prints on stdout.

A Unix socket path is limited to about 107 bytes; a root of any length works because the socket is reached
through a short path: `/proc/self/fd/<fd of the root folder>/nucleus.sock` on Linux, or by changing into
the root folder elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nucleus.errors import EXIT_USAGE, NotFoundError

PROTOCOL_VERSION = 1
SOCKET_NAME = "nucleus.sock"
MAX_DIRECT_PATH = 100  # below the 107-byte limit of sockaddr_un, with room to spare


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":"), sort_keys=True) + "\n").encode()


@contextlib.contextmanager
def short_socket_path(root: Path) -> Iterator[str]:
    """A path to `<root>/nucleus.sock` short enough for bind() and connect()."""
    full = str(root / SOCKET_NAME)
    if len(full.encode()) <= MAX_DIRECT_PATH:
        yield full
        return
    if Path("/proc/self/fd").is_dir():
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield f"/proc/self/fd/{fd}/{SOCKET_NAME}"
        finally:
            os.close(fd)
        return
    previous = os.getcwd()
    os.chdir(root)
    try:
        yield SOCKET_NAME
    finally:
        os.chdir(previous)


def no_daemon(root: Path) -> NotFoundError:
    return NotFoundError(f"no nucleus is running on {root}",
                         hint="start one with `nucleus start` (or deploy in the foreground)")


class ControlClient:
    """A blocking client for one request: connect, send, read the answer line by line."""

    def __init__(self, root: Path, timeout: float | None = None) -> None:
        self.root = root
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            with short_socket_path(root) as path:
                self.sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            self.sock.close()
            raise no_daemon(root) from None
        except PermissionError:
            self.sock.close()
            raise NotFoundError(f"the nucleus on {root} belongs to another user",
                                hint="run the command as that user") from None
        self._file = self.sock.makefile("rb")

    def request(self, command: str, **arguments: Any) -> Iterator[dict[str, Any]]:
        """Send one request; yield every message of the answer, the final `done` one last."""
        self.sock.sendall(encode({"v": PROTOCOL_VERSION, "command": command, **arguments}))
        for raw in self._file:
            message = json.loads(raw)
            yield message
            if "done" in message:
                return
        yield {"done": {"exit": EXIT_USAGE, "lines": [f"the nucleus on {self.root} closed the connection"]}}

    def close(self) -> None:
        self._file.close()
        self.sock.close()

    def __enter__(self) -> "ControlClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def daemon_running(root: Path) -> bool:
    try:
        ControlClient(root, timeout=2).close()
    except NotFoundError:
        return False
    return True
