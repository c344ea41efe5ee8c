"""Notifications: written by the engine in the same transaction as the change that causes them.

A notification is one row per person (the inbox, 站内消息) and, as the person's preferences
say, an outbox row per external channel (e-mail, webhook) that the worker delivers later
(workflow/delivery.py). A person who takes a daily digest gets no single e-mails: their
messages wait (`digest_pending`) for `send_digests`, which the daily reminders job runs.

Nothing here sends anything: a change that notifies commits or rolls back with its
notifications, and a failed delivery never touches the change.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from scoring.routine import KIND_LABELS
from workflow.audit import record_event
from workflow.db import lock_key, serialise, translate_conflicts
from workflow.errors import BadRequest, InvalidValue, NotFound
from workflow.messages import N_, Lines, Phrase, Term, stored
from workflow.models import (
    Assessment,
    Department,
    Indicator,
    Item,
    Notification,
    NotificationPreference,
    OutboxMessage,
    RoutineRecord,
    Score,
    ScoringPoint,
    User,
    utcnow,
)
from workflow.permissions import member_units
from workflow.states import Role

#: The kinds of notification, with the names people read (preferences, inbox, e-mail subject).
KINDS: dict[str, str] = {
    "item_returned": N_("事项被退回"),
    "queue_waiting": N_("待办队列"),
    "deadline_near": N_("截止提醒"),
    "overdue": N_("逾期提醒"),
    "item_scored": N_("事项已评分"),
    "appeal_filed": N_("收到部门申诉"),
    "results_published": N_("考核结果公示"),
    "appeal_decided": N_("申诉处理结果"),
    "routine_rejected": N_("平时考核材料被退回"),
    "audit_alert": N_("审计核验告警"),
    "notice_outdated": N_("通知书需重新印发"),
    "routine_basis_changed": N_("评分后平时考核记录有变化"),
    "calendar_needed": N_("节假日安排待录入"),
}
#: The kinds each role can receive (the settings page offers only these).
KINDS_OF_ROLE: dict[str, tuple[str, ...]] = {
    "department": (
        "item_returned",
        "deadline_near",
        "overdue",
        "item_scored",
        "results_published",
        "appeal_decided",
        "routine_rejected",
    ),
    "reviewer": ("queue_waiting", "overdue"),
    "verifier": ("queue_waiting", "overdue"),
    "scorer": (
        "queue_waiting",
        "appeal_filed",
        "overdue",
        "notice_outdated",
        "routine_basis_changed",
    ),
    "admin": ("audit_alert", "notice_outdated", "routine_basis_changed", "calendar_needed"),
    "auditor": ("audit_alert",),
}
CHANNELS = ("inbox", "email", "webhook")
CHANNEL_LABELS = {"inbox": N_("站内消息"), "email": N_("电子邮件"), "webhook": N_("群机器人")}
MAX_REMIND_DAYS = 20
#: The session.info key that tells the request/CLI boundary to wake the delivery worker.
OUTBOX_PENDING = "outbox_pending"
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")


def kinds_for(roles: Iterable[str]) -> list[str]:
    """The kinds a holder of `roles` can receive, in KINDS order."""
    held = {k for r in roles for k in KINDS_OF_ROLE.get(r, ())}
    return [k for k in KINDS if k in held]


@dataclass(frozen=True)
class Recipient:
    """A person to notify, with their preferences (the defaults when they set none)."""

    user_id: int
    department_id: int | None = None
    #: The user's unit (their department in an assessment: `member_units` of its departments).
    unit_id: int | None = None
    roles: tuple[str, ...] = ()
    email: str | None = None
    webhook_url: str | None = None
    channels: Mapping[str, Sequence[str]] = field(default_factory=dict)
    digest: bool = False
    remind_days: int = 3

    def channels_for(self, kind: str) -> tuple[str, ...]:
        """The channels `kind` goes to: the person's choice, else the inbox plus every
        external channel they gave an address for; a channel without an address drops out."""
        chosen = self.channels.get(kind)
        wanted = tuple(chosen) if chosen is not None else CHANNELS
        out = []
        for channel in wanted:
            if (channel == "email" and not self.email) or (
                channel == "webhook" and not self.webhook_url
            ):
                continue
            if channel in CHANNELS:
                out.append(channel)
        return tuple(out)


def recipients(
    session: Session,
    *,
    department_ids: Iterable[int] | None = None,
    roles: Iterable[str] | None = None,
    user_ids: Iterable[int] | None = None,
    exclude: int | None = None,
) -> list[Recipient]:
    """Active users of the given departments, or holding any of the roles, or by id; one query.

    Department users are those with the department role whose department it is (their
    unit's appearance, or the appearance of the unit theirs was merged into:
    `workflow.permissions.member_units`).
    """
    units = member_units(session, department_ids) if department_ids is not None else {}
    query = select(
        User.id,
        User.unit_id,
        User.roles,
        NotificationPreference.email,
        NotificationPreference.webhook_url,
        NotificationPreference.channels,
        NotificationPreference.digest,
        NotificationPreference.remind_days,
    ).outerjoin(NotificationPreference, NotificationPreference.user_id == User.id)
    query = query.where(User.is_active.is_(True))
    if department_ids is not None:
        query = query.where(User.unit_id.in_(list(units)))
    if user_ids is not None:
        query = query.where(User.id.in_(list(user_ids)))
    if exclude is not None:
        query = query.where(User.id != exclude)
    wanted_roles = set(roles) if roles is not None else None
    out = []
    for uid, unit_id, user_roles, email, hook, chans, digest, days in session.execute(
        query.order_by(User.id)
    ):
        held = tuple(user_roles or ())
        if department_ids is not None and Role.DEPARTMENT.value not in held:
            continue
        if wanted_roles is not None and not wanted_roles.intersection(held):
            continue
        out.append(
            Recipient(
                user_id=uid,
                department_id=units.get(unit_id) if unit_id is not None else None,
                unit_id=unit_id,
                roles=held,
                email=email,
                webhook_url=hook,
                channels=chans or {},
                digest=bool(digest),
                remind_days=3 if days is None else days,
            )
        )
    return out


@dataclass(frozen=True)
class Message:
    """What to say: the same words in the inbox, the e-mail and the webhook.

    Title and body are best `Phrase`s (a msgid and its parameters, `workflow.messages`): the
    inbox keeps them as such beside the Chinese text and shows them in the language of whoever
    reads them. E-mails and webhooks go out in Chinese (a user has no language of their own;
    the portal's language is a cookie of their browser). Plain text is shown as it is.
    """

    kind: str
    title: str
    body: str
    link: str | None = None
    assessment_id: int | None = None
    item_id: int | None = None
    #: A key that makes the message once-only per person (e.g. one reminder per day).
    dedup: str | None = None


def send(
    session: Session,
    people: Sequence[Recipient],
    message: Message,
    *,
    now: dt.datetime | None = None,
) -> list[Notification]:
    """Write the message for each person: inbox row, outbox rows; flushes, never sends."""
    return send_many(session, [(p, message) for p in people], now=now)


def send_many(
    session: Session,
    pairs: Sequence[tuple[Recipient, Message]],
    *,
    now: dt.datetime | None = None,
) -> list[Notification]:
    """Write many (person, message) pairs in two INSERT statements (inbox, then outbox).

    A message with a `dedup` key that was written for the person already is left out (one
    query for the keys), so running a once-only message again writes nothing instead of
    failing on the unique `dedup_key`: e.g. a second reminders run on a day whose calendar is
    unknown, or a second failed audit verification on a day. Two writers of one key at once
    must still take a lock first (`alert_admins`, `reminders.send_reminders`).
    """
    if not pairs:
        return []
    now = now or utcnow()
    written = written_keys(session, [_key(p, m) for p, m in pairs if m.dedup])
    rows: list[tuple[Recipient, Message, Notification, tuple[str, ...]]] = []
    for person, message in pairs:
        if message.kind not in KINDS:
            raise ValueError(f"unknown notification kind {message.kind!r}")
        if message.dedup and _key(person, message) in written:
            continue
        channels = person.channels_for(message.kind)
        if not channels:
            continue
        external = tuple(c for c in channels if c != "inbox")
        note = Notification(
            user_id=person.user_id,
            kind=message.kind,
            title=str(message.title),
            body=str(message.body),
            title_i18n=stored(message.title),
            body_i18n=stored(message.body),
            link=message.link,
            assessment_id=message.assessment_id,
            item_id=message.item_id,
            dedup_key=_key(person, message) if message.dedup else None,
            in_inbox="inbox" in channels,
            digest_pending=bool(external) and person.digest,
            created_at=now,
        )
        rows.append((person, message, note, external))
    if not rows:
        return []
    session.add_all([r[2] for r in rows])
    session.flush()
    outbox = [
        outbox_row(person, channel, str(message.title), str(message.body), note, now)
        for person, message, note, external in rows
        if not person.digest
        for channel in external
    ]
    if outbox:
        session.add_all(outbox)
        session.flush()
        session.info[OUTBOX_PENDING] = True
    return [r[2] for r in rows]


def _key(person: Recipient, message: Message) -> str:
    """The stored `dedup_key` of a once-only message to one person."""
    return f"{message.dedup}:u{person.user_id}"


def written_keys(session: Session, keys: Sequence[str]) -> set[str]:
    """Which of these `dedup_key`s are stored already (a query per thousand keys)."""
    found: set[str] = set()
    ordered = sorted(set(keys))
    for start in range(0, len(ordered), 1000):
        found.update(
            session.scalars(
                select(Notification.dedup_key).where(
                    Notification.dedup_key.in_(ordered[start : start + 1000])
                )
            )
        )
    return found


def outbox_row(
    person: Recipient,
    channel: str,
    title: str,
    body: str,
    note: Notification | None,
    now: dt.datetime,
    *,
    entries: Sequence[Mapping[str, Any]] = (),
) -> OutboxMessage:
    """One e-mail or webhook message for the worker; a digest (no `note`) carries its
    `entries` (kind, title, body, link of each message), which delivery writes out with each
    one's link (`delivery.message_text`)."""
    target = person.email if channel == "email" else person.webhook_url
    assert target is not None  # channels_for drops a channel without an address
    payload: dict[str, Any] = {
        "kind": note.kind if note is not None else "digest",
        "title": title,
        "body": body,
        "link": note.link if note is not None else None,
        "notification_id": note.id if note is not None else None,
    }
    if entries:
        payload["entries"] = [dict(e) for e in entries]
    return OutboxMessage(
        notification_id=note.id if note is not None else None,
        user_id=person.user_id,
        channel=channel,
        target=target,
        subject=f"【{KINDS.get(payload['kind'], '消息汇总')}】{title}",
        body=body,
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


# --- waking the worker -----------------------------------------------------------------------

log = logging.getLogger(__name__)
#: Called after a commit that wrote outbox rows (the job queue registers its enqueue here).
_WAKERS: list[Callable[[], None]] = []


def on_outbox_commit(callback: Callable[[], None]) -> None:
    """Run `callback` after every commit that wrote outbox rows (e.g. enqueue delivery).

    A failing callback is logged and ignored: the change is committed, and the worker's
    periodic pass delivers what no wake-up announced.
    """
    if callback not in _WAKERS:
        _WAKERS.append(callback)


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    if not session.info.pop(OUTBOX_PENDING, False):
        return
    for callback in list(_WAKERS):
        try:
            callback()
        except Exception:  # the broker may be down; the periodic pass covers it
            log.warning("could not wake the outbox delivery", exc_info=True)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(OUTBOX_PENDING, None)


# --- what the engine notifies -------------------------------------------------------------


def _item_words(session: Session, item: Item) -> tuple[str, Phrase, Phrase]:
    """The item's department, its indicator (指标9 各部门“放管服”信息报送), and the indicator
    to quote in a body (“指标9 各部门‘放管服’信息报送”: quotes inside quotes are single)."""
    department, code, title = session.execute(
        select(Department.name, Indicator.code, Indicator.title)
        .select_from(Item)
        .join(Department, Department.id == Item.department_id)
        .join(Indicator, Indicator.id == Item.indicator_id)
        .where(Item.id == item.id)
    ).one()
    start = _start(title)
    return (
        department,
        Phrase(N_("指标%(code)s %(title)s"), {"code": code, "title": start}),
        Phrase(N_("指标%(code)s %(title)s"), {"code": code, "title": inner_quotes(start)}),
    )


def inner_quotes(text: str) -> str:
    """Double quotes as single ones, for a text put inside double quotes: 各部门“放管服”信息报送
    quoted reads “各部门‘放管服’信息报送”, not “各部门“放管服”信息报送”."""
    return text.translate(_INNER_QUOTES)


_INNER_QUOTES = str.maketrans({"“": "‘", "”": "’"})


def _start(text: str, length: int = 30) -> str:
    """The text's start, on one line, at most `length` characters ("…" where it is cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= length else flat[: length - 1] + "…"


#: The item actions that notify: an appeal tells the scorers who may decide it, the others
#: the item's department.
ITEM_TRIGGERS = frozenset({"return", "score", "appeal", "rescore", "reject_appeal"})


#: What the department's item messages said before they named the year. Rows are stored with
#: their msgids (`title_i18n`, `body_i18n`) and read in the reader's language when shown: the
#: old msgids stay in the catalog so that those rows still read in English.
EARLIER_ITEM_MESSAGES = (
    N_("%(indicator)s：被退回修改"),
    N_(
        "%(department)s的考核事项“%(indicator)s”被退回修改。\n"
        "退回原因：%(reason)s\n请修改后重新提交。"
    ),
    N_("%(indicator)s：申诉被驳回"),
    N_("%(department)s对考核事项“%(indicator)s”的申诉被驳回，维持原评分。"),
    N_("%(indicator)s：申诉已复核"),
    N_("%(department)s对考核事项“%(indicator)s”的申诉已复核，结果在考核结果公示后可查看。"),
    N_("%(indicator)s：申诉已复核，合计分数未变"),
    N_(
        "%(department)s对考核事项“%(indicator)s”的申诉经复核重新评分，"
        "合计分数未变（%(total)s 分），可登录系统查看。"
    ),
    N_("%(indicator)s：申诉已复核改分"),
    N_("%(department)s对考核事项“%(indicator)s”的申诉经复核，已重新评分，可登录系统查看。"),
    N_("%(indicator)s：已评分"),
    N_("%(department)s的考核事项“%(indicator)s”已评分，可登录系统查看。"),
)
#: What the office's messages (a notice out of date, routine records moving a scored item's
#: suggestion) and a routine rejection said before they named the year (the rejection named
#: its period as a code, 2018-09): kept in the catalog for the rows stored with them.
EARLIER_YEARLESS_MESSAGES = (
    N_("%(department)s：%(what)s需重新印发"),
    N_(
        "%(department)s的考核事项“%(indicator)s”已重新评分，已印发的%(what)s"
        "（第 %(version)s 版，%(number)s）与现在的结果不一致，请重新印发。"
    ),
    N_("平时考核记录被退回：%(kind)s %(period)s"),
    N_("%(kind)s（%(period)s）被退回。\n理由：%(reason)s"),
    N_("%(department)s %(indicator)s：计数期间结束后建议分有变化"),
    N_(
        "%(department)s的考核事项“%(indicator)s”评分时尚未结束的平时考核计数期间"
        "现已结束（评分时未结束的期间不计入），建议分随之与评分时不同；"
        "平时考核记录没有变化：\n%(points)s\n%(remedy)s"
    ),
    N_("%(department)s %(indicator)s：评分后平时考核记录有变化"),
    N_(
        "%(department)s的考核事项“%(indicator)s”评分后，平时考核记录有变化"
        "（%(kind)s %(period)s %(what)s），建议分与评分时不同：\n%(points)s\n%(remedy)s"
    ),
    N_(
        "%(department)s的考核事项“%(indicator)s”评分后，平时考核记录又有变化"
        "（%(kind)s %(period)s %(what)s），现建议分已与评分时一致，无需处理。"
    ),
)
#: What the publication said before it named the appeal period (and wrote 2018 年度).
EARLIER_PUBLICATION_MESSAGES = (
    N_("%(year)s 年度考核结果公示"),
    N_("%(title)s的考核结果已公示。如有异议，请在申诉期内提出。"),
)


def on_transition(
    session: Session,
    trigger: str,
    from_state: str,
    item: Item,
    actor: User,
    comment: str | None,
    now: dt.datetime,
    *,
    total_before: Decimal | None = None,
) -> None:
    """The item's department hears of a return, a score or an appeal decision; the scorers
    who may decide an appeal hear of it when it is filed (`appeal_filed`).

    An appeal rescored to the same total is told as such, not as "改分"."""
    if trigger not in ITEM_TRIGGERS:
        return
    if trigger == "appeal":
        appeal_filed(session, item, comment, now)
        return
    appeal = from_state == "appealed"
    if trigger == "rescore" or (trigger == "score" and appeal):
        notice_outdated(session, item, actor, now)
    from workflow.notices import publication_started  # notices reads results

    assessment = item.assessment
    hidden = assessment.hide_scores_until_published and not publication_started(assessment)
    if trigger in ("score", "rescore") and not appeal and hidden:
        return  # the department sees no score before 公示: the publication tells them
    people = recipients(session, department_ids=[item.department_id], exclude=actor.id)
    if not people:
        return
    department, indicator, quoted = _item_words(session, item)
    words: dict[str, object] = {
        "year": assessment.year,
        "department": department,
        "indicator": quoted,  # the bodies quote it: “指标1 成立‘放管服’工作领导小组…”
    }
    if trigger == "return":
        kind, title = "item_returned", N_("%(year)s年度%(indicator)s：被退回修改")
        body = N_(
            "%(department)s的%(year)s年度考核事项“%(indicator)s”被退回修改。\n"
            "退回原因：%(reason)s\n请修改后重新提交。"
        )
        words["reason"] = comment or Term(N_("（未填写）"))
    elif trigger == "reject_appeal":
        kind, title = "appeal_decided", N_("%(year)s年度%(indicator)s：申诉被驳回")
        body = N_("%(department)s对%(year)s年度考核事项“%(indicator)s”的申诉被驳回，维持原评分。")
    elif appeal and hidden:  # decided, but its score is not the department's to see yet
        kind, title = "appeal_decided", N_("%(year)s年度%(indicator)s：申诉已复核")
        body = N_(
            "%(department)s对%(year)s年度考核事项“%(indicator)s”的申诉已复核，"
            "结果在考核结果公示后可查看。"
        )
    elif appeal and total_before is not None and item.total == total_before:
        kind = "appeal_decided"
        title = N_("%(year)s年度%(indicator)s：申诉已复核，合计分数未变")
        body = N_(
            "%(department)s对%(year)s年度考核事项“%(indicator)s”的申诉经复核重新评分，"
            "合计分数未变（%(total)s 分），可登录系统查看。"
        )
        words["total"] = item.total
    elif appeal:
        kind, title = "appeal_decided", N_("%(year)s年度%(indicator)s：申诉已复核改分")
        body = N_(
            "%(department)s对%(year)s年度考核事项“%(indicator)s”的申诉经复核，已重新评分，"
            "可登录系统查看。"
        )
    else:
        kind, title = "item_scored", N_("%(year)s年度%(indicator)s：已评分")
        body = N_("%(department)s的%(year)s年度考核事项“%(indicator)s”已评分，可登录系统查看。")
    text = Phrase(body, words)
    if comment and trigger != "return":
        text = Phrase(N_("%(message)s\n说明：%(comment)s"), {"message": text, "comment": comment})
    send(
        session,
        people,
        Message(
            kind,
            Phrase(title, {"year": assessment.year, "indicator": indicator}),
            text,
            f"/portal/items/{item.id}",
            item.assessment_id,
            item.id,
        ),
        now=now,
    )


#: How much of an appeal's reason its message quotes (the item page shows all of it).
REASON_START = 60


def appeal_filed(session: Session, item: Item, reason: str | None, now: dt.datetime) -> None:
    """The scorers who may decide a new appeal hear of it at once, not in the next day's 待办
    reminder: an office with a short appeal window must not lose days.

    Only those the decision's guards would let act (`rescore`, `reject_appeal` in
    workflow/table.py): a scorer, not of the item's department, who did no department work on
    the item (`contributor_ids`: the appellant among them) and gave none of the scores
    appealed against. The message names the year (two years' appeals may run at once), the
    department, the indicator and the reason's start, and opens the office's item page.
    """
    people = appeal_deciders(session, item)
    if not people:
        return
    department, indicator, quoted = _item_words(session, item)
    words: dict[str, object] = {
        "year": item.assessment.year,
        "department": department,
        "indicator": indicator,
    }
    send(
        session,
        people,
        Message(
            "appeal_filed",
            Phrase(N_("%(year)s年度申诉待处理：%(department)s %(indicator)s"), words),
            Phrase(
                N_(
                    "%(department)s对%(year)s年度考核事项“%(indicator)s”提出申诉，"
                    "请复核改分或驳回申诉。\n申诉理由：%(reason)s"
                ),
                {
                    **words,
                    "indicator": quoted,
                    "reason": _start(reason, REASON_START) if reason else Term(N_("（未填写）")),
                },
            ),
            f"/review/items/{item.id}",
            item.assessment_id,
            item.id,
        ),
        now=now,
    )


def appeal_deciders(session: Session, item: Item) -> list[Recipient]:
    """The active users who may decide the item's appeal (the guards of `rescore` and
    `reject_appeal`: is_scorer, is_not_own_department, is_not_own_submission,
    is_not_original_scorer); three queries."""
    own_units = member_units(session, [item.department_id])
    refused = {item.scored_by_id, *(item.contributor_ids or ())} | set(
        session.scalars(select(Score.scored_by_id).where(Score.item_id == item.id))
    )
    return [
        p
        for p in recipients(session, roles=[Role.SCORER.value])
        if p.user_id not in refused and p.unit_id not in own_units
    ]


def notice_outdated(session: Session, item: Item, actor: User, now: dt.datetime) -> None:
    """The issuers hear that a rescore left issued documents out of date.

    Only when the newest version no longer says what the results say now (a rescore that
    gives the same points changes nothing handed out). The notices page shows the same. The
    department's own notice is named on its own; a total that moved also moves other
    departments' ranks, so their newest ranked notices and the summary table are checked too
    and named together in one more message (the progress matrix marks them).
    """
    from workflow.notices import CHANGED, ISSUER_ROLES, NOTICE, SUMMARY, latest_versions, standing

    assessment = item.assessment
    latest = latest_versions(session, assessment.id)  # one query; none issued: nothing to do
    if not latest:
        return
    department = session.get_one(Department, item.department_id)
    notice = latest.get((NOTICE, department.id))
    own = notice is not None and standing(session, notice) == CHANGED
    others = [
        n
        for (kind, department_id), n in sorted(latest.items(), key=lambda kv: kv[1].id)
        if kind == NOTICE
        and department_id != department.id
        and not n.is_preliminary  # no rank: another department's total does not move it
        and standing(session, n) == CHANGED
    ]
    summary = latest.get((SUMMARY, None))
    if summary is not None and standing(session, summary) != CHANGED:
        summary = None
    if not (own or others or summary):
        return
    people = recipients(session, roles=[r.value for r in ISSUER_ROLES], exclude=actor.id)
    if not people:
        return
    _, _, indicator = _item_words(session, item)  # quoted in the body
    messages = []
    if own and notice is not None:
        what = Term(N_("初步结果通知") if notice.is_preliminary else N_("考核结果通知书"))
        number = (notice.snapshot or {}).get("document_no") or Term(N_("（无文号）"))
        messages.append(
            Message(
                "notice_outdated",
                Phrase(
                    N_("%(year)s年度%(what)s需重新印发：%(department)s"),
                    {"year": assessment.year, "department": department.name, "what": what},
                ),
                Phrase(
                    N_(
                        "%(department)s的%(year)s年度考核事项“%(indicator)s”已重新评分，已印发的"
                        "%(what)s（第 %(version)s 版，%(number)s）与现在的结果不一致，请重新印发。"
                    ),
                    {
                        "year": assessment.year,
                        "department": department.name,
                        "indicator": indicator,
                        "what": what,
                        "version": notice.version,
                        "number": number,
                    },
                ),
                f"/progress/departments/{department.id}/notices",
                item.assessment_id,
                item.id,
            )
        )
    if others or summary:
        names = {
            d.id: d.name
            for d in session.scalars(
                select(Department).where(Department.id.in_([n.department_id for n in others]))
            )
        }
        documents: list[str] = [
            Phrase(
                N_("%(department)s的考核结果通知书（第 %(version)s 版）"),
                {"department": names[n.department_id or 0], "version": n.version},
            )
            for n in others
        ]
        if summary is not None:
            documents.append(
                Phrase(N_("汇总表（第 %(version)s 版）"), {"version": summary.version})
            )
        messages.append(
            Message(
                "notice_outdated",
                Phrase(
                    N_("%(year)s年度已印发的考核结果需重新印发：名次变化"),
                    {"year": assessment.year},
                ),
                Phrase(
                    N_(
                        "%(department)s的%(year)s年度考核事项“%(indicator)s”已重新评分，名次随之"
                        "变化。以下已印发的文件与现在的结果不一致，请重新印发：\n%(documents)s"
                    ),
                    {
                        "year": assessment.year,
                        "department": department.name,
                        "indicator": indicator,
                        "documents": Lines(documents),
                    },
                ),
                "/progress/",
                item.assessment_id,
                item.id,
            )
        )
    send_many(session, [(p, m) for m in messages for p in people], now=now)


def results_published(
    session: Session, assessment: Assessment, now: dt.datetime, *, again: bool = False
) -> None:
    """Every department user of the assessment hears that its results are published (公示);
    `again`: published anew after a reopen for correction, with a new window."""
    department_ids = session.scalars(
        select(Department.id).where(Department.assessment_id == assessment.id)
    ).all()
    from workflow.assessments import local_minute  # assessments calls this module

    people = recipients(session, department_ids=department_ids)
    words: dict[str, object] = {"title": assessment.title}
    opens, closes = assessment.appeal_opens_at, assessment.appeal_closes_at
    if opens is None or closes is None:
        body = N_("%(title)s的考核结果已公示。")
    else:
        # The window as the publication page says it: "within the appeal period" told no
        # department when that was, and an e-mail is read away from the page.
        body = N_(
            "%(title)s的考核结果已公示。如有异议，请在申诉期内提出申诉："
            "%(opens)s 至 %(closes)s（北京时间）。"
        )
        if again:  # it read as the first 公示: the departments could not tell it was corrected
            body = N_(
                "%(title)s的考核结果已于更正后重新公示。如有异议，请在新的申诉期内提出申诉："
                "%(opens)s 至 %(closes)s（北京时间）。"
            )
        words["opens"] = local_minute(opens, assessment.timezone)
        words["closes"] = local_minute(closes, assessment.timezone)
    send(
        session,
        people,
        Message(
            "results_published",
            Phrase(
                N_("%(year)s年度考核结果重新公示") if again else N_("%(year)s年度考核结果公示"),
                {"year": assessment.year},
            ),
            Phrase(body, words),
            # The department's page of that year (its scores, its appeals): /publication/
            # speaks of whichever year's 公示 runs when the message is read.
            f"/portal/?year={assessment.year}",
            assessment.id,
            dedup=f"published:a{assessment.id}:{now.isoformat()}",
        ),
        now=now,
    )


def routine_rejected(
    session: Session, record: RoutineRecord, actor: User, now: dt.datetime
) -> None:
    """The department hears that the office sent a routine record back, with the reason; the
    link opens the routine page of the record's year (the December report's rejection may be
    read in January, when next year's page is the default)."""
    from workflow.routine import period_words  # routine imports notify's module lazily

    people = recipients(session, department_ids=[record.department_id], exclude=actor.id)
    year = session.scalar(select(Assessment.year).where(Assessment.id == record.assessment_id))
    kind = Term(KIND_LABELS.get(record.kind) or N_("平时考核材料"))
    # The period in words, with its year (2018年9月, not the code 2018-09 or 2018-Q3).
    words = {"kind": kind, "period": period_words(record.period)}
    send(
        session,
        people,
        Message(
            "routine_rejected",
            Phrase(N_("平时考核记录被退回：%(period)s%(kind)s"), words),
            Phrase(
                N_("%(period)s%(kind)s记录被退回。\n理由：%(reason)s\n请按理由修改后重新报送。"),
                {**words, "reason": record.reason or Term(N_("（未填写）"))},
            ),
            f"/portal/routine?year={year}",
            record.assessment_id,
        ),
        now=now,
    )


def _scorers_and_admins(session: Session, item: Item, exclude: int | None) -> list[Recipient]:
    """Who scored the item (scored it, rescored it) and the admins, each once."""
    scorer_ids = {item.scored_by_id} | set(
        session.scalars(select(Score.scored_by_id).where(Score.item_id == item.id))
    )
    people = {
        p.user_id: p
        for p in recipients(
            session, user_ids=[i for i in scorer_ids if i is not None], exclude=exclude
        )
        + recipients(session, roles=[Role.ADMIN.value], exclude=exclude)
    }
    return list(people.values())


def _drift_lines(drift: Sequence[Any]) -> Lines:
    """One line per moved point (`PointDrift`s): the suggestion then and now, the score;
    under it, when known, which record kinds and periods moved it (变化所在：…).

    Stored with the message, these figures are what `told_figures` reads back."""
    lines: list[str] = []
    for d in drift:
        lines.append(
            Phrase(
                N_("%(code)s 评分时建议 %(then)s，现建议 %(now)s，已评 %(score)s"),
                {
                    "code": d.code,
                    "then": d.suggested_then,
                    "now": d.suggested_now,
                    "score": d.score if d.score is not None else "—",
                },
            )
        )
        if d.causes_phrase is not None:
            lines.append(d.causes_phrase)
    return Lines(lines)


def drift_figures(drift: Sequence[Any]) -> frozenset[tuple[str, str, str]]:
    """The figures of a drift (`PointDrift`s) as `told_figures` reads them from a message."""
    return frozenset((d.code, str(d.suggested_then), str(d.suggested_now)) for d in drift)


def told_figures(body: Any) -> frozenset[tuple[str, str, str]]:
    """The (point, suggestion then, suggestion now) a stored `routine_basis_changed` body
    told; empty for a message that told none (the suggestion was back to the scored one) or
    that was stored without its msgids."""
    if not isinstance(body, dict):
        return frozenset()
    points = (body.get("params") or {}).get("points")
    lines = points.get("lines") if isinstance(points, dict) else None
    if not isinstance(lines, list):
        return frozenset()
    out = set()
    for line in lines:
        params = line.get("params") if isinstance(line, dict) else None
        if isinstance(params, dict) and {"code", "then", "now"} <= params.keys():
            out.add((str(params["code"]), str(params["then"]), str(params["now"])))
    return frozenset(out)


def period_drift_notices(
    session: Session, item: Item, drift: Sequence[Any], remedy: str, dedup: str
) -> list[tuple[Recipient, Message]]:
    """What the daily reminders tell the scorers of a scored item (who scored it, who rescored
    it) and the admins when time alone moved its suggested score: a counting period that was
    still running at scoring (not held against the department) has ended; no record changed.
    `drift`: the routine module's `PointDrift`s (their `score` is filled in here), each with
    the periods that ended short of their quota (2018年12月“放管服”信息（月报）期间已结束且未达
    要求); `dedup`: the key that makes the message once-only per person."""
    from workflow.routine import REMEDY_TEXTS  # routine imports notify's module lazily

    people = _scorers_and_admins(session, item, exclude=None)
    if not people:
        return []
    scores = {
        code: points
        for code, points in session.execute(
            select(ScoringPoint.code, Score.points)
            .join(ScoringPoint, ScoringPoint.id == Score.scoring_point_id)
            .where(Score.item_id == item.id)
        )
    }
    department, indicator, quoted = _item_words(session, item)
    words: dict[str, object] = {
        "year": item.assessment.year,
        "department": department,
        "indicator": indicator,
    }
    message = Message(
        "routine_basis_changed",
        Phrase(N_("%(year)s年度计数期间结束后建议分有变化：%(department)s %(indicator)s"), words),
        Phrase(
            N_(
                "%(department)s的%(year)s年度考核事项“%(indicator)s”评分时尚未结束的平时考核"
                "计数期间现已结束（评分时未结束的期间不计入），建议分随之与评分时不同；"
                "平时考核记录没有变化：\n%(points)s\n%(remedy)s"
            ),
            {
                **words,
                "indicator": quoted,
                "points": _drift_lines([replace(d, score=scores.get(d.code)) for d in drift]),
                "remedy": Term(REMEDY_TEXTS[remedy]),
            },
        ),
        f"/review/items/{item.id}",
        item.assessment_id,
        item.id,
        dedup=dedup,
    )
    return [(person, message) for person in people]


def routine_basis_changed(
    session: Session,
    item: Item,
    record: RoutineRecord,
    what: str,
    drift: Sequence[Any],
    remedy: str,
    actor: User,
    now: dt.datetime,
) -> None:
    """The scorers of a scored item (who scored it, who rescored it) and the admins hear that
    a routine record's change moved the item's suggested score: per point the suggestion the
    score was given with, the suggestion now and the score (`drift`: the routine module's
    `PointDrift`s; empty when the suggestion is back to what it was at scoring) with the
    record kind and period that moved it (2018年9月“放管服”信息（月报）记录有变化), and what the
    office can do (`remedy`). Only a reopen by an admin, or an appeal, allows a rescore."""
    from workflow.routine import REMEDY_TEXTS, period_words  # routine imports notify lazily

    people = _scorers_and_admins(session, item, exclude=actor.id)
    if not people:
        return
    department, indicator, quoted = _item_words(session, item)
    kind = Term(KIND_LABELS.get(record.kind) or N_("平时考核材料"))
    words: dict[str, object] = {
        "year": item.assessment.year,
        "department": department,
        "indicator": quoted,  # the bodies quote it
        "kind": kind,
        "period": period_words(record.period),
        "what": Term(what),
    }
    if drift:
        body = Phrase(
            N_(
                "%(department)s的%(year)s年度考核事项“%(indicator)s”评分后，平时考核记录有变化"
                "（%(kind)s %(period)s %(what)s），建议分与评分时不同：\n%(points)s\n%(remedy)s"
            ),
            {
                **words,
                "points": _drift_lines(drift),
                "remedy": Term(REMEDY_TEXTS[remedy]),
            },
        )
    else:
        body = Phrase(
            N_(
                "%(department)s的%(year)s年度考核事项“%(indicator)s”评分后，平时考核记录又有变化"
                "（%(kind)s %(period)s %(what)s），现建议分已与评分时一致，无需处理。"
            ),
            words,
        )
    send(
        session,
        people,
        Message(
            "routine_basis_changed",
            Phrase(
                N_("%(year)s年度评分后平时考核记录有变化：%(department)s %(indicator)s"),
                {"year": item.assessment.year, "department": department, "indicator": indicator},
            ),
            body,
            f"/review/items/{item.id}",
            item.assessment_id,
            item.id,
        ),
        now=now,
    )


def alert_admins(
    session: Session,
    title: str,
    body: str,
    *,
    dedup: str | None = None,
    now: dt.datetime | None = None,
) -> list[Notification]:
    """Tell every active admin (and auditor) that something needs them, e.g. a broken chain.

    With `dedup`, once: two alerts of one key at once (the nightly verification and one an
    admin started) queue on a lock taken before `send_many` reads which keys are written."""
    if dedup is not None:
        serialise(session, lock_key("alert", dedup))
    people = recipients(session, roles=[Role.ADMIN.value, Role.AUDITOR.value])
    return send(
        session, people, Message("audit_alert", title, body, "/audit/verify", dedup=dedup), now=now
    )


# --- the inbox ------------------------------------------------------------------------------


def inbox(
    session: Session,
    user: User,
    *,
    unread_only: bool = False,
    before: int | None = None,
    limit: int = 50,
) -> list[Notification]:
    """The user's messages, newest first (keyset on id)."""
    query = select(Notification).where(
        Notification.user_id == user.id, Notification.in_inbox.is_(True)
    )
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if before is not None:
        query = query.where(Notification.id < before)
    return list(session.scalars(query.order_by(Notification.id.desc()).limit(limit)))


def unread_count(session: Session, user: User) -> int:
    """How many inbox messages the user has not read."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(
                Notification.user_id == user.id,
                Notification.in_inbox.is_(True),
                Notification.read_at.is_(None),
            )
        )
        or 0
    )


def mark_read(
    session: Session, user: User, notification_id: int, *, now: dt.datetime | None = None
) -> Notification:
    """Mark one of the user's messages read (someone else's is a 404); idempotent."""
    note = session.get(Notification, notification_id)
    if note is None or note.user_id != user.id or not note.in_inbox:
        raise NotFound("消息不存在", code="notification_not_found")
    if note.read_at is None:
        note.read_at = now or utcnow()
        session.flush()
    return note


def mark_all_read(session: Session, user: User, *, now: dt.datetime | None = None) -> int:
    """Mark every unread message of the user read; return how many."""
    result = session.execute(
        update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=now or utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- preferences ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    """A person's preferences as the API and the portal show them."""

    email: str | None
    webhook_url: str | None
    channels: dict[str, list[str]]
    digest: bool
    remind_days: int

    def as_json(self) -> dict[str, Any]:
        """The API's representation."""
        return {
            "email": self.email,
            "webhook_url": self.webhook_url,
            "channels": self.channels,
            "digest": self.digest,
            "remind_days": self.remind_days,
        }


