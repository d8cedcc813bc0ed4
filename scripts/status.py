"""`make status`: a live stack's health, changing nothing — the connectors (with the root cause of a
failure), the replication slot (how much WAL it holds, how far from being lost), and per partition
whether the archive holds every offset the sink has committed, naming any gap.

Needs what `make verify` needs. Exits non-zero when something is wrong.
"""

from __future__ import annotations

import argparse
import sys

from live_stack import endpoints, smoke


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", default="dev")
    args = parser.parse_args()
    report = smoke.status(endpoints(args.stack))
    print(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
