"""The component store under `<root>/packages/`: recipes, artifacts, unpacked archives.

Importing is idempotent and crash-safe: files are written to a temporary name and renamed into place, and
a component's artifact folder is swapped in whole. An artifact with a `Digest` is checked before use; a
ZIP is unpacked only if every entry stays inside its folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from nucleus.digest import sha256
from nucleus.errors import NotFoundError, NucleusError, disk_error
from nucleus.paths import RootLayout
from nucleus.recipe.model import Artifact, Manifest, Recipe
from nucleus.recipe.normalise import HASH_ALGORITHMS
from nucleus.unarchive import UnpackLimits, permission_mode, unpack_zip

__all__ = ["RECIPE_SUFFIXES", "Store", "find_artifact_source", "permission_mode", "tree_digest", "unpack_zip",
           "write_atomic"]

RECIPE_SUFFIXES = (".yaml", ".yml", ".json")
REMOTE_SCHEMES = ("s3", "greengrass", "docker", "https", "http")


def find_artifact_source(name: str, version: str, recipe_path: Path, artifacts_dir: Path | None,
                         cwd: Path) -> Path | None:
    """Where a component's artifacts are: `--artifacts DIR`, else `./components/`, else beside the recipe.

    Each place is laid out `<Name>/<Version>/<files>`.
    """
    if artifacts_dir is not None:
        candidates = [artifacts_dir / name / version]
    else:
        candidates = [cwd / "components" / name / version,
                      recipe_path.absolute().parent.parent / "components" / name / version]
    return next((c for c in candidates if c.is_dir()), None)


def _copy_tree(source: Path, target: Path) -> None:
    """Copy a folder (links as links, modes kept), stopping at the first error with that error itself —
    `shutil.copytree` would go on and raise a list of texts, losing the errno (a full disk must say so)."""
    import shutil

    for entry in os.scandir(source):
        destination = target / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), destination)
        elif entry.is_dir():
            destination.mkdir(exist_ok=True)
            shutil.copystat(entry.path, destination)
            _copy_tree(Path(entry.path), destination)
        else:
            shutil.copy2(entry.path, destination)


def tree_digest(folder: Path | None) -> str:
    """A digest of every file's relative path, mode and content: changes when anything in the folder does."""
    digest = sha256()
    if folder is None:
        return digest.hexdigest()
    for path in sorted(_files(folder)):
        relative = path.relative_to(folder).as_posix()
        digest.update(relative.encode() + b"\0")
        if path.is_symlink():
            digest.update(b"link:" + os.readlink(path).encode())
        else:
            digest.update(str(path.stat().st_mode & 0o111).encode())
            digest.update(_file_hash(path, "sha256"))
    return digest.hexdigest()


def _files(folder: Path) -> Iterator[Path]:
    for dirpath, _dirs, files in os.walk(folder):
        for file in files:
            yield Path(dirpath) / file


def _file_hash(path: Path, algorithm: str) -> bytes:
    import hashlib  # OpenSSL's speed for artifact contents; loaded only when there are files to hash

    hasher = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            hasher.update(block)
    return hasher.digest()


