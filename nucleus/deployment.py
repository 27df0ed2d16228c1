"""Applying deployments: plan, import into the store, turn components into services, follow the outcome.

One `Deployer` serves both ways to deploy. The foreground deploy (`nucleus deploy` with no daemon on the
root) applies one plan and supervises it to its end (`follow_foreground`); the daemon applies plans to its
running kernel and waits for them to settle (`wait_settled`).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from nucleus.config import TES, NucleusConfig
from nucleus.errors import EXIT_FAILED, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, NucleusError
from nucleus.lifecycle.builtin import BuiltinService
from nucleus.lifecycle.kernel import Kernel
from nucleus.lifecycle.logs import NucleusLog
from nucleus.lifecycle.process import StepProcess, end_processes
from nucleus.lifecycle.reaper import Orphan
from nucleus.lifecycle.service import ComponentSpec, Service
from nucleus.lifecycle.states import State
from nucleus.paths import RootLayout
from nucleus.planning import Plan, PlanRequest, make_plan
from nucleus.procinfo import boot_id, children_of, start_time
from nucleus.recipe.model import GENERIC, Step
from nucleus.state import ComponentRecord, ProcessRecord, now_iso
from nucleus.state import State as StateDB
from nucleus.store import Store
from nucleus.unarchive import UnpackLimits

BuiltinFactory = Callable[[ComponentSpec, Kernel], Service]


def refuse_unsupported(plan: Plan) -> None:
    """Only generic components run here; others validate and plan, but a deploy refuses them."""
    reserved = [c for c in plan.components if c.name.lower() == "nucleus"]
    if reserved:
        raise NucleusError(f"a component cannot be named '{reserved[0].name}' here",
                           where=reserved[0].recipe.path if reserved[0].recipe else None,
                           hint="logs/nucleus.log is the nucleus's own log; choose another name")
    others = [c for c in plan.components if not c.builtin and c.component_type != GENERIC]
    if others:
        listed = ", ".join(f"{c.name} ({c.component_type})" for c in others)
        raise NucleusError(f"nucleus runs generic components only; this deployment has {listed}",
                           hint="Lambda, plugin and nucleus components need the classic Greengrass nucleus")


def import_plan(plan: Plan, layout: RootLayout, limits: UnpackLimits = UnpackLimits()) -> dict[str, str]:
    """Put every component's recipe and artifacts into the store; returns each component's digest."""
    store = Store(layout, limits)
    digests = {}
    for component in plan.components:
        if component.recipe is None or component.manifest is None:
            digests[component.name] = f"built-in:{component.version}"
            continue
        digests[component.name] = store.import_component(component.recipe, component.manifest,
                                                         component.artifact_source)
        layout.work(component.name).mkdir(mode=0o700, parents=True, exist_ok=True)
    store.sync()  # durable before any state refers to it
    return digests


def specs_for(plan: Plan, digests: Mapping[str, str], layout: RootLayout) -> list[ComponentSpec]:
    return [ComponentSpec(name=c.name, version=c.version, lifecycle=c.lifecycle,
                          hard_dependencies=c.hard_dependencies, soft_dependencies=c.soft_dependencies,
                          work_dir=layout.work(c.name), digest=digests[c.name], builtin=c.builtin,
                          configuration=c.recipe.default_configuration if c.recipe else {})
            for c in plan.components]


class Recorder:
    """Keeps the state database in step with the kernel: states, spawned process groups, bootstraps.

    State changes are coalesced (all changes of one event-loop turn in one transaction); a new token and a
    spawned process are written at once, so that a nucleus killed an instant later still knows them.
    """

    def __init__(self, state: StateDB, log: NucleusLog | None = None) -> None:
        self.state = state
        self.log = log
        self._failures = 0  # failed flushes since the last report
        self._reported_at: float | None = None
        self._dirty: dict[str, Service] = {}
        self._processes: list[ProcessRecord] = []
        self._started: dict[int, float] = {}  # pid → start time, for the records of live step leaders
        self._gone: list[tuple[int, float]] = []
        self._scheduled = False
        self._boot_id = boot_id()

    def track(self, service: Service) -> None:
        """A new service: its token is written before it can spawn anything (the flush is scheduled ahead
        of the first step of its lifecycle task)."""
        self.transition(service, service.state, service.state, "created")

    def transition(self, service: Service, old: State, new: State, cause: str) -> None:
        self._dirty[service.name] = service
        self._schedule()

    def spawned(self, service: Service, step: Step, process: StepProcess) -> None:
        started = start_time(process.pid)
        if started is not None:
            self._started[process.pid] = started
            self._processes.append(ProcessRecord(process.pgid, started, self._boot_id, service.name,
                                                 service.token))
            self._schedule()

    def adopted(self, service: Service, orphan: Orphan) -> None:
        """An orphan of the component's steps came to the nucleus: recorded, so that a nucleus killed later
        still ends it on its next start (it may carry no token any more)."""
        self._processes.append(ProcessRecord(orphan.pid, orphan.started, self._boot_id, service.name,
                                             service.token, "process"))
        self._schedule()

    def orphan_gone(self, orphan: Orphan) -> None:
        self._gone.append((orphan.pid, orphan.started))
        self._schedule()

    def reaped(self, service: Service, process: StepProcess) -> None:
        """A step's leader is gone: its group can no longer be vouched for, so its record goes."""
        started = self._started.pop(process.pid, None)
        if started is not None:
            self._gone.append((process.pgid, started))
            self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def needs_bootstrap(self, spec: ComponentSpec) -> bool:
        return not self.state.is_bootstrapped(spec.name, spec.version, spec.digest)

    def record_bootstrap(self, spec: ComponentSpec) -> None:
        self.state.set_bootstrapped(spec.name, spec.version, spec.digest)

    def flush(self) -> None:
        """Write what changed. A write that fails (a full disk) is kept for the next flush and reported once
        a minute: the state lags behind, nothing is corrupted, the components keep running."""
        self._scheduled = False
        dirty, self._dirty = self._dirty, {}
        processes, self._processes = self._processes, []
        gone, self._gone = self._gone, []
        if not (dirty or processes or gone):
            return
        try:
            self.state.record(components=[record_of(s) for s in dirty.values()], processes=processes,
                              gone=gone)
        except NucleusError as exc:
            self._dirty = {**dirty, **self._dirty}
            self._processes = processes + self._processes
            self._gone = gone + self._gone
            self._failures += 1
            now = time.monotonic()
            if self._reported_at is None or now - self._reported_at >= 60:
                self._reported_at = now
                if self.log is not None:
                    self.log.event("state-write-failed", level="ERROR", failures=self._failures, error=str(exc))
                self._failures = 0


