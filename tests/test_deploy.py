"""`nucleus deploy` in the foreground, run as a user runs it: a real subprocess on a temporary root."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from conftest import REPO, Nucleus


def test_hello_world_recipe_runs_and_logs(nucleus: Nucleus) -> None:
    result = nucleus.run("deploy", str(REPO / "recipes" / "com.example.HelloWorld-1.0.0.yaml"))
    assert result.code == 0, result.err
    assert "com.example.HelloWorld | Hello, world!" in result.out
    assert "com.example.HelloWorld: RUNNING -> FINISHED (run exited 0)" in result.out
    assert "deployment succeeded" in result.out
    log = nucleus.log("com.example.HelloWorld")
    assert " INFO [run] Hello, world!" in log
    assert f" INFO [install] installing into {nucleus.root / 'work' / 'com.example.HelloWorld'}" in log
    store = nucleus.root / "packages"
    assert (store / "recipes" / "com.example.HelloWorld@1.0.0.recipe.yaml").is_file()
    assert (store / "artifacts" / "com.example.HelloWorld" / "1.0.0" / "hello_world.py").is_file()
    assert (nucleus.root / "work" / "com.example.HelloWorld").is_dir()
    assert "component-state component=com.example.HelloWorld" in (nucleus.root / "logs" / "nucleus.log").read_text()


def test_output_lines_keep_order_and_stderr_is_warn(nucleus: Nucleus) -> None:
    recipe = nucleus.recipe("com.example.Lines", """
        Run: "for i in 1 2 3; do echo out$i; done; echo oops >&2; printf 'no newline'"
    """)
    result = nucleus.run("deploy", str(recipe))
    assert result.code == 0, result.err
    lines = [line.split(" ", 1)[1] for line in nucleus.log("com.example.Lines").splitlines() if "[run]" in line]
    assert lines[:3] == ["INFO [run] out1", "INFO [run] out2", "INFO [run] out3"]
    assert sorted(lines[3:]) == ["INFO [run] no newline", "WARN [run] oops"]
    assert "com.example.Lines | no newline" in result.out


def test_missing_recipe_is_one_line_and_exit_2(nucleus: Nucleus) -> None:
    result = nucleus.run("deploy", "nope.yaml")
    assert result.code == 2
    assert result.err == "nope.yaml: no such recipe file — check the path\n"
    assert "Traceback" not in result.out + result.err


def test_broken_recipe_is_exit_2_with_its_line(nucleus: Nucleus) -> None:
    path = nucleus.workdir / "bad.yaml"
    path.write_text("RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0\nManifests: []\n")
    result = nucleus.run("deploy", str(path))
    assert result.code == 2
    assert f"{path}:3:1: ComponentVersion: '1.0' is not a strict semantic version" in result.err
    assert f"{path}:4:1: Manifests: is empty" in result.err
    assert "Traceback" not in result.err


def test_a_failing_component_is_exit_1(nucleus: Nucleus) -> None:
    recipe = nucleus.recipe("com.example.Fails", "Run: echo trying; exit 3")
    result = nucleus.run("deploy", str(recipe))
    assert result.code == 1
    assert "com.example.Fails: ERRORED -> BROKEN" in result.out
    assert "deployment ended: com.example.Fails BROKEN" in result.err


def test_one_nucleus_per_root(nucleus: Nucleus) -> None:
    recipe = nucleus.recipe("com.example.Sleeper", "Run: sleep 30")
    first = nucleus.popen("deploy", str(recipe))
    try:
        deadline = time.monotonic() + 20
        while "RUNNING" not in nucleus.log("com.example.Sleeper") and time.monotonic() < deadline:
            time.sleep(0.05)
        second = nucleus.run("deploy", str(nucleus.recipe("com.example.Other", "Run: true")))
        assert second.code == 2
        assert second.err.startswith(f"another nucleus is running on {nucleus.root} (pid {first.pid}, "
                                     "foreground deploy)")
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
    assert first.returncode == 130


def test_version_and_help() -> None:
    import subprocess
    import sys

    from conftest import nucleus_env

    version = subprocess.run([sys.executable, "-m", "nucleus", "--version"], capture_output=True, text=True,
                             env=nucleus_env())
    assert version.stdout.startswith("nucleus ")
    for command in ("deploy", "plan", "validate"):
        shown = subprocess.run([sys.executable, "-m", "nucleus", command, "--help"], capture_output=True,
                               text=True, env=nucleus_env())
        assert shown.returncode == 0 and "example:" in shown.stdout


@pytest.mark.parametrize("args", [[], ["deploy"], ["--bogus"]])
def test_usage_errors_are_exit_2(nucleus: Nucleus, args: list[str]) -> None:
    result = nucleus.run(*args)
    assert result.code == 2 and "usage:" in result.err


def test_root_from_environment(nucleus: Nucleus, tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import nucleus_env

    root = tmp_path / "env-root"
    recipe = nucleus.recipe("com.example.Env", "Run: echo env-root")
    done = subprocess.run([sys.executable, "-m", "nucleus", "deploy", str(recipe)], capture_output=True,
                          text=True, env=nucleus_env({"NUCLEUS_ROOT": str(root)}), cwd=nucleus.workdir)
    assert done.returncode == 0, done.stderr
    assert (root / "logs" / "com.example.Env.log").is_file()
