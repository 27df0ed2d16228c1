"""Keeps the state database in step with the kernel, from the events on its bus: component states, the
processes that steps started or left behind, bootstraps.

State changes are coalesced (all changes of one event-loop turn in one transaction); a new token and a
spawned process are written in the same turn, ahead of the next step, so that a nucleus killed an instant
later still knows them. (Deployment records are not written here: `deployment/status.py` alone writes them.)
"""

from __future__ import annotations

import asyncio
import json
import time

from nucleus.errors import NucleusError
from nucleus.lifecycle.events import (
    Bootstrapped,
    Bus,
    Event,
    OrphanAdopted,
    OrphanGone,
    ServiceAdded,
    ServiceRemoved,
    ServiceSnapshot,
    ServiceUpdated,
    StateChanged,
    StepReaped,
    StepStarted,
    Subscription,
)
from nucleus.lifecycle.logs import NucleusLog
from nucleus.procinfo import boot_id, start_time
from nucleus.state import ComponentRecord, ProcessRecord, State, now_iso

REPORT_INTERVAL = 60.0  # failed writes are reported at most once a minute


def record_of(service: ServiceSnapshot) -> ComponentRecord:
    return ComponentRecord(service.name, service.version, str(service.state), service.builtin, service.digest,
                           service.cause, service.stopped_by_user, service.token, now_iso(),
                           json.dumps(service.configuration, sort_keys=True))


class Recorder:
    """Subscribes to the bus; `flush()` writes what changed in one transaction."""

    def __init__(self, state: State, log: NucleusLog | None = None) -> None:
        self.state = state
        self.log = log
        self._failures = 0  # failed flushes since the last report
        self._reported_at: float | None = None
        self._dirty: dict[str, ServiceSnapshot] = {}
        self._forgotten: set[str] = set()
        self._processes: list[ProcessRecord] = []
        self._started: dict[int, float] = {}  # pid → start time, for the records of live step leaders
        self._gone: list[tuple[int, float]] = []
        self._bootstrapped: list[Bootstrapped] = []
        self._scheduled = False
        self._boot_id = boot_id()
        self._subscription: Subscription | None = None

    def attach(self, bus: Bus) -> None:
        self._subscription = bus.subscribe(self.hear)

    def hear(self, event: Event) -> None:
        if isinstance(event, (ServiceAdded, ServiceUpdated, StateChanged)):
            self._dirty[event.service.name] = event.service
            self._forgotten.discard(event.service.name)
        elif isinstance(event, ServiceRemoved):
            self._dirty.pop(event.component, None)
            self._forgotten.add(event.component)
        elif isinstance(event, StepStarted):
            started = start_time(event.pid)
            if started is None:
                return
            self._started[event.pid] = started
            self._processes.append(ProcessRecord(event.pgid, started, self._boot_id, event.component, event.token))
        elif isinstance(event, StepReaped):
            started = self._started.pop(event.pid, None)
            if started is None:
                return
            self._gone.append((event.pgid, started))
        elif isinstance(event, OrphanAdopted):
            # An orphan of a component's steps came to the nucleus: recorded, so that a nucleus killed later
            # still ends it on its next start (it may carry no token any more).
            self._processes.append(ProcessRecord(event.pid, event.started, self._boot_id, event.component,
                                                 event.token, "process"))
        elif isinstance(event, OrphanGone):
            self._gone.append((event.pid, event.started))
        elif isinstance(event, Bootstrapped):
            self._bootstrapped.append(event)
        else:
            return
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write what changed. A write that fails (a full disk) is kept for the next flush and reported once
        a minute: the state lags behind, nothing is corrupted, the components keep running."""
        self._scheduled = False
        dirty, self._dirty = self._dirty, {}
        forgotten, self._forgotten = self._forgotten, set()
        processes, self._processes = self._processes, []
        gone, self._gone = self._gone, []
        bootstrapped, self._bootstrapped = self._bootstrapped, []
        if not (dirty or forgotten or processes or gone or bootstrapped):
            return
        try:
            self.state.record(components=[record_of(s) for s in dirty.values()], processes=processes, gone=gone,
                              forgotten=forgotten,
                              bootstrapped=[(b.component, b.version, b.digest) for b in bootstrapped])
        except NucleusError as exc:
            self._dirty = {**dirty, **self._dirty}
            self._forgotten |= forgotten
            self._processes = processes + self._processes
            self._gone = gone + self._gone
            self._bootstrapped = bootstrapped + self._bootstrapped
            self._failed(exc)

    def _failed(self, exc: NucleusError) -> None:
        self._failures += 1
        now = time.monotonic()
        if self._reported_at is None or now - self._reported_at >= REPORT_INTERVAL:
            self._reported_at = now
            if self.log is not None:
                self.log.event("state-write-failed", level="ERROR", failures=self._failures, error=str(exc))
            self._failures = 0

    def close(self) -> None:
        self.flush()
        if self._subscription is not None:
            self._subscription.close()
