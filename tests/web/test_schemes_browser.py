"""The scheme form in Chromium: sums checked as one types, Word draft beside the document."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import World
from tests.scheme_docx import build_docx
from tests.web.browser import (
    chromium,
    needs_chromium,
    screenshots,
    signed_in_page,
    watch,
)
from tests.web.conftest import PASSWORD
from workflow.models import StoredScheme
from workflow.schemes import import_shipped

pytestmark = needs_chromium


def test_sums_as_one_types_then_saved_as_next_year(
    base_url: str, session: Session, world: World, tmp_path: Path
) -> None:
    real = import_shipped(session)[0].record
    session.commit()
    docx = tmp_path / "2018年度考核细则.docx"
    docx.write_bytes(build_docx())
    shots = screenshots(tmp_path)
    problems: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        watch(page, problems)
        page.goto(f"{base_url}/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.form-stack button[type=submit]")
        page.goto(f"{base_url}/admin/schemes/")
        page.screenshot(path=str(shots / "schemes-list.png"), full_page=True)
        page.goto(f"{base_url}/admin/schemes/{real.id}/edit?copy=next")
        indicator_4 = page.locator('output[data-sum-for="c1.i1"]')
        assert indicator_4.inner_text() == "合计 5 = 5 相符"  # scheme-form.js runs under CSP
        page.fill('input[name="c1.i1.p0.max_points"]', "4")
        assert indicator_4.inner_text() == "合计 6 ≠ 5 与分值不符"
        assert "sum-bad" in (indicator_4.get_attribute("class") or "")
        page.screenshot(path=str(shots / "scheme-form-sum.png"), full_page=True)
        page.fill('input[name="c1.i1.p0.max_points"]', "2")
        page.fill('input[name="c1.i1.p1.max_points"]', "3")
        assert indicator_4.inner_text() == "合计 5 = 5 相符"
        page.fill('input[name="document_no"]', "蛟市职转办〔2019〕1号")
        page.click("form.scheme-form button[type=submit]")
        page.wait_for_selector("text=方案已保存（第 1 版）")

        page.goto(f"{base_url}/admin/schemes/")
        page.set_input_files("input[name=file][accept='.docx']", str(docx))
        page.click("button:has-text('读取草稿')")
        page.wait_for_selector("text=文档原文")
        assert page.locator(".document-text").is_visible()
        page.screenshot(path=str(shots / "scheme-word-draft.png"), full_page=True)
    assert problems == []
    session.expire_all()
    saved = session.execute(
        select(StoredScheme).where(StoredScheme.code == "jiaohe-2019")
    ).scalar_one()
    assert saved.year == 2019 and saved.parsed["document_no"] == "蛟市职转办〔2019〕1号"


def test_scheme_form_does_not_scroll_sideways_on_a_phone(
    base_url: str, session: Session, world: World, tmp_path: Path
) -> None:
    """At 390 px the editor's category box took the width of its indicator table (a fieldset
    is as wide as its content by default): the page scrolled sideways to 889 px. The table
    now scrolls inside the box; the page stays the phone's width, at 1366 px too."""
    real = import_shipped(session)[0].record
    session.commit()
    shots = screenshots(tmp_path)
    problems: list[str] = []
    with chromium() as browser:
        for width in (390, 1366):
            page = signed_in_page(browser, base_url, "admin", width, problems)
            page.goto(f"{base_url}/admin/schemes/{real.id}/edit")
            assert page.locator('output[data-sum-for="c1.i1"]').inner_text() == "合计 5 = 5 相符"
            assert page.evaluate("document.documentElement.scrollWidth") == width
            box = page.locator("fieldset.scheme-category").first.bounding_box()
            assert box is not None and box["x"] + box["width"] <= width, (width, box)
            page.screenshot(path=str(shots / f"scheme-form-{width}.png"), full_page=True)
            page.close()
    assert problems == []
