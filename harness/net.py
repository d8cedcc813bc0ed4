"""Loopback helpers shared by everything the tests start."""

import itertools
import os
import socket

# Ports come from below the kernel's ephemeral range (32768 and up), so no outgoing connection can
# hold one, and each pytest-xdist worker has a block of its own, so two workers never pick the same
# port between one's probe and its server's bind.
FIRST_PORT, BLOCK = 20000, 1500


def _block() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    start = FIRST_PORT + BLOCK * int(worker or 0)
    return range(start, start + BLOCK)


_candidates = itertools.cycle(_block())


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, from this process's own block."""
    for port in itertools.islice(_candidates, BLOCK):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_block()}")
