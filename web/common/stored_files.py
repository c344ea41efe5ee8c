"""Files people rely on, served only as they were recorded (evidence, routine files, notices).

Both faces (the portal and the API) open a row's object through `open_as_recorded`: the
object must hash to the row's SHA-256 and size (`storage.checked`), else the request is
refused with 409 `object_altered` and the security log names the row and its object.

Their `ETag` is the recorded SHA-256. A client that already holds the file says so with
`If-None-Match` and gets `unchanged_answer`'s 304 without the object being read at all: the
copy it holds is, by its hash, the file as recorded.
"""

from __future__ import annotations

from typing import Protocol

from flask import Response, request

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


def etag_of(sha256: str) -> str:
    """The `ETag` header of a stored file: its recorded SHA-256, quoted."""
    return f'"{sha256}"'


def unchanged_answer(sha256: str) -> Response | None:
    """A 304 when the request's `If-None-Match` names this file (or `*`), else None.

    Asked only after the caller's permission to read the file was checked, so a 304 tells
    nothing a 200 would not; it keeps the `ETag` and the no-store caching of the file's answer.
    """
    if not request.if_none_match.contains_weak(sha256):
        return None
    response = Response(status=304)
    response.headers["ETag"] = etag_of(sha256)
    response.headers["Cache-Control"] = "private, no-store"
    return response
