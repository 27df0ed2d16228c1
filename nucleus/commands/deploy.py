"""`nucleus deploy PATH…`: hand the deployment to the running nucleus, or run it here in the foreground."""

from __future__ import annotations

import argparse
import asyncio
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
    from nucleus.deployment import run_foreground
    from nucleus.lock import RootLock
    from nucleus.planning import make_plan
    from nucleus.recipe.platform import detect_platform

    layout, config = context.layout, context.config
    request = plan_request(args)
    plan = make_plan(request, layout, config, detect_platform(config.platform_override))
    for warning in plan.warnings:
        print(warning, file=sys.stderr)
    layout.ensure()
    with RootLock(layout.lock_file).acquire("foreground deploy"):
        names = ", ".join(f"{c.name} {c.version}" for c in plan.components if not c.builtin)
        echo(f"nucleus: deploying {names} (root {layout.path})")
        outcome = asyncio.run(run_foreground(plan, layout, config, echo=echo,
                                             request={"paths": [str(p) for p in request.recipe_paths]}))
    stream = sys.stdout if outcome.exit_code == 0 else sys.stderr
    print(f"nucleus: deployment {'succeeded' if outcome.exit_code == 0 else 'ended'}: {outcome.summary}",
          file=stream)
    return outcome.exit_code
