"""After a crash: ending what a killed nucleus left running on this root."""

from __future__ import annotations

from nucleus.lifecycle.process import end_processes
from nucleus.procinfo import boot_id, children_of, start_time
from nucleus.state import State

LEFTOVER_GRACE = 5.0


async def end_leftovers(state: State) -> int:
    """End the processes a killed nucleus left behind on this root; returns how many were found.

    A group is signalled only if its leader is alive with the recorded start time in this boot; everything
    else is found by a component's token in its environment (tokens of recorded processes and components),
    and — step leaders being subreapers (see lifecycle/reaper.py) — as a child of a recorded leader that
    still lives, or as an orphan the nucleus had adopted and recorded.
    """
    records = state.processes()
    tokens = {r.token for r in records} | {c.token for c in state.components() if c.token}
    if not tokens:
        return 0
    this_boot = boot_id()
    mine = [r for r in records if r.boot_id == this_boot and start_time(r.pgid) == r.start_time]
    groups = [r.pgid for r in mine if r.kind == "group"]
    adopted = [(r.pgid, r.start_time) for r in mine if r.kind == "process"]
    adopted += [(pid, started) for pid in children_of(*groups) if (started := start_time(pid)) is not None]
    report = await end_processes(groups, tokens, LEFTOVER_GRACE, lambda: adopted)
    state.clear_processes()
    return report.terminated
