"""What a form was opened on: a fingerprint of the values it edits, checked before a save.

Item transitions carry a `version`; the portal's other edit forms (the year's settings, a
user's roles, a department's full name, the calendar, the letterhead, a routine record's
correction, the scheme editor) post every field they show, so a save made on a page opened
before another admin's would silently put back what that admin changed. Each such form
renders `fingerprint` of the current values of the fields it edits as a hidden `seen`; the
engine's operation takes it back (`seen=`, optional: the API and the command line leave it
out) and, under the row's lock, compares it with the fingerprint of the values now
(`check_seen`). A different one is a 409 `changed_since_opened`, raised before anything is
written or audited — Frappe's `check_if_latest` ("Document has been modified after you have
opened it"), by content rather than by a timestamp.

Only the form's own fields count: another form's change to other fields of the same row
(the audience of the 公示 page beside the 发文字号) does not refuse this one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from workflow.audit import canonical_json
from workflow.db import lock_row
from workflow.errors import Conflict


def fingerprint(values: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of the canonical JSON of `values` (keys sorted, times in UTC)."""
    return hashlib.sha256(canonical_json(dict(values)).encode("utf-8")).hexdigest()


def fields_of(row: object, fields: Iterable[str]) -> dict[str, Any]:
    """The named attributes of a row, as a form shows them."""
    return {name: getattr(row, name) for name in fields}


def check_seen(seen: object, values: Mapping[str, Any]) -> None:
    """Refuse (409 `changed_since_opened`) when `seen` is given and is not the fingerprint
    of `values`, the current values of the fields the form edits; None checks nothing."""
    if seen is None:
        return
    if not isinstance(seen, str) or seen != fingerprint(values):
        raise Conflict(
            "该设置已被他人修改（在您打开页面之后），请查看最新内容后重新保存",
            code="changed_since_opened",
        )


def check_row_seen(session: Session, row: Any, fields: Iterable[str], seen: object) -> None:
    """Lock `row`, read it again and `check_seen` its `fields` (nothing when `seen` is None):
    a save that queued behind another compares with what that one wrote."""
    if seen is None:
        return
    lock_row(session, type(row), row.id)
    session.refresh(row)
    check_seen(seen, fields_of(row, fields))
