"""`make verify`: the smoke check of a live stack — a marker row followed from PostgreSQL to S3, the
replication slot, and the archive's completeness per partition.

Needs the Pulumi CLI, kubectl (for the PostgreSQL password, read from the stack's Secret) and AWS
credentials that may read the archive bucket.
"""

from __future__ import annotations

import argparse
import sys

from live_stack import endpoints, smoke


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--s3-timeout", type=float, default=180)
    args = parser.parse_args()
    report = smoke.check(endpoints(args.stack), s3_timeout=args.s3_timeout)
    print(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
