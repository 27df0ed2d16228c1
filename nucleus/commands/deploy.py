"""`nucleus deploy PATH…`: hand the deployment to the running nucleus, or run it here in the foreground."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nucleus.cli import Context


def plan_request(args: argparse.Namespace) -> "object":
    from nucleus.planning import PlanRequest

    return PlanRequest(recipe_paths=tuple(Path(p) for p in args.paths), recipe_dirs=tuple(args.recipes),
                       artifacts_dir=args.artifacts, cwd=Path.cwd())


def echo(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace, context: Context) -> int:
    """Through the daemon when one runs (or is starting); else here — unless the root is a daemon's."""
    from nucleus.commands.client import daemon_ready, deploy_through_daemon
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


def run_foreground(args: argparse.Namespace, context: Context) -> int:
    from nucleus import aio

    aio.load()
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

            outcome = asyncio.run(_foreground(plan_request(args), context, config))
        finally:
            if sandbox is not None:
                sandbox.stop()
    stream = sys.stdout if outcome.exit_code == 0 else sys.stderr
    print(f"nucleus: deployment {'succeeded' if outcome.exit_code == 0 else 'ended'}: {outcome.summary}",
          file=stream)
    return outcome.exit_code


async def _foreground(request: "object", context: Context, config: "object") -> "object":
    """Deploy in this process and supervise it to its end (DESIGN.md, the foreground deploy)."""
    from nucleus.deployment import follow_foreground
    from nucleus.runtime import Runtime

    runtime = Runtime(context.layout, config, echo=echo)  # type: ignore[arg-type]
    deployment_id = runtime.state.begin_deployment(
        "foreground", {"paths": [str(p) for p in request.recipe_paths]})  # type: ignore[attr-defined]
    try:
        leftovers = await runtime.open()
        if leftovers:
            echo(f"nucleus: ended {leftovers} process(es) left behind by a nucleus that was killed")
        plan = await runtime.deployer.plan(request)  # type: ignore[arg-type]
        for warning in plan.warnings:
            print(warning, file=sys.stderr)
        names = ", ".join(f"{c.name} {c.version}" for c in plan.components if not c.builtin)
        echo(f"nucleus: deploying {names} (root {context.layout.path})")
        await runtime.deployer.apply(plan)
        outcome = await follow_foreground(runtime.kernel, [c.name for c in plan.components if not c.builtin])
        status = "SUCCEEDED" if outcome.exit_code == 0 else "FAILED"
        runtime.state.finish_deployment(deployment_id, status, None if status == "SUCCEEDED" else outcome.summary)
        return outcome
    except BaseException as exc:
        runtime.state.finish_deployment(deployment_id, "FAILED", str(exc) or type(exc).__name__)
        await runtime.kernel.stop_all("the deployment failed")
        raise
    finally:
        runtime.close()
