"""Languages: Chinese by default, English on request; the English catalog is complete."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask_babel
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from storage.ingest import ACCEPTED_EXTENSIONS_TEXT
from storage.local import LocalStore
from tests.factories import World, add_evidence
from tests.unit.test_messages import ERROR_CLASSES
from tests.web.conftest import PASSWORD, text
from web.common import catalog
from web.portal.i18n import TRANSLATIONS
from workflow.actions import submit_item
from workflow.demo import demo_pdf
from workflow.schemes import import_shipped

ROOT = Path(__file__).resolve().parents[2]


def test_chinese_by_default_and_english_on_request(app: Flask) -> None:
    client = app.test_client()
    page = text(client.get("/login"))
    assert '<html lang="zh-CN">' in page and "用户登录" in page
    switched = client.post("/language", data={"lang": "en", "next": "/login"})
    assert switched.status_code == 303 and switched.location.endswith("/login")
    english = text(client.get("/login"))
    assert '<html lang="en">' in english and "Sign in" in english and "用户登录" not in english
    wrong = client.post("/login", data={"username": "member_a", "password": "wrong-password"})
    assert "Wrong username or password" in text(wrong)
    client.post("/login", data={"username": "member_a", "password": PASSWORD})
    portal = text(client.get("/portal/"))  # the choice survives signing in
    assert "My department's items" in portal and "Draft" in portal
    client.post("/language", data={"lang": "zh", "next": "//evil.example/"})
    assert "本部门考核事项" in text(client.get("/portal/"))


def test_refusals_are_shown_in_english_with_their_figures(
    app: Flask, session: Session, world: World
) -> None:
    """A domain refusal and a storage refusal, in the English portal and the Chinese one."""
    item = world.item(session, world.dep_a, "1")
    session.commit()
    client = app.test_client()
    client.post("/login", data={"username": "member_a", "password": PASSWORD})

    def upload(filename: str, sub_item: str = "") -> str:
        response = client.post(
            f"/portal/items/{item.id}/evidence",
            data={"files": (io.BytesIO(demo_pdf("x")), filename), "sub_item": sub_item},
            content_type="multipart/form-data",
        )
        assert response.status_code in (415, 422), response.status_code
        return text(response)

    assert "评分项 9.9 不属于本指标" in upload("a.pdf", "9.9")
    assert "不支持的文件类型（.exe）" in upload("a.exe")
    # The refusal names the accepted types, from the list ingest checks against.
    assert f"不支持的文件类型（.rar）。可上传的类型：{ACCEPTED_EXTENSIONS_TEXT}" in upload("a.rar")
    assert "文件名为空（只有扩展名 .pdf），请重命名后重新上传" in upload("   .pdf")
    client.post("/language", data={"lang": "en", "next": "/portal/"})
    assert "Scoring point 9.9 does not belong to this indicator" in upload("a.pdf", "9.9")
    assert "This file type is not accepted (.exe)" in upload("a.exe")
    assert f"(.7z). Accepted types: {ACCEPTED_EXTENSIONS_TEXT}" in upload("a.7z")
    assert "The file name is empty (only the extension .pdf)" in upload("   .pdf")


def test_the_upload_forms_texts_follow_the_language(
    app: Flask, session: Session, world: World
) -> None:
    """upload.js has no text of its own: the page gives it its texts, in the page's language."""
    script = (ROOT / "static" / "js" / "upload.js").read_text("utf-8")
    assert not re.search(r"[\u3000-\u9fff\uff00-\uffef]", script), "Chinese text in upload.js"
    item = world.item(session, world.dep_a, "1")
    session.commit()
    client = app.test_client()
    client.post("/login", data={"username": "member_a", "password": PASSWORD})
    chinese = text(client.get(f"/portal/items/{item.id}"))
    assert 'data-drop-text="将文件拖放到此处（可多个），或使用下方“选择文件”"' in chinese
    assert 'data-chosen-text="已选择：{names}"' in chinese
    assert 'data-progress-text="正在上传… {percent}%"' in chinese
    assert f"可上传的类型：{ACCEPTED_EXTENSIONS_TEXT}；单个文件不超过" in chinese
    assert "压缩包等" not in chinese
    client.post("/language", data={"lang": "en", "next": "/portal/"})
    english = text(client.get(f"/portal/items/{item.id}"))
    form = english[english.index('class="form-row upload-form"') :].split(">", 1)[0]
    assert 'data-drop-text="Drop files here (several at once), or use' in form
    assert 'data-chosen-text="Chosen: {names}"' in form
    assert 'data-name-separator=", "' in form
    assert 'data-progress-text="Uploading… {percent}%"' in form
    assert 'data-failed-text="The upload failed ({status}); please try again"' in form
    assert not re.search(r"[\u3000-\u9fff\uff00-\uffef]", form), form
    assert f"Accepted types: {ACCEPTED_EXTENSIONS_TEXT}; up to" in english


