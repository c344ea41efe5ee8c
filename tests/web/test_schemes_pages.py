"""考核方案 in the portal: upload with errors by place, the form and its sums, Word import, diff."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import World
from tests.scheme_docx import build_docx
from tests.security.a11y_scan import a11y_problems
from tests.web.conftest import text
from workflow.models import StoredScheme
from workflow.scheme import SCHEMES_DIR
from workflow.schemes import import_shipped

TEXT_2018 = (SCHEMES_DIR / "jiaohe-2018.yaml").read_text("utf-8")


def stored(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(StoredScheme)) or 0


def fields(html: str) -> dict[str, str]:
    """The form's text fields and selected options (what a browser would post)."""
    out = {
        m.group(1): m.group(2).replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&")
        for m in re.finditer(r'<input type="(?:text|hidden)" name="([^"]+)" value="([^"]*)"', html)
    }
    for area in re.finditer(r'<textarea name="([^"]+)"[^>]*>([^<]*)</textarea>', html):
        out[area.group(1)] = area.group(2).replace("&#34;", '"').replace("&amp;", "&")
    for select_match in re.finditer(r'<select name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', select_match.group(2))
        first = re.search(r'<option value="([^"]*)"', select_match.group(2))
        out[select_match.group(1)] = (chosen or first).group(1) if (chosen or first) else ""
    for box in re.finditer(r'<input type="checkbox" name="([^"]+)" value="([^"]+)" checked>', html):
        out.setdefault(box.group(1), box.group(2))  # one kind per rule is enough here
    return out


def test_only_admins_see_the_library(login: Callable[[str], FlaskClient]) -> None:
    assert login("admin").get("/admin/schemes/").status_code == 200
    assert login("scorer").get("/admin/schemes/").status_code == 403


