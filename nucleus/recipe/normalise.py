"""Plain recipe values → a `Recipe`, accepting every spelling the classic nucleus accepts.

The recipe's own keys are matched case-insensitively at every level (`Install` = `install`, `URI` = `Uri`),
enum values too (`soft`, `zip`); what the user names keeps its case (component names, `Setenv` variables,
everything inside `DefaultConfiguration`). Strings such as `"true"` and `"900"` are accepted where
Greengrass accepts them. Unknown keys are kept out of the model and reported as warnings: a typo such as
`Instal` must never pass silently. Every problem is collected, not only the first.

A typed step field whose text holds a recipe variable (`Timeout: "{configuration:/timeout}"`) is kept as
text, to be typed after substitution at plan time; every lifecycle string keeps where it was written, and
variables that cannot resolve are warnings (`nucleus.recipe.variables.check_variables`).

Pure: no I/O. The key tables here are shared with `nucleus.recipe.schema`, which checks the same recipe
against the JSON Schema.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from nucleus.recipe import fields as typed
from nucleus.recipe.diagnostics import Diagnostic, render_path
from nucleus.recipe.load import Document, NodePath
from nucleus.recipe.model import (
    COMPONENT_TYPES,
    HARD,
    RECIPE_FORMAT_VERSION,
    SOFT,
    STEP_NAMES,
    Artifact,
    Dependency,
    Lifecycle,
    Manifest,
    Permission,
    Place,
    Platform,
    Recipe,
    Step,
)
from nucleus.recipe.variables import check_variables, has_variable

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9\-_.]+$")
MAX_NAME_LENGTH = 128
MAX_VERSION_LENGTH = 64
MAX_VERSION_NUMBER = 999_999
HASH_ALGORITHMS = {"SHA-1": "sha1", "SHA-224": "sha224", "SHA-256": "sha256", "SHA-384": "sha384",
                   "SHA-512": "sha512", "MD5": "md5"}

TOP_KEYS = ("RecipeFormatVersion", "ComponentName", "ComponentVersion", "ComponentType",
            "ComponentDescription", "ComponentPublisher", "ComponentSource", "ComponentConfiguration",
            "ComponentDependencies", "Manifests", "Lifecycle")
CONFIGURATION_KEYS = ("DefaultConfiguration",)
DEPENDENCY_KEYS = ("VersionRequirement", "DependencyType")
MANIFEST_KEYS = ("Name", "Platform", "Lifecycle", "Selections", "Artifacts")
LIFECYCLE_KEYS = ("Setenv", "Bootstrap", "Install", "Startup", "Run", "Shutdown", "Recover", "Uninstall")
STEP_KEYS = ("Script", "RequiresPrivilege", "Skipif", "Timeout", "Setenv")
ARTIFACT_KEYS = ("URI", "Digest", "Algorithm", "Unarchive", "Permission")
PERMISSION_KEYS = ("Read", "Execute")
PLATFORM_KEYS = ("os", "architecture", "architecture.detail")  # others are the user's own attributes

_MISSING = object()


class Normalised(NamedTuple):
    """The outcome of normalising one document."""

    recipe: Recipe | None
    diagnostics: list[Diagnostic]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]


def normalise(doc: Document, *, digest: str = "") -> Normalised:
    """Check and convert a loaded recipe; `recipe` is None when any error was found."""
    walker = _Walker(doc)
    recipe = walker.recipe(digest)
    if recipe is not None and not walker.errors():
        walker.diagnostics += check_variables(recipe)
    diagnostics = sorted(_unique(walker.diagnostics), key=lambda d: (d.line, d.column))
    if any(d.is_error for d in diagnostics):
        recipe = None
    return Normalised(recipe, diagnostics)


def _unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Drop repeats (a top-level lifecycle is walked once per manifest that uses it)."""
    seen, result = set(), []
    for diagnostic in diagnostics:
        key = (diagnostic.line, diagnostic.column, diagnostic.message)
        if key not in seen:
            seen.add(key)
            result.append(diagnostic)
    return result