def record_of(service: Service) -> ComponentRecord:
    return ComponentRecord(service.name, service.spec.version, str(service.state), service.spec.builtin,
                           service.spec.digest, service.last_cause, service.stopped_by_user, service.token,
                           now_iso(), json.dumps(service.spec.configuration, sort_keys=True))


async def end_leftovers(state: StateDB) -> int:
    """End the processes a killed nucleus left behind on this root; returns how many were found.

    A group is signalled only if its leader is alive with the recorded start time in this boot; everything
    else is found by a component's token in its environment (tokens of recorded processes and components).
    """
    records = state.processes()
    tokens = {r.token for r in records} | {c.token for c in state.components() if c.token}
    if not tokens:
        return 0
    this_boot = boot_id()
    mine = [r for r in records if r.boot_id == this_boot and start_time(r.pgid) == r.start_time]
    groups = [r.pgid for r in mine if r.kind == "group"]
    # Step leaders are subreapers: a daemon that left its group and cleared its environment is still a
    # child of its leader while that lives (see lifecycle/reaper.py).
    adopted = [(r.pgid, r.start_time) for r in mine if r.kind == "process"]
    adopted += [(pid, started) for pid in children_of(*groups) if (started := start_time(pid)) is not None]
    report = await end_processes(groups, tokens, 5.0, lambda: adopted)
    state.clear_processes()
    return report.terminated


class Outcome(NamedTuple):
    exit_code: int
    summary: str


