"""Notifications: the daily reminders at scale, and outbox delivery against a bare smtplib loop.

Runs on PostgreSQL (BENCH_DATABASE_URL, default a `fgf_bench` database on 127.0.0.1, created
when missing and wiped).

- **reminders**: the 2018 scheme plus 1,000 synthetic departments × 10 items (INSERT … SELECT),
  one department user each, 5 reviewers, 3 verifiers and 3 scorers; a third of the items
  submitted; 自评提交截止 two working days away. `send_reminders` computes and writes every
  reminder (about 1,000 department reminders and the staff queues) in one transaction. Target:
  under 5 s.
- **delivery**: N outbox e-mails to a real SMTP server on loopback (aiosmtpd) through
  `deliver_due` (lease in one UPDATE … RETURNING, send over one connection, record every
  attempt) against a bare loop that builds the same messages and sends them with
  `smtplib.SMTP.send_message` over one connection. Ratio = bare seconds / ours; target ≥ 0.5.

    python -m bench.bench_notify [--repeat 3] [--messages 500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import smtplib
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_transitions import DEFAULT_URL, ensure_database  # noqa: E402
from bench.synthetic import add_departments  # noqa: E402
from tests.peers import smtp_server  # noqa: E402
from workflow.calendar import set_stage_deadline  # noqa: E402
from workflow.db import make_engine, make_sessionmaker  # noqa: E402
from workflow.delivery import (  # noqa: E402
    DeliverySettings,
    Leased,
    MailSettings,
    deliver_due,
    email_message,
)
from workflow.models import Notification, OutboxMessage, User, utcnow  # noqa: E402
from workflow.reminders import send_reminders  # noqa: E402
from workflow.scheme import SCHEMES_DIR, load_scheme  # noqa: E402
from workflow.setup import install_scheme  # noqa: E402
from workflow.users import create_user  # noqa: E402

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEPARTMENTS = 1000
TODAY = dt.date(2018, 9, 26)  # Wednesday: 27, 28 September are the two working days left
DUE = dt.date(2018, 9, 28)
#: A deadline reminder's e-mail as the reminders write it (workflow/reminders.py, outbox_row's
#: subject): the year named, 「N 项」, the deadline's working days counted with today's.
SAMPLE_SUBJECT = "【截止提醒】2018年度截止提醒：{} 项考核事项待提交"
SAMPLE_BODY = "尚有 7 项考核事项未提交（2018-09-28 截止，含今天剩余 3 个工作日），请按时提交。"


@dataclass
class Figures:
    """Seconds of one repeat."""

    reminders: float
    reminder_rows: int
    ours: float
    bare: float


def build_reminder_world(url: str, departments: int = DEPARTMENTS) -> None:
    """Wipe and fill: the scheme, `departments` × 10 items, one user per department, staff."""
    ensure_database(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with factory() as s:
        a = install_scheme(s, load_scheme(SCHEMES_DIR / "jiaohe-2018.yaml"))
        admin = create_user(s, "bench_admin", ["admin"])
        for n in range(5):
            create_user(s, f"bench_reviewer{n}", ["reviewer"])
        for n in range(3):
            create_user(s, f"bench_verifier{n}", ["verifier"])
            create_user(s, f"bench_scorer{n}", ["scorer"])
        set_stage_deadline(
            s, a, "submit", starts_on=dt.date(2018, 9, 1), due_on=DUE, working_days=None,
            actor=admin,
        )  # fmt: skip
        s.commit()
        aid = a.id
    with engine.begin() as conn:
        add_departments(conn, aid, departments)
        conn.execute(
            text(
                "INSERT INTO items (assessment_id, department_id, indicator_id, state, version, "
                "round, appeal_count, updated_at) "
                "SELECT :a, d.id, i.id, "
                "CASE WHEN (d.id + i.id) % 3 = 0 THEN 'submitted' ELSE 'draft' END, 1, 1, 0, now() "
                "FROM departments d CROSS JOIN indicators i "
                "WHERE d.assessment_id = :a AND i.assessment_id = :a AND d.position >= 1000"
            ),
            {"a": aid},
        )
        conn.execute(
            text(
                "INSERT INTO users (username, display_name, roles, unit_id, is_active, "
                "must_change_password, session_version, created_at) "
                "SELECT 'bench_member' || d.id, d.name, CAST('[\"department\"]' AS JSON), "
                "d.unit_id, "
                "true, false, 1, now() FROM departments d "
                "WHERE d.assessment_id = :a AND d.position >= 1000"
            ),
            {"a": aid},
        )
    engine.dispose()


def measure_reminders(url: str, departments: int = DEPARTMENTS) -> tuple[float, int]:
    """Seconds of one `send_reminders` over the world, and the notifications it wrote."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    now = dt.datetime.combine(TODAY, dt.time(9), SHANGHAI).astimezone(dt.UTC)
    start = time.perf_counter()
    report = send_reminders(factory, now=now)
    seconds = time.perf_counter() - start
    with factory() as s:
        written = s.scalar(select(func.count()).select_from(Notification)) or 0
    engine.dispose()
    assert report.notifications == written and written >= departments, (report, written)
    return seconds, written


