"""后台任务 pages: start a job where the work lives, follow its progress bar, download it.

The worker's part is `workflow.jobs.execute` with the app's runners (the real consumer is
tests/integration/test_job_worker.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from tests.factories import World, set_result_document_no
from tests.web.conftest import text
from web.tasks import runners_for
from workflow import jobs
from workflow.models import Assessment, Job

Login = Callable[[str], FlaskClient]
NUMBER = "蛟市职转办〔2019〕1号"


def _run(app: Flask, job_id: int) -> str | None:
    return jobs.execute(
        app.extensions["sessionmaker"], app.extensions["store"], job_id, runners_for(app)
    )


def test_start_follow_and_download_an_export(app: Flask, login: Login) -> None:
    admin = login("admin")
    matrix = text(admin.get("/progress/"))
    assert "在后台进行" in matrix and "导出进度总览" in matrix  # the buttons where exports live
    aid = re.search(r'name="assessment_id" value="(\d+)"', matrix)
    assert aid is not None
    started = admin.post(
        "/jobs", data={"kind": "export", "table": "matrix", "assessment_id": aid.group(1)}
    )
    assert started.status_code == 303
    page = admin.get(started.headers["Location"])
    html = text(page)
    job_id = int(started.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    assert "排队中" in html and '<progress max="100" value="0"' in html
    assert '<meta http-equiv="refresh" content="2">' in html  # it refreshes while queued

    assert _run(app, job_id) == "done"
    html = text(admin.get(f"/jobs/{job_id}"))
    assert "已完成" in html and 'value="100"' in html and "http-equiv" not in html
    assert f"/jobs/{job_id}/download" in html
    download = admin.get(f"/jobs/{job_id}/download")
    assert download.status_code == 200 and download.data[:2] == b"PK"
    # The file's size for people (it said 「645084 字节」).
    assert re.search(r'<span class="muted">\d+\.\d KB</span>', html) and "字节" not in html
    listing = text(admin.get("/jobs"))
    assert "导出表格：进度总览" in listing and "http-equiv" not in listing


def test_starting_the_same_job_twice_opens_the_first(app: Flask, login: Login) -> None:
    admin = login("admin")
    aid = re.search(r'name="assessment_id" value="(\d+)"', text(admin.get("/jobs")))
    assert aid is not None
    form = {"kind": "export", "table": "results", "assessment_id": aid.group(1)}
    first = admin.post("/jobs", data=form)
    again = admin.post("/jobs", data=form)  # a double click, or the button pressed again
    assert again.status_code == 303 and again.headers["Location"] == first.headers["Location"]
    html = text(admin.get(again.headers["Location"]))
    assert "尚未完成（排队中），未重复发起" in html
    job_id = int(first.headers["Location"].rsplit("/", 1)[-1])
    factory = app.extensions["sessionmaker"]
    taken = jobs.claim(factory, job_id)  # a worker took it: it reads the data as they are now
    assert taken is not None
    running = admin.post("/jobs", data=form, follow_redirects=True)
    assert "正在运行，未重复发起" in text(running) and "完成后重新发起" in text(running)
    with factory() as s:  # let the test's runner take it again from the queue
        s.execute(update(Job).where(Job.id == job_id).values(status="queued"))
        s.commit()
    assert _run(app, job_id) == "done"
    # Once it is done, the button starts a new run (the data may have changed since).
    later = admin.post("/jobs", data=form)
    assert later.headers["Location"] != first.headers["Location"]
    assert "已排队" in text(admin.get(later.headers["Location"]))


def test_a_failed_job_says_why_in_chinese(app: Flask, login: Login) -> None:
    admin = login("admin")
    factory = app.extensions["sessionmaker"]
    page = text(admin.get("/jobs"))
    aid = re.search(r'name="assessment_id" value="(\d+)"', page)
    assert aid is not None
    form = {"kind": "notices", "assessment_id": aid.group(1), "preliminary": "1"}
    # Without the results' document number the request is refused there and then: no job
    # queued that could only fail when a worker reaches it.
    refused = admin.post("/jobs", data=form)
    assert refused.status_code == 303 and refused.headers["Location"].endswith("/jobs")
    assert "尚未设置考核结果通知书的发文字号" in text(admin.get(refused.headers["Location"]))
    with factory() as s:
        assert s.scalars(select(Job)).all() == []
    # Set when asked for, cleared before a worker ran it: the job runs and fails, in Chinese.
    set_result_document_no(factory, int(aid.group(1)), NUMBER)
    started = admin.post("/jobs", data=form)
    job_id = int(started.headers["Location"].rsplit("/", 1)[-1])
    set_result_document_no(factory, int(aid.group(1)), None)
    assert _run(app, job_id) == "failed"
    html = text(admin.get(f"/jobs/{job_id}"))
    assert "任务失败" in html and "考核结果通知书" in html and "http-equiv" not in html
    assert f"/jobs/{job_id}/download" not in html
    assert "尚未设置考核结果通知书的发文字号" in text(admin.get("/jobs"))


def test_who_sees_the_pages(app: Flask, login: Login) -> None:
    assert login("member_a").get("/jobs").status_code in (302, 403, 404)
    reviewer = login("reviewer")
    assert reviewer.get("/jobs").status_code == 200
    refused = reviewer.post("/jobs", data={"kind": "archives", "assessment_id": "1"})
    assert refused.status_code == 303
    assert "无权运行此类后台任务" in text(reviewer.get(refused.headers["Location"]))
    admin = login("admin")
    admin_job = admin.post("/jobs", data={"kind": "audit_verify"})
    job_id = admin_job.headers["Location"].rsplit("/", 1)[-1]
    assert reviewer.get(f"/jobs/{job_id}").status_code == 404  # another's job
    assert reviewer.get(f"/jobs/{job_id}/download").status_code == 404


def test_an_audit_verification_that_fails_reads_as_not_passed(
    app: Flask, login: Login, session: Session, world: World, engine: Engine
) -> None:
    """The job ran, so it was 已完成 in green with a 100 % bar, and its line ended at a colon;
    a verification that found an edited record is 未通过, in red, saying what it found."""
    from workflow.models import AuditEvent

    first = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).first()
    assert first is not None
    session.commit()
    from tests.integration.test_audit import _tamper

    _tamper(engine, f"UPDATE audit_events SET comment = 'x' WHERE seq = {first.seq}")
    admin = login("admin")
    started = admin.post("/jobs", data={"kind": "audit_verify"})
    job_id = int(started.headers["Location"].rsplit("/", 1)[-1])
    assert _run(app, job_id) == "done"
    listed = text(admin.get("/jobs"))
    assert '<span class="job-status job-failed">未通过</span>' in listed
    page = text(admin.get(f"/jobs/{job_id}"))
    assert "审计校验未通过，已通知管理员：审计链校验失败" in page and "详见报告文件" in page
    assert f"/jobs/{job_id}/download" in page  # the report is there to read
    row = session.get_one(Job, job_id)
    session.refresh(row)
    assert (row.status, row.error_code) == ("done", "audit_failed")
    admin.set_cookie("lang", "en")  # what it found, in English: the nested phrases too
    english = text(admin.get(f"/jobs/{job_id}"))
    assert (
        "Audit verification failed, the administrators were told: Audit chain verification "
        f"failed: first bad event #{first.seq} (the event does not match its hash" in english
    )
    assert "审计校验未通过" not in english


def test_a_jobs_line_reads_in_the_language_of_whoever_reads_it(
    app: Flask, login: Login, session: Session
) -> None:
    """The worker writes the outcome once; the page shows it in the reader's language, and a
    row written before the msgids were kept is shown as it was written."""
    admin = login("admin")
    factory = app.extensions["sessionmaker"]
    page = text(admin.get("/jobs"))
    aid = re.search(r'name="assessment_id" value="(\d+)"', page)
    assert aid is not None
    export = admin.post(
        "/jobs", data={"kind": "export", "table": "matrix", "assessment_id": aid.group(1)}
    )
    export_id = int(export.headers["Location"].rsplit("/", 1)[-1])
    assert _run(app, export_id) == "done"
    set_result_document_no(factory, int(aid.group(1)), NUMBER)
    notices = admin.post(
        "/jobs", data={"kind": "notices", "assessment_id": aid.group(1), "preliminary": "1"}
    )
    notices_id = int(notices.headers["Location"].rsplit("/", 1)[-1])
    set_result_document_no(factory, int(aid.group(1)), None)
    assert _run(app, notices_id) == "failed"  # no document number: a refusal, kept as its msgid

    year = session.get_one(Assessment, int(aid.group(1))).year
    old = Job(kind="archives", params={}, status="running", message="正在归档：旧部门")
    session.add(old)
    session.commit()

    chinese = text(admin.get("/jobs"))
    assert "尚未设置考核结果通知书的发文字号，请管理员" in chinese
    assert "正在归档：旧部门" in chinese and "has not been set" not in chinese
    assert f"已导出{year}年度进度总览" in text(admin.get(f"/jobs/{export_id}"))

    admin.set_cookie("lang", "en")
    english = text(admin.get("/jobs"))
    assert "document number has not been set; an admin must enter" in english
    assert "尚未设置" not in english
    assert "正在归档：旧部门" in english  # an old row: as written
    shown = text(admin.get(f"/jobs/{export_id}"))
    assert f"Exported: Progress overview of {year}" in shown and "已导出" not in shown
    failed = text(admin.get(f"/jobs/{notices_id}"))
    assert "document number has not been set; an admin" in failed
    assert "尚未设置" not in failed


def test_a_crashed_job_says_what_happened_and_its_number_not_the_exception(
    app: Flask, login: Login, session: Session
) -> None:
    """It read 任务执行出错（OperationalError）: a class name, in both languages. By cause
    now (the database or the file store unavailable, or an unexpected error), with the job's
    number for the administrator; the exception stays in the worker's log."""
    from sqlalchemy.exc import OperationalError

    from storage.errors import StorageUnavailable

    causes: dict[str, Exception] = {
        "database_unavailable": OperationalError("SELECT 1", {}, Exception("server closed")),
        "storage_unavailable": StorageUnavailable("minio:9000 refused the connection"),
        "job_crashed": KeyError("assessment_idx"),
    }
    admin = login("admin")
    started: dict[str, int] = {}
    for code, exc in causes.items():
        job = admin.post("/jobs", data={"kind": "audit_verify"})
        job_id = int(job.headers["Location"].rsplit("/", 1)[-1])

        def broken(ctx: jobs.JobContext, out: object, exc: Exception = exc) -> jobs.Output:
            raise exc

        runners = {**runners_for(app), jobs.AUDIT_VERIFY: broken}
        sessionmaker = app.extensions["sessionmaker"]
        assert jobs.execute(sessionmaker, app.extensions["store"], job_id, runners) == "failed"
        started[code] = job_id
    session.expire_all()
    for code, job_id in started.items():
        assert session.get_one(Job, job_id).error_code == code
    chinese = {code: text(admin.get(f"/jobs/{job_id}")) for code, job_id in started.items()}
    db, store, crash = (started[c] for c in causes)
    assert (
        f"数据库暂时不可用，任务未能完成。请稍后重新发起；如仍不成功，请联系管理员并告知任务编号 "
        f"#{db}" in chinese["database_unavailable"]
    )
    assert "文件存储暂时不可用，任务未能完成。" in chinese["storage_unavailable"]
    assert (
        f"任务执行中发生意外错误，未能完成。请联系管理员并告知任务编号 #{crash}"
        in (chinese["job_crashed"])
    )
    admin.set_cookie("lang", "en")
    english = {code: text(admin.get(f"/jobs/{job_id}")) for code, job_id in started.items()}
    assert "The database was unavailable" in english["database_unavailable"]
    assert f"job number #{db}" in english["database_unavailable"]
    assert "The file storage was unavailable" in english["storage_unavailable"]
    assert f"job number #{store}" in english["storage_unavailable"]
    assert "An unexpected error stopped the job" in english["job_crashed"]
    assert f"job number #{crash}" in english["job_crashed"]
    for page in (*chinese.values(), *english.values()):
        for detail in ("OperationalError", "StorageUnavailable", "KeyError", "server closed",
                       "minio:9000", "assessment_idx", "任务执行出错"):  # fmt: skip
            assert detail not in page


