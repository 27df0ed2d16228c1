"""`nucleus shutdown`: stop every component cleanly, then the running nucleus exits."""

from __future__ import annotations

import argparse

from nucleus.cli import Context


def run(args: argparse.Namespace, context: Context) -> int:
    from nucleus.commands.client import call

    code, _ = call(context, "shutdown")
    if code == 0:
        print(f"nucleus: the nucleus on {context.layout.path} stopped")
    return code
