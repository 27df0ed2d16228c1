"""The component store under `<root>/packages/`: recipes, artifacts, unpacked archives.

Importing is idempotent and crash-safe: files are written to a temporary name and renamed into place, and
a component's artifact folder is swapped in whole. An artifact with a `Digest` is checked before use; a
ZIP is unpacked only if every entry stays inside its folder.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from nucleus.digest import sha256
from nucleus.errors import NotFoundError, NucleusError
from nucleus.paths import RootLayout
from nucleus.recipe.model import Artifact, Manifest, Recipe
from nucleus.recipe.normalise import HASH_ALGORITHMS

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

    def __init__(self, layout: RootLayout) -> None:
        self.layout = layout
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
        with anything changed is noticed.
        """
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
            shutil.copytree(source, staging, symlinks=True, dirs_exist_ok=True)
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
                unpack_zip(path, self.layout.unarchived(recipe.name, recipe.version) / Path(artifact.file_name).stem,
                           artifact)
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


def permission_mode(artifact: Artifact) -> int:
    """Greengrass's artifact permissions as a file mode (the owner keeps write so the store can replace it)."""
    read = {"NONE": 0, "OWNER": 0o400, "ALL": 0o444}[artifact.permission.read]
    execute = {"NONE": 0, "OWNER": 0o500, "ALL": 0o555}[artifact.permission.execute]
    return read | execute | 0o200


def set_permission(path: Path, artifact: Artifact) -> None:
    os.chmod(path, permission_mode(artifact))


def unpack_zip(archive: Path, destination: Path, artifact: Artifact) -> None:
    """Unpack `archive` into `destination`, refusing any entry that would land outside it."""
    import shutil
    import tempfile
    import zipfile

    try:
        with zipfile.ZipFile(archive) as zip_file:
            entries = zip_file.infolist()
            for entry in entries:
                _check_entry(archive, destination, entry)
            destination.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}."))
            try:
                for entry in entries:
                    _extract(zip_file, entry, staging, artifact)
                shutil.rmtree(destination, ignore_errors=True)
                os.replace(staging, destination)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except zipfile.BadZipFile as exc:
        raise NucleusError(f"{archive.name} is not a valid ZIP archive ({exc})", where=str(archive),
                           hint="rebuild the archive, or set Unarchive: NONE") from None
    except (OSError, RuntimeError, NotImplementedError) as exc:  # clashing entries, encryption, compression
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise NucleusError(f"{archive.name} cannot be unpacked ({reason})", where=str(archive),
                           hint="rebuild the archive without encryption or clashing entries, or set "
                                "Unarchive: NONE") from None


def _is_link(entry: object) -> bool:
    return stat.S_ISLNK(getattr(entry, "external_attr", 0) >> 16)


def _check_entry(archive: Path, destination: Path, entry: object) -> None:
    name = entry.filename  # type: ignore[attr-defined]
    parts = Path(name.replace("\\", "/")).parts
    escapes = name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts
    if escapes:
        raise NucleusError(f"{archive.name}: the entry '{name}' would land outside the unpack folder",
                           where=str(archive), hint="the archive is refused; rebuild it with relative paths")
    if _is_link(entry):
        raise NucleusError(f"{archive.name}: the entry '{name}' is a symbolic link",
                           where=str(archive), hint="links could point outside the folder; the archive is refused")


def _extract(zip_file: object, entry: object, staging: Path, artifact: Artifact) -> None:
    name = entry.filename.replace("\\", "/")  # type: ignore[attr-defined]
    target = staging / name
    if name.endswith("/"):
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    import shutil

    with zip_file.open(entry) as source, open(target, "wb") as sink:  # type: ignore[attr-defined]
        shutil.copyfileobj(source, sink)
    # Unpacked files get the artifact's permission, as in Greengrass; an executable bit the archive
    # carries is kept for the owner, so unpacked scripts still run.
    archived_mode = (entry.external_attr >> 16) & 0o100  # type: ignore[attr-defined]
    os.chmod(target, permission_mode(artifact) | 0o400 | archived_mode)
