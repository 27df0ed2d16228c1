"""The token exchange service: provider client, cache and local endpoint, with real parts only.

The AWS IoT credentials provider is outside this machine, so a real mutual-TLS HTTPS server on
127.0.0.1 (certificates made here with `cryptography`) answers as it does. The local endpoint is
exercised over real sockets, and botocore's own container-credentials client reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from nucleus.config import NucleusConfig, load_config
from nucleus.errors import NotFoundError, NucleusError
from nucleus.tes import (
    PATH,
    CredentialCache,
    Credentials,
    CredentialServer,
    CredentialsProvider,
    ProviderError,
    TokenSet,
    check_settings,
)
from nucleus.tes.cache import refresh_time

UTC = dt.timezone.utc
HANG_GUARD = 30.0  # seconds: only to stop a broken test from hanging, never a performance bound
MINUTE = 60.0


# -- certificates -----------------------------------------------------------------------------------


class Pki:
    """A throwaway CA that issues server and client certificates into a folder."""

    def __init__(self, folder: Path, name: str) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        self.folder, self.name = folder, name
        folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = self._name(name)
        now = dt.datetime.now(UTC)
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.ca_path = folder / f"{name}-ca.pem"
        self.ca_path.write_bytes(self._pem(self.cert))

    @staticmethod
    def _name(common: str) -> Any:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    @staticmethod
    def _pem(cert: Any) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, common: str, *, server: bool = False, rsa: bool = False,
              expired: bool = False) -> tuple[Path, Path]:
        """(certificate path, key path) for `common`, signed by this CA."""
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

        key = rsa_keys.generate_private_key(65537, 2048) if rsa else ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(UTC)
        end = now - dt.timedelta(days=1) if expired else now + dt.timedelta(days=30)
        builder = (x509.CertificateBuilder().subject_name(self._name(common)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(days=2)).not_valid_after(end))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path = self.folder / f"{self.name}-{common}.pem.crt"
        key_path = self.folder / f"{self.name}-{common}.pem.key"
        cert_path.write_bytes(self._pem(cert))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_path.chmod(0o600)
        return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("pki")
    aws, device_ca, stranger = Pki(folder, "aws"), Pki(folder, "device"), Pki(folder, "stranger")
    return {
        "aws": aws, "device_ca": device_ca, "stranger": stranger,
        "server": aws.issue("provider", server=True),
        "untrusted_server": stranger.issue("provider", server=True),
        "device": device_ca.issue("MyThing"),
        "other_device": device_ca.issue("OtherThing"),
    }


# -- a fake AWS IoT credentials provider (mutual TLS, answers like AWS) -----------------------------



@dataclass
class FakeProvider:
    """What the fake provider answers next, and what it saw."""

    port: int = 0
    status: int = 200
    body: bytes | None = None  # None: good credentials
    lifetime: float = 3600.0
    seen: list[dict[str, Any]] = field(default_factory=list)

    def credentials_body(self) -> bytes:
        expiration = dt.datetime.now(UTC) + dt.timedelta(seconds=self.lifetime)
        return json.dumps({"credentials": {
            "accessKeyId": "ASIAFAKEPROVIDER", "secretAccessKey": "fake-secret-key",
            "sessionToken": "fake-session-token",
            "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ")}}).encode()


@contextlib.contextmanager
def fake_provider(server_cert: tuple[Path, Path], client_ca: Path) -> Iterator[FakeProvider]:
    """A real HTTPS server on 127.0.0.1 that requires client certificates signed by `client_ca`."""
    state = FakeProvider()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            self.request.settimeout(10)
            self.request.do_handshake()
            super().setup()

        def do_GET(self) -> None:
            peer = self.request.getpeercert() or {}
            common = [v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"]
            state.seen.append({"path": self.path, "thing": self.headers.get("x-amzn-iot-thingname"),
                               "client": common[0] if common else None})
            body = state.credentials_body() if state.body is None else state.body
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*server_cert)
    context.load_verify_locations(cafile=client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    server.handle_error = lambda request, address: None  # type: ignore[method-assign,assignment]  # refused handshakes
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.port = server.server_address[1]
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def upstream(pki: dict[str, Any]) -> Iterator[FakeProvider]:
    with fake_provider(pki["server"], pki["device_ca"].ca_path) as state:
        yield state


def client_for(port: int, pki: dict[str, Any], *, device: str = "device", root_ca: Path | None = None,
               alias: str = "MyRoleAlias", thing: str = "MyThing",
               timeout: tuple[float, float] = (5.0, 10.0)) -> CredentialsProvider:
    cert, key = pki[device]
    return CredentialsProvider(endpoint=f"127.0.0.1:{port}", role_alias=alias, thing_name=thing,
                               certificate_path=str(cert), private_key_path=str(key),
                               root_ca_path=str(root_ca or pki["aws"].ca_path), timeout=timeout)


# -- provider client ---------------------------------------------------------------------------------


def test_fetch_returns_credentials_over_mutual_tls(upstream: FakeProvider, pki: dict[str, Any]) -> None:
    # [tes-2] docs/tes.md
    creds = client_for(upstream.port, pki).fetch()
    assert creds.access_key_id == "ASIAFAKEPROVIDER"
    assert creds.secret_access_key == "fake-secret-key" and creds.session_token == "fake-session-token"
    assert creds.expiration.tzinfo is not None and creds.expiration.utcoffset() == dt.timedelta(0)
    assert dt.timedelta(minutes=55) < creds.expiration - dt.datetime.now(UTC) <= dt.timedelta(hours=1)
    assert upstream.seen == [{"path": "/role-aliases/MyRoleAlias/credentials", "thing": "MyThing",
                              "client": "MyThing"}]


def test_credentials_repr_hides_secret_and_token() -> None:
    creds = Credentials("AKID", "the-secret", "the-token", dt.datetime.now(UTC))
    assert "AKID" in repr(creds)
    assert "the-secret" not in repr(creds) and "the-token" not in repr(creds) and "the-secret" not in str(creds)


@pytest.mark.parametrize(("status", "phrase", "retry_class"), [
    (403, "iot:AssumeRoleWithCertificate", "client"),
    (404, "role alias does not exist", "client"),
    (400, "trust policy allows credentials.iot.amazonaws.com", "client"),
    (429, "throttling", "client"),
    (500, "provider failed", "server"),
    (503, "provider failed", "server"),
])
def test_provider_errors_carry_status_message_and_meaning(upstream: FakeProvider, pki: dict[str, Any],
                                                          status: int, phrase: str, retry_class: str) -> None:
    # [tes-3] docs/tes.md
    upstream.status, upstream.body = status, json.dumps({"message": f"message for {status}"}).encode()
    with pytest.raises(ProviderError) as caught:
        client_for(upstream.port, pki).fetch()
    error = caught.value
    assert (error.status, error.message, error.reason, error.retry_class) == (
        status, f"message for {status}", "http", retry_class)
    assert phrase in error.meaning
    assert str(error) == error.describe() and "\n" not in str(error)
    assert f"answered {status} (message for {status})" in str(error)


def test_error_without_json_body_uses_the_reason_phrase(upstream: FakeProvider, pki: dict[str, Any]) -> None:
    upstream.status, upstream.body = 502, b"<html>bad gateway</html>"
    with pytest.raises(ProviderError) as caught:
        client_for(upstream.port, pki).fetch()
    assert caught.value.status == 502 and caught.value.message == "Bad Gateway"


def test_unreadable_success_body_is_a_502_that_quotes_nothing(upstream: FakeProvider, pki: dict[str, Any]) -> None:
    upstream.body = b'{"credentials": {"accessKeyId": "AK", "secretAccessKey": "leaky-secret"}}'
    with pytest.raises(ProviderError) as caught:
        client_for(upstream.port, pki).fetch()
    assert caught.value.status == 502 and caught.value.reason == "bad-response"
    assert "leaky-secret" not in str(caught.value)


def test_server_not_signed_by_root_ca_is_a_tls_error(pki: dict[str, Any]) -> None:
    # [tes-3] docs/tes.md
    with fake_provider(pki["untrusted_server"], pki["device_ca"].ca_path) as state:
        with pytest.raises(ProviderError) as caught:
            client_for(state.port, pki).fetch()
    error = caught.value
    assert (error.status, error.reason, error.retry_class) == (502, "tls", "connection")
    assert "not trusted" in error.message and "rootCaPath" in error.meaning
    assert state.seen == []


def test_client_certificate_refused_is_a_tls_error(pki: dict[str, Any]) -> None:
    # [tes-3] docs/tes.md
    with fake_provider(pki["server"], pki["stranger"].ca_path) as state:  # trusts another CA's clients
        with pytest.raises(ProviderError) as caught:
            client_for(state.port, pki).fetch()
    error = caught.value
    assert (error.status, error.reason) == (502, "tls")
    assert "refused the device certificate" in error.message
    assert state.seen == []


def test_closed_port_is_unreachable(pki: dict[str, Any]) -> None:
    # [tes-3] docs/tes.md
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProviderError) as caught:
        client_for(port, pki).fetch()
    error = caught.value
    assert (error.status, error.reason, error.retry_class) == (503, "unreachable", "connection")
    assert "connection refused" in error.message


def test_silent_server_times_out_as_unreachable(pki: dict[str, Any]) -> None:
    # [tes-3] docs/tes.md
    with socket.socket() as silent:  # accepts TCP (backlog) but never speaks TLS
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        client = client_for(silent.getsockname()[1], pki, timeout=(0.3, 0.3))
        with pytest.raises(ProviderError) as caught:
            client.fetch()
    assert (caught.value.status, caught.value.reason) == (504, "unreachable")


def test_endpoint_written_as_url_is_accepted(upstream: FakeProvider, pki: dict[str, Any]) -> None:
    cert, key = pki["device"]
    client = CredentialsProvider(endpoint=f"https://127.0.0.1:{upstream.port}/", role_alias="a/b",
                                 thing_name="MyThing", certificate_path=str(cert), private_key_path=str(key),
                                 root_ca_path=str(pki["aws"].ca_path))
    client.fetch()
    assert upstream.seen[0]["path"] == "/role-aliases/a%2Fb/credentials"


# -- check_settings ----------------------------------------------------------------------------------


def write_config(folder: Path, pki: dict[str, Any], *, drop: str | None = None,
                 **paths: Path) -> NucleusConfig:
    """A real config.yaml on disk, loaded by the real loader."""
    cert, key = pki["device"]
    system = {"thingName": "MyThing", "rootCaPath": str(pki["aws"].ca_path),
              "certificateFilePath": str(paths.get("cert", cert)), "privateKeyPath": str(paths.get("key", key))}
    nucleus = {"awsRegion": "us-east-1", "iotRoleAlias": "MyRoleAlias", "iotCredEndpoint": "127.0.0.1:1"}
    for table in (system, nucleus):
        table.pop(drop or "", None)
    path = folder / "config.yaml"
    path.write_text(json.dumps({"system": system, "services": {"aws.greengrass.Nucleus": {"configuration": nucleus}}}))
    return load_config(path)


def test_check_settings_accepts_a_complete_config(tmp_path: Path, pki: dict[str, Any]) -> None:
    check_settings(write_config(tmp_path, pki))


@pytest.mark.parametrize(("drop", "key"), [
    ("iotRoleAlias", "services.aws.greengrass.Nucleus.configuration.iotRoleAlias"),
    ("iotCredEndpoint", "services.aws.greengrass.Nucleus.configuration.iotCredEndpoint"),
    ("thingName", "system.thingName"),
    ("rootCaPath", "system.rootCaPath"),
    ("certificateFilePath", "system.certificateFilePath"),
    ("privateKeyPath", "system.privateKeyPath"),
])
def test_check_settings_names_a_missing_key(tmp_path: Path, pki: dict[str, Any], drop: str, key: str) -> None:
    # [tes-1] docs/tes.md
    config = write_config(tmp_path, pki, drop=drop)
    with pytest.raises(NucleusError) as caught:
        check_settings(config)
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / 'config.yaml'}: {key} is not set") and "\n" not in text
    assert caught.value.exit_code == 2


def test_check_settings_names_a_missing_file(tmp_path: Path, pki: dict[str, Any]) -> None:
    missing = tmp_path / "nowhere" / "private.pem.key"
    with pytest.raises(NotFoundError) as caught:
        check_settings(write_config(tmp_path, pki, key=missing))
    assert f"system.privateKeyPath: {missing} does not exist" in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_check_settings_names_an_unreadable_file(tmp_path: Path, pki: dict[str, Any]) -> None:
    key = tmp_path / "private.pem.key"
    key.write_bytes(pki["device"][1].read_bytes())
    key.chmod(0)
    with pytest.raises(NucleusError) as caught:
        check_settings(write_config(tmp_path, pki, key=key))
    assert f"system.privateKeyPath: {key} cannot be read (permission denied)" in str(caught.value)


def test_check_settings_names_a_folder_given_as_file(tmp_path: Path, pki: dict[str, Any]) -> None:
    with pytest.raises(NucleusError) as caught:
        check_settings(write_config(tmp_path, pki, cert=tmp_path))
    assert f"system.certificateFilePath: {tmp_path} is a folder" in str(caught.value)


def test_check_settings_refuses_a_key_of_another_certificate(tmp_path: Path, pki: dict[str, Any]) -> None:
    # [tes-1] docs/tes.md
    with pytest.raises(NucleusError) as caught:
        check_settings(write_config(tmp_path, pki, key=pki["other_device"][1]))
    text = str(caught.value)
    assert "does not belong to the certificate" in text and str(pki["other_device"][1]) in text


def test_check_settings_refuses_garbage_and_encrypted_keys(tmp_path: Path, pki: dict[str, Any]) -> None:
    from cryptography.hazmat.primitives import serialization

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(NucleusError, match="system.certificateFilePath: .* is not a certificate"):
        check_settings(write_config(tmp_path, pki, cert=garbage))
    with pytest.raises(NucleusError, match="system.privateKeyPath: .* is not a private key"):
        check_settings(write_config(tmp_path, pki, key=garbage))
    key = serialization.load_pem_private_key(pki["device"][1].read_bytes(), password=None)
    locked = tmp_path / "locked.pem.key"
    locked.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.BestAvailableEncryption(b"pw")))
    with pytest.raises(NucleusError, match="is encrypted"):
        check_settings(write_config(tmp_path, pki, key=locked))


def test_check_settings_refuses_an_expired_certificate(tmp_path: Path, pki: dict[str, Any]) -> None:
    cert, key = pki["device_ca"].issue("Expired", expired=True)
    with pytest.raises(NucleusError, match="expired on"):
        check_settings(write_config(tmp_path, pki, cert=cert, key=key))


def test_check_settings_accepts_rsa_keys(tmp_path: Path, pki: dict[str, Any]) -> None:
    cert, key = pki["device_ca"].issue("RsaThing", rsa=True)
    check_settings(write_config(tmp_path, pki, cert=cert, key=key))


# -- the cache ---------------------------------------------------------------------------------------


class Clock:
    """Wall-clock time that tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Upstream:
    """A blocking fetch function standing in for `CredentialsProvider.fetch` (runs in a worker thread)."""

    def __init__(self, clock: Clock, lifetime: float = 3600.0) -> None:
        self.clock, self.lifetime = clock, lifetime
        self.calls = 0
        self.error: BaseException | None = None
        self.gate: threading.Event | None = None  # when set, each call waits for it

    def __call__(self) -> Credentials:
        self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(HANG_GUARD)
        if self.error is not None:
            raise self.error
        expiration = dt.datetime.fromtimestamp(self.clock() + self.lifetime, UTC)
        return Credentials(f"AKID{self.calls}", f"secret{self.calls}", f"token{self.calls}", expiration)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, HANG_GUARD))


