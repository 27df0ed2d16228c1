"""The recipe as the rest of the nucleus sees it: frozen values, canonical names, defaults applied.

A `Recipe` is what the file says for every platform; `Manifest.lifecycle` is already the lifecycle that
manifest runs (its own, or the top-level one filtered by its `Selections`). Picking the manifest for this
device is `nucleus.recipe.platform`'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

RECIPE_FORMAT_VERSION = "2020-01-25"
GENERIC = "aws.greengrass.generic"
COMPONENT_TYPES = (GENERIC, "aws.greengrass.lambda", "aws.greengrass.plugin", "aws.greengrass.nucleus")

# Lifecycle steps in the order a component meets them.
STEP_NAMES = ("bootstrap", "install", "startup", "run", "shutdown", "recover", "uninstall")
DEFAULT_TIMEOUTS: Mapping[str, int | None] = {
    "bootstrap": 120,
    "install": 120,
    "startup": 120,
    "run": None,
    "shutdown": 15,
    "recover": 60,
    "uninstall": 120,  # Greengrass ≥ 2.17: runs when the component is removed from the device
}

HARD, SOFT = "HARD", "SOFT"


class Place(NamedTuple):
    """Where a value was written, so that a message about it after loading (a variable that does not
    resolve at plan time) can still say `FILE:LINE:COL: <where>`."""

    source: str
    line: int
    column: int
    path: tuple[str | int, ...]  # keys and list indexes as written, e.g. ("Manifests", 0, "Lifecycle")

    @property
    def where(self) -> str:
        """The place in the recipe as written, e.g. `Manifests[0].Lifecycle.Install.Timeout`."""
        from nucleus.recipe.diagnostics import render_path

        return render_path(self.path)


@dataclass(frozen=True)
class Step:
    """One lifecycle step: a shell script and how to run it.

    A typed field whose text holds a recipe variable (`Timeout: "{configuration:/timeout}"`, as AWS's own
    components write) cannot be typed until the variable is substituted at plan time: it waits in
    `pending` as text, and `timeout`/`requires_privilege` keep their defaults until then. A rendered step
    (`nucleus.recipe.variables.render_lifecycle`) has nothing pending.
    """

    name: str  # lower-case step name
    script: str
    timeout: int | None = None  # as written; `effective_timeout` applies the default
    skipif: str | None = None
    requires_privilege: bool = False
    setenv: Mapping[str, str] = field(default_factory=dict)
    pending: Mapping[str, str] = field(default_factory=dict)  # "timeout" / "requires_privilege" → text
    # Where each string was written: "script", "skipif", "timeout", "requires_privilege", "setenv.<NAME>".
    places: Mapping[str, Place] = field(default_factory=dict, compare=False)

    @property
    def effective_timeout(self) -> int | None:
        """Seconds the step may run: the recipe's value, else Greengrass's default (none for `run`)."""
        return self.timeout if self.timeout is not None else DEFAULT_TIMEOUTS[self.name]


@dataclass(frozen=True)
class Lifecycle:
    """The steps one manifest runs, plus the environment shared by all of them."""

    steps: Mapping[str, Step] = field(default_factory=dict)
    setenv: Mapping[str, str] = field(default_factory=dict)
    places: Mapping[str, Place] = field(default_factory=dict, compare=False)  # "setenv.<NAME>" → where

    def step(self, name: str) -> Step | None:
        return self.steps.get(name)


@dataclass(frozen=True)
class Permission:
    read: str = "OWNER"  # NONE | OWNER | ALL
    execute: str = "NONE"


@dataclass(frozen=True)
class Artifact:
    uri: str
    digest: str | None = None
    algorithm: str | None = None
    unarchive: str = "NONE"  # NONE | ZIP
    permission: Permission = field(default_factory=Permission)

    @property
    def file_name(self) -> str:
        """The artifact's file name: the last segment of its URI (`s3://b/p/x.zip` → `x.zip`)."""
        rest = self.uri.split(":", 1)[1] if ":" in self.uri else self.uri
        return rest.rstrip("/").rsplit("/", 1)[-1]

    @property
    def unarchive_folder(self) -> str:
        """The folder a ZIP unpacks into, under the component's unarchived folder: the name without its
        extension (`app.zip` → `app`)."""
        name = self.file_name
        dot = name.rfind(".")
        return name[:dot] if dot > 0 else name

    @property
    def scheme(self) -> str:
        return self.uri.split(":", 1)[0].lower() if ":" in self.uri else ""


@dataclass(frozen=True)
class Platform:
    """The manifest's platform requirements; an empty one matches every device."""

    attributes: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.attributes:
            return "any platform"
        return ", ".join(f"{key}={value}" for key, value in self.attributes.items())


@dataclass(frozen=True)
class Manifest:
    platform: Platform
    lifecycle: Lifecycle
    artifacts: tuple[Artifact, ...] = ()
    selections: tuple[str, ...] = ()
    name: str | None = None


@dataclass(frozen=True)
class Dependency:
    name: str
    version_requirement: str
    dependency_type: str = HARD  # HARD | SOFT


@dataclass(frozen=True)
class Recipe:
    """A whole recipe, valid by construction."""

    name: str
    version: str
    manifests: tuple[Manifest, ...]
    dependencies: tuple[Dependency, ...] = ()
    component_type: str = GENERIC
    description: str | None = None
    publisher: str | None = None
    source: str | None = None  # ComponentSource (a Lambda ARN)
    default_configuration: Any = field(default_factory=dict)
    format_version: str = RECIPE_FORMAT_VERSION
    path: str = field(default="", compare=False)  # the file it was read from
    digest: str = field(default="", compare=False)  # sha256 of the file's bytes

    def dependency(self, name: str) -> Dependency | None:
        return next((d for d in self.dependencies if d.name == name), None)

    @property
    def ident(self) -> str:
        return f"{self.name} {self.version}"
