"""An issued notice and an uploaded letterhead, as their rows hold them and as their events
recorded them, in one shape: reconciliation (`audit verify`) and the public verification
(`workflow.notices.verify_notice`) compare the two through these functions, so they never
disagree on what "the row follows its event" means.

`workflow.notices._issue` writes a `notices` row and its `notice_issued` / `summary_issued`
event in one transaction, `set_notice_base` a `notice_bases` row and `notice_base_uploaded`.
Nothing else writes either table, and rows are never changed afterwards. No data migration
made a row; 0005 gave the rows issued before it no verification code and `is_preliminary`
false, and the events of that time carry neither `verification_code` nor `preliminary`, which
read as the same. So a row differs from its event only when it was changed behind the engine.

A notice is compared field by field (`NOTICE_FIELDS`); its `storage_key` is the
content-addressed key of the recorded SHA-256 (`object_key_for`), its issuer the event's
actor. The snapshot (every figure the document shows) is compared as its SHA-256
(`snapshot_sha256`) and figure by figure, `snapshot[<path>]`: dictionary keys, and list
entries by their `code` (a category, indicator or scoring point) or their position from 1
(a summary row), joined by "/": `snapshot[total]`,
`snapshot[categories/一/indicators/2/points/2.1/awarded]`, `snapshot[rows/3/total]`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from storage.ingest import object_key_for
from workflow.audit import canonical_json

NOTICE_ACTIONS: Final = ("notice_issued", "summary_issued")
BASE_ACTION: Final = "notice_base_uploaded"
#: The target type of the notices' events (one partial index, `ix_audit_notice_target`).
NOTICE_TARGET: Final = "notice"

#: The columns a notice is read with, in this order (`notice_record` takes them so).
NOTICE_COLUMNS: Final = (
    "id", "assessment_id", "department_id", "kind", "version", "filename", "sha256", "size",
    "storage_key", "base_sha256", "is_preliminary", "verification_code", "issued_by_id",
    "snapshot",
)  # fmt: skip
#: The columns a letterhead is read with, in this order.
BASE_COLUMNS: Final = (
    "id", "assessment_id", "filename", "sha256", "size", "storage_key", "uploaded_by_id",
)  # fmt: skip
#: What the replay cannot read in a payload (a missing or malformed field).
PAYLOAD_ERRORS: Final = (KeyError, TypeError, ValueError, AttributeError)


#: The columns as SQL: the snapshot as its JSON text on either database (PostgreSQL would
#: decode it, and a JSON string would then read like text SQLite hands back).
NOTICE_SELECT: Final = ", ".join(
    "CAST(snapshot AS TEXT)" if name == "snapshot" else name for name in NOTICE_COLUMNS
)


def json_value(text: str) -> Any:
    """JSON text as data (a snapshot, an assessment's routine rules); text that is no JSON
    stands as it is (a finding)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _number(value: Any) -> int | None:
    return None if value is None else int(value)


def snapshot_sha256(snapshot: Any) -> str:
    """The SHA-256 of a snapshot's canonical JSON."""
    return hashlib.sha256(canonical_json(snapshot).encode("utf-8")).hexdigest()


def _leaves(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        entries: Sequence[tuple[str, Any]] = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        entries = [
            (str(v["code"]) if isinstance(v, dict) and "code" in v else str(n), v)
            for n, v in enumerate(value, start=1)
        ]
    else:
        out[f"snapshot[{path}]" if path else "snapshot"] = value
        return
    for key, item in entries:
        _leaves(item, f"{path}/{key}" if path else key, out)


def snapshot_fields(snapshot: Any) -> dict[str, Any]:
    """A snapshot as compared: its SHA-256, then each figure as `snapshot[<path>]`.

    The SHA-256 catches what the figures alone would not (an empty list, a code repeated).
    """
    out: dict[str, Any] = {"snapshot_sha256": snapshot_sha256(snapshot)}
    _leaves(snapshot, "", out)
    return out


def notice_record(values: Sequence[Any], *, as_text: bool = False) -> tuple[int, dict[str, Any]]:
    """A `notices` row read in `NOTICE_COLUMNS` order: its id and its fields as compared.

    `as_text`: the snapshot is its JSON text (`NOTICE_SELECT`), else the mapped value.
    """
    row = dict(zip(NOTICE_COLUMNS, values, strict=True))
    snapshot = json_value(row["snapshot"]) if as_text else row["snapshot"]
    record = {name: row[name] for name in NOTICE_COLUMNS[1:-1]}
    record.update(
        department_id=_number(row["department_id"]),
        issued_by_id=_number(row["issued_by_id"]),
        is_preliminary=bool(row["is_preliminary"]),
        size=int(row["size"]),
    )
    record.update(snapshot_fields(snapshot))
    return int(row["id"]), record


def notice_record_of_event(
    actor_id: int | None, department_id: int | None, payload: Mapping[str, Any]
) -> tuple[int, dict[str, Any]]:
    """A notice as its issuing event recorded it: its id and its fields as compared.

    Raises one of `PAYLOAD_ERRORS` for a payload without a field it needs.
    """
    record: dict[str, Any] = {
        "assessment_id": int(payload["assessment_id"]),
        "department_id": _number(department_id),
        "kind": payload["kind"],
        "version": int(payload["version"]),
        "filename": payload["filename"],
        "sha256": payload["sha256"],
        "size": int(payload["size"]),
        "storage_key": object_key_for(payload["sha256"]),
        "base_sha256": payload["base_sha256"],
        # Events written before 0005 carry neither; that migration gave their rows the same.
        "is_preliminary": bool(payload.get("preliminary", False)),
        "verification_code": payload.get("verification_code"),
        "issued_by_id": _number(actor_id),
    }
    record.update(snapshot_fields(payload["snapshot"]))
    return int(payload["notice_id"]), record


def base_record(values: Sequence[Any]) -> tuple[int, dict[str, Any]]:
    """A `notice_bases` row read in `BASE_COLUMNS` order: its id and its fields."""
    row = dict(zip(BASE_COLUMNS, values, strict=True))
    record = {name: row[name] for name in BASE_COLUMNS[1:]}
    record.update(size=int(row["size"]), uploaded_by_id=_number(row["uploaded_by_id"]))
    return int(row["id"]), record


def base_record_of_event(
    actor_id: int | None, payload: Mapping[str, Any]
) -> tuple[int, dict[str, Any]]:
    """A letterhead as `notice_base_uploaded` recorded it: its id and its fields."""
    record = {
        "assessment_id": int(payload["assessment_id"]),
        "filename": payload["filename"],
        "sha256": payload["sha256"],
        "size": int(payload["size"]),
        "storage_key": object_key_for(payload["sha256"]),
        "uploaded_by_id": _number(actor_id),
    }
    return int(payload["notice_base_id"]), record


_MISSING: Final = object()


def differing_fields(live: Mapping[str, Any], trail: Mapping[str, Any]) -> list[str]:
    """The fields whose values differ, or that one side has and the other not (trail first)."""
    return [
        name for name in {**trail, **live} if live.get(name, _MISSING) != trail.get(name, _MISSING)
    ]
