"""The CLI side of the control socket: send a request to `nucleus start`, print what comes back."""

from __future__ import annotations

import json
import sys
from typing import Any

from nucleus.cli import Context


def call(context: Context, command: str, *, json_output: bool = False, **arguments: Any) -> tuple[int, Any]:
    """Run one request; progress goes to stderr (or stdout in text mode); returns (exit code, result).

    A daemon that is starting is waited for; with none on the root, one clear error (exit 2)."""
    from nucleus.control import ControlClient, no_daemon

    if not daemon_ready(context):
        raise no_daemon(context.layout.path)
    with ControlClient(context.layout.path) as client:
        for message in client.request(command, **arguments):
            if "event" in message:
                show_event(message, json_output)
            else:
                done = message["done"]
                for line in done.get("lines") or []:
                    print(line, file=sys.stderr)
                if "deployment" in done:  # a deployment's typed result: its exit code is made here
                    from nucleus.commands.results import exit_code
                    from nucleus.deployment.model import Result

                    result = Result.from_wire(done["deployment"])
                    return exit_code(result), result
                return int(done["exit"]), done.get("result")
    return 2, None


def daemon_ready(context: Context) -> bool:
    """Whether a daemon answers on the root, after waiting for one that is starting."""
    from nucleus.lock import holder_of

    layout = context.layout
    if not layout.socket_path.exists() and holder_of(layout.lock_file) is None:
        return False  # the common case of a foreground deploy: nothing more to import or try
    from nucleus.control import wait_for_daemon

    return wait_for_daemon(layout.path, layout.lock_file, lambda line: print(line, file=sys.stderr, flush=True))


def show_event(message: dict[str, Any], json_output: bool) -> None:
    stream = sys.stderr if json_output else sys.stdout
    kind = message["event"]
    if kind == "state":
        print(f"{message['component']}: {message['old']} -> {message['new']} ({message['cause']})", file=stream,
              flush=True)
    elif kind == "log":
        print(message["line"], flush=True)
    elif kind == "deployment":
        print(f"nucleus: deployment {message['id']} started", file=stream, flush=True)
    elif kind in ("note", "warning"):
        print(message["text"], file=sys.stderr, flush=True)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def component_command(context: Context, command: str, name: str) -> int:
    """`restart`, `stop` or `remove` one component, showing its state changes; one line at the end."""
    code, result = call(context, command, name=name)
    if code == 0 and result:
        state = f": {result['state']}" if isinstance(result, dict) and "state" in result else ""
        print(f"nucleus: {command} {name} done{state}")
    return code
