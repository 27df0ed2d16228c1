"""Components built into the nucleus: `aws.greengrass.Nucleus` (and, with its issue, the token exchange
service). They resolve like any component, appear in `list`, and run without a recipe."""

from __future__ import annotations

from collections.abc import Callable

from nucleus.config import NUCLEUS, NucleusConfig

BUILTIN_NAMES = frozenset({NUCLEUS})


def builtin_versions(config: NucleusConfig) -> dict[str, str]:
    """The version each built-in presents to dependency resolution."""
    return {NUCLEUS: config.nucleus_version}


def builtin_factories(config: NucleusConfig) -> dict[str, Callable]:
    """Services for built-ins that do more than exist (the nucleus itself is a plain `BuiltinService`)."""
    return {}
