"""Finding 11.15: a letterhead with a DOCTYPE or entity declaration was accepted, and every
notice issued on it was a corrupt file. A declaration in any part is refused, and a notice is
rendered on the new base and reopened before the base is accepted."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

import docx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World
from workflow.models import NoticeBase
from workflow.notices import UnsupportedBaseDocument, set_notice_base

DOCTYPE = b'<!DOCTYPE w:document [<!ENTITY x "x">]>'


def letterhead() -> bytes:
    """Return a plain, valid letterhead."""
    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = "蛟河市人民政府推进职能转变协调小组办公室"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def with_declaration(part: str, declaration: bytes = DOCTYPE, encoding: str = "utf-8") -> bytes:
    """Return the letterhead with `declaration` inserted after the XML declaration of `part`."""
    source = zipfile.ZipFile(io.BytesIO(letterhead()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == part:
                head, _, rest = data.decode("utf-8").partition("?>")
                text = f"{head}?>{declaration.decode()}{rest}"
                if encoding != "utf-8":
                    text = text.replace('encoding="UTF-8"', f'encoding="{encoding.upper()}"')
                data = text.encode(encoding)
            target.writestr(info, data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("part", "declaration", "encoding"),
    [
        ("word/document.xml", DOCTYPE, "utf-8"),
        ("word/styles.xml", b"<!DOCTYPE w:styles>", "utf-8"),
        ("[Content_Types].xml", b'<!DOCTYPE Types [<!ENTITY e "e">]>', "utf-8"),
        ("docProps/core.xml", DOCTYPE, "utf-16-le"),
        ("_rels/.rels", b'<!ENTITY e SYSTEM "file:///etc/passwd">', "utf-8"),
    ],
)
def test_letterhead_with_doctype_or_entity_in_any_part_is_refused(
    session: Session,
    store: LocalStore,
    world: World,
    part: str,
    declaration: bytes,
    encoding: str,
) -> None:
    content = with_declaration(part, declaration, encoding)
    with pytest.raises(UnsupportedBaseDocument) as err:
        set_notice_base(session, store, world.assessment, io.BytesIO(content), "信头.docx", None)
    assert err.value.status == 415 and part in err.value.message
    assert session.scalar(select(func.count()).select_from(NoticeBase)) == 0


def test_letterhead_whose_rendered_notice_does_not_reopen_is_refused(
    session: Session, store: LocalStore, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = letterhead()
    set_notice_base(session, store, world.assessment, io.BytesIO(content), "信头.docx", None)
    # A renderer whose output Word cannot open (as a corrupt base would make it).
    monkeypatch.setattr("workflow.notices.render_notice", lambda data, base: b"PK\x03\x04broken")
    with pytest.raises(UnsupportedBaseDocument) as err:
        set_notice_base(session, store, world.assessment, io.BytesIO(content), "信头.docx", None)
    assert err.value.code == "docx_render_failed"


def test_portal_upload_of_a_doctype_letterhead_is_a_415_with_the_reason(
    app: Flask, login: Callable[[str], FlaskClient]
) -> None:
    admin = login("admin")
    data = {"file": (io.BytesIO(with_declaration("word/document.xml")), "信头.docx")}
    response = admin.post("/admin/assessment/letterhead", data=data)
    assert response.status_code == 415
    assert "DOCTYPE" in response.get_data(as_text=True)
