"""The AWS IoT credentials provider client: the device certificate in, temporary AWS credentials out.

The nucleus never holds long-lived AWS keys. It proves who it is with the device certificate (mutual TLS)
and AWS IoT hands back short-lived credentials for the role behind the role alias. This module is the
blocking HTTP side of that exchange (it runs in a worker thread); caching lives in `cache.py` and the
local endpoint in `server.py`.

Every failure becomes one `ProviderError` with the HTTP status the local endpoint will answer and a
sentence saying what it usually means. Statuses for failures that are not HTTP answers:
502 (TLS failed, or the provider's answer could not be read), 503 (unreachable: refused, reset, DNS),
504 (timed out).
"""

from __future__ import annotations

import errno
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from nucleus.config import NUCLEUS
from nucleus.errors import Kind, NotFoundError, NucleusError

if TYPE_CHECKING:
    from nucleus.config import NucleusConfig

THING_NAME_HEADER = "x-amzn-iot-thingname"
CONNECT_TIMEOUT = 5.0  # seconds to open the connection and finish the TLS handshake
READ_TIMEOUT = 10.0  # seconds to wait for the answer

ROLE_ALIAS_KEY = f"services.{NUCLEUS}.configuration.iotRoleAlias"
CRED_ENDPOINT_KEY = f"services.{NUCLEUS}.configuration.iotCredEndpoint"

# What each upstream status usually means, in the words a user can act on.
MEANINGS = {
    400: "the role cannot be assumed: check that the role's trust policy allows credentials.iot.amazonaws.com "
    "and that the role alias points at an existing role",
    403: "the certificate's policy lacks iot:AssumeRoleWithCertificate on the role alias, the certificate is "
    "not registered and active in this account and region, or the thing name does not match (is not "
    "attached to) the certificate",
    404: "the role alias does not exist in this account and region: check iotRoleAlias and iotCredEndpoint",
    429: "the credentials provider is throttling this device: too many requests",
}
SERVER_ERROR_MEANING = "the credentials provider failed; it usually recovers by itself"
OTHER_4XX_MEANING = "the credentials provider refused the request"


