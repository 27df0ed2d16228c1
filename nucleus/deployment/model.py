"""A deployment's input and output as plain values: the `Document` every source hands in, the `Result`.

Every way in — `nucleus deploy` through the daemon or in the foreground, `nucleus remove`, and later IPC's
CreateLocalDeployment and cloud jobs — becomes one `Document`; the manager runs it and answers a `Result`,
which each source turns into its own terms (the CLI into an exit code, in `commands/`). A document is
kept as JSON with the deployment's record, so that one queued when the nucleus stops runs after it starts.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from nucleus.errors import Kind


class FailurePolicy(enum.Enum):
    """What a failed deployment leaves: Greengrass's names (the CLI says keep / rollback)."""

    KEEP = "DO_NOTHING"
    ROLLBACK = "ROLLBACK"

    @classmethod
    def from_cli(cls, word: str) -> FailurePolicy:
        return cls.ROLLBACK if word == "rollback" else cls.KEEP

    @property
    def cli(self) -> str:
        return "rollback" if self is FailurePolicy.ROLLBACK else "keep"


class Status(enum.Enum):
    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    ROLLED_BACK = "ROLLED_BACK"


@dataclass(frozen=True)
class Document:
    """What to deploy, from whom, and what a failure leaves."""

    source: str = "cli"  # cli | foreground | ipc | cloud
    recipes: tuple[str, ...] = ()  # recipe files to deploy (absolute paths)
    recipe_dirs: tuple[str, ...] = ()  # folders of recipes that may satisfy dependencies
    artifacts_dir: str | None = None
    cwd: str | None = None  # where `./components` is looked up
    remove: tuple[str, ...] = ()  # root components to remove
    failure_policy: FailurePolicy = FailurePolicy.KEEP
    supervise: bool = False  # a foreground deploy: supervise here to the end; the deployed set stays as it was
    details: dict[str, Any] = field(default_factory=dict, compare=False)  # what a source wants to keep

    @property
    def mode(self) -> str:
        return "foreground" if self.supervise else "daemon"

    def request(self) -> dict[str, Any]:
        """What the deployment's record shows as asked."""
        if self.remove and not self.recipes:
            return {"remove": self.remove[0] if len(self.remove) == 1 else list(self.remove)}
        asked: dict[str, Any] = {"paths": list(self.recipes)}
        if not self.supervise:
            asked["onFailure"] = self.failure_policy.cli
        return asked

    def to_json(self) -> str:
        values = asdict(self)
        values["failure_policy"] = self.failure_policy.value
        return json.dumps(values, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Document:
        values = json.loads(text)
        values["failure_policy"] = FailurePolicy(values.get("failure_policy", FailurePolicy.KEEP.value))
        for key in ("recipes", "recipe_dirs", "remove"):
            values[key] = tuple(values.get(key) or ())
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class Result:
    """How a deployment ended, in plain values; `commands/` makes an exit code of it."""

    id: int | None
    status: Status
    summary: str = ""  # "2 component(s) changed, all up"
    lines: tuple[str, ...] = ()  # what went wrong, in the user's words (a recipe's several problems)
    kind: Kind | None = None  # set when the input was at fault (nothing was changed): exit 2
    signal: str | None = None  # "SIGINT" / "SIGTERM": a foreground deployment stopped by one

    @property
    def succeeded(self) -> bool:
        return self.status is Status.SUCCEEDED

    def to_wire(self) -> dict[str, Any]:
        """As the control socket carries it."""
        return {"id": self.id, "status": self.status.value, "summary": self.summary, "lines": list(self.lines),
                "kind": self.kind.value if self.kind else None, "signal": self.signal}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Result:
        kind = data.get("kind")
        return cls(data.get("id"), Status(data["status"]), data.get("summary") or "", tuple(data.get("lines") or ()),
                   Kind(kind) if kind else None, data.get("signal"))
