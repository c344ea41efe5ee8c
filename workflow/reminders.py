"""The daily reminders (09:00 Asia/Shanghai, the worker's schedule) and the daily digest.

For every assessment still running:

- each department with items still to submit (草稿, 已退回) hears 截止提醒 when 自评提交截止 is
  at most the person's `remind_days` working days away, and 逾期提醒 once it has passed;
- each reviewer, verifier and scorer hears how many items wait in their queue (待初审, 待核实,
  待评分, 申诉), their own department's items left out (they may not act on them), with the
  stage's deadline in working days (申诉: when the appeal window closes).

Every day (a holiday too: it is no deadline reminder), each scored or appealed item whose
routine-based suggestion moved since its latest score, with no record changed (a counting
period running at scoring has ended), is told to its scorers and the admins once per distinct
drift (`drift_notices`).

Two years may run at once (last year's scoring while this year's items are submitted): each
reminder names its year in the title and opens that year's page, not the default year's.

Working days come from the stage calendar (workflow/calendar.py; Chinese holidays and 调休).
Reminders go out on working days only (a 调休 Saturday is one; the National Day week is not).
A year the calendar does not know is never guessed: the assessment's reminders are skipped and
the admins are told. Every reminder carries a per-day key, so a second run on the same day
writes nothing: the job may run again after a crash.

Two runs at once (two worker processes at 09:00, or the worker and `flask notify remind`)
queue behind one lock (`RUN_LOCK`), taken before anything is read: a run is a check (which
keys exist, which messages wait for a digest) followed by writes, and the second run's check
must see what the first committed. The unique `dedup_key` alone would not do: the second run's
insert of the first one's key fails and takes the whole run down with it (its own day's
reminders too, when it runs another day), and the digests carry no key at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from workflow import notify
from workflow.assessments import assessment_status, local_minute
from workflow.calendar import StageView, next_year_needed, stage_calendar, work_calendar
from workflow.db import lock_key, serialise, unit_of_work
from workflow.delivery import digest_entry
from workflow.messages import N_, Lines, Np_, Phrase, Term
from workflow.models import Assessment, Department, Item, Notification, utcnow
from workflow.notify import Message, Recipient
from workflow.permissions import member_units
from workflow.routine import drift_remedy, item_drifts
from workflow.states import Role, State
from workflow.workdays import UNKNOWN_YEAR, UnknownYear, local_date

SHANGHAI = ZoneInfo("Asia/Shanghai")
# The queues staff are reminded of: the state waiting, its stage, the role acting on it.
QUEUES: tuple[tuple[State, str | None, Role, str], ...] = (
    (State.SUBMITTED, "review", Role.REVIEWER, N_("待初审")),
    (State.REVIEWED, "verify", Role.VERIFIER, N_("待核实")),
    (State.VERIFIED, "score", Role.SCORER, N_("待评分")),
    (State.APPEALED, None, Role.SCORER, N_("申诉待处理")),
)
TO_SUBMIT = (State.DRAFT.value, State.RETURNED.value)
#: The lock two runs of the reminders at once queue behind (PostgreSQL; SQLite's write lock).
RUN_LOCK = lock_key("reminders")


@dataclass
class Report:
    """What one run wrote."""

    notifications: int = 0
    skipped_assessments: list[str] = field(default_factory=list)
    digests: int = 0


def _of_year(assessment: Assessment, title: str) -> str:
    """A reminder's title with its year: two years may run at once (last year's scoring while
    this year's items are submitted), and the same words of each would read as one."""
    return Phrase(N_("%(year)s年度%(title)s"), {"year": assessment.year, "title": title})


@dataclass(frozen=True)
class Skipped:
    """An assessment whose reminders (all, or those of a stage) were skipped today: the
    calendar does not know `year`'s holidays."""

    assessment: Assessment
    year: int

    def __str__(self) -> str:
        return UNKNOWN_YEAR % {"year": self.year} + f"（{self.assessment.title}）"


def _left_words(left: int | None, due: dt.date | None, today: dt.date) -> str:
    """How the deadline stands, in brackets after a count: overdue by N working days, due
    today, or N working days left counting today (a reminder goes out on working days only,
    so the deadline's own day would read 「剩余 1 个工作日」 without saying it is today)."""
    if due is None or left is None:
        return ""
    if left < 0:
        return Phrase(
            Np_("（%(due)s 截止，已逾期 %(n)s 个工作日）"), {"due": due.isoformat(), "n": -left}
        )
    if left == 0 or due == today:
        return Phrase(N_("（今天 %(due)s 截止）"), {"due": due.isoformat()})
    return Phrase(
        Np_("（%(due)s 截止，含今天剩余 %(n)s 个工作日）"), {"due": due.isoformat(), "n": left}
    )


