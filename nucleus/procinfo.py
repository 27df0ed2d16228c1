"""Facts about processes that survive a crash of the nucleus: the boot id and a process's start time.

A process id alone can be reused; (boot id, pid, start time) names one process for ever, so the nucleus can
end what a killed predecessor left behind without ever signalling a stranger.
"""

from __future__ import annotations

from pathlib import Path


def boot_id() -> str:
    """This boot's id (Linux); empty elsewhere, which disables matching by start time."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


HAVE_PROC = Path("/proc/self/stat").exists()


def status(pid: int) -> tuple[str, float] | None:
    """(state letter, start time in clock ticks since boot) from `/proc/<pid>/stat`; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            stat = stream.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()
    return fields[0].decode(), float(fields[19])  # fields 3 and 22 of stat(5), counted after the name


def start_time(pid: int) -> float | None:
    """When `pid` started (clock ticks since boot on Linux), or None if it is gone."""
    if HAVE_PROC:
        found = status(pid)
        return found[1] if found else None
    return _psutil_start_time(pid)


def _psutil_start_time(pid: int) -> float | None:
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:  # noqa: BLE001 - any failure means we cannot vouch for the process
        return None
