"""The kernel: every component's service on one asyncio loop, wired by their dependencies.

It is each service's `Host`: it launches steps (building each launch from the environment, the built-ins'
contributions and the recipe), ends processes, knows the services' dependencies, and publishes every event
on the bus — after writing the nucleus log and the terminal, and after its own reactions (the running HARD
dependents of a component that errors restart). It also creates, replaces and removes services for a
deployment, and stops them in reverse dependency order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any

from nucleus.config import NucleusConfig
from nucleus.lifecycle.events import (
    Bus,
    Event,
    OrphanAdopted,
    OrphanGone,
    Problem,
    ServiceAdded,
    ServiceRemoved,
    StateChanged,
    StepStarted,
)
from nucleus.lifecycle.host import EndReport, LineSink, Owner, Peer, ProcessHandle, ServicePolicy
from nucleus.lifecycle.launch import component_environment, describe, skipif_holds, step_environment
from nucleus.lifecycle.logs import ComponentLog, Echo, NucleusLog
from nucleus.lifecycle.process import end_processes, spawn
from nucleus.lifecycle.reaper import Orphan, Reaper
from nucleus.lifecycle.service import ComponentSpec, Service
from nucleus.lifecycle.states import ACTIVE, State
from nucleus.lifecycle.tokens import Tokens
from nucleus.paths import RootLayout
from nucleus.recipe.model import Step

Contributor = Callable[[Owner], Mapping[str, str]]  # what a built-in adds to every step's environment


class Kernel:
    """All services of one nucleus root."""

    def __init__(self, layout: RootLayout, config: NucleusConfig, nucleus_log: NucleusLog, bus: Bus | None = None,
                 *, echo: Echo | None = None) -> None:
        self.layout = layout
        self.config = config
        self.nucleus_log = nucleus_log
        self.bus = bus or Bus()
        self.echo = echo  # component output and transitions on the terminal (foreground deploy)
        self.policy = ServicePolicy(config.error_reset_time, config.graceful_shutdown_timeout)
        self.services: dict[str, Service] = {}
        self.tokens = Tokens()
        self.base_environment = component_environment(config)
        self._contributors: list[Contributor] = []
        # Makes a component's content (by digest) the active one; set by the deployer that owns the store.
        self.activate_content: Callable[[ComponentSpec], None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._change: asyncio.Future[None] | None = None
        self.loop: asyncio.AbstractEventLoop
        self.reaper: Reaper

    # -- wiring ----------------------------------------------------------------------------------

    def open(self) -> None:
        """Attach to the running loop (SIGCHLD handling); call once, from inside the loop."""
        self.loop = asyncio.get_running_loop()
        self.reaper = Reaper(self.loop, on_adopted=self._adopted, on_orphan_gone=self._orphan_gone)
        if not self.reaper.subreaper:
            self.nucleus_log.event("no-subreaper", level="WARN",
                                   note="orphans of components go to PID 1; stops find them by token only")

    def close(self) -> None:
        self.reaper.close()
        for service in self.services.values():
            service.log.close()

    def new_log(self, name: str) -> ComponentLog:
        return ComponentLog(name, self.layout.log_file(name), self.config.log_file_size_kb * 1024,
                            self.config.log_file_count, self.echo, self.nucleus_log.write_failed)

    def add(self, service: Service) -> Service:
        self.services[service.name] = service
        self.tokens.add(service.token, service.name)
        self.publish(ServiceAdded(service.snapshot()))
        return service

    def contribute_environment(self, contributor: Contributor) -> Callable[[], None]:
        """Add to every step's environment from now on (a built-in's endpoint); returns how to take it back."""
        self._contributors.append(contributor)
        return lambda: self._contributors.remove(contributor) if contributor in self._contributors else None

    def hard_dependencies(self, service: Service) -> list[Service]:
        return [self.services[n] for n in service.spec.hard_dependencies if n in self.services]

    def dependents(self, service: Service) -> list[Service]:
        """Services with a HARD dependency on `service`."""
        return [s for s in self.services.values() if service.name in s.spec.hard_dependencies]

    # -- the Host of every service -----------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic()

    def environment(self, owner: Owner, step: Step) -> dict[str, str]:
        contributions = [contribute(owner) for contribute in self._contributors]
        return step_environment(self.base_environment, contributions, owner.spec.lifecycle, step, owner.token)

    def launch(self, owner: Owner, step: Step, sink: LineSink) -> ProcessHandle:
        launch = describe(step, self.environment(owner, step), str(owner.spec.work_dir))
        process = spawn(self.loop, self.reaper, launch, sink=sink, owner=owner)
        self.publish(StepStarted(owner.name, step.name, process.pid, process.pgid, owner.token))
        return process

    def prepare(self, owner: Owner) -> None:
        if self.activate_content is not None:
            self.activate_content(owner.spec)

    def skips(self, owner: Owner, step: Step) -> bool:
        return bool(step.skipif) and skipif_holds(step.skipif or "", self.environment(owner, step),
                                                  str(owner.spec.work_dir))

    async def end(self, owner: Owner, processes: Sequence[ProcessHandle], *, sweep: bool) -> EndReport:
        return await end_processes([p.pgid for p in processes], {owner.token} if sweep else (),
                                   self.config.graceful_shutdown_timeout, lambda: self.orphans([owner]))

    def dependencies(self, owner: Owner) -> list[Peer]:
        return [self.services[n] for n in owner.spec.hard_dependencies if n in self.services]

    def publish(self, event: Event) -> None:
        """Log it, show it, react to it, then let every subscriber hear of it."""
        if isinstance(event, StateChanged):
            self._state_changed(event)
        elif isinstance(event, StepStarted):
            self.nucleus_log.event("step-start", component=event.component, step=event.step, pid=event.pid)
        elif isinstance(event, Problem):
            self.nucleus_log.event(event.what, level=event.level, component=event.component, error=event.detail)
        self.bus.publish(event)
        if isinstance(event, StateChanged):
            change, self._change = self._change, None
            if change is not None and not change.done():
                change.set_result(None)

    def _state_changed(self, event: StateChanged) -> None:
        service = event.service
        self.nucleus_log.event("component-state", component=service.name, version=service.version,
                               old=event.old, new=event.new, cause=event.cause)
        if self.echo is not None:
            self.echo(f"{service.name}: {event.old} -> {event.new} ({event.cause})")
        if event.new is State.ERRORED and service.name in self.services:
            self.restart_dependents(self.services[service.name], f"its dependency {service.name} errored")

    def watch(self, task: asyncio.Task[Any]) -> None:
        task.add_done_callback(self._task_done)

    # -- orphans ---------------------------------------------------------------------------------

    def _adopted(self, orphan: Orphan) -> None:
        owner = orphan.owner
        assert isinstance(owner, Service)
        self.nucleus_log.event("orphan-adopted", component=owner.name, pid=orphan.pid)
        self.publish(OrphanAdopted(owner.name, owner.token, orphan.pid, orphan.started))

    def _orphan_gone(self, orphan: Orphan) -> None:
        owner = orphan.owner
        self.publish(OrphanGone(owner.name if isinstance(owner, Service) else "", orphan.pid, orphan.started))

    def orphans(self, owners: Iterable[Owner]) -> list[tuple[int, float]]:
        """(pid, start time) of every process adopted from these services' steps."""
        return [(o.pid, o.started) for owner in owners for o in self.reaper.orphans_of(owner)]

    # -- tasks -----------------------------------------------------------------------------------

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        """A lifecycle or control task ended; an exception in it is a bug, logged with its traceback."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            import traceback

            exc = task.exception()
            assert exc is not None
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            self.nucleus_log.event("internal-error", level="ERROR", task=task.get_name(), error=text)
            if self.echo is not None:
                self.echo(f"nucleus: internal error in {task.get_name()}: {exc!r} (see logs/nucleus.log)")

    def spawn_task(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = self.loop.create_task(coro, name=name)
        self._tasks.add(task)
        self.watch(task)
        return task

    def restart_dependents(self, service: Service, cause: str) -> None:
        for dependent in self.dependents(service):
            if dependent.state in ACTIVE:
                self.spawn_task(dependent.restart(cause), f"restart:{dependent.name}")

    def next_change(self) -> asyncio.Future[None]:
        """A future done at the next state change of any service.

        Created synchronously, so that a caller who checked the states and then waits cannot miss a
        change that happens in between.
        """
        if self._change is None:
            self._change = self.loop.create_future()
        return self._change

    # -- deployments and stops -------------------------------------------------------------------

    async def deploy(self, specs: Iterable[ComponentSpec], make_service: Callable[[ComponentSpec], Service],
                     hold: frozenset[str] = frozenset(), requested: frozenset[str] = frozenset()) -> list[str]:
        """Create, replace or keep a service per spec (dependency order); returns the names that change.

        A changed component is stopped before this returns (its running HARD dependents restart with it),
        so that whoever waits for the outcome sees the new lifecycle, not the old one. New services named
        in `hold` are created but not started (components stopped with `nucleus stop`); a component stopped
        with `nucleus stop`, or BROKEN, starts again only when it is `requested` (its recipe deployed anew).
        """
        changed = []
        for spec in specs:
            existing = self.services.get(spec.name)
            if existing is None:
                service = make_service(spec)
                if spec.name in hold:
                    service.stopped_by_user = True  # before it is added: recorded held from the start
                self.add(service)
                if spec.name not in hold:
                    service.launch(State.NEW)
                    changed.append(spec.name)
            elif existing.spec.digest != spec.digest or (
                    spec.name in requested and (existing.state is State.BROKEN or existing.stopped_by_user)):
                self.restart_dependents(existing, f"its dependency {spec.name} is being redeployed")
                await existing.restart(f"redeployed {spec.version}", reinstall=True, spec=spec)
                changed.append(spec.name)
            else:
                existing.update_spec(spec)  # same digest: same recipe and artifacts; keep it running
        return changed

    async def stop_services(self, services: Iterable[Service], cause: str) -> None:
        """Stop `services`, each after its HARD dependents among them have stopped.

        Each stop ends its component's process groups; one pass over the process table at the end finds
        whatever any of them left outside its groups (one pass for all, not one per component).
        """
        targets = {s.name: s for s in services}
        stopped = {name: self.loop.create_future() for name in targets}

        async def stop_one(service: Service) -> None:
            try:
                for dependent in self.dependents(service):
                    if dependent.name in stopped:
                        await stopped[dependent.name]
                await service.stop(cause, sweep=False)
            finally:
                stopped[service.name].set_result(None)

        results = await asyncio.gather(*(stop_one(s) for s in targets.values()), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                self.nucleus_log.event("stop-error", level="ERROR", error=repr(result))
        tokens = {s.token for s in targets.values()}
        if tokens:
            report = await end_processes((), tokens, self.config.graceful_shutdown_timeout,
                                         lambda: self.orphans(targets.values()))
            if report.terminated:
                self.nucleus_log.event("strays-ended", processes=report.terminated, killed=report.killed)

    async def remove(self, names: Iterable[str], cause: str) -> list[Service]:
        """Stop the named services (dependents first), run their `uninstall` steps, and forget them."""
        services = [self.services[n] for n in names if n in self.services]
        await self.stop_services(services, cause)
        await asyncio.gather(*(s.uninstall() for s in services if not s.spec.builtin))
        for service in services:
            service.log.close()
            del self.services[service.name]
            self.tokens.remove(service.token)
            self.publish(ServiceRemoved(service.name))
        return services

    async def stop_all(self, cause: str) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.stop_services(list(self.services.values()), cause)