def leftover_tasks() -> set[asyncio.Task[Any]]:
    """Tasks still alive besides the test itself (and `run`'s wait_for wrapper on Python < 3.12)."""
    return {task for task in asyncio.all_tasks()
            if task is not asyncio.current_task() and getattr(task.get_coro(), "__name__", "") != "wait_for"}


def left(creds: Credentials, clock: Clock) -> float:
    return creds.expiration.timestamp() - clock()


def unreachable() -> ProviderError:
    return ProviderError(503, "cannot reach the credentials provider x: connection refused", "check",
                         reason="unreachable")


def test_fifty_concurrent_gets_on_a_cold_cache_make_one_upstream_request() -> None:
    # [tes-4] docs/tes.md
    clock = Clock()
    upstream = Upstream(clock)

    async def main() -> list[Credentials]:
        cache = CredentialCache(upstream, clock=clock)
        results = await asyncio.gather(*(cache.get() for _ in range(50)))
        assert cache.statistics().upstream_requests == 1
        return results

    results = run(main())
    assert upstream.calls == 1
    assert len({id(creds) for creds in results}) == 1


def test_refresh_ahead_runs_in_the_background_while_callers_get_the_old_credentials() -> None:
    # [tes-5] docs/tes.md
    clock = Clock()
    upstream = Upstream(clock)

    async def main() -> None:
        cache = CredentialCache(upstream, clock=clock)
        first = await cache.get()
        clock.advance(41 * MINUTE)  # 19 minutes left: past the refresh point, still good to hand out
        upstream.gate = threading.Event()
        again = await cache.get()  # must not wait for the gated upstream
        assert again is first and cache.statistics().fetching
        await asyncio.sleep(0.05)  # the refresh is now blocked upstream
        assert await cache.get() is first  # callers still get the old credentials at once
        upstream.gate.set()
        await cache.wait_idle()
        fresh = await cache.get()
        assert fresh is not first and left(fresh, clock) == 3600
        assert upstream.calls == 2  # the second get did not start another request

    run(main())


