"""Shared helpers: run the real `nucleus` command in a subprocess against a temporary root."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll `predicate` until true; a test's way to wait for a process it does not own."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


DOUBLE_FORK = r"""
import os, sys
# A classic daemon: fork, setsid, fork again, and exec with an empty environment (no SVCUID left).
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(sys.argv[1], "w") as out:
            out.write(str(os.getpid()))
        os.execve("/bin/sleep", ["sleep", "300"], {})
    os._exit(0)
os.wait()
"""


def nucleus_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a nucleus subprocess: this working copy first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NUCLEUS_ROOT", None)
    env.update(extra or {})
    return env


def nucleus_command(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "nucleus", "--root", str(root), *args]


@dataclass
class Result:
    code: int
    out: str
    err: str


class Nucleus:
    """Runs `nucleus --root <tmp> …` as a user would, and writes recipes for it."""

    def __init__(self, root: Path, workdir: Path) -> None:
        self.root, self.workdir = root, workdir

    def run(self, *args: str, timeout: float = 60, env: dict[str, str] | None = None) -> Result:
        done = subprocess.run(nucleus_command(self.root, *args), capture_output=True, text=True,
                              timeout=timeout, cwd=self.workdir, env=nucleus_env(env))
        return Result(done.returncode, done.stdout, done.stderr)

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen(nucleus_command(self.root, *args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=self.workdir, env=nucleus_env(env),
                                start_new_session=True)

    def recipe(self, name: str, lifecycle: str, *, version: str = "1.0.0", extra: str = "",
               filename: str | None = None) -> Path:
        """Write a recipe with the given (YAML, indented) lifecycle; returns its path."""
        body = textwrap.indent(textwrap.dedent(lifecycle).strip("\n"), "      ")
        text = (f"RecipeFormatVersion: '2020-01-25'\nComponentName: {name}\nComponentVersion: '{version}'\n"
                f"{textwrap.dedent(extra).strip()}\nManifests:\n  - Lifecycle:\n{body}\n")
        path = self.workdir / (filename or f"{name}-{version}.yaml")
        path.write_text(text)
        return path

    def log(self, name: str) -> str:
        path = self.root / "logs" / f"{name}.log"
        return path.read_text() if path.exists() else ""


@pytest.fixture
def nucleus(tmp_path: Path) -> Nucleus:
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Nucleus(tmp_path / "root", workdir)
