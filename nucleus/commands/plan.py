"""`nucleus plan PATH…`: what a deploy would do — components in start order, lifecycles rendered."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from nucleus.cli import Context


def plan_json(plan: Any) -> dict[str, Any]:
    """The `--json` contract of docs/commands.md (keys sorted when printed)."""
    components = []
    for component in plan.components:
        lifecycle = {
            name: {"script": step.script, "timeout": step.effective_timeout, "skipif": step.skipif,
                   "requiresPrivilege": step.requires_privilege, "setenv": dict(step.setenv)}
            for name, step in component.lifecycle.steps.items()
        }
        components.append({
            "name": component.name,
            "version": component.version,
            "builtin": component.builtin,
            "dependencies": {d.name: {"versionRequirement": d.version_requirement,
                                      "dependencyType": d.dependency_type} for d in component.dependencies},
            "setenv": dict(component.lifecycle.setenv),
            "lifecycle": lifecycle,
        })
    return {"components": components}


def render_text(plan: Any, root: str) -> str:
    device = ", ".join(f"{k}={v}" for k, v in plan.device.items())
    lines = [f"plan for {device} (root {root}), in start order:"]
    for index, component in enumerate(plan.components, 1):
        origin = "built-in" if component.builtin else component.recipe.path
        lines.append(f"  {index}. {component.name} {component.version}  ({origin})")
        if component.component_type != "aws.greengrass.generic":
            lines.append(f"       type {component.component_type}: a deploy refuses it (generic components only)")
        for dependency in component.dependencies:
            lines.append(f"       needs {dependency.name} {dependency.version_requirement} "
                         f"({dependency.dependency_type})")
        for name, value in component.lifecycle.setenv.items():
            lines.append(f"       env {name}={value}")
        for name, step in component.lifecycle.steps.items():
            details = [f"timeout {step.effective_timeout}s"] if step.effective_timeout else []
            if step.skipif:
                details.append(f"skip if {step.skipif}")
            if step.setenv:
                details.append("env " + " ".join(f"{k}={v}" for k, v in step.setenv.items()))
            suffix = f" [{'; '.join(details)}]" if details else ""
            script = step.script.strip().replace("\n", "\n" + " " * 11)
            lines.append(f"       {name}{suffix}: {script}")
    return "\n".join(lines)


def run(args: argparse.Namespace, context: Context) -> int:
    from nucleus.commands.deploy import plan_request
    from nucleus.deployment.candidates import plan_deployment
    from nucleus.recipe import read_recipe
    from nucleus.recipe.platform import detect_platform

    for path in args.paths:  # the schema check `validate` does, before planning
        result = read_recipe(path, schema=True)
        if result.recipe is None:
            from nucleus.recipe import RecipeError

            raise RecipeError(result.diagnostics)
    layout, config = context.layout, context.config
    plan = plan_deployment(plan_request(args), layout, config, detect_platform(config.platform_override))
    for warning in plan.warnings:
        print(warning, file=sys.stderr)
    if args.json:
        print(json.dumps(plan_json(plan), indent=2, sort_keys=True))
    else:
        print(render_text(plan, str(layout.path)))
    return 0
