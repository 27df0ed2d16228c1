"""The credential cache: one upstream request at a time, refreshed ahead, errors remembered.

Why each rule exists:
- single flight: a burst of components starting together must not become a burst of provider calls
  (the provider throttles with 429);
- refresh ahead: a caller should never wait on the cloud while the cached credentials are good;
- at least 15 minutes left when the lifetime allows: boto3 refetches before *every* AWS call once fewer
  than 15 minutes remain, so credentials handed out closer to expiry multiply local requests;
- never within 5 minutes of expiry: a client needs time to use them (boto3's mandatory refresh is 10 min);
- errors cached (4xx 120 s, 5xx 60 s, unreachable 300 s, or `credentialRetryInSec`): a broken setup
  must not hammer the provider, yet recovers by itself; meanwhile good credentials are still served.

Expiry is wall-clock time (the provider's timestamp), so `clock` is wall-clock too; it is injectable so
tests move time without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from nucleus.tes.provider import Credentials, ProviderError

MIN_REMAINING = 5 * 60.0  # never hand out credentials closer to expiry than this
PREFERRED_REMAINING = 15 * 60.0  # boto3's advisory refresh window
REFRESH_AHEAD = 20 * 60.0  # start refreshing this long before expiry: 5 min of slack over 15
MIN_REFRESH_INTERVAL = 5 * 60.0  # never refresh more often than this (short lifetimes)
ERROR_TTL = {"client": 120.0, "server": 60.0, "connection": 300.0}
POLL_INTERVAL = 60.0  # the background task re-reads the clock at least this often (clock jumps)
MIN_BACKGROUND_RETRY = 10.0  # the background task never retries faster, even with credentialRetryInSec 0


@dataclass(frozen=True)
class CacheStatistics:
    """A snapshot for tests and `list --json`; never a secret."""

    upstream_requests: int
    last_error_status: int | None
    last_error_reason: str | None
    expiration: datetime | None
    fetching: bool


def refresh_time(fetched_at: float, expires_at: float) -> float:
    """When to start replacing credentials fetched at `fetched_at` that expire at `expires_at`."""
    lifetime = expires_at - fetched_at
    return max(expires_at - REFRESH_AHEAD, fetched_at + min(lifetime / 2, MIN_REFRESH_INTERVAL))


def _no_log(event: str, **fields: Any) -> None:
    pass


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class CredentialCache:
    """Credentials for the local endpoint; `get()` answers from memory whenever it can.

    `fetch` is the blocking upstream call (`CredentialsProvider.fetch`), run in a worker thread.
    `log(event, **fields)` receives events such as `tes-credentials-fetched`; fields never hold secrets.
    """

    def __init__(self, fetch: Callable[[], Credentials], *, retry_override: float | None = None,
                 clock: Callable[[], float] = time.time, log: Callable[..., None] | None = None,
                 poll_interval: float = POLL_INTERVAL) -> None:
        self._fetch = fetch
        self._retry_override = retry_override
        self._clock = clock
        self._log = log or _no_log
        self._poll_interval = poll_interval
        self._creds: Credentials | None = None
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._error: ProviderError | None = None
        self._error_since = 0.0
        self._error_until = 0.0
        self._inflight: asyncio.Task[Credentials | ProviderError] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._closed = False
        self._upstream_requests = 0

    # -- asking for credentials ------------------------------------------------------------------------

    def get_nowait(self) -> Credentials | None:
        """Credentials if they can be handed out now; raises the cached error; None means "await get()".

        Starts a background refresh when one is due, without waiting for it (so call it on the loop).
        """
        now = self._clock()
        creds = self._creds
        if creds is not None and now < self._expires_at - MIN_REMAINING:
            if (now >= self._refresh_at and self._inflight is None and not self._closed
                    and not self._error_active(now)):
                self._start_fetch("refresh-ahead")
            return creds
        if self._error is not None and self._error_active(now):
            # The same error is raised for every request of its TTL: drop the old traceback each time,
            # or the frames of every raise would pile up on it.
            raise self._error.with_traceback(None)
        return None

    async def get(self) -> Credentials:
        """Credentials with more than 5 minutes left; waits on the (single) upstream request if needed."""
        creds = self.get_nowait()
        if creds is not None:
            return creds
        if self._closed:
            raise _stopping()
        task = self._inflight or self._start_fetch("request")
        await asyncio.wait({task})  # our own cancellation propagates; the fetch's does not
        if task.cancelled():
            raise _stopping()
        outcome = task.result()
        if isinstance(outcome, ProviderError):
            raise outcome.with_traceback(None)
        return outcome

    async def wait_idle(self) -> None:
        """Return once no upstream request is in flight (tests, orderly shutdown)."""
        while self._inflight is not None:
            await asyncio.wait({self._inflight})

    def statistics(self) -> CacheStatistics:
        creds, error = self._creds, self._error
        return CacheStatistics(
            upstream_requests=self._upstream_requests,
            last_error_status=error.status if error is not None else None,
            last_error_reason=error.reason if error is not None else None,
            expiration=creds.expiration if creds is not None else None,
            fetching=self._inflight is not None,
        )

    # -- the background refresher -------------------------------------------------------------------

    def start(self) -> None:
        """Fetch now (so the first caller need not wait) and keep refreshing ahead of expiry."""
        if self._keeper is None and not self._closed:
            self._keeper = asyncio.get_running_loop().create_task(self._keep_fresh())

    async def close(self) -> None:
        """Stop the background task and any fetch in flight (the worker thread ends at its timeout)."""
        self._closed = True
        tasks = [task for task in (self._keeper, self._inflight) if task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._keeper = None
        self._inflight = None

    async def _keep_fresh(self) -> None:
        if self._creds is None and self._inflight is None:
            self._start_fetch("start")
        while True:
            if self._inflight is not None:
                await asyncio.wait({self._inflight})
                continue
            now = self._clock()
            delay = self._background_delay(now)
            if delay is not None and delay <= 0:
                self._start_fetch("refresh-ahead")
                continue
            await asyncio.sleep(self._poll_interval if delay is None else min(delay, self._poll_interval))

    def _background_delay(self, now: float) -> float | None:
        """Seconds until a background refresh is due; None when there is nothing to keep fresh.

        Only credentials still in use are kept fresh; with none (or an expired set), fetching waits for
        the next request, so a broken setup costs one provider call per error TTL only when asked.
        """
        if self._creds is None or now >= self._expires_at:
            return None
        due = self._refresh_at
        if self._error is not None:
            due = max(due, self._error_until, self._error_since + MIN_BACKGROUND_RETRY)
        return due - now

    # -- one upstream request -----------------------------------------------------------------------

    def _error_active(self, now: float) -> bool:
        # A clock set back before the error was seen ends it: better one retry than a stuck error.
        return self._error is not None and self._error_since <= now < self._error_until

    def _start_fetch(self, trigger: str) -> asyncio.Task[Credentials | ProviderError]:
        task = asyncio.get_running_loop().create_task(self._run_fetch(trigger))
        self._inflight = task
        return task

    async def _run_fetch(self, trigger: str) -> Credentials | ProviderError:
        self._upstream_requests += 1
        try:
            try:
                creds = await asyncio.to_thread(self._fetch)
            except ProviderError as exc:
                error = exc
            except Exception as exc:  # a bug in the fetch: keep serving, report it once
                error = ProviderError(500, f"the credentials fetch failed ({type(exc).__name__})",
                                      "an internal error in the nucleus; rerun with --debug", reason="internal")
            else:
                now = self._clock()
                expires_at = creds.expiration.timestamp()
                if expires_at - now > MIN_REMAINING:
                    self._accept(creds, now, expires_at, trigger)
                    return creds
                error = ProviderError(
                    502, f"the credentials provider returned credentials that expire at {_iso(expires_at)}, "
                    f"within 5 minutes of this device's clock ({_iso(now)})",
                    "check the device's clock (NTP)", reason="bad-response")
            self._reject(error, trigger)
            return error
        finally:
            if self._inflight is asyncio.current_task():
                self._inflight = None

    def _accept(self, creds: Credentials, now: float, expires_at: float, trigger: str) -> None:
        self._creds, self._expires_at = creds, expires_at
        self._refresh_at = refresh_time(now, expires_at)
        self._error = None
        self._log("tes-credentials-fetched", trigger=trigger, expiration=_iso(expires_at),
                  seconds_left=int(expires_at - now), refresh_at=_iso(self._refresh_at))

    def _reject(self, error: ProviderError, trigger: str) -> None:
        now = self._clock()
        ttl = self._retry_override if self._retry_override is not None else ERROR_TTL[error.retry_class]
        self._error, self._error_since, self._error_until = error, now, now + ttl
        serving = self._creds is not None and now < self._expires_at - MIN_REMAINING
        self._log("tes-credentials-error", trigger=trigger, status=error.status, reason=error.reason,
                  message=error.describe(), retry_in=ttl, serving_cached=serving)


def _stopping() -> ProviderError:
    return ProviderError(503, "the token exchange service is stopping", "retry once the nucleus runs again",
                         reason="stopping")
