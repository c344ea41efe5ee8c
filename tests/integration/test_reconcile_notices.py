"""Issued notices and letterheads against their events: `audit verify` and the public check.

A department's total changed in `notices.snapshot`, a verification code or a SHA-256 edited, a
row inserted without an event or one deleted: each passed `audit verify`, and the public
verify page then confirmed the forged figures to anyone holding the code. Now reconciliation
names every such edit, and `/verify` refuses (409 `notice_record_altered`) a row that does not
match its issuing event, while untouched notices verify as before.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, delete, insert, select, text, update
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World
from tests.integration.test_notices import letterhead_bytes, score_department
from tests.integration.test_notices import world as world
from tests.integration.test_verify_and_hiding import make as make
from tests.integration.test_verify_and_hiding import store as store
from workflow.models import AuditEvent, Notice, NoticeBase
from workflow.notices import (
    NoticeRecordAltered,
    issue_notice,
    issue_summary,
    new_verification_code,
    set_notice_base,
    verify_notice,
)
from workflow.reconcile import Reconciliation, iter_descriptions, reconcile

#: One edit per notice version (2 to 10): the fields each one makes differ.
EDITS: dict[int, tuple[dict[str, Any], set[str]]] = {
    3: ({"sha256": "e" * 64}, {"sha256"}),
    4: ({"verification_code": "AAAA-BBBB-CCCC-DDDD"}, {"verification_code"}),
    5: ({"version": 50}, {"version"}),
    6: ({"is_preliminary": False}, {"is_preliminary"}),
    7: ({"storage_key": "sha256/00/00/" + "0" * 64}, {"storage_key"}),
    8: ({"filename": "01-交通局-考核结果通知书-v8.docx"}, {"filename"}),
    9: ({"size": 1}, {"size"}),
}


@pytest.fixture
def client(make: Callable[..., Flask], tmp_path: Path) -> FlaskClient:
    app = make(VERIFY_LIMIT="1000 per minute", SECURITY_LOG=str(tmp_path / "security.log"))
    return app.test_client()


@dataclass
class Issued:
    """Ten versions of one department's preliminary notice, the summary, two letterheads."""

    notices: dict[int, Notice]
    summary: Notice
    bases: list[NoticeBase]


def _issue(session: Session, store: LocalStore, w: World) -> Issued:
    score_department(session, store, w, w.dep_a, w.member_a)
    content = letterhead_bytes()
    bases = [
        set_notice_base(session, store, w.assessment, io.BytesIO(content), name, w.admin)
        for name in ("信头.docx", "信头（新）.docx")
    ]
    notices = {}
    for _ in range(10):  # every issue without `only_if_changed` is a new version
        row = issue_notice(session, store, w.assessment, w.dep_a, w.scorer, preliminary=True)
        notices[row.notice.version] = row.notice
    summary = issue_summary(session, store, w.assessment, w.admin).notice
    session.commit()
    return Issued(notices, summary, bases)


def _notice_fields(result: Reconciliation) -> set[str]:
    return {d.field for d in result.differences}


def _tamper(engine: Engine, w: World, made: Issued) -> tuple[int, int]:
    """Edit the rows behind the engine's back; return the ids of the inserted notice and
    letterhead (rows no event made)."""
    n = made.notices
    forged = copy.deepcopy(n[2].snapshot)
    forged["total"] = "99.50"
    with engine.begin() as conn:
        conn.execute(update(Notice).where(Notice.id == n[2].id).values(snapshot=forged))
        for version, (values, _) in EDITS.items():
            conn.execute(update(Notice).where(Notice.id == n[version].id).values(**values))
        conn.execute(
            update(Notice)
            .where(Notice.id == made.summary.id)
            .values(issued_by_id=w.scorer.id, department_id=w.dep_b.id)
        )
        # Inserted before the deletions: SQLite would give a deleted last row's id again.
        row = conn.execute(select(Notice.__table__).where(Notice.id == n[1].id)).mappings().one()
        copied = {k: v for k, v in row.items() if k != "id"}
        extra = conn.execute(
            insert(Notice)
            .values({**copied, "version": 99, "verification_code": new_verification_code()})
            .returning(Notice.id)
        ).scalar_one()
        conn.execute(delete(Notice).where(Notice.id == n[10].id))
        first, second = made.bases
        base = (
            conn.execute(select(NoticeBase.__table__).where(NoticeBase.id == first.id))
            .mappings()
            .one()
        )
        extra_base = conn.execute(
            insert(NoticeBase)
            .values({k: v for k, v in base.items() if k != "id"})
            .returning(NoticeBase.id)
        ).scalar_one()
        conn.execute(update(NoticeBase).where(NoticeBase.id == first.id).values(sha256="f" * 64))
        conn.execute(delete(NoticeBase).where(NoticeBase.id == second.id))
    return extra, extra_base


