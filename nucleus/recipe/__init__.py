"""Component recipes: load (YAML or strict JSON, with positions), normalise, validate, select.

`load_recipe(path)` is the whole pipeline for one file; `read_recipe(path)` does the same but returns every
diagnostic instead of raising, for `nucleus validate`.
"""

from __future__ import annotations

from pathlib import Path

from nucleus.errors import NotFoundError
from nucleus.recipe.diagnostics import Diagnostic, RecipeError
from nucleus.recipe.load import Document, LoadError, format_of, parse_document
from nucleus.recipe.model import (
    DEFAULT_TIMEOUTS,
    GENERIC,
    STEP_NAMES,
    Artifact,
    Dependency,
    Lifecycle,
    Manifest,
    Permission,
    Place,
    Platform,
    Recipe,
    Step,
)
from nucleus.recipe.normalise import Normalised, normalise

__all__ = [
    "DEFAULT_TIMEOUTS", "GENERIC", "STEP_NAMES", "Artifact", "Dependency", "Diagnostic", "Document",
    "Lifecycle", "Manifest", "Normalised", "Permission", "Place", "Platform", "Recipe", "RecipeError", "Step",
    "load_recipe", "parse_recipe", "read_recipe",
]


def parse_recipe(text: str, source: str = "<recipe>", fmt: str = "yaml", *, digest: str = "",
                 schema: bool = False) -> Normalised:
    """Check recipe text; the result carries the Recipe (None if invalid) and every diagnostic."""
    try:
        doc = parse_document(text, source, fmt)
    except LoadError as exc:
        return Normalised(None, [Diagnostic("error", source, exc.line, exc.column, "", exc.message, exc.hint)])
    result = normalise(doc, digest=digest)
    if schema:
        from nucleus.recipe.schema import schema_diagnostics

        reported = [d.where for d in result.errors]
        extra = [d for d in schema_diagnostics(doc) if not _covered(d.where, reported)]
        if extra:
            diagnostics = sorted(result.diagnostics + extra, key=lambda d: (d.line, d.column))
            result = Normalised(None, diagnostics)
    return result


def _covered(where: str, reported: list[str]) -> bool:
    """Whether the normaliser already reported a problem at `where`, inside it, or around it."""
    return any(other == where or other.startswith((where + ".", where + "[")) or where.startswith(other)
               for other in reported)


def read_recipe(path: str | Path, *, schema: bool = False) -> Normalised:
    """Read and check one recipe file. A file that cannot be read raises `NotFoundError`."""
    path = Path(path)
    data = read_file(path, "recipe")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return Normalised(None, [Diagnostic("error", str(path), line, 1, "", "the file is not UTF-8 text",
                                            "save the recipe as UTF-8")])
    from nucleus.digest import sha256

    return parse_recipe(text, str(path), format_of(path.name), digest=sha256(data).hexdigest(),
                        schema=schema)


def load_recipe(path: str | Path) -> Recipe:
    """The recipe in `path`, valid; raises `RecipeError` carrying every diagnostic otherwise."""
    result = read_recipe(path)
    if result.recipe is None:
        raise RecipeError(result.diagnostics)
    return result.recipe


def read_file(path: Path, what: str) -> bytes:
    """The bytes of a file the user named, or one clear error saying why it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no such {what} file", where=str(path), hint="check the path") from None
    except IsADirectoryError:
        raise NotFoundError(f"this is a folder, not a {what} file", where=str(path),
                            hint="name the recipe file itself") from None
    except OSError as exc:
        raise NotFoundError(f"cannot read the {what} file: {exc.strerror}", where=str(path),
                            hint="check its permissions") from None
