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


def start_time(pid: int) -> float | None:
    """When `pid` started, in clock ticks since boot (Linux `/proc`), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return _psutil_start_time(pid)
    fields = stat[stat.rfind(")") + 2:].split()
    return float(fields[19])  # field 22 of stat(5), counted after the command name


def _psutil_start_time(pid: int) -> float | None:
    if Path("/proc").is_dir():
        return None  # Linux without that pid: it is gone
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:  # noqa: BLE001 - any failure means we cannot vouch for the process
        return None