def test_counts_take_their_english_form(app: Flask, session: Session, world: World) -> None:
    """A page's count reads "1 file uploaded" and "2 files uploaded" (ngettext): it read
    "1 file(s) uploaded", on the flash, the department's list and the item page."""
    item = world.item(session, world.dep_a, "1")
    session.commit()
    client = app.test_client()
    client.set_cookie("lang", "en")
    client.post("/login", data={"username": "member_a", "password": PASSWORD})

    def upload(*names: str) -> str:
        files = [(io.BytesIO(demo_pdf(name)), name) for name in names]
        response = client.post(
            f"/portal/items/{item.id}/evidence",
            data={"files": files},
            content_type="multipart/form-data",
            follow_redirects=True,
        )
        assert response.status_code == 200
        return text(response)

    one = upload("a.pdf")
    assert "1 file uploaded" in one and "1 evidence file uploaded: submit once" in one
    assert "1 file uploaded: submit once" in text(client.get("/portal/"))
    two = upload("b.pdf", "c.pdf")
    assert "2 files uploaded" in two and "3 evidence files uploaded: submit once" in two
    assert "3 files uploaded: submit once" in text(client.get("/portal/"))
    for page in (one, two):
        assert "(s)" not in page


def test_no_english_text_counts_with_s_in_brackets() -> None:
    """ "file(s)", "day(s)": a count takes its own form (ngettext in pages, `Np_` for texts
    kept and read later), and a text with two counts counts each on its own."""
    with (TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale="en")
    found = [
        m.id
        for m in catalog
        if m.id and any("(s)" in s for s in ([m.string] if isinstance(m.string, str) else m.string))
    ]
    assert not found, found


#: A noun English inflects, in its plural (points are left out: a score has two decimals,
#: "1.00 points", and a full mark or a deduction reads "full marks 2", "deduction per task").
COUNTED_NOUN = re.compile(
    r"%\((?P<name>\w+)\)s(?: [\w-]+){0,2}? (?:appeals|cells|characters|days|departments|"
    r"differences|documents|entries|events|files|hours|items|messages|minutes|notices|people|"
    r"periods|problems|proofs|records|reports|rows|seconds|stages|tasks|times|users|versions)\b"
)
#: Figures that are never 1: limits (at most 200 characters) and words that are no count.
NEVER_ONE = {"cap", "limit", "max", "min", "where", "year"}
#: Texts whose count is never 1, and why.
COUNTS_ABOVE_ONE = {
    "任务完成前本页每 %(n)s 秒自动刷新。": "web.portal.jobs.REFRESH_SECONDS, 2",
    (
        "印发全部通知书、归档、导出等耗时的工作在后台进行，完成后在此下载。"
        "运行中的任务每 %(n)s 秒自动刷新。"
    ): "the same refresh, 2 s",
    "任务执行 %(attempts)s 次均中断（工作进程停止），已放弃；请重新发起": "MAX_ATTEMPTS, 3",
    (
        "后台任务进程已 %(minutes)s 分钟无运行信号：提醒、消息推送和每晚审计校验都已停止，"
        "请检查后台任务进程"
    ): "health.QUEUE_STALE, over 3 minutes",
    "最近一次审计校验在 %(days)s 天前：每晚的校验没有运行，请检查后台任务进程": (
        "health.AUDIT_STALE, over 2 days"
    ),
    "“%(name)s”：%(reason)s。本次选择的 %(count)s 个文件均未上传，请更换或去掉该文件后重新上传": (
        "said only of an upload of several files"
    ),
    "符合筛选条件的事项共 %(count)s 个，批量办理一次最多 %(limit)s 个，请缩小筛选范围后分批办理": (
        "more than the limit"
    ),
    "输入内容过长（每项最多 %(n)s 个字符）": "a limit",
}


def test_no_english_count_keeps_its_plural_for_one() -> None:
    """ "1 working days left", "Marked 1 messages as read", "1 people": a text whose count
    can be 1 is a plural entry (ngettext in pages, `Np_` for texts kept and read later) with a
    form for one, or names its figures without a noun to agree ("items: 1; events: 3")."""
    with (TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale="en")
    fixed = [
        (m.id, found.group(0))
        for m in catalog
        if m.id and isinstance(m.id, str) and m.id not in COUNTS_ABOVE_ONE
        for found in COUNTED_NOUN.finditer(m.string)
        if found["name"] not in NEVER_ONE
    ]
    assert not fixed, fixed
    same = [m.id[0] for m in catalog if isinstance(m.id, tuple) and len(set(m.string)) < 2]
    assert not same, same  # a plural entry whose one form is its many
    assert set(COUNTS_ABOVE_ONE) <= {m.id for m in catalog}  # none stale


def test_language_switch_keeps_to_local_pages(app: Flask) -> None:
    response = app.test_client().post("/language", data={"lang": "en", "next": "//evil.example/"})
    assert response.location == "/"


def _key(text: Any) -> Any:
    """A catalog's msgid or msgstr, a plural entry's as a tuple (read_mo gives lists)."""
    return tuple(text) if isinstance(text, list | tuple) else text