def test_each_edit_of_a_notice_or_letterhead_is_named(
    session: Session, store: LocalStore, world: World, engine: Engine
) -> None:
    """Issued through the engine, everything reconciles; then each edit names its field, on
    its row, and nothing else (the notices left alone, v1 among them, are not named)."""
    w = world
    made = _issue(session, store, w)
    assert reconcile(session).differences == []
    extra, extra_base = _tamper(engine, w, made)
    result = reconcile(session)
    n = made.notices
    expected = {f"notice[{n[2].id}].snapshot[total]", f"notice[{n[2].id}].snapshot_sha256"}
    for version, (_, fields) in EDITS.items():
        expected |= {f"notice[{n[version].id}].{name}" for name in fields}
    expected |= {
        f"notice[{made.summary.id}].issued_by_id",
        f"notice[{made.summary.id}].department_id",
        f"notice[{n[10].id}]",  # deleted: issued, not in the table
        f"notice[{extra}]",  # inserted: in the table, never issued
        f"notice_base[{made.bases[0].id}].sha256",
        f"notice_base[{made.bases[1].id}]",
        f"notice_base[{extra_base}]",
    }
    assert _notice_fields(result) == expected
    by_field = {d.field: d for d in result.differences}
    total = by_field[f"notice[{n[2].id}].snapshot[total]"]
    assert (total.live, total.from_events) == ("99.50", n[2].snapshot["total"])
    assert (total.department_id, total.assessment_id) == (w.dep_a.id, w.assessment.id)
    code = by_field[f"notice[{n[4].id}].verification_code"]
    assert code.live == "AAAA-BBBB-CCCC-DDDD" and code.from_events == n[4].verification_code
    issuer = by_field[f"notice[{made.summary.id}].issued_by_id"]
    assert (issuer.live, issuer.from_events) == (w.scorer.id, w.admin.id)
    gone = by_field[f"notice[{n[10].id}]"]
    assert gone.live is None and gone.from_events == {
        "kind": "notice", "version": 10, "filename": n[10].filename,
    }  # fmt: skip
    assert by_field[f"notice[{extra}]"].from_events is None
    assert by_field[f"notice[{extra}]"].live["version"] == 99
    assert by_field[f"notice_base[{made.bases[0].id}].sha256"].from_events == made.bases[0].sha256
    lines = "\n".join(iter_descriptions(result))
    named = f"notice[{n[2].id}].snapshot[total]（考核结果文件 · 内容快照 考核得分）"
    assert f"考核结果文件 #{n[2].id} {named}：现值 99.50" in lines
    assert f"通知书信头 #{made.bases[1].id}" in lines


def test_a_changed_figure_deep_in_the_snapshot_is_named_by_its_path(
    session: Session, store: LocalStore, world: World, engine: Engine
) -> None:
    """A scoring point's awarded points, and a summary row's total, named by code and row."""
    w = world
    score_department(session, store, w, w.dep_a, w.member_a)
    notice = issue_notice(session, store, w.assessment, w.dep_a, w.scorer, preliminary=True)
    summary = issue_summary(session, store, w.assessment, w.scorer)
    session.commit()
    one, table = copy.deepcopy(notice.notice.snapshot), copy.deepcopy(summary.notice.snapshot)
    point = one["categories"][0]["indicators"][0]["points"][0]
    point["awarded"] = "0.00"
    table["rows"][0]["total"] = "1.00"
    with engine.begin() as conn:
        conn.execute(update(Notice).where(Notice.id == notice.notice.id).values(snapshot=one))
        conn.execute(update(Notice).where(Notice.id == summary.notice.id).values(snapshot=table))
    category = one["categories"][0]
    path = f"categories/{category['code']}/indicators/{category['indicators'][0]['code']}/points"
    assert _notice_fields(reconcile(session)) == {
        f"notice[{notice.notice.id}].snapshot_sha256",
        f"notice[{notice.notice.id}].snapshot[{path}/{point['code']}/awarded]",
        f"notice[{summary.notice.id}].snapshot_sha256",
        f"notice[{summary.notice.id}].snapshot[rows/1/total]",
    }


