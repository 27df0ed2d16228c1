"""The token exchange service: AWS credentials for components, from the device certificate.

`provider` talks to the AWS IoT credentials provider (blocking, mutual TLS), `cache` keeps one set of
credentials fresh on the nucleus's asyncio loop, `server` is the loopback endpoint that AWS SDKs call.
See docs/tes.md.
"""

from nucleus.tes.cache import CacheStatistics, CredentialCache
from nucleus.tes.provider import (
    Credentials,
    CredentialsProvider,
    ProviderError,
    check_settings,
)
from nucleus.tes.server import (
    PATH,
    CredentialServer,
    CredentialSource,
    ServerStatistics,
    TokenSet,
)

__all__ = [
    "PATH",
    "CacheStatistics",
    "CredentialCache",
    "CredentialServer",
    "CredentialSource",
    "Credentials",
    "CredentialsProvider",
    "ProviderError",
    "ServerStatistics",
    "TokenSet",
    "check_settings",
]