def test_english_catalog_is_complete_and_compiled(login: Callable[[str], FlaskClient]) -> None:
    po_path = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as f:
        catalog = read_po(f, locale="en")
    translated = {_key(m.id): _key(m.string) for m in catalog if m.id}
    method_map = [
        *((f"{package}/**.py", "python") for package in ("web", "workflow", "storage", "scoring")),
        ("templates/**.html", "jinja2"),
    ]
    keywords: dict[str, Any] = {
        "_": None,
        "gettext": None,
        "ngettext": (1, 2),
        "N_": None,
        "Np_": (1, 1),
    }
    keywords.update(dict.fromkeys(ERROR_CLASSES))  # every refusal's template (make catalog)
    found = {
        _key(message)
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, keywords=keywords
        )
    }
    # A counted text (`Np_`) is a plural entry (a tuple): both English forms filled in.
    missing = sorted(
        str(m)
        for m in found
        if not (all(translated.get(m) or ("",)) if isinstance(m, tuple) else translated.get(m))
    )
    assert not missing, f"add to {po_path} and run pybabel compile: {missing}"
    with (po_path.parent / "messages.mo").open("rb") as f:
        compiled = {_key(m.id): _key(m.string) for m in read_mo(f) if m.id}
    assert compiled == translated, "messages.mo is stale: run pybabel compile"


def test_every_page_renders_in_english(
    app: Flask, session: Session, world: World, store: LocalStore
) -> None:
    item = world.item(session, world.dep_a, "1")
    add_evidence(session, store, item, world.member_a)
    submit_item(session, item.id, world.member_a, item.version)
    session.commit()
    pages = {
        "member_a": [
            "/portal/",
            f"/portal/items/{item.id}",
            "/portal/items/999999",
            "/portal/routine",
        ],
        "reviewer": [
            "/review/",
            f"/review/items/{item.id}",
            "/progress/",
            "/review/routine",
            "/review/routine/quota",
            f"/progress/departments/{world.dep_b.id}/notices",
        ],
        "auditor": ["/audit/", f"/audit/?item={item.id}", "/audit/verify"],
        "admin": [
            "/admin/users",
            f"/admin/users/{world.scorer.id}",
            "/admin/assessment",
            "/admin/departments",
            f"/admin/assessments/{world.assessment.id}/calendar",
        ],
    }
    for username, paths in pages.items():
        client = app.test_client()
        client.set_cookie("lang", "en")
        client.post("/login", data={"username": username, "password": PASSWORD})
        for path in paths:
            response = client.get(path)
            assert response.status_code == (404 if path.endswith("999999") else 200), path
            html = text(response)
            assert '<html lang="en">' in html and "Sign out" in html, path


def catalog_lookups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count Flask-Babel's catalog lookups from now on (each looks the request's language
    up again: tens of microseconds)."""
    seen = [0]
    lookup = flask_babel.Domain.get_translations

    def counted(domain: flask_babel.Domain) -> Any:
        seen[0] += 1
        return lookup(domain)

    monkeypatch.setattr(flask_babel.Domain, "get_translations", counted)
    return seen


def test_a_page_looks_its_catalog_up_once_not_once_per_text(
    login: Callable[[str], FlaskClient], session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheme form has over six hundred texts; each looked the language and the catalog up
    again, a third of the page's time (the hostile-input walk posts it hundreds of times)."""
    scheme_id = import_shipped(session)[0].record.id
    session.commit()
    admin = login("admin")
    for lang, save in (("zh", "检查并保存"), ("en", "Check and save")):
        admin.set_cookie("lang", lang)
        lookups = catalog_lookups(monkeypatch)
        page = admin.get(f"/admin/schemes/{scheme_id}/edit")
        assert page.status_code == 200 and f'<button type="submit">{save}</button>' in text(page)
        assert lookups[0] <= 10, lookups


def test_one_catalog_translates_as_flask_babel(app: Flask) -> None:
    """Inside `one_catalog()` the texts are Flask-Babel's own, in the language of the block."""
    cases: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("gettext", ("审计日志",), {}),
        ("gettext", ("%(label)s：%(value)s",), {"label": "甲", "value": 1}),
        ("ngettext", ("材料 %(n)s 份", "材料 %(n)s 份", 2), {"n": 2}),
        ("ngettext", ("材料 %(n)s 份", "材料 %(n)s 份", 1), {"n": 1}),
    ]

    def translated(module: Any) -> list[str]:
        return [getattr(module, name)(*args, **kw) for name, args, kw in cases]

    for lang, audit_log in (("zh", "审计日志"), ("en", "Audit log")):
        with app.test_request_context("/", headers={"Cookie": f"lang={lang}"}):
            with catalog.one_catalog():
                assert catalog.gettext("审计日志") == audit_log
                inside = translated(catalog)
            assert inside == translated(flask_babel) == translated(catalog)  # and outside it
    assert catalog.gettext("审计日志") == "审计日志"  # no request: the text as written
