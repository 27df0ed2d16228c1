"""The status keeper: the one writer of deployment records, and who tells each source how its went.

Every state a deployment passes through — QUEUED, IN_PROGRESS, then SUCCEEDED, FAILED or ROLLED_BACK — is
written here and nowhere else, the set it leaves deployed in the same transaction as its outcome. Sources
listen for their own deployments and translate (the CLI waits on its result; IPC and cloud jobs will map
statuses to their own shapes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from nucleus.deployment.model import Document, Result, Status
from nucleus.state import DeploymentRecord, RootRecord, State

Listener = Callable[[int, Status, "Result | None"], None]
INTERRUPTED = "interrupted: the nucleus stopped before the deployment finished"


class StatusKeeper:
    def __init__(self, state: State) -> None:
        self.state = state
        self._listeners: dict[str, list[Listener]] = {}

    def listen(self, source: str, listener: Listener) -> Callable[[], None]:
        """Hear of every status of `source`'s deployments; returns how to stop."""
        self._listeners.setdefault(source, []).append(listener)
        return lambda: self._listeners.get(source, []).remove(listener)

    def _tell(self, source: str, deployment_id: int, status: Status, result: Result | None = None) -> None:
        for listener in list(self._listeners.get(source, [])):
            listener(deployment_id, status, result)

    def queue(self, document: Document) -> int:
        deployment_id = self.state.queue_deployment(document.mode, document.source, document.request(),
                                                    document.to_json())
        self._tell(document.source, deployment_id, Status.QUEUED)
        return deployment_id

    def start(self, deployment_id: int, document: Document, previous_roots: Iterable[RootRecord]) -> None:
        self.state.start_deployment(deployment_id, previous_roots)
        self._tell(document.source, deployment_id, Status.IN_PROGRESS)

    def finish(self, document: Document, result: Result, roots: Iterable[RootRecord] | None = None,
               components: Iterable[tuple[str, str, str]] = ()) -> None:
        """The outcome; with `roots`, also the set it leaves deployed (roots, and each component's content)."""
        assert result.id is not None
        error = "\n".join(result.lines) or (None if result.succeeded else result.summary or None)
        if roots is None:
            self.state.finish_deployment(result.id, result.status.value, error)
        else:
            self.state.commit(roots, components, result.id, result.status.value, error)
        self._tell(document.source, result.id, result.status, result)

    def recover(self) -> list[tuple[int, Document]]:
        """At start: deployments a crash interrupted are FAILED (the deployed set never changed: it changes
        only with a success); returns the queued ones, oldest first, to run again."""
        for deployment_id in self.state.unfinished_deployments():
            self.state.finish_deployment(deployment_id, Status.FAILED.value, INTERRUPTED)
        return [(i, Document.from_json(text)) for i, _source, text in self.state.queued_deployments()]

    def history(self) -> list[DeploymentRecord]:
        return self.state.deployments()
