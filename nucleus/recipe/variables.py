"""Recipe variables: `{artifacts:path}`, `{configuration:/pointer}`, `{Dep:work:path}` and the rest.

Interpolated once per deployment into every string of the chosen lifecycle, as raw text — exactly like
Greengrass, so a configuration value can inject shell (docs/recipes.md says so). Anything unknown or
unresolvable is left as written with a warning, never an error: shell text such as `${VAR:-x}` must pass
through untouched (and, being shell, gets no warning).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, NamedTuple

from nucleus.recipe.model import Lifecycle, Step

VARIABLE = re.compile(r"\{(?:([A-Za-z0-9\-_.]+):)?([A-Za-z]+):([^{}]*)\}")
CROSS_COMPONENT = {"artifacts", "work", "configuration"}  # what `{Dep:<namespace>:…}` may ask for


class ComponentFacts(NamedTuple):
    """What variables can say about one component."""

    artifacts_path: str
    decompressed_path: str
    work_path: str
    configuration: Any = {}


class VariableContext(NamedTuple):
    component: str
    facts: Mapping[str, ComponentFacts]  # the component itself and its direct dependencies
    root_path: str
    thing_name: str


def render(text: str, context: VariableContext, warnings: list[str], where: str = "") -> str:
    """`text` with every known variable replaced; unknown ones stay and add a line to `warnings`."""

    def substitute(match: re.Match) -> str:
        value, problem = _value(match, context)
        if value is not None:
            return value
        shell_text = match.start() > 0 and match.string[match.start() - 1] == "$"
        if not shell_text:
            warnings.append(f"{where}{match.group(0)} left as written: {problem}")
        return match.group(0)

    return VARIABLE.sub(substitute, text) if "{" in text else text


def _value(match: re.Match, context: VariableContext) -> tuple[str | None, str]:
    other, namespace, key = match.groups()
    target = other or context.component
    if other is not None:
        if namespace not in CROSS_COMPONENT:
            return None, f"{namespace} values of other components are not available"
        if other not in context.facts or other == context.component:
            return None, f"{other} is not a direct dependency of {context.component}"
    facts = context.facts.get(target)
    if namespace == "artifacts" and key in ("path", "decompressedPath") and facts:
        return (facts.artifacts_path if key == "path" else facts.decompressed_path), ""
    if namespace == "work" and key == "path" and facts:
        return facts.work_path, ""
    if namespace == "kernel" and key == "rootPath" and other is None:
        return context.root_path, ""
    if namespace == "iot" and key == "thingName" and other is None:
        return context.thing_name, ""
    if namespace == "configuration" and facts:
        found, value = resolve_pointer(facts.configuration, key)
        if not found:
            return None, f"no {key or 'value'} in {target}'s configuration"
        return format_configuration_value(value), ""
    known = "artifacts:path, artifacts:decompressedPath, work:path, kernel:rootPath, iot:thingName, configuration:/…"
    return None, f"unknown variable (known: {known})"


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


def render_lifecycle(lifecycle: Lifecycle, context: VariableContext, warnings: list[str]) -> Lifecycle:
    """Every string of the lifecycle rendered: scripts, Skipif, Setenv values."""
    def render_env(env: Mapping[str, str], where: str) -> dict[str, str]:
        return {k: render(v, context, warnings, f"{where}Setenv.{k}: ") for k, v in env.items()}

    steps: dict[str, Step] = {}
    for name, step in lifecycle.steps.items():
        where = f"{context.component} {name}: "
        steps[name] = replace(
            step,
            script=render(step.script, context, warnings, where),
            skipif=render(step.skipif, context, warnings, where) if step.skipif else None,
            setenv=render_env(step.setenv, where),
        )
    return Lifecycle(steps, render_env(lifecycle.setenv, f"{context.component} "))