def test_the_differences_in_the_audit_alert_read_in_english(
    app: Flask, login: Login, session: Session, world: World, engine: Engine
) -> None:
    """The alert of a failed verification listed each difference in plain Chinese, also in
    the English inbox: each is a phrase now (where, the field's label, the values), and the
    Chinese reads as before, as the report file and the CLI say it."""
    from tests.integration.test_audit import _tamper

    session.commit()
    _tamper(
        engine,
        f"UPDATE users SET is_active = false WHERE id = {world.member_b.id}",
        f"UPDATE items SET version = 9 WHERE id = {world.item(session, world.dep_a, '1').id}",
    )
    item_id = world.item(session, world.dep_a, "1").id
    admin = login("admin")
    started = admin.post("/jobs", data={"kind": "audit_verify"})
    job_id = int(started.headers["Location"].rsplit("/", 1)[-1])
    assert _run(app, job_id) == "done"
    chinese = text(admin.get("/me/messages"))
    user_line = (
        f"用户 #{world.member_b.id} user[{world.member_b.id}].is_active（用户账号 · 账号启用）："
        "现值 false，按审计记录应为 true"
    )
    assert user_line in chinese
    assert f"事项 #{item_id} version（版本号）：现值 9，按审计记录应为 1" in chinese
    admin.set_cookie("lang", "en")
    english = text(admin.get("/me/messages"))
    assert (
        f"User #{world.member_b.id} user[{world.member_b.id}].is_active (User account · Account "
        "enabled): current value false, according to the audit trail true"
    ) in english
    assert (
        f"Item #{item_id} version (Version): current value 9, according to the audit trail 1"
    ) in english
    assert "现值" not in english and "用户账号" not in english


def test_a_value_the_audit_alert_finds_missing_reads_none_in_english(
    app: Flask, login: Login, session: Session, engine: Engine
) -> None:
    """An account written outside the system has no value in the trail: the alert said 无 in
    Chinese and "None" (a Python word) in English; it says "none"."""
    import datetime as dt

    from tests.integration.test_audit import _tamper

    session.commit()
    _tamper(
        engine,
        "INSERT INTO users (username, display_name, roles, is_active, must_change_password, "
        "session_version, created_at) VALUES ('ghost', '', '[\"admin\"]', true, false, 1, "
        f"'{dt.datetime(2018, 12, 1).isoformat(sep=' ')}')",
    )
    admin = login("admin")
    started = admin.post("/jobs", data={"kind": "audit_verify"})
    assert _run(app, int(started.headers["Location"].rsplit("/", 1)[-1])) == "done"
    assert "（用户账号）：现值 {&#34;username&#34;: &#34;ghost&#34;}，按审计记录应为 无" in text(
        admin.get("/me/messages")
    )
    admin.set_cookie("lang", "en")
    english = text(admin.get("/me/messages"))
    assert "ghost&#34;}, according to the audit trail none" in english
    assert not re.search(r"\bNone\b", english)
