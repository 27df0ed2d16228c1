"""Unpacking a ZIP artifact safely: inside its folder, within a size limit, with Greengrass's permissions.

Refused before anything is written:
- an entry that would land outside the unpack folder (`..`, an absolute path, a drive letter) or a link;
- an archive whose entries add up to more than the limit (a zip bomb: 1 MB that unpacks to 1 GiB). The
  limit is the smallest of: `unarchive.maxSizeMB` when set; `unarchive.maxRatio` (default 100, as Apache
  POI's zip-bomb guard) times the archive's size, but never below 64 MiB so that small, very compressible
  archives still unpack; 90 % of the free space where it unpacks.
The sizes counted are the ones the archive declares; `zipfile` never inflates an entry past its declared
size (and fails its CRC check if the data was longer), and the bytes written are counted again anyway.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO, Any, NamedTuple

from nucleus.config import NucleusConfig
from nucleus.errors import FailedError, NucleusError, disk_error, format_size
from nucleus.recipe.model import Artifact

MIB = 1024 * 1024
RATIO_FLOOR = 64 * MIB  # below this, no ratio applies
DISK_SHARE = 0.9  # never fill more than this share of the free space


class UnpackLimits(NamedTuple):
    """How much one archive may unpack to (`services.aws.greengrass.Nucleus.configuration.unarchive`)."""

    max_bytes: int | None = None  # unarchive.maxSizeMB, in bytes; None: no fixed cap
    max_ratio: float = 100.0  # unarchive.maxRatio: unpacked size ÷ archive size

    def allowed(self, archive_size: int, free: int) -> tuple[int, str]:
        """The most an archive of `archive_size` bytes may unpack to, and which rule sets it."""
        rules = [(max(int(self.max_ratio * archive_size), RATIO_FLOOR),
                  f"{self.max_ratio:g}× the archive's size (unarchive.maxRatio)"),
                 (int(free * DISK_SHARE), f"{DISK_SHARE:.0%} of the {format_size(free)} free on its disk")]
        if self.max_bytes is not None:
            rules.append((self.max_bytes, "unarchive.maxSizeMB"))
        return min(rules)

    @classmethod
    def of(cls, config: NucleusConfig) -> UnpackLimits:
        max_mb = config.unarchive_max_mb
        return cls(None if max_mb is None else int(max_mb * MIB), config.unarchive_max_ratio)


def permission_mode(artifact: Artifact) -> int:
    """Greengrass's artifact permissions as a file mode (the owner keeps write so the store can replace it)."""
    read = {"NONE": 0, "OWNER": 0o400, "ALL": 0o444}[artifact.permission.read]
    execute = {"NONE": 0, "OWNER": 0o500, "ALL": 0o555}[artifact.permission.execute]
    return read | execute | 0o200


def unpack_zip(archive: Path, destination: Path, artifact: Artifact, limits: UnpackLimits = UnpackLimits()) -> None:
    """Unpack `archive` into `destination` (replacing it), refusing entries that would land outside it and
    archives over the size limit — both before anything is written."""
    import shutil
    import tempfile
    import zipfile

    if destination.name in ("", ".", "..") or destination.name != artifact.unarchive_folder:
        raise NucleusError(f"{archive.name} cannot be unpacked into '{destination.name}'", where=str(archive),
                           hint="give the archive a name before its extension, e.g. app.zip")
    try:
        with zipfile.ZipFile(archive) as zip_file:
            entries = zip_file.infolist()
            for entry in entries:
                _check_entry(archive, entry)
            destination.parent.mkdir(parents=True, exist_ok=True)
            total = sum(entry.file_size for entry in entries)
            allowed, rule = limits.allowed(archive.stat().st_size, shutil.disk_usage(destination.parent).free)
            if total > allowed:
                _refuse(archive, total, allowed, rule)
            staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}."))
            try:
                budget = [allowed]
                for entry in entries:
                    _extract(zip_file, entry, staging, artifact, budget)
                shutil.rmtree(destination, ignore_errors=True)  # a plain name under the component's folder
                os.replace(staging, destination)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except zipfile.BadZipFile as exc:
        raise NucleusError(f"{archive.name} is not a valid ZIP archive ({exc})", where=str(archive),
                           hint="rebuild the archive, or set Unarchive: NONE") from None
    except (OSError, RuntimeError, NotImplementedError) as exc:  # clashing entries, encryption, compression
        if isinstance(exc, OSError) and (full := disk_error(exc, destination.parent)) is not None:
            raise full from None
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise NucleusError(f"{archive.name} cannot be unpacked ({reason})", where=str(archive),
                           hint="rebuild the archive without encryption or clashing entries, or set "
                                "Unarchive: NONE") from None


def _refuse(archive: Path, total: int, allowed: int, rule: str) -> None:
    size = max(archive.stat().st_size, 1)
    if rule.startswith(f"{DISK_SHARE:.0%}"):
        raise FailedError(f"{archive.name} unpacks to {format_size(total)}, more than {rule}", where=str(archive),
                          hint="free some disk space, or set Unarchive: NONE")
    raise NucleusError(f"{archive.name} unpacks to {format_size(total)} ({total / size:.0f}× its size of {format_size(size)}), "
                       f"more than the {format_size(allowed)} allowed by {rule}", where=str(archive),
                       hint="a zip bomb is refused; if the archive is genuine, raise services."
                            "aws.greengrass.Nucleus.configuration.unarchive.maxRatio or .maxSizeMB")


def _is_link(entry: Any) -> bool:
    return stat.S_ISLNK(getattr(entry, "external_attr", 0) >> 16)


def _check_entry(archive: Path, entry: Any) -> None:
    name = entry.filename
    parts = Path(name.replace("\\", "/")).parts
    escapes = name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts
    if escapes:
        raise NucleusError(f"{archive.name}: the entry '{name}' would land outside the unpack folder",
                           where=str(archive), hint="the archive is refused; rebuild it with relative paths")
    if _is_link(entry):
        raise NucleusError(f"{archive.name}: the entry '{name}' is a symbolic link",
                           where=str(archive), hint="links could point outside the folder; the archive is refused")


def _extract(zip_file: Any, entry: Any, staging: Path, artifact: Artifact, budget: list[int]) -> None:
    name = entry.filename.replace("\\", "/")
    target = staging / name
    if name.endswith("/"):
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with zip_file.open(entry) as source, open(target, "wb") as sink:
        _copy(source, sink, budget, zip_file.filename)
    # Unpacked files get the artifact's permission, as in Greengrass; an executable bit the archive
    # carries is kept for the owner, so unpacked scripts still run.
    archived_mode = (entry.external_attr >> 16) & 0o100
    os.chmod(target, permission_mode(artifact) | 0o400 | archived_mode)


def _copy(source: IO[bytes], sink: IO[bytes], budget: list[int], archive: str) -> None:
    """Copy, counting against the budget: a second guard behind the declared sizes."""
    while block := source.read(MIB):
        budget[0] -= len(block)
        if budget[0] < 0:
            raise NucleusError(f"{Path(archive).name} unpacks to more than it declares", where=archive,
                               hint="the archive is refused; rebuild it")
        sink.write(block)
