"""Gathering a deployment's candidates: every recipe that may be chosen, read from where it lives.

This is the I/O half of planning: the recipe files given, the folders of recipes, the store (only the
names reachable from the deployment), and where each named recipe's artifacts are. What comes out is plain
data (`Candidates`); `plan.make_plan` decides from it without touching a file. (Fleet deployments will add
candidates from the cloud here.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from nucleus.builtins import BUILTIN_NAMES
from nucleus.config import NucleusConfig
from nucleus.deployment.plan import Candidates, Plan, PlanRequest, make_plan
from nucleus.errors import MultiError
from nucleus.paths import RootLayout
from nucleus.recipe import Recipe, read_recipe
from nucleus.store import RECIPE_SUFFIXES, Store, find_artifact_source


def _read_all(paths: Sequence[Path], warnings: list[str]) -> list[Recipe]:
    """Read every recipe file; every error of every file is reported together."""
    recipes: list[Recipe] = []
    problems: list[str] = []
    for path in paths:
        result = read_recipe(path)
        if result.recipe is None:
            problems.extend(str(d) for d in result.diagnostics)  # its warnings may explain its errors
        else:
            warnings.extend(str(d) for d in result.warnings)
            recipes.append(result.recipe)
    if problems:
        raise MultiError(problems)
    return recipes


def plan_deployment(request: PlanRequest, layout: RootLayout, config: NucleusConfig,
                    device: Mapping[str, str], store: Store | None = None) -> Plan:
    """Gather (I/O) and decide (pure): what `nucleus plan` prints and a deployment applies."""
    return make_plan(gather(request, layout, store), request, layout, config, device)


def recipe_files_in(folder: Path) -> list[Path]:
    from nucleus.errors import NucleusError

    if not folder.is_dir():
        raise NucleusError("no such recipes folder", where=str(folder), hint="check the --recipes path")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in RECIPE_SUFFIXES)


def gather(request: PlanRequest, layout: RootLayout, store: Store | None = None) -> Candidates:
    """Read everything the deployment `request` may choose from."""
    candidates = Candidates()
    candidates.deployed = _read_all(request.recipe_paths, candidates.warnings)
    for recipe in candidates.deployed:
        candidates.add(recipe, named=True)
    for folder in request.recipe_dirs:
        for recipe in _read_all(recipe_files_in(folder), candidates.warnings):
            candidates.add(recipe, named=True)
    wanted = {r.name for r in candidates.deployed} | {k.name for k in request.kept_roots}
    _add_stored(store or Store(layout), candidates, wanted, request.pinned)
    cwd = request.cwd or Path.cwd()
    for (name, version), recipe in candidates.named.items():
        candidates.sources[(name, version)] = find_artifact_source(name, version, Path(recipe.path),
                                                                   request.artifacts_dir, cwd)
    places = ["the recipes given"] + [f"--recipes {d}" for d in request.recipe_dirs]
    places += [f"the store ({layout.recipes_dir})", "the built-ins (" + ", ".join(sorted(BUILTIN_NAMES)) + ")"]
    candidates.looked_in = ", ".join(places)
    return candidates


def _add_stored(store: Store, candidates: Candidates, wanted: set[str],
                pinned: Mapping[str, tuple[str, str]]) -> None:
    """Stored recipes of every name reachable from `wanted` (read only when they may matter).

    The dependencies of the recipes given are queued up front; those of stored recipes as they are read. A
    pinned name is read from the content it is pinned to (the last good one), not the active one.
    """
    seen: set[str] = set()
    queue = list(wanted) + [d.name for r in candidates.recipes.values() for d in r.dependencies]
    while queue:
        name = queue.pop()
        if name in seen or name in BUILTIN_NAMES:
            continue
        seen.add(name)
        for version, path in store.stored_versions(name).items():
            if (name, version) in candidates.recipes:
                continue
            pin = pinned.get(name)
            if pin is not None and pin[0] == version:
                path = store.content_recipe(name, version, pin[1]) or path
            result = read_recipe(path)
            if result.recipe is None:
                candidates.warnings.append(f"{path}: a stored recipe is unreadable and was skipped")
                continue
            candidates.add(result.recipe, named=False)
            queue.extend(d.name for d in result.recipe.dependencies)
