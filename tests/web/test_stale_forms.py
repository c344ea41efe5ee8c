"""Nothing changes behind an admin's back: a form saved on a page opened before another admin's
save of the same fields is refused (409 `changed_since_opened`), not saved over it.

Each test opens the form twice (two admins' pages, the same fingerprint), saves from the second
page, then from the first: the 409 keeps the second save's values, writes no audit event,
shows the current values with what the first admin typed, and the page it shows saves.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import World
from tests.web.conftest import text
from tests.web.test_schemes_pages import fields
from workflow.models import (
    Assessment,
    AuditEvent,
    CalendarOverride,
    Department,
    NoticeBase,
    RoutineRecord,
    StageDeadline,
    StoredScheme,
    User,
)
from workflow.schemes import import_shipped

Login = Callable[[str], FlaskClient]
STALE = "该设置已被他人修改（在您打开页面之后），请查看最新内容后重新保存"
BASE_DOCX = Path(__file__).resolve().parents[2] / "templates" / "notice_base.docx"


def seen_after(html: str, marker: str) -> str:
    """The `seen` of the first form after `marker` on the page."""
    start = html.index(marker)
    match = re.compile(r'name="seen" value="([0-9a-f]{64})"').search(html, start)
    assert match, f"no seen field after {marker}"
    return match.group(1)


def events(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def save_over(
    client: FlaskClient,
    session: Session,
    pages: tuple[str, str],
    marker: str,
    url: str,
    first: dict[str, object],
    second: dict[str, object],
) -> str:
    """Save `second` from the second page (it goes through), then `first` from the first page
    (opened before that save): 409 with the message, no audit event. Returns the 409 page."""
    saved = client.post(url, data={**second, "seen": seen_after(pages[1], marker)})
    assert saved.status_code == 303, text(saved)[:3000]
    before = events(session)
    response = client.post(url, data={**first, "seen": seen_after(pages[0], marker)})
    page = text(response)
    assert response.status_code == 409 and STALE in page, page[:3000]
    assert events(session) == before
    return page


def opened_twice(client: FlaskClient, url: str) -> tuple[str, str]:
    """The page as two admins opened it, before either saved."""
    first, second = text(client.get(url)), text(client.get(url))
    return first, second


def test_result_settings_saved_over_another_admins_are_refused(
    session: Session, world: World, login: Login
) -> None:
    admin = login("admin")
    pages = opened_twice(admin, "/admin/assessment")
    marker = 'name="action" value="results"'
    assert seen_after(pages[0], marker) == seen_after(pages[1], marker)
    typed = {"action": "results", "result_document_no": "蛟市职转办〔2019〕1号",
             "notice_cc": "市政府办公室", "hide_scores": "1"}  # fmt: skip
    other = {**typed, "result_document_no": "蛟市职转办〔2019〕2号", "notice_cc": ""}
    page = save_over(admin, session, pages, marker, "/admin/assessment", typed, other)
    assert session.get_one(Assessment, world.assessment.id).result_document_no == (
        "蛟市职转办〔2019〕2号"
    )
    assert "<dd>蛟市职转办〔2019〕2号</dd>" in page  # what the other admin saved
    assert 'value="市政府办公室"' in page  # what this one typed, kept
    # Seen now: the second save is a choice, and goes through.
    again = admin.post("/admin/assessment", data={**typed, "seen": seen_after(page, marker)})
    assert again.status_code == 303
    session.expire_all()
    assert session.get_one(Assessment, world.assessment.id).notice_cc == "市政府办公室"


def test_another_forms_change_does_not_refuse_a_save_and_the_audience_is_guarded(
    session: Session, world: World, login: Login
) -> None:
    admin = login("admin")
    pages = opened_twice(admin, "/admin/assessment")
    audience = 'name="action" value="publication_page"'
    page = save_over(
        admin, session, pages, audience, "/admin/assessment",
        {"action": "publication_page", "audience": "public"},
        {"action": "publication_page", "audience": "signed_in"},
    )  # fmt: skip
    assert session.get_one(Assessment, world.assessment.id).publication_page == "signed_in"
    assert "<dd>仅限已登录用户</dd>" in page
    assert '<option value="public" selected>' in page  # the choice made, kept
    # The results form's fields did not change: its save from the older page goes through.
    results = admin.post("/admin/assessment", data={
        "action": "results", "result_document_no": "蛟市职转办〔2019〕1号", "hide_scores": "1",
        "seen": seen_after(pages[0], 'name="action" value="results"'),
    })  # fmt: skip
    assert results.status_code == 303


def test_a_letterhead_uploaded_over_another_admins_is_refused(
    session: Session, world: World, login: Login
) -> None:
    admin = login("admin")
    pages = opened_twice(admin, "/admin/assessment")
    page = save_over(
        admin, session, pages, 'action="/admin/assessment/letterhead"',
        "/admin/assessment/letterhead",
        {"file": (io.BytesIO(BASE_DOCX.read_bytes()), "甲的信头.docx")},
        {"file": (io.BytesIO(BASE_DOCX.read_bytes()), "乙的信头.docx")},
    )  # fmt: skip
    names = session.scalars(select(NoticeBase.filename)).all()
    assert names == ["乙的信头.docx"] and "乙的信头.docx" in page


def test_roles_saved_over_another_admins_are_refused(
    session: Session, world: World, login: Login
) -> None:
    admin = login("admin")
    url = f"/admin/users/{world.reviewer.id}"
    page = save_over(
        admin, session, opened_twice(admin, url), "/roles", f"{url}/roles",
        {"roles": ["reviewer", "verifier"]}, {"roles": ["reviewer", "scorer"]},
    )  # fmt: skip
    assert session.get_one(User, world.reviewer.id).roles == ["reviewer", "scorer"]
    assert "<dd>初审员、评分员</dd>" in page  # the roles now
    assert 'value="verifier" checked' in page and 'value="scorer" checked' not in page
    again = admin.post(f"{url}/roles", data={
        "roles": ["reviewer", "scorer", "verifier"], "seen": seen_after(page, "/roles"),
    })  # fmt: skip
    assert again.status_code == 303
    session.expire_all()
    assert session.get_one(User, world.reviewer.id).roles == ["reviewer", "scorer", "verifier"]


def test_a_full_name_saved_over_another_admins_is_refused(
    session: Session, world: World, login: Login
) -> None:
    admin = login("admin")
    dep = world.dep_a
    url = f"/admin/departments/{dep.id}"
    page = save_over(
        admin, session, opened_twice(admin, "/admin/departments"), f'id="dep-{dep.id}"', url,
        {"action": "rename", "full_name": "甲改的全称"},
        {"action": "rename", "full_name": "乙改的全称"},
    )  # fmt: skip
    assert session.get_one(Department, dep.id).full_name == "乙改的全称"
    assert 'value="甲改的全称"' in page and "当前全称：乙改的全称" in page
    # Adding an alias is not an overwrite: no fingerprint, as before.
    added = admin.post(url, data={"action": "add_alias", "alias": "甲的别名", "kind": "alias"})
    assert added.status_code == 303


def test_a_stage_deadline_saved_over_another_admins_is_refused(
    session: Session, world: World, login: Login
) -> None:
    admin = login("admin")
    base = f"/admin/assessments/{world.assessment.id}/calendar"
    pages = opened_twice(admin, base)
    page = save_over(
        admin, session, pages, 'id="stage-submit"', f"{base}/stages/submit",
        {"due_on": "2018-09-21"}, {"due_on": "2018-09-28"},
    )  # fmt: skip
    due = session.scalars(select(StageDeadline.due_on).where(StageDeadline.stage == "submit"))
    assert [d.isoformat() for d in due] == ["2018-09-28"]
    assert 'value="2018-09-21"' in page and ">2018-09-28" in page  # typed, and the current
    # Another stage's form: its own fields did not change, so its save goes through.
    other = admin.post(f"{base}/stages/review", data={
        "due_on": "2018-10-12", "seen": seen_after(pages[0], 'id="stage-review"'),
    })  # fmt: skip
    assert other.status_code == 303


def test_overrides_replaced_or_removed_over_another_admins_are_refused(
    session: Session, world: World, login: Login
) -> None:
    admin = login("admin")
    base = f"/admin/assessments/{world.assessment.id}/calendar"
    add = f'action="{base}/overrides" class="form-row"'
    pages = opened_twice(admin, base)
    # The entry another admin made meanwhile is not replaced unseen...
    page = save_over(
        admin, session, pages, add, f"{base}/overrides",
        {"day": "2018-10-08", "kind": "workday", "reason": "甲：补班"},
        {"day": "2018-10-08", "kind": "holiday", "reason": "乙：本地放假"},
    )  # fmt: skip
    assert "乙：本地放假" in page and 'value="甲：补班"' in page
    # ...but a day nobody entered is added whatever changed since the page was opened.
    other_day = admin.post(f"{base}/overrides", data={
        "day": "2018-10-09", "kind": "holiday", "reason": "甲：本地放假",
        "seen": seen_after(pages[0], add),
    })  # fmt: skip
    assert other_day.status_code == 303
    # Removing an entry replaced since the page showed it: refused too.
    override = session.scalars(
        select(CalendarOverride).where(CalendarOverride.reason == "乙：本地放假")
    ).one()
    remove = f'name="override_id" value="{override.id}"'
    seen_by_first = seen_after(text(admin.get(base)), remove)
    replaced = admin.post(f"{base}/overrides", data={
        "day": "2018-10-08", "kind": "holiday", "reason": "乙：更正后的原因",
        "seen": seen_after(text(admin.get(base)), add),
    })  # fmt: skip
    assert replaced.status_code == 303
    before = events(session)
    removal = {"action": "remove", "override_id": str(override.id)}
    refused = admin.post(f"{base}/overrides", data={**removal, "seen": seen_by_first})
    assert refused.status_code == 409 and STALE in text(refused)
    assert events(session) == before
    assert session.get_one(CalendarOverride, override.id).reason == "乙：更正后的原因"
    removed = admin.post(f"{base}/overrides", data={
        **removal, "seen": seen_after(text(admin.get(base)), remove),
    })  # fmt: skip
    assert removed.status_code == 303


def register_meeting(reviewer: FlaskClient, department_id: int) -> None:
    """The office registers a meeting record for a department (it may correct it later)."""
    made = reviewer.post("/review/routine", data={
        "department_id": str(department_id), "kind": "meeting", "period": "2018-09",
        "title": "九月推进会", "outcome": "missed",
    }, content_type="multipart/form-data")  # fmt: skip
    assert made.status_code == 303


def test_a_routine_correction_over_another_reviewers_is_refused(
    session: Session, world: World, login: Login
) -> None:
    reviewer = login("reviewer")
    register_meeting(reviewer, world.dep_a.id)
    record = session.scalars(select(RoutineRecord)).one()
    url = f"/review/routine/{record.id}/correct"
    page = save_over(
        reviewer, session, opened_twice(reviewer, "/review/routine"), url, url,
        {"period": "2018-09", "title": "九月推进会", "outcome": "done", "reason": "甲：误记为缺席"},
        {"period": "2018-09", "title": "九月推进会（更正）", "outcome": "missed",
         "reason": "乙：标题有误"},
    )  # fmt: skip
    again = session.get_one(RoutineRecord, record.id)
    assert (again.title, again.outcome) == ("九月推进会（更正）", "missed")
    assert 'value="甲：误记为缺席"' in page  # what was typed, beside the row as it is now


def test_a_scheme_edited_over_another_admins_edit_is_refused(
    session: Session, world: World, login: Login
) -> None:
    example = import_shipped(session)[1].record  # the 2019 示例: not used, edited in place
    session.commit()
    admin = login("admin")
    url = f"/admin/schemes/{example.id}/edit"
    pages = opened_twice(admin, url)
    first, second = fields(pages[0]), fields(pages[1])
    assert first["replaces"] == "1"
    first["document_no"] = "甲改的文号〔2019〕1号"
    second["issuer"] = "乙改的发文机关"
    page = save_over(admin, session, pages, 'name="replaces"', "/admin/schemes/form", first, second)
    stored = session.get_one(StoredScheme, example.id)
    assert (stored.version, stored.parsed["issuer"]) == (1, "乙改的发文机关")
    assert stored.parsed["document_no"] != "甲改的文号〔2019〕1号"
    assert f'href="/admin/schemes/{example.id}"' in page and "甲改的文号〔2019〕1号" in page
