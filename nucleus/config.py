"""The nucleus configuration: Greengrass's `config.yaml` keys, read into one typed value.

Only the keys the nucleus uses are read; the rest of a Greengrass config file is accepted and ignored, so
a device's existing `config.yaml` works unchanged. A wrong value is one error naming the file, the line
and the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from nucleus import GREENGRASS_COMPAT_VERSION
from nucleus.errors import NucleusError

NUCLEUS = "aws.greengrass.Nucleus"
TES = "aws.greengrass.TokenExchangeService"
DEFAULT_REGION = "us-east-1"


class NucleusConfig(NamedTuple):
    """Everything the nucleus reads from its configuration, with Greengrass's defaults."""

    source: str | None = None  # the file it came from, None for defaults
    thing_name: str = ""
    region: str = DEFAULT_REGION
    rootpath: str | None = None
    certificate_path: str | None = None
    private_key_path: str | None = None
    root_ca_path: str | None = None
    iot_role_alias: str | None = None
    iot_cred_endpoint: str | None = None
    iot_data_endpoint: str | None = None
    nucleus_version: str = GREENGRASS_COMPAT_VERSION
    platform_override: Mapping[str, str] = {}
    error_reset_time: float = 3600.0
    graceful_shutdown_timeout: float = 5.0
    startup_settle_seconds: float = 1.0
    log_file_size_kb: int = 1024
    log_file_count: int = 5
    tes_port: int = 0
    credential_retry_in_sec: float | None = None
    setenv: Mapping[str, str] = {}
    unarchive_max_mb: float | None = None  # unarchive.maxSizeMB: a fixed cap on what one ZIP unpacks to
    unarchive_max_ratio: float = 100.0  # unarchive.maxRatio: unpacked size ÷ archive size
    sandbox: bool = False  # set by `--sandbox`, never read from a file

    def with_updates(self, **changes: Any) -> "NucleusConfig":
        return self._replace(**changes)


class ConfigError(NucleusError):
    """A config file that cannot be used as it is."""


def load_config(path: Path | None) -> NucleusConfig:
    """Read `path` (a Greengrass-style config.yaml); None gives the defaults."""
    if path is None:
        return NucleusConfig()
    from nucleus.recipe import read_file
    from nucleus.recipe.load import LoadError, format_of, parse_document

    data = read_file(path, "config")
    try:
        doc = parse_document(data.decode("utf-8-sig"), str(path), format_of(path.name))
    except UnicodeDecodeError:
        raise ConfigError("the file is not UTF-8 text", where=str(path), hint="save it as UTF-8") from None
    except LoadError as exc:
        raise ConfigError(f"{exc.message}", where=f"{path}:{exc.line}:{exc.column}", hint=exc.hint) from None
    return _Reader(doc).config()


class _Reader:
    """Reads typed values out of a loaded document, naming the line of anything wrong."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc

    def fail(self, path: tuple[str, ...], message: str, hint: str) -> None:
        line, column = self.doc.mark(path)
        key = ".".join(str(p) for p in path)
        raise ConfigError(f"{key}: {message}", where=f"{self.doc.source}:{line}:{column}", hint=hint)

    def node(self, path: tuple[str, ...]) -> Any:
        value = self.doc.data
        for index, part in enumerate(path):
            if value is None:
                return None
            if not isinstance(value, dict):
                self.fail(path[:index], "must be a mapping of keys", "indent its keys under it")
            value = value.get(part)
        return value

    def text(self, path: tuple[str, ...]) -> str | None:
        value = self.node(path)
        if value is None:
            return None
        if isinstance(value, (dict, list)):
            self.fail(path, "must be text", "write the value on the same line as the key")
        return str(self.doc.texts.get(path, str(value)))

    def number(self, path: tuple[str, ...], default: float, *, minimum: float = 0) -> float:
        value = self.node(path)
        if value is None:
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(value, bool) or not (number >= minimum and math.isfinite(number)):
            self.fail(path, f"'{value}' is not a number of at least {minimum:g}", "write a plain number")
        return number

    def port(self, path: tuple[str, ...]) -> int:
        port = self.number(path, 0)
        if port != int(port) or port > 65535:
            self.fail(path, f"'{port:g}' is not a port number", "use 0 (any free port) or 1-65535")
        return int(port)

    def mapping(self, path: tuple[str, ...]) -> dict[str, str]:
        value = self.node(path)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, "must be a mapping of names to values", "indent `NAME: value` lines under it")
        result = {}
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                self.fail(path + (key,), "must be text", "quote the value")
            result[str(key)] = "" if item is None else self.doc.texts.get(path + (key,), str(item))
        return result

    def config(self) -> NucleusConfig:
        if self.doc.data is not None and not isinstance(self.doc.data, dict):
            self.fail((), "a config file is a mapping with `system:` and `services:`", "see docs/config.md")
        system = ("system",)
        nucleus = ("services", NUCLEUS, "configuration")
        tes = ("services", TES, "configuration")
        retry = self.node(tes + ("credentialRetryInSec",))
        max_mb = self.node(nucleus + ("unarchive", "maxSizeMB"))
        return NucleusConfig(
            source=self.doc.source,
            thing_name=self.text(system + ("thingName",)) or "",
            region=self.text(nucleus + ("awsRegion",)) or DEFAULT_REGION,
            rootpath=self.text(system + ("rootpath",)),
            certificate_path=self.text(system + ("certificateFilePath",)),
            private_key_path=self.text(system + ("privateKeyPath",)),
            root_ca_path=self.text(system + ("rootCaPath",)),
            iot_role_alias=self.text(nucleus + ("iotRoleAlias",)),
            iot_cred_endpoint=self.text(nucleus + ("iotCredEndpoint",)),
            iot_data_endpoint=self.text(nucleus + ("iotDataEndpoint",)),
            nucleus_version=self.text(("services", NUCLEUS, "version")) or GREENGRASS_COMPAT_VERSION,
            platform_override=self.mapping(nucleus + ("platformOverride",)),
            error_reset_time=self.number(nucleus + ("errorResetTime",), 3600.0, minimum=1),
            graceful_shutdown_timeout=self.number(nucleus + ("gracefulShutdownTimeout",), 5.0),
            startup_settle_seconds=self.number(nucleus + ("startupSettleSeconds",), 1.0),
            log_file_size_kb=int(self.number(nucleus + ("logging", "fileSizeKB"), 1024, minimum=1)),
            log_file_count=int(self.number(nucleus + ("logging", "fileCount"), 5, minimum=1)),
            tes_port=self.port(tes + ("port",)),
            credential_retry_in_sec=None if retry is None else self.number(tes + ("credentialRetryInSec",), 0),
            setenv=self.mapping(("setenv",)),
            unarchive_max_mb=None if max_mb is None else self.number(nucleus + ("unarchive", "maxSizeMB"), 0, minimum=1),
            unarchive_max_ratio=self.number(nucleus + ("unarchive", "maxRatio"), 100.0, minimum=1),
        )