def _appeal_words(assessment: Assessment, stage: StageView | None, today: dt.date) -> str:
    """When the appeal window closes, in brackets after the count of appeals to decide: with
    the working days left while it runs, today, or that it has closed (the results are final
    only once every appeal is decided); nothing without a window."""
    closes_at = assessment.appeal_closes_at
    if stage is None or stage.due_on is None or closes_at is None:
        return ""
    words: dict[str, object] = {"closes": local_minute(closes_at, assessment.timezone)}
    if stage.due_on < today:
        return Phrase(N_("（申诉期已于 %(closes)s 结束，待这些申诉决定后结果才最终确定）"), words)
    if stage.due_on == today:
        return Phrase(N_("（申诉期今天 %(closes)s 结束）"), words)
    if stage.working_days_left is None:  # a window not running (set ahead, or after a reopen)
        return Phrase(N_("（申诉期 %(closes)s 结束）"), words)
    return Phrase(
        Np_("（申诉期 %(closes)s 结束，含今天剩余 %(n)s 个工作日）"),
        {**words, "n": stage.working_days_left},
    )


def plan(
    session: Session, now: dt.datetime
) -> tuple[list[tuple[Recipient, Message]], list[Skipped]]:
    """Every reminder due at `now`, without writing: (person, message) pairs, and what was
    skipped for a year the calendar does not know."""
    pairs: list[tuple[Recipient, Message]] = []
    problems: list[Skipped] = []
    assessments = session.scalars(select(Assessment).order_by(Assessment.id)).all()
    running = [a for a in assessments if assessment_status(a, now) not in ("final",)]
    if not running:
        return pairs, problems
    people = notify.recipients(session)
    calendar = work_calendar(session)
    for assessment in running:
        today = local_date(now, ZoneInfo(assessment.timezone))
        try:
            if not calendar.is_workday(today):
                continue  # no reminders on a holiday or a weekend (调休 Saturdays do work)
        except UnknownYear as exc:
            problems.append(Skipped(assessment, exc.year))
            continue
        stages = {s.name: s for s in stage_calendar(session, assessment, now)}
        unknown = [s.unknown_year for s in stages.values() if s.unknown_year is not None]
        if unknown:
            problems.append(Skipped(assessment, unknown[0]))
        counts: dict[tuple[str, int], int] = {
            (state, dep): n
            for state, dep, n in session.execute(
                select(Item.state, Item.department_id, func.count())
                .where(Item.assessment_id == assessment.id)
                .group_by(Item.state, Item.department_id)
            )
        }
        # Each person's department in this assessment: their unit's appearance (or the
        # appearance of the unit theirs was merged into).
        by_unit = member_units(
            session,
            session.scalars(select(Department.id).where(Department.assessment_id == assessment.id)),
        )
        own = [replace(p, department_id=by_unit.get(p.unit_id or 0)) for p in people]
        # A first submission is what a scheme without late submissions refuses.
        never_submitted: dict[int, int] = {}
        if assessment.blocks_late_submissions:
            never_submitted = {
                dep: n
                for dep, n in session.execute(
                    select(Item.department_id, func.count())
                    .where(
                        Item.assessment_id == assessment.id,
                        Item.state == State.DRAFT.value,
                        Item.round == 0,
                    )
                    .group_by(Item.department_id)
                )
            }
        pairs.extend(
            _department_reminders(
                assessment, stages.get("submit"), counts, never_submitted, own, today
            )
        )
        pairs.extend(_queue_reminders(assessment, stages, counts, own, today))
    return pairs, problems


