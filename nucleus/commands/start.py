"""`nucleus start`: run the nucleus as a long-running service in the foreground (systemd-friendly)."""

from __future__ import annotations

import argparse
import asyncio

from nucleus.cli import Context


def run(args: argparse.Namespace, context: Context) -> int:
    from nucleus.daemon import Daemon
    from nucleus.lock import RootLock

    layout = context.layout
    layout.ensure()
    with RootLock(layout.lock_file).acquire("daemon"):
        return asyncio.run(Daemon(layout, context.config).run())
