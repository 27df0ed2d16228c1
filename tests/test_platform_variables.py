"""Platform selection and recipe variables: pure functions, plain data in and out."""

from __future__ import annotations

import pytest

from nucleus.errors import NucleusError
from nucleus.recipe import parse_recipe
from nucleus.recipe.model import Lifecycle, Platform, Step
from nucleus.recipe.platform import detect_platform, platform_matches, select_manifest
from nucleus.recipe.variables import (
    ComponentFacts,
    VariableContext,
    render,
    render_lifecycle,
    resolve_pointer,
)

LINUX = {"os": "linux", "architecture": "amd64"}
PI = {"os": "linux", "architecture": "arm", "architecture.detail": "armv7l"}


@pytest.mark.parametrize("attributes, device, expected", [
    ({}, LINUX, True),
    ({"os": "linux"}, LINUX, True),
    ({"os": "windows"}, LINUX, False),
    ({"os": "*"}, LINUX, True),
    ({"os": "all"}, LINUX, True),
    ({"architecture": "any"}, LINUX, True),
    ({"os": "/lin.x/"}, LINUX, True),
    ({"os": "/lin/"}, LINUX, False),  # a full-string match
    ({"os": "Linux"}, LINUX, False),  # exact values are case-sensitive
    ({"architecture": "arm", "architecture.detail": "/armv[67]l/"}, PI, True),
    ({"architecture.detail": "armv8"}, PI, False),
    ({"com.example.Radio": "*"}, LINUX, True),  # `*` matches a missing attribute too
    ({"com.example.Radio": "lora"}, LINUX, False),
    ({"com.example.Radio": "all"}, LINUX, False),  # all/any are special for os and architecture only
])
def test_platform_matching(attributes: dict, device: dict, expected: bool) -> None:
    assert platform_matches(Platform(attributes), device) is expected


def test_detect_platform_and_override() -> None:
    device = detect_platform()
    assert device["os"] in ("linux", "darwin", "windows")
    assert device["runtime"] == "aws_nucleus_classic"
    overridden = detect_platform({"OS": "windows", "com.example.Radio": "lora"})
    assert overridden["os"] == "windows" and overridden["com.example.Radio"] == "lora"


RECIPE = """
RecipeFormatVersion: '2020-01-25'
ComponentName: com.example.A
ComponentVersion: '1.0.0'
Manifests:
  - Platform: {os: windows}
    Lifecycle: {Run: windows}
  - Platform: {os: linux, architecture: /amd64|aarch64/}
    Lifecycle: {Run: linux}
  - Lifecycle: {Run: anything}
"""


def test_first_matching_manifest_wins() -> None:
    recipe = parse_recipe(RECIPE).recipe
    assert select_manifest(recipe, LINUX).lifecycle.steps["run"].script == "linux"
    assert select_manifest(recipe, PI).lifecycle.steps["run"].script == "anything"


def test_no_matching_manifest_names_both_platforms() -> None:
    recipe = parse_recipe(RECIPE.replace("  - Lifecycle: {Run: anything}\n", ""), "r.yaml").recipe
    with pytest.raises(NucleusError) as caught:
        select_manifest(recipe, PI)
    message = str(caught.value)
    assert message.startswith("r.yaml: com.example.A 1.0.0 has no manifest for this device (os=linux, "
                              "architecture=arm, architecture.detail=armv7l)")
    assert "manifest 1: os=windows; manifest 2: os=linux, architecture=/amd64|aarch64/" in message
    assert message.endswith("set platformOverride in the nucleus config")


CONTEXT = VariableContext(
    component="com.example.A",
    facts={
        "com.example.A": ComponentFacts("/r/packages/artifacts/com.example.A/1.0.0",
                                        "/r/packages/artifacts-unarchived/com.example.A/1.0.0", "/r/work/com.example.A",
                                        {"Message": "hi", "Port": 80, "Flag": True, "Nothing": None,
                                         "Obj": {"a": [1, 2]}, "a/b": "slash", "m~n": "tilde", "List": ["x", "y"]}),
        "com.example.Dep": ComponentFacts("/r/a/dep", "/r/u/dep", "/r/work/com.example.Dep", {"url": "http://x"}),
    },
    root_path="/r",
    thing_name="MyThing",
)


@pytest.mark.parametrize("text, expected", [
    ("{artifacts:path}/x.py", "/r/packages/artifacts/com.example.A/1.0.0/x.py"),
    ("{artifacts:decompressedPath}/m", "/r/packages/artifacts-unarchived/com.example.A/1.0.0/m"),
    ("cd {work:path}", "cd /r/work/com.example.A"),
    ("{kernel:rootPath}", "/r"),
    ("{iot:thingName}", "MyThing"),
    ("{configuration:/Message}", "hi"),
    ("{configuration:/Port}", "80"),
    ("{configuration:/Flag}", "true"),
    ("{configuration:/Nothing}", "null"),
    ("{configuration:/Obj}", '{"a":[1,2]}'),
    ("{configuration:/Obj/a/1}", "2"),
    ("{configuration:/List}", '["x","y"]'),
    ("{configuration:/a~1b} {configuration:/m~0n}", "slash tilde"),
    ("{com.example.Dep:artifacts:path}", "/r/a/dep"),
    ("{com.example.Dep:work:path}", "/r/work/com.example.Dep"),
    ("{com.example.Dep:configuration:/url}", "http://x"),
])
def test_variables(text: str, expected: str) -> None:
    found: list[str] = []
    assert render(text, CONTEXT, found) == expected
    assert found == []


@pytest.mark.parametrize("text, problem", [
    ("{configuration:/Missing}", "no /Missing in com.example.A's configuration"),
    ("{configuration:/Obj/a/5}", "no /Obj/a/5"),
    ("{com.example.Other:artifacts:path}", "com.example.Other is not a direct dependency of com.example.A"),
    ("{com.example.Dep:iot:thingname}", "unknown variable"),  # keys are case-sensitive
    ("{artifacts:paht}", "unknown variable"),
    ("{foo:bar}", "unknown variable"),
])
def test_unresolvable_variables_stay_with_a_warning(text: str, problem: str) -> None:
    found: list[str] = []
    assert render(text, CONTEXT, found, "where: ") == text
    assert len(found) == 1 and found[0].startswith(f"where: {text} left as written: {problem}")


def test_shell_text_passes_untouched_without_warning() -> None:
    found: list[str] = []
    text = 'echo ${HOME:-/tmp} {} { a: b } "${X}" awk \'{print $1}\''
    assert render(text, CONTEXT, found) == text
    assert found == []


def test_render_lifecycle_renders_every_string() -> None:
    lifecycle = Lifecycle(
        {"install": Step("install", "echo {iot:thingName}", skipif="exists {work:path}/done",
                         setenv={"MSG": "{configuration:/Message}"})},
        {"ROOT": "{kernel:rootPath}"})
    rendered = render_lifecycle(lifecycle, CONTEXT, [])
    step = rendered.steps["install"]
    assert (step.script, step.skipif, dict(step.setenv)) == (
        "echo MyThing", "exists /r/work/com.example.A/done", {"MSG": "hi"})
    assert rendered.setenv == {"ROOT": "/r"}


def test_json_pointer_edge_cases() -> None:
    assert resolve_pointer({"a": 1}, "") == (True, {"a": 1})
    assert resolve_pointer({"": 5}, "/") == (True, 5)
    assert resolve_pointer([1, 2], "/01") == (False, None)
    assert resolve_pointer({"a": 1}, "a") == (False, None)