def _department_reminders(
    assessment: Assessment,
    stage: StageView | None,
    counts: dict[tuple[str, int], int],
    never_submitted: dict[int, int],
    people: list[Recipient],
    today: dt.date,
) -> list[tuple[Recipient, Message]]:
    due = stage.due_on if stage else None
    left = stage.working_days_left if stage else None
    if due is None or left is None:
        return []
    to_submit: dict[int, int] = defaultdict(int)
    for (state, dep), n in counts.items():
        if state in TO_SUBMIT:
            to_submit[dep] += n
    out = []
    for person in people:
        if Role.DEPARTMENT.value not in person.roles or person.department_id is None:
            continue
        n = to_submit.get(person.department_id, 0)
        if not n:
            continue
        if left < 0:
            kind = "overdue"
            title = _of_year(assessment, Phrase(Np_("逾期：%(n)s 项考核事项未提交"), {"n": n}))
            # The deadline once: the brackets say only by how much it has passed.
            late = Phrase(Np_("（已逾期 %(n)s 个工作日）"), {"n": -left})
            body: str = Phrase(
                Np_("自评提交截止日期 %(due)s 已过，尚有 %(n)s 项考核事项未提交%(late)s。"),
                {"n": n, "due": due.isoformat(), "late": late},
            )
            if assessment.blocks_late_submissions:
                refused = never_submitted.get(person.department_id, 0)
                body = Lines([body, *_way_forward(refused, n - refused)])
        elif left <= person.remind_days:
            kind = "deadline_near"
            title = _of_year(assessment, Phrase(Np_("截止提醒：%(n)s 项考核事项待提交"), {"n": n}))
            body = Phrase(
                Np_("尚有 %(n)s 项考核事项未提交%(left)s，请按时提交。"),
                {"n": n, "left": _left_words(left, due, today)},
            )
        else:
            continue
        out.append(
            (
                person,
                Message(
                    kind,
                    title,
                    body,
                    # That year's page: the default one may be another year's (its 公示).
                    f"/portal/?year={assessment.year}",
                    assessment.id,
                    dedup=f"{kind}:a{assessment.id}:{today.isoformat()}",
                ),
            )
        )
    return out


def _way_forward(refused: int, others: int) -> list[str]:
    """What a department can still do once the deadline has passed under a scheme that takes
    no late submissions (`blocks_late_submissions`, `calendar.ensure_submission_allowed`): an
    item never submitted is refused, so it must ask the office to move the deadline; a
    returned or withdrawn item (submitted before) may still be submitted again."""
    lines: list[str] = []
    if refused:
        lines.append(
            Phrase(
                Np_(
                    "本年度考核方案不接受逾期提交，从未提交过的 %(n)s 项事项已不能提交；"
                    "如确需补交，请联系市职转办，请其延后自评提交截止日期后再提交。"
                ),
                {"n": refused},
            )
        )
    if others:
        lines.append(
            Phrase(
                Np_("其余 %(n)s 项（被退回或撤回的事项）不受此限，修改后仍可提交。"),
                {"n": others},
            )
        )
    return lines


def _queue_reminders(
    assessment: Assessment,
    stages: dict[str, StageView],
    counts: dict[tuple[str, int], int],
    people: list[Recipient],
    today: dt.date,
) -> list[tuple[Recipient, Message]]:
    per_state: dict[str, dict[int, int]] = defaultdict(dict)
    for (state, dep), n in counts.items():
        per_state[state][dep] = n
    out = []
    for person in people:
        lines = []
        total = 0
        late = False
        for state, stage_name, role, label in QUEUES:
            if role.value not in person.roles:
                continue
            waiting = per_state.get(state.value, {})
            n = sum(v for dep, v in waiting.items() if dep != person.department_id)
            if not n:
                continue
            if state == State.APPEALED:
                # No stage deadline: the appeal window's close, when the results would be final.
                when = _appeal_words(assessment, stages.get("appeal"), today)
            else:
                stage = stages.get(stage_name) if stage_name else None
                left = stage.working_days_left if stage else None
                due = stage.due_on if stage else None
                late = late or (left is not None and left < 0)
                when = _left_words(left, due, today)
            lines.append(
                Phrase(
                    Np_("%(queue)s %(n)s 项%(left)s"), {"queue": Term(label), "n": n, "left": when}
                )
            )
            total += n
        if not total:
            continue
        title = _of_year(assessment, Phrase(Np_("待办：%(n)s 项考核事项等待处理"), {"n": total}))
        body = Lines([Term(N_("您的待办队列：")), *lines])
        kind = "overdue" if late else "queue_waiting"
        out.append(
            (
                person,
                Message(
                    kind,
                    title,
                    body,
                    f"/review/?year={assessment.year}",
                    assessment.id,
                    dedup=f"queue:a{assessment.id}:{today.isoformat()}",
                ),
            )
        )
    return out


