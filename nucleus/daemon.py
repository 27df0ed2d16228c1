"""`nucleus start`: the nucleus as a long-running service, answering on its control socket.

On start it ends whatever a killed predecessor left behind, marks deployments that a crash interrupted as
FAILED, and restores the last deployed set (components stopped with `nucleus stop` stay stopped). It then
serves requests (`control.py`) until SIGTERM, SIGINT or a `shutdown` request, and stops every component
cleanly before it exits 0. Deployments are applied one at a time; everything else is answered meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from nucleus.config import NucleusConfig
from nucleus.control import BadRequest, decode_request, encode, short_socket_path
from nucleus.deployment import Outcome, wait_settled
from nucleus.errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, NotFoundError, NucleusError
from nucleus.lifecycle.logs import tail
from nucleus.lifecycle.service import Service
from nucleus.lifecycle.states import State
from nucleus.paths import RootLayout
from nucleus.planning import KeptRoot, Plan, PlanRequest
from nucleus.runtime import Runtime
from nucleus.state import RootRecord
from nucleus.store import Store

Send = Callable[[dict[str, Any]], None]  # where a handler's progress messages go
MAX_REQUEST = 16 * 1024**2  # one request line (a deploy of thousands of recipe paths fits)
MAX_PENDING_OUTPUT = 4 * 1024**2  # a `logs -f` reader this far behind is dropped, not buffered for ever


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _done(exit_code: int, result: Any = None, lines: list[str] | None = None) -> dict[str, Any]:
    return {"done": {"exit": exit_code, "result": result, "lines": lines or []}}


def _failure(exc: NucleusError) -> dict[str, Any]:
    return _done(exc.exit_code, lines=exc.lines())


class Channel:
    """One client connection: messages out, and whether the client is still there."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    def send(self, message: dict[str, Any]) -> None:
        if not self._writer.is_closing():
            self._writer.write(encode(message))

    def pending(self) -> int:
        """Bytes written but not yet taken by the client."""
        return self._writer.transport.get_write_buffer_size()

    async def wait_closed(self) -> None:
        """Until the client goes away (Ctrl-C on `nucleus logs -f`)."""
        await self._reader.read()


