"""Recipes: loading with positions, normalising every casing, validation errors that name the line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from nucleus.recipe import load_recipe, parse_recipe, read_recipe
from nucleus.recipe.model import Artifact, Dependency, Permission, Step

HERE = Path(__file__).parent
REPO = HERE.parent
RECIPES = HERE / "recipes"


def check(text: str, fmt: str = "yaml", schema: bool = True):
    return parse_recipe(textwrap.dedent(text).lstrip("\n"), "r." + fmt, fmt, schema=schema)


def errors(text: str, fmt: str = "yaml") -> list[str]:
    return [str(d) for d in check(text, fmt).errors]


def warnings(text: str, fmt: str = "yaml") -> list[str]:
    return [str(d) for d in check(text, fmt).warnings]


MINIMAL = """
RecipeFormatVersion: '2020-01-25'
ComponentName: com.example.A
ComponentVersion: '1.0.0'
Manifests:
  - Lifecycle:
      Run: echo hi
"""


# -- every form loads to one model -------------------------------------------------------------


def test_seed_recipe_loads_to_the_same_model_in_both_formats() -> None:
    yaml_recipe = load_recipe(REPO / "recipes" / "com.example.ListS3Buckets-1.0.0.yaml")
    json_recipe = load_recipe(REPO / "recipes" / "com.example.ListS3Buckets-1.0.0.json")
    assert yaml_recipe == json_recipe
    assert yaml_recipe.dependencies == (Dependency("aws.greengrass.TokenExchangeService", "^2.0.0", "HARD"),)
    steps = yaml_recipe.manifests[0].lifecycle.steps
    assert steps["install"].script == "pip3 install --user boto3"
    assert steps["run"].script == "python3 -u {artifacts:path}/list_s3_buckets.py"


@pytest.mark.parametrize("name", ["all-fields.json", "all-fields-lowercase.yaml"])
def test_every_field_in_every_casing_loads_to_the_same_model(name: str) -> None:
    reference = read_recipe(RECIPES / "all-fields.yaml")
    other = read_recipe(RECIPES / name)
    assert reference.diagnostics == [] and other.diagnostics == []
    assert other.recipe == reference.recipe


def test_all_fields_model() -> None:
    recipe = load_recipe(RECIPES / "all-fields.yaml")
    assert recipe.version == "2.1.0-beta.1+build.7"
    assert recipe.default_configuration == {"Message": "hello", "Port": 8080, "Nested": {"List": [1, 2], "Flag": True}}
    assert recipe.dependency("com.example.Dependency") == Dependency("com.example.Dependency", ">=1.0.0 <2.0.0", "SOFT")
    linux = recipe.manifests[0]
    assert linux.name == "Linux x86"
    assert dict(linux.platform.attributes) == {"os": "linux", "architecture": "amd64"}
    assert linux.lifecycle.setenv == {"GREETING": "hi", "COUNT": "3"}
    assert linux.lifecycle.steps["install"] == Step(
        "install", "echo install {configuration:/Message}", 900, "onpath definitely-not-a-program", True,
        {"STEP": "install"})
    assert linux.lifecycle.steps["bootstrap"].effective_timeout == 30
    assert linux.lifecycle.steps["run"].effective_timeout is None
    assert linux.lifecycle.steps["shutdown"].effective_timeout == 15
    assert linux.lifecycle.steps["recover"].effective_timeout == 60
    assert linux.artifacts == (
        Artifact("s3://bucket/path/app.zip", None, None, "ZIP", Permission("ALL", "OWNER")),
        Artifact("s3://bucket/path/tool.py", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "SHA-256"),
    )
    assert linux.artifacts[0].file_name == "app.zip"
    assert list(recipe.manifests[1].lifecycle.steps) == ["startup"]


def test_unquoted_date_is_the_recipe_format_string() -> None:
    result = check(MINIMAL.replace("'2020-01-25'", "2020-01-25"))
    assert result.errors == [] and result.recipe is not None
    assert result.recipe.format_version == "2020-01-25"


def test_yaml_scalars_greengrass_accepts() -> None:
    result = check("""
        RecipeFormatVersion: '2020-01-25'
        ComponentName: com.example.A
        ComponentVersion: '1.0.0'
        ComponentDependencies:
          com.example.B: {VersionRequirement: 1}
        Manifests:
          - Lifecycle:
              Install: {Script: echo, Timeout: 60.0, RequiresPrivilege: TRUE}
              Run:
    """)
    assert result.errors == []
    steps = result.recipe.manifests[0].lifecycle.steps
    assert steps["install"].timeout == 60 and steps["install"].requires_privilege is True
    assert "run" not in steps  # an empty step means no step
    assert result.recipe.dependencies[0].version_requirement == "1"


def test_empty_steps_mean_no_step() -> None:
    result = check("""
        RecipeFormatVersion: '2020-01-25'
        ComponentName: com.example.A
        ComponentVersion: '1.0.0'
        Manifests:
          - Lifecycle: {Install: '', Run: {}, Shutdown: null, Startup: "   "}
    """)
    assert result.errors == []
    assert result.recipe.manifests[0].lifecycle.steps == {}


def test_user_named_things_keep_their_case() -> None:
    result = check("""
        RecipeFormatVersion: '2020-01-25'
        ComponentName: Com.Example.MixedCase
        ComponentVersion: '1.0.0'
        ComponentConfiguration:
          DefaultConfiguration: {Key: 1, key: 2}
        ComponentDependencies:
          Com.Example.Dep: {VersionRequirement: '*'}
        Manifests:
          - Lifecycle:
              SETENV: {MyVar: a, myvar: b}
              Run: {Script: x, SetEnv: {Path_Extra: c}}
    """)
    assert result.errors == []
    recipe = result.recipe
    assert recipe.name == "Com.Example.MixedCase"
    assert recipe.default_configuration == {"Key": 1, "key": 2}
    assert recipe.dependencies[0].name == "Com.Example.Dep"
    assert recipe.manifests[0].lifecycle.setenv == {"MyVar": "a", "myvar": "b"}
    assert recipe.manifests[0].lifecycle.steps["run"].setenv == {"Path_Extra": "c"}


def test_startup_and_run_together_keeps_both_with_a_warning() -> None:
    # Both are kept: Greengrass runs `run` when `startup` is skipped (issue 11, item 1).
    result = check(MINIMAL.replace("Run: echo hi", "Startup: echo up\n      Run: echo hi"))
    assert list(result.recipe.manifests[0].lifecycle.steps) == ["startup", "run"]
    assert "Run is used only when Startup is skipped" in str(result.warnings[0])


# -- the global lifecycle and selections (the three forms of the recipe reference) ---------------


def test_selections_pick_sections_of_the_global_lifecycle() -> None:
    recipe = load_recipe(RECIPES / "global-lifecycle.yaml")
    linux, darwin, windows = (m.lifecycle.steps["install"] for m in recipe.manifests)
    assert (linux.script, linux.skipif) == ("command1", "onpath executable")
    assert darwin.script == "command2"
    assert windows.script == "command5"


def test_bottom_level_selection_keys() -> None:
    result = check("""
        RecipeFormatVersion: '2020-01-25'
        ComponentName: com.example.A
        ComponentVersion: '1.0.0'
        Manifests:
          - Selections: [key2]
          - {}
        Lifecycle:
          Install:
            Script:
              key1: command1
              key2: command2
              all: command3
    """)
    assert result.errors == []
    first, second = result.recipe.manifests
    assert first.lifecycle.steps["install"].script == "command2"
    assert second.lifecycle.steps["install"].script == "command3"


def test_a_manifest_lifecycle_wins_over_the_global_one() -> None:
    result = check(MINIMAL + "Lifecycle:\n  Run: echo global\n")
    assert result.recipe.manifests[0].lifecycle.steps["run"].script == "echo hi"


# -- errors name the file, the line, the place and the fix ---------------------------------------


def test_typo_in_a_key_is_a_warning_with_a_suggestion() -> None:
    found = warnings(MINIMAL.replace("Run: echo hi", "Instal: echo hi"))
    assert found == ["r.yaml:6:7: warning: Manifests[0].Lifecycle.Instal: unknown key 'Instal' in a lifecycle — "
                     "did you mean 'Install'? Greengrass ignores unknown keys, so this one does nothing"]


def test_same_key_in_two_casings_is_an_error_naming_both_lines() -> None:
    found = errors(MINIMAL + "componentname: com.example.B\n")
    assert found == ["r.yaml:7:1: componentname: 'componentname' repeats 'ComponentName' from line 2 "
                     "(keys are case-insensitive) — keep one of the two"]


def test_repeated_yaml_key_is_an_error_naming_both_lines() -> None:
    found = errors(MINIMAL + "ComponentName: com.example.B\n")
    assert found == ["r.yaml:7:1: the key 'ComponentName' is given twice (first on line 2, again on line 7) "
                     "— keep one of them"]


def test_json_is_strict() -> None:
    base = '{\n  "RecipeFormatVersion": "2020-01-25",\n  "ComponentName": "a"%s\n}\n'
    assert errors(base % ",", "json") == ["r.json:4:1: invalid JSON: trailing comma before '}' — remove the last comma"]
    assert errors(base % ', // note', "json")[0].startswith("r.json:3:25: invalid JSON: comments are not allowed")
    assert errors(base % ',\n  "ComponentName": "b"', "json") == [
        'r.json:4:3: invalid JSON: the key "ComponentName" is given twice (first on line 3, again on line 4) '
        '— keep one of them']
    assert errors("{'a': 1}", "json")[0].startswith("r.json:1:2: invalid JSON: strings must use double quotes")
    assert errors('{"a": [1, 2', "json")[0].startswith("r.json:1:12: invalid JSON: the document ends too early")


def test_invalid_yaml_names_the_line() -> None:
    found = errors("ComponentName: a\n  Bad: : indentation\n")
    assert found[0].startswith("r.yaml:2:") and "invalid YAML" in found[0]


def test_every_error_is_reported_with_its_line() -> None:
    found = errors("""
        RecipeFormatVersion: '2021-01-01'
        ComponentName: 'bad name!'
        ComponentVersion: 1.0
        ComponentDependencies:
          com.example.B:
            VersionRequirement: '>>1'
            DependencyType: medium
        Manifests:
          - Lifecycle:
              Install:
                Script: x
                Timeout: ninety
                RequiresPrivilege: yes please
                Skipif: sometimes
          -
    """)
    assert found == [
        "r.yaml:1:1: RecipeFormatVersion: '2021-01-01' is not a recipe format version — the only recipe format "
        "is '2020-01-25'",
        "r.yaml:2:1: ComponentName: 'bad name!' has characters a component name cannot have — use only "
        "letters, digits, '-', '_' and '.', e.g. com.example.HelloWorld",
        "r.yaml:3:1: ComponentVersion: '1.0' is not a strict semantic version (YAML read '1.0' as a number: "
        "quote it) — use a strict semantic version MAJOR.MINOR.PATCH, e.g. 1.0.0",
        found[3],
        "r.yaml:7:5: ComponentDependencies.com.example.B.DependencyType: 'medium' is not a valid DependencyType"
        " — use one of: HARD, SOFT",
        "r.yaml:12:9: Manifests[0].Lifecycle.Install.Timeout: 'ninety' is not a positive whole number of "
        "seconds — write the number of seconds, e.g. Timeout: 300",
        "r.yaml:13:9: Manifests[0].Lifecycle.Install.RequiresPrivilege: 'yes please' is not true or false — "
        "write RequiresPrivilege: true",
        "r.yaml:14:9: Manifests[0].Lifecycle.Install.Skipif: 'sometimes' is not a check Greengrass knows — "
        "use 'onpath <program>' or 'exists <file>', optionally with '!' in front",
        "r.yaml:15:4: Manifests[1]: this manifest is empty — remove the empty '-' item or fill it in",
    ]
    assert found[3].startswith("r.yaml:6:5: ComponentDependencies.com.example.B.VersionRequirement: '>>1' is "
                               "not a valid npm range")


@pytest.mark.parametrize("text, expected", [
    ("", "r.yaml:1:1: the recipe is empty"),
    ("- a\n- b\n", "r.yaml:1:1: a recipe must be a mapping of fields, not a list"),
    ("RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0.0\n",
     "r.yaml:1:1: Manifests is missing"),
    ("RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0.0\nManifests: []\n",
     "r.yaml:4:1: Manifests: is empty"),
    ("RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0.0\nManifests:\n  - ~\n",
     "r.yaml:5:5: Manifests[0]: this manifest is empty"),
    ("ComponentName: ..\n", "r.yaml:1:1: ComponentName: '..' cannot be a component name"),
    ("ComponentVersion: 1.0.01\n", "r.yaml:1:1: ComponentVersion: '1.0.01' is not a strict semantic version"),
    ("ComponentVersion: 1000000.0.0\n", "r.yaml:1:1: ComponentVersion: '1000000.0.0' has a number above 999999"),
    ("ComponentName: " + "a" * 129 + "\n", "r.yaml:1:1: ComponentName: 'aaaaaaaaaaaaaaaaaaaa…' is 129 characters"),
    ("Manifests:\n  - Artifacts:\n      - URI: s3://b/x.py\n      - URI: s3://c/x.py\n",
     "r.yaml:4:9: Manifests[0].Artifacts[1]: two artifacts of this manifest are named 'x.py'"),
    ("Manifests:\n  - Artifacts:\n      - Unarchive: ZIP\n",
     "r.yaml:3:9: Manifests[0].Artifacts[0]: the artifact URI is missing"),
    ("Manifests:\n  - Lifecycle:\n      Run:\n        Timeout: 5\n",
     "r.yaml:3:7: Manifests[0].Lifecycle.Run: the run step has no Script"),
    ("Manifests:\n  - Lifecycle:\n      Setenv: [a]\n",
     "r.yaml:3:7: Manifests[0].Lifecycle.Setenv: must be a mapping of keys to values, not a list"),
])
def test_single_errors(text: str, expected: str) -> None:
    found = errors(text)
    assert any(line.startswith(expected) for line in found), found


def test_errors_are_capped() -> None:
    manifests = "".join(f"  - Lifecycle: {{Run: {{Script: x, Timeout: bad{i}}}}}\n" for i in range(80))
    text = "RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0.0\nManifests:\n" + manifests
    result = check(text)
    assert len(result.errors) == 80
    from nucleus.recipe import RecipeError

    lines = RecipeError(result.diagnostics).lines()
    assert len(lines) == 51 and lines[-1] == "… and 30 more errors in r.yaml"


def test_schema_agrees_on_a_valid_recipe_and_finds_nothing_more() -> None:
    paths = [p for p in sorted(RECIPES.rglob("*.*")) if "as-printed" not in p.name]
    for path in paths + sorted((REPO / "recipes").glob("*")):
        result = read_recipe(path, schema=True)
        assert result.errors == [], (path, result.errors)


def test_load_recipe_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    from nucleus.errors import NotFoundError

    with pytest.raises(NotFoundError) as caught:
        load_recipe(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: no such recipe file — check the path"


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_bytes(b"ComponentName: \xff\xfe\n")
    assert str(read_recipe(path).errors[0]).endswith("the file is not UTF-8 text — save the recipe as UTF-8")


def test_recursive_yaml_alias_is_an_error_not_a_crash() -> None:
    found = errors("a: &x [*x]\n")
    assert found and "alias" in found[0]
