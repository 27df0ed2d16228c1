"""`python -m nucleus …` is the `nucleus` command."""

from nucleus.cli import run

run()
