"""The local AWS sandbox: a cloud on 127.0.0.1 for developing components with no AWS account.

Two child processes: moto's server (STS, IAM, S3 and the rest, with signature checking on) and an AWS
IoT credentials-provider emulator (mutual TLS with the sandbox's device certificate). With them, the
nucleus's token exchange service runs exactly as on a device: certificate in, temporary credentials out,
and components' SDKs call moto through `AWS_ENDPOINT_URL`. See docs/sandbox.md.

`Sandbox.start` blocks (about a second or two): call it before the kernel runs, or via
`asyncio.to_thread`. The children stop with `Sandbox.stop`, and on their own if the nucleus dies.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nucleus.errors import FailedError, NucleusError

if TYPE_CHECKING:
    import subprocess

    from nucleus.config import NucleusConfig

__all__ = ["ROLE_ALIAS", "Sandbox", "SandboxInfo"]

ROLE_ALIAS = "NucleusSandboxTokenExchangeRoleAlias"
REGION = "us-east-1"
START_TIMEOUT = 60.0  # generous: a cold start of moto on a busy 2-core machine takes a few seconds
STOP_GRACE = 5.0


@dataclass(frozen=True)
class SandboxInfo:
    """Everything the nucleus (or another tool) needs to use a running sandbox."""

    cred_endpoint: str  # "127.0.0.1:<port>", the credentials-provider emulator
    root_ca_path: Path
    certificate_path: Path
    private_key_path: Path
    role_alias: str
    thing_name: str
    region: str
    endpoint_url: str  # "http://127.0.0.1:<port>", moto; components get it as AWS_ENDPOINT_URL
    buckets: tuple[str, ...]

    def config_yaml(self) -> str:
        """A Greengrass-style config.yaml for this sandbox (valid while it runs: ports change per start)."""
        import yaml

        document = {
            "system": {
                "certificateFilePath": str(self.certificate_path),
                "privateKeyPath": str(self.private_key_path),
                "rootCaPath": str(self.root_ca_path),
                "thingName": self.thing_name,
            },
            "services": {"aws.greengrass.Nucleus": {"configuration": {
                "awsRegion": self.region,
                "iotRoleAlias": self.role_alias,
                "iotCredEndpoint": self.cred_endpoint,
            }}},
            "setenv": {"AWS_ENDPOINT_URL": self.endpoint_url},
        }
        header = "# nucleus sandbox: valid while this sandbox runs (its ports change on each start)\n"
        text: str = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
        return header + text

    def apply(self, config: NucleusConfig) -> NucleusConfig:
        """`config` pointed at this sandbox: its device identity, provider, region and AWS_ENDPOINT_URL."""
        return config.with_updates(
            thing_name=self.thing_name, region=self.region, certificate_path=str(self.certificate_path),
            private_key_path=str(self.private_key_path), root_ca_path=str(self.root_ca_path),
            iot_role_alias=self.role_alias, iot_cred_endpoint=self.cred_endpoint,
            setenv={**config.setenv, "AWS_ENDPOINT_URL": self.endpoint_url}, sandbox=True)


def _require_extra() -> None:
    for module in ("moto", "boto3", "flask", "werkzeug"):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise NucleusError("the sandbox needs the 'sandbox' extra (moto with its server)",
                               hint="pip install 'nucleus[sandbox]'")


class Sandbox:
    """Starts and stops the sandbox's two processes; one `start` per object."""

    def __init__(self, *, log: Callable[..., None] | None = None, start_timeout: float = START_TIMEOUT) -> None:
        self._log = log
        self._start_timeout = start_timeout
        self._procs: list[subprocess.Popen[bytes]] = []
        self._parent_fd: int | None = None
        self.info: SandboxInfo | None = None

    @property
    def pids(self) -> list[int]:
        """The children's process ids (for tests and `list --json`)."""
        return [proc.pid for proc in self._procs]

    def start(self, root_sandbox_dir: Path) -> SandboxInfo:
        """Start the sandbox using the folder `root_sandbox_dir` (normally `<root>/sandbox`)."""
        if self.info is not None:
            return self.info
        _require_extra()
        from nucleus.sandbox import _child
        from nucleus.sandbox.aws import set_up_account
        from nucleus.sandbox.certs import ensure_certificates
        from nucleus.sandbox.emulator import ACCESS_KEY_ENV, SECRET_KEY_ENV

        began = time.monotonic()
        folder = Path(root_sandbox_dir)
        logs = folder / "logs"
        try:
            certs, created = ensure_certificates(folder)
            logs.mkdir(exist_ok=True)
        except OSError as exc:
            raise NucleusError(f"{folder}: cannot create the sandbox's files ({exc.strerror or exc})",
                               hint="check that the nucleus root is writable") from None
        read_end, self._parent_fd = os.pipe()
        package_root = str(Path(__file__).resolve().parent.parent.parent)
        python_path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
        try:
            moto_log = logs / "moto.log"
            moto = _child.spawn(["-m", "nucleus.sandbox.aws"], parent_fd=read_end, log_path=moto_log,
                                env=_child.child_environment({"PYTHONPATH": python_path}))
            self._procs.append(moto)
            moto_port = _child.wait_ready(moto, "AWS endpoint (moto)", moto_log, self._start_timeout)
            endpoint_url = f"http://127.0.0.1:{moto_port}"
            try:
                account = set_up_account(endpoint_url)
            except NucleusError:
                raise
            except Exception as exc:  # botocore and requests errors: one line, no secrets in them
                raise FailedError(f"setting up the sandbox's AWS account failed ({type(exc).__name__}: {exc})",
                                  hint=f"see {moto_log}") from None
            emulator_log = logs / "emulator.log"
            emulator = _child.spawn(
                ["-m", "nucleus.sandbox.emulator", "--ca", str(certs.root_ca), "--cert", str(certs.server_cert),
                 "--key", str(certs.server_key), "--sts-endpoint", endpoint_url, "--role-arn", account.role_arn,
                 "--role-alias", ROLE_ALIAS, "--region", REGION],
                parent_fd=read_end, log_path=emulator_log,
                env=_child.child_environment({"PYTHONPATH": python_path, ACCESS_KEY_ENV: account.access_key_id,
                                              SECRET_KEY_ENV: account.secret_access_key}))
            self._procs.append(emulator)
            emulator_port = _child.wait_ready(emulator, "credentials-provider emulator", emulator_log,
                                              self._start_timeout)
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(read_end)
        self.info = SandboxInfo(
            cred_endpoint=f"127.0.0.1:{emulator_port}", root_ca_path=certs.root_ca,
            certificate_path=certs.device_cert, private_key_path=certs.device_key, role_alias=ROLE_ALIAS,
            thing_name=certs.thing_name, region=REGION, endpoint_url=endpoint_url, buckets=account.buckets)
        if self._log is not None:
            self._log("sandbox-started", endpoint_url=endpoint_url, cred_endpoint=self.info.cred_endpoint,
                      certificates="created" if created else "reused", seconds=round(time.monotonic() - began, 2))
        return self.info

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop both processes (SIGTERM, then SIGKILL after `grace`) and wait for them; safe to repeat."""
        from nucleus.sandbox._child import terminate

        for proc in reversed(self._procs):
            terminate(proc, grace)
        self._procs.clear()
        if self._parent_fd is not None:
            os.close(self._parent_fd)
            self._parent_fd = None
        if self.info is not None and self._log is not None:
            self._log("sandbox-stopped")
        self.info = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
