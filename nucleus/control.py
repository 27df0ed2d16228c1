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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nucleus.errors import EXIT_USAGE, NotFoundError, NucleusError
from nucleus.lock import ANONYMOUS_HOLDER

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


class BadRequest(NucleusError):
    """A request the daemon cannot read: malformed JSON, a wrong type, a missing field (exit 2)."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"bad request: {problem}")


# What each command's arguments must be: name → (type, required). Types: "str", "str?", "[str]", "int", "bool",
# or a tuple of allowed strings.
ARGUMENTS: dict[str, dict[str, tuple[Any, bool]]] = {
    "deploy": {"paths": ("[str]", True), "recipes": ("[str]", False), "artifacts": ("str?", False),
               "cwd": ("str?", False), "onFailure": (("keep", "rollback"), False)},
    "logs": {"name": ("str", True), "lines": ("int", False), "follow": ("bool", False)},
    "restart": {"name": ("str", True)},
    "stop": {"name": ("str", True)},
    "remove": {"name": ("str", True)},
}


def decode_request(raw: bytes) -> dict[str, Any]:
    """One request line → a checked request; `BadRequest` for anything malformed (never another error)."""
    try:
        request = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(request, dict):
        raise BadRequest("a request is a JSON object")
    if request.get("v") != PROTOCOL_VERSION:
        raise BadRequest(f"unsupported protocol version {request.get('v')!r} (this nucleus speaks {PROTOCOL_VERSION})")
    command = request.get("command")
    if not isinstance(command, str):
        raise BadRequest("no command")
    for name, (kind, required) in ARGUMENTS.get(command, {}).items():
        if name not in request or request[name] is None:
            if required:
                raise BadRequest(f"{command}: {name} is missing")
            continue
        if not _fits(request[name], kind):
            raise BadRequest(f"{command}: {name} must be {_describe(kind)}, not {type(request[name]).__name__}")
    return request


def _fits(value: Any, kind: Any) -> bool:
    if isinstance(kind, tuple):
        return value in kind
    if kind in ("str", "str?"):
        return isinstance(value, str)
    if kind == "[str]":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**9
    return isinstance(value, bool)


def _describe(kind: Any) -> str:
    if isinstance(kind, tuple):
        return " or ".join(repr(k) for k in kind)
    return {"str": "text", "str?": "text", "[str]": "a list of text", "int": "a whole number ≥ 0",
            "bool": "true or false"}[kind]


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
    if not (root / SOCKET_NAME).exists():  # no connection to try
        return False
    try:
        ControlClient(root, timeout=2).close()
    except NotFoundError:
        return False
    return True


STARTING_PATIENCE = 120.0  # a daemon that says it is starting (its sandbox, its restore) may take this long
SERVING_PATIENCE = 5.0  # one that says it serves but does not answer: a few seconds, then a clear error
UNNAMED_PATIENCE = 2.0  # a lock taken an instant ago, its holder's note not written yet


def wait_for_daemon(root: Path, lock_file: Path, note: Callable[[str], None] | None = None) -> bool:
    """Whether a daemon answers on `root` — waiting for one that holds the root's lock but is not serving
    yet. False when nobody holds the root, or a foreground deploy does. A daemon that holds the lock and
    never answers is one clear error, not a wait for ever."""
    import time

    from nucleus.lock import holder_of

    if daemon_running(root):
        return True
    began, told = time.monotonic(), False
    while True:
        holder = holder_of(lock_file)
        if holder is None:
            return daemon_running(root)  # it may have just started serving and released nothing
        unnamed = holder == ANONYMOUS_HOLDER
        if not unnamed and "daemon" not in holder:
            return False  # a foreground deploy
        patience = UNNAMED_PATIENCE if unnamed else STARTING_PATIENCE if "starting" in holder else SERVING_PATIENCE
        if daemon_running(root):
            return True
        waited = time.monotonic() - began
        if waited > patience:
            raise NotFoundError(f"the nucleus on {root} ({holder}) holds the root but does not answer on "
                                f"{root / SOCKET_NAME} after {waited:.0f} s",
                                hint="see logs/nucleus.log; if it is stuck, stop it (SIGTERM) and start it again")
        if note is not None and not told and not unnamed:
            note(f"nucleus: waiting for the nucleus starting on {root} ({holder})")
            told = True
        time.sleep(0.05)
