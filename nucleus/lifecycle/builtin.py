"""Services implemented inside the nucleus process: no recipe, no processes, same states as any other."""

from __future__ import annotations

import asyncio

from nucleus.lifecycle.service import Service
from nucleus.lifecycle.states import State


class BuiltinService(Service):
    """Install is a no-op; starting is `serve()`, which returns once the service is ready."""

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

