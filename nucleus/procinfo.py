"""Facts about processes: the boot id, a process's start time, its parent, group and session, its children.

A process id alone can be reused; (boot id, pid, start time) names one process for ever, so the nucleus can
end what a killed predecessor left behind without ever signalling a stranger. Also here: becoming a child
subreaper (Linux's `PR_SET_CHILD_SUBREAPER`), for the nucleus itself and for step leaders.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

PR_SET_CHILD_SUBREAPER = 36


def boot_id() -> str:
    """This boot's id (Linux); empty elsewhere, which disables matching by start time."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


HAVE_PROC = Path("/proc/self/stat").exists()


class Stat(NamedTuple):
    """The fields of `/proc/<pid>/stat` the nucleus reads."""

    state: str  # R, S, D, Z (zombie)…
    ppid: int
    pgid: int
    sid: int
    started: float  # clock ticks since boot


def stat_of(pid: int) -> Stat | None:
    """`pid`'s state, parent, group, session and start time (Linux), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            stat = stream.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()
    return Stat(fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]), float(fields[19]))


def _has_children_files() -> bool:
    """Whether this kernel lists a task's children in `/proc/<pid>/task/<tid>/children` (CONFIG_PROC_CHILDREN)."""
    return os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def children_of(*parents: int) -> list[int]:
    """The live children of the `parents`: from `/proc/<pid>/task/*/children` where the kernel offers it,
    else from one pass over the process table (for all parents at once). Empty where there is no `/proc`."""
    if not HAVE_PROC or not parents:
        return []
    found: list[int] = []
    if _has_children_files():
        for parent in parents:
            try:
                for task in os.listdir(f"/proc/{parent}/task"):
                    with open(f"/proc/{parent}/task/{task}/children", "rb") as stream:
                        found.extend(int(child) for child in stream.read().split())
            except OSError:  # the parent is gone
                continue
        return found
    wanted = set(parents)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            facts = stat_of(int(entry))
            if facts is not None and facts.ppid in wanted and facts.state != "Z":
                found.append(int(entry))
    return found


def group_exists(pgid: int) -> bool:
    """Whether the group has a member — perhaps only a zombie; `group_has_live_member` tells. One syscall."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_has_live_member(pgid: int) -> bool:
    """Whether any process of group `pgid` is alive — zombies are not (they have exited; only their parent's
    wait is missing). One pass over the process table; Linux only (elsewhere: whether the group exists)."""
    if not HAVE_PROC:
        return group_exists(pgid)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            facts = stat_of(int(entry))
            if facts is not None and facts.pgid == pgid and facts.state != "Z":
                return True
    return False


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):
        return None


def become_subreaper() -> bool:
    """Make this process a child subreaper: orphans among its descendants are re-parented to it (not to
    PID 1). False where the OS has no such thing."""
    prctl = _prctl()
    return prctl is not None and prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def subreaper_preexec() -> Callable[[], object] | None:
    """A `preexec_fn` that makes a new child a subreaper before it execs (the setting survives `exec`):
    one C call, nothing else, so it is safe in the child of a threaded parent. None where unsupported."""
    prctl = _prctl()
    if prctl is None:
        return None
    import functools

    return functools.partial(prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def start_time(pid: int) -> float | None:
    """When `pid` started (clock ticks since boot on Linux), or None if it is gone."""
    if HAVE_PROC:
        found = stat_of(pid)
        return found.started if found else None
    return _psutil_start_time(pid)


def _psutil_start_time(pid: int) -> float | None:
    try:
        import psutil

        started: float = psutil.Process(pid).create_time()
        return started
    except Exception:  # noqa: BLE001 - any failure means we cannot vouch for the process
        return None