def test_public_verify_refuses_an_altered_row_and_confirms_the_others(
    session: Session, store: LocalStore, world: World, engine: Engine, client: FlaskClient,
    tmp_path: Path,
) -> None:  # fmt: skip
    """Every kind of edit is refused by the engine, the API and the page, with nothing of the
    record shown; the notices issued before the edits of others still verify."""
    w = world
    made = _issue(session, store, w)
    n = made.notices
    before = client.get(f"/api/v1/verify/{n[2].verification_code}")
    assert before.status_code == 200 and before.get_json()["total"] == n[2].snapshot["total"]
    codes = {version: str(row.verification_code) for version, row in n.items()}
    ids = {version: row.id for version, row in n.items()}
    first = (n[1].sha256, ids[1])
    summary = (str(made.summary.verification_code), made.summary.id)
    extra, _ = _tamper(engine, w, made)
    session.expire_all()
    refused = {
        "snapshot": codes[2],
        **{
            next(iter(fields)): "AAAA-BBBB-CCCC-DDDD" if version == 4 else codes[version]
            for version, (_, fields) in EDITS.items()
        },
        "issued_by_id": summary[0],
        "inserted": str(session.get_one(Notice, extra).verification_code),
    }
    for kind, code in refused.items():
        with pytest.raises(NoticeRecordAltered):
            verify_notice(session, code)
        api = client.get(f"/api/v1/verify/{code}")
        assert api.status_code == 409, kind
        error = api.get_json()["error"]
        assert error["code"] == "notice_record_altered", kind
        assert "与审计记录不一致" in error["message"]
        page = client.get(f"/verify/{code}")
        html = page.get_data(as_text=True)
        assert page.status_code == 409, kind
        assert "登记内容与审计记录不一致" in html and "联系发文单位" in html
        assert "有效版本" not in html and "文件 SHA-256" not in html and "99.50" not in html
    # The code edited away no longer finds anything; the deleted version neither.
    for code in (codes[4], codes[10]):
        assert client.get(f"/api/v1/verify/{code}").status_code == 404
    # Untouched: v1, issued before the others were edited, verifies as before.
    ok = client.get(f"/api/v1/verify/{codes[1]}")
    assert ok.status_code == 200 and ok.get_json()["sha256"] == first[0]
    assert ok.get_json()["version"] == 1 and ok.get_json()["total"] == before.get_json()["total"]
    page = client.get(f"/verify/{codes[1]}")
    assert page.status_code == 200 and first[0] in page.get_data(as_text=True)
    # The time shown is the issuing event's, which the chain holds.
    event = session.execute(
        select(AuditEvent).where(AuditEvent.target_type == "notice",
                                 AuditEvent.target_id == str(first[1]))
    ).scalar_one()  # fmt: skip
    assert verify_notice(session, codes[1]).issued_at == event.at

    records = [json.loads(line) for line in (tmp_path / "security.log").read_text().splitlines()]
    altered = [r for r in records if r["event"] == "notice_record_altered"]
    assert {r["notice_id"] for r in altered} == {ids[v] for v in (2, *EDITS)} | {
        summary[1], extra,
    }  # fmt: skip
    snapshot = [r for r in altered if r["notice_id"] == ids[2]]
    assert {r.get("path") for r in snapshot} == {
        None,  # the engine called directly, outside a request
        f"/api/v1/verify/{codes[2]}",
        f"/verify/{codes[2]}",
    }
    assert all(r["fields"] == ["snapshot", "snapshot_sha256"] for r in snapshot)
    assert all(r["fields"] == ["trail"] for r in altered if r["notice_id"] == extra)


def test_an_altered_record_reads_in_english_too(
    session: Session, store: LocalStore, world: World, engine: Engine, client: FlaskClient
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a)
    notice = issue_notice(session, store, w.assessment, w.dep_a, w.scorer, preliminary=True)
    session.commit()
    with engine.begin() as conn:
        conn.execute(update(Notice).values(is_preliminary=False))
    client.post("/language", data={"lang": "en", "next": "/verify"})
    page = client.get(f"/verify/{notice.notice.verification_code}")
    assert page.status_code == 409
    assert "does not match the audit trail" in page.get_data(as_text=True)
    api = client.get(
        f"/api/v1/verify/{notice.notice.verification_code}", headers={"Accept-Language": "en"}
    )
    assert "does not match the audit trail" in api.get_json()["error"]["message"]


