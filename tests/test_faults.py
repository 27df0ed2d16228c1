"""Faults of the environment, not of the input: a full disk, a log that cannot be written, a read-only root,
a root path longer than SQLite allows. Each is one clear line (or a counted report), the right exit code, no
traceback — and nothing corrupted."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Nucleus

pytestmark = pytest.mark.slow


def clean(result: object) -> None:
    text = result.out + result.err  # type: ignore[attr-defined]
    assert "Traceback" not in text and "internal error" not in text, text


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB file system of its own (tmpfs), so that it can be filled up or made read-only."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Fill the file system of `folder` to the last byte."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as stream:
        for block in (1024 * 1024, 4096, 1):
            try:
                while True:
                    stream.write(bytes(block))
            except OSError:
                pass
    return filler


def integrity(root: Path) -> str:
    with sqlite3.connect(root / "config" / "state.sqlite") as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def test_an_artifact_that_does_not_fit_is_one_line_and_exit_1(small_disk: Path, tmp_path: Path) -> None:
    # Issue 11, item 11: disk full is the environment's fault: one line naming the path and the free space.
    workdir = tmp_path / "work"
    workdir.mkdir()
    nucleus = Nucleus(small_disk / "root", workdir)
    artifacts = workdir / "components" / "com.example.Big" / "1.0.0"
    artifacts.mkdir(parents=True)
    (artifacts / "big.bin").write_bytes(os.urandom(30 * 1024 * 1024))
    result = nucleus.run("deploy", str(nucleus.recipe("com.example.Big", "Run: echo never")))
    clean(result)
    assert result.code == 1, result.err
    [line] = result.err.strip().splitlines()
    assert re.search(r"no space left on the device while writing .*root.* \(\d[\d.]* (bytes|KiB|MiB) free there\)",
                     line), line
    assert "never" not in result.out
    assert integrity(nucleus.root) == "ok"
    assert nucleus.run("list").code == 0


def test_a_full_disk_under_running_components_loses_lines_not_the_state(small_disk: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    nucleus = Nucleus(small_disk / "root", workdir)
    assert nucleus.run("deploy", str(nucleus.recipe("com.example.First", "Run: echo first"))).code == 0
    filler = fill(small_disk)
    chatty = nucleus.recipe("com.example.Chatty", "Run: for i in $(seq 1 500); do echo line-$i; done")
    result = nucleus.run("deploy", str(chatty))
    clean(result)
    assert result.code in (0, 1), result.err
    if result.code == 1:  # the deployment could not even be recorded: said in one line
        assert "no space left on the device" in result.err.strip().splitlines()[-1]
    filler.unlink()
    assert integrity(nucleus.root) == "ok"
    listed = nucleus.run("list")
    assert listed.code == 0 and "com.example.First" in listed.out
    assert nucleus.run("deploy", str(chatty)).code == 0  # room again: everything works


def test_a_component_log_that_cannot_be_written_is_counted_and_reported_once(nucleus: Nucleus) -> None:
    logs = nucleus.root / "logs"
    logs.mkdir(parents=True)
    (logs / "com.example.Chatty.log").symlink_to("/dev/full")  # every write: ENOSPC
    recipe = nucleus.recipe("com.example.Chatty", "Run: for i in $(seq 1 300); do echo line-$i; done")
    result = nucleus.run("deploy", str(recipe))
    clean(result)
    assert result.code == 0, result.err
    assert "com.example.Chatty | line-300" in result.out  # the terminal still gets every line
    events = [line for line in (logs / "nucleus.log").read_text().splitlines() if "log-write-failed" in line]
    lost = [int(re.search(r"lost=(\d+)", line).group(1)) for line in events]
    assert lost[0] == 1 and len(events) == 2  # the first at once; the rest counted, reported at the end
    assert sum(lost) >= 300


def test_the_nucleus_log_that_cannot_be_written_is_reported_on_stderr_not_as_tracebacks(nucleus: Nucleus) -> None:
    logs = nucleus.root / "logs"
    logs.mkdir(parents=True)
    (logs / "nucleus.log").symlink_to("/dev/full")
    result = nucleus.run("deploy", str(nucleus.recipe("com.example.Quiet", "Run: echo quiet")))
    clean(result)
    assert result.code == 0, result.err
    reports = [line for line in result.err.splitlines() if "cannot write" in line]
    assert reports and reports[0].startswith(f"nucleus: cannot write {logs / 'nucleus.log'} (No space left on device)")
    assert len(reports) <= 2


def test_a_read_only_root_is_never_told_to_move_its_database_aside(small_disk: Path, tmp_path: Path) -> None:
    # Issue 11, item 13: a healthy database on a read-only root is not "corrupt".
    workdir = tmp_path / "work"
    workdir.mkdir()
    nucleus = Nucleus(small_disk / "root", workdir)
    recipe = nucleus.recipe("com.example.Ro", "Run: echo ro")
    assert nucleus.run("deploy", str(recipe)).code == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = nucleus.run("deploy", str(recipe))
    clean(result)
    assert result.code == 2
    assert "read-only" in result.err and "move it aside" not in result.err and "corrupt" not in result.err
    listed = nucleus.run("list", "--json")  # reading needs no writing
    assert listed.code == 0 and '"com.example.Ro"' in listed.out, listed.err


def test_a_root_of_any_length_holds_its_state(tmp_path: Path) -> None:
    # Issue 11, item 13: SQLite refuses paths over 512 bytes; the state lives in a short private folder then.
    from nucleus.state import short_home

    root = tmp_path.joinpath(*[f"{uuid.uuid4().hex}{'x' * 40}" for _ in range(8)], "root")
    assert len(str(root)) > 600
    workdir = tmp_path / "work"
    workdir.mkdir()
    nucleus = Nucleus(root, workdir)
    home = short_home(root / "config" / "state.sqlite")
    try:
        result = nucleus.run("deploy", str(nucleus.recipe("com.example.Long", "Run: echo long")))
        clean(result)
        assert result.code == 0, result.err
        state = root / "config" / "state.sqlite"
        assert state.is_symlink() and Path(os.readlink(state)).parent == home
        assert oct(home.stat().st_mode & 0o777) == "0o700"
        listed = nucleus.run("list")
        assert listed.code == 0 and "com.example.Long" in listed.out
    finally:
        shutil.rmtree(home, ignore_errors=True)