def test_an_upload_with_a_bad_sum_names_the_place_and_line_and_saves_nothing(
    login: Callable[[str], FlaskClient], session: Session
) -> None:
    admin = login("admin")
    bad = TEXT_2018.replace("{code: \"1.2\", title: 指定专人负责, max_points: 5}",
                            "{code: \"1.2\", title: 指定专人负责, max_points: 4}")  # fmt: skip
    response = admin.post(
        "/admin/schemes/upload",
        data={"file": (io.BytesIO(bad.encode()), "2018.yaml"), "csrf_token": ""},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    page = text(response)
    line = next(n for n, t in enumerate(bad.splitlines(), 1) if t == '      - code: "1"') + 2
    assert "各分项之和 9 ≠ 指标分值 10（指标 1）" in page
    assert "类别 1 · 指标 1 · 分值" in page and f'href="#line-{line}">{line}<' in page
    assert "<code>categories[0].indicators[0].max_points</code>" in page  # the file's key, too
    assert f'id="line-{line}" class="bad-line"' in page
    assert stored(session) == 0
    fixed = admin.post("/admin/schemes/upload", data={"source": TEXT_2018})
    assert fixed.status_code == 303 and stored(session) == 1


def test_a_yaml_syntax_error_is_named_in_chinese(
    login: Callable[[str], FlaskClient], session: Session
) -> None:
    """PyYAML says what is wrong in English (could not find expected ':'); the Chinese page
    said it so too. Each common problem is now in Chinese, anything else a general one, both
    at the place PyYAML gives."""
    admin = login("admin")
    lines = TEXT_2018.splitlines()
    cases = {
        "\n".join([*lines[:9], "issuer", "  - : : ["]): ("第 11 行第 5 列", "缺少冒号"),
        "code: x\ntitle: a: b\n": ("第 2 行第 9 列", "值中含冒号时请加引号"),
        "code: x\n\ttitle: y\n": ("第 2 行第 1 列", "含有制表符：请改用空格缩进"),
        "code: [x, y\n": ("第 2 行第 1 列", "方括号 [ ] 未闭合"),
        "- a\n- b\n": ("整个方案", "顶层必须是“键: 值”的映射"),
    }
    for source, (where, words) in cases.items():
        response = admin.post("/admin/schemes/upload", data={"source": source})
        assert response.status_code == 422, source
        table = re.search(r"<table.*?</table>", response.get_data(as_text=True), re.S)
        assert table is not None
        problem = re.sub(r"<[^>]+>", " ", table.group(0))
        assert where in problem and words in problem, (source, problem)
        assert not re.search(r"[A-Za-z]{3,}", problem.replace("YAML", "")), problem  # no English
    assert stored(session) == 0


def test_copy_edit_in_the_form_and_diff(
    login: Callable[[str], FlaskClient], session: Session, world: World
) -> None:
    saved = import_shipped(session)
    session.commit()
    real = saved[0].record
    admin = login("admin")
    form_page = admin.get(f"/admin/schemes/{real.id}/edit?copy=next")
    assert form_page.status_code == 200
    data = fields(text(form_page))
    assert data["code"] == "jiaohe-2019" and data["year"] == "2019" and data["document_no"] == ""
    assert 'data-in="c0.i1"' in text(form_page)  # the sums' wiring for scheme-form.js
    data["document_no"] = "蛟市职转办〔2019〕1号"
    data["c1.i1.p0.max_points"] = "2"  # 4.1: 3 → 2, so indicator 4 no longer adds up
    refused = admin.post("/admin/schemes/form", data=data)
    assert refused.status_code == 422
    page = text(refused)
    assert "各分项之和 4 ≠ 指标分值 5（指标 4）" in page
    assert re.search(r'name="c1\.i1\.p0\.max_points" value="2"', page)  # kept as typed
    assert "<code>categories" not in page  # the form names places in words, not file keys
    before = stored(session)
    assert before == 2
    data["c1.i1.p1.max_points"] = "3"  # 4.2: 2 → 3, the sum holds again
    checks = data["c0.i0.check_points"]
    data["c0.i0.check_points"] = checks + "\n是否有分管领导"  # a check point without its method
    refused = admin.post("/admin/schemes/form", data=data)
    assert refused.status_code == 422
    # The message is under its field and tied to it for a screen reader; the refused form is as
    # accessible as the pages the every-page scan opens (it is only reached by a POST).
    assert re.search(
        r'check_points" rows="3" aria-invalid="true" '
        r'aria-describedby="(error-c0\.i0\.check_points-1)">'
        r'[^<]*</textarea><span class="field-error" id="\1" role="alert">',
        text(refused),
    )
    assert a11y_problems(text(refused)) == []
    data["c0.i0.check_points"] = checks + "\n实地考核：是否有分管领导"
    ok = admin.post("/admin/schemes/form", data=data)
    assert ok.status_code == 303, text(ok)[:2000]
    assert stored(session) == 3
    new = session.execute(
        select(StoredScheme).where(StoredScheme.code == "jiaohe-2019")
    ).scalar_one()
    assert (new.year, new.origin, new.parsed["document_no"]) == (
        2019,
        "form",
        "蛟市职转办〔2019〕1号",
    )
    diff = text(admin.get(f"/admin/schemes/{new.id}/diff?against={real.id}"))
    assert "评分项新增 0 项、删除 0 项、调整分值 2 项。" in diff
    detail = admin.get(f"/admin/schemes/{new.id}")
    assert detail.status_code == 200 and "蛟市职转办〔2019〕1号" in text(detail)
    # A second copy for next year does not overwrite the first (an exploratory walk found it
    # replaced without a word): 409, named, nothing stored.
    second = fields(text(admin.get(f"/admin/schemes/{real.id}/edit?copy=next")))
    second["document_no"] = "蛟市职转办〔2019〕2号"
    clash = admin.post("/admin/schemes/form", data=second)
    assert clash.status_code == 409 and "方案 jiaohe-2019 已存在（第 1 版）" in text(clash)
    session.expire_all()
    assert session.get_one(StoredScheme, new.id).parsed["document_no"] == "蛟市职转办〔2019〕1号"
    assert stored(session) == 3
    # The frozen 2018 scheme edited in the form: a new version, the frozen one unchanged.
    again = fields(text(admin.get(f"/admin/schemes/{real.id}/edit")))
    again["title"] = "2018年度细则（更正）"
    assert admin.post("/admin/schemes/form", data=again).status_code == 303
    versions = session.execute(
        select(StoredScheme.version).where(StoredScheme.code == "jiaohe-2018")
    ).scalars()
    assert sorted(versions) == [1, 2]


def test_word_import_shows_the_draft_beside_the_document(
    login: Callable[[str], FlaskClient], session: Session
) -> None:
    admin = login("admin")
    response = admin.post(
        "/admin/schemes/import-docx",
        data={"file": (io.BytesIO(build_docx()), "细则.docx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    page = text(response)
    assert "文档原文" in page and "2018年度“放管服”工作考评分值构成" in page
    assert "指标 6 未载明考核依据" in page
    data = fields(page)
    assert data["c0.i0.p0.max_points"] == "5" and data["c5.i0.p1.max_points"] == "7"
    assert stored(session) == 0
    data["code"] = "jiaohe-2018-word"
    saved = admin.post("/admin/schemes/form", data=data)
    assert saved.status_code == 303, text(saved)[:3000]
    record = session.execute(select(StoredScheme)).scalar_one()
    assert (record.origin, record.code) == ("docx", "jiaohe-2018-word")
    assert len(record.parsed["departments"]) == 26