def preferences(session: Session, user: User) -> Preferences:
    """The user's preferences, every kind spelled out (the defaults where none was chosen)."""
    row = session.get(NotificationPreference, user.id)
    person = Recipient(
        user_id=user.id,
        email=row.email if row else None,
        webhook_url=row.webhook_url if row else None,
        channels=(row.channels or {}) if row else {},
    )
    chosen = person.channels
    return Preferences(
        email=person.email,
        webhook_url=person.webhook_url,
        channels={k: list(chosen.get(k, CHANNELS)) for k in KINDS},
        digest=bool(row.digest) if row else False,
        remind_days=row.remind_days if row else 3,
    )


def _check_webhook(url: str, allowed_hosts: Sequence[str]) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValue("群机器人地址须以 http:// 或 https:// 开头", code="bad_webhook_url")
    host = parts.hostname.lower()
    if allowed_hosts:
        if host not in allowed_hosts:
            raise InvalidValue(
                "群机器人地址的主机 %(host)s 不在允许的范围内（%(allowed)s）",
                code="webhook_host_not_allowed",
                params={"host": host, "allowed": "、".join(allowed_hosts)},
            )
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if address.is_link_local or address.is_multicast or address.is_unspecified:
        raise InvalidValue(
            "群机器人地址的主机 %(host)s 不可用", code="bad_webhook_url", params={"host": host}
        )


