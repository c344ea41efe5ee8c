"""Jobs over the API: 202 and the row, progress and the download once a worker ran it.

The worker's part is `workflow.jobs.execute` called here with the app's runners (the real
consumer is tests/integration/test_job_worker.py); every answer is checked against the
OpenAPI document (`API_CHECK_RESPONSES`).
"""

from __future__ import annotations

import io

import openpyxl
from flask import Flask
from flask.testing import FlaskClient

from tests.api.conftest import Cast, error_code
from tests.factories import set_result_document_no
from web.tasks import runners_for
from workflow import jobs


def _run(app: Flask, job_id: int) -> str | None:
    return jobs.execute(
        app.extensions["sessionmaker"], app.extensions["store"], job_id, runners_for(app)
    )


def test_export_job_from_request_to_download(app: Flask, client: FlaskClient, cast: Cast) -> None:
    aid = cast.world.assessment.id
    reviewer = cast.headers("reviewer")
    started = client.post(
        "/api/v1/jobs", json={"kind": "export", "table": "matrix", "assessment_id": aid},
        headers=reviewer,
    )  # fmt: skip
    assert started.status_code == 202, started.get_json()
    body = started.get_json()
    assert body["status"] == "queued" and started.headers["Location"] == body["url"]
    queued = client.get(body["url"], headers=reviewer).get_json()
    assert queued["progress"] == {"done": 0, "total": None, "percent": 0}
    assert queued["download_url"] is None and queued["kind_label"] == "导出表格：进度总览"
    early = client.get(f"/api/v1/jobs/{body['id']}/download", headers=reviewer)
    assert early.status_code == 409 and error_code(early) == "job_not_done"

    assert _run(app, body["id"]) == "done"
    done = client.get(body["url"], headers=reviewer).get_json()
    assert done["status"] == "done" and done["status_label"] == "已完成"
    assert done["progress"]["percent"] == 100 and done["filename"].endswith(".xlsx")
    download = client.get(done["download_url"], headers=reviewer)
    assert download.status_code == 200 and download.mimetype.endswith("spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(download.data)).active
    assert sheet is not None and sheet.max_row > 2  # the caption, headers and departments
    assert len(download.data) == done["size"]
    page = client.get("/api/v1/jobs?limit=1", headers=reviewer).get_json()
    assert page["next_cursor"] is None and len(page["jobs"]) == 1
    assert client.get("/api/v1/jobs?cursor=zzz", headers=reviewer).status_code == 400
    listed = client.get("/api/v1/jobs", headers=reviewer).get_json()["jobs"]
    assert [j["id"] for j in listed] == [body["id"]]


def test_the_same_request_twice_gives_the_unfinished_job(
    app: Flask, client: FlaskClient, cast: Cast
) -> None:
    aid = cast.world.assessment.id
    body = {"kind": "export", "table": "results", "assessment_id": aid}
    first = client.post("/api/v1/jobs", json=body, headers=cast.headers("reviewer"))
    again = client.post("/api/v1/jobs", json=body, headers=cast.headers("reviewer"))
    assert first.status_code == again.status_code == 202
    assert first.get_json()["existing"] is False and again.get_json()["existing"] is True
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    # Another person's request is their own job (they could not follow the reviewer's).
    other = client.post("/api/v1/jobs", json=body, headers=cast.headers("scorer")).get_json()
    assert other["id"] != first.get_json()["id"] and other["existing"] is False
    assert _run(app, first.get_json()["id"]) == "done"
    fresh = client.post("/api/v1/jobs", json=body, headers=cast.headers("reviewer")).get_json()
    assert fresh["existing"] is False and fresh["id"] not in (first.get_json()["id"], other["id"])
    reviewer = cast.headers("reviewer")
    newest = client.get("/api/v1/jobs?limit=1", headers=reviewer).get_json()
    assert [j["id"] for j in newest["jobs"]] == [fresh["id"]] and newest["next_cursor"]
    older = client.get(
        f"/api/v1/jobs?limit=1&cursor={newest['next_cursor']}", headers=reviewer
    ).get_json()
    assert [j["id"] for j in older["jobs"]] == [first.get_json()["id"]]
    assert older["next_cursor"] is None


def test_who_may_start_and_see_jobs(client: FlaskClient, cast: Cast) -> None:
    aid = cast.world.assessment.id
    refused = client.post(
        "/api/v1/jobs", json={"kind": "notices", "assessment_id": aid}, headers=cast.headers("own")
    )
    assert refused.status_code == 403 and error_code(refused) == "forbidden"
    audit = client.post(
        "/api/v1/jobs", json={"kind": "export", "table": "audit"}, headers=cast.headers("reviewer")
    )
    assert audit.status_code == 403
    mine = client.post(
        "/api/v1/jobs", json={"kind": "audit_verify"}, headers=cast.headers("auditor")
    ).get_json()
    other = client.get(f"/api/v1/jobs/{mine['id']}", headers=cast.headers("scorer"))
    assert other.status_code == 404 and error_code(other) == "job_not_found"
    assert (
        client.get(f"/api/v1/jobs/{mine['id']}", headers=cast.headers("admin")).status_code == 200
    )
    anonymous = client.post("/api/v1/jobs", json={"kind": "audit_verify"})
    assert anonymous.status_code == 401


def test_bad_requests_are_refused_in_chinese(client: FlaskClient, cast: Cast) -> None:
    admin = cast.headers("admin")
    cases = [
        ({"kind": "mine"}, 400, "unknown_kind"),
        ({"kind": "export", "table": "secrets"}, 400, "invalid_value"),
        ({"kind": "notices"}, 404, "assessment_not_found"),
        ({"kind": "archives", "assessment_id": 99999}, 404, "assessment_not_found"),
        ({"kind": "audit_verify", "table": "results"}, 422, "unknown_field"),
        ({"kind": "notices", "assessment_id": "1"}, 400, "invalid_type"),
        ({"kind": "export", "table": "audit", "extra": 1}, 400, "unknown_field"),
    ]
    for payload, status, code in cases:
        answer = client.post("/api/v1/jobs", json=payload, headers=admin)
        assert (answer.status_code, error_code(answer)) == (status, code), payload
    assert client.get("/api/v1/jobs", headers=admin).get_json()["jobs"] == []


def test_verification_job_reports_and_a_failure_reads_in_chinese(
    app: Flask, client: FlaskClient, cast: Cast
) -> None:
    admin = cast.headers("admin")
    job = client.post("/api/v1/jobs", json={"kind": "audit_verify"}, headers=admin).get_json()
    assert _run(app, job["id"]) == "done"
    done = client.get(job["url"], headers=admin).get_json()
    assert done["message"] == "审计链完整，数据核对一致"
    report = client.get(done["download_url"], headers=admin)
    assert report.mimetype == "text/plain" and "审计链完整" in report.get_data(as_text=True)
    # What refuses every notice of the year refuses the request, before any job is queued:
    # no results' document number, then a ranked notice before publication (409).
    aid = cast.world.assessment.id
    ask = {"kind": "notices", "assessment_id": aid}
    for number, code in (
        (None, "document_no_required"),
        ("蛟市职转办〔2019〕1号", "not_published"),
    ):
        set_result_document_no(app.extensions["sessionmaker"], aid, number)
        refused = client.post("/api/v1/jobs", json=ask, headers=admin)
        assert (refused.status_code, error_code(refused)) == (409, code)
    assert [j["kind"] for j in client.get("/api/v1/jobs", headers=admin).get_json()["jobs"]] == [
        "audit_verify"
    ]
    # Accepted (初步结果), then the number is cleared before a worker runs it: the job fails
    # and says why.
    failing = client.post(
        "/api/v1/jobs", json={**ask, "preliminary": True}, headers=admin
    ).get_json()
    set_result_document_no(app.extensions["sessionmaker"], aid, None)
    assert _run(app, failing["id"]) == "failed"
    failed = client.get(failing["url"], headers=admin).get_json()
    assert failed["status_label"] == "失败" and failed["download_url"] is None
    assert failed["error"] and "通知书" in failed["error"]


def test_archives_and_audit_export_jobs(app: Flask, client: FlaskClient, cast: Cast) -> None:
    import zipfile

    from tests.factories import add_evidence

    w = cast.world
    with app.extensions["sessionmaker"]() as session:
        item = w.item(session, w.dep_a, "1")
        add_evidence(session, app.extensions["store"], item, w.member_a)
        session.commit()
    admin = cast.headers("admin")
    job = client.post(
        "/api/v1/jobs", json={"kind": "archives", "assessment_id": w.assessment.id}, headers=admin
    ).get_json()
    assert _run(app, job["id"]) == "done"
    done = client.get(job["url"], headers=admin).get_json()
    assert done["progress"]["done"] == done["progress"]["total"] == 26
    data = client.get(done["download_url"], headers=admin).data
    outer = zipfile.ZipFile(io.BytesIO(data))
    names = outer.namelist()
    assert len(names) == 26 and all(n.endswith(".zip") for n in names)
    inner = zipfile.ZipFile(io.BytesIO(outer.read(f"{w.dep_a.name}.zip")))
    assert any(n.endswith(".pdf") for n in inner.namelist())  # dep A's evidence is in it
    audit = client.post(
        "/api/v1/jobs", json={"kind": "export", "table": "audit"}, headers=cast.headers("auditor")
    ).get_json()
    assert _run(app, audit["id"]) == "done"
    got = client.get(f"/api/v1/jobs/{audit['id']}/download", headers=cast.headers("auditor"))
    sheet = openpyxl.load_workbook(io.BytesIO(got.data)).active
    assert sheet is not None and sheet.max_row >= 3  # header + the upload + the job requests
