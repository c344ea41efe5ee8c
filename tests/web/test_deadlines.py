"""Deadlines where people decide: portal, queues, matrix, 公示 banner, the admin's calendar page."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence
from tests.web.conftest import PASSWORD, text
from workflow import actions
from workflow.calendar import set_stage_deadline, stage_calendar
from workflow.models import AuditEvent, CalendarOverride, Item, StageDeadline

D = dt.date


def shanghai(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(dt.UTC)


def sign_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def _deadlines(session: Session, w: World, review_days: int = 3) -> None:
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=None, due_on=D(2018, 9, 28),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    set_stage_deadline(
        session, w.assessment, "review", starts_on=None, due_on=None, working_days=review_days,
        actor=w.admin,
    )  # fmt: skip
    session.commit()


def test_department_sees_working_days_left_then_overdue_in_red(
    make_app: Callable[..., Flask], session: Session, world: World
) -> None:
    _deadlines(session, world)
    before = make_app(CLOCK=lambda: shanghai(2018, 9, 26, 9, 0))  # Wednesday
    page = text(sign_in(before, "member_a").get("/portal/"))
    assert "剩余 3 个工作日（截止 2018-09-28）" in page  # 26, 27, 28 September
    after = make_app(CLOCK=lambda: shanghai(2018, 10, 8, 9, 0))
    page = text(sign_in(after, "member_a").get("/portal/"))
    # 29 and 30 September (调休) and 8 October: three working days late; 1–7 October not.
    assert '<span class="deadline overdue">已逾期 3 个工作日（2018-09-28）</span>' in page


def test_one_working_day_reads_in_the_singular_in_english(
    make_app: Callable[..., Flask], session: Session, world: World
) -> None:
    """It read "1 working days left", "Overdue by 1 working days" and "1 working days after
    the previous stage"; many stay plural."""
    _deadlines(session, world, review_days=1)

    def english(at: dt.datetime, username: str, path: str) -> str:
        client = sign_in(make_app(CLOCK=lambda: at), username)
        client.set_cookie("lang", "en")
        return text(client.get(path))

    friday = english(shanghai(2018, 9, 28, 9, 0), "member_a", "/portal/")
    assert "1 working day left" in friday and "working days left" not in friday
    # Saturday 29 September is a 调休 working day: one working day late.
    saturday = english(shanghai(2018, 9, 29, 9, 0), "member_a", "/portal/")
    assert "Overdue by 1 working day (2018-09-28)" in saturday
    assert "3 working days left" in english(shanghai(2018, 9, 26, 9, 0), "member_a", "/portal/")
    calendar = english(
        shanghai(2018, 9, 26, 9, 0), "admin", f"/admin/assessments/{world.assessment.id}/calendar"
    )
    assert "1 working day after the previous stage" in calendar
    assert "working days after the previous stage" not in calendar


def _submitted(session: Session, store: LocalStore, w: World, code: str) -> Item:
    """Department A's item `code`, submitted now with one file (committed)."""
    item = w.item(session, w.dep_a, code)
    add_evidence(session, store, item, w.member_a)
    actions.transition_item(
        session, item.id, w.member_a, actions.TransitionRequest("submit", item.version)
    )
    session.commit()
    return item


def test_the_item_page_says_the_submission_deadline_while_the_item_waits(
    make_app: Callable[..., Flask], session: Session, world: World, store: LocalStore
) -> None:
    """A department member opens an item from an inbox message (a return) and acts there: the
    deadline is on that page too, not only on the list of items."""
    w = world
    _deadlines(session, w)
    draft = w.item(session, w.dep_a, "1")
    sent = _submitted(session, store, w, "2")
    before = sign_in(make_app(CLOCK=lambda: shanghai(2018, 9, 26, 9, 0)), "member_a")
    page = text(before.get(f"/portal/items/{draft.id}"))
    assert "自评提交截止" in page and "剩余 3 个工作日（截止 2018-09-28）" in page
    # Submitted: nothing left to do before the deadline, so none is shown.
    assert "自评提交截止" not in text(before.get(f"/portal/items/{sent.id}"))
    after = sign_in(make_app(CLOCK=lambda: shanghai(2018, 10, 8, 9, 0)), "member_a")
    page = text(after.get(f"/portal/items/{draft.id}"))
    assert '<span class="deadline overdue">已逾期 3 个工作日（2018-09-28）</span>' in page


