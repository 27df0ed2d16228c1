"""Fuzzing the recipe reader: thousands of generated and mutated recipes.

Whatever the input, nothing but diagnostics comes out (no exception), every error names a line and column
inside the file, and the normaliser rejects everything the JSON Schema rejects (so the deploy path, which
skips the schema for speed, accepts nothing that `validate` refuses).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nucleus.recipe import _covered, parse_recipe
from nucleus.recipe.load import parse_document
from nucleus.recipe.schema import schema_diagnostics

HERE = Path(__file__).parent
SEEDS = sorted((HERE / "recipes").rglob("*.yaml")) + sorted((HERE / "recipes").rglob("*.json"))
FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def casings(key: str) -> st.SearchStrategy[str]:
    return st.sampled_from([key, key.lower(), key.upper(), key[0].lower() + key[1:]])


junk = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**7) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
texts = st.sampled_from(["", " ", "echo hi", "1.0.0", "^1.0.0", "{configuration:/x}", "SOFT", "zip", "ALL",
                         "onpath sh", "! exists /tmp", "900", "true", "2020-01-25", "a.b", ".."]) | st.text(max_size=10)


def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly the right shape (so that deep fields are reached), sometimes anything at all."""
    return st.one_of(strategy, strategy, strategy, junk, texts)


def mapping(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy[dict]:
    """A mapping using some of `fields`, each under a random casing, plus an occasional unknown key."""
    @st.composite
    def build(draw: st.DrawFn) -> dict:
        result = {}
        for key, value in fields.items():
            if draw(st.booleans()):
                result[draw(casings(key))] = draw(value)
        if draw(st.integers(0, 9)) == 0:
            result[draw(st.text(min_size=1, max_size=8))] = draw(junk)
        return result
    return build()


step = st.one_of(texts, mapping({"Script": maybe(texts), "Timeout": maybe(st.integers(1, 999)),
                                 "Skipif": maybe(texts), "RequiresPrivilege": maybe(st.booleans()),
                                 "Setenv": maybe(st.dictionaries(st.text(max_size=5), texts, max_size=2))}))
lifecycle = mapping({name: maybe(step) for name in ("Install", "Run", "Startup", "Shutdown", "Recover",
                                                      "Bootstrap")} | {"Setenv": maybe(st.dictionaries(
                                                          st.text(max_size=5), texts, max_size=2))})
artifact = mapping({"URI": maybe(texts), "Digest": maybe(texts), "Algorithm": maybe(texts),
                    "Unarchive": maybe(texts), "Permission": maybe(mapping({"Read": texts, "Execute": texts}))})
manifest = mapping({"Platform": maybe(st.dictionaries(st.sampled_from(["os", "architecture", "x"]), texts)),
                    "Lifecycle": maybe(lifecycle), "Selections": maybe(st.lists(texts, max_size=2)),
                    "Artifacts": maybe(st.lists(maybe(artifact), max_size=2)), "Name": maybe(texts)})
recipes = mapping({
    "RecipeFormatVersion": maybe(st.just("2020-01-25")),
    "ComponentName": maybe(st.just("com.example.Fuzz")),
    "ComponentVersion": maybe(st.sampled_from(["1.0.0", "1.0", "01.0.0", "1.0.0-rc.1+b"])),
    "ComponentType": maybe(st.just("aws.greengrass.generic")),
    "ComponentDescription": maybe(texts),
    "ComponentConfiguration": maybe(mapping({"DefaultConfiguration": junk})),
    "ComponentDependencies": maybe(st.dictionaries(st.sampled_from(["a.B", "c", "bad name"]),
                                                   maybe(mapping({"VersionRequirement": texts,
                                                                  "DependencyType": texts})), max_size=2)),
    "Manifests": maybe(st.lists(maybe(manifest), max_size=3)),
    "Lifecycle": maybe(st.dictionaries(st.sampled_from(["all", "key1", "Install", "Run"]), maybe(step),
                                       max_size=3)),
})


def assert_well_formed(result: object, text: str) -> None:
    line_count = text.count("\n") + 1
    for diagnostic in result.diagnostics:  # type: ignore[attr-defined]
        assert 1 <= diagnostic.line <= line_count, diagnostic
        assert diagnostic.column >= 1, diagnostic
        assert str(diagnostic).startswith(f"{diagnostic.source}:{diagnostic.line}:{diagnostic.column}: ")
    if result.recipe is None:  # type: ignore[attr-defined]
        assert result.errors, "an invalid recipe must say why"  # type: ignore[attr-defined]


@FUZZ
@given(recipe=recipes, as_json=st.booleans())
def test_generated_recipes_give_only_diagnostics(recipe: dict, as_json: bool) -> None:
    text = json.dumps(recipe, indent=1) if as_json else yaml.safe_dump(recipe, sort_keys=False)
    fmt = "json" if as_json else "yaml"
    result = parse_recipe(text, f"fuzz.{fmt}", fmt, schema=True)
    assert_well_formed(result, text)


@FUZZ
@given(recipe=recipes)
def test_the_normaliser_rejects_all_the_schema_rejects(recipe: dict) -> None:
    text = json.dumps(recipe, indent=1)
    doc = parse_document(text, "fuzz.json", "json")
    reported = [d.where for d in parse_recipe(text, "fuzz.json", "json").errors]
    missed = [str(d) for d in schema_diagnostics(doc) if not _covered(d.where, reported)]
    assert not missed, f"only the schema objects: {missed}"


@st.composite
def mutations(draw: st.DrawFn) -> tuple[Path, str]:
    path = draw(st.sampled_from(SEEDS))
    text = path.read_text()
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "duplicate-line", "swap-lines", "replace"]))
        lines = text.split("\n")
        if kind == "duplicate-line" and lines:
            index = draw(st.integers(0, len(lines) - 1))
            lines.insert(index, lines[index])
            text = "\n".join(lines)
        elif kind == "swap-lines" and len(lines) > 1:
            a, b = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
        else:
            start = draw(st.integers(0, len(text)))
            end = min(len(text), start + draw(st.integers(0, 20)))
            insert = "" if kind == "delete" else draw(st.text(alphabet=" :-{}[]\",'\t\nxX0.&*!|>#", max_size=6))
            text = text[:start] + insert + text[end:]
    return path, text


