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
    """Recipes and artifacts of the components this root has deployed, kept by content.

    Every content a component version has had — its recipe, its artifacts, what its archives unpack to —
    lives whole and unchanged under `contents/<Name>/<Version>/<digest>/`, written once (in a staging
    folder, renamed into place when complete). The places Greengrass users and recipes know —
    `recipes/<Name>@<Version>.recipe.<ext>`, `artifacts/<Name>/<Version>/`,
    `artifacts-unarchived/<Name>/<Version>/` — are links to the *active* content, switched atomically by
    `activate`. So importing never changes what runs; a deployment that fails, a rollback and a restart
    after a crash can each make exactly the last good content active again.
    """

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
        """Active recipe files by component name, from one listing of the folder (a deployment of
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
        """Active recipe files, all of them or those of one component (found by file name only)."""
        index = self._index()
        if name is not None:
            return list(index.get(name, []))
        return sorted(path for paths in index.values() for path in paths)

    def stored_versions(self, name: str) -> dict[str, Path]:
        """Each stored version of a component, with its active recipe file."""
        return {path.name[len(name) + 1:].split(".recipe.", 1)[0]: path for path in self.recipe_files(name)}

    # -- content by digest -----------------------------------------------------------------------

    def content_of(self, recipe_path: str | Path) -> str | None:
        """The digest of the content a recipe file belongs to (it is in `contents/…/<digest>/`), else None."""
        real = Path(os.path.realpath(recipe_path))
        contents = Path(os.path.realpath(self.layout.contents_dir))
        if real.parent.parent.parent.parent == contents and (real.parent / COMPLETE).is_file():
            return real.parent.name
        return None

    def active_digest(self, name: str, version: str) -> str | None:
        """The digest of the content `name` `version` runs from now (its links point there)."""
        link = self.layout.artifacts(name, version)
        if not link.is_symlink():
            return None
        return Path(os.readlink(link)).parent.name

    def content_recipe(self, name: str, version: str, digest: str) -> Path | None:
        """The recipe file of one content, if the store has it whole."""
        folder = self.layout.content(name, version, digest)
        if not (folder / COMPLETE).is_file():
            return None
        return next((folder / f"recipe{suffix}" for suffix in RECIPE_SUFFIXES
                     if (folder / f"recipe{suffix}").is_file()), None)

    def import_component(self, recipe: Recipe, manifest: Manifest, source: Path | None, *,
                         activate: bool = True) -> str:
        """Put the recipe and its artifact folder into the store as one content; returns its digest.

        The digest covers the recipe file and every artifact file, so that a redeploy of the same version
        with anything changed is noticed. `activate=False` leaves the running content's links alone (a
        deployment activates each component's new content only once its old instance has stopped). A full
        or read-only disk is one `NucleusError` naming the path.
        """
        try:
            digest = self._import(recipe, manifest, source)
            if activate:
                self.activate(recipe.name, recipe.version, digest)
            return digest
        except OSError as exc:
            error = disk_error(exc, self.layout.path)
            if error is None:
                where = exc.filename or self.layout.path
                error = NucleusError(f"cannot import {recipe.ident} into the store: {exc.strerror or exc} ({where})",
                                     where=recipe.path or None, hint="check the permissions of the nucleus root")
            raise error from None

    def _import(self, recipe: Recipe, manifest: Manifest, source: Path | None) -> str:
        if source is None:
            stored = self.content_of(recipe.path)
            if stored is not None:  # read from the store: that very content
                return stored
        artifacts_digest = tree_digest(source)
        digest = sha256(f"{recipe.digest}:{artifacts_digest}".encode()).hexdigest()
        folder = self.layout.content(recipe.name, recipe.version, digest)
        if (folder / COMPLETE).is_file():
            return digest
        import shutil
        import tempfile

        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{digest[:12]}."))
        try:
            suffix = Path(recipe.path).suffix if Path(recipe.path).suffix in RECIPE_SUFFIXES else ".yaml"
            shutil.copyfile(recipe.path, staging / f"recipe{suffix}")
            (staging / "artifacts").mkdir()
            (staging / "unarchived").mkdir()
            if source is not None:
                _copy_tree(source, staging / "artifacts")
            os.chmod(staging, 0o755)
            os.chmod(staging / "artifacts", 0o755)
            # Checked, unpacked and with its modes set before it is complete: a content never changes after.
            self.prepare_artifacts(recipe, manifest, source, staging / "artifacts", staging / "unarchived")
            (staging / COMPLETE).write_text(artifacts_digest)
            self._unsynced.extend(path for path in _files(staging) if not path.is_symlink())
            self.sync()  # the copies are durable before the rename says they are complete
            shutil.rmtree(folder, ignore_errors=True)  # an incomplete one a crash left
            os.replace(staging, folder)
            self._unsynced.append(folder.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return digest

    def activate(self, name: str, version: str, digest: str) -> None:
        """Point the Greengrass paths of `name` `version` at one content (each link switched atomically)."""
        folder = self.layout.content(name, version, digest)
        recipe = self.content_recipe(name, version, digest)
        if recipe is None:
            raise NotFoundError(f"{name} {version}: the store has no content {digest[:12]}",
                                where=str(folder), hint="deploy the component again")
        if self.active_digest(name, version) == digest and self.recipe_path(name, version, recipe.suffix).is_symlink():
            return
        _link(self.layout.artifacts(name, version), folder / "artifacts")
        _link(self.layout.unarchived(name, version), folder / "unarchived")
        target = self.recipe_path(name, version, recipe.suffix)
        stored = self._index().setdefault(name, [])
        for stale in [p for p in stored if p.name.startswith(f"{name}@{version}.recipe.") and p != target]:
            stale.unlink(missing_ok=True)
            stored.remove(stale)
        _link(target, recipe)
        if target not in stored:
            stored.append(target)
            stored.sort()
        self._unsynced.extend([target.parent, self.layout.artifacts(name, version).parent,
                               self.layout.unarchived(name, version).parent])
        self.sync()

    def prune(self, name: str, keep: set[str]) -> list[str]:
        """Delete every content of `name` whose digest is not in `keep` (the caller keeps what runs), and
        every version left with no content; returns the versions removed."""
        import shutil

        removed: list[str] = []
        versions = self.layout.contents_dir / name
        if not versions.is_dir():
            return removed
        for version_dir in versions.iterdir():
            version = version_dir.name
            for content in version_dir.iterdir():
                if content.name not in keep:
                    shutil.rmtree(content, ignore_errors=True)
            if any(version_dir.iterdir()):
                continue
            version_dir.rmdir()
            for link in (self.layout.artifacts(name, version), self.layout.unarchived(name, version),
                         *[p for p in self.recipe_files(name) if p.name.startswith(f"{name}@{version}.recipe.")]):
                link.unlink(missing_ok=True)
            self._index()[name] = [p for p in self._index().get(name, []) if p.exists() or p.is_symlink()]
            removed.append(version)
        return removed

    def migrate(self) -> int:
        """Move a store laid out by an older nucleus (plain files where the links are now) into contents,
        keeping every digest; safe to run again after a crash half-way. Returns how many it moved."""
        moved = 0
        for path in self.recipe_files():
            if path.is_symlink() or not path.is_file():
                continue
            name, _, rest = path.name.partition("@")
            version = rest.split(".recipe.", 1)[0]
            self._migrate_one(name, version, path)
            moved += 1
        return moved

    def _migrate_one(self, name: str, version: str, recipe: Path) -> None:
        import shutil

        markers = [self.layout.recipes_dir / f"{name}@{version}.{m}" for m in ("digest", "artifacts.sha256")]
        digest = markers[0].read_text().strip() if markers[0].is_file() else \
            sha256(recipe.read_bytes() + b":" + tree_digest(self.layout.artifacts(name, version)).encode()).hexdigest()
        folder = self.layout.content(name, version, digest)
        if not (folder / COMPLETE).is_file():
            staging = folder.with_name(f".migrate-{digest[:12]}")
            staging.mkdir(parents=True, exist_ok=True)
            for part, live in (("artifacts", self.layout.artifacts(name, version)),
                               ("unarchived", self.layout.unarchived(name, version))):
                if live.is_dir() and not live.is_symlink() and not (staging / part).exists():
                    os.replace(live, staging / part)
                (staging / part).mkdir(exist_ok=True)
            shutil.copyfile(recipe, staging / f"recipe{recipe.suffix}")
            (staging / COMPLETE).write_text(markers[1].read_text() if markers[1].is_file() else "")
            os.replace(staging, folder)
        _link(self.layout.artifacts(name, version), folder / "artifacts")
        _link(self.layout.unarchived(name, version), folder / "unarchived")
        _link(recipe, folder / f"recipe{recipe.suffix}")
        for marker in markers:
            marker.unlink(missing_ok=True)

    def prepare_artifacts(self, recipe: Recipe, manifest: Manifest, source: Path | None, folder: Path,
                          unarchived: Path) -> None:
        """Check each artifact of the chosen manifest is present and intact; unpack and set modes."""
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
                unpack_zip(path, unarchived / artifact.unarchive_folder, artifact, self.limits)
            set_permission(path, artifact)


COMPLETE = "complete"  # written last into a content's folder (it holds the artifacts' digest)


def _link(link: Path, target: Path) -> None:
    """Make `link` a symbolic link to `target` (relative, so that the root can move), replacing atomically
    whatever link was there."""
    link.parent.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(target, link.parent)
    if link.is_symlink() and os.readlink(link) == relative:
        return
    temporary = link.with_name(f".{link.name}.{os.getpid()}.link")
    temporary.unlink(missing_ok=True)
    os.symlink(relative, temporary)
    os.replace(temporary, link)


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
