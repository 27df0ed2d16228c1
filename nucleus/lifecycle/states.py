"""Component states and the transitions allowed between them — the whole table, in one place.

Imports nothing from the rest of the nucleus. `python -m nucleus.lifecycle.states` prints the table as a
Mermaid diagram (docs/lifecycle.md is made from it).
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    NEW = "NEW"  # known, not installed yet (or to be installed again)
    INSTALLED = "INSTALLED"  # install succeeded; waiting for its HARD dependencies to be ready
    STARTING = "STARTING"  # startup running
    RUNNING = "RUNNING"  # run spawned, or startup exited 0
    STOPPING = "STOPPING"  # shutdown running, then its processes are ended
    FINISHED = "FINISHED"  # run exited 0, nothing to run, or stopped
    ERRORED = "ERRORED"  # a step failed; recover runs, then a restart
    BROKEN = "BROKEN"  # the third error from one state within errorResetTime

    def __str__(self) -> str:
        return self.value


READY = frozenset({State.RUNNING, State.FINISHED})  # its HARD dependents may start
ACTIVE = frozenset({State.STARTING, State.RUNNING})  # a restart of a HARD dependency restarts these

TRANSITIONS: dict[State, frozenset[State]] = {
    State.NEW: frozenset({State.INSTALLED, State.ERRORED, State.STOPPING}),
    State.INSTALLED: frozenset({State.STARTING, State.STOPPING, State.NEW}),
    State.STARTING: frozenset({State.RUNNING, State.FINISHED, State.ERRORED, State.STOPPING}),
    State.RUNNING: frozenset({State.FINISHED, State.ERRORED, State.STOPPING}),
    State.STOPPING: frozenset({State.FINISHED, State.INSTALLED, State.NEW}),
    State.FINISHED: frozenset({State.NEW, State.INSTALLED, State.STOPPING}),
    State.ERRORED: frozenset({State.NEW, State.INSTALLED, State.BROKEN, State.STOPPING}),
    State.BROKEN: frozenset({State.NEW, State.INSTALLED}),
}


class InvalidTransition(RuntimeError):
    """A bug: the nucleus tried a transition the table does not have."""

    def __init__(self, component: str, old: State, new: State, cause: str) -> None:
        super().__init__(f"{component}: no transition {old} -> {new} (cause: {cause})")


def check_transition(component: str, old: State, new: State, cause: str) -> None:
    if new not in TRANSITIONS[old]:
        raise InvalidTransition(component, old, new, cause)


def mermaid() -> str:
    """The transition table as a Mermaid state diagram."""
    lines = ["stateDiagram-v2", "    [*] --> NEW"]
    for old, targets in TRANSITIONS.items():
        for new in sorted(targets, key=lambda s: list(State).index(s)):
            lines.append(f"    {old} --> {new}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(mermaid())
