"""Everything that happens to a service is an event on one small bus, with scoped subscriptions.

Services publish (through their host); the state database's recorder, the nucleus log, a daemon client
following a deployment, and later IPC (component updates), the configuration store and resource control
subscribe — each to the kinds of events and the components it cares about. Events are frozen values: a
subscriber reads them, it cannot change what other subscribers see.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Union

from nucleus.lifecycle.states import State


@dataclass(frozen=True)
class ServiceSnapshot:
    """What can be said of a service at one instant (what `list` and the state database show)."""

    name: str
    version: str
    state: State
    builtin: bool
    digest: str
    cause: str
    stopped_by_user: bool
    token: str
    configuration: Any


@dataclass(frozen=True)
class _OfService:
    service: ServiceSnapshot

    @property
    def component(self) -> str:
        return self.service.name


@dataclass(frozen=True)
class ServiceAdded(_OfService):
    pass


@dataclass(frozen=True)
class ServiceUpdated(_OfService):
    """A change that is not a transition: a new spec with the same digest, held, released."""


@dataclass(frozen=True)
class ServiceRemoved:
    component: str


@dataclass(frozen=True)
class StateChanged(_OfService):
    old: State
    new: State
    cause: str


@dataclass(frozen=True)
class StepStarted:
    component: str
    step: str
    pid: int
    pgid: int
    token: str


@dataclass(frozen=True)
class StepReaped:
    """A step's leader is gone: its process group can no longer be vouched for."""

    component: str
    pid: int
    pgid: int


@dataclass(frozen=True)
class OrphanAdopted:
    component: str
    token: str
    pid: int
    started: float


@dataclass(frozen=True)
class OrphanGone:
    component: str
    pid: int
    started: float


@dataclass(frozen=True)
class Bootstrapped:
    component: str
    version: str
    digest: str


@dataclass(frozen=True)
class Problem:
    """Something the nucleus's own log must say about a component (a failed uninstall, a bug)."""

    component: str
    what: str
    detail: str
    level: str = "ERROR"


Event = Union[ServiceAdded, ServiceUpdated, ServiceRemoved, StateChanged, StepStarted, StepReaped, OrphanAdopted,
              OrphanGone, Bootstrapped, Problem]
Listener = Callable[[Any], None]


class Subscription:
    """One subscriber's interest; `close()` (or leaving its `with` block) ends it."""

    def __init__(self, bus: Bus, listener: Listener, kinds: tuple[type, ...] | None,
                 components: frozenset[str] | None) -> None:
        self._bus, self.listener, self.kinds, self.components = bus, listener, kinds, components

    def wants(self, event: Event) -> bool:
        if self.kinds is not None and not isinstance(event, self.kinds):
            return False
        return self.components is None or event.component in self.components

    def close(self) -> None:
        self._bus._subscriptions.pop(self, None)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Bus:
    """Delivers each event to every subscription that wants it, in the order they subscribed."""

    def __init__(self) -> None:
        self._subscriptions: dict[Subscription, None] = {}  # a dict keeps the order they subscribed in

    def subscribe(self, listener: Listener, *, kinds: tuple[type, ...] | None = None,
                  components: Collection[str] | None = None) -> Subscription:
        subscription = Subscription(self, listener, kinds, frozenset(components) if components is not None else None)
        self._subscriptions[subscription] = None
        return subscription

    def publish(self, event: Event) -> None:
        for subscription in list(self._subscriptions):
            if subscription.wants(event):
                subscription.listener(event)
