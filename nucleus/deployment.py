"""Applying a plan: import into the store, turn components into services, and follow them to an outcome.

The foreground deploy (`nucleus deploy` with no daemon on the root) is `run_foreground`; the daemon uses
the same pieces (`import_plan`, `specs_for`, `Recorder`).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from nucleus.config import NucleusConfig
from nucleus.errors import EXIT_FAILED, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, NucleusError
from nucleus.lifecycle.builtin import BuiltinService
from nucleus.lifecycle.kernel import Kernel, KernelOptions
from nucleus.lifecycle.logs import Echo
from nucleus.lifecycle.process import StepProcess, end_processes
from nucleus.lifecycle.service import ComponentSpec, Service
from nucleus.lifecycle.states import State
from nucleus.paths import RootLayout
from nucleus.planning import Plan
from nucleus.procinfo import boot_id, start_time
from nucleus.recipe.model import GENERIC, Step
from nucleus.state import ComponentRecord, ProcessRecord, State as StateDB, now_iso
from nucleus.store import Store

BuiltinFactory = Callable[[ComponentSpec, Kernel], Service]


def refuse_unsupported(plan: Plan) -> None:
    """Only generic components run here; others validate and plan, but a deploy refuses them."""
    others = [c for c in plan.components if not c.builtin and c.component_type != GENERIC]
    if others:
        listed = ", ".join(f"{c.name} ({c.component_type})" for c in others)
        raise NucleusError(f"nucleus runs generic components only; this deployment has {listed}",
                           hint="Lambda, plugin and nucleus components need the classic Greengrass nucleus")


def import_plan(plan: Plan, layout: RootLayout) -> dict[str, str]:
    """Put every component's recipe and artifacts into the store; returns each component's digest."""
    store = Store(layout)
    digests = {}
    for component in plan.components:
        if component.recipe is None or component.manifest is None:
            digests[component.name] = f"built-in:{component.version}"
            continue
        digests[component.name] = store.import_component(component.recipe, component.manifest,
                                                         component.artifact_source)
        layout.work(component.name).mkdir(parents=True, exist_ok=True)
    return digests


def specs_for(plan: Plan, digests: dict[str, str], layout: RootLayout) -> list[ComponentSpec]:
    return [ComponentSpec(name=c.name, version=c.version, lifecycle=c.lifecycle,
                          hard_dependencies=c.hard_dependencies, soft_dependencies=c.soft_dependencies,
                          work_dir=layout.work(c.name), digest=digests[c.name], builtin=c.builtin)
            for c in plan.components]


class Recorder:
    """Keeps the state database in step with the kernel: states, spawned process groups, bootstraps.

    Writes are coalesced: all changes of one event-loop turn go into one transaction.
    """

    def __init__(self, state: StateDB) -> None:
        self.state = state
        self._dirty: dict[str, Service] = {}
        self._processes: list[ProcessRecord] = []
        self._scheduled = False
        self._boot_id = boot_id()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def transition(self, service: Service, old: State, new: State, cause: str) -> None:
        self._dirty[service.name] = service
        self._schedule()

    def spawned(self, service: Service, step: Step, process: StepProcess) -> None:
        started = start_time(process.pid)
        if started is not None:
            self._processes.append(ProcessRecord(process.pgid, started, self._boot_id, service.name, service.token))
            self._schedule()

    def needs_bootstrap(self, spec: ComponentSpec) -> bool:
        return not self.state.is_bootstrapped(spec.name, spec.version, spec.digest)

    def record_bootstrap(self, spec: ComponentSpec) -> None:
        self.state.set_bootstrapped(spec.name, spec.version, spec.digest)

    def flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, {}
        processes, self._processes = self._processes, []
        if dirty:
            self.state.record_components(record_of(s) for s in dirty.values())
        for process in processes:
            self.state.record_process(process)


def record_of(service: Service) -> ComponentRecord:
    return ComponentRecord(service.name, service.spec.version, str(service.state), service.spec.builtin,
                           service.spec.digest, service.last_cause, service.stopped_by_user, service.token,
                           now_iso())


async def end_leftovers(state: StateDB) -> int:
    """End the processes a killed nucleus left behind on this root; returns how many were found.

    A group is signalled only if its leader is alive with the recorded start time in this boot; everything
    else is found by the component's token in its environment.
    """
    records = state.processes()
    if not records:
        return 0
    this_boot = boot_id()
    groups = [r.pgid for r in records if r.boot_id == this_boot and start_time(r.pgid) == r.start_time]
    report = await end_processes(groups, {r.token for r in records}, 5.0)
    state.clear_processes()
    return report.terminated


@dataclass
class Outcome:
    exit_code: int
    summary: str


def make_service_factory(kernel: Kernel, builtins: dict[str, BuiltinFactory]) -> Callable[[ComponentSpec], Service]:
    def make(spec: ComponentSpec) -> Service:
        if spec.builtin:
            factory = builtins.get(spec.name)
            return factory(spec, kernel) if factory else BuiltinService(spec, kernel, kernel.new_log(spec.name))
        return Service(spec, kernel, kernel.new_log(spec.name))
    return make


async def run_foreground(plan: Plan, layout: RootLayout, config: NucleusConfig, *, echo: Echo,
                         builtins: dict[str, BuiltinFactory] | None = None,
                         request: dict | None = None) -> Outcome:
    """Deploy `plan` in this process and supervise it to its end (see DESIGN.md, foreground deploy)."""
    from nucleus.lifecycle.logs import NucleusLog

    refuse_unsupported(plan)
    state = StateDB(layout.state_file)
    nucleus_log = NucleusLog(layout.nucleus_log, config.log_file_size_kb * 1024, config.log_file_count)
    recorder = Recorder(state)
    kernel = Kernel(layout, config, nucleus_log, KernelOptions(echo=echo, observer=recorder))
    kernel.open()
    deployment_id = state.begin_deployment("foreground", request or {})
    try:
        leftovers = await end_leftovers(state)
        if leftovers:
            echo(f"nucleus: ended {leftovers} process(es) left behind by a nucleus that was killed")
        digests = await asyncio.to_thread(import_plan, plan, layout)
        specs = specs_for(plan, digests, layout)
        kernel.deploy(specs, make_service_factory(kernel, builtins or {}))
        outcome = await _follow(kernel, [c.name for c in plan.components if not c.builtin])
        status = "SUCCEEDED" if outcome.exit_code == EXIT_OK else "FAILED"
        state.finish_deployment(deployment_id, status, None if status == "SUCCEEDED" else outcome.summary)
        return outcome
    except BaseException as exc:
        state.finish_deployment(deployment_id, "FAILED", str(exc) or type(exc).__name__)
        await kernel.stop_all("the deployment failed")
        raise
    finally:
        recorder.flush()
        kernel.close()
        nucleus_log.close()
        state.close()


async def _follow(kernel: Kernel, names: Iterable[str]) -> Outcome:
    """Wait for the foreground outcome: all FINISHED (0), one BROKEN (1), or a signal (130/143)."""
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
                signum = received.result()
                name = "SIGINT" if signum == signal.SIGINT else "SIGTERM"
                await kernel.stop_all(f"{name} received")
                return Outcome(EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM,
                               f"stopped by {name}")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