def drift_notices(session: Session, now: dt.datetime) -> list[tuple[Recipient, Message]]:
    """The scored (or appealed) items whose routine suggestion differs from the one their
    latest score was given with, and that nobody was told of yet: (person, message) pairs
    for their scorers and the admins, not yet written.

    Time alone moves a suggestion: a counting period still running at scoring is not held
    against the department; once it has ended, it is. A drift is told once: not when the
    item's latest `routine_basis_changed` message already told these figures (a record's
    change tells them at once, see workflow/routine.py), nor when this drift's key (the
    score event and the figures) was written already. Two runs at once take turns
    (`send_reminders`), so the second one sees the first one's key and skips it.
    """
    pairs: list[tuple[Recipient, Message]] = []
    assessments = session.scalars(select(Assessment).order_by(Assessment.id)).all()
    for assessment in assessments:
        if assessment_status(assessment, now) == "final":
            continue
        drifts = item_drifts(session, assessment, now)
        if not drifts:
            continue
        told: dict[int, frozenset[tuple[str, str, str]]] = {}
        for item_id, body in session.execute(
            select(Notification.item_id, Notification.body_i18n)
            .where(
                Notification.kind == "routine_basis_changed",
                Notification.item_id.in_(list(drifts)),
            )
            .order_by(Notification.id)
        ):
            told[item_id] = notify.told_figures(body)  # the latest one stays
        for item_id, drift in sorted(drifts.items()):
            if told.get(item_id) == notify.drift_figures(drift.points):
                continue
            key = hashlib.sha256(drift.signature.encode()).hexdigest()[:16]
            dedup = f"routine_drift:i{item_id}:{key}"
            if session.scalar(
                select(Notification.id).where(
                    Notification.dedup_key.startswith(f"{dedup}:u", autoescape=True)
                )
            ):
                continue
            item = session.get_one(Item, item_id)
            pairs.extend(
                notify.period_drift_notices(
                    session, item, drift.points, drift_remedy(item, now), dedup
                )
            )
    return pairs


def calendar_notices(session: Session, now: dt.datetime) -> list[tuple[Recipient, Message]]:
    """From 1 November, while next year's holidays are not known, the admins hear it once a
    week (the first reminders run of each ISO week): the State Council's notice is out about
    then, and next year's deadlines are being set. The status page says it too
    (workflow/health.py); this is for admins who do not look there."""
    today = local_date(now, SHANGHAI)
    year = next_year_needed(work_calendar(session), today)
    if year is None:
        return []
    iso_year, week, _ = today.isocalendar()
    message = Message(
        "calendar_needed",
        Phrase(N_("请录入 %(year)s 年的节假日安排"), {"year": year}),
        Phrase(
            N_(
                "系统尚未收录 %(year)s 年的法定节假日和调休安排，跨年的期限无法按工作日计算。"
                "国务院办公厅的节假日安排通知发布后，请在“考核日程”页的“按国务院通知录入全年安排”"
                "中粘贴通知全文，核对预览后确认录入。"
            ),
            {"year": year},
        ),
        "/admin/calendar#arrangement",
        dedup=f"calendar_needed:{year}:{iso_year}-W{week:02d}",
    )
    return [(person, message) for person in notify.recipients(session, roles=[Role.ADMIN.value])]


#: What the alert of an unknown year said before (the page is 考核日程; it was an audit alert,
#: linked to the audit verification, and said two different things to do): rows are stored
#: with their msgids and read in the reader's language, so the old ones stay in the catalog.
EARLIER_ALERTS = (
    N_("%(problem)s。请在“考核日历”中补充该年度的节假日安排。"),
    N_("无法计算工作日，已跳过相关提醒"),
    N_(
        "%(problem)s。请在“考核日程”页粘贴国务院办公厅的节假日安排通知录入该年度的安排"
        "（按国务院通知录入全年安排）。"
    ),
    N_("%(assessment)s：%(problem)s"),
)
#: What the reminders said before they counted 「N 项」 throughout (the title said 个考核事项,
#: the queue 项), said the deadline once when overdue, and named the deadline's own day.
EARLIER_REMINDERS = (
    Np_("逾期：%(n)s 个考核事项未提交"),
    Np_("自评提交截止日期 %(due)s 已过，尚有 %(n)s 个考核事项未提交%(left)s。"),
    Np_("截止提醒：%(n)s 个考核事项待提交"),
    Np_("尚有 %(n)s 个考核事项未提交%(left)s，请按时提交。"),
    Np_("待办：%(n)s 个考核事项等待处理"),
    N_("（%(due)s 截止，已逾期 %(days)s 个工作日）"),
    N_("（%(due)s 截止，剩余 %(days)s 个工作日）"),
)


