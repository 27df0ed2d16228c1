"""`nucleus sandbox`: run the local AWS sandbox alone and print the config that points at it."""

from __future__ import annotations

import argparse
import signal
import sys

from nucleus.cli import Context


def run(args: argparse.Namespace, context: Context) -> int:
    from nucleus.sandbox import Sandbox
    from nucleus.store import write_atomic

    layout = context.layout
    layout.sandbox_dir.mkdir(parents=True, exist_ok=True)
    print("nucleus: starting the local AWS sandbox…", file=sys.stderr, flush=True)
    with Sandbox() as sandbox:
        info = sandbox.start(layout.sandbox_dir)
        config_text = info.config_yaml() + "".join(f"# bucket: {b}\n" for b in info.buckets)
        config_file = layout.sandbox_dir / "config.yaml"
        write_atomic(config_file, config_text.encode(), 0o600)
        print(config_text, end="", flush=True)
        print(f"nucleus: sandbox running (config also in {config_file}); Ctrl-C stops it", file=sys.stderr,
              flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            signal.pause()
        except (KeyboardInterrupt, SystemExit):
            pass
    print("nucleus: sandbox stopped", file=sys.stderr)
    return 0
