"""Database ids in URLs and forms."""

from __future__ import annotations

#: The largest id a 32-bit integer column holds: anything larger cannot exist (a 404).
MAX_ID = 2**31 - 1
