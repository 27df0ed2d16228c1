"""Recipe variables: `{artifacts:path}`, `{configuration:/pointer}`, `{Dep:work:path}` and the rest.

The grammar is the classic nucleus's (`KernelConfigResolver` in aws-greengrass-nucleus): `{namespace:key}`
or `{Component:namespace:key}`, where the component and the namespace are made of ASCII letters, digits,
`_`, `.` and `-`, and the key is any text without `:` or `}` (it may be empty). So `{configuration:/a:b}` is
not a variable at all and stays as written, as it does in Greengrass.

Interpolated once per deployment into every string of the chosen lifecycle, as raw text — exactly like
Greengrass, so a configuration value can inject shell (docs/recipes.md says so). A substituted value is
not scanned again. Anything unknown or unresolvable is left as written with a warning, never an error:
shell text such as `${VAR:-x}` must pass through untouched (and, being shell, gets no warning). The one
exception is a typed field (`Timeout`, `RequiresPrivilege`, `Skipif`) that is still not valid once its
variables are substituted: that is an error, since the step cannot run as written.

`check_variables` does the same checks on a recipe alone (`nucleus validate`), with its own configuration.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, NamedTuple

from nucleus.recipe.diagnostics import Diagnostic, RecipeError
from nucleus.recipe.fields import AFTER_SUBSTITUTION, TYPED
from nucleus.recipe.model import Lifecycle, Place, Recipe, Step

_NAME = r"[.\w-]+"  # with re.ASCII, Java's `[.\w-]`
VARIABLE = re.compile(rf"\{{(?:({_NAME}):)?({_NAME}):([^:}}]*)\}}", re.ASCII)
# namespace → its keys (None: any JSON pointer). Every namespace may be asked of a direct dependency too.
NAMESPACES: Mapping[str, tuple[str, ...] | None] = {
    "artifacts": ("path", "decompressedPath"),
    "work": ("path",),
    "kernel": ("rootPath",),
    "iot": ("thingName",),
    "configuration": None,
}
# `{configuration:/a:b}`: meant as a variable, but its key holds a `:`, so it is none (warned about).
_NEAR_MISS = re.compile(rf"\{{(?:{_NAME}:)?(?:{'|'.join(NAMESPACES)}):[^{{}}\s]*:[^{{}}\s]*\}}", re.ASCII)
KNOWN = "artifacts:path, artifacts:decompressedPath, work:path, kernel:rootPath, iot:thingName, configuration:/…"


class ComponentFacts(NamedTuple):
    """What variables can say about one component."""

    artifacts_path: str
    decompressed_path: str
    work_path: str
    configuration: Any = {}  # None: not known here (a recipe checked alone), so pointers are not checked


class VariableContext(NamedTuple):
    component: str
    facts: Mapping[str, ComponentFacts]  # the component itself and its direct dependencies
    root_path: str
    thing_name: str


class Unresolved(NamedTuple):
    """A variable left as written, and why."""

    text: str  # as written, e.g. `{configuration:/Mesage}`
    message: str  # "" when it cannot be known here (a dependency's configuration, checked alone)
    hint: str
    shell: bool  # right after a `$`: shell text such as `${VAR:-x}`, never warned about


class Substitution(NamedTuple):
    text: str
    values: dict[str, str]  # each variable substituted → its value
    unresolved: list[Unresolved]


def has_variable(value: Any) -> bool:
    return isinstance(value, str) and VARIABLE.search(value) is not None


def substitute(text: str, context: VariableContext) -> Substitution:
    """`text` with every variable that resolves replaced; the others stay, each with its reason."""
    values: dict[str, str] = {}
    unresolved: list[Unresolved] = []

    def one(match: re.Match[str]) -> str:
        written = match.group(0)
        value, message, hint = _lookup(match.group(1), match.group(2), match.group(3), context)
        if value is not None:
            values[written] = value
            return value
        shell = match.start() > 0 and match.string[match.start() - 1] == "$"
        unresolved.append(Unresolved(written, message, hint, shell))
        return written

    return Substitution(VARIABLE.sub(one, text) if "{" in text else text, values, unresolved)


def render(text: str, context: VariableContext, warnings: list[str], where: str = "") -> str:
    """`text` with every known variable replaced; unknown ones stay and add a line to `warnings`."""
    result = substitute(text, context)
    warnings.extend(f"{where}{_describe(u)}" for u in _reportable(result.unresolved))
    return result.text


def _reportable(unresolved: list[Unresolved]) -> list[Unresolved]:
    return [u for u in unresolved if u.message and not u.shell]


def _describe(unresolved: Unresolved) -> str:
    line = f"{unresolved.text} left as written: {unresolved.message}"
    return f"{line} — {unresolved.hint}" if unresolved.hint else line


def _warning(place: Place, unresolved: Unresolved) -> Diagnostic:
    return Diagnostic("warning", place.source, place.line, place.column, place.where,
                      f"{unresolved.text} left as written: {unresolved.message}", unresolved.hint)


def _lookup(other: str | None, namespace: str, key: str,
            context: VariableContext) -> tuple[str | None, str, str]:
    """(value, "", "") or (None, why not, a hint); (None, "", "") when it cannot be known here."""
    target = other or context.component
    if other is not None and (other not in context.facts or other == context.component):
        import difflib  # only when a variable does not resolve

        dependencies = [name for name in context.facts if name != context.component]
        close = difflib.get_close_matches(other, dependencies, n=1, cutoff=0.85)
        hint = (f"did you mean {{{close[0]}:{namespace}:{key}}}?" if close else
                "Greengrass substitutes the variables of direct dependencies only: add it to ComponentDependencies")
        return None, f"{other} is not a direct dependency of {context.component}", hint
    facts = context.facts.get(target, ComponentFacts("", "", "", {}))
    if namespace == "configuration":
        return _configuration(target, key, facts.configuration, other)
    values = {("artifacts", "path"): facts.artifacts_path,
              ("artifacts", "decompressedPath"): facts.decompressed_path,
              ("work", "path"): facts.work_path,
              ("kernel", "rootPath"): context.root_path,
              ("iot", "thingName"): context.thing_name}
    if (namespace, key) in values:
        return values[(namespace, key)], "", ""
    prefix = f"{other}:" if other else ""
    suggestion = _close_variable(namespace, key)
    return None, "unknown variable", (f"did you mean {{{prefix}{suggestion}}}?" if suggestion else f"known: {KNOWN}")


def _close_variable(namespace: str, key: str) -> str | None:
    """`configuraton:/x` → `configuration:/x`, `artifacts:paht` → `artifacts:path`; None if nothing is close."""
    if namespace not in NAMESPACES:
        match = _closest(namespace, list(NAMESPACES), 0.7)
        if match is None:
            return None
        namespace = match
    keys = NAMESPACES[namespace]
    if keys is None:
        return f"{namespace}:{key}"
    match = _closest(key, list(keys), 0.6)
    return f"{namespace}:{match}" if match else None


def _closest(word: str, options: list[str], cutoff: float) -> str | None:
    """The option equal to `word` but for case, else the closest above `cutoff`."""
    import difflib  # only when a variable does not resolve

    same = [option for option in options if option.lower() == word.lower()]
    if same:
        return same[0]
    close = difflib.get_close_matches(word.lower(), [o.lower() for o in options], n=1, cutoff=cutoff)
    return next((o for o in options if close and o.lower() == close[0]), None)


def _configuration(target: str, pointer: str, configuration: Any,
                   other: str | None) -> tuple[str | None, str, str]:
    if configuration is None:
        return None, "", ""
    found, value = resolve_pointer(configuration, pointer)
    if found:
        return format_configuration_value(value), "", ""
    prefix = f"{other}:" if other else ""
    owner = f"{other}'s " if other else ""
    if not pointer.startswith("/"):
        return (None, f"'{pointer}' is not a JSON pointer into {target}'s configuration",
                f"start it with '/': {{{prefix}configuration:/{pointer}}}")
    close = _close_pointer(configuration, pointer)
    hint = (f"did you mean {{{prefix}configuration:{close}}}?" if close else
            f"add it to {owner}DefaultConfiguration (pointers are case-sensitive)")
    return None, f"no {pointer} in {target}'s configuration", hint


def _close_pointer(document: Any, pointer: str) -> str | None:
    """The pointer with each missing level replaced by its closest key, if that then resolves."""
    value, tokens = document, []
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and token not in value:
            token = _closest(token, [k for k in value if isinstance(k, str)], 0.7) or token
        found, value = resolve_pointer(value, "/" + token.replace("~", "~0").replace("/", "~1"))
        if not found:
            return None
        tokens.append(token.replace("~", "~0").replace("/", "~1"))
    return "/" + "/".join(tokens)


def resolve_pointer(document: Any, pointer: str) -> tuple[bool, Any]:
    """RFC 6901: `/a/b/0` into `document`; (False, None) where there is no such value."""
    if pointer == "":
        return True, document
    if not pointer.startswith("/"):
        return False, None
    value = document
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and (token == "0" or not token.startswith("0")) \
                and int(token) < len(value):
            value = value[int(token)]
        else:
            return False, None
    return True, value


def format_configuration_value(value: Any) -> str:
    """Scalars as text (`null` for null), objects and arrays as compact JSON, as Greengrass does."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return json.dumps(value)


