"""The composition root: the parts every running nucleus has, built in one place and wired explicitly.

Both the foreground deploy and `nucleus start` build a `Runtime`: the state database, the nucleus log, the
kernel with its recorder, the deployer with the built-in components, and this device's platform.
"""

from __future__ import annotations

from collections.abc import Mapping

from nucleus.builtins import builtin_factories
from nucleus.config import NucleusConfig
from nucleus.deployment import Deployer, Recorder, end_leftovers
from nucleus.lifecycle.kernel import Kernel, KernelOptions
from nucleus.lifecycle.logs import Echo, NucleusLog
from nucleus.paths import RootLayout
from nucleus.recipe.platform import detect_platform
from nucleus.state import State


class Runtime:
    """State, logs, kernel and deployer of one nucleus root. `open()` inside the event loop; `close()`."""

    def __init__(self, layout: RootLayout, config: NucleusConfig, *, echo: Echo | None = None,
                 mirror: Echo | None = None, daemon: bool = False) -> None:
        self.layout, self.config = layout, config
        layout.ensure()
        self.state = State(layout.state_file)
        self.log = NucleusLog(layout.nucleus_log, config.log_file_size_kb * 1024, config.log_file_count, mirror)
        self.recorder = Recorder(self.state, self.log)
        self.kernel = Kernel(layout, config, self.log, KernelOptions(echo=echo, observer=self.recorder))
        self.device: Mapping[str, str] = detect_platform(config.platform_override)
        self.deployer = Deployer(self.kernel, layout, config, self.recorder, self.device,
                                 builtin_factories(config), offload=daemon)

    async def open(self) -> int:
        """Attach the kernel to the running loop and end what a killed predecessor left behind."""
        self.kernel.open()
        return await end_leftovers(self.state)

    def close(self) -> None:
        self.recorder.flush()
        self.kernel.close()
        self.log.close()
        self.state.close()


def start_sandbox(layout: RootLayout, config: NucleusConfig, echo: Echo) -> tuple["object", NucleusConfig]:
    """Start the local AWS sandbox for this root; returns it (to stop later) and the config pointed at it."""
    from nucleus.sandbox import Sandbox

    echo("nucleus: starting the local AWS sandbox (moto's S3/STS/IAM and a credentials-provider emulator)")
    sandbox = Sandbox()
    info = sandbox.start(layout.sandbox_dir)
    echo(f"nucleus: sandbox ready: AWS endpoint {info.endpoint_url}, credentials provider "
         f"{info.cred_endpoint}, buckets {', '.join(info.buckets)}")
    return sandbox, info.apply(config)
