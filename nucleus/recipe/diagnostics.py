"""What a recipe check reports: one line per problem, `FILE:LINE:COL: <where>: <what> — <fix>`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from nucleus.errors import MultiError

MAX_ERRORS = 50  # beyond this, a summary line: a broken file should not flood the terminal


class Diagnostic(NamedTuple):
    severity: str  # "error" | "warning"
    source: str
    line: int
    column: int
    where: str  # the place in the recipe, e.g. `Manifests[0].Lifecycle.Install`
    message: str
    hint: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        prefix = f"{self.source}:{self.line}:{self.column}: "
        if not self.is_error:
            prefix += "warning: "
        text = f"{prefix}{self.where}: {self.message}" if self.where else f"{prefix}{self.message}"
        return f"{text} — {self.hint}" if self.hint else text


def render_path(path: Iterable[object]) -> str:
    """`("Manifests", 0, "Lifecycle")` → `Manifests[0].Lifecycle`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


class RecipeError(MultiError):
    """A recipe that cannot be used; carries every diagnostic found (warnings included)."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        errors = [d for d in self.diagnostics if d.is_error]
        lines = [str(d) for d in errors[:MAX_ERRORS]]
        if len(errors) > MAX_ERRORS:
            lines.append(f"… and {len(errors) - MAX_ERRORS} more errors in {errors[0].source}")
        super().__init__(lines)

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]
