"""Applying a plan to the kernel: preflight checks, the store, services created, replaced or removed.

The `Deployer` is the part of a deployment that changes things — the manager decides when and what. A
component's new content is imported into the store without being made active; it becomes active just
before its service (re)installs, once its old instance has stopped (`Kernel.prepare` → `Store.activate`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from nucleus.builtins import Builtin
from nucleus.config import NucleusConfig
from nucleus.deployment.candidates import plan_deployment
from nucleus.deployment.plan import Plan, PlanRequest
from nucleus.errors import NucleusError
from nucleus.lifecycle.kernel import Kernel
from nucleus.lifecycle.service import ComponentSpec, Service
from nucleus.paths import RootLayout
from nucleus.recipe.model import GENERIC
from nucleus.state import State as StateDB
from nucleus.store import Store
from nucleus.unarchive import UnpackLimits


class Applied(NamedTuple):
    changed: list[str]  # the components that (re)start
    digests: dict[str, str]  # every component of the plan → the content it runs


def refuse_unsupported(plan: Plan) -> None:
    """Only generic components run here; others validate and plan, but a deploy refuses them."""
    reserved = [c for c in plan.components if c.name.lower() == "nucleus"]
    if reserved:
        raise NucleusError(f"a component cannot be named '{reserved[0].name}' here",
                           where=reserved[0].recipe.path if reserved[0].recipe else None,
                           hint="logs/nucleus.log is the nucleus's own log; choose another name")
    others = [c for c in plan.components if not c.builtin and c.component_type != GENERIC]
    if others:
        listed = ", ".join(f"{c.name} ({c.component_type})" for c in others)
        raise NucleusError(f"nucleus runs generic components only; this deployment has {listed}",
                           hint="Lambda, plugin and nucleus components need the classic Greengrass nucleus")


def import_plan(plan: Plan, store: Store) -> dict[str, str]:
    """Put every component's recipe and artifacts into the store (not yet active); returns each digest."""
    digests = {}
    for component in plan.components:
        if component.recipe is None or component.manifest is None:
            digests[component.name] = f"built-in:{component.version}"
            continue
        digests[component.name] = store.import_component(component.recipe, component.manifest,
                                                         component.artifact_source, activate=False)
        store.layout.work(component.name).mkdir(mode=0o700, parents=True, exist_ok=True)
    store.sync()  # durable before any state refers to it
    return digests


class Deployer:
    """Plans and applies deployments to one kernel (the same code for the daemon and the foreground)."""

    def __init__(self, kernel: Kernel, layout: RootLayout, config: NucleusConfig, state: StateDB,
                 device: Mapping[str, str], builtins: Mapping[str, Builtin], *, offload: bool = True) -> None:
        self.kernel, self.layout, self.config, self.state = kernel, layout, config, state
        self.device = device
        self.builtins = dict(builtins)
        self.store = Store(layout, UnpackLimits.of(config))
        # The daemon reads and copies files on a worker thread, so that other clients stay served; a
        # foreground deploy has nothing else to serve and does it in line (no thread to start).
        self.offload = offload
        kernel.activate_content = self._prepare

    async def _blocking(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(function, *args) if self.offload else function(*args)

    def _prepare(self, spec: ComponentSpec) -> None:
        """Just before a component (re)installs: make its content the active one."""
        if not spec.builtin:
            self.store.activate(spec.name, spec.version, spec.digest)

    def make_service(self, spec: ComponentSpec) -> Service:
        builtin = self.builtins.get(spec.name) if spec.builtin else None
        if builtin is not None:
            return builtin.service(spec, self.kernel)
        return Service(spec, self.kernel, self.kernel.new_log(spec.name), self.kernel.policy)

    def _plan(self, request: PlanRequest) -> Plan:
        plan = plan_deployment(request, self.layout, self.config, self.device, self.store)
        refuse_unsupported(plan)
        for component in plan.components:
            builtin = self.builtins.get(component.name) if component.builtin else None
            if builtin is not None and builtin.preflight is not None:
                builtin.preflight(self.config)  # a bad setting: exit 2 before anything runs
        return plan

    async def plan(self, request: PlanRequest) -> Plan:
        """Gather, resolve, render and check (file reads, so off the loop in the daemon)."""
        return await self._blocking(self._plan, request)  # type: ignore[no-any-return]

    def specs_for(self, plan: Plan, digests: Mapping[str, str]) -> list[ComponentSpec]:
        return [ComponentSpec(name=c.name, version=c.version, lifecycle=c.lifecycle,
                              hard_dependencies=c.hard_dependencies, soft_dependencies=c.soft_dependencies,
                              work_dir=self.layout.work(c.name), digest=digests[c.name], builtin=c.builtin,
                              configuration=c.recipe.default_configuration if c.recipe else {},
                              bootstrapped=self.state.is_bootstrapped(c.name, c.version, digests[c.name]))
                for c in plan.components]

    async def apply(self, plan: Plan, *, remove_others: bool = False, hold: frozenset[str] = frozenset(),
                    remove_cause: str = "no longer part of the deployment") -> Applied:
        """Import and start what the plan needs.

        With `remove_others`, services the plan no longer needs are stopped, uninstalled and forgotten; new
        services in `hold` are created but not started.
        """
        digests = await self._blocking(import_plan, plan, self.store)
        changed = await self.kernel.deploy(self.specs_for(plan, digests), self.make_service, hold,
                                           frozenset(plan.requested))
        if remove_others:
            wanted = {c.name for c in plan.components}
            await self.remove([name for name in self.kernel.services if name not in wanted], remove_cause)
        return Applied(changed, digests)

    async def remove(self, names: Iterable[str], cause: str) -> None:
        await self.kernel.remove(list(names), cause)

    def prune(self, plan: Plan, keep: Mapping[str, set[str]]) -> None:
        """The store keeps, per component, the contents in `keep` (the new and the previous good one)."""
        for component in plan.components:
            if not component.builtin:
                self.store.prune(component.name, keep.get(component.name, set()))
