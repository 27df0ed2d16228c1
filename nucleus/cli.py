"""The `nucleus` command: parse, call the command's handler, map errors to exit codes.

Global options come before the command. Handlers live in `nucleus.commands.<name>` and are imported only
when their command runs, so `--help` and light commands start fast. `main()` is the one place where an
error becomes an exit code (0 done, 1 the work failed, 2 bad input, 3 a bug; 130/143 after a signal).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from functools import cached_property
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nucleus import __version__
from nucleus.errors import EXIT_INTERNAL, EXIT_OK, EXIT_SIGINT, NucleusError

if TYPE_CHECKING:
    from nucleus.config import NucleusConfig
    from nucleus.paths import RootLayout



class Context:
    """What every command may need, computed on first use: the root, its layout, the config."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    @cached_property
    def _root_and_config(self) -> tuple[RootLayout, NucleusConfig]:
        from nucleus.config import load_config
        from nucleus.paths import RootLayout, choose_root

        if self.args.config:
            config = load_config(Path(self.args.config))
            layout = RootLayout(choose_root(self.args.root, config.rootpath))
        else:
            layout = RootLayout(choose_root(self.args.root))
            config_file = layout.config_file
            config = load_config(config_file if config_file.is_file() else None)
        return layout, config

    @property
    def layout(self) -> RootLayout:
        return self._root_and_config[0]

    @property
    def config(self) -> NucleusConfig:
        return self._root_and_config[1]


def _command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str, description: str = "",
             epilog: str = "") -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=summary, description=description or summary, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(handler=f"nucleus.commands.{name}:run")
    return parser


def _add_deploy(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _command(
        subparsers, "deploy", "deploy recipes: hand them to the running nucleus, or run them here",
        "Deploy component recipes (YAML or JSON). With `nucleus start` running on the root, the deployment\n"
        "is handed to it; otherwise the components run here, in the foreground, until they finish.",
        "example:\n  nucleus deploy recipes/com.example.HelloWorld-1.0.0.yaml")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="recipe files to deploy")
    _add_lookup_options(parser)
    parser.add_argument("--sandbox", action="store_true",
                        help="run against the built-in local AWS sandbox (needs the 'sandbox' extra)")
    parser.add_argument("--foreground", action="store_true",
                        help="run the deployment here even on a root that belongs to `nucleus start` (when that "
                             "nucleus is not running); without it, such a deploy is refused")
    parser.add_argument("--on-failure", choices=("keep", "rollback"), default="keep",
                        help="with a running nucleus: what a failed deployment leaves (default keep, like "
                             "Greengrass's DO_NOTHING; rollback restores the previous set)")


def _add_lookup_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--artifacts", metavar="DIR", type=Path,
                        help="artifacts laid out DIR/<Name>/<Version>/<files> (default: ./components, "
                             "then ../components beside each recipe)")
    parser.add_argument("--recipes", metavar="DIR", type=Path, action="append", default=[],
                        help="a folder of recipes that may satisfy dependencies (repeatable)")


