"""The one error a configuration operation raises: what is wrong, at which JSON pointer, and a stable code.

It is a `NucleusError`, so the CLI and the IPC layer treat it like every other user-facing problem. The
pointer is kept apart from the message so that callers (a deployment, an IPC request) can say whose
configuration it is without parsing text.
"""

from __future__ import annotations

from nucleus.errors import Kind, NucleusError


class ConfigurationError(NucleusError):
    """A configuration value, key, pointer or request that cannot be used.

    `code` is one of: invalid-pointer, reset-list-element, invalid-value, invalid-key, duplicate-key,
    too-deep, not-a-map, not-found, restricted-key.
    """

    def __init__(self, message: str, *, pointer: str, code: str, hint: str | None = None,
                 kind: Kind = Kind.INVALID) -> None:
        super().__init__(message, where=f"configuration '{pointer}'", hint=hint, kind=kind)
        self.pointer = pointer
        self.code = code
