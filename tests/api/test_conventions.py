"""The contract's conventions (../shared/API.md), checked on every operation they apply to.

- Every list pages the same way: `?limit=` (default 50, capped at 500, below 1 or not a number a
  400 `invalid_parameter`), `?cursor=` (opaque; one not ours is a 400 `invalid_cursor`), and
  `next_cursor`, null at the end; walking the pages gives every row once, in the list's order.
- `GET /assessments` is newest year first, as `GET /me` and the commands mean "newest".
- Files answer with their recorded SHA-256 as `ETag`; `If-None-Match` with it is a 304.
- A removed evidence file stays on record: audited, still readable by the office, a 404 for
  the department.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from urllib.parse import quote

import yaml
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.api.conftest import Cast, error_code, pdf_upload
from tests.factories import add_evidence, moved_to_year
from web.tasks import runners_for
from workflow import notify
from workflow.audit import payload_of
from workflow.calendar import set_calendar_override
from workflow.demo import demo_pdf
from workflow.jobs import execute, start_job
from workflow.models import AuditEvent, Evidence
from workflow.notify import Message
from workflow.scheme import SCHEMES_DIR
from workflow.schemes import import_shipped, load_scheme, save_scheme, use_scheme
from workflow.setup import create_assessment
from workflow.users import issue_token


def _walk(client: FlaskClient, url: str, headers: dict[str, str], key: str, limit: int) -> list:  # type: ignore[type-arg]
    """Every row of a list, page by page, following `next_cursor` until null."""
    rows: list = []  # type: ignore[type-arg]
    cursor = None
    for _ in range(100):
        sep = "&" if "?" in url else "?"
        page = client.get(
            f"{url}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else ""), headers=headers
        )
        assert page.status_code == 200, (url, page.get_json())
        body = page.get_json()
        assert len(body[key]) <= limit
        rows.extend(body[key])
        cursor = body["next_cursor"]
        if cursor is None:
            return rows
        assert body[key], (url, "a cursor after an empty page")
    raise AssertionError(f"{url}: the pages never end")


def _more_of_everything(app: Flask, session: Session, cast: Cast) -> None:
    """At least two rows in every list the contract pages: assessments of three years (2017
    entered last), events of an item, tokens, schemes, jobs, messages, overrides."""
    w = cast.world
    stored = import_shipped(session)
    rules_2019 = next(s.record for s in stored if s.record.year == 2019)
    raw = yaml.safe_load((SCHEMES_DIR / "jiaohe-2018.yaml").read_text("utf-8"))
    rules_2017 = save_scheme(session, moved_to_year(raw, 2017), actor=w.admin).record
    for record, year in ((rules_2019, 2019), (rules_2017, 2017)):
        made = create_assessment(
            session,
            load_scheme(session, record.id),
            year=year,
            result_document_no=f"蛟市职转办〔{year + 1}〕1号",
            actor=w.admin,
        )
        use_scheme(session, record, made, actor=w.admin)
    item = w.item(session, w.dep_a, "1")
    for name in ("一.pdf", "二.pdf", "三.pdf"):
        add_evidence(session, app.extensions["store"], item, w.member_a, name=name)
    issue_token(session, w.admin, name="第二个")
    start_job(session, w.admin, "audit_verify", {})
    start_job(session, w.admin, "export", {"table": "audit"})
    person = notify.recipients(session, user_ids=[w.admin.id])
    for k in range(3):
        notify.send(session, person, Message("item_returned", f"指标{k}：被退回修改", "缺材料"))
    for day in (dt.date(2018, 10, 8), dt.date(2018, 10, 9), dt.date(2018, 12, 31)):
        set_calendar_override(session, day, day.day == 9, "测试", actor=w.admin)
    session.commit()


def _upload(client: FlaskClient, session: Session, cast: Cast, seed: str) -> dict:  # type: ignore[type-arg]
    """Department A's file on its item 1, uploaded over the API; the upload's answer."""
    item = cast.world.item(session, cast.world.dep_a, "1")
    up = client.post(
        f"/api/v1/items/{item.id}/evidence",
        data=pdf_upload(seed=seed),
        headers=cast.headers("own"),
        content_type="multipart/form-data",
    )
    assert up.status_code == 201, up.get_json()
    body: dict = up.get_json()  # type: ignore[type-arg]
    return body


def test_every_list_pages_the_same_way(
    app: Flask, client: FlaskClient, session: Session, cast: Cast
) -> None:
    _more_of_everything(app, session, cast)
    w = cast.world
    aid, did = w.assessment.id, w.dep_a.id
    item = w.item(session, w.dep_a, "1")
    admin = cast.headers("admin")
    lists = [  # url, the list's key, what identifies a row
        ("/api/v1/assessments", "assessments", "id"),
        (f"/api/v1/assessments/{aid}/items?indicator=1", "items", "id"),
        (f"/api/v1/items/{item.id}/history", "events", "seq"),
        ("/api/v1/audit/events", "events", "seq"),
        ("/api/v1/tokens", "tokens", "id"),
        ("/api/v1/units", "units", "id"),
        ("/api/v1/schemes", "schemes", "id"),
        ("/api/v1/jobs", "jobs", "id"),
        ("/api/v1/me/notifications", "notifications", "id"),
        ("/api/v1/calendar/overrides", "overrides", "id"),
        (f"/api/v1/assessments/{aid}/departments/{did}/notices", "notices", "id"),
    ]
    for url, key, ident in lists:
        sep = "&" if "?" in url else "?"
        whole = client.get(url, headers=admin)
        assert whole.status_code == 200, (url, whole.get_json())
        everything = whole.get_json()[key]
        if key != "notices":  # none issued here: its paging is the issuing tests' (notices)
            assert len(everything) >= 2, url
        limit = max(1, math.ceil(len(everything) / 3))
        walked = _walk(client, url, admin, key, limit)
        assert [r[ident] for r in walked] == [r[ident] for r in everything], url
        # Above the maximum is capped, not refused; nonsense is our 400 with its code.
        assert client.get(f"{url}{sep}limit=501", headers=admin).status_code == 200, url
        for bad in ("0", "-1", "abc", "1.5", "٣"):
            refused = client.get(f"{url}{sep}limit={bad}", headers=admin)
            assert refused.status_code == 400, (url, bad)
            assert error_code(refused) == "invalid_parameter", (url, bad)
        for bad in ("abc", "1", "bm9ib2R5OjE", "YXNzZXNzbWVudDot"):  # nobody:1, assessment:-
            refused = client.get(f"{url}{sep}cursor={bad}", headers=admin)
            assert refused.status_code == 400, (url, bad)
            assert error_code(refused) == "invalid_cursor", (url, bad)


def test_assessments_are_listed_newest_year_first(
    app: Flask, client: FlaskClient, session: Session, cast: Cast
) -> None:
    """2017 was entered after 2019: it still comes after 2018, on every page."""
    _more_of_everything(app, session, cast)
    headers = cast.headers("own")
    years = [a["year"] for a in _walk(client, "/api/v1/assessments", headers, "assessments", 1)]
    assert years == [2019, 2018, 2017]
    whole = client.get("/api/v1/assessments", headers=headers).get_json()
    assert [a["year"] for a in whole["assessments"]] == [2019, 2018, 2017]


def test_files_carry_their_sha256_as_etag_and_answer_if_none_match(
    app: Flask, client: FlaskClient, session: Session, cast: Cast
) -> None:
    up = _upload(client, session, cast, "etag")
    sha = up["sha256"]
    assert sha == hashlib.sha256(demo_pdf("etag")).hexdigest()
    url = f"/api/v1/evidence/{up['id']}/content"
    reviewer = cast.headers("reviewer")
    first = client.get(url, headers=reviewer)
    assert first.status_code == 200 and first.headers["ETag"] == f'"{sha}"'
    for held in (f'"{sha}"', f'W/"{sha}"', f'"other", "{sha}"', "*"):
        again = client.get(url, headers={**reviewer, "If-None-Match": held})
        assert again.status_code == 304, held
        assert again.data == b"" and again.headers["ETag"] == f'"{sha}"'
        assert again.headers["Cache-Control"] == "private, no-store"
    changed = client.get(url, headers={**reviewer, "If-None-Match": '"0000"'})
    assert changed.status_code == 200 and changed.data == demo_pdf("etag")
    # The ETag is no way around the permissions: another department is still a 404.
    other = client.get(url, headers=cast.headers("other", **{"If-None-Match": f'"{sha}"'}))
    assert other.status_code == 404


def test_a_job_file_answers_if_none_match(
    app: Flask, client: FlaskClient, session: Session, cast: Cast
) -> None:
    admin = cast.headers("admin")
    started = client.post("/api/v1/jobs", json={"kind": "audit_verify"}, headers=admin)
    assert started.status_code == 202
    job_id = started.get_json()["id"]
    factory, store = app.extensions["sessionmaker"], app.extensions["store"]
    assert execute(factory, store, job_id, runners_for(app)) == "done"
    url = f"/api/v1/jobs/{job_id}/download"
    got = client.get(url, headers=admin)
    assert got.status_code == 200
    assert got.headers["ETag"] == f'"{hashlib.sha256(got.data).hexdigest()}"'
    held = client.get(url, headers={**admin, "If-None-Match": got.headers["ETag"]})
    assert held.status_code == 304 and held.data == b""


def test_a_removed_file_stays_on_record(
    app: Flask, client: FlaskClient, session: Session, cast: Cast
) -> None:
    """DELETE: 204; the row is marked removed and audited, the object is kept (API.md)."""
    item = cast.world.item(session, cast.world.dep_a, "1")
    up = _upload(client, session, cast, "removed")
    url = f"/api/v1/evidence/{up['id']}"
    assert client.delete(url, headers=cast.headers("reviewer")).status_code == 403
    assert client.delete(url, headers=cast.headers("other")).status_code == 404
    gone = client.delete(url, headers=cast.headers("own"))
    assert gone.status_code == 204 and gone.data == b""
    session.expire_all()
    row = session.get(Evidence, up["id"])
    assert row is not None and row.removed_at is not None
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "evidence_removed")
    ).scalar_one()
    assert event.item_id == item.id and payload_of(event)["sha256"] == up["sha256"]
    kept = client.get(f"{url}/content", headers=cast.headers("auditor"))
    assert kept.status_code == 200 and kept.data == demo_pdf("removed")
    hidden = client.get(f"{url}/content", headers=cast.headers("own"))
    assert hidden.status_code == 404 and error_code(hidden) == "evidence_not_found"
    assert client.delete(url, headers=cast.headers("own")).status_code == 404
    listed = client.get(f"/api/v1/items/{item.id}", headers=cast.headers("own")).get_json()
    assert up["id"] not in [e["id"] for e in listed["evidence"]]


def test_download_ascii_name_is_usable_and_distinct(
    client: FlaskClient, session: Session, cast: Cast
) -> None:
    """A client that reads only `filename=` (curl -OJ, wget --content-disposition) saves under
    the ASCII fallback: two Chinese names that differ only in Chinese get two names, none
    starts with a dash or a dot, the extension is kept, and `filename*=` has the exact name."""
    w = cast.world
    item = w.item(session, w.dep_a, "1")
    own = cast.headers("own")
    names = ("交通局-指标1-佐证材料.pdf", "交通局-指标1-会议纪要.pdf")
    fallbacks = []
    for n, name in enumerate(names):
        up = client.post(
            f"/api/v1/items/{item.id}/evidence",
            headers=own,
            data=pdf_upload(name, seed=f"fallback{n}", sub_item="1.1"),
            content_type="multipart/form-data",
        )
        assert up.status_code == 201, up.get_json()
        down = client.get(f"/api/v1/evidence/{up.get_json()['id']}/content", headers=own)
        disposition = down.headers["Content-Disposition"]
        assert f"filename*=UTF-8''{quote(name, safe='')}" in disposition
        fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
        assert fallback.isascii() and fallback.endswith(".pdf"), fallback
        assert not fallback.startswith(("-", ".")), fallback
        fallbacks.append(fallback)
    assert fallbacks[0] != fallbacks[1], fallbacks
