"""What the daemon answers on its control socket: one handler per command, and nothing about sockets.

A handler takes the decoded request and a `Channel` (where its progress messages go, and whether the
client is still there) and returns the final `done` message. The daemon (`daemon.py`) owns the socket, the
decoding and the nucleus's lifetime; the tests drive these handlers with a plain in-memory channel.
Deployments go to the one deployment manager; their typed result travels back as it is, and the command
that asked makes an exit code of it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from nucleus.config import NucleusConfig
from nucleus.deployment.manager import DeploymentManager
from nucleus.deployment.model import Document, FailurePolicy
from nucleus.deployment.outcome import needed_by, wait_settled
from nucleus.errors import EXIT_OK, NotFoundError, NucleusError
from nucleus.lifecycle.events import StateChanged, Subscription
from nucleus.lifecycle.kernel import Kernel
from nucleus.lifecycle.logs import tail
from nucleus.lifecycle.service import Service
from nucleus.lifecycle.states import State
from nucleus.paths import RootLayout

MAX_PENDING_OUTPUT = 4 * 1024**2  # a `logs -f` reader this far behind is dropped, not buffered for ever
Message = dict[str, Any]


class Channel(Protocol):
    """One client: messages out, how far behind it is, and when it goes away."""

    def send(self, message: Message) -> None: ...

    def pending(self) -> int: ...

    def wait_closed(self) -> Awaitable[None]: ...


def done(exit_code: int, result: Any = None, lines: list[str] | None = None) -> Message:
    return {"done": {"exit": exit_code, "result": result, "lines": lines or []}}


def failure(exc: NucleusError) -> Message:
    return done(exc.exit_code, lines=exc.lines())


class ControlAPI:
    """The handlers, bound to one running nucleus."""

    def __init__(self, layout: RootLayout, config: NucleusConfig, kernel: Kernel, manager: DeploymentManager,
                 request_stop: Callable[[str], None]) -> None:
        self.layout, self.config, self.kernel, self.manager = layout, config, kernel, manager
        self._request_stop = request_stop
        self.handlers: dict[str, Callable[[Message, Channel], Awaitable[Message]]] = {
            "deploy": self.deploy, "list": self.list_components, "logs": self.logs, "restart": self.restart,
            "stop": self.stop, "remove": self.remove, "deployments": self.deployments, "shutdown": self.shutdown,
            "status": self.status,
        }

    async def handle(self, request: Message, channel: Channel) -> Message:
        """Answer one checked request (`control.decode_request`); a `NucleusError` is its one-line answer."""
        handler = self.handlers.get(str(request.get("command")))
        if handler is None:
            return done(2, lines=[f"unknown command {request.get('command')!r}"])
        try:
            return await handler(request, channel)
        except NucleusError as exc:
            return failure(exc)

    def _service(self, name: Any) -> Service:
        service = self.kernel.services.get(str(name))
        if service is None:
            known = ", ".join(sorted(self.kernel.services)) or "none"
            raise NotFoundError(f"no component {name!r} on this nucleus (deployed: {known})",
                                hint="see `nucleus list`")
        return service

    def _follow_states(self, channel: Channel, names: set[str] | None = None) -> Subscription:
        def tell(event: StateChanged) -> None:
            channel.send({"event": "state", "component": event.component, "old": str(event.old),
                          "new": str(event.new), "cause": event.cause})
        return self.kernel.bus.subscribe(tell, kinds=(StateChanged,), components=names)

    async def _deployment(self, document: Document, channel: Channel) -> Message:
        with self._follow_states(channel):
            result = await self.manager.submit(document, channel.send)
        return {"done": {"deployment": result.to_wire(), "lines": list(result.lines)}}

    async def deploy(self, request: Message, channel: Channel) -> Message:
        document = Document(
            source="cli", recipes=tuple(request["paths"]), recipe_dirs=tuple(request.get("recipes") or ()),
            artifacts_dir=request.get("artifacts"), cwd=request.get("cwd") or str(self.layout.path),
            failure_policy=FailurePolicy.from_cli(request.get("onFailure") or "keep"))
        return await self._deployment(document, channel)

    async def remove(self, request: Message, channel: Channel) -> Message:
        name = str(request["name"])
        self.manager.check_removal({name})  # a refusal is an answer, not a failed deployment
        return await self._deployment(Document(source="cli", remove=(name,)), channel)

    async def list_components(self, request: Message, channel: Channel) -> Message:
        return done(EXIT_OK, [component_entry(s) for s in sorted(self.kernel.services.values(), key=lambda s: s.name)])

    async def logs(self, request: Message, channel: Channel) -> Message:
        service = self._service(request.get("name"))
        count = request.get("lines")
        for line in tail(service.log.path, 100 if count is None else count):
            channel.send({"event": "log", "line": line})
        if not request.get("follow"):
            return done(EXIT_OK)
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
        return done(EXIT_OK)

    async def restart(self, request: Message, channel: Channel) -> Message:
        service = self._service(request.get("name"))
        with self._follow_states(channel):
            self.kernel.restart_dependents(service, f"its dependency {service.name} is restarting")
            await service.restart("restarted with `nucleus restart`", reinstall=service.state is State.BROKEN)
            outcome = await wait_settled(self.kernel, [service.name], needed_by(self.kernel, [service.name]),
                                         self.config.startup_settle_seconds)
        return done(EXIT_OK if outcome.ok else 1, {"name": service.name, "state": str(service.state)},
                    [] if outcome.ok else [outcome.summary])

    async def stop(self, request: Message, channel: Channel) -> Message:
        service = self._service(request.get("name"))
        with self._follow_states(channel, {service.name}):
            await service.stop("stopped with `nucleus stop`", by_user=True)
        return done(EXIT_OK, {"name": service.name, "state": str(service.state)})

    async def deployments(self, request: Message, channel: Channel) -> Message:
        return done(EXIT_OK, [{"id": r.id, "createdAt": r.created_at, "status": r.status, "error": r.error}
                              for r in self.manager.status.history()])

    async def shutdown(self, request: Message, channel: Channel) -> Message:
        self._follow_states(channel)  # to the end: the channel closes with the nucleus
        await self.kernel.stop_all("the nucleus is shutting down (`nucleus shutdown`)")
        self._request_stop("nucleus shutdown")
        return done(EXIT_OK, {"stopped": True})

    async def status(self, request: Message, channel: Channel) -> Message:
        return done(EXIT_OK, {"pid": os.getpid(), "root": str(self.layout.path), "sandbox": self.config.sandbox})


def component_entry(service: Service) -> Message:
    return {"name": service.name, "version": service.spec.version, "state": str(service.state),
            "builtin": service.spec.builtin}
