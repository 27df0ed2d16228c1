"""Recipe variables as Greengrass reads them: its grammar, where they are substituted, typed fields typed
after substitution, and warnings with file:line:col for the ones that cannot resolve (docs/recipes.md,
"Variables")."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, Nucleus

from nucleus.recipe import RecipeError, parse_recipe, read_recipe
from nucleus.recipe.model import Lifecycle, Step
from nucleus.recipe.variables import ComponentFacts, VariableContext, render, render_lifecycle

EMQX_DIR = REPO / "tests" / "recipes" / "emqx"
# AWS's EMQX broker component, aws-greengrass/aws-greengrass-emqx-mqtt `recipe.json` as of commit acefff8,
# with the ComponentVersion its build tool adds. Its typed fields hold variables:
# "timeout": "{configuration:/startupTimeoutSeconds}", "requiresPrivilege": "{configuration:/requiresPrivilege}".
EMQX = EMQX_DIR / "aws.greengrass.clientdevices.mqtt.EMQX-2.0.0.json"
LINUX = "services:\n  aws.greengrass.Nucleus:\n    configuration:\n      platformOverride: {os: linux}\n"

A, DEP = "com.example.A", "com.example.Dep"


def context(configuration: dict | None = None) -> VariableContext:
    return VariableContext(A, {
        A: ComponentFacts("/r/a", "/r/u", "/r/work/A", configuration or {}),
        DEP: ComponentFacts("/r/dep", "/r/udep", "/r/work/Dep", {"url": "http://x"}),
    }, "/r", "MyThing")


def recipe(lifecycle: str, configuration: str = "{}") -> str:
    body = textwrap.indent(textwrap.dedent(lifecycle).strip("\n"), "      ")
    return (f"RecipeFormatVersion: '2020-01-25'\nComponentName: {A}\nComponentVersion: '1.0.0'\n"
            f"ComponentConfiguration:\n  DefaultConfiguration: {configuration}\n"
            f"ComponentDependencies:\n  {DEP}: {{VersionRequirement: '^1.0.0'}}\n"
            f"Manifests:\n  - Lifecycle:\n{body}\n")


def rendered_step(text: str, configuration: dict, step: str = "install") -> Step:
    parsed = parse_recipe(text, "r.yaml")
    assert parsed.errors == [], parsed.errors
    return render_lifecycle(parsed.recipe.manifests[0].lifecycle, context(configuration), []).steps[step]


TYPED = """
Install:
  Script: echo hi
  Timeout: '{configuration:/timeout}'
  RequiresPrivilege: '{configuration:/privileged}'
  Skipif: '{configuration:/check}'
