"""Transitions over HTTP: idempotency, stale versions, and bad bodies of every kind."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.api.conftest import Cast, error_code, pdf_upload
from tests.factories import add_evidence
from workflow.models import AuditEvent, IdempotencyRecord, Item


@pytest.fixture
def ready(app: Flask, session: Session, cast: Cast) -> Item:
    """Department A's item 1 in draft, with a file: ready to submit."""
    item = cast.world.item(session, cast.world.dep_a, "1")
    add_evidence(session, app.extensions["store"], item, cast.world.member_a)
    session.commit()
    return item


def submits(session: Session, item: Item) -> int:
    session.expire_all()
    return (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.item_id == item.id, AuditEvent.action == "submit")
        )
        or 0
    )


def post(client: FlaskClient, cast: Cast, item: Item, body: Any, **headers: str) -> Any:
    return client.post(
        f"/api/v1/items/{item.id}/transitions", json=body, headers=cast.headers("own", **headers)
    )


def test_same_key_twice_is_applied_once(
    client: FlaskClient, session: Session, cast: Cast, ready: Item
) -> None:
    body = {"action": "submit", "version": ready.version}
    first = post(client, cast, ready, body, **{"Idempotency-Key": "k-1"})
    second = post(client, cast, ready, body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 200 and second.status_code == 200
    assert first.get_json()["version"] == second.get_json()["version"]
    assert second.get_json()["state"] == "submitted"
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert submits(session, ready) == 1
    # The same key with another body is refused.
    reused = post(
        client, cast, ready, {**body, "comment": "不同的内容"}, **{"Idempotency-Key": "k-1"}
    )
    assert reused.status_code == 422 and error_code(reused) == "idempotency_key_reused"
    # Without a key, the replay is a stale version.
    stale = post(client, cast, ready, body)
    assert stale.status_code == 409 and error_code(stale) == "stale_version"
    assert submits(session, ready) == 1


def test_a_resubmission_after_a_return_needs_a_change_note(
    app: Flask, client: FlaskClient, session: Session, cast: Cast, ready: Item
) -> None:
    """422 in Chinese without the 修改说明, nothing changed; with it, the item detail shows the
    note and the files added and removed against the previous round."""
    assert (
        post(client, cast, ready, {"action": "submit", "version": ready.version}).status_code == 200
    )
    session.refresh(ready)
    first = client.get(f"/api/v1/items/{ready.id}", headers=cast.headers("reviewer")).get_json()
    assert first["round_changes"] is None
    old_file = first["evidence"][0]["id"]
    returned = client.post(
        f"/api/v1/items/{ready.id}/transitions",
        json={"action": "return", "version": first["version"], "comment": "请补充会议记录"},
        headers=cast.headers("reviewer"),
    )
    assert returned.status_code == 200
    version = returned.get_json()["version"]
    own = cast.headers("own")
    assert client.delete(f"/api/v1/evidence/{old_file}", headers=own).status_code == 204
    added = client.post(
        f"/api/v1/items/{ready.id}/evidence",
        headers=own,
        data=pdf_upload("会议记录.pdf", seed="minutes"),
        content_type="multipart/form-data",
    ).get_json()
    version = client.get(f"/api/v1/items/{ready.id}", headers=own).get_json()["version"]
    refused = post(client, cast, ready, {"action": "submit", "version": version})
    assert refused.status_code == 422 and error_code(refused) == "change_note_required"
    assert refused.get_json()["error"]["message"] == "退回后重新提交，请填写修改说明"
    assert submits(session, ready) == 1
    body = {"action": "submit", "version": version, "change_note": "已补充会议记录"}
    done = post(client, cast, ready, body)
    assert done.status_code == 200, done.get_json()
    assert submits(session, ready) == 2
    for who in ("reviewer", "own"):  # the answer and the item detail agree
        item = client.get(f"/api/v1/items/{ready.id}", headers=cast.headers(who)).get_json()
        changes = item["round_changes"]
        assert changes == done.get_json()["round_changes"]
        assert changes["round"] == 2 and changes["previous_round"] == 1
        assert changes["change_note"] == "已补充会议记录"
        assert changes["ended_by"] == "return" and changes["ended_reason"] == "请补充会议记录"
        assert [e["id"] for e in changes["added"]] == [added["id"]]
        assert [e["id"] for e in changes["removed"]] == [old_file]
        assert changes["added"][0]["filename"] == "会议记录.pdf"


def test_stale_version_is_409(client: FlaskClient, cast: Cast, ready: Item) -> None:
    response = post(client, cast, ready, {"action": "submit", "version": ready.version + 5})
    assert response.status_code == 409 and error_code(response) == "stale_version"


def test_state_does_not_allow_is_409(client: FlaskClient, cast: Cast, ready: Item) -> None:
    response = post(client, cast, ready, {"action": "appeal", "version": ready.version})
    assert response.status_code == 409 and error_code(response) == "invalid_state"


def test_concurrent_same_key_never_500(
    app: Flask, session: Session, cast: Cast, ready: Item
) -> None:
    """Racing requests with one key: one applies, the others replay; never a server error."""
    body = {"action": "submit", "version": ready.version}
    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            f"/api/v1/items/{ready.id}/transitions",
            json=body,
            headers=cast.headers("own", **{"Idempotency-Key": "race"}),
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(s in (200, 409) for s in statuses), statuses
    assert statuses.count(200) >= 1
    assert submits(session, ready) == 1
    assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1


BAD_BODIES: list[tuple[Any, int, str]] = [
    ({"action": "submit"}, 400, "version_required"),
    ({"action": "submit", "version": "1"}, 400, "version_required"),
    ({"action": "submit", "version": True}, 400, "version_required"),
    ({"action": "submit", "version": 1.0}, 400, "version_required"),
    ({"version": 1}, 400, "invalid_type"),
    ({"action": 5, "version": 1}, 400, "invalid_type"),
    ({"action": "submit", "version": 1, "state": "scored"}, 400, "unknown_field"),
    ({"action": "submit", "version": 1, "total": "100.00"}, 400, "unknown_field"),
    ({"action": "submit", "version": 1, "department_id": 2}, 400, "unknown_field"),
    ({"action": "submit", "version": 1, "comment": ["x"]}, 400, "invalid_type"),
    ({"action": "score", "version": 1, "scores": [5]}, 400, "invalid_type"),
    ({"action": "score", "version": 1, "scores": {"1.1": True}}, 400, "invalid_type"),
    ({"action": "score", "version": 1, "scores": {"1.1": None}}, 400, "invalid_type"),
    ({"action": "verify", "version": 1, "rulings": {"1.1": "yes"}}, 400, "invalid_type"),
    ({"action": "submit", "version": 1, "not_involved": "1.1"}, 400, "invalid_type"),
    ({"action": "submit", "version": 1, "not_involved": [1]}, 400, "invalid_type"),
    ({"action": "submit", "version": 1, "deductions": {"1.1": 3}}, 400, "invalid_type"),
    ({"action": "submit", "version": 1, "change_note": ["x"]}, 400, "invalid_type"),
    ({"action": "submit", "version": 1, "comment": "a\u0000b"}, 400, "malformed_json"),
    ({"action": "fly", "version": 1}, 422, "unknown_action"),
    ({"action": "submit", "version": 10**30}, 409, "stale_version"),
]


def test_bad_bodies(client: FlaskClient, session: Session, cast: Cast, ready: Item) -> None:
    """Wrong types, unknown fields (`state`, `total`, …): refused, nothing applied."""
    for body, status, code in BAD_BODIES:
        response = post(client, cast, ready, body)
        assert response.status_code == status, (body, response.get_json())
        assert error_code(response) == code, body
    assert submits(session, ready) == 0


MALFORMED: list[tuple[bytes, str, int]] = [
    (b'{"action": "submit", "version": 1', "application/json", 400),
    (b"", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b'"text"', "application/json", 400),
    (b'{"action": "submit", "version": NaN}', "application/json", 400),
    (b'{"action": "submit", "version": 1, "comment": "\xff\xfe"}', "application/json", 400),
    (b'{"comment": "\\ud800", "action": "submit", "version": 1}', "application/json", 400),
    (b'{"action": "submit", "version": 1}', "text/plain", 415),
    (b"action=submit&version=1", "application/x-www-form-urlencoded", 415),
    (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "application/json", 400),
    (b'{"a": ' + b"[" * 50 + b"]" * 50 + b"}", "application/json", 400),
    (b'{"v": "' + b"x" * (1024 * 1024 + 10) + b'"}', "application/json", 413),
    (b'{"v": ' + b"9" * 5000 + b"}", "application/json", 400),
]


def test_malformed_huge_nested(client: FlaskClient, cast: Cast, ready: Item) -> None:
    for data, content_type, status in MALFORMED:
        response = client.post(
            f"/api/v1/items/{ready.id}/transitions",
            data=data,
            content_type=content_type,
            headers=cast.headers("own"),
        )
        assert response.status_code == status, data[:60]
        error_code(response)


def test_huge_body_without_length_is_413(client: FlaskClient, cast: Cast, ready: Item) -> None:
    """A chunked body has no Content-Length; the cap holds while reading."""

    def chunks() -> Any:
        yield b'{"comment": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    response = client.post(
        f"/api/v1/items/{ready.id}/transitions",
        content_type="application/json",
        headers=cast.headers("own"),
        environ_overrides={
            "wsgi.input": _Stream(chunks()),
            "wsgi.input_terminated": True,
            "HTTP_TRANSFER_ENCODING": "chunked",
        },
    )
    assert response.status_code == 413 and error_code(response) == "request_too_large"