@FUZZ
@given(mutated=mutations())
def test_mutated_recipes_give_only_diagnostics(mutated: tuple[Path, str]) -> None:
    path, text = mutated
    fmt = "json" if path.suffix == ".json" else "yaml"
    result = parse_recipe(text, path.name, fmt, schema=True)
    assert_well_formed(result, text)


REPLACEMENTS = [None, 0, 5, 1.5, True, "", "x", [], ["x"], {}, {"x": 1}]


def _set(document: object, path: tuple, value: object) -> object:
    import copy

    document = copy.deepcopy(document)
    target = document
    for part in path[:-1]:
        target = target[part]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    return document


def test_every_field_replaced_by_every_kind_of_value_schema_and_normaliser_agree() -> None:
    """Systematically: each node of a full recipe, replaced by each JSON type, in turn."""
    base = parse_document((HERE / "recipes" / "all-fields.json").read_text(), "base.json", "json")
    checked = 0
    for path in base.marks:
        if not path or "DefaultConfiguration" in path:
            continue
        for replacement in REPLACEMENTS:
            text = json.dumps(_set(base.data, path, replacement), indent=1)
            doc = parse_document(text, "v.json", "json")
            result = parse_recipe(text, "v.json", "json")
            assert_well_formed(result, text)
            reported = [d.where for d in result.errors]
            missed = [str(d) for d in schema_diagnostics(doc) if not _covered(d.where, reported)]
            assert not missed, f"{path} = {replacement!r}: only the schema objects: {missed}"
            checked += 1
    assert checked > 500
