"""The deployed components' tokens (`SVCUID`): who is who, for the token exchange service and IPC.

Lookups compare the candidate with every known token using `hmac.compare_digest` and never stop early, so
the time taken says nothing about which token, or how much of one, matched.
"""

from __future__ import annotations

import hmac


class Tokens:
    def __init__(self) -> None:
        self._owners: dict[bytes, str] = {}

    @staticmethod
    def _bytes(token: str) -> bytes:
        return token.encode("utf-8", "surrogateescape")

    def add(self, token: str, component: str) -> None:
        if not token:
            raise ValueError("an empty token would let any request in")
        self._owners[self._bytes(token)] = component

    def remove(self, token: str) -> None:
        self._owners.pop(self._bytes(token), None)

    def owner(self, token: object) -> str | None:
        """The component whose token this is, or None; constant time in the token's content."""
        if not isinstance(token, str):
            return None
        candidate, found = self._bytes(token), None
        for known, component in self._owners.items():
            if hmac.compare_digest(known, candidate):
                found = component
        return found

    def __contains__(self, token: object) -> bool:
        return self.owner(token) is not None

    def __len__(self) -> int:
        return len(self._owners)
