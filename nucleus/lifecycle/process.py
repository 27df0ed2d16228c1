"""Step processes: start a script in its own session, stream its lines, learn of its exit, end its tree.

Contract: every `StepProcess` is either waited for (`wait()`) or ended (`end_processes`). Exits are learnt
from SIGCHLD (the `Reaper`: one handler for the whole nucleus, no thread per process, no polling); output
arrives through the event loop's readers. Ending a tree reaches the step's process group, every process
that carries the component's token in its environment, and every orphan the component's step leaders left
to the nucleus (see `reaper.py`) — so a daemon that double-forked out of the group and cleared its
environment is still found.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
from collections.abc import Callable, Collection, Iterable
from typing import NamedTuple

from nucleus.lifecycle.host import EndReport, LineSink, StepStartError
from nucleus.lifecycle.launch import Launch
from nucleus.lifecycle.reaper import Reaper
from nucleus.procinfo import (
    HAVE_PROC,
    group_exists,
    group_has_live_member,
    start_time,
    stat_of,
    subreaper_preexec,
)

MAX_LINE = 64 * 1024  # a longer run without a newline is cut into lines of this size


class _PipeReader:
    """Turns a non-blocking pipe into lines, on the event loop's own readiness callbacks."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, level: str, sink: LineSink) -> None:
        self._loop, self._fd, self._level, self._sink = loop, fd, level, sink
        self._buffer = b""
        self.closed = False
        os.set_blocking(fd, False)
        loop.add_reader(fd, self.read_available)

    def read_available(self) -> None:
        """Read whatever is there now; close on end of file."""
        while not self.closed:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                chunk = b""
            if not chunk:
                self.close()
                return
            self._feed(chunk)

    def _feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        while len(self._buffer) > MAX_LINE:
            lines.append(self._buffer[:MAX_LINE])
            self._buffer = self._buffer[MAX_LINE:]
        for line in lines:
            self._sink(self._level, line.rstrip(b"\r").decode("utf-8", "replace"))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        if self._buffer:
            self._sink(self._level, self._buffer.rstrip(b"\r").decode("utf-8", "replace"))
            self._buffer = b""


class StepProcess:
    """One running step: `sh -c <script>` in a new session, its output going to `sink`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, reaper: Reaper, popen: subprocess.Popen[bytes],
                 stdout_fd: int, stderr_fd: int, sink: LineSink, owner: object = None) -> None:
        self.pid = popen.pid
        self.pgid = popen.pid  # start_new_session: the shell leads its own group
        self._popen = popen
        self._exit: asyncio.Future[int] = loop.create_future()
        self._readers = [_PipeReader(loop, stdout_fd, "INFO", sink), _PipeReader(loop, stderr_fd, "WARN", sink)]
        reaper.watch(self.pid, self._exited, owner)

    def _exited(self, code: int) -> None:
        for reader in self._readers:
            reader.read_available()  # the last lines before the exit come before the exit
        self._popen.returncode = code  # so that subprocess never waits for this pid itself
        if not self._exit.done():
            self._exit.set_result(code)

    @property
    def returncode(self) -> int | None:
        return self._exit.result() if self._exit.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    def close_output(self) -> None:
        """Stop reading output (processes left in the background keep writing into the void)."""
        for reader in self._readers:
            reader.close()


_LEADER_PREEXEC: list[Callable[[], object] | None] = []  # computed on first spawn


def spawn(loop: asyncio.AbstractEventLoop, reaper: Reaper, launch: Launch, *, sink: LineSink,
          owner: object = None) -> StepProcess:
    """Start `sh -c <script>` as `launch` describes, in its own session; raises `StepStartError` if it
    cannot start.

    The leader is made a child subreaper (when the nucleus is one), so that orphans of the step stay its
    children while it lives and come to the nucleus, attributed to `owner`, when it exits.
    """
    if not _LEADER_PREEXEC:
        _LEADER_PREEXEC.append(subreaper_preexec() if reaper.subreaper else None)
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    try:
        popen = subprocess.Popen(
            ["sh", "-c", launch.script], cwd=launch.cwd, env=dict(launch.env), stdin=subprocess.DEVNULL,
            stdout=out_write, stderr=err_write, start_new_session=True, close_fds=True,
            preexec_fn=_LEADER_PREEXEC[0])
    except (OSError, ValueError, subprocess.SubprocessError) as exc:  # ValueError: a NUL byte, an `=` in a name
        os.close(out_read)
        os.close(err_read)
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise StepStartError(f"cannot start sh in {launch.cwd}: {reason}") from None
    finally:
        os.close(out_write)
        os.close(err_write)
    return StepProcess(loop, reaper, popen, out_read, err_read, sink, owner)


# -------------------------------------------------------------------------------- ending trees


def _signal_groups(pgids: Iterable[int], sig: int) -> None:
    for pgid in pgids:
        try:
            os.killpg(pgid, sig)
        except OSError:
            pass


class _Proc(NamedTuple):
    """A process seen in the process table; its start time tells it apart from a later one with its pid."""

    pid: int
    started: float


def _alive(proc: _Proc) -> bool:
    """Alive, and the very process seen before (a zombie has exited: it is not alive)."""
    if HAVE_PROC:
        found = stat_of(proc.pid)
        return found is not None and found.state != "Z" and found.started == proc.started
    return start_time(proc.pid) == proc.started


def _signal_processes(procs: list[_Proc], sig: int) -> None:
    """Signal each process that is still the one seen before — its whole group when it leads one (a daemon
    that called setsid takes its own workers along)."""
    for proc in procs:
        if _alive(proc):  # not a stranger that got the pid meanwhile
            try:
                if _leads_group(proc.pid):
                    os.killpg(proc.pid, sig)
                else:
                    os.kill(proc.pid, sig)
            except OSError:
                pass


def _leads_group(pid: int) -> bool:
    if HAVE_PROC:
        facts = stat_of(pid)
        return facts is not None and facts.pgid == pid
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def _find_by_token(tokens: Collection[str]) -> list[_Proc]:
    """One pass over the process table: every live process whose environment carries one of `tokens`.

    This is what finds a daemon that left its step's process group and lost its parent. On Linux it reads
    `/proc` directly (a few milliseconds for hundreds of processes); elsewhere it asks psutil.
    """
    me, found = os.getpid(), []
    if HAVE_PROC:
        needles = [f"\0SVCUID={token}\0".encode() for token in tokens]
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == me:
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as stream:
                    environment = b"\0" + stream.read() + b"\0"
            except OSError:  # gone, or another user's
                continue
            if any(needle in environment for needle in needles):
                info = stat_of(int(entry))
                if info is not None and info.state != "Z":
                    found.append(_Proc(int(entry), info.started))
        return found
    import psutil

    for proc in psutil.process_iter():
        try:
            if proc.pid != me and proc.environ().get("SVCUID") in tokens and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(_Proc(proc.pid, proc.create_time()))
        except psutil.Error:
            continue
    return found


async def _wait_groups_empty(pgids: list[int], timeout: float) -> list[int]:
    """Wait until no live process is left in the groups; returns those still populated after `timeout`.

    A process group has no exit event of its own, so this looks every 10 ms — only while a stop's grace
    period runs. (Members that are the nucleus's children are reaped by the SIGCHLD handler meanwhile.) A
    group left with zombies only is empty: every 100 ms the process table is read to tell.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    remaining = [g for g in pgids if group_exists(g)]
    polls = 0
    while remaining and loop.time() < deadline:
        await asyncio.sleep(0.01)
        polls += 1
        remaining = [g for g in remaining if group_exists(g)]
        if polls % 10 == 0:
            remaining = [g for g in remaining if group_has_live_member(g)]
    return [g for g in remaining if group_has_live_member(g)]


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _wait_gone(procs: list[_Proc], timeout: float) -> list[_Proc]:
    """Wait until every process has exited (pidfd events where the OS has them); returns the living."""
    loop = asyncio.get_running_loop()
    pending = [p for p in procs if _alive(p)]
    if not pending or timeout <= 0:
        return pending
    if hasattr(os, "pidfd_open"):
        fds: list[int] = []
        waiters: list[asyncio.Future[None]] = []
        for proc in pending:
            try:
                fd = os.pidfd_open(proc.pid)
            except OSError:
                continue
            fds.append(fd)
            done: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, _set_done, done)
            waiters.append(done)
        try:
            if waiters:
                await asyncio.wait(waiters, timeout=timeout)
        finally:
            for fd in fds:
                loop.remove_reader(fd)
                os.close(fd)
    else:  # no pidfd (macOS): look again every 50 ms until the grace period is over
        deadline = loop.time() + timeout
        while any(_alive(p) for p in pending) and loop.time() < deadline:
            await asyncio.sleep(0.05)
    return [p for p in pending if _alive(p)]