def skipped_notices(
    session: Session, skipped: list[Skipped], now: dt.datetime
) -> list[tuple[Recipient, Message]]:
    """The admins hear, once a day per assessment and year, that reminders were skipped for a
    year the calendar does not know, and how to enter it: a `calendar_needed` message linked
    to the calendar page's 按国务院通知录入全年安排 (it was an 审计核验告警 to the auditors too,
    linked to the audit verification, saying first 在“工作日调整”中录入 and then 粘贴通知)."""
    if not skipped:
        return []
    admins = notify.recipients(session, roles=[Role.ADMIN.value])
    day = local_date(now, SHANGHAI).isoformat()
    pairs: list[tuple[Recipient, Message]] = []
    for problem in skipped:
        words = {"year": problem.assessment.year, "missing": problem.year}
        message = Message(
            "calendar_needed",
            Phrase(N_("%(year)s年度的提醒已跳过：请录入 %(missing)s 年的节假日安排"), words),
            Phrase(
                N_(
                    "系统尚未收录 %(missing)s 年的法定节假日和调休安排，%(year)s年度考核中"
                    "要按工作日计算的截止和待办提醒今天已跳过。请在“考核日程”页的"
                    "“按国务院通知录入全年安排”中粘贴国务院办公厅的通知全文，核对预览后确认录入；"
                    "录入后的下一次提醒即恢复。"
                ),
                words,
            ),
            "/admin/calendar#arrangement",
            problem.assessment.id,
            dedup=f"calendar_unknown:{day}:a{problem.assessment.id}:{problem.year}",
        )
        pairs.extend((person, message) for person in admins)
    return pairs


def write_reminders(session: Session, now: dt.datetime) -> Report:
    """Write today's reminders (those not written yet today) and tell admins what was
    skipped."""
    report = Report()
    pairs, skipped = plan(session, now)
    pairs.extend(drift_notices(session, now))
    pairs.extend(calendar_notices(session, now))
    pairs.extend(skipped_notices(session, skipped, now))
    # Those written today already (an earlier run) are left out by their keys.
    report.notifications = len(notify.send_many(session, pairs, now=now))
    report.skipped_assessments = [str(problem) for problem in skipped]
    return report


def write_digests(session: Session, now: dt.datetime) -> int:
    """One e-mail/webhook message per person who takes a digest, gathering what waits."""
    waiting = session.execute(
        select(Notification)
        .where(Notification.digest_pending.is_(True))
        .order_by(Notification.user_id, Notification.id)
    ).scalars()
    by_user: dict[int, list[Notification]] = defaultdict(list)
    for note in waiting:
        by_user[note.user_id].append(note)
    if not by_user:
        return 0
    people = {p.user_id: p for p in notify.recipients(session, user_ids=list(by_user))}
    written = 0
    for user_id, notes in by_user.items():
        for note in notes:
            note.digest_pending = False
        person = people.get(user_id)
        if person is None:
            continue
        # The day it gathers (a digest read the next morning says which day it was).
        title = f"每日消息汇总（{local_date(now, SHANGHAI).isoformat()}，{len(notes)} 条）"
        entries = [
            {"label": notify.KINDS[n.kind], "title": n.title, "body": n.body, "link": n.link}
            for n in notes
        ]
        body = "\n\n".join(digest_entry(e) for e in entries)
        channels = {c for n in notes for c in person.channels_for(n.kind) if c != "inbox"}
        for channel in sorted(channels):
            session.add(notify.outbox_row(person, channel, title, body, None, now, entries=entries))
            written += 1
    session.flush()
    if written:
        session.info[notify.OUTBOX_PENDING] = True
    return written


def send_reminders(
    factory: sessionmaker[Session], today: dt.date | None = None, *, now: dt.datetime | None = None
) -> Report:
    """The daily job: reminders, then the digests, in one transaction (all or nothing).

    `today` (a date in Asia/Shanghai) runs the day as of 09:00 of that date, e.g. from the CLI.
    A run started while another one is under way waits for it (`RUN_LOCK`), then writes only
    what that one did not.
    """
    if now is None:
        now = (
            dt.datetime.combine(today, dt.time(9), SHANGHAI).astimezone(dt.UTC)
            if today is not None
            else utcnow()
        )
    with unit_of_work(factory) as session:
        serialise(session, RUN_LOCK)  # before the first read: see what a run before us wrote
        report = write_reminders(session, now)
        report.digests = write_digests(session, now)
    return report
