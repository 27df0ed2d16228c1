"""Running the sandbox's helper processes so that they never outlive the nucleus.

Each child gets the read end of a pipe whose only write end the nucleus holds (never inherited: Python
makes new descriptors non-inheritable, and only this child is passed the read end). When the nucleus
exits for any reason, even SIGKILL, the kernel closes the write end, the child's read sees end-of-file
and the child exits. This works on Linux and macOS alike and, unlike PR_SET_PDEATHSIG, does not depend
on which thread started the child.

A child reports readiness with one JSON line on stdout (`{"port": N}`); afterwards its stdout is its
stderr, so nothing else ever lands in the pipe the parent stopped reading.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from nucleus.errors import FailedError

# -- in the child ------------------------------------------------------------------------------------


def watch_parent(fd: int | None) -> None:
    """Exit this process as soon as the parent's end of the pipe `fd` closes."""
    if fd is None:
        return

    def wait_for_eof() -> None:
        while True:
            try:
                if not os.read(fd, 512):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        os._exit(0)

    threading.Thread(target=wait_for_eof, name="parent-watch", daemon=True).start()


def announce_ready(port: int) -> None:
    """Tell the parent the port, then point stdout at stderr for good."""
    sys.stdout.write(json.dumps({"port": port}) + "\n")
    sys.stdout.flush()
    os.dup2(2, 1)


# -- in the parent ------------------------------------------------------------------------------------


def child_environment(extra: dict[str, str]) -> dict[str, str]:
    """The nucleus's environment without its AWS settings (they must not steer the sandbox), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def spawn(args: list[str], *, parent_fd: int, log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start `python -m …` in its own session, stderr to `log_path` (this run's only)."""
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, *args, "--parent-fd", str(parent_fd)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=log, env=env, pass_fds=(parent_fd,),
                                start_new_session=True)


def wait_ready(proc: subprocess.Popen[bytes], name: str, log_path: Path, timeout: float) -> int:
    """The port the child announces; a `FailedError` quoting its log if it dies or stays silent."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    try:
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise FailedError(f"the sandbox's {name} did not start within {timeout:g} s",
                                  hint=f"see {log_path}{_tail(log_path)}")
            ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    proc.wait(timeout=5)
                    raise FailedError(f"the sandbox's {name} exited with code {proc.returncode} while starting",
                                      hint=f"see {log_path}{_tail(log_path)}")
                line += chunk
        return int(json.loads(line)["port"])
    finally:
        proc.stdout.close()


def _tail(log_path: Path) -> str:
    try:
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return f" (last line: {lines[-1][:300]})" if lines else ""


def terminate(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to the child's process group, SIGKILL after `grace` seconds; always reaped.

    The group is signalled only while its leader is unreaped, so a recycled process id is never hit.
    """
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass
