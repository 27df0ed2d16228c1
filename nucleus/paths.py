"""Where things live under a nucleus root, laid out as Greengrass lays out `/greengrass/v2`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

DEFAULT_ROOT = "~/.nucleus"


def choose_root(cli_root: str | None, config_rootpath: str | None = None) -> Path:
    """`--root`, then `NUCLEUS_ROOT`, then the config's `system.rootpath`, then `~/.nucleus`."""
    chosen = cli_root or os.environ.get("NUCLEUS_ROOT") or config_rootpath or DEFAULT_ROOT
    return Path(chosen).expanduser().absolute()


class RootLayout(NamedTuple):
    """The folders and files of one nucleus root. Creating them is `ensure()`'s job, nothing else's."""

    path: Path

    @property
    def config_dir(self) -> Path:
        return self.path / "config"

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.yaml"

    @property
    def state_file(self) -> Path:
        return self.config_dir / "state.sqlite"

    @property
    def recipes_dir(self) -> Path:
        return self.path / "packages" / "recipes"

    @property
    def artifacts_dir(self) -> Path:
        return self.path / "packages" / "artifacts"

    @property
    def unarchived_dir(self) -> Path:
        return self.path / "packages" / "artifacts-unarchived"

    @property
    def contents_dir(self) -> Path:
        """Every content a component version has had, by digest; the three folders above link into it."""
        return self.path / "packages" / "contents"

    def content(self, name: str, version: str, digest: str) -> Path:
        return self.contents_dir / name / version / digest

    @property
    def work_root(self) -> Path:
        return self.path / "work"

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def sandbox_dir(self) -> Path:
        return self.path / "sandbox"

    @property
    def socket_path(self) -> Path:
        return self.path / "nucleus.sock"

    @property
    def lock_file(self) -> Path:
        return self.path / "nucleus.lock"

    @property
    def daemon_marker(self) -> Path:
        """Present once `nucleus start` has run on the root: the root belongs to the daemon from then on."""
        return self.config_dir / "daemon.json"

    def artifacts(self, name: str, version: str) -> Path:
        return self.artifacts_dir / name / version

    def unarchived(self, name: str, version: str) -> Path:
        return self.unarchived_dir / name / version

    def work(self, name: str) -> Path:
        return self.work_root / name

    def log_file(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    @property
    def nucleus_log(self) -> Path:
        return self.logs_dir / "nucleus.log"

    def ensure(self) -> None:
        """Create the root's folders (private to the owner where they hold secrets, state or logs)."""
        from nucleus.errors import NucleusError

        try:
            for folder in (self.path, self.config_dir, self.recipes_dir, self.artifacts_dir,
                           self.unarchived_dir, self.contents_dir, self.work_root, self.logs_dir):
                folder.mkdir(parents=True, exist_ok=True)
            for private in (self.config_dir, self.logs_dir):  # component output often carries secrets
                if private.stat().st_mode & 0o777 != 0o700:
                    os.chmod(private, 0o700)
        except OSError as exc:
            from nucleus.errors import disk_error

            raise disk_error(exc, self.path) or NucleusError(
                f"cannot use {self.path} as a nucleus root: {exc.strerror} ({exc.filename})",
                hint="choose another --root (or NUCLEUS_ROOT)") from None
