"""Log files: `logs/<Name>.log` (one line per output line) and `logs/nucleus.log` (every transition).

A component line reads `2026-11-26T04:39:02.123Z INFO [run] the text`: time (UTC), level (stdout INFO,
stderr WARN), the step, the text. Files rotate by size (`<Name>.log.1` … `.N`), as Greengrass's
`logging.fileSizeKB` asks. Nucleus lines are an event name plus `key=value` pairs, easy to grep.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

Echo = Callable[[str], None]
FailureReport = Callable[[Path, int, str], None]  # (file, writes lost since the last report, the error)
REPORT_INTERVAL = 60.0  # failed writes are reported at most once a minute (the first one at once)


def timestamp(now: float | None = None) -> str:
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class RotatingFile:
    """An append-only text file that rolls over to `.1`, `.2`… when it passes `max_bytes`.

    `files` counts every file kept, the current one included. A write that fails (a full disk, a file
    made read-only) never raises: it is counted, and `on_failure` hears of the count at most once a minute
    — a log must not bring down what it logs, nor flood the terminal with one error per line.
    """

    def __init__(self, path: Path, max_bytes: int, files: int, on_failure: FailureReport | None = None) -> None:
        self.path, self.max_bytes, self.backups = path, max_bytes, max(files - 1, 1)
        self._stream: TextIO | None = None
        self._size = 0
        self._on_failure = on_failure
        self._lost = 0  # writes failed since the last report
        self._reported_at: float | None = None
        self._last_error = ""

    def _open(self) -> TextIO:
        if self._stream is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = open(self.path, "a", encoding="utf-8", buffering=1)
            self._size = self._stream.tell()
        return self._stream

    def write(self, line: str) -> None:
        try:
            stream = self._open()
            stream.write(line)
            self._size += len(line)
            if self._size >= self.max_bytes:
                self._rotate()
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        self._lost += 1
        self._last_error = exc.strerror or str(exc)
        if self._stream is not None:  # reopen next time: the disk may have room again
            try:
                self._stream.close()
            except OSError:
                pass
            self._stream = None
        now = time.monotonic()
        if self._reported_at is None or now - self._reported_at >= REPORT_INTERVAL:
            self._report(now)

    def _report(self, now: float) -> None:
        lost, self._lost, self._reported_at = self._lost, 0, now
        if self._on_failure is not None and lost:
            self._on_failure(self.path, lost, self._last_error)

    def _rotate(self) -> None:
        self.close()
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def close(self) -> None:
        if self._lost:
            self._report(time.monotonic())
        if self._stream is not None:
            try:
                self._stream.close()
            except OSError:
                pass
            self._stream = None


class ComponentLog:
    """One component's log file, and (in a foreground deploy) its lines on the terminal."""

    def __init__(self, name: str, path: Path, max_bytes: int, files: int, echo: Echo | None,
                 on_failure: FailureReport | None = None) -> None:
        self.name = name
        self.path = path
        self._file = RotatingFile(path, max_bytes, files, on_failure)
        self._echo = echo
        self.followers: set[Echo] = set()  # `nucleus logs -f` clients, given each line as written

    def _write(self, line: str) -> None:
        self._file.write(line + "\n")
        for follower in list(self.followers):
            follower(line)

    def line(self, step: str, level: str, text: str) -> None:
        self._write(f"{timestamp()} {level} [{step}] {text}")
        if self._echo is not None:
            self._echo(f"{self.name} | {text}")

    def event(self, text: str) -> None:
        """A lifecycle event (a state change), in the component's own log too."""
        self._write(f"{timestamp()} INFO [lifecycle] {text}")

    def close(self) -> None:
        self._file.close()


class NucleusLog:
    """`logs/nucleus.log`: events as `name key=value …`; optionally mirrored to a stream (stderr)."""

    def __init__(self, path: Path, max_bytes: int, files: int, mirror: Echo | None = None) -> None:
        self._file = RotatingFile(path, max_bytes, files, self._own_failure)
        self._mirror = mirror

    @staticmethod
    def _own_failure(path: Path, lost: int, error: str) -> None:
        """The nucleus's own log cannot be written: say so on stderr (once a minute at most)."""
        import sys

        try:
            print(f"nucleus: cannot write {path} ({error}); {lost} line(s) lost", file=sys.stderr, flush=True)
        except OSError:
            pass

    def write_failed(self, path: Path, lost: int, error: str) -> None:
        """A component's log could not be written: one event here (once a minute at most per file)."""
        self.event("log-write-failed", level="ERROR", file=path, lost=lost, error=error)

    def event(self, name: str, level: str = "INFO", **fields: object) -> None:
        pairs = " ".join(f"{key}={_quote(value)}" for key, value in fields.items() if value is not None)
        line = f"{timestamp()} {level} {name} {pairs}".rstrip()
        self._file.write(line + "\n")
        if self._mirror is not None:
            self._mirror(line)

    def close(self) -> None:
        self._file.close()


def tail(path: Path, count: int) -> list[str]:
    """The last `count` lines of a log, reaching into its rotated predecessor (`.1`) when needed."""
    found: list[str] = []
    for candidate in (path, path.with_name(path.name + ".1")):
        if len(found) >= count or not candidate.exists():
            break
        found = _last_lines(candidate, count - len(found)) + found
    return found


def _last_lines(path: Path, count: int) -> list[str]:
    """Read backwards in blocks: a long log is not read whole to show its end."""
    with open(path, "rb") as stream:
        stream.seek(0, os.SEEK_END)
        position, data = stream.tell(), b""
        while position > 0 and data.count(b"\n") <= count:
            step = min(65536, position)
            position -= step
            stream.seek(position)
            data = stream.read(step) + data
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-count:] if count else []


def _quote(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text