def _add_plan(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _command(
        subparsers, "plan", "show what a deploy would do, without doing it",
        "Resolve dependencies and render every lifecycle for this device: the components in start order\n"
        "(dependencies first), their versions, and each step with its variables substituted.",
        "example:\n  nucleus plan recipes/com.example.ListS3Buckets-1.0.0.yaml --json")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="recipe files to plan")
    _add_lookup_options(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON on stdout")


def _add_validate(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _command(
        subparsers, "validate", "check recipe files (exit 0 valid, 2 invalid)",
        "Check each recipe on its own against the recipe format: every error and warning with its\n"
        "file, line and column. Dependencies and artifacts are not looked up (see `plan`).",
        "example:\n  nucleus validate recipes/*.yaml")
    parser.add_argument("files", nargs="+", metavar="FILE", help="recipe files (YAML or JSON)")


def _add_daemon_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = _command(
        subparsers, "start", "run the nucleus as a long-running service (in the foreground)",
        "Run the nucleus on its root until SIGTERM, SIGINT or `nucleus shutdown`: it restores the last\n"
        "deployed components, ends what a killed predecessor left behind, and answers `deploy`, `list`,\n"
        "`logs`, `restart`, `stop`, `remove`, `deployments` and `shutdown` on <root>/nucleus.sock.",
        "example:\n  nucleus --root /greengrass/v2 start")
    parser.add_argument("--sandbox", action="store_true",
                        help="run against the built-in local AWS sandbox (needs the 'sandbox' extra)")
    _command(subparsers, "sandbox", "run the local AWS sandbox alone and print a config that uses it",
             "Start the sandbox (moto's S3/STS/IAM with signature checks, and an mTLS credentials-provider\n"
             "emulator), print a Greengrass-style config.yaml pointing at it, and run until Ctrl-C.",
             "example:\n  nucleus sandbox > sandbox-config.yaml")
    _command(subparsers, "shutdown", "stop every component cleanly, then stop the running nucleus",
             epilog="example:\n  nucleus shutdown")
    parser = _command(subparsers, "list", "the components and their states",
                      "The components of the running nucleus with their states; with none running, the states\n"
                      "the last nucleus on the root recorded.", "example:\n  nucleus list --json")
    parser.add_argument("--json", action="store_true",
                        help='print [{"name", "version", "state", "builtin"}] on stdout')
    parser = _command(subparsers, "logs", "a component's log (from the running nucleus)",
                      epilog="example:\n  nucleus logs com.example.HelloWorld -f")
    parser.add_argument("name", metavar="NAME", help="the component")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    parser.add_argument("-n", "--lines", type=int, default=100, metavar="N", help="how many lines (default 100)")
    for name, summary in (("restart", "restart a component (also the way out of BROKEN)"),
                          ("stop", "stop a component (it stays stopped until deployed or restarted)"),
                          ("remove", "remove a root component and what only it needed")):
        parser = _command(subparsers, name, summary, epilog=f"example:\n  nucleus {name} com.example.HelloWorld")
        parser.add_argument("name", metavar="NAME", help="the component")
    parser = _command(subparsers, "deployments", "the deployments of the running nucleus and their outcome",
                      epilog="example:\n  nucleus deployments --json")
    parser.add_argument("--json", action="store_true",
                        help='print [{"id", "createdAt", "status", "error"}] on stdout')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nucleus",
        description="A small, fast, Greengrass-compatible device runtime.",
        epilog="Each command has --help. Documentation: docs/ in the repository.")
    parser.add_argument("--version", action="version", version=f"nucleus {__version__}")
    parser.add_argument("--root", metavar="DIR",
                        help="the nucleus root folder (default: $NUCLEUS_ROOT, else ~/.nucleus)")
    parser.add_argument("--config", metavar="FILE",
                        help="a Greengrass-style config.yaml (default: <root>/config/config.yaml if present)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    _add_deploy(subparsers)
    _add_plan(subparsers)
    _add_validate(subparsers)
    _add_daemon_commands(subparsers)
    return parser


def _handler(spec: str) -> Callable[[argparse.Namespace, Context], int | None]:
    """A command's `run(args, context)`, imported only now."""
    module, _, function = spec.partition(":")
    handler: Callable[[argparse.Namespace, Context], int | None] = getattr(importlib.import_module(module), function)
    return handler


def run() -> None:
    """The `nucleus` command: `main()`, then exit without tearing the interpreter down.

    With every file and database already closed by the commands, Python's own teardown of the modules a
    deploy loads only costs time (30–60 ms here, a fifth of a deploy); `os._exit` skips it, as mypy does.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError):
            pass
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    context = Context(args)
    try:
        return int(_handler(args.handler)(args, context) or EXIT_OK)
    except NucleusError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nucleus: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except BrokenPipeError:
        # The reader went away (e.g. `nucleus logs | head`): leave quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        from nucleus.errors import disk_error

        error = disk_error(exc)  # a full or read-only disk is never a bug
        if error is None:
            return _internal_error(exc, args.debug)
        if args.debug:
            import traceback

            traceback.print_exc()
        print(error, file=sys.stderr)
        return error.exit_code
    except Exception as exc:  # noqa: BLE001 - the one place where a bug becomes exit code 3
        return _internal_error(exc, args.debug)


def _internal_error(exc: BaseException, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    print(f"nucleus: internal error: {type(exc).__name__}: {exc} — this is a bug; "
          "run again with --debug for the traceback and report it", file=sys.stderr)
    return EXIT_INTERNAL

