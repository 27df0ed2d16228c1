"""The sandbox's AWS: moto's server on 127.0.0.1, with an account set up like a Greengrass device's.

Named `aws` (not `moto`) so that `import moto` inside this package still means the library.

Set-up, done through moto's own API while it still accepts unsigned requests:
- IAM user `nucleus-sandbox-credentials-provider` with an access key, allowed only `sts:AssumeRole` on
  the sandbox role (it plays the AWS IoT credentials provider, which assumes the role for devices);
- role `NucleusSandboxTokenExchangeRole`, trusting `credentials.iot.amazonaws.com` (as a real token
  exchange role does) and that user, allowed `s3:ListAllMyBuckets` and `s3:*` on `nucleus-sandbox-*`;
- S3 buckets `nucleus-sandbox-bucket-1..3`, the first holding `hello.txt`.
Then signature checking is switched on (`POST /moto-api/reset-auth` with body `0`: from the next request
on, moto checks every SigV4 signature and IAM permission), and a request signed with a made-up key is
sent to prove it is refused.

`python -m nucleus.sandbox.aws` runs the server itself (the child process); it prints `{"port": N}`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from nucleus.errors import FailedError

REGION = "us-east-1"
USER_NAME = "nucleus-sandbox-credentials-provider"
ROLE_NAME = "NucleusSandboxTokenExchangeRole"
BUCKETS = ("nucleus-sandbox-bucket-1", "nucleus-sandbox-bucket-2", "nucleus-sandbox-bucket-3")
SEED_OBJECT = ("hello.txt", b"Hello from the nucleus sandbox.\n")
_SETUP_KEY = ("setup", "setup")  # moto accepts any key until signature checking is switched on


@dataclass(frozen=True)
class SandboxAccount:
    """What the set-up created; the secret never appears in `repr`."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    role_arn: str
    buckets: tuple[str, ...]


def _client(service: str, endpoint_url: str, key: tuple[str, str]) -> Any:
    """A client that ignores the user's own AWS settings (AWS_PROFILE, ~/.aws): they must not steer the
    sandbox's set-up, which runs in the nucleus's process."""
    import boto3
    import botocore.session

    ignored = {"profile": (None, None, None, None),
               "config_file": (None, None, os.devnull, None),
               "credentials_file": (None, None, os.devnull, None)}
    session = boto3.session.Session(botocore_session=botocore.session.Session(session_vars=ignored))
    return session.client(service, endpoint_url=endpoint_url, region_name=REGION,
                          aws_access_key_id=key[0], aws_secret_access_key=key[1])


def set_up_account(endpoint_url: str) -> SandboxAccount:
    """Create the user, role and buckets, switch signature checking on and prove it is on."""
    iam = _client("iam", endpoint_url, _SETUP_KEY)
    s3 = _client("s3", endpoint_url, _SETUP_KEY)
    user_arn = iam.create_user(UserName=USER_NAME)["User"]["Arn"]
    # One statement naming both principals: moto 5 evaluates every statement that mentions the action
    # and refuses when any of them names another principal (and fails on a Service-only principal).
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "credentials.iot.amazonaws.com", "AWS": user_arn},
         "Action": "sts:AssumeRole"}]}
    role_arn = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust),
                               MaxSessionDuration=43200)["Role"]["Arn"]
    access = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::nucleus-sandbox-*", "arn:aws:s3:::nucleus-sandbox-*/*"]}]}
    iam.put_role_policy(RoleName=ROLE_NAME, PolicyName="NucleusSandboxS3Access", PolicyDocument=json.dumps(access))
    assume = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}]}
    iam.put_user_policy(UserName=USER_NAME, PolicyName="NucleusSandboxAssumeRole", PolicyDocument=json.dumps(assume))
    key = iam.create_access_key(UserName=USER_NAME)["AccessKey"]
    for bucket in BUCKETS:
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=BUCKETS[0], Key=SEED_OBJECT[0], Body=SEED_OBJECT[1])
    enable_signature_checks(endpoint_url)
    return SandboxAccount(endpoint_url, key["AccessKeyId"], key["SecretAccessKey"], role_arn, BUCKETS)


def enable_signature_checks(endpoint_url: str) -> None:
    """Switch moto's SigV4 and IAM checks on for every later request, then prove a bad key is refused."""
    import requests
    from botocore.exceptions import ClientError

    answer = requests.post(f"{endpoint_url}/moto-api/reset-auth", data=b"0", timeout=10)
    if answer.status_code != 200:
        raise FailedError(f"moto refused to switch signature checking on (HTTP {answer.status_code})",
                          hint="check the installed moto version (5.x is needed)")
    try:
        _client("s3", endpoint_url, ("AKIAIOSFODNN7EXAMPLE", "not-the-secret")).list_buckets()
    except ClientError:
        return
    raise FailedError("moto accepted a request signed with a made-up key: signature checking is off",
                      hint="check the installed moto version (5.x is needed)")


def main(argv: list[str] | None = None) -> int:
    """The child process: moto's server on 127.0.0.1 until the parent goes away."""
    parser = argparse.ArgumentParser(prog="python -m nucleus.sandbox.aws",
                                     description="moto's server for the nucleus sandbox")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--parent-fd", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from nucleus.sandbox._child import announce_ready, watch_parent

    watch_parent(args.parent_fd)
    # werkzeug logs every request line, and a presigned URL's query holds a signature and session token.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    os.environ["MOTO_PORT"] = str(port)  # moto builds some URLs (SQS queues…) from it
    announce_ready(port)
    threading.Event().wait()  # SIGTERM (default action) or the parent's exit ends the process
    return 0


if __name__ == "__main__":
    sys.exit(main())