class Daemon:
    """The kernel plus the control socket, for one root."""

    def __init__(self, layout: RootLayout, config: NucleusConfig, ready: Callable[[], None] | None = None) -> None:
        self.layout, self.config = layout, config
        self._ready = ready  # told once the socket serves (the lock's note becomes `daemon`)
        self.runtime = Runtime(layout, config, mirror=_stderr, daemon=True)
        self._deploying = asyncio.Lock()
        self._stop: asyncio.Future[str] | None = None
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task] = set()

    @property
    def kernel(self):  # noqa: ANN201 - the runtime's Kernel
        return self.runtime.kernel

    @property
    def state(self):  # noqa: ANN201 - the runtime's State
        return self.runtime.state

    # -- life --------------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = loop.create_future()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._request_stop, signal.Signals(signum).name)
        log = self.runtime.log
        try:
            log.event("nucleus-start", root=self.layout.path, pid=os.getpid())
            leftovers = await self.runtime.open()
            if leftovers:
                log.event("leftovers-ended", level="WARN", processes=leftovers)
            for deployment_id in self.state.unfinished_deployments():
                self.state.finish_deployment(deployment_id, "FAILED", "interrupted: the nucleus stopped before "
                                             "the deployment finished")
            reason = "it failed"
            try:
                await self._restore()
                await self._serve()
                if self._ready is not None:
                    self._ready()
                log.event("nucleus-ready", socket=self.layout.socket_path)
                reason = await self._stop
            finally:  # whatever ends the service, nothing it started keeps running
                log.event("nucleus-stopping", reason=reason)
                await self._close_server()
                await self.kernel.stop_all(f"the nucleus is stopping ({reason})")
                log.event("nucleus-stopped")
            return EXIT_OK
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            self.layout.socket_path.unlink(missing_ok=True)
            self.runtime.close()

    def _request_stop(self, reason: str) -> None:
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(reason)

    async def _restore(self) -> None:
        """Start the last deployed set again, from install (as Greengrass does on each launch)."""
        roots = self.state.roots()
        if not roots:
            return
        stopped = frozenset(r.name for r in self.state.components() if r.stopped)
        try:
            plan = await self.runtime.deployer.plan(PlanRequest(
                kept_roots=tuple(KeptRoot(r.name, r.version) for r in roots), cwd=self.layout.path))
            started = await self.runtime.deployer.apply(plan, hold=stopped)
        except NucleusError as exc:
            self.runtime.log.event("restore-failed", level="ERROR", error=str(exc))
            return
        for name in stopped & set(self.kernel.services):  # shown as stopped, without running anything
            await self.kernel.services[name].stop("stopped with `nucleus stop`")
        self.runtime.log.event("restored", components=len(plan.components), started=len(started))

    # -- the socket --------------------------------------------------------------------------------

    async def _serve(self) -> None:
        self.layout.socket_path.unlink(missing_ok=True)  # a stale one: we hold the root's lock
        previous = os.umask(0o177)
        try:
            with short_socket_path(self.layout.path) as path:
                self._server = await asyncio.start_unix_server(self._client, path=path, limit=MAX_REQUEST)
        finally:
            os.umask(previous)
        os.chmod(self.layout.socket_path, 0o600)

    async def _close_server(self) -> None:
        """Stop accepting, end the connections still open (a `logs -f`, a queued deploy), then wait."""
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.wait(list(self._clients), timeout=5)
        if self._server is not None:
            await asyncio.wait_for(self._server.wait_closed(), timeout=5)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)

        channel = Channel(reader, writer)
        send = channel.send
        try:
            raw = await reader.readline()
            try:
                request = decode_request(raw)
            except BadRequest as exc:
                send(_failure(exc))
                return
            handler = self.HANDLERS.get(str(request.get("command")))
            if handler is None:
                send(_done(EXIT_USAGE, lines=[f"unknown command {request.get('command')!r}"]))
                return
            try:
                send(await handler(self, request, channel))
            except NucleusError as exc:
                send(_failure(exc))
            except Exception as exc:  # noqa: BLE001 - a bug: say so in one line, keep serving
                self.runtime.log.event("request-error", level="ERROR", command=request.get("command"),
                                       error=f"{type(exc).__name__}: {exc}")
                send(_done(EXIT_INTERNAL, lines=[f"internal error in the nucleus: {type(exc).__name__}: {exc} — "
                                                 "this is a bug; see logs/nucleus.log and report it"]))
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        except ValueError:  # a request line over the limit
            send(_done(EXIT_USAGE, lines=[f"the request is longer than {MAX_REQUEST // 1024**2} MiB"]))
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()

    # -- requests ----------------------------------------------------------------------------------

    def _service(self, name: Any) -> Service:
        service = self.kernel.services.get(str(name))
        if service is None:
            known = ", ".join(sorted(self.kernel.services)) or "none"
            raise NotFoundError(f"no component {name!r} on this nucleus (deployed: {known})",
                                hint="see `nucleus list`")
        return service

    def _follow_states(self, send: Send, names: set[str] | None = None) -> Callable:
        def listener(service: Service, old: State, new: State, cause: str) -> None:
            if names is None or service.name in names:
                send({"event": "state", "component": service.name, "old": str(old), "new": str(new),
                      "cause": cause})
        self.kernel.listeners.add(listener)
        return listener

    async def deploy(self, request: dict[str, Any], channel: Channel) -> dict[str, Any]:
        from pathlib import Path

        if self._deploying.locked():
            channel.send({"event": "note", "text": "waiting for the deployment in progress to finish"})
        async with self._deploying:
            previous = self.state.roots()
            paths = tuple(Path(p) for p in request["paths"])
            plan_request = PlanRequest(
                recipe_paths=paths,
                recipe_dirs=tuple(Path(p) for p in request.get("recipes") or []),
                artifacts_dir=Path(request["artifacts"]) if request.get("artifacts") else None,
                cwd=Path(request.get("cwd") or self.layout.path),
                kept_roots=tuple(KeptRoot(r.name, r.version) for r in previous),
                preferred={s.name: s.spec.version for s in self.kernel.services.values()})
            summary = {"paths": [str(p) for p in paths], "onFailure": request.get("onFailure") or "keep"}
            deployment_id = self.state.begin_deployment("daemon", summary, previous)
            channel.send({"event": "deployment", "id": deployment_id})
            listener = self._follow_states(channel.send)
            try:
                plan = await self.runtime.deployer.plan(plan_request)
                for warning in plan.warnings:
                    channel.send({"event": "warning", "text": warning})
                before = {s.name: s.spec.version for s in self.kernel.services.values()}
                changed = await self.runtime.deployer.apply(plan, remove_others=True)
                outcome = await wait_settled(self.kernel, changed, self._needed_by(changed),
                                             self.config.startup_settle_seconds)
            except NucleusError as exc:
                self.state.finish_deployment(deployment_id, "FAILED", str(exc))
                return _failure(exc)
            except Exception as exc:
                self.state.finish_deployment(deployment_id, "FAILED", f"internal error: {type(exc).__name__}: {exc}")
                raise
            finally:
                self.kernel.listeners.discard(listener)
            roots = self._roots_of(plan)
            if outcome.exit_code == EXIT_OK:
                self.state.set_roots(roots, deployment_id, "SUCCEEDED")
                self._prune(plan, before)
                return _done(EXIT_OK, {"id": deployment_id, "status": "SUCCEEDED", "summary": outcome.summary})
            if request.get("onFailure") == "rollback":
                try:
                    return await self._roll_back(deployment_id, previous, outcome, channel)
                except Exception as exc:
                    self.state.finish_deployment(deployment_id, "FAILED",
                                                 f"{outcome.summary}; the rollback failed too: {exc}")
                    raise
            self.state.set_roots(roots, deployment_id, "FAILED", outcome.summary)
            return _done(EXIT_FAILED, {"id": deployment_id, "status": "FAILED"},
                         [f"deployment {deployment_id} failed: {outcome.summary}"])

    async def _roll_back(self, deployment_id: int, previous: list[RootRecord], outcome: Outcome,
                         channel: Channel) -> dict[str, Any]:
        channel.send({"event": "note", "text": f"deployment {deployment_id} failed ({outcome.summary}); rolling back"})
        listener = self._follow_states(channel.send)
        try:
            plan = await self.runtime.deployer.plan(PlanRequest(
                kept_roots=tuple(KeptRoot(r.name, r.version) for r in previous), cwd=self.layout.path))
            changed = await self.runtime.deployer.apply(plan, remove_others=True)
            await wait_settled(self.kernel, changed, self._needed_by(changed), self.config.startup_settle_seconds)
        finally:
            self.kernel.listeners.discard(listener)
        self.state.set_roots(previous, deployment_id, "ROLLED_BACK", outcome.summary)
        restored = ", ".join(f"{r.name} {r.version}" for r in previous) or "nothing"
        return _done(EXIT_FAILED, {"id": deployment_id, "status": "ROLLED_BACK"},
                     [f"deployment {deployment_id} failed: {outcome.summary}",
                      f"rolled back to the previous set: {restored}"])

    def _roots_of(self, plan: Plan) -> list[RootRecord]:
        store = Store(self.layout)
        records = []
        for name in plan.roots:
            component = plan.component(name)
            path = store.stored_versions(name).get(component.version)
            records.append(RootRecord(name, component.version, str(path or "")))
        return records

    def _prune(self, plan: Plan, before: dict[str, str]) -> None:
        """The store keeps the current and the previous version of each component."""
        store = Store(self.layout)
        for component in plan.components:
            if not component.builtin:
                store.prune(component.name, {component.version, before.get(component.name, component.version)})

    async def list_components(self, request: dict[str, Any], channel: Channel) -> dict[str, Any]:
        return _done(EXIT_OK, [component_entry(s) for s in sorted(self.kernel.services.values(),
                                                                  key=lambda s: s.name)])

    async def logs(self, request: dict[str, Any], channel: Channel) -> dict[str, Any]:
        service = self._service(request.get("name"))
        count = request.get("lines")
        count = 100 if count is None else count
        for line in tail(service.log.path, count):
            channel.send({"event": "log", "line": line})
        if not request.get("follow"):
            return _done(EXIT_OK)
        gone = asyncio.get_running_loop().create_future()

        def follower(line: str) -> None:
            channel.send({"event": "log", "line": line})
            if channel.pending() > MAX_PENDING_OUTPUT and not gone.done():
                gone.set_result(None)  # the reader does not keep up: let it go rather than hoard memory

        service.log.followers.add(follower)
        try:
            await asyncio.wait([asyncio.ensure_future(channel.wait_closed()), gone],
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            service.log.followers.discard(follower)
        return _done(EXIT_OK)

    async def restart(self, request: dict[str, Any], channel: Channel) -> dict[str, Any]:
        service = self._service(request.get("name"))
        listener = self._follow_states(channel.send)
        try:
            self.kernel.restart_dependents(service, f"its dependency {service.name} is restarting")
            await service.restart("restarted with `nucleus restart`", reinstall=service.state is State.BROKEN)
            self.runtime.recorder.track(service)
            outcome = await wait_settled(self.kernel, [service.name], self._needed_by([service.name]),
                                         self.config.startup_settle_seconds)
        finally:
            self.kernel.listeners.discard(listener)
        return _done(outcome.exit_code, {"name": service.name, "state": str(service.state)},
                     [] if outcome.exit_code == EXIT_OK else [outcome.summary])

    def _needed_by(self, names: list[str]) -> list[str]:
        """The named services and everything they need (HARD dependencies of dependencies included): a
        deployment fails when one of these is BROKEN, not when an unrelated component is."""
        found: list[str] = []
        queue = [self.kernel.services[n] for n in names if n in self.kernel.services]
        while queue:
            current = queue.pop()
            if current.name not in found:
                found.append(current.name)
                queue.extend(self.kernel.hard_dependencies(current))
        return found

    async def stop(self, request: dict[str, Any], channel: Channel) -> dict[str, Any]:
        service = self._service(request.get("name"))
        listener = self._follow_states(channel.send, {service.name})
        try:
            await service.stop("stopped with `nucleus stop`", by_user=True)
            self.runtime.recorder.track(service)
        finally:
            self.kernel.listeners.discard(listener)
        return _done(EXIT_OK, {"name": service.name, "state": str(service.state)})

    async def remove(self, request: dict[str, Any], channel: Channel) -> dict[str, Any]:
        name = str(request.get("name"))
        if name not in self.kernel.services and name not in {r.name for r in self.state.roots()}:
            self._service(name)  # the "no component" error
        async with self._deploying:
            needers = [s for s in self.kernel.services.values() if s.name != name
                       and name in s.spec.hard_dependencies + s.spec.soft_dependencies]
            if needers:
                listed = ", ".join(f"{s.name} {s.spec.version}" for s in needers)
                raise NucleusError(f"{name} is needed by {listed}", hint="remove those first")
            previous = self.state.roots()
            remaining = [r for r in previous if r.name != name]  # a root that failed to restore goes too
            deployment_id = self.state.begin_deployment("daemon", {"remove": name}, previous)
            listener = self._follow_states(channel.send)
            try:
                plan = await self.runtime.deployer.plan(PlanRequest(
                    kept_roots=tuple(KeptRoot(r.name, r.version) for r in remaining), cwd=self.layout.path))
                await self.runtime.deployer.apply(plan, remove_others=True,
                                                  remove_cause="removed with `nucleus remove`")
                if name in self.kernel.services:  # a built-in or leftover nothing needs
                    await self.runtime.deployer.remove([name], "removed with `nucleus remove`")
            except NucleusError as exc:
                self.state.finish_deployment(deployment_id, "FAILED", str(exc))
                raise
            finally:
                self.kernel.listeners.discard(listener)
            self.state.set_roots(remaining, deployment_id, "SUCCEEDED")
        return _done(EXIT_OK, {"id": deployment_id, "removed": name})

    async def deployments(self, request: dict[str, Any], channel: Channel) -> dict[str, Any]:
        return _done(EXIT_OK, [deployment_entry(d) for d in self.state.deployments()])

    async def shutdown(self, request: dict[str, Any], channel: Channel) -> dict[str, Any]:
        self._follow_states(channel.send)
        await self.kernel.stop_all("the nucleus is shutting down (`nucleus shutdown`)")
        self._request_stop("nucleus shutdown")
        return _done(EXIT_OK, {"stopped": True})

    async def status(self, request: dict[str, Any], channel: Channel) -> dict[str, Any]:
        return _done(EXIT_OK, {"pid": os.getpid(), "root": str(self.layout.path), "sandbox": self.config.sandbox})

    HANDLERS: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
        "deploy": deploy, "list": list_components, "logs": logs, "restart": restart, "stop": stop,
        "remove": remove, "deployments": deployments, "shutdown": shutdown, "status": status,
    }


def component_entry(service: Service) -> dict[str, Any]:
    return {"name": service.name, "version": service.spec.version, "state": str(service.state),
            "builtin": service.spec.builtin}


def deployment_entry(record: Any) -> dict[str, Any]:
    return {"id": record.id, "createdAt": record.created_at, "status": record.status, "error": record.error}

