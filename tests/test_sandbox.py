"""The local AWS sandbox: moto's server plus the mutual-TLS credentials-provider emulator, for real.

Slow (each start is a few seconds), so one sandbox serves the module; they still run in CI.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from nucleus.config import load_config
from nucleus.errors import NucleusError
from nucleus.sandbox import Sandbox, SandboxInfo
from nucleus.sandbox.certs import ensure_certificates
from nucleus.tes import (
    CredentialCache,
    CredentialServer,
    CredentialsProvider,
    ProviderError,
    TokenSet,
    check_settings,
)

REPO = Path(__file__).resolve().parent.parent
HANG_GUARD = 60.0  # seconds: only to stop a broken test from hanging


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, SandboxInfo]]:
    box = Sandbox()
    info = box.start(tmp_path_factory.mktemp("root") / "sandbox")
    try:
        yield box, info
    finally:
        box.stop()


def provider(info: SandboxInfo, **changes: Any) -> CredentialsProvider:
    options: dict[str, Any] = {
        "endpoint": info.cred_endpoint, "role_alias": info.role_alias, "thing_name": info.thing_name,
        "certificate_path": str(info.certificate_path), "private_key_path": str(info.private_key_path),
        "root_ca_path": str(info.root_ca_path)}
    options.update(changes)
    return CredentialsProvider(**options)


def s3(info: SandboxInfo, key: str, secret: str, token: str | None = None) -> Any:
    import boto3

    return boto3.session.Session().client("s3", endpoint_url=info.endpoint_url, region_name=info.region,
                                          aws_access_key_id=key, aws_secret_access_key=secret,
                                          aws_session_token=token)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_sandbox_info_and_files(sandbox: tuple[Sandbox, SandboxInfo]) -> None:
    box, info = sandbox
    assert info.cred_endpoint.startswith("127.0.0.1:") and info.endpoint_url.startswith("http://127.0.0.1:")
    assert info.region == "us-east-1" and info.buckets == (
        "nucleus-sandbox-bucket-1", "nucleus-sandbox-bucket-2", "nucleus-sandbox-bucket-3")
    folder = info.root_ca_path.parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for key in (info.private_key_path, folder / "server.pem.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not list(folder.glob("*ca*.key"))  # the CA key is never written
    for pid in box.pids:  # both children listen on loopback only
        process = psutil.Process(pid)
        connections = getattr(process, "net_connections", None) or process.connections  # psutil < 6
        listening = {conn.laddr.ip for conn in connections(kind="inet") if conn.status == psutil.CONN_LISTEN}
        assert listening == {"127.0.0.1"}


@pytest.mark.slow
def test_emulator_refuses_a_client_without_a_certificate(sandbox: tuple[Sandbox, SandboxInfo]) -> None:
    import requests

    _, info = sandbox
    url = f"https://{info.cred_endpoint}/role-aliases/{info.role_alias}/credentials"
    with pytest.raises(requests.exceptions.ConnectionError):  # SSLError is one
        requests.get(url, verify=str(info.root_ca_path), timeout=10)


@pytest.mark.slow
def test_emulator_refuses_a_certificate_from_another_ca(sandbox: tuple[Sandbox, SandboxInfo], tmp_path: Path) -> None:
    _, info = sandbox
    other, _ = ensure_certificates(tmp_path / "other", thing_name=info.thing_name)
    with pytest.raises(ProviderError) as caught:
        provider(info, certificate_path=str(other.device_cert), private_key_path=str(other.device_key)).fetch()
    assert (caught.value.status, caught.value.reason) == (502, "tls")
    assert "refused the device certificate" in caught.value.message


@pytest.mark.slow
def test_device_certificate_gets_credentials_that_list_the_seeded_buckets(sandbox: tuple[Sandbox, SandboxInfo]) -> None:
    _, info = sandbox
    creds = provider(info).fetch()
    assert creds.access_key_id.startswith("ASIA")
    left = creds.expiration.timestamp() - time.time()
    assert 3000 < left <= 3600
    client = s3(info, creds.access_key_id, creds.secret_access_key, creds.session_token)
    names = [bucket["Name"] for bucket in client.list_buckets()["Buckets"]]
    assert names == list(info.buckets)
    body = client.get_object(Bucket=info.buckets[0], Key="hello.txt")["Body"].read()
    assert body.startswith(b"Hello")


@pytest.mark.slow
def test_emulator_answers_like_the_real_provider(sandbox: tuple[Sandbox, SandboxInfo]) -> None:
    _, info = sandbox
    with pytest.raises(ProviderError) as caught:
        provider(info, role_alias="NoSuchAlias").fetch()
    assert caught.value.status == 404 and caught.value.message == "Role alias does not exist"
    with pytest.raises(ProviderError) as caught:
        provider(info, thing_name="SomeoneElse").fetch()
    assert caught.value.status == 403
    assert provider(info, thing_name="").fetch().access_key_id  # the header is optional, as on AWS


@pytest.mark.slow
def test_requests_signed_with_wrong_credentials_are_refused(sandbox: tuple[Sandbox, SandboxInfo]) -> None:
    from botocore.exceptions import ClientError

    _, info = sandbox
    creds = provider(info).fetch()
    attempts = {
        "made-up key": ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None),
        "wrong secret": (creds.access_key_id, "not-the-secret", creds.session_token),
        "no session token": (creds.access_key_id, creds.secret_access_key, None),
    }
    for what, (key, secret, token) in attempts.items():
        with pytest.raises(ClientError) as caught:
            s3(info, key, secret, token).list_buckets()
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, what


@pytest.mark.slow
def test_config_yaml_drives_the_whole_token_exchange_chain(sandbox: tuple[Sandbox, SandboxInfo], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """config.yaml → check_settings → provider → cache → local endpoint → boto3 as a component uses it."""
    import boto3

    _, info = sandbox
    path = tmp_path / "config.yaml"
    path.write_text(info.config_yaml())
    config = load_config(path)
    check_settings(config)
    assert config.iot_cred_endpoint == info.cred_endpoint and config.setenv == {"AWS_ENDPOINT_URL": info.endpoint_url}
    assert config.iot_role_alias == info.role_alias and config.thing_name == info.thing_name
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_ENDPOINT_URL", info.endpoint_url)
    monkeypatch.setenv("AWS_REGION", info.region)
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "componentToken01")

    async def main() -> tuple[str, list[str]]:
        cache = CredentialCache(CredentialsProvider.from_config(config).fetch,
                                retry_override=config.credential_retry_in_sec)
        server = CredentialServer(cache, TokenSet(["componentToken01"]).__contains__)
        await server.start()
        cache.start()
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.url)
        try:
            def list_buckets() -> tuple[str, list[str]]:
                session = boto3.session.Session()  # the default credential chain, as in a component
                method = session.get_credentials().method
                return method, [bucket["Name"] for bucket in session.client("s3").list_buckets()["Buckets"]]

            return await asyncio.to_thread(list_buckets)
        finally:
            await server.close()
            await cache.close()

    method, names = asyncio.run(asyncio.wait_for(main(), HANG_GUARD))
    assert method == "container-role" and names == list(info.buckets)


@pytest.mark.slow
def test_restart_reuses_certificates_and_stop_leaves_no_process(tmp_path: Path) -> None:
    folder = tmp_path / "sandbox"
    box = Sandbox()
    first = box.start(folder)
    pids = box.pids
    assert len(pids) == 2 and all(psutil.pid_exists(pid) for pid in pids)
    device_cert = first.certificate_path.read_bytes()
    box.stop()
    assert all(gone(pid) for pid in pids) and box.pids == [] and box.info is None
    box.stop()  # stopping twice is harmless
    again = Sandbox()
    try:
        second = again.start(folder)
        assert second.certificate_path.read_bytes() == device_cert
        assert second.cred_endpoint != "" and provider(second).fetch().access_key_id
    finally:
        again.stop()


@pytest.mark.slow
def test_children_exit_when_the_nucleus_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import json, sys, time
        from pathlib import Path
        from nucleus.sandbox import Sandbox
        box = Sandbox()
        box.start(Path({str(tmp_path / 'sandbox')!r}))
        print(json.dumps(box.pids), flush=True)
        time.sleep(600)
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env,
                              start_new_session=True)
    try:
        assert parent.stdout is not None
        pids = json.loads(parent.stdout.readline())
        assert len(pids) == 2 and all(psutil.pid_exists(pid) for pid in pids)
        os.kill(parent.pid, signal.SIGKILL)  # no chance to clean up
        parent.wait()
        wait_until(lambda: all(gone(pid) for pid in pids), "the sandbox's children to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_missing_extra_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto", None)  # what `import moto` sees without the extra
    with pytest.raises(NucleusError) as caught:
        Sandbox().start(tmp_path / "sandbox")
    assert "'sandbox' extra" in str(caught.value) and "pip install 'nucleus[sandbox]'" in str(caught.value)
    assert caught.value.exit_code == 2
    assert not (tmp_path / "sandbox").exists()


def test_certificates_are_made_once_and_remade_when_broken(tmp_path: Path) -> None:
    from cryptography import x509

    certs, created = ensure_certificates(tmp_path / "sandbox")
    assert created
    again, created = ensure_certificates(tmp_path / "sandbox")
    assert not created and again == certs
    server = x509.load_pem_x509_certificate(certs.server_cert.read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    ca = x509.load_pem_x509_certificate(certs.root_ca.read_bytes())
    x509.load_pem_x509_certificate(certs.device_cert.read_bytes()).verify_directly_issued_by(ca)
    certs.device_key.write_bytes(certs.server_key.read_bytes())  # a key of another certificate
    _, created = ensure_certificates(tmp_path / "sandbox")
    assert created
    assert not list((tmp_path / "sandbox").glob(".*"))  # no temporary files left behind


def test_tls_context_of_the_emulator_requires_client_certificates(tmp_path: Path) -> None:
    from nucleus.sandbox.emulator import tls_context

    certs, _ = ensure_certificates(tmp_path / "sandbox")
    context = tls_context(str(certs.root_ca), str(certs.server_cert), str(certs.server_key))
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_public_surface() -> None:
    import nucleus.sandbox

    assert sorted(nucleus.sandbox.__all__) == ["ROLE_ALIAS", "Sandbox", "SandboxInfo"]