def write_atomic(path: Path, data: bytes, mode: int = 0o644, *, fsync: bool = True) -> None:
    """Write `data` so that a crash leaves either the old file or the new one, never half of either.

    `fsync=False` leaves the flush to the caller, who writes many files and then calls `os.sync()` once.
    """
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            if fsync:
                os.fsync(stream.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class Store:
    """Recipes and artifacts of the components this root has deployed."""

    def __init__(self, layout: RootLayout, limits: UnpackLimits = UnpackLimits()) -> None:
        self.layout = layout
        self.limits = limits
        self._by_name: dict[str, list[Path]] | None = None  # the recipes folder, listed once
        self._unsynced: list[Path] = []  # files written without fsync, for `sync()`

    def sync(self) -> None:
        """Make every file written so far durable: an fsync each when they are few, else one `sync()` for
        all (hundreds of fsyncs would cost more than a whole deployment)."""
        if len(self._unsynced) > 16:
            os.sync()
        else:
            for path in self._unsynced + sorted({p.parent for p in self._unsynced}):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        self._unsynced.clear()

    def recipe_path(self, name: str, version: str, suffix: str) -> Path:
        return self.layout.recipes_dir / f"{name}@{version}.recipe{suffix}"

    def _index(self) -> dict[str, list[Path]]:
        """Stored recipe files by component name, from one listing of the folder (a deployment of
        hundreds of components asks for each of them)."""
        if self._by_name is None:
            folder = self.layout.recipes_dir
            by_name: dict[str, list[Path]] = {}
            if folder.is_dir():
                for entry in os.scandir(folder):
                    name, at, rest = entry.name.partition("@")
                    if at and ".recipe." in rest and os.path.splitext(rest)[1] in RECIPE_SUFFIXES:
                        by_name.setdefault(name, []).append(folder / entry.name)
            self._by_name = {name: sorted(paths) for name, paths in by_name.items()}
        return self._by_name

    def recipe_files(self, name: str | None = None) -> list[Path]:
        """Stored recipe files, all of them or those of one component (found by file name only)."""
        index = self._index()
        if name is not None:
            return list(index.get(name, []))
        return sorted(path for paths in index.values() for path in paths)

    def stored_versions(self, name: str) -> dict[str, Path]:
        """Each stored version of a component, with its recipe file."""
        return {path.name[len(name) + 1:].split(".recipe.", 1)[0]: path for path in self.recipe_files(name)}

    def prune(self, name: str, keep: set[str]) -> list[str]:
        """Delete every stored version of `name` but `keep` (the current and the previous one)."""
        import shutil

        removed = []
        for version, path in self.stored_versions(name).items():
            if version in keep:
                continue
            path.unlink(missing_ok=True)
            self._index()[name].remove(path)
            for marker in ("artifacts.sha256", "digest"):
                (self.layout.recipes_dir / f"{name}@{version}.{marker}").unlink(missing_ok=True)
            shutil.rmtree(self.layout.artifacts(name, version), ignore_errors=True)
            shutil.rmtree(self.layout.unarchived(name, version), ignore_errors=True)
            removed.append(version)
        return removed

    def import_component(self, recipe: Recipe, manifest: Manifest, source: Path | None) -> str:
        """Put the recipe and its artifact folder into the store; returns the component's digest.

        The digest covers the recipe file and every artifact file, so that a redeploy of the same version
        with anything changed is noticed. A full or read-only disk is one `NucleusError` naming the path.
        """
        try:
            return self._import(recipe, manifest, source)
        except OSError as exc:
            error = disk_error(exc, self.layout.path)
            if error is None:
                where = exc.filename or self.layout.path
                error = NucleusError(f"cannot import {recipe.ident} into the store: {exc.strerror or exc} ({where})",
                                     where=recipe.path or None, hint="check the permissions of the nucleus root")
            raise error from None

    def _import(self, recipe: Recipe, manifest: Manifest, source: Path | None) -> str:
        recipe_file = Path(recipe.path)
        data = recipe_file.read_bytes()
        suffix = recipe_file.suffix if recipe_file.suffix in RECIPE_SUFFIXES else ".yaml"
        target = self.recipe_path(recipe.name, recipe.version, suffix)
        if recipe_file.absolute() != target.absolute():
            stored = self._index().setdefault(recipe.name, [])
            for stale in list(stored):
                if stale.name.startswith(f"{recipe.name}@{recipe.version}.recipe.") and stale != target:
                    stale.unlink()
                    stored.remove(stale)
            if not target.exists() or target.read_bytes() != data:
                write_atomic(target, data, fsync=False)
                self._unsynced.append(target)
            if target not in stored:
                stored.append(target)
                stored.sort()
        artifacts_digest = self._import_artifacts(recipe, source)
        digest = sha256(f"{recipe.digest}:{artifacts_digest}".encode()).hexdigest()
        prepared = self.layout.recipes_dir / f"{recipe.name}@{recipe.version}.digest"
        if not (prepared.is_file() and prepared.read_text() == digest):
            # New or changed: check, unpack and set modes. An unchanged component is left alone — its
            # unpacked files may be in use by the running instance.
            self.prepare_artifacts(recipe, manifest, source)
            write_atomic(prepared, digest.encode(), fsync=False)
            self._unsynced.append(prepared)
        return digest

    def _recover(self, destination: Path, version: str) -> None:
        """Undo what a kill between the two renames of an artifact swap left: the old folder put back,
        half-copied staging folders removed."""
        import shutil

        retired = destination.with_name(f".{version}.old")
        if retired.is_dir() and not destination.exists():
            os.replace(retired, destination)
        if destination.parent.is_dir():
            for leftover in destination.parent.glob(f".{version}.*"):
                shutil.rmtree(leftover, ignore_errors=True)

    def _import_artifacts(self, recipe: Recipe, source: Path | None) -> str:
        """Copy the artifact folder in (when it changed); returns the digest of its source."""
        destination = self.layout.artifacts(recipe.name, recipe.version)
        self._recover(destination, recipe.version)
        marker = self.layout.recipes_dir / f"{recipe.name}@{recipe.version}.artifacts.sha256"
        if source is None:  # already stored: the digest taken when it was imported (modes set since)
            destination.mkdir(parents=True, exist_ok=True)
            return marker.read_text() if marker.is_file() else tree_digest(destination)
        digest = tree_digest(source)
        if destination.is_dir() and marker.is_file() and marker.read_text() == digest:
            return digest
        import shutil
        import tempfile

        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{recipe.version}."))
        try:
            _copy_tree(source, staging)
            os.chmod(staging, 0o755)
            if destination.exists():
                retired = destination.with_name(f".{recipe.version}.old")
                shutil.rmtree(retired, ignore_errors=True)
                os.replace(destination, retired)
                os.replace(staging, destination)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                os.replace(staging, destination)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._unsynced.extend(path for path in _files(destination) if not path.is_symlink())
        self.sync()  # the copies are durable before the marker says they are complete
        write_atomic(marker, digest.encode(), fsync=False)
        self._unsynced.append(marker)
        return digest

    def prepare_artifacts(self, recipe: Recipe, manifest: Manifest, source: Path | None) -> None:
        """Check each artifact of the chosen manifest is present and intact; unpack and set modes."""
        folder = self.layout.artifacts(recipe.name, recipe.version)
        for artifact in manifest.artifacts:
            path = folder / artifact.file_name
            if path.is_symlink():
                raise NucleusError(f"{recipe.ident}: the artifact {artifact.file_name} is a symbolic link",
                                   where=recipe.path or None,
                                   hint="copy the file itself into the artifact folder: nucleus sets modes on "
                                        "artifacts and must not follow links out of the store")
            if not path.is_file():
                raise _missing_artifact(recipe, artifact, source)
            if artifact.digest:
                check_digest(path, artifact, recipe)
            if artifact.unarchive == "ZIP":
                unpack_zip(path, self.layout.unarchived(recipe.name, recipe.version) / artifact.unarchive_folder,
                           artifact, self.limits)
            set_permission(path, artifact)


def _missing_artifact(recipe: Recipe, artifact: Artifact, source: Path | None) -> NucleusError:
    expected = (source / artifact.file_name) if source else \
        Path("components") / recipe.name / recipe.version / artifact.file_name
    remote = artifact.scheme in REMOTE_SCHEMES
    reason = (f"is not present locally (downloading {artifact.scheme}: artifacts is not supported yet)"
              if remote else "is not in the component's artifact folder")
    return NotFoundError(f"{recipe.ident}: the artifact {artifact.uri} {reason}; expected it at {expected}",
                         where=recipe.path or None,
                         hint="put the file there, or pass --artifacts DIR laid out <Name>/<Version>/<files>")


def check_digest(path: Path, artifact: Artifact, recipe: Recipe) -> None:
    """Refuse an artifact whose content does not match the recipe's `Digest` (base64 of the hash)."""
    import base64

    algorithm = HASH_ALGORITHMS.get(artifact.algorithm or "SHA-256", "sha256")
    actual = base64.b64encode(_file_hash(path, algorithm)).decode()
    if actual != (artifact.digest or "").strip():
        raise NucleusError(
            f"{recipe.ident}: the artifact {path.name} does not match its Digest "
            f"(recipe: {artifact.digest}, file: {actual}, {artifact.algorithm or 'SHA-256'})",
            where=recipe.path or None,
            hint="the file changed since the recipe was written: update the Digest or restore the file")


def set_permission(path: Path, artifact: Artifact) -> None:
    os.chmod(path, permission_mode(artifact))
