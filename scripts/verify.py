"""`make verify`: the smoke check of a live stack — a marker row followed from PostgreSQL to S3, the
replication slot, and the archive's completeness per table.

Needs the Pulumi CLI, kubectl (for the PostgreSQL password, read from the stack's Secret) and AWS
credentials that may read the archive bucket.
"""

from __future__ import annotations

import sys

from live_stack import report_main, smoke


def main() -> int:
    return report_main(
        __doc__, lambda endpoints, args, progress: smoke.check(endpoints, s3_timeout=args.s3_timeout, progress=progress),
        lambda parser: parser.add_argument("--s3-timeout", type=float, default=180))


if __name__ == "__main__":
    sys.exit(main())