def set_preferences(
    session: Session,
    user: User,
    data: Mapping[str, Any],
    *,
    allowed_hosts: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> Preferences:
    """Replace the given fields of the user's preferences; checked, audited, all or nothing."""
    if not isinstance(data, Mapping):
        raise BadRequest("请求体须为 JSON 对象", code="invalid_type")
    unknown = sorted(set(data) - {"email", "webhook_url", "channels", "digest", "remind_days"})
    if unknown:
        raise BadRequest(
            "未知字段：%(fields)s", code="unknown_field", params={"fields": "、".join(unknown)}
        )
    current = preferences(session, user)
    email = data.get("email", current.email)
    hook = data.get("webhook_url", current.webhook_url)
    digest = data.get("digest", current.digest)
    days = data.get("remind_days", current.remind_days)
    channels_in = data.get("channels", current.channels)
    if email is not None and not isinstance(email, str):
        raise BadRequest("email 必须是文本", code="invalid_type")
    email = (email or "").strip() or None
    if email is not None and (len(email) > 254 or not _EMAIL.match(email)):
        raise InvalidValue("电子邮件地址格式不正确", code="bad_email")
    if hook is not None and not isinstance(hook, str):
        raise BadRequest("webhook_url 必须是文本", code="invalid_type")
    hook = (hook or "").strip() or None
    if hook is not None:
        if len(hook) > 500:
            raise InvalidValue("群机器人地址过长", code="bad_webhook_url")
        _check_webhook(hook, allowed_hosts)
    if not isinstance(digest, bool):
        raise BadRequest("digest 须为 true 或 false", code="invalid_type")
    if isinstance(days, bool) or not isinstance(days, int):
        raise BadRequest("remind_days 须为整数", code="invalid_type")
    if not 0 <= days <= MAX_REMIND_DAYS:
        raise InvalidValue(
            "提前提醒的工作日数须在 0 到 %(max)s 之间",
            code="bad_remind_days",
            params={"max": MAX_REMIND_DAYS},
        )
    if not isinstance(channels_in, Mapping):
        raise BadRequest("channels 须为对象（消息类型 → 渠道列表）", code="invalid_type")
    channels: dict[str, list[str]] = dict(current.channels)
    for kind, chosen in channels_in.items():
        if kind not in KINDS:
            raise InvalidValue(
                "未知的消息类型：%(kind)s", code="unknown_kind", params={"kind": str(kind)}
            )
        if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
            raise BadRequest("channels 的每一项须为渠道名称的列表", code="invalid_type")
        bad = sorted(set(chosen) - set(CHANNELS))
        if bad:
            raise InvalidValue(
                "未知的通知渠道：%(channels)s",
                code="unknown_channel",
                params={"channels": "、".join(bad)},
            )
        channels[kind] = [c for c in CHANNELS if c in chosen]
    row = session.get(NotificationPreference, user.id)
    if row is None:
        row = NotificationPreference(user_id=user.id)
        session.add(row)
    row.email, row.webhook_url, row.digest, row.remind_days = email, hook, digest, days
    row.channels = channels
    row.updated_at = now or utcnow()
    with translate_conflicts():  # two first saves at once: one wins, the other is a 409
        session.flush()
    record_event(
        session,
        actor=user,
        action="notification_preferences_changed",
        target_type="user",
        target_id=user.id,
        # The addresses themselves are personal data: the trail says whether one is set.
        payload={
            "email_set": email is not None,
            "webhook_set": hook is not None,
            "digest": digest,
            "remind_days": days,
            "channels": channels,
        },
    )
    return preferences(session, user)
