"""Which manifest of a recipe this device runs: device detection and Greengrass's matching rules.

Matching is pure: `select_manifest(recipe, device)` with the device's attributes passed in.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

from nucleus.errors import NucleusError
from nucleus.recipe.model import Manifest, Platform, Recipe

# The runtime attribute lets recipes written for both Greengrass runtimes pick their manifest; nucleus
# runs everything the classic nucleus runs, so it presents itself as that runtime.
RUNTIME = "aws_nucleus_classic"
_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "aarch64", "arm64": "aarch64",
                  "i386": "x86", "i686": "x86", "x86": "x86"}


def detect_platform(override: Mapping[str, str] | None = None) -> dict[str, str]:
    """The device's platform attributes, with the config's `platformOverride` applied last."""
    os_name = {"linux": "linux", "darwin": "darwin", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = os.uname().machine.lower() if hasattr(os, "uname") else os.environ.get("PROCESSOR_ARCHITECTURE", "").lower()
    architecture = _ARCHITECTURES.get(machine, "arm" if machine.startswith("arm") else machine)
    attributes = {"os": os_name, "architecture": architecture, "runtime": RUNTIME}
    if architecture == "arm":
        attributes["architecture.detail"] = machine
    for key, value in (override or {}).items():
        known = key.lower() if key.lower() in ("os", "architecture", "architecture.detail") else key
        attributes[known] = value
    return attributes


def describe_device(device: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in device.items())


def platform_matches(platform: Platform, device: Mapping[str, str]) -> bool:
    """Greengrass's rule: every attribute the manifest names must match the device's value."""
    for key, wanted in platform.attributes.items():
        actual = device.get(key)
        if wanted == "*" or (key in ("os", "architecture") and wanted in ("all", "any")):
            continue
        if len(wanted) >= 2 and wanted.startswith("/") and wanted.endswith("/"):
            if actual is None or not _regex(wanted).fullmatch(actual):
                return False
        elif actual != wanted:
            return False
    return True


def _regex(wanted: str) -> re.Pattern[str]:
    try:
        return re.compile(wanted[1:-1])
    except re.error as exc:
        raise NucleusError(f"the platform pattern {wanted} is not a valid regular expression ({exc})",
                           hint="fix the pattern between the slashes") from None


def select_manifest(recipe: Recipe, device: Mapping[str, str]) -> Manifest:
    """The first manifest whose platform matches the device; an error naming both sides otherwise."""
    for manifest in recipe.manifests:
        if platform_matches(manifest.platform, device):
            return manifest
    offered = "; ".join(f"manifest {i + 1}: {m.platform.describe()}" for i, m in enumerate(recipe.manifests))
    raise NucleusError(
        f"{recipe.ident} has no manifest for this device ({describe_device(device)}); it offers {offered}",
        where=recipe.path or None,
        hint="add a manifest for this platform, or set platformOverride in the nucleus config",
    )
