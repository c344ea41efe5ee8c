"""Findings 11.12 and 11.18: error pages, hostile text, JSON Lines and non-UTF-8 file names."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence
from tests.web.conftest import PASSWORD
from workflow.actions import return_item, submit_item
from workflow.archive import write_department_archive

Login = Callable[[str], FlaskClient]
CLOSED_PORT_DB = "postgresql+psycopg://app@127.0.0.1:5549/gone?connect_timeout=2"


def test_unknown_url_shows_chinese_not_found_not_werkzeug_english(app: Flask) -> None:
    client = app.test_client()
    response = client.get("/no/such/page")
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and "页面或事项不存在" in html and "Not Found" not in html
    client.set_cookie("lang", "en")
    english = client.get("/no/such/page").get_data(as_text=True)
    assert "Page or item not found" in english
    assert client.put("/login").status_code == 405
    assert "GET" in client.put("/login").headers["Allow"]


def test_error_page_during_database_outage_is_chinese_503_without_database(
    app: Flask, make_app: Callable[..., Flask]
) -> None:
    # A signed-in session from the working app, then the same secret on a database that is down.
    signed_in = app.test_client()
    signed_in.post("/login", data={"username": "member_a", "password": PASSWORD})
    cookie = signed_in.get_cookie("session")
    assert cookie is not None
    down = make_app(DATABASE_URL=CLOSED_PORT_DB)
    for lang, expected in (("zh", "数据库暂时不可用"), ("en", "The database is unavailable")):
        client = down.test_client()
        client.set_cookie("lang", lang)
        for path in ("/", "/portal/"):  # anonymous home queries; the portal loads the user
            if path == "/portal/":
                client.set_cookie("session", cookie.value)
            response = client.get(path)
            html = response.get_data(as_text=True)
            assert response.status_code == 503, (path, html[:300])
            assert expected in html and response.headers["Retry-After"] == "2"
            assert "Internal Server Error" not in html


def test_next_and_back_with_crlf_redirect_safely_after_commit(app: Flask) -> None:
    client = app.test_client()
    response = client.post(
        "/login",
        data={"username": "member_a", "password": PASSWORD, "next": "/portal/\r\nSet-Cookie: x=1"},
    )
    assert response.status_code == 302 and response.location == "/portal/"
    switched = client.post("/language", data={"lang": "en", "next": "/portal/\nX: 1"})
    assert switched.status_code == 303 and switched.location == "/"


def test_nul_and_control_characters_in_form_fields_are_a_400_not_a_database_error(
    app: Flask, login: Login
) -> None:
    anonymous = app.test_client()
    response = anonymous.post("/login", data={"username": "mem\x00ber_a", "password": "x"})
    assert response.status_code == 400
    assert "不允许的控制字符" in response.get_data(as_text=True)
    admin = login("admin")
    created = admin.post("/admin/users", data={"username": "new\x00user", "roles": "reviewer"})
    assert created.status_code == 400
    long_query = admin.get("/audit/?actor=" + "x" * 1_000_000)
    assert long_query.status_code == 400 and "过长" in long_query.get_data(as_text=True)


def test_audit_filter_with_year_one_or_9999_is_ignored_not_a_500(app: Flask, login: Login) -> None:
    auditor = login("auditor")
    for query in ("from=0001-01-01", "to=9999-12-31", "from=0001-01-01&to=0001-01-01"):
        assert auditor.get(f"/audit/?{query}").status_code == 200, query
        assert auditor.get(f"/audit/export.csv?{query}").status_code == 200, query


def _multipart_with_gbk_name() -> tuple[bytes, str]:
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="file"; filename="\xb2\xe2\xca\xd4.pdf"'
        b"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 test\r\n--XX--\r\n"
    )
    return body, "multipart/form-data; boundary=XX"


def test_non_utf8_file_name_gets_a_precise_error_not_file_required(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    item = world.item(session, world.dep_a, "1")
    body, content_type = _multipart_with_gbk_name()
    portal = login("member_a").post(
        f"/portal/items/{item.id}/evidence", data=body, content_type=content_type
    )
    assert portal.status_code == 400 and "UTF-8" in portal.get_data(as_text=True)
    token_response = login("member_a")  # the API: a bearer token of member_a
    from workflow.users import issue_token

    token, _row = issue_token(session, world.member_a, name="t", days=1)
    session.commit()
    api = token_response.post(
        f"/api/v1/items/{item.id}/evidence",
        data=body,
        content_type=content_type,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert api.status_code == 400, api.get_data(as_text=True)
    assert api.get_json()["error"]["code"] == "filename_not_utf8"


def test_jsonl_exports_escape_u2028_and_u2029(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item = world.item(session, world.dep_a, "1")
    add_evidence(session, store, item, world.member_a)
    submit_item(session, item.id, world.member_a, item.version)
    reason = "第一行\u2028第二行\u2029第三段"
    return_item(session, item.id, world.reviewer, item.version, reason)
    session.commit()
    export = login("auditor").get(f"/audit/export.jsonl?item={item.id}").get_data(as_text=True)
    assert "\u2028" not in export and "\u2029" not in export and "\\u2028" in export
    records = [json.loads(line) for line in export.splitlines()]  # str.splitlines splits on both
    assert reason in [r["comment"] for r in records]
    out = io.BytesIO()
    write_department_archive(session, store, world.dep_a, out)
    with zipfile.ZipFile(out) as archive:
        events = archive.read("audit_events.jsonl").decode("utf-8")
    assert "\u2028" not in events
    assert reason in [json.loads(line)["comment"] for line in events.splitlines()]