def test_handed_out_credentials_keep_at_least_15_minutes_when_the_lifetime_allows() -> None:
    # [tes-5] docs/tes.md
    clock = Clock()
    upstream = Upstream(clock)

    async def main() -> None:
        cache = CredentialCache(upstream, clock=clock)
        for _ in range(5 * 60):  # five hours, minute by minute
            creds = await cache.get()
            assert left(creds, clock) >= 15 * MINUTE
            await cache.wait_idle()
            clock.advance(MINUTE)
        assert 7 <= upstream.calls <= 9  # one refresh about every 40 minutes, not one per request

    run(main())


def test_refresh_times_for_short_and_long_lifetimes() -> None:
    assert refresh_time(0, 3600) == 40 * MINUTE  # 20 minutes ahead
    assert refresh_time(0, 12 * 3600) == 12 * 3600 - 20 * MINUTE
    assert refresh_time(0, 20 * MINUTE) == 5 * MINUTE  # 15 left when refreshed
    assert refresh_time(0, 15 * MINUTE) == 5 * MINUTE  # the shortest IoT lifetime: no more often than 5 min


def test_never_hands_out_credentials_within_5_minutes_of_expiry() -> None:
    # [tes-6] docs/tes.md
    clock = Clock()
    upstream = Upstream(clock)

    async def main() -> None:
        cache = CredentialCache(upstream, clock=clock)
        first = await cache.get()
        upstream.gate = threading.Event()  # the provider hangs from now on
        clock.advance(55 * MINUTE - 1)
        assert await cache.get() is first  # 5 min + 1 s left: still handed out
        clock.advance(2)
        waiting = asyncio.ensure_future(cache.get())  # 5 min - 1 s left: must wait for new ones
        await asyncio.sleep(0.05)
        assert not waiting.done()
        upstream.gate.set()
        assert (await waiting) is not first

    run(main())


