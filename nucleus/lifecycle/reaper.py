"""Learning of exits: one SIGCHLD handler reaps every child of the nucleus, and adopted orphans are attributed.

The nucleus is a child subreaper (`PR_SET_CHILD_SUBREAPER`), and so is every step's leader process (set in
the child before `exec`, and kept across it). When a process of a component loses its parent, the kernel
hands it to the nearest living subreaper above it: its step's leader while that lives — so it is still a
child of a process the nucleus knows — and the nucleus once the leader has gone. That is why, without
cgroups, a daemon that double-forked and cleared its environment still belongs to its component:

- while the step's leader lives, the orphan is the leader's child (`Reaper.orphans_of` finds it by parent);
- when the leader exits, its orphans move to the nucleus at that instant; the SIGCHLD that reports the
  leader's exit also triggers one look at the nucleus's children, and every new one is attributed to the
  component whose leader just exited (`adopted`).

Everything the nucleus is parent of is reaped here, at once (`waitpid(-1)`), so no zombie lingers and none
is ever counted as alive: an orphan that exits before its parent reaps it would otherwise hold a process
group "alive" until some other process reaped it. Consequence: nothing else in the nucleus process may wait
for a child of its own while the reaper runs (the sandbox's processes, started before it, are only ever
polled; Python's `subprocess` treats an already-reaped child as exited).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from typing import NamedTuple

from nucleus.procinfo import become_subreaper, children_of, stat_of


class Orphan(NamedTuple):
    """A process adopted by the nucleus (its parent died) and the component it came from."""

    pid: int
    started: float  # start time: tells it apart from a later process with the same pid
    owner: object


class Reaper:
    """Reaps the nucleus's children when SIGCHLD says some have exited; keeps adopted orphans' owners."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 on_adopted: Callable[[Orphan], None] | None = None,
                 on_orphan_gone: Callable[[Orphan], None] | None = None) -> None:
        self._loop = loop
        self._callbacks: dict[int, Callable[[int], None]] = {}
        self._owners: dict[int, object] = {}  # live step leaders → their component
        self.orphans: dict[int, Orphan] = {}
        self._on_adopted = on_adopted
        self._on_orphan_gone = on_orphan_gone
        self.subreaper = become_subreaper()
        # Children that existed before (the sandbox's processes) are not components' orphans.
        self._foreign = set(children_of(os.getpid())) if self.subreaper else set()
        loop.add_signal_handler(signal.SIGCHLD, self.reap)

    def watch(self, pid: int, callback: Callable[[int], None], owner: object = None) -> None:
        """Call `callback(exit code)` when the child `pid` exits; `owner` inherits its orphans."""
        self._callbacks[pid] = callback
        if owner is not None:
            self._owners[pid] = owner
        self._loop.call_soon(self._reap_one, pid)  # it may have exited before we listened

    def orphans_of(self, owner: object) -> list[Orphan]:
        """The processes adopted from `owner`'s step leaders (no look at the process table)."""
        return [o for o in self.orphans.values() if o.owner == owner]

    def reap(self) -> None:
        """On SIGCHLD (signals coalesce: one may stand for several exits), reap every exited child."""
        leaders_gone: list[tuple[int, object]] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            owner = self._owners.pop(pid, None)
            if owner is not None:
                leaders_gone.append((pid, owner))
            self._exited(pid, os.waitstatus_to_exitcode(status))
        if leaders_gone and self.subreaper:
            self._adopt(leaders_gone)

    def _reap_one(self, pid: int) -> None:
        if pid not in self._callbacks:
            return
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 255 << 8
        if done:
            owner = self._owners.pop(pid, None)
            self._exited(pid, os.waitstatus_to_exitcode(status))
            if owner is not None and self.subreaper:
                self._adopt([(pid, owner)])

    def _exited(self, pid: int, code: int) -> None:
        callback = self._callbacks.pop(pid, None)
        if callback is not None:
            callback(code)
            return
        orphan = self.orphans.pop(pid, None)
        if orphan is not None and self._on_orphan_gone is not None:
            self._on_orphan_gone(orphan)
        self._foreign.discard(pid)

    def _adopt(self, leaders: list[tuple[int, object]]) -> None:
        """The step leaders `leaders` (pid, owner) just exited: their orphans are now the nucleus's children.

        One orphan, several leaders gone in the same instant: the kernel's hand-over does not say whose it
        was, so its process group or session (still the leader's unless it called setsid) decides, and
        failing that the first leader's component gets it.
        """
        owner_of = dict(leaders)
        for pid in children_of(os.getpid()):
            if pid in self._callbacks or pid in self.orphans or pid in self._foreign:
                continue
            facts = stat_of(pid)
            if facts is None:
                continue
            owner = owner_of.get(facts.pgid) or owner_of.get(facts.sid) or leaders[0][1]
            orphan = Orphan(pid, facts.started, owner)
            self.orphans[pid] = orphan
            if self._on_adopted is not None:
                self._on_adopted(orphan)

    def close(self) -> None:
        self._loop.remove_signal_handler(signal.SIGCHLD)
