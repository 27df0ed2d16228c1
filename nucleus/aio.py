"""asyncio, imported without its TLS support.

asyncio imports `ssl` (OpenSSL: about 4 MB of resident memory and 15 ms of start-up here) only to offer
TLS on its streams, which the nucleus never uses: the token exchange service serves plain HTTP on
loopback, and its upstream client is `requests` on a worker thread. asyncio copes with a missing `ssl`
(`import ssl` in a try block), so the kernel's commands import it through `load()` first. `ssl` itself
stays importable afterwards for whoever needs it.
"""

from __future__ import annotations

import importlib
import sys


def load() -> None:
    """Import asyncio (once) with `ssl` hidden from it; a no-op if either is already imported."""
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]  # `import ssl` raises ImportError meanwhile
    try:
        importlib.import_module("asyncio")
    finally:
        del sys.modules["ssl"]
