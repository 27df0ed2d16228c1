"""What a service may ask of the nucleus around it — the whole of it, in one small interface.

A `Service` knows its own states and rules; everything else goes through its `Host`: the time, starting a
step (the host builds the launch — environment, working folder — and spawns it), whether a step's
`Skipif` holds, ending processes, its HARD dependencies, and publishing events. The kernel is the host in
a running nucleus; the unit tests give a service a fake host and a fake clock, and drive a whole lifecycle
in milliseconds without a process or a file.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from nucleus.lifecycle.events import Event
from nucleus.lifecycle.spec import ComponentSpec
from nucleus.lifecycle.states import State
from nucleus.recipe.model import Step

LineSink = Callable[[str, str], None]  # (level, text): stdout lines are INFO, stderr lines WARN


class StepStartError(Exception):
    """The step's process could not be started at all (no `sh`, a missing working folder…)."""


class EndReport(NamedTuple):
    """What ending took: how many groups and stray processes got SIGTERM, how many needed SIGKILL."""

    terminated: int
    killed: int


@dataclass(frozen=True)
class ServicePolicy:
    """The nucleus settings a service's rules read."""

    error_reset_time: float = 3600.0  # the 3rd error from one state within it → BROKEN
    graceful_shutdown_timeout: float = 5.0  # SIGTERM → SIGKILL


class ProcessHandle(Protocol):
    """A started step: its leader's pid and group, its exit."""

    pid: int
    pgid: int

    @property
    def returncode(self) -> int | None: ...

    def wait(self) -> Awaitable[int]: ...

    def close_output(self) -> None: ...


class Owner(Protocol):
    """What the host needs to know of the service asking: who it is."""

    @property
    def name(self) -> str: ...

    @property
    def token(self) -> str: ...

    @property
    def spec(self) -> ComponentSpec: ...


class Peer(Protocol):
    """What a service sees of another (a dependency): its state, and a way to wait for the next one."""

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> State: ...

    def wait_change(self) -> Awaitable[State]: ...


class Host(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""

    def launch(self, owner: Owner, step: Step, sink: LineSink) -> ProcessHandle:
        """Start `step` for `owner` (raises `StepStartError` when it cannot start at all)."""

    def prepare(self, owner: Owner) -> None:
        """Just before `owner` (re)installs: make its spec's content the one its steps see."""

    def skips(self, owner: Owner, step: Step) -> bool:
        """Whether the step's `Skipif` holds for `owner` now."""

    def end(self, owner: Owner, processes: Sequence[ProcessHandle], *, sweep: bool) -> Awaitable[EndReport]:
        """End the processes' groups and what `owner`'s steps left to the nucleus; with `sweep`, also every
        process carrying its token."""

    def dependencies(self, owner: Owner) -> list[Peer]:
        """`owner`'s HARD dependencies that are deployed."""

    def publish(self, event: Event) -> None:
        """Tell the nucleus (and the bus) what happened."""

    def watch(self, task: Any) -> None:
        """Own a lifecycle task: an exception escaping it is a bug, reported once."""
