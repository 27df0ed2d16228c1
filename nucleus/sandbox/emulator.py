"""An AWS IoT credentials-provider emulator: mutual TLS in, real (moto) STS credentials out.

Behaves like `https://<id>.credentials.iot.<region>.amazonaws.com` for one role alias:
- HTTPS on 127.0.0.1; the TLS handshake requires a client certificate signed by the sandbox CA;
- `GET /role-aliases/<alias>/credentials` → 200 `{"credentials": {"accessKeyId", "secretAccessKey",
  "sessionToken", "expiration": "…Z"}}`, from `sts:AssumeRole` on the sandbox role (3600 s);
- unknown alias → 404; `x-amzn-iot-thingname` naming another thing than the certificate's → 403.
  A request without that header gets credentials, as from AWS: the header is optional there (it only
  enables thing policy variables and the thing-certificate check);
- a role that cannot be assumed → 400; STS unreachable → 500. Errors are `{"message": …}`.

Run as its own process (`python -m nucleus.sandbox.emulator`); the access key comes from the
environment (`NUCLEUS_SANDBOX_ACCESS_KEY_ID`, `NUCLEUS_SANDBOX_SECRET_ACCESS_KEY`) so it never shows in
`ps`. It prints `{"port": N}` once it listens.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import ssl
import sys
from datetime import timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

ACCESS_KEY_ENV = "NUCLEUS_SANDBOX_ACCESS_KEY_ID"
SECRET_KEY_ENV = "NUCLEUS_SANDBOX_SECRET_ACCESS_KEY"
ROLE_ALIAS = "NucleusSandboxTokenExchangeRoleAlias"
DURATION_SECONDS = 3600
HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 120.0
_ROUTE = re.compile(r"/role-aliases/([^/]+)/credentials")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real endpoint
    timeout = IDLE_TIMEOUT  # an idle keep-alive connection is closed (the client reconnects)
    server: EmulatorServer

    def setup(self) -> None:
        # The handshake runs here, in the request's thread, so a slow client cannot stall accept().
        self.request.settimeout(HANDSHAKE_TIMEOUT)
        self.request.do_handshake()
        super().setup()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        match = _ROUTE.fullmatch(path)
        if match is None:
            return self._send(404, {"message": "Not Found"}, "ResourceNotFoundException")
        if unquote(match.group(1)) != self.server.role_alias:
            return self._send(404, {"message": "Role alias does not exist"}, "ResourceNotFoundException")
        thing = self._certificate_thing()
        claimed = self.headers.get("x-amzn-iot-thingname")
        if claimed is not None and claimed != thing:
            return self._send(403, {"message": "Access Denied"}, "AccessDeniedException")
        status, body = self.server.assume_role(thing)
        self._send(status, body, None if status == 200 else "InvalidRequestException")

    def _certificate_thing(self) -> str:
        """The device certificate's common name: the sandbox issues it to the thing."""
        cert = self.request.getpeercert() or {}
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return str(value)
        return "unknown"

    def _send(self, status: int, body: dict[str, Any], error_type: str | None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        # The request line and status only: no header, no credential ever reaches the log.
        sys.stderr.write("emulator: " + (format % args) + "\n")


class EmulatorServer(ThreadingHTTPServer):
    """The HTTPS server; `assume_role` turns a request into STS credentials."""

    daemon_threads = True

    def __init__(self, port: int, *, context: ssl.SSLContext, role_alias: str, sts: Any, role_arn: str,
                 duration: int = DURATION_SECONDS) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.role_alias = role_alias
        self.role_arn = role_arn
        self.duration = duration
        self._sts = sts

    def assume_role(self, thing: str) -> tuple[int, dict[str, Any]]:
        from botocore.exceptions import ClientError

        session_name = re.sub(r"[^\w+=,.@-]", "-", thing)[:64] or "nucleus-sandbox"
        try:
            answer = self._sts.assume_role(RoleArn=self.role_arn, RoleSessionName=session_name,
                                           DurationSeconds=self.duration)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            return 400, {"message": f"Unable to assume the role ({code})"}
        except Exception as exc:  # unreachable, or an answer botocore cannot parse
            return 500, {"message": f"Internal error: STS failed ({type(exc).__name__})"}
        creds = answer["Credentials"]
        expiration = creds["Expiration"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return 200, {"credentials": {"accessKeyId": creds["AccessKeyId"],
                                     "secretAccessKey": creds["SecretAccessKey"],
                                     "sessionToken": creds["SessionToken"], "expiration": expiration}}

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A refused handshake (no or foreign certificate) is expected: one line, not a traceback.
        error = sys.exc_info()[1]
        sys.stderr.write(f"emulator: connection from {client_address[0]} refused: {error}\n")


def tls_context(ca: str, cert: str, key: str) -> ssl.SSLContext:
    """Server TLS that requires a client certificate signed by `ca`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.load_verify_locations(cafile=ca)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def sts_client(endpoint_url: str, access_key_id: str, secret_access_key: str, region: str) -> Any:
    import boto3

    return boto3.session.Session().client(
        "sts", endpoint_url=endpoint_url, region_name=region, aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nucleus.sandbox.emulator",
                                     description="AWS IoT credentials-provider emulator (mutual TLS) for the sandbox.",
                                     epilog=f"The access key is read from ${ACCESS_KEY_ENV} and ${SECRET_KEY_ENV}.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--ca", required=True, help="CA that client certificates must be signed by")
    parser.add_argument("--cert", required=True, help="server certificate (PEM)")
    parser.add_argument("--key", required=True, help="server private key (PEM)")
    parser.add_argument("--sts-endpoint", required=True, help="STS endpoint URL (moto's server)")
    parser.add_argument("--role-arn", required=True, help="the role the role alias points at")
    parser.add_argument("--role-alias", default=ROLE_ALIAS)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--duration", type=int, default=DURATION_SECONDS, help="credential lifetime, seconds")
    parser.add_argument("--parent-fd", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from nucleus.sandbox._child import announce_ready, watch_parent

    watch_parent(args.parent_fd)
    access_key, secret_key = os.environ.get(ACCESS_KEY_ENV), os.environ.get(SECRET_KEY_ENV)
    if not access_key or not secret_key:
        parser.error(f"set {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}")
    server = EmulatorServer(args.port, context=tls_context(args.ca, args.cert, args.key),
                            role_alias=args.role_alias, role_arn=args.role_arn, duration=args.duration,
                            sts=sts_client(args.sts_endpoint, access_key, secret_key, args.region))
    announce_ready(server.server_address[1])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