"""


# -- 1. typed fields: substituted first, typed after ------------------------------------------------


def test_typed_fields_holding_a_variable_load_as_text_with_their_place() -> None:
    parsed = parse_recipe(recipe(TYPED), "r.yaml", schema=True)
    assert parsed.errors == []
    step = parsed.recipe.manifests[0].lifecycle.steps["install"]
    assert dict(step.pending) == {"timeout": "{configuration:/timeout}",
                                  "requires_privilege": "{configuration:/privileged}"}
    assert step.skipif == "{configuration:/check}"  # text anyway: its check waits for substitution
    assert (step.timeout, step.requires_privilege) == (None, False)
    assert step.places["timeout"][:3] == ("r.yaml", 12, 9)
    assert step.places["timeout"].where == "Manifests[0].Lifecycle.Install.Timeout"


def test_typed_fields_are_typed_after_substitution() -> None:
    step = rendered_step(recipe(TYPED), {"timeout": "90", "privileged": "TRUE", "check": " onpath sh "})
    assert (step.timeout, step.requires_privilege, step.skipif, dict(step.pending)) == (90, True, "onpath sh", {})
    step = rendered_step(recipe(TYPED), {"timeout": 300, "privileged": False, "check": "! exists /x"})
    assert (step.timeout, step.requires_privilege, step.skipif) == (300, False, "! exists /x")


@pytest.mark.parametrize("configuration, expected", [
    ({"timeout": "abc", "privileged": "true", "check": "onpath sh"},
     "r.yaml:12:9: Manifests[0].Lifecycle.Install.Timeout: '{configuration:/timeout}' gives 'abc', and 'abc' is "
     "not a positive whole number of seconds — make {configuration:/timeout} a positive whole number of "
     "seconds, e.g. 300"),
    ({"timeout": 5, "privileged": "yes", "check": "onpath sh"},
     "r.yaml:13:9: Manifests[0].Lifecycle.Install.RequiresPrivilege: '{configuration:/privileged}' gives "
     "'yes', and 'yes' is not true or false — make {configuration:/privileged} true or false"),
    ({"timeout": 5, "privileged": True, "check": "sometimes"},
     "r.yaml:14:9: Manifests[0].Lifecycle.Install.Skipif: '{configuration:/check}' gives 'sometimes', and "
     "'sometimes' is not a check Greengrass knows — make {configuration:/check} 'onpath <program>' or "
     "'exists <path>', optionally with '!' in front"),
    ({"timeout": 5, "privileged": True, "chek": "onpath sh"},
     "r.yaml:14:9: Manifests[0].Lifecycle.Install.Skipif: '{configuration:/check}' is not a check Greengrass "
     "knows: {configuration:/check} cannot be substituted (no /check in com.example.A's configuration) — "
     "did you mean {configuration:/chek}?"),
])
def test_a_typed_field_still_invalid_after_substitution_is_one_error(configuration: dict, expected: str) -> None:
    lifecycle = parse_recipe(recipe(TYPED), "r.yaml").recipe.manifests[0].lifecycle
    warnings: list[str] = []
    with pytest.raises(RecipeError) as caught:
        render_lifecycle(lifecycle, context(configuration), warnings)
    assert caught.value.lines() == [expected]
    assert warnings == []  # the error says it all


def test_a_typed_field_mixing_text_and_variables_names_each_value() -> None:
    text = recipe("Run: {Script: x, Timeout: '{configuration:/m}{configuration:/s}'}")
    with pytest.raises(RecipeError) as caught:
        rendered_step(text, {"m": 1, "s": "x"}, "run")
    assert str(caught.value) == (
        "r.yaml:10:24: Manifests[0].Lifecycle.Run.Timeout: '{configuration:/m}{configuration:/s}' gives '1x' "
        "({configuration:/m} is '1', {configuration:/s} is 'x'), and '1x' is not a positive whole number of "
        "seconds — make '{configuration:/m}{configuration:/s}' give a positive whole number of seconds, e.g. 300")
    assert rendered_step(text, {"m": 1, "s": 20}, "run").timeout == 120


def test_shell_text_in_a_typed_field_is_not_substituted() -> None:
    with pytest.raises(RecipeError) as caught:
        rendered_step(recipe("Run: {Script: x, Timeout: '${T:-5}'}"), {}, "run")
    assert str(caught.value) == ("r.yaml:10:24: Manifests[0].Lifecycle.Run.Timeout: '${T:-5}' is not a positive "
                                 "whole number of seconds — Timeout needs a positive whole number of seconds, e.g. 300")


def test_a_skipif_still_valid_with_a_variable_left_as_written_is_a_warning() -> None:
    lifecycle = parse_recipe(recipe("Run: {Script: x, Skipif: 'exists {configuration:/marker}'}"),
                             "r.yaml").recipe.manifests[0].lifecycle
    warnings: list[str] = []
    assert render_lifecycle(lifecycle, context(), warnings).steps["run"].skipif == "exists {configuration:/marker}"
    assert warnings == ["r.yaml:10:24: warning: Manifests[0].Lifecycle.Run.Skipif: {configuration:/marker} left as "
                        "written: no /marker in com.example.A's configuration — add it to DefaultConfiguration "
                        "(pointers are case-sensitive)"]


def test_a_typed_field_without_a_variable_is_still_checked_when_read() -> None:
    errors = [str(d) for d in parse_recipe(recipe("Run: {Script: x, Timeout: '{timeout}'}"), "r.yaml").errors]
    assert errors == ["r.yaml:10:24: Manifests[0].Lifecycle.Run.Timeout: '{timeout}' is not a positive whole "
                      "number of seconds — write the number of seconds, e.g. Timeout: 300"]


def test_an_unquoted_variable_in_yaml_is_a_mapping_and_the_error_says_quote_it() -> None:
    errors = [str(d) for d in parse_recipe(recipe("Run: {Script: x, Timeout: {configuration:/t}}"),
                                           "r.yaml", schema=True).errors]
    assert errors == ["r.yaml:10:24: Manifests[0].Lifecycle.Run.Timeout: YAML reads the unquoted "
                      "{configuration:/t} as a mapping, not as text — quote it: '{configuration:/t}'"]


def test_the_emqx_recipe_validates(nucleus: Nucleus) -> None:
    assert read_recipe(EMQX, schema=True).errors == []
    result = nucleus.run("validate", str(EMQX))
    assert result.code == 0, result.err
    assert result.out == f"{EMQX}: valid: aws.greengrass.clientdevices.mqtt.EMQX 2.0.0 (7 warning(s))\n"


def test_the_emqx_recipe_plans_with_typed_values(nucleus: Nucleus) -> None:
    config = nucleus.workdir / "config.yaml"
    config.write_text(LINUX)
    result = nucleus.run("--config", str(config), "plan", "--json", str(EMQX), "--recipes", str(EMQX_DIR / "deps"))
    assert result.code == 0, result.err
    emqx = json.loads(result.out)["components"][-1]
    steps = emqx["lifecycle"]
    assert sorted(steps) == ["install", "shutdown", "startup"]
    assert steps["startup"]["timeout"] == 90  # a number, from "{configuration:/startupTimeoutSeconds}" = "90"
    assert [steps[s]["requiresPrivilege"] for s in sorted(steps)] == [True, True, True]
    assert steps["startup"]["setenv"]["DOCKER_EXTRA"] == "-p 8883:8883"
    assert steps["startup"]["script"].startswith("case $DOCKER_EXTRA in \\{configuration:*) ")  # shell text
    # Pointers the defaults lack are left as written, with a warning where they are, once each.
    assert steps["startup"]["setenv"]["RESTART_NODE_CONF"] == "{configuration:/emqxConfig/node}"
    node = [line for line in result.err.splitlines() if "{configuration:/emqxConfig/node}" in line]
    assert [line.split(": warning: ")[0] for line in node] == [f"{EMQX}:61:11", f"{EMQX}:99:13"]


def test_the_emqx_recipe_with_a_bad_configuration_value_is_one_error_per_field(nucleus: Nucleus) -> None:
    config = nucleus.workdir / "config.yaml"
    config.write_text(LINUX)
    bad = nucleus.workdir / EMQX.name
    bad.write_text(EMQX.read_text().replace('"startupTimeoutSeconds": "90"', '"startupTimeoutSeconds": "abc"'))
    assert nucleus.run("validate", str(bad)).code == 0  # plan time is when the value is known
    result = nucleus.run("--config", str(config), "plan", str(bad), "--recipes", str(EMQX_DIR / "deps"))
    assert result.code == 2
    assert result.err == (f"{bad}:91:11: Manifests[1].Lifecycle.startup.timeout: "
                          "'{configuration:/startupTimeoutSeconds}' gives 'abc', and 'abc' is not a positive whole "
                          "number of seconds — make {configuration:/startupTimeoutSeconds} a positive whole number "
                          "of seconds, e.g. 300\n")
    assert result.out == ""


def test_a_deployment_runs_with_the_typed_values(nucleus: Nucleus) -> None:
    """The substituted, typed values reach the steps: privilege off, a 1-second install timeout."""
    marker = nucleus.workdir / "ran"
    path = nucleus.recipe(A, f"""
        Install:
          Script: echo install >> {marker}; sleep 60
          Timeout: '{{configuration:/installSeconds}}'
          RequiresPrivilege: '{{configuration:/privileged}}'
          Skipif: '{{configuration:/skip}}'
    """, extra="ComponentConfiguration:\n  DefaultConfiguration: {installSeconds: '1', privileged: 'false', "
               "skip: '! exists /'}")
    result = nucleus.run("deploy", str(path))
    assert result.code == 1, result.out + result.err
    assert "install timed out after 1s (its processes were ended)" in result.out
    assert marker.read_text().startswith("install\n")


# -- 2. every system namespace is valid across components -----------------------------------------


def test_cross_component_system_variables() -> None:
    found: list[str] = []
    text = "{com.example.Dep:kernel:rootPath} {com.example.Dep:iot:thingName} {com.example.Dep:work:path}"
    assert render(text, context(), found) == "/r MyThing /r/work/Dep"
    assert found == []
    # Still for direct dependencies only.
    assert render("{com.example.Other:kernel:rootPath}", context(), found) == "{com.example.Other:kernel:rootPath}"
    assert found == ["{com.example.Other:kernel:rootPath} left as written: com.example.Other is not a direct "
                     "dependency of com.example.A — Greengrass substitutes the variables of direct dependencies "
                     "only: add it to ComponentDependencies"]


# -- 3. the grammar is classic's ------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("{configuration:/a:b}", "{configuration:/a:b}"),  # the key cannot hold ':': not a variable
    ("{com.example.Dep:configuration:/a:b}", "{com.example.Dep:configuration:/a:b}"),
    ("{configuration:/x{y}", "curly"),  # but it may hold '{'
    ("{configuration:}", '{"a:b":"colon","x{y":"curly","a b":"spaced"}'),  # and may be empty: the whole document
    ("{configuration:/a b} {work:path}", "spaced /r/work/A"),
    ("{ work:path} {work :path} {wörk:path}", "{ work:path} {work :path} {wörk:path}"),  # ASCII names only
])
def test_the_variable_grammar_is_classics(text: str, expected: str) -> None:
    found: list[str] = []
    assert render(text, context({"a:b": "colon", "x{y": "curly", "a b": "spaced"}), found) == expected
    assert found == []


def test_names_with_dashes_are_variables_too() -> None:
    found: list[str] = []
    assert render("{my-ns:x}", context(), found) == "{my-ns:x}"
    assert found == ["{my-ns:x} left as written: unknown variable — known: artifacts:path, "
                     "artifacts:decompressedPath, work:path, kernel:rootPath, iot:thingName, configuration:/…"]


# -- 4. validate and plan warn where a variable cannot resolve ------------------------------------


TYPOS = """
Setenv:
  GREETING: '{configuration:/Mesage}'
