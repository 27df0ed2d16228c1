"""`nucleus list [--json]`: the components and their states (live, or as last recorded)."""

from __future__ import annotations

import argparse

from nucleus.cli import Context


def run(args: argparse.Namespace, context: Context) -> int:
    from nucleus.commands.client import call, daemon_ready, print_json

    if daemon_ready(context):
        code, entries = call(context, "list", json_output=args.json)
        source = "running"
    else:
        entries, source, code = recorded(context), "last recorded", 0
    if args.json:
        print_json(entries)
    elif not entries:
        print(f"no components on {context.layout.path}")
    else:
        width = max(len(e["name"]) for e in entries)
        print(f"{'NAME':<{width}}  {'VERSION':<12} STATE      ({source})")
        for entry in entries:
            note = "  built-in" if entry["builtin"] else ""
            print(f"{entry['name']:<{width}}  {entry['version']:<12} {entry['state']:<10}{note}")
    return code


def recorded(context: Context) -> list[dict[str, object]]:
    """The states the last nucleus on this root recorded (no daemon needed)."""
    from nucleus.state import State

    if not context.layout.state_file.exists():
        return []
    state = State(context.layout.state_file, readonly=True)
    try:
        return [{"name": c.name, "version": c.version, "state": c.state, "builtin": c.builtin}
                for c in state.components()]
    finally:
        state.close()