def test_the_office_item_page_says_the_deadline_of_the_stage_it_waits_for(
    make_app: Callable[..., Flask], session: Session, world: World, store: LocalStore
) -> None:
    """A reviewer opens an item from an inbox message, not from the queue: the 初审 deadline
    is on the item's page too."""
    w = world
    _deadlines(session, w)
    item = _submitted(session, store, w, "1")
    # 初审截止 is 8 October (3 working days after 28 September).
    early = sign_in(make_app(CLOCK=lambda: shanghai(2018, 10, 8, 9, 0)), "reviewer")
    page = text(early.get(f"/review/items/{item.id}"))
    assert "<strong>初审截止</strong>：" in page and "剩余 1 个工作日（截止 2018-10-08）" in page
    late = sign_in(make_app(CLOCK=lambda: shanghai(2018, 10, 10, 9, 0)), "reviewer")
    page = text(late.get(f"/review/items/{item.id}"))
    assert '<span class="deadline overdue">已逾期 2 个工作日（2018-10-08）</span>' in page
    # A draft waits for its department's submission, not for 初审.
    draft = text(late.get(f"/review/items/{w.item(session, w.dep_b, '1').id}"))
    assert "初审截止" not in draft and "<strong>自评提交截止</strong>：" in draft


def test_queue_overdue_filter_counts_and_late_marks(
    make_app: Callable[..., Flask], session: Session, world: World, store: LocalStore
) -> None:
    w = world
    _deadlines(session, w)
    late = w.item(session, w.dep_a, "1")
    add_evidence(session, store, late, w.member_a)
    actions.transition_item(
        session, late.id, w.member_a, actions.TransitionRequest("submit", late.version),
        now=shanghai(2018, 10, 9, 9, 0),
    )  # fmt: skip
    session.commit()
    # 初审截止 is 8 October (3 working days after 28 September): on the 10th it has passed.
    app = make_app(CLOCK=lambda: shanghai(2018, 10, 10, 9, 0))
    reviewer = sign_in(app, "reviewer")
    page = text(reviewer.get("/review/?state=submitted"))
    assert "逾期 1" in page and "逾期提交" in page
    assert "已逾期 2 个工作日（2018-10-08）" in page  # 9 and 10 October
    only = text(reviewer.get("/review/?state=submitted&overdue=1"))
    assert f'href="/review/items/{late.id}"' in only
    drafts = text(reviewer.get("/review/?state=reviewed&overdue=1"))
    assert "队列为空" in drafts
    # Before the review deadline nothing in the queue is overdue.
    early = make_app(CLOCK=lambda: shanghai(2018, 10, 8, 9, 0))
    page = text(sign_in(early, "reviewer").get("/review/?state=submitted&overdue=1"))
    assert "队列为空" in page and "剩余 1 个工作日" in page
    # The tabs count what the filter lists: none overdue yet, so 0 (it said 1 beside 队列为空).
    assert re.search(r'待初审 <span class="count">0</span>', page), page
    # The scorer's item page says the submission was late.
    item_page = text(reviewer.get(f"/review/items/{late.id}"))
    assert "逾期提交" in item_page and "截止 2018-09-28" in item_page
    # The matrix marks the late item and the overdue drafts.
    matrix = text(reviewer.get("/progress/"))
    assert f'class="cell state-submitted late"><a href="/review/items/{late.id}"' in matrix
    other = w.item(session, w.dep_b, "1")
    assert f'class="cell state-draft late"><a href="/review/items/{other.id}"' in matrix


