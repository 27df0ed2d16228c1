"""`nucleus remove NAME` (docs/commands.md#remove)."""

from __future__ import annotations

import argparse

from nucleus.cli import Context


def run(args: argparse.Namespace, context: Context) -> int:
    from nucleus.commands.client import component_command

    return component_command(context, "remove", args.name)
