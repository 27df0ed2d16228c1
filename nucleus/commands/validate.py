"""`nucleus validate FILE…`: check recipes on their own (no dependencies, no artifacts looked up)."""

from __future__ import annotations

import argparse
import sys

from nucleus.cli import Context
from nucleus.errors import EXIT_OK, EXIT_USAGE


def run(args: argparse.Namespace, context: Context) -> int:
    from nucleus.recipe import read_recipe

    invalid = 0
    for path in args.files:
        result = read_recipe(path, schema=True)
        for diagnostic in result.diagnostics:
            print(diagnostic, file=sys.stderr)
        if result.recipe is None:
            invalid += 1
            print(f"{path}: invalid ({len(result.errors)} error(s))", file=sys.stderr)
        else:
            note = f" ({len(result.warnings)} warning(s))" if result.warnings else ""
            print(f"{path}: valid: {result.recipe.ident}{note}")
    return EXIT_USAGE if invalid else EXIT_OK
