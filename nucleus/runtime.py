"""The composition root: the parts every running nucleus has, built in one place and wired explicitly.

Both the foreground deploy and `nucleus start` build a `Runtime`: the state database, the nucleus log, the
event bus with the recorder listening, the kernel, the deployer with the built-in components, the status
keeper and the deployment manager — the one path every deployment takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from nucleus.builtins import builtins
from nucleus.config import NucleusConfig
from nucleus.deployment.apply import Deployer
from nucleus.deployment.manager import DeploymentManager
from nucleus.deployment.status import StatusKeeper
from nucleus.lifecycle.events import Bus
from nucleus.lifecycle.kernel import Kernel
from nucleus.lifecycle.logs import Echo, NucleusLog
from nucleus.paths import RootLayout
from nucleus.recipe.platform import detect_platform
from nucleus.recorder import Recorder
from nucleus.recovery import end_leftovers
from nucleus.state import State

if TYPE_CHECKING:
    from nucleus.sandbox import Sandbox


class Runtime:
    """State, logs, kernel and deployments of one nucleus root. `open()` inside the event loop; `close()`."""

    def __init__(self, layout: RootLayout, config: NucleusConfig, *, echo: Echo | None = None,
                 mirror: Echo | None = None, daemon: bool = False) -> None:
        self.layout, self.config = layout, config
        layout.ensure()
        self.state = State(layout.state_file)
        self.log = NucleusLog(layout.nucleus_log, config.log_file_size_kb * 1024, config.log_file_count, mirror)
        self.bus = Bus()
        self.recorder = Recorder(self.state, self.log)
        self.recorder.attach(self.bus)
        self.kernel = Kernel(layout, config, self.log, self.bus, echo=echo)
        self.device: Mapping[str, str] = detect_platform(config.platform_override)
        self.deployer = Deployer(self.kernel, layout, config, self.state, self.device, builtins(config),
                                 offload=daemon)
        self.manager = DeploymentManager(self.kernel, self.deployer, StatusKeeper(self.state), self.state,
                                         layout, config)

    async def open(self) -> int:
        """Attach the kernel to the running loop, bring an older store's layout up to date, and end what a
        killed predecessor left behind (returns how many processes that was)."""
        self.kernel.open()
        moved = self.deployer.store.migrate()
        if moved:
            self.log.event("store-migrated", components=moved)
        return await end_leftovers(self.state)

    def close(self) -> None:
        self.recorder.close()
        self.kernel.close()
        self.log.close()
        self.state.close()


def start_sandbox(layout: RootLayout, config: NucleusConfig, echo: Echo) -> tuple[Sandbox, NucleusConfig]:
    """Start the local AWS sandbox for this root; returns it (to stop later) and the config pointed at it."""
    from nucleus.sandbox import Sandbox

    echo("nucleus: starting the local AWS sandbox (moto's S3/STS/IAM and a credentials-provider emulator)")
    sandbox = Sandbox()
    info = sandbox.start(layout.sandbox_dir)
    echo(f"nucleus: sandbox ready: AWS endpoint {info.endpoint_url}, credentials provider "
         f"{info.cred_endpoint}, buckets {', '.join(info.buckets)}")
    return sandbox, info.apply(config)
