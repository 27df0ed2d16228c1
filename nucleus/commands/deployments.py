"""`nucleus deployments [--json]`: every deployment of the running nucleus and how it ended."""

from __future__ import annotations

import argparse

from nucleus.cli import Context


def run(args: argparse.Namespace, context: Context) -> int:
    from nucleus.commands.client import call, print_json

    code, entries = call(context, "deployments", json_output=args.json)
    if args.json:
        print_json(entries)
    else:
        for entry in entries or []:
            error = f"  {entry['error']}" if entry["error"] else ""
            print(f"{entry['id']:>4}  {entry['createdAt']}  {entry['status']:<12}{error}")
    return code
