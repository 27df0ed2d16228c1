"""The nucleus config: Greengrass keys, defaults, one clear line for a wrong value."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Nucleus

from nucleus.config import ConfigError, load_config
from nucleus.errors import NotFoundError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = load_config(None)
    assert (config.thing_name, config.region, config.error_reset_time, config.graceful_shutdown_timeout) == (
        "", "us-east-1", 3600.0, 5.0)


def test_example_config_reads(tmp_path: Path) -> None:
    from conftest import REPO

    config = load_config(REPO / "examples" / "config.yaml")
    assert config.thing_name == "MyGreengrassCore"
    assert config.iot_role_alias == "GreengrassCoreTokenExchangeRoleAlias"
    assert config.root_ca_path == "/greengrass/v2/AmazonRootCA1.pem"
    assert config.tes_port == 0


def test_every_key(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
system: {thingName: T, rootpath: /r, certificateFilePath: /c, privateKeyPath: /k, rootCaPath: /ca}
services:
  aws.greengrass.Nucleus:
    version: 2.9.0
    configuration:
      awsRegion: eu-west-1
      iotRoleAlias: Alias
      iotCredEndpoint: x.credentials.iot.eu-west-1.amazonaws.com
      platformOverride: {os: linux, custom: 1}
      errorResetTime: 10
      gracefulShutdownTimeout: 2.5
      startupSettleSeconds: 0
      logging: {fileSizeKB: 10, fileCount: 2}
  aws.greengrass.TokenExchangeService:
    configuration: {port: 8080, credentialRetryInSec: 30}
setenv: {A: b, N: 1}
unknownTopLevel: ignored
"""))
    assert config.thing_name == "T" and config.rootpath == "/r" and config.region == "eu-west-1"
    assert config.nucleus_version == "2.9.0" and config.platform_override == {"os": "linux", "custom": "1"}
    assert (config.error_reset_time, config.graceful_shutdown_timeout, config.startup_settle_seconds) == (10, 2.5, 0)
    assert (config.log_file_size_kb, config.log_file_count, config.tes_port) == (10, 2, 8080)
    assert config.credential_retry_in_sec == 30 and config.setenv == {"A": "b", "N": "1"}


@pytest.mark.parametrize("text, expected", [
    ("services:\n  aws.greengrass.Nucleus:\n    configuration:\n      errorResetTime: soon\n",
     "config.yaml:4:7: services.aws.greengrass.Nucleus.configuration.errorResetTime: 'soon' is not a number"),
    ("services:\n  aws.greengrass.TokenExchangeService:\n    configuration: {port: 70000}\n",
     "services.aws.greengrass.TokenExchangeService.configuration.port: '70000' is not a port number"),
    ("system: [a]\n", "config.yaml:1:1: system: must be a mapping of keys"),
    ("setenv: {A: [1]}\n", "setenv.A: must be text"),
    ("system:\n  thingName: a\n thingName: b\n", "invalid YAML"),
])
def test_wrong_values_are_one_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_missing_config_file_from_the_cli(nucleus: Nucleus) -> None:
    result = nucleus.run("--config", "nope.yaml", "list")
    assert result.code == 2
    assert result.err == "nope.yaml: no such config file — check the path\n"


def test_config_setenv_and_thing_name_reach_components(nucleus: Nucleus, tmp_path: Path) -> None:
    config = write(tmp_path, "system: {thingName: Thing1}\nsetenv: {GREETING: hello}\n")
    recipe = nucleus.recipe("com.example.Cfg", 'Run: echo "$GREETING {iot:thingName} $AWS_IOT_THING_NAME"')
    result = nucleus.run("--config", str(config), "deploy", str(recipe))
    assert result.code == 0, result.err
    assert "com.example.Cfg | hello Thing1 Thing1" in result.out


def test_rootpath_from_config_when_no_root_is_given(nucleus: Nucleus, tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import nucleus_env

    root = tmp_path / "from-config"
    config = write(tmp_path, f"system: {{rootpath: {root}}}\n")
    recipe = nucleus.recipe("com.example.Cfg", "Run: 'true'")
    done = subprocess.run([sys.executable, "-m", "nucleus", "--config", str(config), "deploy", str(recipe)],
                          capture_output=True, text=True, env=nucleus_env(), cwd=nucleus.workdir)
    assert done.returncode == 0, done.stderr
    assert (root / "logs" / "com.example.Cfg.log").is_file()


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_config(tmp_path / "absent.yaml")
