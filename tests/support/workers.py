"""What each pytest-xdist worker keeps to itself (scripts/test runs the suite on two).

Workers share the machine's PostgreSQL and Redis, and every test empties what it uses, so
each worker gets its own database and its own Redis databases. Run without xdist, the
names are the plain ones.
"""

from __future__ import annotations

import os

# "gw0", "gw1", … under xdist; empty in a plain run.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
INDEX = int(WORKER.removeprefix("gw")) if WORKER else 0


def database_name(name: str) -> str:
    """`name`, with the worker's suffix under xdist."""
    return f"{name}_{WORKER}" if WORKER else name


def redis_url(url: str, *, spare: int = 0) -> str:
    """`url` with its database number moved down two for each worker (gw0 keeps it),
    `spare` (0 or 1) picking the first or second of a worker's pair."""
    base, _, number = url.rpartition("/")
    if not number.isdigit():
        raise ValueError(f"a Redis URL ending in a database number, not {url!r}")
    db = int(number) - 2 * INDEX - spare
    if db < 0:
        raise ValueError(f"too many xdist workers for Redis databases below {number}")
    return f"{base}/{db}"