class _Stream:
    """A file-like over an iterator of chunks."""

    def __init__(self, chunks: Any) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def test_bad_idempotency_keys(client: FlaskClient, cast: Cast, ready: Item) -> None:
    body = {"action": "submit", "version": ready.version}
    for key in ("x" * 201, "中文", "a\tb"):
        response = post(client, cast, ready, body, **{"Idempotency-Key": key})
        assert response.status_code == 400 and error_code(response) == "bad_idempotency_key"


def test_english_messages(client: FlaskClient, cast: Cast, ready: Item) -> None:
    response = post(
        client, cast, ready, {"action": "submit", "version": 99}, **{"Accept-Language": "en"}
    )
    assert response.get_json()["error"]["message"].startswith("The item was changed")
    chinese = post(client, cast, ready, {"action": "submit", "version": 99})
    assert "版本" in chinese.get_json()["error"]["message"]


def test_upload_limits(app: Flask, client: FlaskClient, cast: Cast, ready: Item) -> None:
    path = f"/api/v1/items/{ready.id}/evidence"
    headers = cast.headers("own")
    assert app.config["MAX_CONTENT_LENGTH"] == 3 * 1024 * 1024  # MAX_UPLOAD_BYTES + 1 MB
    big = pdf_upload()
    big["file"] = (_io(b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024)), "big.pdf")
    too_big = client.post(path, data=big, content_type="multipart/form-data", headers=headers)
    assert too_big.status_code == 413 and error_code(too_big) == "file_too_large"
    # Below the request cap but above MAX_UPLOAD_BYTES: the ingest refuses it, also a 413.
    app.config["MAX_UPLOAD_BYTES"] = 1024
    small_cap = pdf_upload()
    small_cap["file"] = (_io(b"%PDF-1.4\n" + b"0" * 5000), "big.pdf")
    response = client.post(
        path, data=small_cap, content_type="multipart/form-data", headers=headers
    )
    assert response.status_code == 413 and error_code(response) == "file_too_large"
    app.config["MAX_UPLOAD_BYTES"] = 2 * 1024 * 1024
    exe = {"file": (_io(b"MZ\x90\x00" * 100), "setup.exe")}
    refused = client.post(path, data=exe, content_type="multipart/form-data", headers=headers)
    assert refused.status_code == 415 and error_code(refused) == "unsupported_file_type"
    fake = {"file": (_io(b"MZ\x90\x00" * 100), "report.pdf")}
    refused = client.post(path, data=fake, content_type="multipart/form-data", headers=headers)
    assert refused.status_code == 415
    missing = client.post(
        path, data={"note": "x"}, content_type="multipart/form-data", headers=headers
    )
    assert missing.status_code == 400 and error_code(missing) == "file_required"
    extra = client.post(  # a field the form does not declare is refused, as in a JSON body
        path, data={**pdf_upload(), "extra": "x"}, content_type="multipart/form-data",
        headers=headers,
    )  # fmt: skip
    assert extra.status_code == 400 and error_code(extra) == "unknown_field"
    assert "extra" in extra.get_json()["error"]["message"]
    garbage = client.post(
        path, data=b"garbage", content_type="multipart/form-data; boundary=x", headers=headers
    )
    assert garbage.status_code == 400
    as_json = client.post(path, json={"file": "x"}, headers=headers)
    assert as_json.status_code == 415
    unknown_point = client.post(
        path, data=pdf_upload(sub_item="9.9"), content_type="multipart/form-data", headers=headers
    )
    assert unknown_point.status_code == 422 and error_code(unknown_point) == "unknown_sub_item"
    bad_purpose = client.post(
        path, data=pdf_upload(purpose="other"), content_type="multipart/form-data", headers=headers
    )
    assert bad_purpose.status_code == 422


