"""`aws.greengrass.TokenExchangeService` as a built-in component of the kernel.

It starts when a deployed component depends on it, and is RUNNING only once its loopback endpoint serves:
from then on every step gets `AWS_CONTAINER_CREDENTIALS_FULL_URI`. Fetching (the provider client and its
cache) and serving (the HTTP endpoint) stay separate; this module only wires them to the kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nucleus.lifecycle.builtin import BuiltinHost, BuiltinService
from nucleus.lifecycle.launch import AWS_CREDENTIAL_VARIABLES
from nucleus.lifecycle.service import ComponentSpec, StepFailed
from nucleus.lifecycle.states import State

if TYPE_CHECKING:
    from nucleus.tes.cache import CredentialCache
    from nucleus.tes.server import CredentialServer

CREDENTIALS_URI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"


class TokenExchangeService(BuiltinService):
    def __init__(self, spec: ComponentSpec, host: BuiltinHost) -> None:
        super().__init__(spec, host)
        self._cache: CredentialCache | None = None
        self._server: CredentialServer | None = None
        self._withdraw: Callable[[], None] | None = None  # takes the endpoint out of steps' environment

    def _log_event(self, event: str, **fields: object) -> None:
        """Events of the cache and the server, into both logs; answered requests only when refused."""
        if event == "tes-request" and fields.get("status") == 200:
            return
        self.builtin_host.nucleus_log.event(event, "INFO", component=self.name, **fields)
        details = " ".join(f"{key}={value}" for key, value in fields.items() if value is not None)
        self.log.event(f"{event} {details}".strip())

    async def serve(self) -> str:
        from nucleus.errors import NucleusError
        from nucleus.tes.cache import CredentialCache
        from nucleus.tes.provider import CredentialsProvider, check_settings
        from nucleus.tes.server import CredentialServer

        host = self.builtin_host
        config = host.config
        try:
            check_settings(config)
        except NucleusError as exc:
            raise StepFailed(State.STARTING, str(exc)) from None
        inherited = [name for name in AWS_CREDENTIAL_VARIABLES if name in host.base_environment]
        if inherited:
            self._log_event("tes-warning", inherited=",".join(inherited),
                            note="these would win over the token exchange service in every AWS SDK; "
                                 "unset them in the nucleus's environment")
        provider = CredentialsProvider.from_config(config)
        self._cache = CredentialCache(provider.fetch, retry_override=config.credential_retry_in_sec,
                                      log=self._log_event)
        self._cache.start()
        self._server = CredentialServer(self._cache, host.tokens.__contains__, port=config.tes_port,
                                        log=self._log_event)
        try:
            await self._server.start()
        except NucleusError as exc:
            await self.close()
            raise StepFailed(State.STARTING, str(exc)) from None
        url = self._server.url
        self._withdraw = host.contribute_environment(lambda owner: {CREDENTIALS_URI: url})
        return f"serving credentials on {url}"

    async def close(self) -> None:
        if self._withdraw is not None:
            self._withdraw()
            self._withdraw = None
        if self._server is not None:
            await self._server.close()
            self._server = None
        if self._cache is not None:
            await self._cache.close()
            self._cache = None