# -- a whole lifecycle, at plan time ---------------------------------------------------------------


def render_lifecycle(lifecycle: Lifecycle, context: VariableContext, warnings: list[str]) -> Lifecycle:
    """Every string of the lifecycle rendered (scripts, Skipif, Timeout, RequiresPrivilege, Setenv values),
    then the typed fields typed. Raises `RecipeError` with one error per typed field still invalid."""
    errors: list[Diagnostic] = []

    def text(value: str, place: Place | None, fallback: str) -> Substitution:
        result = substitute(value, context)
        warnings.extend(str(_warning(place, u)) if place else f"{fallback}{_describe(u)}"
                        for u in _reportable(result.unresolved))
        return result

    def env(values: Mapping[str, str], places: Mapping[str, Place], fallback: str) -> dict[str, str]:
        return {k: text(v, places.get(f"setenv.{k}"), f"{fallback}Setenv.{k}: ").text for k, v in values.items()}

    steps: dict[str, Step] = {}
    for name, step in lifecycle.steps.items():
        fallback = f"{context.component} {name}: "
        pending = dict(step.pending)
        if step.skipif and has_variable(step.skipif):
            pending["skipif"] = step.skipif
        typed: dict[str, Any] = {}
        for attribute, raw in pending.items():
            place = step.places.get(attribute) or Place("<recipe>", 1, 1, (context.component, name))
            key, rule = TYPED[attribute]
            result = substitute(raw, context)
            typed[attribute], problem = rule(result.text)
            if problem:
                errors.append(_invalid(place, key, raw, result, problem))
            else:
                text(raw, place, fallback)  # its unresolved variables, as warnings
        steps[name] = replace(step, script=text(step.script, step.places.get("script"), fallback).text,
                              setenv=env(step.setenv, step.places, fallback), pending={}, **typed)
    if errors:
        raise RecipeError(sorted(errors, key=lambda d: (d.line, d.column)))
    return replace(lifecycle, steps=steps, setenv=env(lifecycle.setenv, lifecycle.places, f"{context.component} "))