def test_upload_refusals_name_the_accepted_types_and_the_earlier_file(
    client: FlaskClient, cast: Cast, ready: Item
) -> None:
    path = f"/api/v1/items/{ready.id}/evidence"
    headers = cast.headers("own")

    def upload(name: str, *, language: str = "zh", **fields: str) -> Any:
        return client.post(
            path,
            data=pdf_upload(name, "dup", **fields),
            content_type="multipart/form-data",
            headers={**headers, "Accept-Language": language},
        )

    rar = upload("材料.rar")
    assert rar.status_code == 415 and error_code(rar) == "unsupported_file_type"
    message = rar.get_json()["error"]["message"]
    assert message.startswith("不支持的文件类型（.rar）。可上传的类型：.pdf .ofd .docx")
    assert ".zip" in message and ".7z" not in message
    english = upload("材料.7z", language="en").get_json()["error"]["message"]
    assert english.startswith("This file type is not accepted (.7z). Accepted types: .pdf")
    blank = upload("   .pdf")
    assert blank.status_code == 422 and error_code(blank) == "empty_filename"
    assert blank.get_json()["error"]["message"] == (
        "文件名为空（只有扩展名 .pdf），请重命名后重新上传"
    )

    assert upload("重复.pdf").status_code == 201
    again = upload("重复（2）.pdf")
    assert again.status_code == 409 and error_code(again) == "duplicate_evidence"
    assert again.get_json()["error"]["message"] == "该文件已上传（与“重复.pdf”内容相同）"
    english = upload("x.pdf", language="en").get_json()["error"]["message"]
    assert english == "This file was uploaded already (same content as “重复.pdf”)"
    assert upload("重复.pdf", sub_item="1.1").status_code == 201  # another scoring point


def _io(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def test_appeal_files_only_while_the_appeal_is_pending(
    client: FlaskClient, cast: Cast, ready: Item
) -> None:
    response = client.post(
        f"/api/v1/items/{ready.id}/evidence",
        data=pdf_upload("申诉材料.pdf", "appeal", purpose="appeal"),
        headers=cast.headers("own"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 409 and error_code(response) == "invalid_state"
    assert "申诉" in response.get_json()["error"]["message"]
