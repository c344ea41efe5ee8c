"""/healthz, /readyz, the admins' status page and `flask health`, on the app."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, text

from tests.web.conftest import text as page_text
from web.tasks import beat, get_queue, last_beat
from workflow.models import CalendarOverride, OutboxMessage, User

Login = Callable[[str], FlaskClient]


def test_liveness_and_readiness_need_no_sign_in_and_say_only_statuses(app: Flask) -> None:
    """/healthz answers; /readyz is degraded until a worker beats (200 both times), then ok;
    neither names an address, a path or an error, and neither is cached."""
    # This year's and next year's holidays known, whatever the holiday package knows today.
    with app.extensions["sessionmaker"]() as session:
        for year in (dt.date.today().year, dt.date.today().year + 1):
            session.add(CalendarOverride(day=dt.date(year, 1, 1), is_workday=False, reason="元旦"))
        session.commit()
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    first = client.get("/readyz")
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    body = first.get_json()
    assert body["status"] == "degraded" and body["checks"]["queue"] == {"status": "degraded"}
    assert body["checks"]["audit"] == {"status": "unknown"}
    assert last_beat(app) is None
    beat(get_queue(app).huey)
    assert last_beat(app) is not None
    after = client.get("/readyz").get_json()
    assert after["status"] == "ok" and after["checks"]["queue"]["status"] == "ok"
    raw = client.get("/readyz").get_data(as_text=True)
    for secret in (app.config["INSTANCE_DIR"], "postgres", "sqlite", "127.0.0.1"):
        assert secret not in raw


def test_readiness_is_503_when_the_schema_is_behind_the_code(app: Flask, engine: Engine) -> None:
    """A deploy that skipped `init`: /readyz says down with 503, `flask health` exits 1, and
    the admins' page names both revisions and the command in Chinese."""
    with engine.begin() as conn:
        current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = '0001_initial'"))
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["checks"]["schema"] == {"status": "down"}
        result = app.test_cli_runner().invoke(args=["health"])
        assert result.exit_code == 1
        assert "数据库结构版本：故障" in result.output and current in result.output
        assert "（flask --app wsgi init）" in result.output
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})
    assert app.test_client().get("/readyz").status_code == 200


def test_the_status_page_is_for_admins_in_their_language(app: Flask, login: Login) -> None:
    """The admins' 系统状态 page: each check in words with what to do; others may not see it."""
    admin = login("admin")
    html = page_text(admin.get("/admin/status"))
    for words in ("系统状态", "数据库", "已是最新版本", "文件存储", "需要处理",
                  "尚未收到后台任务进程的运行信号", "<code>flask --app wsgi worker</code>",
                  "每晚审计校验", "尚未运行过审计校验"):  # fmt: skip
        assert words in html, words
    assert 'href="/admin/status"' in html  # in the menu
    assert login("reviewer").get("/admin/status").status_code == 403
    admin.post("/language", data={"lang": "en", "next": "/admin/status"})
    english = page_text(admin.get("/admin/status"))
    for words in ("System status", "Database", "Needs attention", "background worker"):
        assert words in english, words


def test_the_worker_healthcheck_fails_until_a_worker_beats(app: Flask) -> None:
    """`flask health --worker` (the compose worker's healthcheck): 1 without a heartbeat, 0
    after one; without --worker a missing worker does not fail the web's check."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["health", "--worker"]).exit_code == 1
    assert runner.invoke(args=["health"]).exit_code == 0
    beat(get_queue(app).huey)
    result = runner.invoke(args=["health", "--worker"])
    assert result.exit_code == 0, result.output
    assert "后台任务：正常" in result.output


def test_the_status_page_counts_waiting_messages_in_english(app: Flask, login: Login) -> None:
    """The outbox's line read "1 messages waiting to be sent"."""
    admin = login("admin")
    admin.set_cookie("lang", "en")
    with app.extensions["sessionmaker"]() as session:
        user = session.scalars(select(User).where(User.username == "admin")).one()
        for count, words in ((1, "1 message waiting to be sent"), (2, "2 messages waiting")):
            session.add(
                OutboxMessage(
                    user_id=user.id, channel="email", target="admin@example.org",
                    subject="提醒", body="正文",
                )
            )  # fmt: skip
            session.commit()
            assert words in page_text(admin.get("/admin/status")), count
