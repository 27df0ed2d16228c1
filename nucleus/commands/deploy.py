"""`nucleus deploy PATH…`: hand the deployment to the running nucleus, or run it here in the foreground."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nucleus.cli import Context

if TYPE_CHECKING:
    from nucleus.config import NucleusConfig
    from nucleus.deployment.plan import PlanRequest
    from nucleus.deployment.model import Document, Result


def plan_request(args: argparse.Namespace) -> PlanRequest:
    from nucleus.deployment.plan import PlanRequest

    return PlanRequest(recipe_paths=tuple(Path(p) for p in args.paths), recipe_dirs=tuple(args.recipes),
                       artifacts_dir=args.artifacts, cwd=Path.cwd())


def echo(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace, context: Context) -> int:
    """Through the daemon when one runs (or is starting); else here — unless the root is a daemon's."""
    from nucleus.commands.client import daemon_ready
    from nucleus.lock import LockHeld

    for attempt in range(2):
        if daemon_ready(context):
            return deploy_through_daemon(args, context)
        if context.layout.daemon_marker.exists() and not args.foreground:
            from nucleus.errors import NotFoundError

            raise NotFoundError(
                f"the nucleus on {context.layout.path} is not running (the root belongs to `nucleus start`)",
                hint="start it (`nucleus start`, or its systemd service) and deploy again, or deploy with "
                     "--foreground to run the deployment here instead")
        try:
            return run_foreground(args, context)
        except LockHeld:  # a daemon may have taken the root between our look and our lock: hand it over
            if attempt:
                raise
    raise AssertionError("unreachable")


def deploy_through_daemon(args: argparse.Namespace, context: Context) -> int:
    """Hand the deployment to the running nucleus and wait for its outcome."""
    from nucleus.commands.client import call

    if getattr(args, "sandbox", False):
        code, status = call(context, "status")
        if not (status or {}).get("sandbox"):
            from nucleus.errors import NucleusError

            raise NucleusError(f"the nucleus running on {context.layout.path} was started without --sandbox",
                               hint="stop it (`nucleus shutdown`) and run `nucleus start --sandbox`, or deploy "
                                    "without --sandbox")
    asked = document(args)
    code, result = call(context, "deploy", paths=list(asked.recipes), recipes=list(asked.recipe_dirs),
                        artifacts=asked.artifacts_dir, cwd=asked.cwd, onFailure=asked.failure_policy.cli)
    if code == 0 and result is not None:
        print(f"nucleus: deployment {result.id} succeeded: {result.summary}")
    return code


def run_foreground(args: argparse.Namespace, context: Context) -> int:
    from nucleus import aio

    aio.load()
    from nucleus.commands.results import exit_code
    from nucleus.lock import RootLock

    layout = context.layout
    layout.ensure()
    with RootLock(layout.lock_file).acquire("foreground deploy"):
        sandbox, config = None, context.config
        if args.sandbox:
            from nucleus.runtime import start_sandbox

            sandbox, config = start_sandbox(layout, config, echo)
        try:
            import asyncio

            result = asyncio.run(_foreground(document(args, supervise=True), context, config))
        finally:
            if sandbox is not None:
                sandbox.stop()
    if result.kind is not None:  # the input was at fault: its own lines say why
        for line in result.lines:
            print(line, file=sys.stderr)
    else:
        stream = sys.stdout if result.succeeded else sys.stderr
        print(f"nucleus: deployment {'succeeded' if result.succeeded else 'ended'}: {result.summary}", file=stream)
    return exit_code(result)


def document(args: argparse.Namespace, *, supervise: bool = False) -> Document:
    """The deployment document of `nucleus deploy PATH…`. For the daemon (which runs elsewhere) paths are
    made absolute; here they stay as written, so that an error names the file as the user wrote it."""
    from nucleus.deployment.model import Document, FailurePolicy

    def path(text: str | Path) -> str:
        return str(text) if supervise else str(Path(text).absolute())

    return Document(
        source="cli", recipes=tuple(path(p) for p in args.paths), recipe_dirs=tuple(path(p) for p in args.recipes),
        artifacts_dir=path(args.artifacts) if args.artifacts else None, cwd=str(Path.cwd()),
        failure_policy=FailurePolicy.from_cli(args.on_failure), supervise=supervise)


def _progress(message: dict[str, Any]) -> None:
    if message.get("event") == "warning":
        print(message["text"], file=sys.stderr, flush=True)
    elif message.get("event") == "note" and message.get("out"):
        echo(message["text"])


async def _foreground(document: Document, context: Context, config: NucleusConfig) -> Result:
    """Deploy in this process and supervise it to its end (DESIGN.md, the foreground deploy)."""
    from nucleus.runtime import Runtime

    runtime = Runtime(context.layout, config, echo=echo)
    try:
        leftovers = await runtime.open()
        if leftovers:
            echo(f"nucleus: ended {leftovers} process(es) left behind by a nucleus that was killed")
        return await runtime.manager.submit(document, _progress)
    finally:
        runtime.close()
