"""What a demanding user (or a careless one) can throw at the nucleus: every case ends in one clear line
and the right exit code, nothing hangs, nothing is left running, nothing outside the store is touched."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import psutil
import pytest

from conftest import Nucleus

pytestmark = pytest.mark.slow


def no_traceback(result: object) -> None:
    assert "Traceback" not in result.out + result.err  # type: ignore[attr-defined]


@pytest.mark.parametrize("body, expected", [
    ("Run:\n  Script: echo hi\n  Timeout: .inf", "'.inf' is not a positive whole number of seconds"),
    ("Run:\n  Script: echo hi\n  Timeout: 99999999999", "seconds is more than Greengrass allows"),
    ("Run: !!int abc", "'abc' cannot be read as int"),
    ("Run:\n  Script: echo hi\n  Setenv: {'A=B': x}", "'A=B' cannot be an environment variable name"),
])
def test_odd_recipe_values_are_exit_2(nucleus: Nucleus, body: str, expected: str) -> None:
    recipe = nucleus.recipe("com.example.Odd", body)
    result = nucleus.run("deploy", str(recipe), timeout=60)
    assert result.code == 2, result.out + result.err
    assert expected in result.err
    no_traceback(result)


def test_deeply_nested_json_is_exit_2(nucleus: Nucleus) -> None:
    path = nucleus.workdir / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    result = nucleus.run("validate", str(path))
    assert result.code == 2 and "nested more than 200 deep" in result.err
    no_traceback(result)


def test_a_nul_reaching_a_script_through_configuration_breaks_the_component_not_the_nucleus(
        nucleus: Nucleus) -> None:
    path = nucleus.workdir / "nul.json"
    path.write_text(json.dumps({
        "RecipeFormatVersion": "2020-01-25", "ComponentName": "com.example.Nul", "ComponentVersion": "1.0.0",
        "ComponentConfiguration": {"DefaultConfiguration": {"x": "a\u0000b"}},
        "Manifests": [{"Lifecycle": {"Run": "echo {configuration:/x}"}}]}))
    result = nucleus.run("deploy", str(path), timeout=60)
    assert result.code == 1, result.out + result.err
    assert "run could not start" in result.out and "com.example.Nul: ERRORED -> BROKEN" in result.out
    no_traceback(result)


def test_background_processes_of_a_finished_component_end_with_the_deploy(nucleus: Nucleus) -> None:
    marker = f"777{os.getpid()}"
    recipe = nucleus.recipe("com.example.Bg", f"Run: sleep {marker} & echo started")
    result = nucleus.run("deploy", str(recipe))
    assert result.code == 0, result.err
    assert not [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]


def test_a_symlinked_artifact_is_refused_and_its_target_untouched(nucleus: Nucleus, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("secret")
    victim.chmod(0o600)
    folder = nucleus.workdir / "components" / "com.example.Link" / "1.0.0"
    folder.mkdir(parents=True)
    (folder / "data.txt").symlink_to(victim)
    recipe = nucleus.recipe("com.example.Link", "Run: 'true'", extra="")
    recipe.write_text(recipe.read_text() + "    Artifacts:\n      - URI: s3://b/data.txt\n"
                      "        Permission: {Read: ALL, Execute: ALL}\n")
    result = nucleus.run("deploy", str(recipe))
    assert result.code == 2 and "the artifact data.txt is a symbolic link" in result.err
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600


def test_a_zip_that_cannot_be_unpacked_is_exit_2(nucleus: Nucleus) -> None:
    folder = nucleus.workdir / "components" / "com.example.Zip" / "1.0.0"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "bad.zip", "w") as archive:
        archive.writestr("x", "a file")
        archive.writestr("x/y", "and a file below it")
    recipe = nucleus.recipe("com.example.Zip", "Run: 'true'")
    recipe.write_text(recipe.read_text() + "    Artifacts:\n      - URI: s3://b/bad.zip\n        Unarchive: ZIP\n")
    result = nucleus.run("deploy", str(recipe))
    assert result.code == 2 and "bad.zip cannot be unpacked" in result.err
    no_traceback(result)


def test_a_root_that_is_a_file_is_exit_2(nucleus: Nucleus, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    other = Nucleus(not_a_folder, nucleus.workdir)
    result = other.run("deploy", str(nucleus.recipe("com.example.X", "Run: 'true'")))
    assert result.code == 2 and f"cannot use {not_a_folder} as a nucleus root" in result.err
    no_traceback(result)


def test_an_infinite_config_value_is_exit_2(nucleus: Nucleus, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("services:\n  aws.greengrass.Nucleus:\n    configuration:\n      logging: {fileSizeKB: .inf}\n")
    result = nucleus.run("--config", str(config), "list")
    assert result.code == 2 and "is not a number" in result.err
    no_traceback(result)


def test_a_component_named_nucleus_is_refused(nucleus: Nucleus) -> None:
    result = nucleus.run("deploy", str(nucleus.recipe("nucleus", "Run: 'true'")))
    assert result.code == 2 and "a component cannot be named 'nucleus' here" in result.err


def test_setenv_cannot_change_the_components_identity(nucleus: Nucleus) -> None:
    recipe = nucleus.recipe("com.example.Id", 'Run:\n  Script: echo "id=$SVCUID"\n  Setenv: {SVCUID: forged}')
    result = nucleus.run("deploy", str(recipe))
    assert result.code == 0
    assert "id=forged" not in result.out and "com.example.Id | id=" in result.out