def _invalid(place: Place, key: str, raw: str, result: Substitution, problem: str) -> Diagnostic:
    """The one error for a typed field still invalid once substituted: the variable, and what it gave."""
    missing = [u for u in result.unresolved if not u.shell]
    if missing:
        reason = missing[0].message or "its value is not known"
        message = f"'{result.text}' {problem}: {missing[0].text} cannot be substituted ({reason})"
        hint = missing[0].hint or f"{key} needs {AFTER_SUBSTITUTION[problem]}"
    elif not result.values:  # only shell text such as `${X:-5}`, which is never substituted
        message, hint = f"'{raw}' {problem}", f"{key} needs {AFTER_SUBSTITUTION[problem]}"
    elif raw.strip() in result.values:
        message = f"'{raw}' gives '{result.text}', and '{result.text}' {problem}"
        hint = f"make {raw.strip()} {AFTER_SUBSTITUTION[problem]}"
    else:
        given = ", ".join(f"{variable} is '{value}'" for variable, value in result.values.items())
        message = f"'{raw}' gives '{result.text}' ({given}), and '{result.text}' {problem}"
        hint = f"make '{raw}' give {AFTER_SUBSTITUTION[problem]}"
    return Diagnostic("error", place.source, place.line, place.column, place.where, message, hint)


# -- a recipe on its own (validate) ----------------------------------------------------------------


def check_variables(recipe: Recipe) -> list[Diagnostic]:
    """A warning for each variable in any manifest's lifecycle that cannot resolve, wherever it runs:
    an unknown namespace or key, a component that is not a direct dependency, a pointer the recipe's
    DefaultConfiguration lacks. The warnings are worded as plan's, so a plan prints each once."""
    strings = [item for manifest in recipe.manifests for item in _strings_with_braces(manifest.lifecycle)]
    if not strings:
        return []
    facts = {recipe.name: ComponentFacts("", "", "", recipe.default_configuration)}
    facts.update({d.name: ComponentFacts("", "", "", None) for d in recipe.dependencies})
    context = VariableContext(recipe.name, facts, "", "")
    found: list[Diagnostic] = []
    for value, place in strings:
        found += [_warning(place, u) for u in _reportable(substitute(value, context).unresolved)]
        found += [_warning(place, u) for u in _near_misses(value)]
    return found


def _strings_with_braces(lifecycle: Lifecycle) -> list[tuple[str, Place]]:
    """The lifecycle's strings that may hold a variable, with where each was written (if known)."""
    named = [(lifecycle.places, f"setenv.{k}", v) for k, v in lifecycle.setenv.items() if "{" in v]
    for step in lifecycle.steps.values():
        fields = [("script", step.script), ("skipif", step.skipif or ""), *step.pending.items()]
        named += [(step.places, key, value) for key, value in fields if "{" in value]
        named += [(step.places, f"setenv.{k}", v) for k, v in step.setenv.items() if "{" in v]
    return [(value, places[key]) for places, key, value in named if key in places]


def _near_misses(text: str) -> list[Unresolved]:
    return [Unresolved(m.group(0), "not a variable, since a variable's key cannot hold ':'",
                       "Greengrass leaves it as written too: reach the value by a key without ':'", False)
            for m in _NEAR_MISS.finditer(text)
            if not VARIABLE.fullmatch(m.group(0)) and not (m.start() and text[m.start() - 1] == "$")]
