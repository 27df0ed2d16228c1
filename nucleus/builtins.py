"""Components built into the nucleus: `aws.greengrass.Nucleus` and `aws.greengrass.TokenExchangeService`.

They resolve like any component, appear in `list` when a deployment needs them, and run without a recipe.
Each brings its own preflight check — run when a deployment that needs it is planned, so that a bad setting
is exit 2 before anything runs — and its own service (the nucleus itself is a plain `BuiltinService`).
Their code is imported only when a deployment needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from nucleus.config import NUCLEUS, TES, NucleusConfig

if TYPE_CHECKING:
    from nucleus.lifecycle.builtin import BuiltinHost
    from nucleus.lifecycle.service import ComponentSpec, Service

TES_VERSION = "2.0.3"  # the current public token exchange service: recipes ask for ^2.0.0
BUILTIN_NAMES = frozenset({NUCLEUS, TES})


class Builtin(NamedTuple):
    name: str
    version: str
    service: Callable[[ComponentSpec, BuiltinHost], Service]
    preflight: Callable[[NucleusConfig], None] | None = None  # raises a NucleusError on a bad setting


def builtin_versions(config: NucleusConfig) -> dict[str, str]:
    """The version each built-in presents to dependency resolution."""
    return {NUCLEUS: config.nucleus_version, TES: TES_VERSION}


def _plain(spec: ComponentSpec, host: BuiltinHost) -> Service:
    from nucleus.lifecycle.builtin import BuiltinService

    return BuiltinService(spec, host)


def _token_exchange(spec: ComponentSpec, host: BuiltinHost) -> Service:
    from nucleus.tes.service import TokenExchangeService

    return TokenExchangeService(spec, host)


def _token_exchange_settings(config: NucleusConfig) -> None:
    from nucleus.tes.provider import check_settings

    check_settings(config)


def builtins(config: NucleusConfig) -> dict[str, Builtin]:
    versions = builtin_versions(config)
    return {NUCLEUS: Builtin(NUCLEUS, versions[NUCLEUS], _plain),
            TES: Builtin(TES, versions[TES], _token_exchange, _token_exchange_settings)}