def test_publication_banner_only_while_publication_runs(
    make_app: Callable[..., Flask], session: Session, world: World
) -> None:
    a = world.assessment
    a.published_at = shanghai(2018, 12, 20, 10, 0)
    a.appeal_opens_at = a.published_at
    a.appeal_closes_at = shanghai(2018, 12, 27, 10, 0)
    session.commit()
    banner = "考核结果公示中：2018-12-20 至 2018-12-27"
    during = make_app(CLOCK=lambda: shanghai(2018, 12, 22, 9, 0))
    assert banner in text(sign_in(during, "member_b").get("/portal/"))
    assert banner in text(during.test_client().get("/login"))
    after = make_app(CLOCK=lambda: shanghai(2018, 12, 27, 10, 1))
    assert "考核结果公示中" not in text(sign_in(after, "member_b").get("/portal/"))
    before = make_app(CLOCK=lambda: shanghai(2018, 12, 1, 9, 0))
    assert "考核结果公示中" not in text(sign_in(before, "member_b").get("/portal/"))


def test_admin_edits_the_calendar_audited(
    make_app: Callable[..., Flask], session: Session, world: World
) -> None:
    app = make_app(CLOCK=lambda: shanghai(2018, 9, 20, 9, 0))
    admin = sign_in(app, "admin")
    aid = world.assessment.id
    assert admin.get("/admin/calendar").location.endswith(f"/admin/assessments/{aid}/calendar")
    page = text(admin.get(f"/admin/assessments/{aid}/calendar"))
    assert "自评提交截止" in page and "由发布考核结果确定" in page
    base = f"/admin/assessments/{aid}/calendar"
    r = admin.post(f"{base}/stages/submit", data={"due_on": "2018-09-28"})
    assert r.status_code == 303
    r = admin.post(f"{base}/stages/review", data={"working_days": "3"})
    assert r.status_code == 303
    page = text(admin.get(base))
    assert "2018-10-08" in page and "上一阶段后 3 个工作日" in page
    # Bad input: a Chinese message and a 4xx, nothing saved.
    r = admin.post(f"{base}/stages/verify", data={"due_on": "2018-10-30", "working_days": "2"})
    assert r.status_code == 422 and "只能填写一项" in text(r)
    r = admin.post(f"{base}/stages/verify", data={"due_on": "2018-13-01"})
    assert r.status_code == 422 and "不是有效日期" in text(r)
    for count in ("-1", "0", "1001", "100000"):  # out of range, in the form's own words
        r = admin.post(f"{base}/stages/score", data={"working_days": count})
        assert r.status_code == 422 and "工作日数须在 1 到 250 之间" in text(r)
    r = admin.post(f"{base}/stages/score", data={"working_days": "三"})
    assert r.status_code == 400 and "工作日数须为整数" in text(r)
    r = admin.post(f"{base}/stages/score", data={"due_on": "9999-12-31"})
    assert r.status_code == 422 and "2000 到 2100" in text(r)
    assert admin.post(f"{base}/stages/appeal", data={"due_on": "2018-10-30"}).status_code == 404
    stages = session.execute(select(StageDeadline.stage)).scalars().all()
    assert sorted(stages) == ["review", "submit"]
    # An override moves the working-day deadline; removing it moves it back.
    r = admin.post(
        f"{base}/overrides", data={"day": "2018-10-08", "kind": "holiday", "reason": "本地放假"}
    )
    assert r.status_code == 303
    assert "2018-10-09" in text(admin.get(base))
    r = admin.post(f"{base}/overrides", data={"day": "2018-10-08", "kind": "holiday"})
    assert r.status_code == 422 and "请填写调整原因" in text(r)
    override = session.execute(select(CalendarOverride)).scalar_one()
    r = admin.post(f"{base}/overrides", data={"action": "remove", "override_id": str(override.id)})
    assert r.status_code == 303
    assert session.execute(select(CalendarOverride)).first() is None
    audited = session.execute(
        select(AuditEvent.action).where(
            AuditEvent.action.in_(
                ["stage_deadline_set", "calendar_override_set", "calendar_override_removed"]
            )
        ).order_by(AuditEvent.seq)
    ).scalars().all()  # fmt: skip
    assert audited == [
        "stage_deadline_set", "stage_deadline_set", "calendar_override_set",
        "calendar_override_removed",
    ]  # fmt: skip
    # Only admins.
    reviewer = sign_in(app, "reviewer")
    assert reviewer.get(base).status_code == 403
    assert reviewer.post(f"{base}/stages/submit", data={"due_on": "2018-09-01"}).status_code == 403