Orphans = Callable[[], Iterable[tuple[int, float]]]  # (pid, start time) of processes adopted from a component


async def end_processes(pgids: Iterable[int], tokens: Collection[str], grace: float,
                        orphans: Orphans | None = None) -> EndReport:
    """SIGTERM to the process groups, to every process carrying one of `tokens`, and to the `orphans`; wait
    up to `grace` seconds for all of them to go; SIGKILL whatever is left.

    Groups reach every descendant that stayed in the step's group (nearly all of them) with one syscall;
    `tokens` (components' SVCUIDs) find the ones that left it, at the price of one pass over the process
    table; `orphans` is asked again as leaders die (their orphans come to the nucleus then). Only pass
    groups whose leader is known to be ours and not yet reaped: a group id is a process id, and process ids
    are reused.
    """
    loop = asyncio.get_running_loop()
    groups = [g for g in pgids if group_exists(g)]
    strays = _find_by_token(tokens) if tokens else []
    strays += _new_orphans(orphans, strays)
    if not groups and not strays:
        return EndReport(0, 0)
    began = loop.time()
    _signal_groups(groups, signal.SIGTERM)
    _signal_processes(strays, signal.SIGTERM)
    left_groups = await _wait_groups_empty(groups, grace)
    adopted = _new_orphans(orphans, strays)  # handed to the nucleus as the groups' leaders exited
    _signal_processes(adopted, signal.SIGTERM)
    left = await _wait_gone(strays + adopted, max(0.0, grace - (loop.time() - began)))
    if tokens:  # also whatever was started during the grace period
        known = {p.pid for p in left}
        left += [p for p in _find_by_token(tokens) if p.pid not in known]
    if left_groups or left:
        _signal_groups(left_groups, signal.SIGKILL)
        _signal_processes(left, signal.SIGKILL)
        await _wait_groups_empty(left_groups, 2.0)
        late = _new_orphans(orphans, strays + adopted)
        _signal_processes(late, signal.SIGKILL)
        await _wait_gone(left + late, 2.0)
        adopted += late
    return EndReport(len(groups) + len(strays) + len(adopted), len(left_groups) + len(left))


def _new_orphans(orphans: Orphans | None, known: list[_Proc]) -> list[_Proc]:
    if orphans is None:
        return []
    seen = {p.pid for p in known}
    return [_Proc(pid, started) for pid, started in orphans() if pid not in seen]
