"""2018 → 示例 2019 in Chromium: a merge recorded in the portal, the new year created from the
示例 scheme, a merged unit's user signing in with the old account and seeing 2019's items, and
the merged unit's page showing its predecessors' years."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import World
from tests.web.browser import chromium, needs_chromium, screenshots, sign_in, watch
from workflow.models import Assessment, Unit, UnitName
from workflow.schemes import import_shipped

pytestmark = needs_chromium


def test_next_year_with_a_merge_in_the_browser(
    base_url: str, session: Session, world: World, tmp_path: Path
) -> None:
    import_shipped(session)  # the 示例 2019 scheme in the library
    session.commit()
    shots = screenshots(tmp_path)
    a_name, b_name = world.dep_a.name, world.dep_b.name
    problems: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="zh-CN")
        watch(page, problems)

        sign_in(page, base_url, "admin")
        page.goto(f"{base_url}/admin/units")
        page.select_option("select[name=kind]", "merge")
        page.select_option("select[name=from]", label=[a_name, b_name])
        page.fill("textarea[name=to]", "合并示例局")
        page.fill("input[name=effective_on]", "2019-01-01")
        page.fill("input[name=document_no]", "蛟市机编〔2019〕9号（示例）")
        page.fill("textarea[name=reason]", "示例：机构改革合并")
        page.click("#change button[type=submit]")
        page.wait_for_selector("text=已记录单位调整")
        page.screenshot(path=str(shots / "units.png"), full_page=True)

        page.goto(f"{base_url}/admin/new-year")
        page.select_option("select[name=scheme_id]", label=page.locator(
            "select[name=scheme_id] option", has_text="示例"
        ).first.inner_text())  # fmt: skip
        page.fill("input[name=year]", "2019")
        page.fill("input[name=result_document_no]", "蛟市职转办〔2019〕1号")
        due = {"submit": "2019-09-30", "review": "2019-10-31", "verify": "2019-11-29",
               "score": "2019-12-20"}  # fmt: skip
        for stage, day in due.items():
            page.fill(f"input[name=due_{stage}]", day)
        assert page.locator("td", has_text="合并示例局").count() >= 1
        assert page.locator("text=由").count() >= 1  # the lineage note of the merged unit
        page.screenshot(path=str(shots / "new-year.png"), full_page=True)
        page.click("form.form-stack button.primary")
        page.wait_for_selector("text=已创建2019年度考核")
        # On the new year's 考核日程, told to check the deadlines the form gave.
        assert page.url.endswith("/calendar"), page.url
        assert "下一步：请核对下表各阶段的截止日期" in page.locator("main").inner_text()
        assert "2019-12-20" in page.locator("#stage-score").inner_text()

        # The 2018 account of department A now works for the merged unit's 2019 items.
        sign_in(page, base_url, "member_a")
        page.goto(f"{base_url}/portal/")
        body = page.locator("main").inner_text()
        assert "合并示例局" in body and "2019" in body
        # The header names the unit the account belongs to now, not its 2018 name.
        assert "合并示例局" in page.locator(".user-roles").inner_text()
        assert page.locator("table.grid tbody tr").count() >= 10
        page.screenshot(path=str(shots / "portal-2019.png"), full_page=True)

        sign_in(page, base_url, "admin")
        merged = session.scalars(
            select(Unit.id).join(UnitName).where(UnitName.name == "合并示例局")
        ).one()
        page.goto(f"{base_url}/admin/units/{merged}")
        text = page.locator("main").inner_text()
        assert a_name in text and b_name in text  # its predecessors, named
        assert page.locator("svg").count() >= 1  # the year-over-year chart
        page.screenshot(path=str(shots / "unit-history.png"), full_page=True)
    session.expire_all()
    year = session.scalars(select(Assessment).where(Assessment.year == 2019)).one()
    assert year.result_document_no == "蛟市职转办〔2019〕1号"
    from workflow.calendar import stage_rows

    assert stage_rows(session, year)["submit"].due_on.isoformat() == "2019-09-30"
    assert not problems, problems
