"""`nucleus start`: run the nucleus as a long-running service in the foreground (systemd-friendly)."""

from __future__ import annotations

import argparse
import sys

from nucleus.cli import Context


def run(args: argparse.Namespace, context: Context) -> int:
    from nucleus import aio

    aio.load()
    from nucleus.daemon import Daemon
    from nucleus.lock import RootLock

    layout, config = context.layout, context.config
    layout.ensure()
    with RootLock(layout.lock_file).acquire("daemon"):
        sandbox = None
        if args.sandbox:
            from nucleus.runtime import start_sandbox

            sandbox, config = start_sandbox(layout, config, lambda line: print(line, file=sys.stderr, flush=True))
        try:
            import asyncio

            return asyncio.run(Daemon(layout, config).run())
        finally:
            if sandbox is not None:
                sandbox.stop()