@dataclass(frozen=True)
class Credentials:
    """Temporary AWS credentials; the secret and the token never appear in `repr`."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime  # timezone-aware, UTC


class ProviderError(NucleusError):
    """Credentials could not be obtained; `status` is what the local endpoint answers.

    `reason` says what kind of failure it was, which decides how long it is cached:
    "http" (the provider answered with an error status), "tls", "unreachable", "bad-response",
    "internal", "stopping".
    """

    kind = Kind.FAILED

    def __init__(self, status: int, message: str, meaning: str, *, reason: str = "http") -> None:
        super().__init__(message, hint=meaning)
        self.status = status
        self.meaning = meaning
        self.reason = reason

    @property
    def retry_class(self) -> str:
        """"client" (4xx), "server" (5xx, unreadable answers) or "connection" (TLS, unreachable)."""
        if self.reason in ("tls", "unreachable"):
            return "connection"
        if self.reason == "http" and 400 <= self.status < 500:
            return "client"
        return "server"

    def describe(self) -> str:
        """The one line a user reads (also the local endpoint's error message)."""
        if self.reason == "http":
            return f"the AWS IoT credentials provider answered {self.status} ({self.message}): {self.meaning}"
        return f"{self.message}: {self.meaning}"

    def lines(self) -> list[str]:
        return [self.describe()]

    def __repr__(self) -> str:
        return f"ProviderError(status={self.status}, reason={self.reason!r}, message={self.message!r})"


def parse_expiration(text: str) -> datetime:
    """ISO-8601 (`2026-01-18T09:18:06Z`, with or without fractions) to an aware UTC datetime."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    # Python 3.10's fromisoformat accepts only 0, 3 or 6 fraction digits: cut or pad to 6.
    value = re.sub(r"\.(\d+)", lambda m: "." + m.group(1)[:6].ljust(6, "0"), value, count=1)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def parse_credentials(body: bytes) -> Credentials:
    """The provider's 200 body to `Credentials`; a `ProviderError` (502) that never quotes the body."""
    try:
        data = json.loads(body)
        inner = data["credentials"]
        creds = Credentials(
            access_key_id=_text(inner["accessKeyId"]),
            secret_access_key=_text(inner["secretAccessKey"]),
            session_token=_text(inner["sessionToken"]),
            expiration=parse_expiration(_text(inner["expiration"])),
        )
    except (ValueError, KeyError, TypeError) as exc:
        what = f"no {exc.args[0]!r} field" if isinstance(exc, KeyError) else "not the expected JSON"
        raise ProviderError(502, f"the credentials provider's answer could not be read ({what})",
                            "the endpoint is not an AWS IoT credentials provider: check iotCredEndpoint",
                            reason="bad-response") from None
    return creds


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("not text")
    return value


def _error_message(body: bytes, fallback: str) -> str:
    """The provider's `{"message": …}` (never a secret), shortened to one line."""
    try:
        message = json.loads(body).get("message")
    except (ValueError, AttributeError):
        message = None
    if not isinstance(message, str) or not message.strip():
        return fallback
    return " ".join(message.split())[:300]


def http_error(status: int, body: bytes, reason_phrase: str = "") -> ProviderError:
    """The error for an upstream non-200 answer."""
    if status in MEANINGS:
        meaning = MEANINGS[status]
    elif status >= 500:
        meaning = SERVER_ERROR_MEANING
    else:
        meaning = OTHER_4XX_MEANING
    return ProviderError(status, _error_message(body, reason_phrase or f"HTTP {status}"), meaning)


class CredentialsProvider:
    """Blocking client of `GET https://<endpoint>/role-aliases/<alias>/credentials` over mutual TLS.

    Keeps one `requests.Session` so the TLS connection is reused between refreshes. Not for concurrent
    use: the cache calls `fetch` one at a time.
    """

    def __init__(self, *, endpoint: str, role_alias: str, thing_name: str, certificate_path: str,
                 private_key_path: str, root_ca_path: str,
                 timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT)) -> None:
        self.endpoint = normalise_endpoint(endpoint)
        self.url = f"https://{self.endpoint}/role-aliases/{quote(role_alias, safe='')}/credentials"
        self.thing_name = thing_name
        self.root_ca_path = root_ca_path
        self.timeout = timeout
        self._cert = (certificate_path, private_key_path)
        self._session: Any = None

    @classmethod
    def from_config(cls, config: NucleusConfig) -> CredentialsProvider:
        """The client for a config that `check_settings` accepted."""
        return cls(endpoint=config.iot_cred_endpoint or "", role_alias=config.iot_role_alias or "",
                   thing_name=config.thing_name, certificate_path=config.certificate_path or "",
                   private_key_path=config.private_key_path or "", root_ca_path=config.root_ca_path or "")

    def _get_session(self) -> Any:
        if self._session is None:
            import requests

            session = requests.Session()
            session.cert = self._cert
            session.verify = self.root_ca_path
            # Proxy variables apply to a real endpoint, never to a loopback one (the sandbox).
            session.trust_env = not _is_loopback(self.endpoint)
            self._session = session
        return self._session

    def fetch(self) -> Credentials:
        """One request to the provider; raises `ProviderError` for every kind of failure."""
        import requests

        headers = {THING_NAME_HEADER: self.thing_name} if self.thing_name else {}
        try:
            response = self._get_session().get(self.url, headers=headers, timeout=self.timeout,
                                               allow_redirects=False)
            status, body, phrase = response.status_code, response.content, response.reason or ""
        except requests.exceptions.SSLError as exc:
            raise self._tls_error(exc) from None
        except requests.exceptions.Timeout:
            raise ProviderError(504, f"the credentials provider {self.endpoint} did not answer in time",
                                "the network is slow or down, or a firewall drops the traffic",
                                reason="unreachable") from None
        except requests.exceptions.ConnectionError as exc:
            raise self._connection_error(exc) from None
        except requests.exceptions.RequestException as exc:  # a malformed URL or header, a broken answer
            raise ProviderError(502, f"the request to the credentials provider failed ({type(exc).__name__})",
                                "check iotCredEndpoint and thingName", reason="bad-response") from None
        except OSError as exc:  # the certificate or key file vanished since the start
            raise ProviderError(502, f"the device certificate or key cannot be used ({exc.strerror or exc})",
                                "check system.certificateFilePath and system.privateKeyPath",
                                reason="tls") from None
        if status == 200:
            return parse_credentials(body)
        raise http_error(status, body, phrase)

    def _tls_error(self, exc: BaseException) -> ProviderError:
        text = str(exc)
        if "timed out" in text:
            return ProviderError(504, f"the credentials provider {self.endpoint} did not finish the TLS "
                                 "handshake in time", "the network is slow or down, or a firewall drops the traffic",
                                 reason="unreachable")
        if any(mark in text for mark in ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed",
                                         "ostname mismatch", "IP address mismatch")):
            return ProviderError(
                502, f"TLS with {self.endpoint} failed: its certificate is not trusted",
                f"the server's certificate is not signed by system.rootCaPath ({self.root_ca_path}) or does "
                "not name this host: check rootCaPath (AmazonRootCA1.pem for AWS) and iotCredEndpoint",
                reason="tls")
        if "PEM" in text or "key values mismatch" in text or "No such file" in text:
            return ProviderError(502, "the device certificate or private key cannot be loaded",
                                 "check system.certificateFilePath and system.privateKeyPath", reason="tls")
        return ProviderError(
            502, f"TLS with {self.endpoint} failed: the provider refused the device certificate",
            "the certificate is not registered or not active in AWS IoT in this account and region, "
            "or iotCredEndpoint belongs to another account", reason="tls")

    def _connection_error(self, exc: BaseException) -> ProviderError:
        text = str(exc)
        if any(mark in text for mark in ("SSL", "TLS", "alert", "EOF occurred")):
            return self._tls_error(exc)
        if any(mark in text for mark in ("NameResolution", "Name or service not known", "getaddrinfo",
                                         "nodename nor servname", "Temporary failure in name resolution")):
            cause = "its name does not resolve (DNS)"
        elif "refused" in text:
            cause = "connection refused"
        elif "reset" in text or "aborted" in text:
            cause = "the connection was closed"
        else:
            cause = "the network is unreachable"
        return ProviderError(503, f"cannot reach the credentials provider {self.endpoint}: {cause}",
                             "check the network and iotCredEndpoint", reason="unreachable")

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def normalise_endpoint(endpoint: str) -> str:
    """`host[:port]` from what a user may write (`https://host/` too)."""
    value = endpoint.strip()
    if value.lower().startswith("https://"):
        value = value[len("https://"):]
    return value.rstrip("/")