class Deployer:
    """Applies plans to a kernel (the same code for the daemon and the foreground deploy)."""

    def __init__(self, kernel: Kernel, layout: RootLayout, config: NucleusConfig, recorder: Recorder,
                 device: Mapping[str, str], builtins: Mapping[str, BuiltinFactory] | None = None,
                 *, offload: bool = True) -> None:
        self.kernel, self.layout, self.config = kernel, layout, config
        self.recorder, self.device = recorder, device
        self.builtins = dict(builtins or {})
        # The daemon reads and copies files on a worker thread, so that other clients stay served; a
        # foreground deploy has nothing else to serve and does it in line (no thread to start).
        self.offload = offload

    async def _blocking(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(function, *args) if self.offload else function(*args)

    def make_service(self, spec: ComponentSpec) -> Service:
        if spec.builtin:
            factory = self.builtins.get(spec.name)
            service = factory(spec, self.kernel) if factory else \
                BuiltinService(spec, self.kernel, self.kernel.new_log(spec.name))
        else:
            service = Service(spec, self.kernel, self.kernel.new_log(spec.name))
        self.recorder.track(service)
        return service

    async def plan(self, request: PlanRequest) -> Plan:
        """Resolve and render (file reads, so off the loop: other clients stay served meanwhile)."""
        plan = await self._blocking(make_plan, request, self.layout, self.config, self.device)
        refuse_unsupported(plan)
        if any(c.builtin and c.name == TES for c in plan.components):
            from nucleus.tes.provider import check_settings

            await self._blocking(check_settings, self.config)  # a bad setting: exit 2 before anything runs
        return plan

    async def apply(self, plan: Plan, *, remove_others: bool = False, hold: frozenset[str] = frozenset(),
                    remove_cause: str = "no longer part of the deployment") -> list[str]:
        """Import and start what the plan needs; returns the names of components that (re)start.

        With `remove_others`, services the plan no longer needs are stopped and forgotten; new services in
        `hold` are created but not started.
        """
        digests = await self._blocking(import_plan, plan, self.layout, UnpackLimits.of(self.config))
        changed = await self.kernel.deploy(specs_for(plan, digests, self.layout), self.make_service, hold,
                                           frozenset(plan.requested))
        if remove_others:
            wanted = {c.name for c in plan.components}
            await self.remove([name for name in self.kernel.services if name not in wanted], remove_cause)
        return changed

    async def remove(self, names: Iterable[str], cause: str) -> None:
        for service in await self.kernel.remove(list(names), cause):
            self.recorder.state.forget_component(service.name)


async def wait_settled(kernel: Kernel, changed: Iterable[str], watched: Iterable[str], settle: float) -> Outcome:
    """The daemon's rule: every changed component FINISHED, or RUNNING and still up after `settle` seconds;
    failed as soon as any component of the deployment is BROKEN."""
    changed_services = [kernel.services[n] for n in changed if n in kernel.services]
    watched_services = [kernel.services[n] for n in watched if n in kernel.services]
    while True:
        broken = [s for s in watched_services if s.state is State.BROKEN]
        if broken:
            return Outcome(EXIT_FAILED, f"{broken[0].name} is BROKEN: {broken[0].last_cause}")
        stopped = [s for s in changed_services if s.stopped_by_user]
        if stopped:
            return Outcome(EXIT_FAILED, f"{stopped[0].name} was stopped before it came up")
        now = kernel.now()
        waits = []
        for service in changed_services:
            if service.state is State.RUNNING:
                waits.append(settle - (now - service.since))
            elif service.state is not State.FINISHED:
                waits.append(float("inf"))
        if all(w <= 0 for w in waits):
            return Outcome(EXIT_OK, f"{len(changed_services)} component(s) changed, all up")
        timeout = min(w for w in waits if w > 0)
        await asyncio.wait([kernel.next_change()], timeout=None if timeout == float("inf") else timeout)


async def follow_foreground(kernel: Kernel, names: Iterable[str]) -> Outcome:
    """The foreground rule: all FINISHED (0), one BROKEN (1), or a signal (130/143) — then stop everything."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[int] = loop.create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda s=signum: received.done() or received.set_result(s))
    watched = [kernel.services[n] for n in names]
    try:
        while True:
            broken = [s for s in watched if s.state is State.BROKEN]
            if broken:
                await kernel.stop_all("another component is BROKEN")
                return Outcome(EXIT_FAILED, f"{', '.join(s.name for s in broken)} BROKEN: {broken[0].last_cause}")
            if all(s.state is State.FINISHED for s in watched):
                await kernel.stop_all("the deployment finished")
                return Outcome(EXIT_OK, f"{len(watched)} component(s) FINISHED")
            await asyncio.wait([kernel.next_change(), received], return_when=asyncio.FIRST_COMPLETED)
            if received.done():
                name = "SIGINT" if received.result() == signal.SIGINT else "SIGTERM"
                await kernel.stop_all(f"{name} received")
                return Outcome(EXIT_SIGINT if name == "SIGINT" else EXIT_SIGTERM, f"stopped by {name}")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