def test_the_issuing_event_is_found_by_its_index(
    session: Session, store: LocalStore, world: World, engine: Engine
) -> None:
    """The public check reads the issuing event through `ix_audit_notice_target` (its
    condition written inline, so the plan can use the partial index)."""
    w = world
    score_department(session, store, w, w.dep_a, w.member_a)
    notice = issue_notice(session, store, w.assessment, w.dep_a, w.scorer, preliminary=True)
    session.commit()
    sent: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM audit_events" in statement:
            sent.append((statement, parameters))

    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", keep)
    try:
        verify_notice(session, notice.notice.verification_code)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    # The issuing event, then the later issuings (is it still the version in force?).
    (issuing, issuing_parameters), (later, later_parameters) = sent
    assert "'notice'" in issuing
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        cursor = raw.cursor()  # type: ignore[union-attr]
        plans = []
        for statement, parameters in ((issuing, issuing_parameters), (later, later_parameters)):
            if engine.dialect.name == "postgresql":
                cursor.execute("SET enable_seqscan = off")
                cursor.execute("EXPLAIN " + statement, parameters)
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            plans.append(" ".join(str(row) for row in cursor.fetchall()))
    assert "ix_audit_notice_target" in plans[0], plans[0]
    assert "ix_audit_" in plans[1], plans[1]  # by action or by department, never a scan


def test_old_events_without_code_or_preliminary_reconcile(
    session: Session, store: LocalStore, world: World, engine: Engine
) -> None:
    """A notice issued before migration 0005: its event has no `verification_code` nor
    `preliminary`, and that migration gave its row none and false. Written here as such a row
    and event would stand (the event's payload rewritten without the two, the row's code
    cleared), it reconciles."""
    w = world
    score_department(session, store, w, w.dep_a, w.member_a)
    notice = issue_notice(session, store, w.assessment, w.dep_a, w.scorer, preliminary=True).notice
    session.commit()
    event = session.execute(
        select(AuditEvent).where(AuditEvent.target_id == str(notice.id),
                                 AuditEvent.target_type == "notice")
    ).scalar_one()  # fmt: skip
    payload = json.loads(event.payload)
    del payload["verification_code"], payload["preliminary"]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(update(AuditEvent).where(AuditEvent.seq == event.seq).values(
            payload=json.dumps(payload, ensure_ascii=False, sort_keys=True)))  # fmt: skip
        conn.execute(update(Notice).values(verification_code=None, is_preliminary=False))
    assert _notice_fields(reconcile(session)) == set()


def test_a_snapshot_replaced_by_text_is_named_and_refused(
    session: Session, store: LocalStore, world: World, engine: Engine, client: FlaskClient
) -> None:
    """No figure left to read (the JSON holds a string): named and refused, never a 500."""
    w = world
    score_department(session, store, w, w.dep_a, w.member_a)
    notice = issue_notice(session, store, w.assessment, w.dep_a, w.scorer, preliminary=True).notice
    session.commit()
    nid, code, total = notice.id, str(notice.verification_code), notice.snapshot["total"]
    with engine.begin() as conn:
        conn.execute(update(Notice).where(Notice.id == nid).values(snapshot="不是内容"))
    by_field = {d.field: d for d in reconcile(session).differences}
    assert by_field[f"notice[{nid}].snapshot"].live == "不是内容"
    assert f"notice[{nid}].snapshot_sha256" in by_field
    replaced = by_field[f"notice[{nid}].snapshot[total]"]
    assert (replaced.live, replaced.from_events) == (None, total)
    assert all(field.startswith(f"notice[{nid}].snapshot") for field in by_field)
    assert client.get(f"/api/v1/verify/{code}").status_code == 409
    assert client.get(f"/verify/{code}").status_code == 409


def test_a_deleted_newer_version_does_not_make_an_old_one_current(
    session: Session, store: LocalStore, world: World, engine: Engine, client: FlaskClient
) -> None:
    """The public page says whether a notice is the one in force. Its rows alone cannot say
    it: with the newer version's row deleted behind the engine's back, the trail still holds
    that version's issuing, and the old one is answered as replaced."""
    w = world
    score_department(session, store, w, w.dep_a, w.member_a)
    old, new = (
        issue_notice(session, store, w.assessment, w.dep_a, w.scorer, preliminary=True).notice
        for _ in range(2)
    )
    session.commit()
    code = str(old.verification_code)
    assert verify_notice(session, code).is_current is False
    with engine.begin() as conn:
        conn.execute(delete(Notice).where(Notice.id == new.id))
    session.expire_all()
    assert verify_notice(session, code).is_current is False
    answer = client.get(f"/api/v1/verify/{code}").get_json()
    assert answer["current"] is False and answer["version"] == 1