def test_a_window_that_does_not_run_yet_shows_its_date_without_a_count(
    app: Flask, session: Session, world: World
) -> None:
    """The 申诉期 set ahead of publication: its date, not "工作日无法计算" (nothing is
    wrong with the working days; the window is not running)."""
    import re

    from workflow.assessments import set_appeal_window

    opens = dt.datetime(2030, 3, 1, tzinfo=dt.UTC)
    set_appeal_window(
        session, world.assessment, opens, opens + dt.timedelta(days=7), actor=world.admin
    )
    session.commit()
    admin = sign_in(app, "admin")
    page = text(admin.get(f"/admin/assessments/{world.assessment.id}/calendar"))
    row = re.search(r'<tr id="stage-appeal".*?</tr>', page, re.S)
    assert row is not None
    assert "截止 2030-03-08" in row.group(0) and "工作日无法计算" not in row.group(0)


def test_a_year_counted_on_the_offices_own_entries_is_marked(
    make_app: Callable[..., Flask], session: Session, world: World
) -> None:
    # The holiday package ends with 2026: a 2027 deadline cannot be counted until the office
    # enters 2027's arrangement. One entered day makes the year countable (weekends plus the
    # entries), so every statutory holiday not entered would count as a working day: the page
    # and the API say which stages rely on such a year, and what has been entered for it.
    set_stage_deadline(
        session, world.assessment, "submit", starts_on=None, due_on=D(2027, 1, 15),
        working_days=None, actor=world.admin,
    )  # fmt: skip
    session.commit()
    app = make_app(CLOCK=lambda: shanghai(2026, 12, 20, 9, 0))
    admin = sign_in(app, "admin")
    base = f"/admin/assessments/{world.assessment.id}/calendar"
    before = text(admin.get(base))
    assert "系统尚未收录 2027 年的法定节假日" in before and "entered-year" not in before
    # Where to enter it: the pasted notice, the whole year at once (it said 在“工作日调整”中
    # 录入, one day at a time).
    assert (
        "请管理员在“考核日程”页的“按国务院通知录入全年安排”中粘贴国务院办公厅的通知全文" in before
    )
    assert "在“工作日调整”中录入" not in before
    # In English, the problem too (it was the Chinese text, in the row and its tooltip).
    admin.set_cookie("lang", "en")
    english = admin.get(base).get_data(as_text=True)
    assert "The public holidays and swapped working days of 2027 are not known yet" in english
    assert "holiday notice for 2027 in full under" in english
    assert "系统尚未收录" not in english and "Working-day overrides” first" not in english
    admin.set_cookie("lang", "zh")
    saved = admin.post(
        f"{base}/overrides", data={"day": "2027-01-01", "kind": "holiday", "reason": "元旦"},
        follow_redirects=True,
    )  # fmt: skip
    page = text(saved)
    assert "只认您录入的日期" in page  # the warning when the day is saved
    assert "并以下方录入的 1 个放假日、0 个调休上班日计算" in page
    assert "按录入的 2027 年安排计算" in page
    session.expire_all()
    views = stage_calendar(session, world.assessment, shanghai(2026, 12, 20, 9, 0))
    stages = {v.name: v.as_json() for v in views}  # as the API answers it
    assert stages["submit"]["entered_year"] == 2027
    assert stages["submit"]["working_days_left"] is not None
    assert stages["review"]["entered_year"] is None  # no deadline: nothing counted
    # A day of a year the package knows is no such warning.
    known = admin.post(
        f"{base}/overrides", data={"day": "2026-12-24", "kind": "holiday", "reason": "本地放假"},
        follow_redirects=True,
    )  # fmt: skip
    assert "只认您录入的日期" not in text(known)


