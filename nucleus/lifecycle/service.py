"""One component's life: install, wait for dependencies, start, supervise, recover, stop.

A `Service` drives its component through the states of `states.py`; every change goes through `_set`,
which checks the transition table and publishes the change. The lifecycle runs as one task; stopping
cancels that task, runs `shutdown`, then ends every process of the component. All a service needs of the
nucleus around it goes through its `Host` (`host.py`): it never sees the kernel, so it is tested with a
fake host and clock.
"""

from __future__ import annotations

import asyncio

from nucleus.lifecycle.events import (
    Bootstrapped,
    Problem,
    ServiceSnapshot,
    ServiceUpdated,
    StateChanged,
    StepReaped,
)
from nucleus.lifecycle.host import Host, ProcessHandle, ServicePolicy, StepStartError
from nucleus.lifecycle.logs import ComponentLog
from nucleus.lifecycle.spec import ComponentSpec, new_token
from nucleus.lifecycle.states import READY, State, check_transition
from nucleus.recipe.model import Step

__all__ = ["ComponentSpec", "Service", "StepFailed", "new_token"]

ERRORS_BEFORE_BROKEN = 3


class StepFailed(Exception):
    """A step ended badly; `origin` is the state whose error count it adds to."""

    def __init__(self, origin: State, cause: str) -> None:
        super().__init__(cause)
        self.origin, self.cause = origin, cause