@pytest.mark.parametrize(("error", "ttl", "override"), [
    (ProviderError(403, "Access Denied", "m"), 120, None),
    (ProviderError(429, "Too Many Requests", "m"), 120, None),
    (ProviderError(500, "Internal", "m"), 60, None),
    (ProviderError(502, "TLS failed", "m", reason="tls"), 300, None),
    (unreachable(), 300, None),
    (ProviderError(403, "Access Denied", "m"), 7, 7.0),
    (unreachable(), 7, 7.0),
])
def test_errors_are_cached_for_their_ttl(error: ProviderError, ttl: int, override: float | None) -> None:
    # [tes-7] docs/tes.md
    clock = Clock()
    upstream = Upstream(clock)
    upstream.error = error

    async def main() -> None:
        cache = CredentialCache(upstream, clock=clock, retry_override=override)
        for _ in range(3):
            with pytest.raises(ProviderError) as caught:
                await cache.get()
            assert caught.value is error
        clock.advance(ttl - 1)
        with pytest.raises(ProviderError):
            await cache.get()
        assert upstream.calls == 1 and cache.statistics().last_error_status == error.status
        clock.advance(1)
        upstream.error = None
        assert (await cache.get()).access_key_id == "AKID2"
        assert cache.statistics().last_error_status is None

    run(main())