def test_the_calendar_page_says_what_a_count_runs_from_and_warns_of_days_off(
    make_app: Callable[..., Flask], session: Session, world: World
) -> None:
    app = make_app(CLOCK=lambda: shanghai(2020, 9, 1, 9, 0))
    admin = sign_in(app, "admin")
    base = f"/admin/assessments/{world.assessment.id}/calendar"
    r = admin.post(f"{base}/stages/submit", data={"starts_on": "2020-09-01", "working_days": "20"})
    assert r.status_code == 303
    page = text(admin.get(base))
    # The first stage counts from its start: there is no stage before it.
    assert "开始后 20 个工作日" in page and "上一阶段后" not in page
    # A deadline on National Day is kept, and the admin told so, with the next working day.
    review = {"due_on": "2020-10-01"}
    saved = text(admin.post(f"{base}/stages/review", data=review, follow_redirects=True))
    note = "初审截止 2020-10-01 不是工作日（节假日或周末），下一个工作日是 2020-10-09"
    assert "已保存初审截止" in saved
    assert f'<div class="flash flash-warning" role="status">{note}</div>' in saved
    assert note in text(admin.get(base))  # and it stays on the page
    r = admin.post(f"{base}/stages/verify", data={"working_days": "3"})
    assert r.status_code == 303 and "上一阶段后 3 个工作日" in text(admin.get(base))
    english = sign_in(app, "admin")
    english.post("/language", data={"lang": "en", "next": base})
    page = text(english.get(base))
    assert "20 working days after the start" in page and "is not a working day" in page
    # Holidays that would put 自评提交截止 after 初审截止 are refused, naming year and stages.
    for day in ("2020-09-02", "2020-09-03", "2020-09-04"):
        holiday = {"day": day, "kind": "holiday", "reason": "本地放假"}
        r = admin.post(f"{base}/overrides", data=holiday)
        if day != "2020-09-04":
            assert r.status_code == 303
    assert r.status_code == 422
    assert "2018 年度考核的自评提交截止变为 2020-10-09，初审截止不能早于自评提交截止" in text(r)
    days = session.execute(select(CalendarOverride.day)).scalars().all()
    assert sorted(days) == [D(2020, 9, 2), D(2020, 9, 3)]
    # Saving a stage unchanged still works: the calendar stayed in order.
    r = admin.post(f"{base}/stages/review", data={"due_on": "2020-10-01"})
    assert r.status_code == 303


#: The fingerprint of the previewed arrangement, in its confirmation form.
ENTER_SEEN = r'value="enter">\s*<input type="hidden" name="seen" value="([0-9a-f]+)"'


