"""`make status`: a live stack's health, changing nothing — the connectors (with the root cause of a
failure), the replication slot (how much WAL it holds, how far from being lost), how long an archive
outage from now would last, and per table whether the archive holds every offset the sink has
committed, naming any gap.

Needs what `make verify` needs.
"""

from __future__ import annotations

import sys

from live_stack import report_main, smoke


def main() -> int:
    return report_main(__doc__, lambda endpoints, args, progress: smoke.status(endpoints, progress=progress))


if __name__ == "__main__":
    sys.exit(main())
