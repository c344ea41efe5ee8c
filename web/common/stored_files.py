"""Files people rely on, served only as they were recorded (evidence, routine files, notices).

Both faces (the portal and the API) open a row's object through `open_as_recorded`: the
object must hash to the row's SHA-256 and size (`storage.checked`), else the request is
refused with 409 `object_altered` and the security log names the row and its object.
"""

from __future__ import annotations

from typing import Protocol

from storage.base import ObjectReader, ObjectStore
from storage.checked import open_checked
from storage.errors import ObjectAltered
from workflow.security_log import security_event


class StoredRow(Protocol):
    """A row that names an object and what it held when it was stored."""

    @property
    def id(self) -> int: ...

    @property
    def storage_key(self) -> str: ...

    @property
    def sha256(self) -> str: ...

    @property
    def size(self) -> int: ...


def open_as_recorded(store: ObjectStore, row: StoredRow, resource: str) -> ObjectReader:
    """Open the row's object once it matches the row; log and re-raise `ObjectAltered`."""
    try:
        return open_checked(store, row.storage_key, sha256=row.sha256, size=row.size)
    except ObjectAltered as exc:
        security_event(
            "stored_object_altered",
            resource=resource,
            id=row.id,
            key=row.storage_key,
            detail=exc.detail,
        )
        raise