def _fill_outbox(url: str, count: int) -> None:
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with factory() as s:
        s.execute(text("DELETE FROM delivery_attempts"))
        s.execute(text("DELETE FROM outbox"))
        user_id = s.scalars(select(User.id).order_by(User.id)).first()
        now = utcnow()
        s.add_all(
            [
                OutboxMessage(
                    user_id=user_id,
                    channel="email",
                    target=f"member{n}@jiaohe.example",
                    subject=SAMPLE_SUBJECT.format(n),
                    body=SAMPLE_BODY,
                    payload={"kind": "deadline_near", "link": "/portal/"},
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
                for n in range(count)
            ]
        )
        s.commit()
    engine.dispose()


def measure_delivery(url: str, count: int, ours_first: bool) -> tuple[float, float]:
    """Seconds of `deliver_due` for `count` e-mails and of the bare smtplib loop."""
    _fill_outbox(url, count)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with smtp_server() as (port, box):
        mail = MailSettings(host="127.0.0.1", port=port, sender="kaohe@jiaohe.example")
        payload = {"kind": "deadline_near", "link": "/portal/"}
        messages = [
            Leased(
                n,
                "email",
                f"member{n}@jiaohe.example",
                SAMPLE_SUBJECT.format(n),
                SAMPLE_BODY,
                payload,
                0,
            )
            for n in range(count)
        ]

        def bare() -> float:
            start = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                for m in messages:
                    smtp.send_message(email_message(m, mail))
            return time.perf_counter() - start

        def ours() -> float:
            start = time.perf_counter()
            report = deliver_due(factory, settings=DeliverySettings(mail=mail, batch=200))
            seconds = time.perf_counter() - start
            assert report.sent == count, report
            return seconds

        if ours_first:
            o, b = ours(), bare()
        else:
            b, o = bare(), ours()
        assert len(box.raw) == 2 * count
    engine.dispose()
    return o, b


def measure(repeat: int, count: int) -> list[Figures]:
    """Build once, then `repeat` rounds of reminders (rebuilt each time) and delivery."""
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    out = []
    for n in range(repeat):
        build_reminder_world(url)
        seconds, rows = measure_reminders(url)
        ours, bare = measure_delivery(url, count, ours_first=n % 2 == 0)
        out.append(Figures(seconds, rows, ours, bare))
    return out


def medians(figures: list[Figures]) -> Figures:
    """The median of each figure."""
    return Figures(
        statistics.median(f.reminders for f in figures),
        int(statistics.median(f.reminder_rows for f in figures)),
        statistics.median(f.ours for f in figures),
        statistics.median(f.bare for f in figures),
    )


def main() -> None:
    """Print the figures of one run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    m = medians(measure(args.repeat, args.messages))
    print(f"reminders: {m.reminder_rows} written in {m.reminders:.2f} s (target < 5 s)")
    print(
        f"delivery of {args.messages}: ours {m.ours:.2f} s, bare smtplib {m.bare:.2f} s, "
        f"ratio {m.bare / m.ours:.2f}× (target ≥ 0.5×)"
    )


if __name__ == "__main__":
    main()
