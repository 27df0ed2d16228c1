"""From "deploy these recipe files" to the exact components, versions and rendered lifecycles to run.

Shared by `nucleus plan` (which prints the plan) and `nucleus deploy` (which applies it). Reads recipe
files and the store; runs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from nucleus.builtins import BUILTIN_NAMES, builtin_versions
from nucleus.config import NucleusConfig
from nucleus.errors import MultiError, NucleusError
from nucleus.paths import RootLayout
from nucleus.recipe import Diagnostic, Recipe, RecipeError, read_recipe
from nucleus.recipe.model import GENERIC, Dependency, Lifecycle, Manifest
from nucleus.recipe.platform import select_manifest
from nucleus.recipe.variables import ComponentFacts, VariableContext, render_lifecycle
from nucleus.store import RECIPE_SUFFIXES, Store, find_artifact_source


class KeptRoot(NamedTuple):
    """A root component of the current deployment that stays (daemon deployments merge)."""

    name: str
    version: str


class PlanRequest(NamedTuple):
    recipe_paths: tuple[Path, ...] = ()
    recipe_dirs: tuple[Path, ...] = ()
    artifacts_dir: Path | None = None
    cwd: Path | None = None  # the folder `./components` is looked up in (default: the current one)
    kept_roots: tuple[KeptRoot, ...] = ()
    preferred: Mapping[str, str] = {}  # name → version deployed now


class PlannedComponent(NamedTuple):
    name: str
    version: str
    builtin: bool
    recipe: Recipe | None
    manifest: Manifest | None
    lifecycle: Lifecycle
    dependencies: tuple[Dependency, ...]
    artifact_source: Path | None  # where its artifacts are imported from (None: already in the store)

    @property
    def hard_dependencies(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dependencies if d.dependency_type == "HARD")

    @property
    def soft_dependencies(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dependencies if d.dependency_type == "SOFT")

    @property
    def component_type(self) -> str:
        return self.recipe.component_type if self.recipe else GENERIC


class Plan(NamedTuple):
    components: tuple[PlannedComponent, ...]  # start order: dependencies first
    roots: tuple[str, ...]  # the root components: those deployed now, and those kept
    warnings: tuple[str, ...]
    device: Mapping[str, str]
    requested: tuple[str, ...] = ()  # the components whose recipes this request names
    def component(self, name: str) -> PlannedComponent:
        return next(c for c in self.components if c.name == name)


class _Candidates:
    """Every recipe that may be chosen, by name and version, with where each came from."""

    def __init__(self) -> None:
        self.recipes: dict[tuple[str, str], Recipe] = {}
        self.named: dict[tuple[str, str], Recipe] = {}  # given on the command line or in --recipes

    def add(self, recipe: Recipe, *, named: bool) -> None:
        key = (recipe.name, recipe.version)
        previous = self.named.get(key)
        if named and previous is not None and previous.path != recipe.path and previous != recipe:
            raise NucleusError(
                f"{recipe.ident} is defined twice, differently: {previous.path} and {recipe.path}",
                hint="remove one, or give them different versions")
        if named:
            self.named[key] = recipe
            self.recipes[key] = recipe
        else:
            self.recipes.setdefault(key, recipe)


def _read_all(paths: Sequence[Path], warnings: list[str]) -> list[Recipe]:
    """Read every recipe file; every error of every file is reported together."""
    recipes, problems = [], []
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


def recipe_files_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise NucleusError("no such recipes folder", where=str(folder), hint="check the --recipes path")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in RECIPE_SUFFIXES)


def make_plan(request: PlanRequest, layout: RootLayout, config: NucleusConfig,
              device: Mapping[str, str]) -> Plan:
    """Resolve and render the deployment `request` describes, for this device."""
    from nucleus.resolve import Candidate, Root, resolve

    warnings: list[str] = []
    candidates = _Candidates()
    deployed = _read_all(request.recipe_paths, warnings)
    for recipe in deployed:
        candidates.add(recipe, named=True)
    for folder in request.recipe_dirs:
        for recipe in _read_all(recipe_files_in(folder), warnings):
            candidates.add(recipe, named=True)
    store = Store(layout)
    _add_stored(store, candidates, {r.name for r in deployed} | {k.name for k in request.kept_roots}, warnings)

    versions = builtin_versions(config)
    index: dict[str, list[Candidate]] = {name: [Candidate(name, version, {}, "built-in")]
                                         for name, version in versions.items()}
    for (name, version), recipe in sorted(candidates.recipes.items()):
        if name in versions:
            warnings.append(f"{recipe.path}: {name} is built into nucleus; this recipe replaces the built-in")
            index[name] = []
        index.setdefault(name, []).append(Candidate(
            name, version, {d.name: d.version_requirement for d in recipe.dependencies}, recipe.path))

    roots = [Root(r.name, r.version, f"the deployment ({r.path})") for r in deployed]
    named = {r.name for r in deployed}
    roots += [Root(k.name, k.version, "the current deployment") for k in request.kept_roots if k.name not in named]
    looked_in = _looked_in(request, layout)
    chosen = resolve(roots, index, preferred=request.preferred, looked_in=looked_in)

    components = []
    invalid: list[Diagnostic] = []  # typed fields still invalid once rendered, for every component at once
    chosen_versions = {c.name: c.version for c in chosen}
    for candidate in chosen:
        recipe = candidates.recipes.get((candidate.name, candidate.version))
        if recipe is None:
            components.append(PlannedComponent(candidate.name, candidate.version, True, None, None,
                                               Lifecycle(), (), None))
            continue
        manifest = select_manifest(recipe, device)
        try:
            lifecycle = render_lifecycle(manifest.lifecycle, _context(recipe, chosen_versions, candidates,
                                                                      layout, config), warnings)
        except RecipeError as exc:
            invalid += exc.diagnostics
            continue
        source = None
        if (recipe.name, recipe.version) in candidates.named:
            source = find_artifact_source(recipe.name, recipe.version, Path(recipe.path),
                                          request.artifacts_dir, request.cwd or Path.cwd())
        components.append(PlannedComponent(recipe.name, recipe.version, False, recipe, manifest, lifecycle,
                                           recipe.dependencies, source))
    if invalid:
        raise RecipeError(invalid)
    # A variable the recipe's own check warned about is warned about again as it renders: say it once.
    return Plan(tuple(components), tuple(r.name for r in roots), tuple(dict.fromkeys(warnings)), dict(device),
                tuple(r.name for r in deployed))


def _add_stored(store: Store, candidates: _Candidates, wanted: set[str], warnings: list[str]) -> None:
    """Stored recipes of every name reachable from `wanted` (read only when they may matter).

    The dependencies of the recipes given are queued up front; those of stored recipes as they are read.
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
            result = read_recipe(path)
            if result.recipe is None:
                warnings.append(f"{path}: a stored recipe is unreadable and was skipped")
                continue
            candidates.add(result.recipe, named=False)
            queue.extend(d.name for d in result.recipe.dependencies)


def _looked_in(request: PlanRequest, layout: RootLayout) -> str:
    places = ["the recipes given"]
    places += [f"--recipes {d}" for d in request.recipe_dirs]
    places.append(f"the store ({layout.recipes_dir})")
    places.append("the built-ins (" + ", ".join(sorted(BUILTIN_NAMES)) + ")")
    return ", ".join(places)


def _context(recipe: Recipe, versions: Mapping[str, str], candidates: _Candidates, layout: RootLayout,
             config: NucleusConfig) -> VariableContext:
    def facts(name: str) -> ComponentFacts:
        version = versions.get(name, "")
        other = candidates.recipes.get((name, version))
        return ComponentFacts(
            artifacts_path=str(layout.artifacts(name, version)),
            decompressed_path=str(layout.unarchived(name, version)),
            work_path=str(layout.work(name)),
            configuration=other.default_configuration if other else {},
        )

    names = [recipe.name] + [d.name for d in recipe.dependencies if d.name in versions]
    return VariableContext(recipe.name, {name: facts(name) for name in names}, str(layout.path),
                           config.thing_name)