class Service:
    """A component under supervision."""

    def __init__(self, spec: ComponentSpec, host: Host, log: ComponentLog, policy: ServicePolicy = ServicePolicy(),
                 token: str | None = None) -> None:
        self.spec = spec
        self.host = host
        self.log = log
        self.policy = policy
        self.token = token or new_token()
        self.state = State.NEW
        self.since = host.now()  # when the current state was entered (monotonic)
        self.stopped_by_user = False
        self._task: asyncio.Task[None] | None = None
        self._steps: list[ProcessHandle] = []  # every step process not yet ended, newest last
        self._errors: dict[State, list[float]] = {}
        self._started = False  # reached STARTING since the last stop: shutdown applies
        self._running_step: str | None = None  # "startup" or "run": which one made it RUNNING
        self._waiters: list[asyncio.Future[State]] = []
        self._control = asyncio.Lock()  # one stop or restart at a time
        self.last_cause = ""

    @property
    def name(self) -> str:
        return self.spec.name

    def snapshot(self) -> ServiceSnapshot:
        spec = self.spec
        return ServiceSnapshot(spec.name, spec.version, self.state, spec.builtin, spec.digest, self.last_cause,
                               self.stopped_by_user, self.token, spec.configuration)

    # -- state -----------------------------------------------------------------------------------

    def _set(self, new: State, cause: str) -> None:
        old = self.state
        check_transition(self.name, old, new, cause)
        self.state, self.last_cause, self.since = new, cause, self.host.now()
        self.log.event(f"state {old} -> {new}: {cause}")
        self.host.publish(StateChanged(self.snapshot(), old, new, cause))
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(new)

    async def wait_change(self) -> State:
        """Wait for this component's next state change."""
        waiter: asyncio.Future[State] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return await waiter

    def hold(self) -> None:
        """Keep it stopped until it is deployed anew or restarted (`nucleus stop`, a held restore)."""
        if not self.stopped_by_user:
            self.stopped_by_user = True
            self.host.publish(ServiceUpdated(self.snapshot()))

    def update_spec(self, spec: ComponentSpec) -> None:
        """A spec with the same digest (same recipe and artifacts): nothing to restart."""
        self.spec = spec
        self.host.publish(ServiceUpdated(self.snapshot()))

    # -- the lifecycle ---------------------------------------------------------------------------

    def launch(self, phase: State = State.NEW) -> None:
        """Start the lifecycle from `phase` (NEW: install first; INSTALLED: start)."""
        self._task = asyncio.get_running_loop().create_task(self._lifecycle(phase), name=f"lifecycle:{self.name}")
        self.host.watch(self._task)

    async def _lifecycle(self, phase: State) -> None:
        while True:
            try:
                if phase is State.NEW:
                    await self._install()
                await self._wait_dependencies()
                await self._start()
                await self._supervise()
                return
            except StepFailed as failure:
                next_phase = await self._errored(failure)
            except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - a bug or a system limit must not leave it stuck
                origin = State.NEW if self.state in (State.NEW, State.INSTALLED) else self.state
                origin = origin if origin in (State.NEW, State.STARTING, State.RUNNING) else State.RUNNING
                self.host.publish(Problem(self.name, "step-error", f"{type(exc).__name__}: {exc}"))
                next_phase = await self._errored(StepFailed(origin, f"{type(exc).__name__}: {exc}"))
            if next_phase is None:
                return
            phase = next_phase

    async def _install(self) -> None:
        self.host.prepare(self)
        if not self.spec.bootstrapped and self.spec.lifecycle.step("bootstrap"):
            code, note = await self._run_step("bootstrap", State.NEW)
            if code != 0:
                raise StepFailed(State.NEW, f"bootstrap {note}")
            self.spec = self.spec._replace(bootstrapped=True)
            self.host.publish(Bootstrapped(self.name, self.spec.version, self.spec.digest))
        step = self.spec.lifecycle.step("install")
        if step is None:
            self._set(State.INSTALLED, "no install step")
            return
        code, note = await self._run_step("install", State.NEW)
        if code != 0:
            raise StepFailed(State.NEW, f"install {note}")
        self._set(State.INSTALLED, f"install {note}")

    async def _wait_dependencies(self) -> None:
        """Block until every HARD dependency is RUNNING or FINISHED (SOFT ones never delay)."""
        while True:
            waiting = next((d for d in self.host.dependencies(self) if d.state not in READY), None)
            if waiting is None:
                return
            await waiting.wait_change()

    async def _start(self) -> None:
        """STARTING, then `startup` — or `run` when there is no startup step or it is skipped (Greengrass's
        startup handler treats a skipped step as "nothing done" and goes on to the run handler)."""
        deps = self.spec.hard_dependencies
        self._set(State.STARTING, "dependencies ready" if deps else "no dependencies to wait for")
        self._started = True
        self._running_step = None
        lifecycle = self.spec.lifecycle
        startup = lifecycle.step("startup")
        skipped = ""
        if startup is not None:
            if not self._skip(startup):
                code, note = await self._run_step("startup", State.STARTING, check_skip=False)
                if code != 0:
                    raise StepFailed(State.STARTING, f"startup {note}")
                self._running_step = "startup"
                self._set(State.RUNNING, f"startup {note}")
                return
            skipped = f"startup skipped ({startup.skipif}); "
        run = lifecycle.step("run")
        if run is None:
            self._set(State.FINISHED, f"{skipped}no run step" if skipped else "no startup or run step")
        elif self._skip(run):
            self._set(State.FINISHED, f"{skipped}run skipped ({run.skipif})")
        else:
            process = self._spawn(run, State.STARTING)
            self._running_step = "run"
            self._set(State.RUNNING, f"{skipped}run started, pid {process.pid}")

    async def _supervise(self) -> None:
        """While RUNNING: wait for `run` to exit (a `startup` component stays up until it is stopped)."""
        if self.state is not State.RUNNING:
            return
        if self._running_step != "run":
            await asyncio.get_running_loop().create_future()  # until cancelled by a stop
        run = self.spec.lifecycle.steps["run"]
        process = self._steps[-1]
        code, note = await self._wait_step(process, run, State.RUNNING)
        if code != 0:
            raise StepFailed(State.RUNNING, f"run {note}")
        self._set(State.FINISHED, f"run {note}")

    async def _errored(self, failure: StepFailed) -> State | None:
        """ERRORED: end what is left, count the error, run recover, and pick where to restart from."""
        self._set(State.ERRORED, failure.cause)
        await self._end_all()
        now = self.host.now()
        window = self.policy.error_reset_time
        recent = [t for t in self._errors.get(failure.origin, []) if now - t < window] + [now]
        self._errors[failure.origin] = recent
        if len(recent) >= ERRORS_BEFORE_BROKEN:
            self._set(State.BROKEN, f"{len(recent)} errors in {failure.origin} within {window:g}s; "
                                    f"last: {failure.cause}")
            return None
        if self.spec.lifecycle.step("recover"):
            code, note = await self._run_step_safely("recover", State.ERRORED)
            await self._end_all()
            if code != 0:
                self.log.event(f"recover {note}")
        phase = State.NEW if failure.origin is State.NEW else State.INSTALLED
        self._set(phase, f"restarting after error {len(recent)} of {ERRORS_BEFORE_BROKEN}")
        return phase

    # -- steps -----------------------------------------------------------------------------------

    def _skip(self, step: Step) -> bool:
        return bool(step.skipif) and self.host.skips(self, step)

    def _spawn(self, step: Step, origin: State) -> ProcessHandle:
        def sink(level: str, text: str) -> None:
            self.log.line(step.name, level, text)

        try:
            process = self.host.launch(self, step, sink)
        except StepStartError as exc:
            raise StepFailed(origin, f"{step.name} could not start: {exc}") from None
        self._steps.append(process)
        return process

    async def _run_step(self, name: str, origin: State, *, check_skip: bool = True) -> tuple[int, str]:
        """Run a step to its end; (exit code, a note such as 'exited 0' or 'timed out after 120s')."""
        step = self.spec.lifecycle.steps[name]
        if check_skip and self._skip(step):
            return 0, f"skipped ({step.skipif})"
        process = self._spawn(step, origin)
        return await self._wait_step(process, step, origin)

    async def _run_step_safely(self, name: str, origin: State) -> tuple[int, str]:
        """A step whose failure must not stop what comes after it (shutdown, recover)."""
        try:
            return await self._run_step(name, origin)
        except StepFailed as failure:
            return -1, failure.cause

    async def _wait_step(self, process: ProcessHandle, step: Step, origin: State) -> tuple[int, str]:
        timeout = step.effective_timeout
        try:
            code = await asyncio.wait_for(process.wait(), timeout)
        except asyncio.TimeoutError:
            await self.host.end(self, [process], sweep=False)
            await process.wait()
            self._forget(process)
            return -1, f"timed out after {timeout}s (its processes were ended)"
        if step.name != "startup":  # a startup's background processes stay until the component stops
            self._forget(process)
        if code < 0:
            return code, f"was killed by signal {-code}"
        return code, f"exited {code}"

    def _forget(self, process: ProcessHandle) -> None:
        if process in self._steps and process.returncode is not None:
            self._steps.remove(process)
            self.host.publish(StepReaped(self.name, process.pid, process.pgid))

    async def _end_all(self, sweep: bool = True) -> None:
        """End every process of this component: the groups of its live steps and (with `sweep`) anything
        else carrying its token. Without `sweep`, the caller sweeps for many components at once."""
        report = await self.host.end(self, [p for p in self._steps if p.returncode is None], sweep=sweep)
        for process in list(self._steps):
            if process.returncode is None:
                await process.wait()
            process.close_output()
            self.host.publish(StepReaped(self.name, process.pid, process.pgid))
        self._steps.clear()
        if report.killed:
            self.log.event(f"{report.killed} process group(s) or process(es) ignored SIGTERM and were killed")

    # -- stop and restart ------------------------------------------------------------------------

    async def _cancel_lifecycle(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _halt(self, cause: str, sweep: bool = True) -> None:
        """Cancel the lifecycle, enter STOPPING, run shutdown (if the component started), end its processes."""
        await self._cancel_lifecycle()
        if self.state is not State.STOPPING:  # a restart cancelled half-way is already stopping
            self._set(State.STOPPING, cause)
        if self._started and self.spec.lifecycle.step("shutdown"):
            code, note = await self._run_step_safely("shutdown", State.STOPPING)
            if code != 0:
                self.log.event(f"shutdown {note}")
        self._started = False
        await self._end_all(sweep)

    async def stop(self, cause: str, sweep: bool = True, *, by_user: bool = False) -> None:
        """Stop the component: STOPPING, shutdown, end its processes, FINISHED. BROKEN stays BROKEN.

        A FINISHED or BROKEN component has no step running, but its steps may have left processes in the
        background: those are ended too. `sweep=False` leaves the search for strays (by token) to a caller
        stopping many components at once. `by_user`: it stays stopped until deployed or restarted.
        """
        async with self._control:
            if by_user:
                self.hold()
            idle = self.state is State.BROKEN or (
                self.state is State.FINISHED and not self._steps
                and not (self._started and self.spec.lifecycle.step("shutdown")))
            if idle:
                await self._cancel_lifecycle()
                if sweep:
                    await self._end_all(sweep)
                return
            await self._halt(cause, sweep)
            self._set(State.FINISHED, cause)

    async def uninstall(self) -> None:
        """Run `uninstall` once the component is stopped for good (removed from the device), as Greengrass
        ≥ 2.17 does. Like classic, a failure or a timeout is logged and the removal goes on."""
        if self.spec.lifecycle.step("uninstall") is None:
            return
        async with self._control:
            code, note = await self._run_step_safely("uninstall", State.FINISHED)
            await self._end_all()
            self.log.event(f"uninstall {note}")
            if code != 0:
                self.host.publish(Problem(self.name, "uninstall-failed", note, "WARN"))

    async def restart(self, cause: str, *, reinstall: bool = False, spec: ComponentSpec | None = None) -> None:
        """Stop what runs and start again (from install when `reinstall`); also the way out of BROKEN."""
        async with self._control:
            if self.state is State.BROKEN:
                await self._cancel_lifecycle()
            else:
                await self._halt(cause)
            if spec is not None:
                self.spec = spec
            self._errors.clear()
            self.stopped_by_user = False
            phase = State.NEW if reinstall else State.INSTALLED
            self._set(phase, cause)
            self.launch(phase)
