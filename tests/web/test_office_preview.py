"""Word evidence is previewed as its PDF rendition; without LibreOffice it is downloaded."""

from __future__ import annotations

import io
from collections.abc import Callable

import docx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from storage.convert import rendition_key
from storage.local import LocalStore
from tests.factories import World
from tests.web.conftest import text
from workflow.evidence import attach_evidence

Login = Callable[[str], FlaskClient]


def _word_evidence(session: Session, store: LocalStore, world: World) -> tuple[int, int, str]:
    document = docx.Document()
    document.add_paragraph("关于成立“放管服”工作领导小组的通知")
    data = io.BytesIO()
    document.save(data)
    data.seek(0)
    item = world.item(session, world.dep_a, "1")
    row = attach_evidence(session, store, item.id, world.member_a, data, "领导小组.docx",
                          max_size=10**7)  # fmt: skip
    session.commit()
    return item.id, row.id, row.sha256


def test_docx_is_previewed_as_pdf(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item_id, evidence_id, sha = _word_evidence(session, store, world)
    member = login("member_a")
    page = text(member.get(f"/portal/items/{item_id}"))
    assert f"preview={evidence_id}" in page
    shown = text(member.get(f"/portal/items/{item_id}?preview={evidence_id}"))
    assert f"/portal/evidence/{evidence_id}/preview" in shown and "以下载的原件为准" in shown
    response = member.get(f"/portal/evidence/{evidence_id}/preview")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    assert response.headers["Content-Security-Policy"].startswith("sandbox")
    assert store.exists(rendition_key(sha))  # cached beside the original, named by its hash
    # The reviewer previews the same cached rendition; another department gets a 404.
    assert login("reviewer").get(f"/portal/evidence/{evidence_id}/preview").data == response.data
    assert login("member_b").get(f"/portal/evidence/{evidence_id}/preview").status_code == 404


def test_without_libreoffice_word_files_are_offered_for_download(
    app: Flask,
    session: Session,
    world: World,
    store: LocalStore,
    login: Login,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    item_id, evidence_id, _ = _word_evidence(session, store, world)
    monkeypatch.setenv("PATH", str(tmp_path_factory.mktemp("no-office")))
    member = login("member_a")
    page = text(member.get(f"/portal/items/{item_id}"))
    assert f"preview={evidence_id}" not in page and "未安装 LibreOffice" in page
    assert f"/portal/evidence/{evidence_id}/download" in page
    refused = member.get(f"/portal/evidence/{evidence_id}/preview")
    assert refused.status_code == 503 and "LibreOffice" in text(refused)
