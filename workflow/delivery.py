"""Delivering the outbox: e-mail over SMTP and JSON webhooks, with retries and backoff.

`deliver_due(factory)` runs one pass, the worker's job (every minute, and woken after a
commit that wrote outbox rows):

1. lease a batch of due messages in one short transaction (`FOR UPDATE SKIP LOCKED` on
   PostgreSQL, so two workers never take the same row);
2. send them outside any transaction: the e-mails of a batch over one SMTP connection;
3. record every attempt (`delivery_attempts`) and each message's new status in a second short
   transaction: sent; or pending again after a backoff (30 s, 1 min, 2 min, … at most 6 h);
   or dead after `max_attempts`.

The contract is **at least once**: a worker killed after sending and before step 3 leaves
the lease to run out (`lease`), and the message goes again. E-mails carry a stable
`Message-ID` (`<outbox-N@…>`) and webhooks an `X-Notification-Id: N` header, so a receiver can
drop that rare duplicate. A failed delivery never touches the change that caused it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from workflow.db import unit_of_work
from workflow.models import DeliveryAttempt, OutboxMessage, utcnow

BACKOFF_BASE = dt.timedelta(seconds=30)
BACKOFF_MAX = dt.timedelta(hours=6)
MAX_ERROR = 1000


@dataclass(frozen=True)
class MailSettings:
    """Where e-mail goes (SMTP_* settings). No host: e-mail messages wait, undelivered."""

    host: str = ""
    port: int = 25
    username: str = ""
    password: str = ""
    security: str = "none"  # none, starttls or ssl
    sender: str = "noreply@localhost"
    timeout: float = 10.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MailSettings:
        """Read the app's MAIL configuration (web/config.py)."""
        mail = config.get("MAIL") or {}
        return cls(**{k: v for k, v in mail.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class DeliverySettings:
    """How the worker delivers: mail, webhook timeout, batch size, lease, attempts."""

    mail: MailSettings = field(default_factory=MailSettings)
    webhook_timeout: float = 10.0
    batch: int = 200
    lease: dt.timedelta = dt.timedelta(minutes=5)
    max_attempts: int = 12
    #: The portal's address (PUBLIC_BASE_URL): a message's link is a path of the portal, which
    #: in an e-mail or a group chat opens nothing without it.
    base_url: str = ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DeliverySettings:
        """Read the app's configuration (web/config.py: SMTP_*, OUTBOX_*)."""
        outbox = config.get("OUTBOX") or {}
        return cls(
            mail=MailSettings.from_config(config),
            webhook_timeout=float(outbox.get("webhook_timeout", 10.0)),
            batch=int(outbox.get("batch", 200)),
            lease=dt.timedelta(seconds=float(outbox.get("lease_seconds", 300))),
            max_attempts=int(outbox.get("max_attempts", 12)),
            base_url=str(config.get("PUBLIC_BASE_URL") or ""),
        )


@dataclass(frozen=True)
class Leased:
    """A message taken for delivery: what a sender needs, nothing bound to a session."""

    id: int
    channel: str
    target: str
    subject: str
    body: str
    payload: dict[str, Any]
    attempts: int


@dataclass
class Report:
    """What one pass did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0

    @property
    def total(self) -> int:
        """Messages attempted."""
        return self.sent + self.retried + self.dead


class DeliveryError(Exception):
    """A message could not be delivered this time (it will be retried)."""


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failed try: 30 s doubling, at most 6 hours."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


def lease_due(session: Session, now: dt.datetime, limit: int, lease: dt.timedelta) -> list[Leased]:
    """Take up to `limit` due messages for `lease`, in one UPDATE … RETURNING.

    On PostgreSQL the candidates are chosen `FOR UPDATE SKIP LOCKED`, so two workers never
    take the same row; on SQLite the one writer does it. The UPDATE repeats the due conditions,
    so a row another worker leased in between is not taken twice.
    """
    due = (
        (OutboxMessage.status == "pending")
        & (OutboxMessage.next_attempt_at <= now)
        & ((OutboxMessage.leased_until.is_(None)) | (OutboxMessage.leased_until < now))
    )
    candidates = (
        select(OutboxMessage.id)
        .where(due)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(candidates.scalar_subquery()), due)
        .values(leased_until=now + lease)
        .returning(
            OutboxMessage.id,
            OutboxMessage.channel,
            OutboxMessage.target,
            OutboxMessage.subject,
            OutboxMessage.body,
            OutboxMessage.payload,
            OutboxMessage.attempts,
        )
        .execution_options(synchronize_session=False)
    ).all()
    return sorted(
        (Leased(r[0], r[1], r[2], r[3], r[4], dict(r[5] or {}), r[6]) for r in rows),
        key=lambda m: m.id,
    )


#: Under every e-mail: who sent it, that a reply reaches nobody, where to change reminders.
EMAIL_FOOTER = "——\n本邮件由“放管服”工作考核系统自动发送，请勿直接回复。"
PREFERENCES_PATH = "/me/notifications"


def link_text(link: str | None, base_url: str) -> str:
    """The message's link as a reader outside the portal can use it: the full address, or
    (PUBLIC_BASE_URL not set) the page's path with what to do."""
    if not link:
        return ""
    if base_url:
        return f"查看详情：{base_url.rstrip('/')}{link}"
    return f"查看详情：请登录考核系统后打开 {link}"


def digest_entry(entry: Mapping[str, Any], link: str = "") -> str:
    """One message of a daily digest: 【kind】title, its body, and (`link`, as `link_text`
    writes it) where to open it."""
    text = f"【{entry.get('label', '')}】{entry.get('title', '')}\n{entry.get('body', '')}"
    return f"{text}\n{link}" if link else text


def message_text(message: Leased, base_url: str = "") -> str:
    """The message's text: its body; a digest's, each message with its own link (a digest
    has no link of its own, and one without theirs left its reader to search the inbox)."""
    entries = message.payload.get("entries")
    if not isinstance(entries, list) or not entries:
        return message.body
    return "\n\n".join(
        digest_entry(e, link_text(e.get("link"), base_url)) for e in entries if isinstance(e, dict)
    )


def email_text(message: Leased, base_url: str = "") -> str:
    """The e-mail's text: the message, its link, and the footer."""
    parts = [message_text(message, base_url)]
    link = link_text(message.payload.get("link"), base_url)
    if link:
        parts.append(link)
    footer = EMAIL_FOOTER
    if base_url:
        footer += (
            f"\n提醒方式（站内消息、邮件、群机器人）：{base_url.rstrip('/')}{PREFERENCES_PATH}"
        )
    parts.append(footer)
    return "\n\n".join(parts)


def email_message(message: Leased, mail: MailSettings, base_url: str = "") -> EmailMessage:
    """The e-mail: UTF-8 subject and body (RFC 2047 / 8bit), a Message-ID stable per message."""
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = mail.sender
    email["To"] = message.target
    email["Date"] = formatdate(localtime=False)
    domain = mail.sender.rpartition("@")[2] or "localhost"
    email["Message-ID"] = f"<outbox-{message.id}@{domain}>"
    email["X-Notification-Id"] = str(message.id)
    email.set_content(email_text(message, base_url), charset="utf-8")
    return email


class Mailer:
    """One SMTP connection for a batch, opened at the first e-mail, reopened after a failure."""

    def __init__(self, settings: MailSettings, base_url: str = "") -> None:
        self.settings = settings
        self.base_url = base_url
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if not s.host:
            raise DeliveryError("未配置邮件服务器（SMTP_HOST）")
        smtp: smtplib.SMTP
        if s.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            if s.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
        if s.username:
            smtp.login(s.username, s.password)
        return smtp

    def send(self, message: Leased) -> None:
        """Send one e-mail; raise DeliveryError when the server refused or was unreachable."""
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            refused = self._smtp.send_message(email_message(message, self.settings, self.base_url))
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise DeliveryError(f"邮件发送失败：{exc}") from exc
        if refused:
            raise DeliveryError(f"邮件服务器拒收：{refused}")

    def close(self) -> None:
        """Close the connection (quietly: it may be dead already)."""
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None


def webhook_body(message: Leased, base_url: str = "") -> dict[str, Any]:
    """The JSON a 政务微信 or 钉钉 group robot takes (`msgtype: text`), with our own fields."""
    link = message.payload.get("link")
    shown = link_text(link, base_url)
    content = f"{message.subject}\n{message_text(message, base_url)}" + (
        f"\n{shown}" if shown else ""
    )
    return {
        "msgtype": "text",
        "text": {"content": content},
        "notification": {
            "id": message.id,
            "kind": message.payload.get("kind"),
            "title": message.payload.get("title"),
            "body": message.body,
            "link": link,
        },
    }


def post_webhook(message: Leased, timeout: float, base_url: str = "") -> None:
    """POST the message as JSON; a non-2xx answer, or a robot's `errcode` ≠ 0, is a failure."""
    data = json.dumps(webhook_body(message, base_url), ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        message.target,
        data=data,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "X-Notification-Id": str(message.id),
            "User-Agent": "fangguanfu-notify/1",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = response.read(65536)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"Webhook 返回 HTTP {exc.code}") from exc
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"Webhook 无法连接：{exc}") from exc
    try:
        parsed = json.loads(answer) if answer else None
    except ValueError:
        return
    if isinstance(parsed, dict) and parsed.get("errcode") not in (None, 0):
        raise DeliveryError(f"Webhook 返回错误：{parsed.get('errcode')} {parsed.get('errmsg')}")


Sender = Callable[[Leased], None]


def deliver_due(
    factory: sessionmaker[Session],
    now: dt.datetime | None = None,
    *,
    settings: DeliverySettings | None = None,
    max_batches: int = 50,
    clock: Callable[[], dt.datetime] = utcnow,
) -> Report:
    """Deliver every due message, batch by batch; return what was sent, retried, given up."""
    if settings is None:
        from flask import current_app  # the worker and the CLI run inside the app

        settings = DeliverySettings.from_config(current_app.config)
    if now is not None:  # a pass "as of" a moment (tests, catch-up): its times are that moment
        fixed = now
        clock = lambda: fixed  # noqa: E731
    report = Report()
    mailer = Mailer(settings.mail, settings.base_url)
    try:
        for _ in range(max_batches):
            moment = clock()
            with unit_of_work(factory) as session:
                batch = lease_due(session, moment, settings.batch, settings.lease)
            if not batch:
                break
            outcomes = []
            for message in batch:
                started = clock()
                error: str | None = None
                try:
                    if message.channel == "email":
                        mailer.send(message)
                    elif message.channel == "webhook":
                        post_webhook(message, settings.webhook_timeout, settings.base_url)
                    else:
                        raise DeliveryError(f"未知渠道 {message.channel}")
                except DeliveryError as exc:
                    error = str(exc)[:MAX_ERROR]
                outcomes.append((message, started, clock(), error))
            _record(factory, outcomes, settings, report)
            if len(batch) < settings.batch:
                break
    finally:
        mailer.close()
    return report


def _record(
    factory: sessionmaker[Session],
    outcomes: list[tuple[Leased, dt.datetime, dt.datetime, str | None]],
    settings: DeliverySettings,
    report: Report,
) -> None:
    with unit_of_work(factory) as session:
        session.add_all(
            [
                DeliveryAttempt(outbox_id=m.id, started_at=s, finished_at=f, ok=e is None, error=e)
                for m, s, f, e in outcomes
            ]
        )
        sent = [m.id for m, _s, _f, e in outcomes if e is None]
        if sent:
            finished = max(f for _m, _s, f, _e in outcomes)
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(sent))
                .values(
                    status="sent",
                    sent_at=finished,
                    leased_until=None,
                    last_error=None,
                    attempts=OutboxMessage.attempts + 1,
                )
            )
            report.sent += len(sent)
        for message, _started, finished, error in outcomes:
            if error is None:
                continue
            attempts = message.attempts + 1
            dead = attempts >= settings.max_attempts
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message.id)
                .values(
                    status="dead" if dead else "pending",
                    attempts=attempts,
                    next_attempt_at=finished + backoff(attempts),
                    leased_until=None,
                    last_error=error,
                )
            )
            if dead:
                report.dead += 1
            else:
                report.retried += 1