def _is_loopback(endpoint: str) -> bool:
    host = endpoint.rsplit(":", 1)[0] if endpoint.count(":") == 1 else endpoint
    host = host.strip("[]").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


# -- checking the settings at start ------------------------------------------------------------------


def check_settings(config: NucleusConfig) -> None:
    """Raise one clear `NucleusError` for the first setting, file, certificate or key the TES cannot use."""
    where = config.source or "config.yaml"
    required = [
        (ROLE_ALIAS_KEY, config.iot_role_alias,
         "the AWS IoT role alias this device may assume, e.g. GreengrassV2TokenExchangeRoleAlias"),
        (CRED_ENDPOINT_KEY, config.iot_cred_endpoint,
         "`aws iot describe-endpoint --endpoint-type iot:CredentialProvider` prints it"),
        ("system.thingName", config.thing_name, "the name of this device's AWS IoT thing"),
        ("system.rootCaPath", config.root_ca_path, "the CA that signs the provider's certificate (AmazonRootCA1.pem)"),
        ("system.certificateFilePath", config.certificate_path, "the device certificate (PEM)"),
        ("system.privateKeyPath", config.private_key_path, "the device's private key (PEM)"),
    ]
    for key, value, what in required:
        if not value or not str(value).strip():
            raise NucleusError(f"{key} is not set; the token exchange service needs it", where=where,
                               hint=f"set it to {what}")
    if str(config.private_key_path).startswith("pkcs11:"):
        raise NucleusError(f"system.privateKeyPath: {config.private_key_path}: PKCS#11 keys are not supported",
                           where=where, hint="use a PEM key file")
    ca_data = _read(where, "system.rootCaPath", config.root_ca_path or "")
    cert_data = _read(where, "system.certificateFilePath", config.certificate_path or "")
    key_data = _read(where, "system.privateKeyPath", config.private_key_path or "")
    _check_pki(where, config, ca_data, cert_data, key_data)


def _read(where: str, key: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise NotFoundError(f"{key}: {path} does not exist", where=where,
                                hint="fix the path, or copy the file there") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            problem = "cannot be read (permission denied)"
            hint = "make it readable by the user running the nucleus (and keep private keys 0600)"
        elif exc.errno == errno.EISDIR:
            problem, hint = "is a folder, not a file", "point it at the file itself"
        else:
            problem, hint = f"cannot be read ({exc.strerror or exc})", "check the file"
        raise NucleusError(f"{key}: {path} {problem}", where=where, hint=hint) from None


def _check_pki(where: str, config: NucleusConfig, ca_data: bytes, cert_data: bytes, key_data: bytes) -> None:
    """The root CA and certificate parse, the key loads, and the key belongs to the certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    ca_path, cert_path, key_path = config.root_ca_path, config.certificate_path, config.private_key_path
    try:
        if b"-----BEGIN" in ca_data:
            x509.load_pem_x509_certificates(ca_data)
        else:
            x509.load_der_x509_certificate(ca_data)
    except ValueError:
        raise NucleusError(f"system.rootCaPath: {ca_path} is not a certificate", where=where,
                           hint="use the PEM file of the root CA (AmazonRootCA1.pem for AWS)") from None
    try:
        if b"-----BEGIN" in cert_data:
            cert = x509.load_pem_x509_certificate(cert_data)
        else:
            cert = x509.load_der_x509_certificate(cert_data)
    except ValueError:
        raise NucleusError(f"system.certificateFilePath: {cert_path} is not a certificate", where=where,
                           hint="use the device certificate AWS IoT issued (PEM)") from None
    try:
        if b"-----BEGIN" in key_data:
            key = serialization.load_pem_private_key(key_data, password=None)
        else:
            key = serialization.load_der_private_key(key_data, password=None)
    except TypeError:
        raise NucleusError(f"system.privateKeyPath: {key_path} is encrypted", where=where,
                           hint="the nucleus needs an unencrypted key file (0600)") from None
    except Exception:  # ValueError, UnsupportedAlgorithm: anything that is not a usable key
        raise NucleusError(f"system.privateKeyPath: {key_path} is not a private key", where=where,
                           hint="use the device's private key (PEM)") from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise NucleusError(f"system.privateKeyPath: {key_path} does not belong to the certificate {cert_path}",
                           where=where, hint="use the key created together with this certificate")
    expires = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(tzinfo=timezone.utc)
    if expires <= datetime.now(timezone.utc):
        raise NucleusError(f"system.certificateFilePath: {cert_path} expired on {expires:%Y-%m-%d}", where=where,
                           hint="create a new device certificate in AWS IoT")
