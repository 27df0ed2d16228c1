"""SHA-256 for the nucleus's own bookkeeping, without loading OpenSSL.

`hashlib` loads OpenSSL's libcrypto for every algorithm, about 4 MB of resident memory for a daemon that
only needs to fingerprint recipes. CPython's built-in SHA-256 gives the same digests; `hashlib` is still
used where speed on large files matters (artifact contents) or another algorithm is asked for.
"""

from __future__ import annotations

from typing import Protocol


class Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...

    def digest(self) -> bytes: ...


def sha256(data: bytes = b"") -> Hash:
    """A SHA-256 hash object (`update`, `hexdigest`, `digest`)."""
    try:
        from _sha256 import sha256 as builtin  # type: ignore[import-not-found, unused-ignore]  # 3.10, 3.11
    except ImportError:
        try:
            from _sha2 import sha256 as builtin  # type: ignore[import-not-found, no-redef, unused-ignore]
        except ImportError:
            from hashlib import sha256 as builtin  # type: ignore[no-redef, unused-ignore]
    hashed: Hash = builtin(data)
    return hashed
