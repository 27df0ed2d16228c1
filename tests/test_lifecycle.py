"""The lifecycle engine, driven as users drive it: `nucleus deploy` in a subprocess, real steps, real signals.

Scripts record what happened in files under the test's folder; assertions read those files, the logs and
the process table — never the clock.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import psutil
import pytest
from conftest import DOUBLE_FORK, Nucleus, wait_for

pytestmark = pytest.mark.slow

FAST_STOP = """
services:
  aws.greengrass.Nucleus:
    configuration:
      gracefulShutdownTimeout: 1
"""



def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def config(nucleus: Nucleus, text: str = FAST_STOP) -> str:
    path = nucleus.workdir.parent / "config.yaml"
    path.write_text(text)
    return str(path)


def test_crash_loop_reaches_broken_after_exactly_three_runs(nucleus: Nucleus) -> None:
    runs = nucleus.workdir / "runs"
    recipe = nucleus.recipe("com.example.Crash", f"""
        Run: echo run >> {runs}; exit 7
        Recover: echo recover >> {runs}
    """)
    result = nucleus.run("deploy", str(recipe))
    assert result.code == 1
    assert lines(runs) == ["run", "recover", "run", "recover", "run"]
    assert "com.example.Crash: RUNNING -> ERRORED (run exited 7)" in result.out
    assert "com.example.Crash: ERRORED -> BROKEN (3 errors in RUNNING within 3600s; last: run exited 7)" in result.out
    assert "deployment ended: com.example.Crash BROKEN" in result.err


def test_install_failure_restarts_from_install(nucleus: Nucleus) -> None:
    installs = nucleus.workdir / "installs"
    recipe = nucleus.recipe("com.example.BadInstall", f"""
        Install: echo install >> {installs}; exit 1
        Run: echo never
    """)
    result = nucleus.run("deploy", str(recipe))
    assert result.code == 1
    assert lines(installs) == ["install"] * 3
    assert "never" not in nucleus.log("com.example.BadInstall")
    assert "3 errors in NEW" in result.out


def test_error_then_success_finishes(nucleus: Nucleus) -> None:
    flag = nucleus.workdir / "flag"
    recipe = nucleus.recipe("com.example.Flaky", f"""
        Run: if [ -f {flag} ]; then echo second; else touch {flag}; exit 1; fi
    """)
    result = nucleus.run("deploy", str(recipe))
    assert result.code == 0, result.out + result.err
    assert "com.example.Flaky: INSTALLED -> STARTING" in result.out
    assert "com.example.Flaky | second" in result.out


def test_dependent_starts_only_when_its_hard_dependency_is_ready(nucleus: Nucleus) -> None:
    order = nucleus.workdir / "order"
    nucleus.recipe("com.example.Base", f"""
        Startup: sleep 1; echo base-ready >> {order}
    """)
    app = nucleus.recipe("com.example.App", f"""
        Install: echo app-install >> {order}
        Run: echo app-run >> {order}
    """, extra="""
        ComponentDependencies:
          com.example.Base:
            VersionRequirement: ^1.0.0
    """)
    proc = nucleus.popen("--config", config(nucleus), "deploy", str(app), "--recipes", str(nucleus.workdir))
    try:
        wait_for(lambda: "app-run" in lines(order), what="app to run")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert lines(order) == ["app-install", "base-ready", "app-run"], out + err
    assert proc.returncode == 130  # Base stays RUNNING (startup), so the deploy supervises until Ctrl-C


def test_soft_dependency_never_waits(nucleus: Nucleus) -> None:
    order = nucleus.workdir / "order"
    nucleus.recipe("com.example.Slow", f"Startup: sleep 2; echo slow-ready >> {order}")
    app = nucleus.recipe("com.example.App", f"Run: echo app-run >> {order}", extra="""
        ComponentDependencies:
          com.example.Slow: {VersionRequirement: '*', DependencyType: SOFT}
    """)
    proc = nucleus.popen("--config", config(nucleus), "deploy", str(app), "--recipes", str(nucleus.workdir))
    try:
        wait_for(lambda: "slow-ready" in lines(order), what="slow to be ready")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert lines(order) == ["app-run", "slow-ready"]


def test_running_dependents_restart_when_a_hard_dependency_errors(nucleus: Nucleus) -> None:
    order = nucleus.workdir / "order"
    flag = nucleus.workdir / "flag"
    nucleus.recipe("com.example.Db", f"""
        Run: echo db-start >> {order}; if [ ! -f {flag} ]; then touch {flag}; sleep 2; exit 1; fi; sleep 60
    """)
    app = nucleus.recipe("com.example.App", f"Run: echo app-start >> {order}; sleep 60", extra="""
        ComponentDependencies:
          com.example.Db: {VersionRequirement: '^1.0.0'}
    """)
    proc = nucleus.popen("--config", config(nucleus), "deploy", str(app), "--recipes", str(nucleus.workdir))
    try:
        wait_for(lambda: lines(order).count("app-start") == 2, what="app to restart")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert lines(order) == ["db-start", "app-start", "db-start", "app-start"]
    assert "com.example.App: RUNNING -> STOPPING (its dependency com.example.Db errored)" in out


def test_timeout_kills_the_step_and_its_children(nucleus: Nucleus) -> None:
    pids = nucleus.workdir / "pids"
    recipe = nucleus.recipe("com.example.Slow", f"""
        Install:
          Script: sleep 60 & echo $! >> {pids}; sh -c 'sleep 60 & echo $! >> {pids}; wait' & echo $$ >> {pids}; wait
          Timeout: 1
    """)
    result = nucleus.run("--config", config(nucleus), "deploy", str(recipe))
    assert result.code == 1
    assert "install timed out after 1s (its processes were ended)" in result.out
    recorded = [int(p) for p in lines(pids)]
    assert len(recorded) == 9  # three attempts, three processes each
    assert not [p for p in recorded if alive(p)]


def test_ctrl_c_runs_shutdown_and_leaves_no_process_behind(nucleus: Nucleus) -> None:
    pids = nucleus.workdir / "pids"
    shutdowns = nucleus.workdir / "shutdowns"
    # run ignores SIGTERM, starts a child in its group, and a grandchild that leaves the group (setsid)
    # and whose parent exits at once, so that it is re-parented away from the component.
    nucleus.recipe("com.example.Base", f"""
        Run: sleep 60 & echo $! >> {pids}; wait
        Shutdown: echo base >> {shutdowns}
    """)
    app = nucleus.recipe("com.example.Stubborn", f"""
        Run: >-
          trap '' TERM; echo $$ >> {pids};
          sleep 60 & echo $! >> {pids};
          sh -c 'setsid sh -c "trap \\"\\" TERM; echo \\$\\$ >> {pids}; sleep 60" &';
          wait
        Shutdown: echo stubborn >> {shutdowns}
    """, extra="""
        ComponentDependencies:
          com.example.Base: {VersionRequirement: '1.0.0'}
    """)
    proc = nucleus.popen("--config", config(nucleus), "deploy", str(app), "--recipes", str(nucleus.workdir))
    wait_for(lambda: len(lines(pids)) == 4, what="all processes to start")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert lines(shutdowns) == ["stubborn", "base"]  # dependents stop first
    assert not [p for p in map(int, lines(pids)) if alive(p)]
    assert "com.example.Stubborn: STOPPING -> FINISHED (SIGINT received)" in out
    assert "ignored SIGTERM and were killed" in nucleus.log("com.example.Stubborn") + \
        (nucleus.root / "logs" / "nucleus.log").read_text()


def test_sigterm_exits_143(nucleus: Nucleus) -> None:
    recipe = nucleus.recipe("com.example.Sleeper", "Run: sleep 60")
    proc = nucleus.popen("--config", config(nucleus), "deploy", str(recipe))
    wait_for(lambda: "RUNNING" in nucleus.log("com.example.Sleeper"), what="RUNNING")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert "com.example.Sleeper: STOPPING -> FINISHED (SIGTERM received)" in out
    assert "deployment ended: stopped by SIGTERM" in err


def test_startup_background_processes_are_stopped(nucleus: Nucleus) -> None:
    pids = nucleus.workdir / "pids"
    recipe = nucleus.recipe("com.example.Daemon", f"""
        Startup: nohup sleep 60 > /dev/null 2>&1 & echo $! > {pids}
    """)
    proc = nucleus.popen("--config", config(nucleus), "deploy", str(recipe))
    wait_for(lambda: "RUNNING" in nucleus.log("com.example.Daemon") and lines(pids), what="RUNNING")
    daemon = int(lines(pids)[0])
    assert alive(daemon)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert not alive(daemon)


def test_environment_of_steps(nucleus: Nucleus) -> None:
    recipe = nucleus.recipe("com.example.Env", """
        Setenv:
          SHARED: lifecycle
          OVERRIDDEN: lifecycle
        Run:
          Script: env | sort; echo "cwd=$(pwd)"
          Setenv:
            OVERRIDDEN: step
    """)
    extra = {"VIRTUAL_ENV": "/some/venv", "PATH": "/some/venv/bin:" + os.environ["PATH"]}
    result = nucleus.run("deploy", str(recipe), env=extra)
    assert result.code == 0, result.err
    env = dict(line.split(" | ", 1)[1].split("=", 1) for line in result.out.splitlines()
               if line.startswith("com.example.Env | ") and "=" in line)
    assert len(env["SVCUID"]) == 16 and env["SVCUID"] == env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["GGC_VERSION"].startswith("2.")
    assert env["PYTHONUNBUFFERED"] == "1"
    assert "AWS_IOT_THING_NAME" in env and "GG_ROOT_CA_PATH" in env
    assert "VIRTUAL_ENV" not in env and "/some/venv/bin" not in env["PATH"].split(":")
    assert (env["SHARED"], env["OVERRIDDEN"]) == ("lifecycle", "step")
    assert env["cwd"] == str(nucleus.root / "work" / "com.example.Env")


def test_skipif(nucleus: Nucleus) -> None:
    marker = nucleus.workdir / "marker"
    marker.touch()
    recipe = nucleus.recipe("com.example.Skips", f"""
        Install:
          Script: echo install-ran
          Skipif: onpath sh
        Startup:
          Script: echo startup-ran
          Skipif: '! exists {marker}'
        Shutdown: 'true'
    """)
    proc = nucleus.popen("--config", config(nucleus), "deploy", str(recipe))
    wait_for(lambda: "RUNNING" in nucleus.log("com.example.Skips"), what="RUNNING")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert "install-ran" not in out and "startup-ran" in out
    assert "INSTALLED (install skipped (onpath sh))" in out


def test_bootstrap_runs_once_per_version(nucleus: Nucleus) -> None:
    boots = nucleus.workdir / "boots"
    recipe = nucleus.recipe("com.example.Boot", f"""
        Bootstrap: echo boot >> {boots}
        Run: echo run
    """)
    assert nucleus.run("deploy", str(recipe)).code == 0
    assert nucleus.run("deploy", str(recipe)).code == 0
    assert lines(boots) == ["boot"]
    newer = nucleus.recipe("com.example.Boot", f"""
        Bootstrap: echo boot >> {boots}
        Run: echo run
    """, version="1.0.1")
    assert nucleus.run("deploy", str(newer)).code == 0
    assert lines(boots) == ["boot", "boot"]


def test_logs_rotate_by_size(nucleus: Nucleus) -> None:
    recipe = nucleus.recipe("com.example.Chatty", "Run: for i in $(seq 1 300); do echo line-$i-padding-padding; done")
    small = "services:\n  aws.greengrass.Nucleus:\n    configuration:\n      logging: {fileSizeKB: 2, fileCount: 3}\n"
    assert nucleus.run("--config", config(nucleus, small), "deploy", str(recipe)).code == 0
    logs = nucleus.root / "logs"
    assert (logs / "com.example.Chatty.log.1").is_file() and (logs / "com.example.Chatty.log.2").is_file()
    assert not (logs / "com.example.Chatty.log.3").exists()
    for path in logs.glob("com.example.Chatty.log*"):
        assert path.stat().st_size < 2 * 1024 + 200


def test_last_states_are_recorded(nucleus: Nucleus) -> None:
    recipe = nucleus.recipe("com.example.Done", "Run: echo done")
    assert nucleus.run("deploy", str(recipe)).code == 0
    with sqlite3.connect(nucleus.root / "config" / "state.sqlite") as db:
        rows = db.execute("SELECT name, version, state FROM components").fetchall()
        deployments = db.execute("SELECT mode, status FROM deployments").fetchall()
        processes = db.execute("SELECT count(*) FROM processes").fetchone()
    assert rows == [("com.example.Done", "1.0.0", "FINISHED")]
    assert deployments == [("foreground", "SUCCEEDED")]
    assert processes == (0,)  # a step's record goes when its process has gone


def test_errors_older_than_error_reset_time_do_not_count(nucleus: Nucleus) -> None:
    runs = nucleus.workdir / "runs"
    # Each run fails after 1.2 s, so no two errors fall within errorResetTime (1 s): never BROKEN.
    recipe = nucleus.recipe("com.example.SlowCrash", f"Run: echo run >> {runs}; sleep 1.2; exit 1")
    window = "services:\n  aws.greengrass.Nucleus:\n    configuration:\n      errorResetTime: 1\n"
    proc = nucleus.popen("--config", config(nucleus, window), "deploy", str(recipe))
    try:
        wait_for(lambda: len(lines(runs)) >= 4, timeout=60, what="a fourth run")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "BROKEN" not in out
    assert "restarting after error 1 of 3" in out and "restarting after error 2 of 3" not in out


def test_docs_diagram_matches_the_transition_table() -> None:
    from conftest import REPO

    from nucleus.lifecycle.states import mermaid

    assert mermaid() in (REPO / "docs" / "lifecycle.md").read_text()


def test_a_skipped_startup_falls_through_to_run(nucleus: Nucleus) -> None:
    # Greengrass runs `run` when `startup` is absent or skipped (issue 11, item 1).
    recipe = nucleus.recipe("com.example.SkipStartup", """
        Startup:
          Skipif: onpath sh
          Script: echo startup-ran
        Run: echo run-ran
    """)
    result = nucleus.run("deploy", str(recipe), timeout=60)
    assert result.code == 0, result.err
    assert "run-ran" in result.out and "startup-ran" not in result.out
    assert "STARTING -> RUNNING (startup skipped (onpath sh); run started" in result.out
    assert "RUNNING -> FINISHED (run exited 0)" in result.out


def test_startup_wins_over_run_when_it_is_not_skipped(nucleus: Nucleus) -> None:
    recipe = nucleus.recipe("com.example.BothSteps", """
        Startup: echo startup-ran
        Run: echo run-ran
    """)
    proc = nucleus.popen("--config", config(nucleus), "deploy", str(recipe))
    wait_for(lambda: "RUNNING" in nucleus.log("com.example.BothSteps"), what="RUNNING")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert "startup-ran" in out and "run-ran" not in out


NON_REAPING_PARENT = r"""
import ctypes, subprocess, sys
# A subreaper that never reaps orphans: the PID 1 of some containers. Without the nucleus being a subreaper
# itself, a component's orphans would end up here as zombies, and a stop would wait for them.
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
sys.exit(subprocess.call(sys.argv[1:]))
"""


def test_a_stop_does_not_wait_for_orphans_that_nobody_reaps(nucleus: Nucleus) -> None:
    # Issue 11, item 2: the nucleus is a child subreaper and reaps every orphan of its components at once.
    import subprocess
    import sys

    from conftest import nucleus_command, nucleus_env

    recipe = nucleus.recipe("com.example.Orphaning", "Run: (sleep 60 &); sleep 60")
    command = nucleus_command(nucleus.root, "--config", config(nucleus), "deploy", str(recipe))
    parent = subprocess.Popen([sys.executable, "-c", NON_REAPING_PARENT, *command], cwd=nucleus.workdir,
                              env=nucleus_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        wait_for(lambda: "RUNNING" in nucleus.log("com.example.Orphaning"), what="RUNNING")
        [deployer] = [c for c in psutil.Process(parent.pid).children() if "nucleus" in c.cmdline()]
        deployer.send_signal(signal.SIGINT)
        out, err = parent.communicate(timeout=30)
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
    assert parent.returncode == 130, err
    log = nucleus.log("com.example.Orphaning")
    assert "RUNNING -> STOPPING" in log and "STOPPING -> FINISHED" in log
    assert "ignored SIGTERM and were killed" not in log  # the group emptied: no wait for a zombie




def test_a_double_forked_daemon_without_its_token_is_stopped_with_its_component(nucleus: Nucleus) -> None:
    # Issue 11, item 3: with the subreaper, it comes back to the nucleus and belongs to its component.
    script = nucleus.workdir / "daemonize.py"
    script.write_text(DOUBLE_FORK)
    run_pid, startup_pid = nucleus.workdir / "run.pid", nucleus.workdir / "startup.pid"
    while_running = nucleus.recipe("com.example.RunDaemon", f"Run: python3 {script} {run_pid} && sleep 60")
    after_startup = nucleus.recipe("com.example.StartupDaemon", f"Startup: python3 {script} {startup_pid}")
    proc = nucleus.popen("--config", config(nucleus), "deploy", str(while_running), str(after_startup))
    try:
        wait_for(lambda: lines(run_pid) and lines(startup_pid), what="both daemons")
        daemons = [int(lines(run_pid)[0]), int(lines(startup_pid)[0])]
        wait_for(lambda: "RUNNING" in nucleus.log("com.example.StartupDaemon"), what="RUNNING")
        assert all(alive(pid) for pid in daemons)
        assert all("SVCUID" not in psutil.Process(pid).environ() for pid in daemons)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert not any(alive(pid) for pid in daemons)
