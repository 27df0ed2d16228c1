"""`nucleus logs NAME [-f] [-n N]`: a component's log, from the running nucleus."""

from __future__ import annotations

import argparse

from nucleus.cli import Context


def run(args: argparse.Namespace, context: Context) -> int:
    from nucleus.commands.client import call

    code, _ = call(context, "logs", name=args.name, lines=args.lines, follow=args.follow)
    return code