class _Walker:
    """Walks the document once, building the model and collecting diagnostics."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.diagnostics: list[Diagnostic] = []

    # -- reporting -------------------------------------------------------------------------------

    def _report(self, severity: str, path: NodePath, message: str, hint: str) -> None:
        line, column = self.doc.mark(path)
        self.diagnostics.append(
            Diagnostic(severity, self.doc.source, line, column, render_path(path), message, hint))

    def error(self, path: NodePath, message: str, hint: str = "") -> None:
        self._report("error", path, message, hint)

    def warn(self, path: NodePath, message: str, hint: str = "") -> None:
        self._report("warning", path, message, hint)

    def place(self, path: NodePath) -> Place:
        return Place(self.doc.source, *self.doc.mark(path), tuple(path))

    # -- generic readers -------------------------------------------------------------------------

    def fields(self, value: Mapping[str, Any], path: NodePath, known: tuple[str, ...],
               what: str) -> dict[str, tuple[Any, NodePath]]:
        """Match `value`'s keys to `known` case-insensitively: canonical name → (value, path as written).

        Two spellings of one key are an error naming both lines; unknown keys are warnings.
        """
        by_fold = {name.lower(): name for name in known}
        found: dict[str, tuple[Any, NodePath]] = {}
        for key, item in value.items():
            key_path = path + (key,)
            canonical = by_fold.get(str(key).lower())
            if canonical is None:
                self._unknown_key(key_path, str(key), known, what)
                continue
            if canonical in found:
                first_path = found[canonical][1]
                self.error(key_path, f"'{key}' repeats '{first_path[-1]}' from line "
                           f"{self.doc.mark(first_path)[0]} (keys are case-insensitive)",
                           "keep one of the two")
                continue
            found[canonical] = (item, key_path)
        return found

    def _unknown_key(self, path: NodePath, key: str, known: tuple[str, ...], what: str) -> None:
        import difflib

        close = difflib.get_close_matches(key.lower(), [k.lower() for k in known], n=1, cutoff=0.6)
        if close:
            suggestion = next(k for k in known if k.lower() == close[0])
            hint = f"did you mean '{suggestion}'? Greengrass ignores unknown keys, so this one does nothing"
        else:
            hint = f"known keys of {what}: {', '.join(known)}; unknown keys are ignored"
        self.warn(path, f"unknown key '{key}' in {what}", hint)

    def mapping(self, value: Any, path: NodePath, what: str, *, required: bool = False) -> dict[str, Any] | None:
        """`value` if it is a mapping; None (and maybe an error) if it is empty or of another type."""
        if value is None or value is _MISSING:
            if required:
                self.error(path, f"{what} is missing", f"add {what}")
            return None
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping of keys to values, not {_kind(value)}",
                       "indent its fields under it")
            return None
        return value

    def text(self, value: Any, path: NodePath, what: str, *, required: bool = False) -> str | None:
        """A scalar as the text the user wrote (YAML `1.0` is "1.0"); None if absent."""
        if value is _MISSING or value is None:
            if required:
                self.error(path, f"{what} is missing" if value is _MISSING else "is empty",
                           f"give {what} a value")
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, (bool, int, float)):
            return self.doc.texts.get(path, str(value).lower() if isinstance(value, bool) else str(value))
        self.error(path, f"must be text, not {_kind(value)}", "write it on one line after the colon")
        return None

    def choice(self, value: Any, path: NodePath, what: str, options: tuple[str, ...]) -> str | None:
        """An enum value, case-insensitive, returned in its canonical spelling."""
        text = self.text(value, path, what)
        if text is None:
            return None
        match = next((option for option in options if option.lower() == text.lower()), None)
        if match is None:
            self.error(path, f"'{text}' is not a valid {what}", f"use one of: {', '.join(options)}")
        return match

    def string_map(self, value: Any, path: NodePath, what: str,
                   places: dict[str, Place] | None = None) -> dict[str, str]:
        """Setenv-style maps: user-named keys (case kept), scalar values as text (and where each is)."""
        mapping = self.mapping(value, path, what)
        result: dict[str, str] = {}
        for key, item in (mapping or {}).items():
            item_path = path + (key,)
            if isinstance(item, (dict, list)):
                self.error(item_path, f"must be text, not {_kind(item)}",
                           "quote the value")
                continue
            name = str(key)
            if not name or "=" in name or "\0" in name:
                self.error(item_path, f"'{name}' cannot be an environment variable name",
                           "use a name without '=' (letters, digits and '_' are safest)")
                continue
            text = "" if item is None else (self.text(item, item_path, key) or "")
            if "\0" in text:
                self.error(item_path, "contains a NUL character", "an environment value cannot hold one")
                continue
            result[name] = text
            if places is not None:
                places[f"setenv.{name}"] = self.place(item_path)
        return result

    # -- the recipe ------------------------------------------------------------------------------

    def recipe(self, digest: str) -> Recipe | None:
        data = self.doc.data
        if data is None:
            self.error((), "the recipe is empty", "a recipe needs at least RecipeFormatVersion, "
                       "ComponentName, ComponentVersion and Manifests")
            return None
        if not isinstance(data, dict):
            self.error((), f"a recipe must be a mapping of fields, not {_kind(data)}",
                       "start with RecipeFormatVersion: '2020-01-25'")
            return None
        top = self.fields(data, (), TOP_KEYS, "a recipe")

        def get(name: str) -> tuple[Any, NodePath]:
            return top.get(name, (_MISSING, ()))

        format_value, format_path = get("RecipeFormatVersion")
        format_version = self.text(format_value, format_path, "RecipeFormatVersion", required=True)
        if format_version is not None and format_version != RECIPE_FORMAT_VERSION:
            self.error(format_path, f"'{format_version}' is not a recipe format version",
                       f"the only recipe format is '{RECIPE_FORMAT_VERSION}'")

        name = self.component_name(*get("ComponentName"), "ComponentName", required=True)
        version = self.component_version(*get("ComponentVersion"))
        component_type = self.choice(*get("ComponentType"), "ComponentType", COMPONENT_TYPES)
        description = self.text(*get("ComponentDescription"), "ComponentDescription")
        publisher = self.text(*get("ComponentPublisher"), "ComponentPublisher")
        source = self.text(*get("ComponentSource"), "ComponentSource")
        configuration = self.default_configuration(*get("ComponentConfiguration"))
        dependencies = self.dependencies(*get("ComponentDependencies"))
        manifests = self.manifests(get("Manifests"), get("Lifecycle"))

        if name is None or version is None or manifests is None:
            return None
        return Recipe(
            name=name, version=version, manifests=manifests, dependencies=dependencies,
            component_type=component_type or COMPONENT_TYPES[0], description=description,
            publisher=publisher, source=source, default_configuration=configuration,
            format_version=format_version or RECIPE_FORMAT_VERSION, path=self.doc.source, digest=digest)

    def component_name(self, value: Any, path: NodePath, what: str, *, required: bool = False) -> str | None:
        name = self.text(value, path, what, required=required)
        if name is None:
            return None
        if not NAME_PATTERN.match(name):
            self.error(path, f"'{name}' has characters a component name cannot have",
                       "use only letters, digits, '-', '_' and '.', e.g. com.example.HelloWorld")
        elif name in (".", ".."):
            self.error(path, f"'{name}' cannot be a component name", "it would name a folder outside work/ and logs/")
        elif len(name) > MAX_NAME_LENGTH:
            self.error(path, f"'{name[:20]}…' is {len(name)} characters long", f"keep it to {MAX_NAME_LENGTH}")
        else:
            return name
        return None

    def component_version(self, value: Any, path: NodePath) -> str | None:
        from nucleus.versions import parse_version

        version = self.text(value, path, "ComponentVersion", required=True)
        if version is None:
            return None
        hint = "use a strict semantic version MAJOR.MINOR.PATCH, e.g. 1.0.0"
        if len(version) > MAX_VERSION_LENGTH:
            self.error(path, f"is {len(version)} characters long",
                       f"keep it to {MAX_VERSION_LENGTH}")
            return None
        try:
            parsed = parse_version(version)
        except ValueError:
            parsed = None
        if parsed is None or version.strip() != version or version[:1] in "v=":
            quoted = f" (YAML read {version!r} as a number: quote it)" if path in self.doc.texts else ""
            self.error(path, f"'{version}' is not a strict semantic version{quoted}", hint)
            return None
        if max(parsed.major, parsed.minor, parsed.patch) > MAX_VERSION_NUMBER:
            self.error(path, f"'{version}' has a number above {MAX_VERSION_NUMBER}",
                       "Greengrass allows at most 999999 in each of MAJOR, MINOR and PATCH")
            return None
        return version

    def default_configuration(self, value: Any, path: NodePath) -> Any:
        mapping = self.mapping(value, path, "ComponentConfiguration")
        if mapping is None:
            return {}
        found = self.fields(mapping, path, CONFIGURATION_KEYS, "ComponentConfiguration")
        if "DefaultConfiguration" not in found:
            return {}
        configuration, item_path = found["DefaultConfiguration"]
        if configuration is None:
            return {}
        if not isinstance(configuration, dict):
            self.error(item_path, f"must be a mapping, not {_kind(configuration)}",
                       "put the component's settings under it as keys")
            return {}
        return configuration

    def dependencies(self, value: Any, path: NodePath) -> tuple[Dependency, ...]:
        from nucleus.versions import parse_range

        mapping = self.mapping(value, path, "ComponentDependencies")
        if mapping is None:
            return ()
        result: list[Dependency] = []
        for raw_name, spec in mapping.items():
            dep_path = path + (raw_name,)
            name = self.component_name(raw_name, dep_path, "the dependency name")
            spec_map = self.mapping(spec, dep_path, f"the dependency {raw_name}", required=True)
            if spec_map is None:
                continue
            found = self.fields(spec_map, dep_path, DEPENDENCY_KEYS, f"the dependency {raw_name}")
            req_value, req_path = found.get("VersionRequirement", (_MISSING, dep_path))
            requirement = self.text(req_value, req_path, "VersionRequirement", required=True)
            if requirement is not None:
                try:
                    parse_range(requirement)
                except ValueError as exc:
                    self.error(req_path, f"'{requirement}' is not a valid npm range ({exc})",
                               "use a range such as ^2.0.0, ~1.2.0, >=1.0.0 <2.0.0 or 1.x")
                    requirement = None
            type_value, type_path = found.get("DependencyType", (None, dep_path))
            dependency_type = HARD
            if type_value is not None:
                dependency_type = self.choice(type_value, type_path, "DependencyType", (HARD, SOFT)) or HARD
            if name is not None and requirement is not None:
                result.append(Dependency(name, requirement, dependency_type))
        return tuple(result)

    # -- manifests and lifecycles ----------------------------------------------------------------

    def manifests(self, manifests_entry: tuple[Any, NodePath],
                  lifecycle_entry: tuple[Any, NodePath]) -> tuple[Manifest, ...] | None:
        value, path = manifests_entry
        top_value, top_path = lifecycle_entry
        if top_value not in (_MISSING, None) and not isinstance(top_value, dict):
            self.error(top_path, f"must be a mapping of lifecycle steps, not {_kind(top_value)}",
                       "indent the steps (Install:, Run: …) under Lifecycle")
            lifecycle_entry = (_MISSING, top_path)
        if value is _MISSING:
            self.error((), "Manifests is missing", "add Manifests: a list with at least one entry, e.g. "
                       "- Lifecycle: {Run: …}")
            return None
        if not isinstance(value, list) or not value:
            shape = "empty" if value in (None, []) else f"{_kind(value)}, not a list"
            self.error(path, f"is {shape}", "give at least one manifest as a list item (- …)")
            return None
        entries = [(path + (index,), item) for index, item in enumerate(value)]
        selections = [self.selections(item, item_path) for item_path, item in entries]
        all_selectors = {"all"}.union(*[set(s) for s in selections])
        result = []
        for (item_path, item), manifest_selections in zip(entries, selections):
            manifest = self.manifest(item, item_path, manifest_selections, all_selectors, lifecycle_entry)
            if manifest is not None:
                result.append(manifest)
        if len(result) != len(entries):
            return None
        return tuple(result)

    def selections(self, item: Any, path: NodePath) -> tuple[str, ...]:
        if not isinstance(item, dict):
            return ()
        for key, value in item.items():
            if str(key).lower() == "selections":
                if value is None:
                    return ()
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    self.error(path + (key,), "must be a list of selection keys",
                               "write e.g. Selections: [linux, all]")
                    return ()
                return tuple(value)
        return ()

    def manifest(self, item: Any, path: NodePath, selections: tuple[str, ...], all_selectors: set[str],
                 top: tuple[Any, NodePath]) -> Manifest | None:
        if item is None:
            self.error(path, "this manifest is empty", "remove the empty '-' item or fill it in")
            return None
        mapping = self.mapping(item, path, "a manifest")
        if mapping is None:
            return None
        found = self.fields(mapping, path, MANIFEST_KEYS, "a manifest")
        errors_before = len(self.errors())
        name = self.text(*found.get("Name", (None, path)), "the manifest Name")
        platform = self.platform(*found.get("Platform", (None, path)))
        artifacts = self.artifacts(*found.get("Artifacts", (None, path)))
        own_lifecycle, own_path = found.get("Lifecycle", (None, path))
        if own_lifecycle not in (None, {}):
            lifecycle = self.lifecycle(own_lifecycle, own_path, (), set())
        else:
            top_lifecycle, top_path = top
            chosen = (selections or ()) + ("all",)
            if top_lifecycle is _MISSING or top_lifecycle is None:
                lifecycle = Lifecycle()
            else:
                lifecycle = self.lifecycle(top_lifecycle, top_path, chosen, all_selectors)
        if len(self.errors()) > errors_before or lifecycle is None:
            return None
        return Manifest(platform, lifecycle, artifacts, selections, name)

    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    def platform(self, value: Any, path: NodePath) -> Platform:
        mapping = self.mapping(value, path, "Platform")
        attributes: dict[str, str] = {}
        for key, item in (mapping or {}).items():
            key_path = path + (key,)
            canonical = next((k for k in PLATFORM_KEYS if k == str(key).lower()), str(key))
            if canonical in attributes:
                self.error(key_path, "is given twice (platform keys are case-insensitive)", "keep one")
                continue
            text = self.text(item, key_path, f"Platform {key}", required=True)
            if text is not None:
                attributes[canonical] = text
        return Platform(attributes)

    def artifacts(self, value: Any, path: NodePath) -> tuple[Artifact, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.error(path, f"must be a list, not {_kind(value)}", "write each artifact as a '- URI: …' item")
            return ()
        result: list[Artifact] = []
        names: dict[str, NodePath] = {}
        for index, item in enumerate(value):
            item_path = path + (index,)
            artifact = self.artifact(item, item_path)
            if artifact is None:
                continue
            if artifact.file_name in names:
                self.error(item_path, f"two artifacts of this manifest are named '{artifact.file_name}' "
                           f"(the other is on line {self.doc.mark(names[artifact.file_name])[0]})",
                           "each artifact needs its own file name")
                continue
            names[artifact.file_name] = item_path
            result.append(artifact)
        return tuple(result)

    def artifact(self, item: Any, path: NodePath) -> Artifact | None:
        mapping = self.mapping(item, path, "an artifact", required=True)
        if mapping is None:
            return None
        found = self.fields(mapping, path, ARTIFACT_KEYS, "an artifact")
        uri_value, uri_path = found.get("URI", (_MISSING, path))
        uri = self.text(uri_value, uri_path, "the artifact URI", required=True)
        digest = self.text(*found.get("Digest", (None, path)), "Digest")
        algorithm = None
        if "Algorithm" in found:
            algorithm = self.choice(*found["Algorithm"], "Algorithm", tuple(HASH_ALGORITHMS))
        elif digest:
            algorithm = "SHA-256"
        unarchive = "NONE"
        if "Unarchive" in found and found["Unarchive"][0] is not None:
            unarchive = self.choice(*found["Unarchive"], "Unarchive", ("NONE", "ZIP")) or "NONE"
        permission = self.permission(*found.get("Permission", (None, path)))
        if uri is None:
            return None
        if not uri.strip() or uri.rstrip().endswith("/"):
            self.error(uri_path, f"'{uri}' names no file", "end the URI with the file name")
            return None
        artifact = Artifact(uri, digest, algorithm, unarchive, permission)
        if artifact.file_name in (".", ".."):
            self.error(uri_path, f"'{uri}' ends in '{artifact.file_name}', which is not a file name",
                       "end the URI with the file name")
            return None
        if unarchive == "ZIP" and artifact.unarchive_folder in ("", ".", ".."):
            self.error(uri_path, f"'{artifact.file_name}' would unpack into the folder "
                       f"'{artifact.unarchive_folder}', outside its own",
                       "give the archive a name before its extension, e.g. app.zip")
            return None
        return artifact

    def permission(self, value: Any, path: NodePath) -> Permission:
        mapping = self.mapping(value, path, "Permission")
        if mapping is None:
            return Permission()
        found = self.fields(mapping, path, PERMISSION_KEYS, "Permission")
        options = ("NONE", "OWNER", "ALL")
        read = self.choice(*found.get("Read", (None, path)), "Permission Read", options)
        execute = self.choice(*found.get("Execute", (None, path)), "Permission Execute", options)
        return Permission(read or "OWNER", execute or "NONE")

    def select(self, value: Any, path: NodePath, chosen: tuple[str, ...],
               all_selectors: set[str]) -> tuple[Any, NodePath]:
        """Apply selection keys at this level of a top-level lifecycle (repeatedly, for nested levels).

        A mapping with any selection key is a selection level: the first of the manifest's selections
        (then `all`) that it has wins, and the level's other keys are dropped, as Greengrass does.
        """
        while isinstance(value, dict) and all_selectors and any(k in all_selectors for k in value):
            key = next((k for k in chosen if k in value), None)
            if key is None:
                return _MISSING, path
            value, path = value[key], path + (key,)
        return value, path

    def lifecycle(self, value: Any, path: NodePath, chosen: tuple[str, ...],
                  all_selectors: set[str]) -> Lifecycle | None:
        value, path = self.select(value, path, chosen, all_selectors)
        if value is _MISSING or value is None:
            return Lifecycle()
        mapping = self.mapping(value, path, "Lifecycle")
        if mapping is None:
            return None
        found = self.fields(mapping, path, LIFECYCLE_KEYS, "a lifecycle")
        setenv: dict[str, str] = {}
        places: dict[str, Place] = {}
        if "Setenv" in found:
            setenv = self.string_map(*self.select(*found["Setenv"], chosen, all_selectors), "Setenv", places)
        steps: dict[str, Step] = {}
        for step_name in STEP_NAMES:
            key = step_name.capitalize()
            if key in found:
                step = self.step(step_name, *found[key], chosen, all_selectors)
                if step is not None:
                    steps[step_name] = step
        if "startup" in steps and "run" in steps:
            self.warn(found["Run"][1], "both Startup and Run are given: Run is used only when Startup is "
                      "skipped (its Skipif holds)", "Greengrass runs one of them; keep the one you mean")
        return Lifecycle(steps, setenv, places)

    def step(self, name: str, value: Any, path: NodePath, chosen: tuple[str, ...],
             all_selectors: set[str]) -> Step | None:
        value, path = self.select(value, path, chosen, all_selectors)
        if value is _MISSING or value is None:
            return None
        if not isinstance(value, dict):
            script = self.text(value, path, f"the {name} step")
            if script and "\0" in script:
                self.error(path, "contains a NUL character", "a shell script cannot hold one; remove it")
                return None
            return Step(name, script, places={"script": self.place(path)}) if script and script.strip() else None
        if not value:
            return None
        found = self.fields(value, path, STEP_KEYS, f"the {name} step")

        def field_value(key: str) -> tuple[Any, NodePath]:
            if key not in found:
                return _MISSING, path
            return self.select(*found[key], chosen, all_selectors)

        script_value, script_path = field_value("Script")
        script = None if script_value is _MISSING else self.text(script_value, script_path, "Script")
        if script and "\0" in script:
            self.error(script_path, "contains a NUL character", "a shell script cannot hold one; remove it")
            return None
        places = {"script": self.place(script_path)}
        values: dict[str, Any] = {}
        pending: dict[str, str] = {}
        for attribute, (key, rule) in typed.TYPED.items():
            value, value_path = field_value(key)
            if attribute == "skipif" and value not in (_MISSING, None):
                value = self.text(value, value_path, "Skipif")
            if value is _MISSING or value is None:
                continue
            places[attribute] = self.place(value_path)
            checked, problem = rule(value)
            if not problem:
                values[attribute] = checked
            elif not has_variable(value):
                self.typed_error(value, value_path, problem)
            elif attribute == "skipif":
                values[attribute] = value.strip()  # Skipif is text: checked again once substituted
            else:
                pending[attribute] = value  # typed once substituted, at plan time
        setenv_value, setenv_path = field_value("Setenv")
        setenv = {} if setenv_value is _MISSING else self.string_map(setenv_value, setenv_path, "Setenv", places)
        if not script or not script.strip():
            if set(found) - {"Script"}:
                self.error(path, f"the {name} step has no Script", "add Script: <the command to run>")
            return None
        return Step(name, script, values.get("timeout"), values.get("skipif"),
                    values.get("requires_privilege", False), setenv, pending, places)

    def typed_error(self, value: Any, path: NodePath, problem: str) -> None:
        """A Timeout, RequiresPrivilege or Skipif that is not valid (and holds no recipe variable)."""
        if isinstance(value, dict) and len(value) == 1 and has_variable(f"{{{next(iter(value))}}}"):
            variable = f"{{{next(iter(value))}}}"
            self.error(path, f"YAML reads the unquoted {variable} as a mapping, not as text",
                       f"quote it: '{variable}'")
        else:
            self.error(path, f"'{self.doc.texts.get(path, value)}' {problem}", typed.HINTS[problem])


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "empty"
    return "text"