def test_provider_down_serves_cached_credentials_then_a_clear_5xx() -> None:
    # [tes-6] docs/tes.md
    clock = Clock()
    upstream = Upstream(clock)
    events: list[tuple[str, dict[str, Any]]] = []

    async def main() -> None:
        cache = CredentialCache(upstream, clock=clock, log=lambda event, **fields: events.append((event, fields)))
        first = await cache.get()
        upstream.error = unreachable()
        for _ in range(54):
            clock.advance(MINUTE)
            assert await cache.get() is first  # refreshes fail in the background; callers never see it
            await cache.wait_idle()
        clock.advance(MINUTE + 1)  # 5 min - 1 s left
        with pytest.raises(ProviderError) as caught:
            await cache.get()
        assert caught.value.status == 503 and "connection refused" in str(caught.value)
        # 40 min: first refresh; then one retry per 300 s while the provider stays down
        assert 4 <= upstream.calls <= 6

    run(main())
    assert any(event == "tes-credentials-error" and fields["serving_cached"] for event, fields in events)
    text = repr(events)
    assert "secret" not in text and "token1" not in text


def test_unexpected_fetch_failure_becomes_a_500() -> None:
    clock = Clock()
    upstream = Upstream(clock)
    upstream.error = RuntimeError("boom")

    async def main() -> None:
        cache = CredentialCache(upstream, clock=clock)
        with pytest.raises(ProviderError) as caught:
            await cache.get()
        assert (caught.value.status, caught.value.reason) == (500, "internal")

    run(main())


def test_credentials_that_arrive_nearly_expired_point_at_the_clock() -> None:
    clock = Clock()
    upstream = Upstream(clock, lifetime=4 * MINUTE)

    async def main() -> None:
        cache = CredentialCache(upstream, clock=clock)
        with pytest.raises(ProviderError) as caught:
            await cache.get()
        assert caught.value.status == 502 and "clock" in str(caught.value)

    run(main())


def test_start_prefetches_keeps_fresh_in_the_background_and_close_leaves_no_task() -> None:
    # [tes-7] docs/tes.md
    clock = Clock()
    upstream = Upstream(clock)

    async def main() -> None:
        cache = CredentialCache(upstream, clock=clock, poll_interval=0.01)
        cache.start()
        await asyncio.sleep(0)
        await cache.wait_idle()
        assert upstream.calls == 1 and cache.get_nowait() is not None  # the first caller need not wait
        clock.advance(45 * MINUTE)  # nobody asks: the background task refreshes anyway
        while upstream.calls < 2:
            await asyncio.sleep(0.01)
        await cache.wait_idle()
        assert left(cache.get_nowait(), clock) == 3600  # type: ignore[arg-type]
        await cache.close()
        assert leftover_tasks() == set()
        stats = cache.statistics()
        assert stats.upstream_requests == 2 and not stats.fetching
        assert "secret" not in repr(stats) and "token" not in repr(stats)

    run(main())


