"""The kernel: every component's service on one asyncio loop, wired by their dependencies.

It creates services for a deployment, gives each step its environment, restarts the running HARD
dependents of a component that errors or restarts, stops everything in reverse dependency order, and
reports each state change (log files, terminal, the state database) through `on_transition`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple, Protocol

from nucleus.config import NucleusConfig
from nucleus.lifecycle.logs import ComponentLog, Echo, NucleusLog
from nucleus.lifecycle.process import StepProcess
from nucleus.lifecycle.reaper import Orphan, Reaper
from nucleus.lifecycle.service import ComponentSpec, Service
from nucleus.lifecycle.states import ACTIVE, State
from nucleus.paths import RootLayout
from nucleus.recipe.model import Step

AWS_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


class KernelObserver(Protocol):
    """Who else hears of state changes and spawned processes (the state database, the daemon)."""

    def transition(self, service: Service, old: State, new: State, cause: str) -> None: ...

    def spawned(self, service: Service, step: Step, process: StepProcess) -> None: ...

    def reaped(self, service: Service, process: StepProcess) -> None: ...

    def needs_bootstrap(self, spec: ComponentSpec) -> bool: ...

    def record_bootstrap(self, spec: ComponentSpec) -> None: ...

    def adopted(self, service: Service, orphan: Orphan) -> None: ...

    def orphan_gone(self, orphan: Orphan) -> None: ...


class KernelOptions(NamedTuple):
    echo: Echo | None = None  # component output and transitions on the terminal (foreground deploy)
    observer: KernelObserver | None = None


def component_environment(config: NucleusConfig, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every step starts from: the nucleus's own, minus its virtualenv, plus Greengrass's.

    Without the virtualenv, `python3` and `pip3 install --user` in a recipe mean the system's, as on a
    device. In sandbox mode AWS credentials inherited from the user are removed and `~/.aws` is hidden,
    so that the token exchange service is what components use.
    """
    env = dict(os.environ if environ is None else environ)
    venvs = {env.pop("VIRTUAL_ENV", None), sys.prefix if sys.prefix != sys.base_prefix else None} - {None}
    venv_bins = {os.path.normpath(os.path.join(venv, "bin")) for venv in venvs if venv}
    if venv_bins and "PATH" in env:
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                      if os.path.normpath(p) not in venv_bins)
    env.pop("PYTHONHOME", None)
    if config.sandbox:
        for name in AWS_CREDENTIAL_VARIABLES:
            env.pop(name, None)
        env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        env["AWS_CONFIG_FILE"] = os.devnull
    env.update(config.setenv)
    env.update({
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "AWS_IOT_THING_NAME": config.thing_name,
        "GG_ROOT_CA_PATH": config.root_ca_path or "",
        "GGC_VERSION": config.nucleus_version,
        "PYTHONUNBUFFERED": "1",
    })
    return env