Install:
  Script: echo {configuraton:/Message} {artifacts:paht} ${VAR:-x} ${HOME} {configuration:/a:b}
  Setenv:
    DEP: '{com.example.Dpe:work:path}'
Run: echo {com.example.Dep:configuration:/anything} {configuration:Message} {kernel:rootPath}
"""


def test_validate_warns_with_the_place_and_what_was_meant() -> None:
    parsed = parse_recipe(recipe(TYPOS, "{Message: hello}"), "r.yaml", schema=True)
    assert parsed.errors == []
    assert [str(d) for d in parsed.warnings] == [
        "r.yaml:11:9: warning: Manifests[0].Lifecycle.Setenv.GREETING: {configuration:/Mesage} left as written: "
        "no /Mesage in com.example.A's configuration — did you mean {configuration:/Message}?",
        "r.yaml:13:9: warning: Manifests[0].Lifecycle.Install.Script: {configuraton:/Message} left as written: "
        "unknown variable — did you mean {configuration:/Message}?",
        "r.yaml:13:9: warning: Manifests[0].Lifecycle.Install.Script: {artifacts:paht} left as written: unknown "
        "variable — did you mean {artifacts:path}?",
        "r.yaml:13:9: warning: Manifests[0].Lifecycle.Install.Script: {configuration:/a:b} left as written: not a "
        "variable, since a variable's key cannot hold ':' — Greengrass leaves it as written too: reach the value "
        "by a key without ':'",
        "r.yaml:15:11: warning: Manifests[0].Lifecycle.Install.Setenv.DEP: {com.example.Dpe:work:path} left as "
        "written: com.example.Dpe is not a direct dependency of com.example.A — did you mean "
        "{com.example.Dep:work:path}?",
        # A dependency's configuration is not known to a recipe alone: plan checks it.
        "r.yaml:16:7: warning: Manifests[0].Lifecycle.Run: {configuration:Message} left as written: 'Message' is "
        "not a JSON pointer into com.example.A's configuration — start it with '/': {configuration:/Message}",
    ]


def test_shell_text_stays_silent() -> None:
    text = recipe("Run: 'echo ${VAR:-x} ${A:+b} ${HOME} {} { a: b } awk ''{print $1\":\"$2}'' ${configuration:/a:b}'")
    assert parse_recipe(text, "r.yaml").diagnostics == []


def test_case_is_suggested_for_pointers_and_keys() -> None:
    found: list[str] = []
    render("{configuration:/nested/port} {kernel:rootpath}", context({"Nested": {"Port": 1}}), found)
    assert [line.split(" — ")[1] for line in found] == ["did you mean {configuration:/Nested/Port}?",
                                                        "did you mean {kernel:rootPath}?"]


def test_plan_warns_once_with_the_place_of_each_string(nucleus: Nucleus) -> None:
    dep = nucleus.recipe(DEP, "Run: echo dep", extra="ComponentConfiguration: {DefaultConfiguration: {url: x}}")
    path = nucleus.workdir / "a.yaml"
    path.write_text(recipe(TYPOS, "{Message: hello}"))
    result = nucleus.run("plan", str(path), "--recipes", str(dep.parent))
    assert result.code == 0, result.err
    warnings = result.err.splitlines()
    assert len(warnings) == len(set(warnings)) == 7
    assert all(line.startswith(f"{path}:") and ": warning: " in line for line in warnings)
    assert (f"{path}:16:7: warning: Manifests[0].Lifecycle.Run: {{com.example.Dep:configuration:/anything}} left "
            "as written: no /anything in com.example.Dep's configuration — add it to com.example.Dep's "
            "DefaultConfiguration (pointers are case-sensitive)") in warnings


def test_render_lifecycle_without_places_still_names_the_component() -> None:
    found: list[str] = []
    lifecycle = Lifecycle({"run": Step("run", "echo {artifacts:paht}")})
    render_lifecycle(lifecycle, context(), found)
    assert found == ["com.example.A run: {artifacts:paht} left as written: unknown variable — did you mean "
                     "{artifacts:path}?"]


def test_the_fixture_is_aws_recipe_unchanged_but_for_the_version() -> None:
    data = json.loads(EMQX.read_text())
    linux = data["Manifests"][1]["Lifecycle"]
    assert linux["startup"]["timeout"] == "{configuration:/startupTimeoutSeconds}"
    assert linux["install"]["requiresPrivilege"] == "{configuration:/requiresPrivilege}"
    assert Path(EMQX).name.endswith(f"-{data['ComponentVersion']}.json")