def test_close_cancels_a_fetch_in_flight_and_waiters_get_a_503() -> None:
    clock = Clock()
    upstream = Upstream(clock)
    gate = upstream.gate = threading.Event()

    async def main() -> None:
        cache = CredentialCache(upstream, clock=clock)
        waiter = asyncio.ensure_future(cache.get())
        await asyncio.sleep(0.05)
        await cache.close()
        with pytest.raises(ProviderError) as caught:
            await waiter
        assert caught.value.status == 503
        gate.set()  # let the worker thread finish

    run(main())


# -- the local endpoint ------------------------------------------------------------------------------

TOKEN = "tokenABCDEFGHIJK"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Reply(status, headers, body)


def get_request(path: str = PATH, token: str | None = TOKEN, *, method: str = "GET", version: str = "HTTP/1.1",
                extra: str = "") -> bytes:
    auth = f"Authorization: {token}\r\n" if token is not None else ""
    return f"{method} {path} {version}\r\nHost: 127.0.0.1\r\n{auth}{extra}\r\n".encode()


class Endpoint:
    """A running `CredentialServer` over a real cache, plus a raw-socket client."""

    def __init__(self, clock: Clock, upstream: Upstream, **server_options: Any) -> None:
        self.clock, self.upstream = clock, upstream
        self.tokens = TokenSet([TOKEN, "otherTokenXYZ123"])
        self.logged: list[tuple[str, dict[str, Any]]] = []
        self.cache = CredentialCache(upstream, clock=clock)
        self.server = CredentialServer(self.cache, self.tokens.__contains__,
                                       log=lambda event, **fields: self.logged.append((event, fields)),
                                       **server_options)

    async def __aenter__(self) -> Endpoint:
        self.port = await self.server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()
        await self.cache.close()

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def ask(self, raw: bytes) -> Reply:
        reader, writer = await self.connect()
        writer.write(raw)
        reply = await read_reply(reader)
        writer.close()
        return reply


def endpoint(**options: Any) -> Endpoint:
    clock = Clock()
    return Endpoint(clock, Upstream(clock), **options)


