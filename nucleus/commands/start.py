"""`nucleus start`: run the nucleus as a long-running service in the foreground (systemd-friendly)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from nucleus.cli import Context

if TYPE_CHECKING:
    from nucleus.paths import RootLayout


def mark_daemon_root(layout: RootLayout) -> None:
    """From now on the root belongs to `nucleus start`: a foreground deploy never takes it silently."""
    import json
    import os
    import time

    from nucleus.store import write_atomic

    marker = layout.daemon_marker
    note = {"pid": os.getpid(), "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_atomic(marker, (json.dumps(note) + "\n").encode(), 0o600)


def run(args: argparse.Namespace, context: Context) -> int:
    from nucleus import aio

    aio.load()
    from nucleus.daemon import Daemon
    from nucleus.lock import RootLock

    layout, config = context.layout, context.config
    layout.ensure()
    with RootLock(layout.lock_file).acquire("daemon, starting") as lock:
        mark_daemon_root(layout)
        sandbox = None
        if args.sandbox:
            from nucleus.runtime import start_sandbox

            sandbox, config = start_sandbox(layout, config, lambda line: print(line, file=sys.stderr, flush=True))
        try:
            import asyncio

            return asyncio.run(Daemon(layout, config, ready=lambda: lock.note("daemon")).run())
        finally:
            if sandbox is not None:
                sandbox.stop()
