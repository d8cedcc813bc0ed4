"""`make verify`: the smoke check of a live stack, with endpoints from `pulumi stack output`.

Needs the Pulumi CLI, kubectl (for the PostgreSQL password, read from the stack's Secret) and AWS
credentials that may read the archive bucket.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from components import postgres_config as pgconf  # noqa: E402
from connectors import smoke  # noqa: E402


def run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"verify: `{' '.join(argv[:4])} …` failed: {result.stderr.strip()}")
    return result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--s3-timeout", type=float, default=180)
    args = parser.parse_args()

    outputs = json.loads(run("pulumi", "stack", "output", "--json", "--stack", args.stack))
    encoded = run(
        "kubectl", "--kubeconfig", outputs["kubeconfigPath"], "-n", outputs["namespace"], "get", "secret",
        pgconf.CREDENTIALS_SECRET, "-o", "jsonpath={.data.superuser-password}",
    )
    password = base64.b64decode(encoded).decode()
    host, port = outputs["postgres"]["host"].rsplit(":", 1)
    archive = outputs["archive"]

    def s3():
        import boto3

        return boto3.client("s3", region_name=archive["region"])

    endpoints = smoke.Endpoints(
        connect_url=outputs["connect"]["host"],
        postgres_dsn=f"host={host} port={port} dbname={outputs['postgres']['database']} "
        f"user={pgconf.SUPERUSER} password={password}",
        kafka_bootstrap=outputs["kafka"]["host"],
        bucket=archive["bucket"],
        prefix=archive["prefix"],
        s3=s3,
    )
    report = smoke.check(endpoints, s3_timeout=args.s3_timeout)
    print(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
