"""The endpoints of a live stack, for `make verify` and `make status`: from `pulumi stack output`
(Connect's REST credentials with --show-secrets), with the PostgreSQL password read from the stack's
Secret (kubectl) and S3 read with your AWS credentials.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from components import postgres_config as pgconf  # noqa: E402
from components.formats import ArchiveFormat, Serialization  # noqa: E402
from components.settings import Names, stack_slug  # noqa: E402
from operations import smoke  # noqa: E402


# What `make verify` and `make status` exit with; argparse's own refusal is 2 as well.
OK, NOT_OK, NOT_CHECKED = 0, 1, 2
EXIT_CODES = (f"exit codes: {OK} the pipeline is OK; {NOT_OK} it is NOT OK (each line marked ✘ says what, and what to "
              f"do); {NOT_CHECKED} it could not be checked (the stack's outputs, kubectl, or the arguments).")


def run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        print(f"`{' '.join(argv[:4])} …` failed: {result.stderr.strip()}", file=sys.stderr)
        sys.exit(NOT_CHECKED)
    return result.stdout


def report_main(doc: str, make_report: Callable[[smoke.Endpoints, argparse.Namespace, Callable[[str], None]],
                                                smoke.Report],
                options: Callable[[argparse.ArgumentParser], None] = lambda parser: None) -> int:
    """The command line of `make verify` and `make status`: each finding printed as it is found, then
    the archive's table and the verdict; with --json one document on stdout, the progress on stderr."""
    parser = argparse.ArgumentParser(description=doc, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document (ok, checks, tables) on stdout; progress goes to stderr")
    options(parser)
    args = parser.parse_args()
    shown = sys.stderr if args.json else sys.stdout
    report = make_report(endpoints(args.stack), args, lambda line: print(line, file=shown, flush=True))
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print("\n".join(report.ending()))
    return OK if report.ok else NOT_OK


def endpoints(stack: str) -> smoke.Endpoints:
    outputs = json.loads(run("pulumi", "stack", "output", "--json", "--stack", stack))
    credentials = json.loads(run("pulumi", "stack", "output", "connectCredentials", "--show-secrets", "--json",
                                 "--stack", stack))
    encoded = run(
        "kubectl", "--kubeconfig", outputs["kubeconfigPath"], "-n", outputs["namespace"], "get", "secret",
        pgconf.CREDENTIALS_SECRET, "-o", "jsonpath={.data.superuser-password}",
    )
    password = base64.b64decode(encoded).decode()
    host, port = outputs["postgres"]["host"].rsplit(":", 1)
    archive = outputs["archive"]
    archive_format = ArchiveFormat.parse(archive["format"])

    def s3():
        import boto3

        return boto3.client("s3", region_name=archive["region"])

    def catalog():
        # Your AWS credentials, as for S3: the Glue catalog the sink writes its tables into.
        from pyiceberg.catalog.glue import GlueCatalog

        return GlueCatalog("archive", **{"glue.region": archive["region"], "s3.region": archive["region"]})

    return smoke.Endpoints(
        connect_url=outputs["connect"]["host"],
        connect_auth=(credentials["user"], credentials["password"]),
        postgres_dsn=f"host={host} port={port} dbname={outputs['postgres']['database']} "
        f"user={pgconf.SUPERUSER} password={password}",
        kafka_bootstrap=outputs["kafka"]["host"],
        bucket=archive["bucket"],
        prefix=archive["prefix"],
        s3=s3,
        replication_slot=Names(stack_slug(stack)).replication_slot,
        glue_database=archive.get("glueDatabase") or "",
        archive=archive_format,
        catalog=catalog if archive_format.typed else None,
        registry_url=outputs["schemaRegistry"]["confluentCompatible"]
        if Serialization.parse(outputs["connectors"]["serialization"]).registry else "",
    )
