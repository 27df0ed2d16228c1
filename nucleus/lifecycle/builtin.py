"""Services implemented inside the nucleus process: no recipe, no processes, same states as any other."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Protocol

from nucleus.config import NucleusConfig
from nucleus.lifecycle.host import Host, Owner, ServicePolicy
from nucleus.lifecycle.logs import ComponentLog, NucleusLog
from nucleus.lifecycle.service import ComponentSpec, Service
from nucleus.lifecycle.states import State
from nucleus.lifecycle.tokens import Tokens


class BuiltinHost(Host, Protocol):
    """What a built-in needs beyond any service's host: the config, the components' tokens, the base
    environment, the nucleus log, and a way to add to every step's environment."""

    config: NucleusConfig
    tokens: Tokens
    base_environment: dict[str, str]
    nucleus_log: NucleusLog
    policy: ServicePolicy

    def new_log(self, name: str) -> ComponentLog: ...

    def contribute_environment(self, contributor: Callable[[Owner], Mapping[str, str]]) -> Callable[[], None]: ...


class BuiltinService(Service):
    """Install is a no-op; starting is `serve()`, which returns once the service is ready."""

    def __init__(self, spec: ComponentSpec, host: BuiltinHost) -> None:
        super().__init__(spec, host, host.new_log(spec.name), host.policy)
        self.builtin_host = host

    async def serve(self) -> str:
        """Make the service ready; return a note for the log. Raise `StepFailed` on failure."""
        return "built in"

    async def close(self) -> None:
        """Release what `serve()` acquired."""

    async def _install(self) -> None:
        self._set(State.INSTALLED, "built in")

    async def _start(self) -> None:
        self._set(State.STARTING, "starting")
        self._started = True
        note = await self.serve()
        self._set(State.RUNNING, note)

    async def _supervise(self) -> None:
        await asyncio.get_running_loop().create_future()  # runs until stopped

    async def _halt(self, cause: str, sweep: bool = True) -> None:
        await self._cancel_lifecycle()
        if self.state is not State.STOPPING:
            self._set(State.STOPPING, cause)
        self._started = False
        await self.close()
