"""A deployment's typed result becomes the exit code of the command that asked — here, and only here."""

from __future__ import annotations

from nucleus.deployment.model import Result, Status
from nucleus.errors import EXIT_CODES, EXIT_FAILED, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM


def exit_code(result: Result) -> int:
    """0 succeeded · 2 (or the kind's code) the input was at fault · 130/143 stopped by a signal · 1 failed."""
    if result.kind is not None:
        return EXIT_CODES[result.kind]
    if result.signal is not None:
        return EXIT_SIGINT if result.signal == "SIGINT" else EXIT_SIGTERM
    return EXIT_OK if result.status is Status.SUCCEEDED else EXIT_FAILED
