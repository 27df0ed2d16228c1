"""The deployed set changes only when a deployment succeeds: failed, rolled back and interrupted deployments
of the same version leave exactly the last good content to run (issue 11, item 5) — through a real daemon."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from conftest import Nucleus, wait_for
from test_daemon import Daemon, daemon, list_json, marked  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow


def component(nucleus: Nucleus, text: str, *, install: str = "", artifact: bytes = b"") -> Path:
    """com.example.App 1.0.0 printing `text` (and its artifact) every 0.2 s; each call rewrites the same
    version with other content."""
    folder = nucleus.workdir / "components" / "com.example.App" / "1.0.0"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.txt").write_bytes(artifact or text.encode())
    lifecycle = f"Run: while true; do echo {text} $(cat {{artifacts:path}}/data.txt); sleep 0.2; done"
    if install:
        lifecycle = f"Install: {install}\n{lifecycle}"
    return nucleus.recipe("com.example.App", lifecycle)


def broken(nucleus: Nucleus) -> Path:
    folder = nucleus.workdir / "components" / "com.example.App" / "1.0.0"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.txt").write_bytes(b"bad-artifact")
    return nucleus.recipe("com.example.App", "Run: exit 3")


def runs(nucleus: Nucleus, text: str, after: int = 0) -> bool:
    """The App's log, past its first `after` characters, ends with lines of `text` (what runs now)."""
    lines = [line for line in nucleus.log("com.example.App")[after:].splitlines() if "[run]" in line]
    return bool(lines) and lines[-1].endswith(f"{text} {text}-artifact")


def statuses(nucleus: Nucleus) -> list[str]:
    return [d["status"] for d in json.loads(nucleus.run("deployments", "--json").out)]


def test_a_rollback_of_the_same_version_runs_the_last_good_content_again(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    assert nucleus.run("deploy", str(component(nucleus, "good", artifact=b"good-artifact"))).code == 0
    wait_for(lambda: runs(nucleus, "good"), what="the good content")
    result = nucleus.run("deploy", str(broken(nucleus)), "--on-failure", "rollback")
    assert result.code == 1 and "rolled back to the previous set: com.example.App 1.0.0" in result.err
    before = len(nucleus.log("com.example.App"))
    wait_for(lambda: runs(nucleus, "good", before), what="the good content again")
    assert list_json(nucleus)[0]["state"] == "RUNNING"
    stored = nucleus.root / "packages" / "recipes" / "com.example.App@1.0.0.recipe.yaml"
    assert "while true" in stored.read_text()  # the active recipe is the good one
    assert (nucleus.root / "packages" / "artifacts" / "com.example.App" / "1.0.0" / "data.txt").read_bytes() == \
        b"good-artifact"
    assert statuses(nucleus) == ["SUCCEEDED", "ROLLED_BACK"]


def test_a_failed_deployment_kept_is_undone_by_the_next_start(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    assert nucleus.run("deploy", str(component(nucleus, "good", artifact=b"good-artifact"))).code == 0
    assert nucleus.run("deploy", str(broken(nucleus))).code == 1  # keep: it stays BROKEN for now
    assert list_json(nucleus)[0]["state"] == "BROKEN"
    daemon.stop()
    before = len(nucleus.log("com.example.App"))
    daemon.start()
    wait_for(lambda: runs(nucleus, "good", before), what="the last good content after a restart")
    assert statuses(nucleus) == ["SUCCEEDED", "FAILED"]


def test_a_deployment_killed_half_way_leaves_the_last_good_content(nucleus: Nucleus, daemon: Daemon) -> None:
    proc = daemon.start()
    assert nucleus.run("deploy", str(component(nucleus, "good", artifact=b"good-artifact"))).code == 0
    wait_for(lambda: runs(nucleus, "good"), what="the good content")
    slow = component(nucleus, "new", install="sleep 59.123", artifact=b"new-artifact")
    deploying = nucleus.popen("deploy", str(slow))
    wait_for(lambda: "[lifecycle] state RUNNING -> STOPPING: redeployed" in nucleus.log("com.example.App"),
             what="the new content to be on its way")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deploying.communicate(timeout=30)
    before = len(nucleus.log("com.example.App"))
    daemon.start()
    wait_for(lambda: runs(nucleus, "good", before), what="the last good content after kill -9")
    deployments = json.loads(nucleus.run("deployments", "--json").out)
    assert [d["status"] for d in deployments] == ["SUCCEEDED", "FAILED"]
    assert deployments[1]["error"].startswith("interrupted")
    assert not marked("sleep 59.123")


def test_the_store_keeps_each_content_whole_and_links_the_active_one(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    assert nucleus.run("deploy", str(component(nucleus, "one", artifact=b"one-artifact"))).code == 0
    assert nucleus.run("deploy", str(component(nucleus, "two", artifact=b"two-artifact"))).code == 0
    wait_for(lambda: runs(nucleus, "two"), what="the second content")
    contents = nucleus.root / "packages" / "contents" / "com.example.App" / "1.0.0"
    digests = sorted(p.name for p in contents.iterdir())
    assert len(digests) == 2  # the new one and the previous good one
    link = nucleus.root / "packages" / "artifacts" / "com.example.App" / "1.0.0"
    assert link.is_symlink() and Path(os.readlink(link)).parent.name in digests
    assert not os.path.isabs(os.readlink(link))  # relative: the root can be moved
    time.sleep(0.3)
    assert runs(nucleus, "two")
