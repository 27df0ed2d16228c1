"""Components built into the nucleus: `aws.greengrass.Nucleus` and `aws.greengrass.TokenExchangeService`.

They resolve like any component, appear in `list` when a deployment needs them, and run without a recipe.
"""

from __future__ import annotations

from collections.abc import Callable

from nucleus.config import NUCLEUS, TES, NucleusConfig

TES_VERSION = "2.0.3"  # the current public token exchange service: recipes ask for ^2.0.0
BUILTIN_NAMES = frozenset({NUCLEUS, TES})


def builtin_versions(config: NucleusConfig) -> dict[str, str]:
    """The version each built-in presents to dependency resolution."""
    return {NUCLEUS: config.nucleus_version, TES: TES_VERSION}


def builtin_factories(config: NucleusConfig) -> dict[str, Callable]:
    """Services for built-ins that do more than exist (the nucleus itself is a plain `BuiltinService`)."""
    def token_exchange(spec, kernel):  # noqa: ANN001, ANN202 - imported only when a deployment needs it
        from nucleus.tes.service import TokenExchangeService

        return TokenExchangeService(spec, kernel)

    return {TES: token_exchange}