def test_a_years_holidays_are_entered_from_the_pasted_notice(
    make_app: Callable[..., Flask], session: Session, world: World
) -> None:
    """Preview, then confirm: the table shows each day; a notice that does not hold is a 422
    in Chinese naming the date; a preview made stale by another entry is a 409."""
    from tests.integration.test_holiday_arrangement import notice_for
    from workflow.workdays import package_years

    app = make_app(CLOCK=lambda: shanghai(2018, 9, 20, 9, 0))
    admin = sign_in(app, "admin")
    base = f"/admin/assessments/{world.assessment.id}/calendar/arrangement"
    year = package_years()[1] + 1
    notice, off, on = notice_for(year)
    adds = len({d for d in off if d.weekday() < 5} | on)
    preview = admin.post(base, data={"text": notice})
    page = text(preview)
    assert (
        preview.status_code == 200 and f"{year} 年：国务院办公厅关于{year}年部分节假日安排" in page
    )
    assert f"将录入 {adds} 天" in page and f"无需录入 {len(off) + len(on) - adds} 天" in page
    assert f"{year}-10-01" in page and "确认录入" in page
    assert session.execute(select(CalendarOverride)).first() is None  # a preview writes nothing
    seen = re.search(ENTER_SEEN, page)
    assert seen is not None
    # Wrong: last year's weekdays under this year's number.
    wrong = admin.post(base, data={"text": notice.replace(f"{year}年", f"{year + 1}年")})
    assert wrong.status_code == 422 and "请核对通知的年份和日期" in text(wrong)
    assert notice.split("\n")[2][:6] in text(wrong)  # what was pasted stays in the box
    entered = admin.post(base, data={"text": notice, "action": "enter", "seen": seen.group(1)})
    assert entered.status_code == 303 and entered.location.endswith("#overrides")
    assert session.scalar(select(func.count()).select_from(CalendarOverride)) == adds
    page = text(admin.get(f"/admin/assessments/{world.assessment.id}/calendar"))
    assert f"已按通知录入 {year} 年节假日安排：{adds} 天" in page
    # The same confirmation again (a second click): entered already, nothing written.
    again = admin.post(base, data={"text": notice, "action": "enter", "seen": seen.group(1)})
    assert again.status_code == 303
    assert f"{year} 年的安排日历中已有，无需录入" in text(admin.get(again.location))
    # A preview made stale by another admin's entry of one of its days: 409, nothing written.
    other, *_ = notice_for(year + 1)
    admin.post(
        f"/admin/assessments/{world.assessment.id}/calendar/overrides",
        data={"day": f"{year + 1}-03-01", "kind": "holiday", "reason": "本地放假"},
    )
    previewed = text(admin.post(base, data={"text": other}))
    assert "该年另有 1 条工作日调整不在通知中" in previewed and f"{year + 1}-03-01" in previewed
    stale_seen = re.search(ENTER_SEEN, previewed)
    assert stale_seen is not None
    admin.post(
        f"/admin/assessments/{world.assessment.id}/calendar/overrides",
        data={"day": f"{year + 1}-05-01", "kind": "workday", "reason": "本地安排"},
    )
    stale = admin.post(base, data={"text": other, "action": "enter", "seen": stale_seen.group(1)})
    assert stale.status_code == 409 and "请重新预览" in text(stale)
    assert session.scalar(select(func.count()).select_from(CalendarOverride)) == adds + 2
    assert sign_in(app, "reviewer").post(base, data={"text": notice}).status_code == 403


def test_full_width_dates_and_counts_typed_with_a_chinese_input_method_are_read(
    app: Flask, session: Session, world: World
) -> None:
    """２０１８－０９－２８ and １０ (a Chinese input method's full-width digits) were refused as
    不是有效日期 / 须为整数; they are the same date and count as their ASCII forms."""
    admin = sign_in(app, "admin")
    base = f"/admin/assessments/{world.assessment.id}/calendar"
    r = admin.post(f"{base}/stages/submit", data={"due_on": "２０１８－０９－２８"})
    assert r.status_code == 303, text(r)
    r = admin.post(f"{base}/stages/review", data={"working_days": "１０"})
    assert r.status_code == 303, text(r)
    r = admin.post(
        f"{base}/overrides",
        data={"day": "２０１８－１０－０８", "kind": "holiday", "reason": "本地放假"},
    )
    assert r.status_code == 303, text(r)
    session.expire_all()
    rows = dict(session.execute(select(StageDeadline.stage, StageDeadline.due_on)).all())
    assert rows["submit"] == dt.date(2018, 9, 28)
    review = session.scalars(select(StageDeadline).where(StageDeadline.stage == "review")).one()
    assert review.working_days == 10
    assert session.scalars(select(CalendarOverride.day)).all() == [dt.date(2018, 10, 8)]
