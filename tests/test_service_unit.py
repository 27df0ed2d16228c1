"""A service driven in-process, with a fake host and a fake clock: no process, no file, milliseconds.

These pin the lifecycle's rules — BROKEN on the third error from one state within errorResetTime, where a
restart starts from, the running HARD dependents of a component that errors restarting — beside the
end-to-end tests that prove the same against real processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nucleus.config import NucleusConfig
from nucleus.lifecycle.events import Event, StateChanged
from nucleus.lifecycle.host import EndReport, LineSink, Owner, Peer, ProcessHandle, ServicePolicy
from nucleus.lifecycle.kernel import Kernel
from nucleus.lifecycle.logs import ComponentLog, NucleusLog
from nucleus.lifecycle.service import ComponentSpec, Service
from nucleus.lifecycle.states import State
from nucleus.paths import RootLayout
from nucleus.recipe.model import Lifecycle, Step


class FakeProcess:
    """A step that ends when the test says so."""

    def __init__(self, pid: int, step: str) -> None:
        self.pid = self.pgid = pid
        self.step = step
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    @property
    def returncode(self) -> int | None:
        return self._exit.result() if self._exit.done() else None

    def finish(self, code: int) -> None:
        if not self._exit.done():
            self._exit.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    def close_output(self) -> None:
        pass


class Script:
    """What each step does when launched: an exit code now, or nothing (it keeps running)."""

    def __init__(self, **exits: list[int | None]) -> None:
        self.exits = exits

    def next_exit(self, owner: str, step: str) -> int | None:
        plan = self.exits.get(f"{owner}.{step}") or self.exits.get(step) or [0]
        return plan.pop(0) if len(plan) > 1 else plan[0]


class FakeHost:
    """Everything a service asks of the nucleus, in memory; time moves only when the test moves it."""

    def __init__(self, script: Script) -> None:
        self.clock = 0.0
        self.script = script
        self.launched: list[tuple[str, str]] = []
        self.events: list[Event] = []
        self.peers: dict[str, Peer] = {}
        self._pid = 1000

    def now(self) -> float:
        return self.clock

    def launch(self, owner: Owner, step: Step, sink: LineSink) -> ProcessHandle:
        self._pid += 1
        process = FakeProcess(self._pid, step.name)
        self.launched.append((owner.name, step.name))
        code = self.script.next_exit(owner.name, step.name)
        if code is not None:
            asyncio.get_running_loop().call_soon(process.finish, code)
        return process

    def prepare(self, owner: Owner) -> None:
        pass

    def skips(self, owner: Owner, step: Step) -> bool:
        return False

    async def end(self, owner: Owner, processes: Sequence[ProcessHandle], *, sweep: bool) -> EndReport:
        for process in processes:
            assert isinstance(process, FakeProcess)
            process.finish(-15)
        return EndReport(len(processes), 0)

    def dependencies(self, owner: Owner) -> list[Peer]:
        return [self.peers[name] for name in owner.spec.hard_dependencies if name in self.peers]

    def publish(self, event: Event) -> None:
        self.events.append(event)

    def watch(self, task: Any) -> None:
        pass

    def states(self, name: str) -> list[str]:
        return [str(e.new) for e in self.events if isinstance(e, StateChanged) and e.component == name]


def lifecycle(**scripts: str) -> Lifecycle:
    return Lifecycle({name: Step(name, script) for name, script in scripts.items()})


def log(tmp: Path, name: str) -> ComponentLog:
    return ComponentLog(name, tmp / f"{name}.log", 1 << 20, 2, None)


async def settle(predicate: Callable[[], bool], turns: int = 500) -> None:
    """Let the loop run until `predicate` holds (a bounded number of turns, never a wall-clock wait)."""
    for _ in range(turns):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("the service did not get there")


def test_the_third_error_from_one_state_within_the_window_is_broken(tmp_path: Path) -> None:
    async def scenario() -> FakeHost:
        host = FakeHost(Script(run=[1]))
        service = Service(ComponentSpec("A", "1.0.0", lifecycle(run="x")), host, log(tmp_path, "A"))
        service.launch()
        await settle(lambda: service.state is State.BROKEN)
        return host

    host = asyncio.run(scenario())
    assert host.states("A") == ["INSTALLED", "STARTING", "RUNNING", "ERRORED"] * 3 + ["BROKEN"]
    assert host.launched == [("A", "run")] * 3


def test_errors_further_apart_than_the_window_never_break_it(tmp_path: Path) -> None:
    async def scenario() -> tuple[FakeHost, Service]:
        host = FakeHost(Script(run=[1]))
        policy = ServicePolicy(error_reset_time=10)
        service = Service(ComponentSpec("A", "1.0.0", lifecycle(run="x")), host, log(tmp_path, "A"), policy)
        service.launch()
        for errors in range(1, 6):  # each error 11 s after the one before: outside the window
            await settle(lambda: host.states("A").count("ERRORED") == errors)
            host.clock += 11
        await service.stop("test over")
        return host, service

    host, service = asyncio.run(scenario())
    assert "BROKEN" not in host.states("A")


def test_an_install_failure_restarts_from_install_a_run_failure_from_start(tmp_path: Path) -> None:
    async def scenario() -> FakeHost:
        host = FakeHost(Script(install=[1, 0], run=[2, 0]))
        service = Service(ComponentSpec("A", "1.0.0", lifecycle(install="i", run="r")), host, log(tmp_path, "A"))
        service.launch()
        await settle(lambda: service.state is State.FINISHED)
        return host

    host = asyncio.run(scenario())
    # install fails → NEW (install again); run fails → INSTALLED (no install again)
    assert host.launched == [("A", "install"), ("A", "install"), ("A", "run"), ("A", "run")]
    assert host.states("A") == ["ERRORED", "NEW", "INSTALLED", "STARTING", "RUNNING", "ERRORED", "INSTALLED",
                                "STARTING", "RUNNING", "FINISHED"]


def test_a_skipped_startup_hands_over_to_run(tmp_path: Path) -> None:
    async def scenario() -> FakeHost:
        host = FakeHost(Script())
        host.skips = lambda owner, step: step.name == "startup"  # type: ignore[method-assign]
        spec = ComponentSpec("A", "1.0.0", Lifecycle({"startup": Step("startup", "s", skipif="onpath sh"),
                                                      "run": Step("run", "r")}))
        service = Service(spec, host, log(tmp_path, "A"))
        service.launch()
        await settle(lambda: service.state is State.FINISHED)
        return host

    host = asyncio.run(scenario())
    assert host.launched == [("A", "run")]


def test_a_component_waits_for_its_hard_dependency(tmp_path: Path) -> None:
    async def scenario() -> FakeHost:
        host = FakeHost(Script(**{"Db.run": [None]}))  # Db keeps running
        db = Service(ComponentSpec("Db", "1.0.0", lifecycle(install="i", run="r")), host, log(tmp_path, "Db"))
        app = Service(ComponentSpec("App", "1.0.0", lifecycle(run="r"), hard_dependencies=("Db",)), host,
                      log(tmp_path, "App"))
        host.peers = {"Db": db}
        app.launch()
        await settle(lambda: app.state is State.INSTALLED)
        for _ in range(20):
            await asyncio.sleep(0)
        assert app.state is State.INSTALLED  # still waiting
        db.launch()
        await settle(lambda: app.state is State.FINISHED)
        await db.stop("test over")
        return host

    host = asyncio.run(scenario())
    assert host.launched.index(("Db", "run")) < host.launched.index(("App", "run"))


class InMemoryKernel(Kernel):
    """The real kernel — its publishing, its reactions, its deploy and stop logic — with the fake host's
    launching, ending and clock in place of processes."""

    def __init__(self, tmp: Path, script: Script) -> None:
        layout = RootLayout(tmp)
        super().__init__(layout, NucleusConfig(), NucleusLog(tmp / "nucleus.log", 1 << 20, 2))
        self.fake = FakeHost(script)

    def open(self) -> None:
        self.loop = asyncio.get_running_loop()

    def launch(self, owner: Owner, step: Step, sink: LineSink) -> ProcessHandle:
        return self.fake.launch(owner, step, sink)

    async def end(self, owner: Owner, processes: Sequence[ProcessHandle], *, sweep: bool) -> EndReport:
        return await self.fake.end(owner, processes, sweep=sweep)

    async def stop_services(self, services: Any, cause: str) -> None:  # no process table to sweep
        for service in services:
            await service.stop(cause, sweep=False)


def test_running_hard_dependents_restart_when_a_dependency_errors(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        kernel = InMemoryKernel(tmp_path, Script(**{"Db.run": [None, 1, None], "App.run": [None]}))
        kernel.open()
        events: list[str] = []
        kernel.bus.subscribe(lambda e: events.append(f"{e.component}:{e.new}"), kinds=(StateChanged,))
        db = kernel.add(Service(ComponentSpec("Db", "1.0.0", lifecycle(run="r")), kernel, log(tmp_path, "Db")))
        app = kernel.add(Service(ComponentSpec("App", "1.0.0", lifecycle(run="r"), hard_dependencies=("Db",)),
                                 kernel, log(tmp_path, "App")))
        db.launch()
        app.launch()
        await settle(lambda: app.state is State.RUNNING)
        # Db's run ends with an error: Db restarts, and its running dependent App restarts with it.
        [process] = [p for p in db._steps if isinstance(p, FakeProcess)]
        process.finish(1)
        await settle(lambda: "App:STOPPING" in events and app.state is State.RUNNING and db.state is State.RUNNING)
        await kernel.stop_all("test over")
        return events

    events = asyncio.run(scenario())
    errored = events.index("Db:ERRORED")
    assert "App:STOPPING" in events[errored:]
    assert events[-4:].count("App:FINISHED") + events[-4:].count("Db:FINISHED") == 2
