"""The recipe's JSON Schema, checked with `jsonschema`, with each finding pointed at its line.

The schema (`schema.json`, shipped in the package) describes recipes with canonical key spelling, so the
document's own keys are first given that spelling (`install` → `Install`) while user-named keys
(component names, `Setenv` variables, configuration) are left alone.

`jsonschema` costs about 0.15 s to import, more than a whole deployment should take, so it is imported
here only, and only `validate` and `plan` call this module. The normaliser enforces every rule of the
schema by itself; the test-suite checks on generated recipes that it rejects all the schema rejects.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from nucleus.recipe.diagnostics import Diagnostic, render_path
from nucleus.recipe.load import Document, NodePath
from nucleus.recipe.normalise import (
    ARTIFACT_KEYS,
    CONFIGURATION_KEYS,
    DEPENDENCY_KEYS,
    LIFECYCLE_KEYS,
    MANIFEST_KEYS,
    PERMISSION_KEYS,
    PLATFORM_KEYS,
    STEP_KEYS,
    TOP_KEYS,
)

Layout = dict[str, Any]  # canonical key → layout of its value ("any" = user data, left as written)


def _keys(names: tuple[str, ...], layouts: dict[str, Any] | None = None) -> dict[str, Any]:
    return {name: (layouts or {}).get(name, "any") for name in names}


_STEP = {"*step": _keys(STEP_KEYS)}
_LIFECYCLE = _keys(LIFECYCLE_KEYS, {name: _STEP for name in LIFECYCLE_KEYS if name != "Setenv"})
_MANIFEST = _keys(MANIFEST_KEYS, {
    "Platform": {"*platform": True},
    "Lifecycle": _LIFECYCLE,
    "Artifacts": {"*list": _keys(ARTIFACT_KEYS, {"Permission": _keys(PERMISSION_KEYS)})},
})
RECIPE_LAYOUT: Layout = _keys(TOP_KEYS, {
    "ComponentConfiguration": _keys(CONFIGURATION_KEYS),
    "ComponentDependencies": {"*each": _keys(DEPENDENCY_KEYS)},
    "Manifests": {"*list": _MANIFEST},
})


def canonicalize(value: Any, layout: Any, path: NodePath, paths: dict[NodePath, NodePath],
                 canon_path: NodePath = ()) -> Any:
    """Copy `value` with the recipe's own keys spelt canonically; `paths` maps new paths to written ones."""
    paths[canon_path] = path
    if layout == "any" or value is None:
        return value
    if "*list" in layout:
        if not isinstance(value, list):
            return value
        return [canonicalize(item, layout["*list"], path + (i,), paths, canon_path + (i,))
                for i, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if "*each" in layout:
        return {key: canonicalize(item, layout["*each"], path + (key,), paths, canon_path + (key,))
                for key, item in value.items()}
    if "*step" in layout:
        return canonicalize(value, layout["*step"], path, paths, canon_path)
    if "*platform" in layout:
        known = {k.lower(): k for k in PLATFORM_KEYS}
        return {known.get(str(k).lower(), k): item for k, item in value.items()}
    by_fold = {name.lower(): name for name in layout}
    result: dict[str, Any] = {}
    for key, item in value.items():
        name = str(by_fold.get(str(key).lower(), key))
        if name in result:  # a second spelling of one key: the normaliser reports it
            continue
        result[name] = canonicalize(item, layout.get(name, "any"), path + (key,), paths, canon_path + (name,))
    return result


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = json.loads(resources.files("nucleus.recipe").joinpath("schema.json").read_text("utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def schema_diagnostics(doc: Document) -> list[Diagnostic]:
    """Every place where the document breaks the JSON Schema, as diagnostics with file:line:col."""
    paths: dict[NodePath, NodePath] = {}
    canonical = canonicalize(doc.data, RECIPE_LAYOUT, (), paths)
    from jsonschema.exceptions import best_match

    result = []
    for error in sorted(_validator().iter_errors(canonical), key=lambda e: list(map(str, e.absolute_path))):
        if error.context:  # oneOf/anyOf: the alternative that came closest says most
            error = best_match(error.context)
        written = _written(paths, tuple(error.absolute_path))
        line, column = doc.mark(written)
        result.append(Diagnostic("error", doc.source, line, column, render_path(written),
                                 f"does not match the recipe schema: {_describe(error)}",
                                 "see docs/recipes.md for the recipe format"))
    return result


def _written(paths: dict[NodePath, NodePath], canon_path: NodePath) -> NodePath:
    """The path as written for a canonical path; below the last recipe-owned key, keys are the user's own."""
    for cut in range(len(canon_path), -1, -1):
        if canon_path[:cut] in paths:
            return paths[canon_path[:cut]] + canon_path[cut:]
    return canon_path


def _describe(error: Any) -> str:
    message = str(error.message)
    return message if len(message) <= 160 else message[:157] + "..."
