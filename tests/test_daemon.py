"""`nucleus start` and the commands that talk to it, driven as a user drives them: real processes, real
socket, kill -9 included."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import DOUBLE_FORK, Nucleus, wait_for

pytestmark = pytest.mark.slow



def marked(marker: str) -> list[psutil.Process]:
    """Live processes whose command line carries `marker` (the test's own component scripts)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and marker in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


class Daemon:
    def __init__(self, nucleus: Nucleus) -> None:
        self.nucleus = nucleus
        self.proc: subprocess.Popen | None = None

    def start(self, *extra: str) -> subprocess.Popen:
        self.proc = self.nucleus.popen(*extra, "start")
        # `deployments` needs a running nucleus (a stale socket from a killed one does not answer)
        wait_for(lambda: self.proc.poll() is not None or self.nucleus.run("deployments").code == 0,
                 what="the daemon to answer")
        assert self.proc.poll() is None, self.proc.communicate()
        return self.proc

    def stop(self) -> tuple[str, str]:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=60)
        return out, err


@pytest.fixture
def daemon(nucleus: Nucleus) -> Iterator[Daemon]:
    running = Daemon(nucleus)
    yield running
    if running.proc is not None and running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait()


def service_recipe(nucleus: Nucleus, name: str, marker: str, version: str = "1.0.0", extra: str = "",
                   shutdown: str = "") -> Path:
    body = f"Run: while true; do echo {marker}; sleep 1; done"
    if shutdown:
        body += f"\nShutdown: {shutdown}"
    return nucleus.recipe(name, body, version=version, extra=extra)


