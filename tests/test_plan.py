"""`nucleus plan` as a user runs it: start order, rendered lifecycles, JSON contract, resolution failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, Nucleus

REFERENCE = REPO / "tests" / "recipes" / "reference"


def component(nucleus: Nucleus, name: str, version: str, deps: dict[str, str] | None = None,
              folder: Path | None = None, run: str | None = None, soft: tuple[str, ...] = ()) -> Path:
    folder = folder or nucleus.workdir
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["RecipeFormatVersion: '2020-01-25'", f"ComponentName: {name}", f"ComponentVersion: '{version}'"]
    if deps:
        lines.append("ComponentDependencies:")
        for dep, requirement in deps.items():
            kind = "SOFT" if dep in soft else "HARD"
            lines.append(f"  {dep}: {{VersionRequirement: '{requirement}', DependencyType: {kind}}}")
    lines += ["Manifests:", "  - Lifecycle:", f"      Run: {run or f'echo {name} {version}'}"]
    path = folder / f"{name}-{version}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def plan_json(nucleus: Nucleus, *args: str) -> dict:
    result = nucleus.run("plan", "--json", *args)
    assert result.code == 0, result.err
    return json.loads(result.out)


@pytest.mark.parametrize("name", sorted(p.name for p in REFERENCE.glob("*.*") if "as-printed" not in p.name))
def test_every_reference_recipe_plans(nucleus: Nucleus, name: str) -> None:
    result = nucleus.run("plan", str(REFERENCE / name), "--recipes", str(REFERENCE / "deps"))
    assert result.code == 0, result.err
    assert "Traceback" not in result.err


def test_reference_foo_service_plan(nucleus: Nucleus) -> None:
    plan = plan_json(nucleus, str(REFERENCE / "foo-service.json"), "--recipes", str(REFERENCE / "deps"))
    names = [(c["name"], c["version"]) for c in plan["components"]]
    assert names == [("BarService", "1.1.5"), ("BazService", "2.3.0"), ("com.example.FooService", "1.0.0")]
    foo = plan["components"][-1]
    assert foo["dependencies"] == {"BarService": {"dependencyType": "SOFT", "versionRequirement": "^1.1.0"},
                                   "BazService": {"dependencyType": "HARD", "versionRequirement": "^2.0.0"}}
    assert foo["lifecycle"] == {"install": {"requiresPrivilege": False, "script": "sudo apt-get install git",
                                            "setenv": {}, "skipif": "onpath git", "timeout": 120}}


def test_plan_renders_variables_and_defaults(nucleus: Nucleus) -> None:
    plan = plan_json(nucleus, str(REPO / "recipes" / "com.example.HelloWorld-1.0.0.yaml"))
    (hello,) = plan["components"]
    root = nucleus.root
    assert hello["lifecycle"]["run"] == {
        "requiresPrivilege": False,
        "script": f'python3 -u {root}/packages/artifacts/com.example.HelloWorld/1.0.0/hello_world.py "world"\n',
        "setenv": {}, "skipif": None, "timeout": None}
    assert hello["lifecycle"]["install"]["timeout"] == 120
    assert hello["builtin"] is False and hello["setenv"] == {}
    assert not (root / "packages").exists()  # plan changes nothing


def test_start_order_dependencies_first_ties_by_name(nucleus: Nucleus) -> None:
    deps = nucleus.workdir / "deps"
    component(nucleus, "Zeta", "1.0.0", folder=deps)
    component(nucleus, "Alpha", "1.0.0", {"Zeta": "^1.0.0"}, folder=deps)
    component(nucleus, "Beta", "1.0.0", folder=deps)
    app = component(nucleus, "App", "1.0.0", {"Alpha": "*", "Beta": "*", "aws.greengrass.Nucleus": ">=2.0.0"},
                    soft=("Beta",))
    plan = plan_json(nucleus, str(app), "--recipes", str(deps))
    order = [(c["name"], c["builtin"]) for c in plan["components"]]
    # Each next component is the first by name among those whose dependencies are already placed.
    assert order == [("Beta", False), ("Zeta", False), ("Alpha", False), ("aws.greengrass.Nucleus", True),
                     ("App", False)]


def test_same_recipe_twice_is_fine_different_is_an_error(nucleus: Nucleus) -> None:
    one, two = nucleus.workdir / "one", nucleus.workdir / "two"
    component(nucleus, "Dep", "1.0.0", folder=one)
    component(nucleus, "Dep", "1.0.0", folder=two)
    app = component(nucleus, "App", "1.0.0", {"Dep": "1.0.0"})
    assert nucleus.run("plan", str(app), "--recipes", str(one), "--recipes", str(two)).code == 0
    component(nucleus, "Dep", "1.0.0", folder=two, run="echo different")
    result = nucleus.run("plan", str(app), "--recipes", str(one), "--recipes", str(two))
    assert result.code == 2
    assert result.err.startswith(f"Dep 1.0.0 is defined twice, differently: {one / 'Dep-1.0.0.yaml'} and "
                                 f"{two / 'Dep-1.0.0.yaml'}")


def test_conflict_names_both_requesters_and_their_ranges(nucleus: Nucleus) -> None:
    deps = nucleus.workdir / "deps"
    app = component(nucleus, "A", "1.0.0", {"B": "^2.0.0"})
    pinned = component(nucleus, "B", "1.4.0", folder=deps)
    component(nucleus, "B", "2.1.0", folder=deps)
    result = nucleus.run("plan", str(app), str(pinned), "--recipes", str(deps))
    assert result.code == 2
    assert result.err.splitlines() == [
        "cannot choose a version of B:",
        "  - A 1.0.0 requires B ^2.0.0",
        f"  - the deployment ({pinned}) requires B 1.4.0",
        "  - available: 1.4.0, 2.1.0",
    ]


def test_backtracking_finds_the_consistent_choice(nucleus: Nucleus) -> None:
    deps = nucleus.workdir / "deps"
    # The newest B wants C 2.x, but A needs C 1.x: the resolver must back out of B 2.0.0.
    component(nucleus, "B", "2.0.0", {"C": "^2.0.0"}, folder=deps)
    component(nucleus, "B", "1.5.0", {"C": "^1.0.0"}, folder=deps)
    component(nucleus, "C", "1.2.0", folder=deps)
    component(nucleus, "C", "2.0.0", folder=deps)
    app = component(nucleus, "A", "1.0.0", {"B": ">=1.0.0", "C": "~1.2.0"})
    plan = plan_json(nucleus, str(app), "--recipes", str(deps))
    assert [(c["name"], c["version"]) for c in plan["components"]] == [("C", "1.2.0"), ("B", "1.5.0"),
                                                                       ("A", "1.0.0")]


def test_cycle_names_its_members_in_order(nucleus: Nucleus) -> None:
    deps = nucleus.workdir / "deps"
    component(nucleus, "D", "1.0.0", {"E": "^1.0.0"}, folder=deps)
    component(nucleus, "E", "1.0.0", {"C": "^1.0.0"}, folder=deps)
    app = component(nucleus, "C", "1.0.0", {"D": "^1.0.0"})
    result = nucleus.run("plan", str(app), "--recipes", str(deps))
    assert result.code == 2
    assert result.err.strip() == "dependency cycle: C 1.0.0 -> D 1.0.0 -> E 1.0.0 -> C 1.0.0"


def test_missing_dependency_names_who_needs_it_and_where_we_looked(nucleus: Nucleus) -> None:
    app = component(nucleus, "E", "1.0.0", {"Missing": "^1.0.0"})
    result = nucleus.run("plan", str(app))
    assert result.code == 2
    assert result.err.splitlines()[:2] == ["cannot find component Missing:", "  - required by E 1.0.0 (Missing ^1.0.0)"]
    assert "the store (" in result.err and "the built-ins (" in result.err


def test_no_manifest_for_this_device(nucleus: Nucleus) -> None:
    path = nucleus.workdir / "win.yaml"
    path.write_text("RecipeFormatVersion: '2020-01-25'\nComponentName: Win\nComponentVersion: '1.0.0'\n"
                    "Manifests:\n  - Platform: {os: windows}\n    Lifecycle: {Run: dir}\n")
    result = nucleus.run("plan", str(path))
    assert result.code == 2
    assert result.err.startswith(f"{path}: Win 1.0.0 has no manifest for this device (os=")
    assert "manifest 1: os=windows" in result.err


def test_platform_override_from_config(nucleus: Nucleus) -> None:
    path = nucleus.workdir / "win.yaml"
    path.write_text("RecipeFormatVersion: '2020-01-25'\nComponentName: Win\nComponentVersion: '1.0.0'\n"
                    "Manifests:\n  - Platform: {os: windows}\n    Lifecycle: {Run: dir}\n")
    config = nucleus.workdir.parent / "config.yaml"
    config.write_text("services:\n  aws.greengrass.Nucleus:\n    configuration:\n      platformOverride:\n"
                      "        os: windows\n")
    result = nucleus.run("--config", str(config), "plan", str(path))
    assert result.code == 0, result.err
    assert "os=windows" in result.out


def test_non_generic_components_plan_but_do_not_deploy(nucleus: Nucleus) -> None:
    path = nucleus.workdir / "lambda.yaml"
    path.write_text("RecipeFormatVersion: '2020-01-25'\nComponentName: L\nComponentVersion: '1.0.0'\n"
                    "ComponentType: aws.greengrass.lambda\nManifests:\n  - Lifecycle: {}\n")
    assert nucleus.run("plan", str(path)).code == 0
    result = nucleus.run("deploy", str(path))
    assert result.code == 2
    assert "nucleus runs generic components only; this deployment has L (aws.greengrass.lambda)" in result.err


def test_plan_runs_the_schema_check(nucleus: Nucleus) -> None:
    result = nucleus.run("plan", str(REFERENCE / "foo-service-as-printed.yaml"))
    assert result.code == 2
    assert ":14:33: invalid YAML: mapping values are not allowed in this context" in result.err
