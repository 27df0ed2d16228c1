"""The seed example end to end: the ListS3Buckets recipe and script, unchanged, against the local sandbox.

Real parts only: the nucleus, its token exchange service, the mTLS credentials-provider emulator, moto's
server with signature checks on, and the recipe's own `pip3 install --user boto3` and boto3 client.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap

import pytest
from conftest import REPO, Nucleus, wait_for

pytestmark = pytest.mark.slow

SEED = REPO / "recipes" / "com.example.ListS3Buckets-1.0.0.yaml"
BUCKETS = ["nucleus-sandbox-bucket-1", "nucleus-sandbox-bucket-2", "nucleus-sandbox-bucket-3"]

PROBE = textwrap.dedent('''
    import json, os, urllib.request, urllib.error
    url = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    results = {}
    for name, headers in (("none", {}), ("wrong", {"Authorization": "x" * 16}),
                          ("own", {"Authorization": os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]})):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as answer:
                body = json.loads(answer.read())
                results[name] = [answer.status, sorted(body), body["Expiration"][-1]]
        except urllib.error.HTTPError as error:
            results[name] = [error.code]
    print("PROBE " + json.dumps(results, sort_keys=True))
''')

WRONG_KEYS = textwrap.dedent('''
    import boto3, botocore.exceptions
    try:
        boto3.client("s3").list_buckets()
        print("WRONG-KEYS accepted")
    except botocore.exceptions.ClientError as error:
        print("WRONG-KEYS refused " + error.response["Error"]["Code"])
''')


def with_script(nucleus: Nucleus, name: str, script: str, setenv: str = "") -> str:
    folder = nucleus.workdir / "components" / name / "1.0.0"
    folder.mkdir(parents=True)
    (folder / "script.py").write_text(script)
    extra = """
        ComponentDependencies:
          aws.greengrass.TokenExchangeService: {VersionRequirement: ^2.0.0}
    """
    lifecycle = f"Run:\n  Script: {sys.executable} -u {{artifacts:path}}/script.py"
    if setenv:
        lifecycle += f"\n  Setenv: {setenv}"
    return str(nucleus.recipe(name, lifecycle, extra=extra))


def test_seed_recipe_lists_the_sandbox_buckets(nucleus: Nucleus) -> None:
    result = nucleus.run("deploy", "--sandbox", str(SEED), timeout=600,
                         env={"AWS_ACCESS_KEY_ID": "AKIAUSERSOWNKEY00000", "AWS_SECRET_ACCESS_KEY": "user-secret"})
    assert result.code == 0, result.out + result.err
    out = result.out
    assert "aws.greengrass.TokenExchangeService: STARTING -> RUNNING (serving credentials on http://127.0.0.1:" in out
    assert "com.example.ListS3Buckets: INSTALLED -> STARTING (dependencies ready)" in out
    for bucket in BUCKETS:
        assert f"com.example.ListS3Buckets | \t{bucket}" in out
    assert "com.example.ListS3Buckets | Successfully listed S3 buckets" in out
    assert out.index("TokenExchangeService: STARTING -> RUNNING") < out.index("ListS3Buckets: INSTALLED -> STARTING")
    log = nucleus.log("com.example.ListS3Buckets")
    assert "INFO [install]" in log and "INFO [run] Successfully listed S3 buckets" in log
    for secret in ("user-secret", "AKIAUSERSOWNKEY00000"):
        assert secret not in (nucleus.root / "logs" / "nucleus.log").read_text()


def test_the_endpoint_wants_the_components_own_token(nucleus: Nucleus) -> None:
    recipe = with_script(nucleus, "com.example.Probe", PROBE)
    result = nucleus.run("deploy", "--sandbox", recipe, timeout=300)
    assert result.code == 0, result.out + result.err
    line = next(line for line in result.out.splitlines() if "PROBE " in line)
    probe = json.loads(line.split("PROBE ", 1)[1])
    assert probe["none"] == [403] and probe["wrong"] == [403]
    assert probe["own"] == [200, ["AccessKeyId", "Expiration", "SecretAccessKey", "Token"], "Z"]


def test_requests_signed_with_wrong_credentials_are_refused(nucleus: Nucleus) -> None:
    recipe = with_script(nucleus, "com.example.WrongKeys", WRONG_KEYS,
                         setenv="{AWS_ACCESS_KEY_ID: AKIAWRONGWRONGWRONG1, AWS_SECRET_ACCESS_KEY: wrong}")
    result = nucleus.run("deploy", "--sandbox", recipe, timeout=300)
    assert result.code == 0, result.out + result.err
    assert "WRONG-KEYS refused" in result.out


def test_seed_through_a_daemon_started_with_the_sandbox(nucleus: Nucleus) -> None:
    daemon = nucleus.popen("start", "--sandbox")
    try:
        wait_for(lambda: (nucleus.root / "nucleus.sock").exists(), timeout=120, what="the daemon")
        plain = nucleus.run("deploy", str(SEED), timeout=600)
        assert plain.code == 0, plain.out + plain.err
        assert all(f"\t{bucket}" in nucleus.log("com.example.ListS3Buckets") for bucket in BUCKETS)
        states = {c["name"]: c for c in json.loads(nucleus.run("list", "--json").out)}
        assert states["aws.greengrass.TokenExchangeService"] == {
            "builtin": True, "name": "aws.greengrass.TokenExchangeService", "state": "RUNNING", "version": "2.0.3"}
        assert states["com.example.ListS3Buckets"]["state"] == "FINISHED"
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=60)
    assert daemon.returncode == 0


def test_sandbox_deploy_to_a_daemon_without_it_says_so(nucleus: Nucleus) -> None:
    daemon = nucleus.popen("start")
    try:
        wait_for(lambda: (nucleus.root / "nucleus.sock").exists(), what="the daemon")
        result = nucleus.run("deploy", "--sandbox", str(SEED))
        assert result.code == 2
        assert result.err.startswith(f"the nucleus running on {nucleus.root} was started without --sandbox")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=60)


def test_token_exchange_without_its_settings_is_one_clear_error(nucleus: Nucleus) -> None:
    result = nucleus.run("deploy", str(SEED))
    assert result.code == 2
    assert "iotRoleAlias" in result.err and len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err
    assert not (nucleus.root / "logs" / "com.example.ListS3Buckets.log").exists()


def test_without_the_sandbox_extra_it_says_how_to_install_it(nucleus: Nucleus) -> None:
    import subprocess

    from conftest import nucleus_command, nucleus_env

    hide_moto = ("import sys, importlib.abc\n"
                 "class Hide(importlib.abc.MetaPathFinder):\n"
                 "    def find_spec(self, name, path, target=None):\n"
                 "        if name.split('.')[0] == 'moto': raise ImportError('no moto here')\n"
                 "sys.meta_path.insert(0, Hide())\n"
                 "from nucleus.cli import main; sys.exit(main(sys.argv[1:]))\n")
    args = nucleus_command(nucleus.root, "deploy", "--sandbox", str(SEED))[3:]
    done = subprocess.run([sys.executable, "-c", hide_moto, *args], capture_output=True, text=True,
                          env=nucleus_env(), cwd=nucleus.workdir, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "the sandbox needs the 'sandbox' extra" in done.stderr and "pip install 'nucleus[sandbox]'" in done.stderr


def test_sandbox_command_prints_a_working_config(nucleus: Nucleus) -> None:
    proc = nucleus.popen("sandbox")
    try:
        first = proc.stdout.readline()
        assert first.startswith("# nucleus sandbox")
        config_file = nucleus.root / "sandbox" / "config.yaml"
        wait_for(config_file.exists, what="the sandbox config")
        text = config_file.read_text()
        assert "iotCredEndpoint: 127.0.0.1:" in text and "AWS_ENDPOINT_URL: http://127.0.0.1:" in text
        assert oct(config_file.stat().st_mode & 0o777) == "0o600"
        key = nucleus.root / "sandbox" / "private.pem.key"
        assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"
        # the printed config works for another nucleus root, with no --sandbox
        other = Nucleus(nucleus.root.parent / "other-root", nucleus.workdir)
        result = other.run("--config", str(config_file), "deploy", str(SEED), timeout=600)
        assert result.code == 0, result.out + result.err
        assert "\tnucleus-sandbox-bucket-1" in result.out
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 0


def test_environment_hides_user_credentials_in_sandbox_mode(nucleus: Nucleus) -> None:
    recipe = nucleus.recipe("com.example.Env", 'Run: echo "id=[$AWS_ACCESS_KEY_ID] creds=$AWS_SHARED_CREDENTIALS_FILE"')
    result = nucleus.run("deploy", "--sandbox", str(recipe), timeout=300,
                         env={"AWS_ACCESS_KEY_ID": "AKIAUSER", "AWS_PROFILE": "mine"})
    assert result.code == 0, result.err
    assert f"com.example.Env | id=[] creds={os.devnull}" in result.out


def test_the_pep_668_variant_of_the_recipe_works(nucleus: Nucleus) -> None:
    recipe = REPO / "examples" / "pep668" / "com.example.ListS3Buckets-1.0.0.yaml"
    result = nucleus.run("deploy", "--sandbox", str(recipe), "--artifacts", str(REPO / "components"), timeout=900)
    assert result.code == 0, result.out + result.err
    assert "com.example.ListS3Buckets | \tnucleus-sandbox-bucket-1" in result.out
    assert (nucleus.root / "work" / "com.example.ListS3Buckets" / "venv" / "bin" / "python").exists()