def list_json(nucleus: Nucleus) -> list[dict]:
    result = nucleus.run("list", "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_deploy_list_logs_through_the_daemon(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    marker = f"svc-{os.getpid()}-a"
    recipe = service_recipe(nucleus, "com.example.Svc", marker)
    result = nucleus.run("deploy", str(recipe))
    assert result.code == 0, result.err
    assert "com.example.Svc: STARTING -> RUNNING" in result.out
    assert "nucleus: deployment 1 succeeded" in result.out
    assert len(marked(marker)) == 1  # still running after the command returned
    assert list_json(nucleus) == [{"builtin": False, "name": "com.example.Svc", "state": "RUNNING", "version": "1.0.0"}]
    logs = nucleus.run("logs", "com.example.Svc", "-n", "2")
    assert logs.code == 0 and len(logs.out.splitlines()) == 2
    deployments = json.loads(nucleus.run("deployments", "--json").out)
    assert [(d["id"], d["status"], d["error"]) for d in deployments] == [(1, "SUCCEEDED", None)]
    assert deployments[0]["createdAt"].endswith("Z")
    out, err = daemon.stop()
    assert daemon.proc.returncode == 0, err
    assert not marked(marker)


def test_socket_is_owner_only(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    mode = (nucleus.root / "nucleus.sock").stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


def test_a_root_of_any_path_length(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "root"
    workdir = tmp_path / "w"
    workdir.mkdir()
    nucleus = Nucleus(deep, workdir)
    assert len(str(deep / "nucleus.sock")) > 107
    running = Daemon(nucleus)
    try:
        running.start()
        recipe = nucleus.recipe("com.example.Once", "Run: echo long-path")
        assert nucleus.run("deploy", str(recipe)).code == 0
        assert list_json(nucleus)[0]["state"] == "FINISHED"
        assert nucleus.run("shutdown").code == 0
        running.proc.wait(timeout=30)
    finally:
        if running.proc.poll() is None:
            running.proc.kill()


def test_kill_9_then_start_brings_back_exactly_what_ran(nucleus: Nucleus, daemon: Daemon) -> None:
    proc = daemon.start()
    marker = f"svc-{os.getpid()}-kill"
    recipe = service_recipe(nucleus, "com.example.Svc", marker)
    # the child `sleep` runs in the same group; a detached grandchild leaves it
    detached = nucleus.recipe("com.example.Detached", f"Startup: setsid sh -c 'while true; do echo {marker}-d; "
                                                      "sleep 1; done' > /dev/null 2>&1 &")
    assert nucleus.run("deploy", str(recipe), str(detached)).code == 0
    wait_for(lambda: len(marked(marker)) == 2, what="both components")
    proc.kill()
    proc.wait()
    assert len(marked(marker)) == 2  # orphans, for now
    daemon.start()
    wait_for(lambda: {s["name"]: s["state"] for s in list_json(nucleus)} ==
             {"com.example.Svc": "RUNNING", "com.example.Detached": "RUNNING"}, what="the restore")
    wait_for(lambda: len(marked(marker)) == 2, what="exactly one of each")
    time.sleep(0.5)
    assert len(marked(f"{marker}-d")) == 1 and len(marked(marker)) == 2
    daemon.stop()
    assert not marked(marker)




def test_tokenless_daemons_belong_to_their_component_even_across_kill_9(nucleus: Nucleus, daemon: Daemon) -> None:
    # Issue 11, item 3: orphans come back to the nucleus (a subreaper) and stay their component's.
    script = nucleus.workdir / "daemonize.py"
    script.write_text(DOUBLE_FORK)
    pids = {name: nucleus.workdir / f"{name}.pid" for name in ("a", "b", "c")}
    a = nucleus.recipe("com.example.A", f"Run: python3 {script} {pids['a']} && sleep 300")
    b = nucleus.recipe("com.example.B", f"Startup: python3 {script} {pids['b']}")
    c = nucleus.recipe("com.example.C", f"Run: python3 {script} {pids['c']} && sleep 300")
    proc = daemon.start()
    assert nucleus.run("deploy", str(a), str(b), str(c)).code == 0
    wait_for(lambda: all(p.exists() and p.read_text() for p in pids.values()), what="three daemons")
    daemons = {name: psutil.Process(int(path.read_text())) for name, path in pids.items()}
    assert nucleus.run("stop", "com.example.A").code == 0
    assert not daemons["a"].is_running() or daemons["a"].status() == psutil.STATUS_ZOMBIE
    assert daemons["b"].is_running() and daemons["c"].is_running()  # only A's daemon was A's
    proc.kill()  # B's daemon is the nucleus's adopted child; C's is still its step leader's child
    proc.wait()
    daemon.start()  # ends what the killed nucleus left behind, then restores B and C (new daemons)
    for name in ("b", "c"):
        wait_for(lambda: not daemons[name].is_running() or daemons[name].status() == psutil.STATUS_ZOMBIE,
                 timeout=15, what=f"the {name} daemon of the killed nucleus to be ended")
    daemon.stop()


def test_a_component_keeps_its_token_while_the_nucleus_runs(nucleus: Nucleus, daemon: Daemon) -> None:
    # As classic (AuthenticationHandler: one token per service object): redeploys keep it; a new nucleus
    # run or a removal gives a new one (docs/tes.md, issue 11 item 14).
    tokens = nucleus.workdir / "tokens"

    def deploy(version: str) -> None:
        recipe = nucleus.recipe("com.example.Tok", f"Run: echo $SVCUID >> {tokens}", version=version)
        assert nucleus.run("deploy", str(recipe)).code == 0

    daemon.start()
    deploy("1.0.0")
    deploy("2.0.0")
    assert nucleus.run("restart", "com.example.Tok").code == 0
    first = lines_of(tokens)
    assert len(first) == 3 and len(set(first)) == 1
    assert nucleus.run("remove", "com.example.Tok").code == 0
    deploy("2.0.0")
    daemon.stop()
    daemon.start()  # restores it: a new nucleus run
    wait_for(lambda: len(lines_of(tokens)) == 5, what="the restored run")
    assert len(set(lines_of(tokens))) == 3
    daemon.stop()


def lines_of(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_redeploy_changed_restarts_unchanged_stays(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    marker = f"svc-{os.getpid()}-re"
    recipe = service_recipe(nucleus, "com.example.Svc", marker)
    other = service_recipe(nucleus, "com.example.Other", marker + "-other")
    assert nucleus.run("deploy", str(recipe), str(other)).code == 0
    wait_for(lambda: len(marked(marker)) == 2, what="both")
    svc_pid = marked(marker + ";")[0].pid if marked(marker + ";") else None
    other_pid = marked(marker + "-other")[0].pid
    assert nucleus.run("deploy", str(recipe)).code == 0  # unchanged: left running
    assert marked(marker + "-other")[0].pid == other_pid
    recipe.write_text(recipe.read_text().replace("sleep 1", "sleep 2"))  # same version, changed recipe
    result = nucleus.run("deploy", str(recipe))
    assert result.code == 0, result.err
    assert "com.example.Svc: RUNNING -> STOPPING (redeployed 1.0.0)" in result.out
    assert "com.example.Other" not in result.out
    assert marked(marker + "-other")[0].pid == other_pid
    assert svc_pid is None or all(p.pid != svc_pid for p in marked(marker + ";"))


def test_remove_is_refused_while_needed_and_takes_unneeded_dependencies(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    base = nucleus.recipe("com.example.Base", "Run: sleep 60")
    app = nucleus.recipe("com.example.App", "Run: sleep 60", extra="""
        ComponentDependencies:
          com.example.Base: {VersionRequirement: ^1.0.0}
    """)
    assert nucleus.run("deploy", str(app), "--recipes", str(base.parent)).code == 0
    refused = nucleus.run("remove", "com.example.Base")
    assert refused.code == 2
    assert refused.err.startswith("com.example.Base is needed by com.example.App 1.0.0 — remove those first")
    unknown = nucleus.run("remove", "com.example.Nope")
    assert unknown.code == 2 and "no component 'com.example.Nope' on this nucleus" in unknown.err
    removed = nucleus.run("remove", "com.example.App")
    assert removed.code == 0, removed.err
    assert list_json(nucleus) == []  # Base went too: nothing needs it any more
    statuses = [d["status"] for d in json.loads(nucleus.run("deployments", "--json").out)]
    assert statuses == ["SUCCEEDED", "SUCCEEDED"]


def test_uninstall_runs_when_a_component_is_removed(nucleus: Nucleus, daemon: Daemon) -> None:
    # Greengrass >= 2.17's Uninstall step (issue 11, item 4): after the stop, with the usual environment.
    record = nucleus.workdir / "uninstalled"
    app = nucleus.recipe("com.example.Gone", f"""
        Run: sleep 60
        Uninstall: echo "uninstall $SVCUID $(pwd)" >> {record}
    """)
    assert nucleus.run("validate", str(app)).err == ""  # a known step, not an "unknown key" warning
    daemon.start()
    assert nucleus.run("deploy", str(app)).code == 0
    assert not record.exists()
    assert nucleus.run("restart", "com.example.Gone").code == 0
    assert not record.exists()  # a restart is not a removal
    assert nucleus.run("remove", "com.example.Gone").code == 0
    words = record.read_text().split()
    assert words[0] == "uninstall" and len(words[1]) == 16
    assert words[2] == str(nucleus.root / "work" / "com.example.Gone")
    assert "[lifecycle] uninstall exited 0" in nucleus.log("com.example.Gone")
    # A deployment that drops a component (here: a rollback of the deployment that added it) uninstalls it too.
    added = nucleus.recipe("com.example.Added", f"""
        Run: exit 1
        Uninstall: echo added-uninstalled >> {record}
    """)
    assert nucleus.run("deploy", str(added), "--on-failure", "rollback").code == 1
    assert record.read_text().splitlines()[-1] == "added-uninstalled"


def test_rollback_after_a_broken_component(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    marker = f"svc-{os.getpid()}-rb"
    good = service_recipe(nucleus, "com.example.Svc", marker)
    assert nucleus.run("deploy", str(good)).code == 0
    bad = nucleus.recipe("com.example.Svc", "Run: exit 1", version="2.0.0")
    result = nucleus.run("deploy", str(bad), "--on-failure", "rollback")
    assert result.code == 1
    assert "deployment 2 failed: com.example.Svc is BROKEN" in result.err
    assert "rolled back to the previous set: com.example.Svc 1.0.0" in result.err
    assert list_json(nucleus) == [{"builtin": False, "name": "com.example.Svc", "state": "RUNNING",
                                   "version": "1.0.0"}]
    assert [d["status"] for d in json.loads(nucleus.run("deployments", "--json").out)] == ["SUCCEEDED",
                                                                                            "ROLLED_BACK"]
    assert len(marked(marker)) == 1


def test_keep_after_a_failure_leaves_the_broken_component(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    bad = nucleus.recipe("com.example.Bad", "Run: exit 1")
    result = nucleus.run("deploy", str(bad))
    assert result.code == 1
    assert list_json(nucleus)[0]["state"] == "BROKEN"
    deployments = json.loads(nucleus.run("deployments", "--json").out)
    assert deployments[0]["status"] == "FAILED" and "BROKEN" in deployments[0]["error"]
    fixed_by_restart = nucleus.run("restart", "com.example.Bad")
    assert fixed_by_restart.code == 1 and "com.example.Bad: BROKEN -> NEW" in fixed_by_restart.out


def test_stop_restart_and_stopped_survives_a_restart_of_the_daemon(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    marker = f"svc-{os.getpid()}-stop"
    assert nucleus.run("deploy", str(service_recipe(nucleus, "com.example.Svc", marker))).code == 0
    stopped = nucleus.run("stop", "com.example.Svc")
    assert stopped.code == 0 and "nucleus: stop com.example.Svc done: FINISHED" in stopped.out
    assert not marked(marker)
    assert nucleus.run("shutdown").code == 0
    daemon.proc.wait(timeout=30)
    daemon.start()
    time.sleep(1)
    assert not marked(marker)
    assert list_json(nucleus)[0]["state"] == "FINISHED"
    restarted = nucleus.run("restart", "com.example.Svc")
    assert restarted.code == 0 and "nucleus: restart com.example.Svc done: RUNNING" in restarted.out
    assert len(marked(marker)) == 1


def test_concurrent_cli_calls(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    recipes = [nucleus.recipe(f"com.example.C{i}", f"Run: sleep 0.3; echo c{i}") for i in range(4)]
    results: list = [None] * 6

    def deploy(index: int) -> None:
        results[index] = nucleus.run("deploy", str(recipes[index]))

    def listing(index: int) -> None:
        results[index] = nucleus.run("list", "--json")

    threads = [threading.Thread(target=deploy, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=listing, args=(i,)) for i in (4, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(r.code == 0 for r in results), [r.err for r in results]
    assert sorted(c["name"] for c in list_json(nucleus)) == [f"com.example.C{i}" for i in range(4)]
    assert [d["status"] for d in json.loads(nucleus.run("deployments", "--json").out)] == ["SUCCEEDED"] * 4


def test_without_a_daemon(nucleus: Nucleus) -> None:
    for args in (["logs", "x"], ["restart", "x"], ["stop", "x"], ["remove", "x"], ["deployments"], ["shutdown"]):
        result = nucleus.run(*args)
        assert result.code == 2, args
        assert result.err.startswith(f"no nucleus is running on {nucleus.root} — start one with `nucleus start`")
    assert nucleus.run("list").out.startswith("no components on")
    recipe = nucleus.recipe("com.example.Fg", "Run: echo foreground")
    assert nucleus.run("deploy", str(recipe)).code == 0
    assert list_json(nucleus) == [{"builtin": False, "name": "com.example.Fg", "state": "FINISHED",
                                   "version": "1.0.0"}]


def test_a_foreground_deploy_does_not_change_what_the_daemon_restores(nucleus: Nucleus, daemon: Daemon) -> None:
    recipe = nucleus.recipe("com.example.Fg", "Run: echo foreground")
    assert nucleus.run("deploy", str(recipe)).code == 0
    daemon.start()
    with sqlite3.connect(nucleus.root / "config" / "state.sqlite") as db:
        assert db.execute("SELECT count(*) FROM roots").fetchone() == (0,)
    assert "com.example.Fg" not in nucleus.log("com.example.Fg").split("foreground")[-1]  # not run again


def test_one_daemon_per_root(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    second = nucleus.run("start", timeout=30)
    assert second.code == 2 and second.err.startswith(f"another nucleus is running on {nucleus.root}")


def test_logs_follow(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    assert nucleus.run("deploy", str(service_recipe(nucleus, "com.example.Svc", "follow-me"))).code == 0
    follower = nucleus.popen("logs", "com.example.Svc", "-f", "-n", "0")
    try:
        line = follower.stdout.readline()  # a new line arrives within a second or so
        assert "INFO [run] follow-me" in line
    finally:
        follower.send_signal(signal.SIGINT)
        follower.communicate(timeout=30)


def test_store_keeps_current_and_previous_versions(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    for version in ("1.0.0", "1.0.1", "1.0.2"):
        recipe = nucleus.recipe("com.example.V", "Run: echo v", version=version)
        assert nucleus.run("deploy", str(recipe)).code == 0
    stored = sorted(p.name for p in (nucleus.root / "packages" / "recipes").glob("com.example.V@*.recipe.yaml"))
    assert stored == ["com.example.V@1.0.1.recipe.yaml", "com.example.V@1.0.2.recipe.yaml"]
    assert sorted(p.name for p in (nucleus.root / "packages" / "artifacts" / "com.example.V").iterdir()) == \
        ["1.0.1", "1.0.2"]


def test_sigterm_stops_components_and_exits_0(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    marker = f"svc-{os.getpid()}-term"
    shutdowns = nucleus.workdir / "shutdowns"
    recipe = service_recipe(nucleus, "com.example.Svc", marker, shutdown=f"echo done >> {shutdowns}")
    assert nucleus.run("deploy", str(recipe)).code == 0
    out, err = daemon.stop()
    assert daemon.proc.returncode == 0
    assert shutdowns.read_text() == "done\n"
    assert not marked(marker)
    assert "nucleus-stopped" in err


def test_a_stopped_component_stays_stopped_when_something_else_is_deployed(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    marker = f"svc-{os.getpid()}-stays"
    svc = service_recipe(nucleus, "com.example.Svc", marker)
    assert nucleus.run("deploy", str(svc)).code == 0
    assert nucleus.run("stop", "com.example.Svc").code == 0
    other = nucleus.recipe("com.example.Other", "Run: echo other")
    result = nucleus.run("deploy", str(other))
    assert result.code == 0, result.err
    assert "com.example.Svc" not in result.out and not marked(marker)
    assert nucleus.run("deploy", str(svc)).code == 0  # deploying it again is how it comes back
    assert len(marked(marker)) == 1


def test_restart_fails_instead_of_hanging_when_a_hard_dependency_is_broken(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    nucleus.recipe("com.example.Base", "Run: exit 1")
    app = nucleus.recipe("com.example.App", "Run: sleep 60", extra="""
        ComponentDependencies:
          com.example.Base: {VersionRequirement: ^1.0.0}
    """)
    assert nucleus.run("deploy", str(app), "--recipes", str(nucleus.workdir)).code == 1
    result = nucleus.run("restart", "com.example.App", timeout=60)
    assert result.code == 1 and "com.example.Base is BROKEN" in result.err


def test_an_unchanged_component_is_left_running_by_other_deployments(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    folder = nucleus.workdir / "components" / "com.example.Exec" / "1.0.0"
    folder.mkdir(parents=True)
    (folder / "tool.sh").write_text("#!/bin/sh\nexec sleep 60\n")
    recipe = nucleus.recipe("com.example.Exec", "Run: '{artifacts:path}/tool.sh'")
    recipe.write_text(recipe.read_text() + "    Artifacts:\n      - URI: s3://b/tool.sh\n"
                      "        Permission: {Execute: OWNER}\n")
    assert nucleus.run("deploy", str(recipe)).code == 0
    for again in (nucleus.recipe("com.example.Other", "Run: 'true'"), recipe):
        result = nucleus.run("deploy", str(again))
        assert result.code == 0, result.err
        assert "com.example.Exec:" not in result.out  # no state change: not restarted


def test_a_component_that_cannot_start_fails_the_deployment_without_blocking_the_daemon(
        nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    path = nucleus.workdir / "nul.json"
    path.write_text(json.dumps({
        "RecipeFormatVersion": "2020-01-25", "ComponentName": "com.example.Nul", "ComponentVersion": "1.0.0",
        "ComponentConfiguration": {"DefaultConfiguration": {"x": "a\u0000b"}},
        "Manifests": [{"Lifecycle": {"Run": "echo {configuration:/x}"}}]}))
    assert nucleus.run("deploy", str(path), timeout=60).code == 1
    assert nucleus.run("deploy", str(nucleus.recipe("com.example.Ok", "Run: 'true'")), timeout=60).code == 0


def test_shutdown_is_not_held_by_a_client_following_logs(nucleus: Nucleus, daemon: Daemon) -> None:
    daemon.start()
    assert nucleus.run("deploy", str(service_recipe(nucleus, "com.example.Svc", "held"))).code == 0
    follower = nucleus.popen("logs", "com.example.Svc", "-f")
    try:
        assert nucleus.run("shutdown", timeout=60).code == 0
        daemon.proc.wait(timeout=30)
    finally:
        follower.kill()
        follower.communicate()


def raw_request(root: Path, line: bytes) -> dict:
    """Send one raw line on the control socket, as any local program of the owner could; the final answer."""
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(str(root / "nucleus.sock"))
        sock.sendall(line)
        answer = sock.makefile("rb").read()
    return json.loads(answer.splitlines()[-1])["done"]


@pytest.mark.parametrize("line, problem", [
    (b'{"v": 1, "command": "deploy", "paths": 5}\n', "deploy: paths must be a list of text, not int"),
    (b'{"v": 1, "command": "deploy", "paths": ["a", 3]}\n', "deploy: paths must be a list of text"),
    (b'{"v": 1, "command": "deploy"}\n', "deploy: paths is missing"),
    (b'{"v": 1, "command": "deploy", "paths": [], "onFailure": "explode"}\n', "onFailure must be 'keep' or"),
    (b'{"v": 1, "command": "logs", "name": "x", "lines": "many"}\n', "logs: lines must be a whole number"),
    (b'{"v": 1, "command": "logs", "name": "x", "lines": true}\n', "logs: lines must be a whole number"),
    (b'{"v": 1, "command": "stop", "name": ["x"]}\n', "stop: name must be text"),
    (b"[" * 100_000 + b"]" * 100_000 + b"\n", "not JSON (RecursionError)"),
    (b'"just text"\n', "a request is a JSON object"),
    (b'{"v": 7, "command": "list"}\n', "unsupported protocol version 7"),
    (b'{"v": 1}\n', "no command"),
    (b"\xff\xfe garbage\n", "not JSON"),
])
def test_malformed_control_requests_are_bad_requests(nucleus: Nucleus, daemon: Daemon, line: bytes,
                                                     problem: str) -> None:
    # Issue 11, item 12: every malformed request is one `bad request` line and exit 2; the daemon serves on.
    daemon.start()
    done = raw_request(nucleus.root, line)
    assert done["exit"] == 2, done
    assert done["lines"][0].startswith("bad request: ") and problem in done["lines"][0], done
    assert nucleus.run("list", "--json").code == 0
    assert daemon.proc.poll() is None


def test_clients_wait_for_a_daemon_that_is_starting(nucleus: Nucleus, daemon: Daemon) -> None:
    # Issue 11, item 6: a client that finds the root held by a daemon whose socket is not up yet waits.
    from nucleus.lock import holder_of

    marker = f"svc-{os.getpid()}-starting"
    daemon.start()
    assert nucleus.run("deploy", str(service_recipe(nucleus, "com.example.Svc", marker))).code == 0
    daemon.stop()
    # With --sandbox the daemon holds the root for a few seconds (its sandbox starts) before it serves.
    daemon.proc = nucleus.popen("start", "--sandbox")
    lock = nucleus.root / "nucleus.lock"
    wait_for(lambda: "daemon, starting" in (holder_of(lock) or ""), what="the daemon to take the root")
    assert not (nucleus.root / "nucleus.sock").exists()
    other = nucleus.recipe("com.example.Other", "Run: echo other")
    with ThreadPoolExecutor() as pool:
        listing = pool.submit(nucleus.run, "list", "--json", timeout=180)
        deploying = pool.submit(nucleus.run, "deploy", str(other), timeout=180)
        listed, deployed = listing.result(), deploying.result()
    assert listed.code == 0, listed.err
    assert {c["name"]: c["state"] for c in json.loads(listed.out)}.get("com.example.Svc") == "RUNNING"
    assert deployed.code == 0, deployed.err
    assert "waiting for the nucleus starting on" in deployed.err
    assert "succeeded" in deployed.out  # handed to the daemon, not run in the foreground
    daemon.stop()


def test_a_daemon_root_is_never_taken_silently_by_a_foreground_deploy(nucleus: Nucleus, daemon: Daemon) -> None:
    # Issue 11, item 7: after a daemon crash, `deploy` says it is not running instead of holding the root.
    from nucleus.lock import holder_of

    proc = daemon.start()
    proc.kill()  # a crash: systemd would start it again, unless a foreground deploy held the root
    proc.wait()
    recipe = nucleus.recipe("com.example.Fg", "Run: echo foreground")
    refused = nucleus.run("deploy", str(recipe))
    assert refused.code == 2
    assert refused.err.startswith(f"the nucleus on {nucleus.root} is not running (the root belongs to "
                                  "`nucleus start`) — start it")
    assert "--foreground" in refused.err and "foreground" not in refused.out
    assert holder_of(nucleus.root / "nucleus.lock") is None
    on_purpose = nucleus.run("deploy", "--foreground", str(recipe))
    assert on_purpose.code == 0, on_purpose.err
    assert "com.example.Fg | foreground" in on_purpose.out
