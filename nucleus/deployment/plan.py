"""From a deployment's candidates to the exact components, versions and rendered lifecycles to run.

The pure half of planning (`candidates.gather` is the I/O half): resolution by npm ranges, the manifest for
this device, every recipe variable rendered. Shared by `nucleus plan` (which prints the plan) and every
deployment (which applies it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from nucleus.builtins import builtin_versions
from nucleus.config import NucleusConfig
from nucleus.errors import NucleusError
from nucleus.paths import RootLayout
from nucleus.recipe import Diagnostic, Recipe, RecipeError
from nucleus.recipe.model import GENERIC, Dependency, Lifecycle, Manifest
from nucleus.recipe.platform import select_manifest
from nucleus.recipe.variables import ComponentFacts, VariableContext, render_lifecycle

__all__ = ["Candidates", "KeptRoot", "Plan", "PlanRequest", "PlannedComponent", "make_plan"]


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
    pinned: Mapping[str, tuple[str, str]] = {}  # name → (version, digest): the content to read from the store


@dataclass
class Candidates:
    """Every recipe that may be chosen, by name and version, with where each came from."""

    recipes: dict[tuple[str, str], Recipe] = field(default_factory=dict)
    named: dict[tuple[str, str], Recipe] = field(default_factory=dict)  # given on the command line or in --recipes
    deployed: list[Recipe] = field(default_factory=list)  # the recipe files the deployment names
    sources: dict[tuple[str, str], Path | None] = field(default_factory=dict)  # named recipes' artifact folders
    warnings: list[str] = field(default_factory=list)
    looked_in: str = ""

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


def make_plan(candidates: Candidates, request: PlanRequest, layout: RootLayout, config: NucleusConfig,
              device: Mapping[str, str]) -> Plan:
    """Resolve and render the deployment `request` describes, for this device, from `candidates`."""
    from nucleus.resolve import Candidate, Root, resolve

    warnings = list(candidates.warnings)
    deployed = candidates.deployed
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
    chosen = resolve(roots, index, preferred=request.preferred, looked_in=candidates.looked_in)

    components = []
    invalid: list[Diagnostic] = []  # typed fields still invalid once rendered, for every component at once
    chosen_versions = {c.name: c.version for c in chosen}
    for candidate in chosen:
        found = candidates.recipes.get((candidate.name, candidate.version))
        if found is None:
            components.append(PlannedComponent(candidate.name, candidate.version, True, None, None,
                                               Lifecycle(), (), None))
            continue
        recipe = found
        manifest = select_manifest(recipe, device)
        try:
            lifecycle = render_lifecycle(manifest.lifecycle, _context(recipe, chosen_versions, candidates,
                                                                      layout, config), warnings)
        except RecipeError as exc:
            invalid += exc.diagnostics
            continue
        source = candidates.sources.get((recipe.name, recipe.version))
        components.append(PlannedComponent(recipe.name, recipe.version, False, recipe, manifest, lifecycle,
                                           recipe.dependencies, source))
    if invalid:
        raise RecipeError(invalid)
    # A variable the recipe's own check warned about is warned about again as it renders: say it once.
    return Plan(tuple(components), tuple(r.name for r in roots), tuple(dict.fromkeys(warnings)), dict(device),
                tuple(r.name for r in deployed))


def _context(recipe: Recipe, versions: Mapping[str, str], candidates: Candidates, layout: RootLayout,
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