class Kernel:
    """All services of one nucleus root."""

    def __init__(self, layout: RootLayout, config: NucleusConfig, nucleus_log: NucleusLog,
                 options: KernelOptions | None = None) -> None:
        self.layout = layout
        self.config = config
        self.nucleus_log = nucleus_log
        self.options = options or KernelOptions()
        self.services: dict[str, Service] = {}
        self.credentials_url: str | None = None  # set by the token exchange service once it serves
        self.base_environment = component_environment(config)
        self._tasks: set[asyncio.Task] = set()
        self._change: asyncio.Future | None = None
        # Who else hears of each state change while they listen (a daemon client following a deployment).
        self.listeners: set[Callable[[Service, State, State, str], None]] = set()
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

    def now(self) -> float:
        return time.monotonic()

    def new_log(self, name: str) -> ComponentLog:
        return ComponentLog(name, self.layout.log_file(name), self.config.log_file_size_kb * 1024,
                            self.config.log_file_count, self.options.echo, self.nucleus_log.write_failed)

    def add(self, service: Service) -> Service:
        self.services[service.name] = service
        return service

    def hard_dependencies(self, service: Service) -> list[Service]:
        return [self.services[n] for n in service.spec.hard_dependencies if n in self.services]

    def dependents(self, service: Service) -> list[Service]:
        """Services with a HARD dependency on `service`."""
        return [s for s in self.services.values() if service.name in s.spec.hard_dependencies]

    # -- what services ask of the kernel ---------------------------------------------------------

    def step_environment(self, service: Service, step: Step) -> dict[str, str]:
        env = dict(self.base_environment)
        if self.credentials_url:
            env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = self.credentials_url
        env.update(service.spec.lifecycle.setenv)
        env.update(step.setenv)
        # Last, so that no Setenv can change them: the token is how a stop finds every process of the
        # component, and what the token exchange service checks.
        env["SVCUID"] = env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = service.token
        return env

    def token_matches(self, token: str) -> bool:
        """Whether `token` is a deployed component's SVCUID; compares with every one in constant time."""
        import hmac

        given = token.encode()
        found = False
        for service in self.services.values():
            found |= hmac.compare_digest(service.token.encode(), given)
        return found

    def needs_bootstrap(self, spec: ComponentSpec) -> bool:
        observer = self.options.observer
        return observer.needs_bootstrap(spec) if observer else True

    def record_bootstrap(self, spec: ComponentSpec) -> None:
        if self.options.observer:
            self.options.observer.record_bootstrap(spec)

    def on_spawn(self, service: Service, step: Step, process: StepProcess) -> None:
        self.nucleus_log.event("step-start", component=service.name, step=step.name, pid=process.pid)
        if self.options.observer:
            self.options.observer.spawned(service, step, process)

    def on_reaped(self, service: Service, process: StepProcess) -> None:
        if self.options.observer:
            self.options.observer.reaped(service, process)

    def _adopted(self, orphan: Orphan) -> None:
        service = orphan.owner
        assert isinstance(service, Service)
        self.nucleus_log.event("orphan-adopted", component=service.name, pid=orphan.pid)
        if self.options.observer:
            self.options.observer.adopted(service, orphan)

    def _orphan_gone(self, orphan: Orphan) -> None:
        if self.options.observer:
            self.options.observer.orphan_gone(orphan)

    def orphans(self, services: Iterable[Service]) -> list[tuple[int, float]]:
        """(pid, start time) of every process adopted from these services' steps."""
        return [(o.pid, o.started) for service in services for o in self.reaper.orphans_of(service)]

    def on_transition(self, service: Service, old: State, new: State, cause: str) -> None:
        self.nucleus_log.event("component-state", component=service.name, version=service.spec.version,
                               old=old, new=new, cause=cause)
        if self.options.echo is not None:
            self.options.echo(f"{service.name}: {old} -> {new} ({cause})")
        if self.options.observer:
            self.options.observer.transition(service, old, new, cause)
        for listener in list(self.listeners):
            listener(service, old, new, cause)
        if new is State.ERRORED:
            self.restart_dependents(service, f"its dependency {service.name} errored")
        change, self._change = self._change, None
        if change is not None and not change.done():
            change.set_result(None)

    def task_done(self, task: asyncio.Task) -> None:
        """A lifecycle or control task ended; an exception in it is a bug, logged with its traceback."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            import traceback

            exc = task.exception()
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            self.nucleus_log.event("internal-error", level="ERROR", task=task.get_name(), error=text)
            if self.options.echo is not None:
                self.options.echo(f"nucleus: internal error in {task.get_name()}: {exc!r} (see logs/nucleus.log)")

    def spawn_task(self, coro: object, name: str) -> asyncio.Task:
        task = self.loop.create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self.task_done)
        return task

    def restart_dependents(self, service: Service, cause: str) -> None:
        for dependent in self.dependents(service):
            if dependent.state in ACTIVE:
                self.spawn_task(dependent.restart(cause), f"restart:{dependent.name}")

    def next_change(self) -> asyncio.Future:
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
                service = self.add(make_service(spec))
                if spec.name in hold:
                    service.stopped_by_user = True
                else:
                    service.launch(State.NEW)
                    changed.append(spec.name)
            elif existing.spec.digest != spec.digest or (
                    spec.name in requested and (existing.state is State.BROKEN or existing.stopped_by_user)):
                self.restart_dependents(existing, f"its dependency {spec.name} is being redeployed")
                await existing.restart(f"redeployed {spec.version}", reinstall=True, spec=spec)
                changed.append(spec.name)
            else:
                existing.spec = spec  # same digest: same recipe and artifacts; keep it running
        return changed

    async def stop_services(self, services: Iterable[Service], cause: str) -> None:
        """Stop `services`, each after its HARD dependents among them have stopped.

        Each stop ends its component's process groups; one pass over the process table at the end finds
        whatever any of them left outside its groups (one pass for all, not one per component).
        """
        from nucleus.lifecycle.process import end_processes

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
        return services

    async def stop_all(self, cause: str) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.stop_services(list(self.services.values()), cause)