def test_status_codes_come_in_the_documented_order() -> None:
    # [tes-9] docs/tes.md
    async def main() -> None:
        async with endpoint() as ep:
            assert (await ep.ask(get_request("/elsewhere", None, method="POST"))).status == 405
            assert (await ep.ask(get_request("/elsewhere", None, method="PUT"))).headers["allow"] == "GET"
            assert (await ep.ask(get_request("/elsewhere", None))).status == 400
            assert (await ep.ask(get_request(PATH.rstrip("/"), None))).status == 400
            assert (await ep.ask(get_request(PATH, None))).status == 403
            assert (await ep.ask(get_request(PATH, "tokenABCDEFGHIJX"))).status == 403
            assert (await ep.ask(get_request(PATH, ""))).status == 403
            assert ep.upstream.calls == 0  # refused requests never reach the provider
            ep.upstream.error = ProviderError(404, "Role alias does not exist", "the role alias does not exist")
            reply = await ep.ask(get_request())
            assert reply.status == 404 and reply.headers["content-type"] == "application/json"
            assert "Role alias does not exist" in reply.json()["message"]
            assert (await ep.ask(get_request())).status == 404 and ep.upstream.calls == 1  # cached
            ep.clock.advance(120)
            ep.upstream.error = None
            reply = await ep.ask(get_request())
            assert reply.status == 200 and reply.headers["content-type"] == "application/json"
            body = reply.json()
            assert list(body) == ["AccessKeyId", "SecretAccessKey", "Token", "Expiration"]
            assert body["AccessKeyId"] == "AKID2" and body["Token"] == "token2"
            assert body["Expiration"].endswith("Z")
            expiration = dt.datetime.strptime(body["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            assert expiration.timestamp() == ep.clock() + 3600

    run(main())


def test_query_string_is_ignored_and_absolute_form_accepted() -> None:
    # [tes-9] docs/tes.md
    async def main() -> None:
        async with endpoint() as ep:
            assert (await ep.ask(get_request(PATH + "?x=1"))).status == 200
            assert (await ep.ask(get_request(f"http://127.0.0.1:{ep.port}{PATH}"))).status == 200
            assert (await ep.ask(get_request("/2016-11-01/credentialprovider/%2E"))).status == 400

    run(main())


def test_keep_alive_serves_many_requests_on_one_connection_and_honours_close() -> None:
    # [tes-11] docs/tes.md
    async def main() -> None:
        async with endpoint() as ep:
            reader, writer = await ep.connect()
            for _ in range(5):
                writer.write(get_request())
                reply = await read_reply(reader)
                assert reply.status == 200 and "connection" not in reply.headers
            writer.write(get_request(extra="Connection: close\r\n"))
            reply = await read_reply(reader)
            assert reply.status == 200 and reply.headers["connection"] == "close"
            assert await reader.read() == b""  # the server closed it
            writer.close()
            # HTTP/1.0 closes by default, keeps alive when asked
            reader, writer = await ep.connect()
            writer.write(get_request(version="HTTP/1.0", extra="Connection: keep-alive\r\n"))
            assert (await read_reply(reader)).headers["connection"] == "keep-alive"
            writer.write(get_request(version="HTTP/1.0"))
            assert (await read_reply(reader)).status == 200
            assert await reader.read() == b""
            writer.close()

    run(main())


def test_pipelined_requests_are_answered_in_order_even_when_the_first_waits() -> None:
    # [tes-11] docs/tes.md
    async def main() -> None:
        async with endpoint() as ep:
            ep.upstream.gate = threading.Event()  # cold cache: the first request must wait
            reader, writer = await ep.connect()
            writer.write(get_request() + get_request(token=None) + get_request("/x") + get_request())
            await asyncio.sleep(0.05)
            ep.upstream.gate.set()
            statuses = [(await read_reply(reader)).status for _ in range(4)]
            assert statuses == [200, 403, 400, 200]
            writer.close()

    run(main())


def test_concurrent_keep_alive_clients() -> None:
    async def client(ep: Endpoint) -> list[int]:
        reader, writer = await ep.connect()
        statuses = []
        for _ in range(25):
            writer.write(get_request())
            statuses.append((await read_reply(reader)).status)
        writer.close()
        return statuses

    async def main() -> None:
        async with endpoint() as ep:
            results = await asyncio.gather(*(client(ep) for _ in range(16)))
            assert all(status == 200 for statuses in results for status in statuses)
            assert ep.upstream.calls == 1
            assert ep.server.statistics().requests == 16 * 25

    run(main())


def test_request_body_is_consumed_and_the_connection_stays_usable() -> None:
    async def main() -> None:
        async with endpoint() as ep:
            reader, writer = await ep.connect()
            writer.write(get_request(extra="Content-Length: 11\r\n") + b"hello world" + get_request())
            assert [(await read_reply(reader)).status for _ in range(2)] == [200, 200]
            writer.close()

    run(main())


@pytest.mark.parametrize(("raw", "status"), [
    (b"GET " + b"/x" * 5000 + b" HTTP/1.1\r\n", 431),  # no end of headers within the cap
    (get_request(extra="X-Big: " + "a" * 9000 + "\r\n"), 431),
    (b"NONSENSE\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (get_request(extra="Transfer-Encoding: chunked\r\n"), 400),
    (get_request(extra="Content-Length: 1\r\nContent-Length: 2\r\n"), 400),
    (get_request(extra="Content-Length: 999999999\r\n"), 413),
    (get_request(extra="Authorization: second\r\n"), 400),
    (get_request(extra=" folded\r\n"), 400),
])
def test_malformed_requests_are_answered_and_closed(raw: bytes, status: int) -> None:
    # [tes-11] docs/tes.md
    async def main() -> None:
        async with endpoint() as ep:
            reader, writer = await ep.connect()
            writer.write(raw)
            reply = await read_reply(reader)
            assert reply.status == status and reply.headers["connection"] == "close"
            assert "message" in reply.json()
            assert await reader.read() == b""
            writer.close()

    run(main())


def test_idle_connections_are_closed() -> None:
    async def main() -> None:
        async with endpoint(idle_timeout=0.2) as ep:
            reader, writer = await ep.connect()
            writer.write(get_request())
            assert (await read_reply(reader)).status == 200
            assert await reader.read() == b""  # closed by the server after the idle time
            writer.close()
            assert ep.server.statistics().open_connections == 0

    run(main())


def test_close_ends_open_connections_and_binds_loopback_only() -> None:
    # [tes-8] docs/tes.md
    async def main() -> None:
        ep = endpoint()
        await ep.__aenter__()
        assert ep.server.url == f"http://127.0.0.1:{ep.port}/2016-11-01/credentialprovider/"
        with pytest.raises(OSError):  # nothing listens on another address of this host
            await asyncio.open_connection(socket.gethostbyname(socket.gethostname()) if
                                          socket.gethostbyname(socket.gethostname()) != "127.0.0.1"
                                          else "127.0.0.2", ep.port)
        ep.upstream.gate = threading.Event()
        reader, writer = await ep.connect()
        writer.write(get_request())  # waits on the gated upstream
        await asyncio.sleep(0.05)
        await ep.server.close()
        assert await reader.read() == b""
        ep.upstream.gate.set()
        await ep.cache.close()
        writer.close()
        assert leftover_tasks() == set()

    run(main())


def test_logs_never_carry_tokens_or_credentials() -> None:
    # [tes-12] docs/tes.md
    async def main() -> Endpoint:
        async with endpoint() as ep:
            await ep.ask(get_request())
            await ep.ask(get_request(token="wrongTokenValue!"))
            await ep.ask(get_request("/bad\x01path", None))
        return ep

    ep = run(main())
    requests = [fields for event, fields in ep.logged if event == "tes-request"]
    assert [(f["status"], f["token"]) for f in requests] == [(200, True), (403, True), (400, False)]
    text = repr(ep.logged)
    for secret in (TOKEN, "wrongTokenValue!", "secret1", "token1"):
        assert secret not in text
    assert "\x01" not in text


def test_botocore_container_provider_reads_the_endpoint() -> None:
    # [tes-10] docs/tes.md
    from botocore.credentials import ContainerProvider
    from botocore.utils import ContainerMetadataFetcher

    async def main() -> None:
        async with endpoint() as ep:
            environ = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": ep.server.url,
                       "AWS_CONTAINER_AUTHORIZATION_TOKEN": TOKEN}
            creds = await asyncio.to_thread(lambda: ContainerProvider(environ=environ).load())
            frozen = creds.get_frozen_credentials()
            assert (frozen.access_key, frozen.secret_key, frozen.token) == ("AKID1", "secret1", "token1")
            assert creds._expiry_time.tzinfo is not None  # botocore parsed an aware timestamp
            raw = await asyncio.to_thread(ContainerMetadataFetcher().retrieve_full_uri, ep.server.url,
                                          {"Authorization": TOKEN})
            assert raw["AccessKeyId"] == "AKID1" and raw["Expiration"].endswith("Z")
            environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "notAComponentTok"
            with pytest.raises(Exception, match="403"):
                await asyncio.to_thread(lambda: ContainerProvider(environ=environ).load())

    run(main())


def test_token_set_compares_every_token() -> None:
    tokens = TokenSet(["aaaaaaaaaaaaaaaa"])
    tokens.add("bbbbbbbbbbbbbbbb")
    tokens.add("bbbbbbbbbbbbbbbb")
    assert len(tokens) == 2
    assert "aaaaaaaaaaaaaaaa" in tokens and "bbbbbbbbbbbbbbbb" in tokens
    assert "aaaaaaaaaaaaaaab" not in tokens and "" not in tokens and None not in tokens
    assert "ü-non-ascii" not in tokens
    tokens.remove("aaaaaaaaaaaaaaaa")
    tokens.remove("never-added")
    assert "aaaaaaaaaaaaaaaa" not in tokens and len(tokens) == 1
    with pytest.raises(ValueError):
        tokens.add("")


def test_importing_the_server_stays_light() -> None:
    code = ("import sys, nucleus.tes, nucleus.tes.server; "
            "print(sorted(m for m in ('requests', 'cryptography', 'boto3', 'botocore', 'urllib3') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout
    assert out.strip() == "[]"


def test_public_surface() -> None:
    import nucleus.tes

    assert sorted(nucleus.tes.__all__) == sorted([
        "PATH", "CacheStatistics", "CredentialCache", "CredentialServer", "CredentialSource", "Credentials",
        "CredentialsProvider", "ProviderError", "ServerStatistics", "TokenSet", "check_settings"])


def test_a_port_in_use_is_one_clear_error() -> None:
    async def main() -> None:
        async with endpoint() as ep:
            clash = CredentialServer(ep.cache, ep.tokens.__contains__, port=ep.port)
            with pytest.raises(NucleusError) as caught:
                await clash.start()
            text = str(caught.value)
            assert text.startswith("services.aws.greengrass.TokenExchangeService.configuration.port: ")
            assert f"127.0.0.1:{ep.port}" in text and "\n" not in text

    run(main())


def test_a_cached_error_does_not_grow_with_each_raise() -> None:
    import traceback

    clock = Clock()
    upstream = Upstream(clock)
    upstream.error = ProviderError(403, "Access Denied", "m")

    async def main() -> None:
        cache = CredentialCache(upstream, clock=clock)
        depths = []
        for _ in range(20):
            with pytest.raises(ProviderError) as caught:
                await cache.get()
            depths.append(len(traceback.extract_tb(caught.value.__traceback__)))
        assert depths[-1] == depths[1]

    run(main())
