"""How a step is launched, described before it is done: the script, its environment, its working folder.

`Launch` is a plain value: the kernel builds it (`describe`), `process.spawn` carries it out. Building is
pure — the environment comes from the nucleus's own environment and config, the contributions of built-in
services (the token exchange service's endpoint…), the recipe's `Setenv`, and last the component's token —
so what a step gets is testable without starting anything. Resource control and users will add their
fields here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from nucleus.config import NucleusConfig
from nucleus.recipe.model import Lifecycle, Step

AWS_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


class Launch(NamedTuple):
    """Everything needed to start one step."""

    script: str
    env: Mapping[str, str]
    cwd: str


def component_environment(config: NucleusConfig, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every step starts from: the nucleus's own, minus its virtualenv, plus Greengrass's.

    Without the virtualenv, `python3` and `pip3 install --user` in a recipe mean the system's, as on a
    device. In sandbox mode AWS credentials inherited from the user are removed and `~/.aws` is hidden,
    so that the token exchange service is what components use.
    """
    env = dict(os.environ if environ is None else environ)
    venvs = {env.pop("VIRTUAL_ENV", None), sys.prefix if sys.prefix != sys.base_prefix else None} - {None}
    venv_bins = {os.path.normpath(os.path.join(venv, "bin")) for venv in venvs if venv}
    if venv_bins and "PATH" in env:
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                      if os.path.normpath(p) not in venv_bins)
    env.pop("PYTHONHOME", None)
    if config.sandbox:
        for name in AWS_CREDENTIAL_VARIABLES:
            env.pop(name, None)
        env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        env["AWS_CONFIG_FILE"] = os.devnull
    env.update(config.setenv)
    env.update({
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "AWS_IOT_THING_NAME": config.thing_name,
        "GG_ROOT_CA_PATH": config.root_ca_path or "",
        "GGC_VERSION": config.nucleus_version,
        "PYTHONUNBUFFERED": "1",
    })
    return env


def step_environment(base: Mapping[str, str], contributions: Sequence[Mapping[str, str]], lifecycle: Lifecycle,
                     step: Step, token: str) -> dict[str, str]:
    """Base, then what built-ins contribute, then the recipe's `Setenv` (lifecycle, then step), then the
    component's identity — last, so that no `Setenv` can change it: the token is how a stop finds every
    process of the component, and what the token exchange service and IPC check."""
    env = dict(base)
    for contribution in contributions:
        env.update(contribution)
    env.update(lifecycle.setenv)
    env.update(step.setenv)
    env["SVCUID"] = env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
    return env


def describe(step: Step, env: Mapping[str, str], work_dir: str) -> Launch:
    return Launch(step.script, env, work_dir)


def skipif_holds(skipif: str, env: Mapping[str, str], work_dir: str) -> bool:
    """Greengrass's Skipif: `onpath <program>` (on the step's PATH) or `exists <path>` (relative to the work
    folder); `!` in front negates."""
    text = skipif.strip()
    negate = text.startswith("!")
    check, _, argument = text.lstrip("!").strip().partition(" ")
    argument = argument.strip()
    if check.lower() == "onpath":
        import shutil

        found = shutil.which(argument, path=env.get("PATH")) is not None
    else:
        found = os.path.exists(os.path.join(work_dir, os.path.expanduser(argument)))
    return found != negate
