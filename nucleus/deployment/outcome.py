"""When a deployment is over: the daemon's rule (settled) and the foreground deploy's (finished)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterable
from typing import Any, NamedTuple

from nucleus.lifecycle.kernel import Kernel
from nucleus.lifecycle.states import State


class Outcome(NamedTuple):
    ok: bool
    summary: str
    signal: str | None = None  # the foreground deploy was stopped by SIGINT or SIGTERM


async def wait_settled(kernel: Kernel, changed: Iterable[str], watched: Iterable[str], settle: float) -> Outcome:
    """The daemon's rule: every changed component FINISHED, or RUNNING and still up after `settle` seconds;
    failed as soon as any component of the deployment is BROKEN."""
    changed_services = [kernel.services[n] for n in changed if n in kernel.services]
    watched_services = [kernel.services[n] for n in watched if n in kernel.services]
    while True:
        broken = [s for s in watched_services if s.state is State.BROKEN]
        if broken:
            return Outcome(False, f"{broken[0].name} is BROKEN: {broken[0].last_cause}")
        stopped = [s for s in changed_services if s.stopped_by_user]
        if stopped:
            return Outcome(False, f"{stopped[0].name} was stopped before it came up")
        now = kernel.now()
        waits = []
        for service in changed_services:
            if service.state is State.RUNNING:
                waits.append(settle - (now - service.since))
            elif service.state is not State.FINISHED:
                waits.append(float("inf"))
        if all(w <= 0 for w in waits):
            return Outcome(True, f"{len(changed_services)} component(s) changed, all up")
        timeout = min(w for w in waits if w > 0)
        await asyncio.wait([kernel.next_change()], timeout=None if timeout == float("inf") else timeout)


async def follow_foreground(kernel: Kernel, names: Iterable[str]) -> Outcome:
    """The foreground rule: all FINISHED, one BROKEN, or a signal (SIGINT, SIGTERM) — then stop everything."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[int] = loop.create_future()

    def receive(signum: int) -> None:
        if not received.done():
            received.set_result(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, receive, signum)
    watched = [kernel.services[n] for n in names]
    try:
        while True:
            broken = [s for s in watched if s.state is State.BROKEN]
            if broken:
                await kernel.stop_all("another component is BROKEN")
                return Outcome(False, f"{', '.join(s.name for s in broken)} BROKEN: {broken[0].last_cause}")
            if all(s.state is State.FINISHED for s in watched):
                await kernel.stop_all("the deployment finished")
                return Outcome(True, f"{len(watched)} component(s) FINISHED")
            waiting: list[asyncio.Future[Any]] = [kernel.next_change(), received]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if received.done():
                name = "SIGINT" if received.result() == signal.SIGINT else "SIGTERM"
                await kernel.stop_all(f"{name} received")
                return Outcome(False, f"stopped by {name}", name)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def needed_by(kernel: Kernel, names: Iterable[str]) -> list[str]:
    """The named services and everything they need (HARD dependencies of dependencies included): a
    deployment fails when one of these is BROKEN, not when an unrelated component is."""
    found: list[str] = []
    queue = [kernel.services[n] for n in names if n in kernel.services]
    while queue:
        current = queue.pop()
        if current.name not in found:
            found.append(current.name)
            queue.extend(kernel.hard_dependencies(current))
    return found
