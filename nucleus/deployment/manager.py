"""The one deployment path: every deployment document, from every source, is run here, one at a time.

A document is queued (recorded QUEUED with its whole text), then run: planned against the deployed set,
checked, imported, applied to the kernel, and followed to its outcome by the rule of its kind — the daemon's
(changed components settled) or the foreground deploy's (every component finished). The deployed set — the
root components and the content, by digest, of every component — changes only when a deployment succeeds,
in the same transaction as its outcome. A failure leaves it as it was: with `ROLLBACK` the last good
content runs again at once; with `DO_NOTHING` what failed stays until the next deployment or start, which
restore the last good set. A nucleus that stops mid-way marks the interrupted deployment FAILED at its next
start, restores the last good set, and runs what was still queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nucleus.config import NucleusConfig
from nucleus.deployment.apply import Deployer
from nucleus.deployment.model import Document, FailurePolicy, Result, Status
from nucleus.deployment.outcome import follow_foreground, needed_by, wait_settled
from nucleus.deployment.plan import KeptRoot, Plan, PlanRequest
from nucleus.deployment.status import StatusKeeper
from nucleus.errors import FailedError, NotFoundError, NucleusError
from nucleus.lifecycle.kernel import Kernel
from nucleus.paths import RootLayout
from nucleus.state import RootRecord
from nucleus.state import State as StateDB

Progress = Callable[[dict[str, Any]], None]  # notes and warnings for whoever follows the deployment


def _quiet(_: dict[str, Any]) -> None:
    pass


class DeploymentManager:
    def __init__(self, kernel: Kernel, deployer: Deployer, status: StatusKeeper, state: StateDB,
                 layout: RootLayout, config: NucleusConfig) -> None:
        self.kernel, self.deployer, self.status, self.state = kernel, deployer, status, state
        self.layout, self.config = layout, config
        self._running = asyncio.Lock()  # one deployment at a time

    @property
    def busy(self) -> bool:
        return self._running.locked()

    async def submit(self, document: Document, progress: Progress = _quiet) -> Result:
        """Queue `document`, run it when the ones before it are done, and answer how it ended."""
        deployment_id = self.status.queue(document)
        progress({"event": "deployment", "id": deployment_id})
        if self._running.locked():
            progress({"event": "note", "text": "waiting for the deployment in progress to finish"})
        async with self._running:
            return await self._run(deployment_id, document, progress)

    async def recover(self) -> list[tuple[int, Document]]:
        """At start: what a crash interrupted is FAILED and the last good set runs again; returns what was
        still queued, for `run_queued` once the nucleus serves."""
        queued = self.status.recover()
        await self.restore()
        return queued

    async def run_queued(self, queued: list[tuple[int, Document]]) -> None:
        for deployment_id, document in queued:
            async with self._running:
                await self._run(deployment_id, document, _quiet)

    async def _run(self, deployment_id: int, document: Document, progress: Progress) -> Result:
        previous = self.state.roots()
        self.status.start(deployment_id, document, previous)
        try:
            if document.supervise:
                result = await self._foreground(deployment_id, document, progress)
            elif document.remove and not document.recipes:
                result = await self._remove(deployment_id, document, previous)
            else:
                result = await self._deploy(deployment_id, document, previous, progress)
        except NucleusError as exc:
            result = Result(deployment_id, Status.FAILED, str(exc), tuple(exc.lines()), exc.kind)
            self.status.finish(document, result)
        except BaseException as exc:
            cause = f"internal error: {type(exc).__name__}: {exc}" if isinstance(exc, Exception) else \
                f"stopped: {type(exc).__name__}"
            self.status.finish(document, Result(deployment_id, Status.FAILED, cause))
            raise
        return result

    # -- the kinds of deployment -------------------------------------------------------------------

    def _request(self, document: Document, kept: list[RootRecord]) -> PlanRequest:
        """Plan against the deployed set: its roots, each read from its last good content."""
        return PlanRequest(
            recipe_paths=tuple(Path(p) for p in document.recipes),
            recipe_dirs=tuple(Path(p) for p in document.recipe_dirs),
            artifacts_dir=Path(document.artifacts_dir) if document.artifacts_dir else None,
            cwd=Path(document.cwd) if document.cwd else self.layout.path,
            kept_roots=tuple(KeptRoot(r.name, r.version) for r in kept),
            preferred={s.name: s.spec.version for s in self.kernel.services.values()},
            pinned=self.state.committed())

    async def _deploy(self, deployment_id: int, document: Document, previous: list[RootRecord],
                      progress: Progress) -> Result:
        kept = [r for r in previous if r.name not in document.remove]
        plan = await self.deployer.plan(self._request(document, kept))
        for warning in plan.warnings:
            progress({"event": "warning", "text": warning})
        committed = self.state.committed()
        applied = await self.deployer.apply(plan, remove_others=True)
        outcome = await wait_settled(self.kernel, applied.changed, needed_by(self.kernel, applied.changed),
                                     self.config.startup_settle_seconds)
        if outcome.ok:
            result = Result(deployment_id, Status.SUCCEEDED, outcome.summary)
            self._commit(document, result, plan, applied.digests)
            self.deployer.prune(plan, {name: {digest, committed.get(name, ("", ""))[1]}
                                       for name, digest in applied.digests.items()})
            return result
        failed = f"deployment {deployment_id} failed: {outcome.summary}"
        if document.failure_policy is FailurePolicy.ROLLBACK:
            progress({"event": "note", "text": f"deployment {deployment_id} failed ({outcome.summary}); rolling back"})
            try:
                await self._restore_set(previous)
            except NucleusError as exc:
                raise FailedError(f"{outcome.summary}; the rollback failed too: {exc}") from None
            restored = ", ".join(f"{r.name} {r.version}" for r in previous) or "nothing"
            result = Result(deployment_id, Status.ROLLED_BACK, outcome.summary,
                            (failed, f"rolled back to the previous set: {restored}"))
        else:
            result = Result(deployment_id, Status.FAILED, outcome.summary, (failed,))
        self.status.finish(document, result)
        return result

    def check_removal(self, names: set[str]) -> None:
        """Refuse removing a component that is not there, or that another one needs (before it is queued)."""
        previous = self.state.roots()
        for name in names:
            if name not in self.kernel.services and name not in {r.name for r in previous}:
                known = ", ".join(sorted(self.kernel.services)) or "none"
                raise NotFoundError(f"no component {name!r} on this nucleus (deployed: {known})",
                                    hint="see `nucleus list`")
            needers = [s for s in self.kernel.services.values() if s.name not in names
                       and name in s.spec.hard_dependencies + s.spec.soft_dependencies]
            if needers:
                listed = ", ".join(f"{s.name} {s.spec.version}" for s in needers)
                raise NucleusError(f"{name} is needed by {listed}", hint="remove those first")

    async def _remove(self, deployment_id: int, document: Document, previous: list[RootRecord]) -> Result:
        names = set(document.remove)
        self.check_removal(names)
        remaining = [r for r in previous if r.name not in names]  # a root that failed to restore goes too
        cause = "removed with `nucleus remove`"
        plan = await self.deployer.plan(self._request(Document(), remaining))
        applied = await self.deployer.apply(plan, remove_others=True, remove_cause=cause)
        leftovers = [name for name in names if name in self.kernel.services]  # a built-in or leftover
        if leftovers:
            await self.deployer.remove(leftovers, cause)
        result = Result(deployment_id, Status.SUCCEEDED, f"removed {', '.join(sorted(names))}")
        self._commit(document, result, plan, applied.digests)
        return result

    async def _foreground(self, deployment_id: int, document: Document, progress: Progress) -> Result:
        """Run exactly the components named and their dependencies here, to their end; the deployed set
        (what `nucleus start` restores) is not changed."""
        request = PlanRequest(recipe_paths=tuple(Path(p) for p in document.recipes),
                              recipe_dirs=tuple(Path(p) for p in document.recipe_dirs),
                              artifacts_dir=Path(document.artifacts_dir) if document.artifacts_dir else None,
                              cwd=Path(document.cwd) if document.cwd else None)
        plan = await self.deployer.plan(request)
        for warning in plan.warnings:
            progress({"event": "warning", "text": warning})
        names = ", ".join(f"{c.name} {c.version}" for c in plan.components if not c.builtin)
        progress({"event": "note", "text": f"nucleus: deploying {names} (root {self.layout.path})", "out": True})
        try:
            await self.deployer.apply(plan)
            outcome = await follow_foreground(self.kernel, [c.name for c in plan.components if not c.builtin])
        except BaseException:
            await self.kernel.stop_all("the deployment failed")
            raise
        status = Status.SUCCEEDED if outcome.ok else Status.FAILED
        result = Result(deployment_id, status, outcome.summary, signal=outcome.signal)
        self.status.finish(document, result)
        return result

    # -- the deployed set ------------------------------------------------------------------------

    def _commit(self, document: Document, result: Result, plan: Plan, digests: dict[str, str]) -> None:
        """Success: the plan's roots and every component's content become the deployed set."""
        roots = []
        for name in plan.roots:
            component = plan.component(name)
            path = self.deployer.store.stored_versions(name).get(component.version)
            roots.append(RootRecord(name, component.version, str(path or "")))
        contents = [(c.name, c.version, digests[c.name]) for c in plan.components if not c.builtin]
        self.status.finish(document, result, roots, contents)

    async def restore(self) -> None:
        """Start the deployed set again, from install and from its last good content (as Greengrass does on
        each launch); components stopped with `nucleus stop` are shown as stopped, without running."""
        roots = self.state.roots()
        if not roots:
            return
        stopped = frozenset(r.name for r in self.state.components() if r.stopped)
        try:
            plan = await self.deployer.plan(self._request(Document(), roots))
            applied = await self.deployer.apply(plan, hold=stopped)
        except NucleusError as exc:
            self.kernel.nucleus_log.event("restore-failed", level="ERROR", error=str(exc))
            return
        for name in stopped & set(self.kernel.services):
            await self.kernel.services[name].stop("stopped with `nucleus stop`")
        self.kernel.nucleus_log.event("restored", components=len(plan.components), started=len(applied.changed))

    async def _restore_set(self, roots: list[RootRecord]) -> None:
        """Make the deployed set (`roots`, at their last good content) what runs again: a rollback."""
        plan = await self.deployer.plan(self._request(Document(), roots))
        applied = await self.deployer.apply(plan, remove_others=True)
        await wait_settled(self.kernel, applied.changed, needed_by(self.kernel, applied.changed),
                           self.config.startup_settle_seconds)
