"""The portal in a real browser: Debian's Chromium driven by Playwright, CSRF and CSP on.

Screenshots go to $PORTAL_SCREENSHOTS, else to the test's tmp folder.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World
from tests.web.browser import (
    chromium,
    needs_chromium,
    screenshots,
    sign_in,
    signed_in_page,
    watch,
)
from tests.web.conftest import PASSWORD
from workflow.demo import demo_pdf
from workflow.models import Item

pytestmark = needs_chromium


def test_item_from_draft_to_scored_in_the_browser(
    base_url: str, session: Session, world: World, tmp_path: Path
) -> None:
    item_id = world.item(session, world.dep_a, "1").id
    pdf = tmp_path / "领导小组文件.pdf"
    pdf.write_bytes(demo_pdf("浏览器上传"))
    # PORTAL_SCREENSHOTS=tests/artifacts keeps them for a person to look at (CI may set it).
    shots = screenshots(tmp_path)
    problems: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        watch(page, problems)
        page.on("dialog", lambda dialog: dialog.accept())  # 核实通过 and 评分 ask first
        page.goto(f"{base_url}/login")
        page.fill("input[name=username]", "member_a")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.form-stack button[type=submit]")
        page.wait_for_url(f"{base_url}/portal/")
        assert page.locator("table.grid tbody tr").count() == 10
        page.screenshot(path=str(shots / "portal.png"), full_page=True)
        page.goto(f"{base_url}/portal/routine")
        page.fill("input[name=title]", "八月“放管服”信息")
        page.set_input_files("input[name=file]", str(pdf))
        page.click("form.form-stack button:has-text('报送')")
        page.wait_for_selector("text=已报送")
        page.screenshot(path=str(shots / "routine-department.png"), full_page=True)

        page.goto(f"{base_url}/portal/items/{item_id}")
        assert page.locator(".drop-zone").count() == 1  # upload.js runs under the CSP
        page.screenshot(path=str(shots / "item-draft.png"), full_page=True)
        page.set_input_files("input[name=files]", str(pdf))
        page.click("form.upload-form button[type=submit]")
        page.wait_for_selector("text=已上传 1 个文件")
        assert page.locator("text=领导小组文件.pdf").count() >= 1
        page.click("button:has-text('提交')")
        page.wait_for_selector(".state-submitted")
        page.screenshot(path=str(shots / "item-submitted.png"), full_page=True)
        page.click("button:has-text('退出')")
        page.wait_for_url(f"{base_url}/login")

        def sign_in(username: str, landing: str = "/review/") -> None:
            page.goto(f"{base_url}/login")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", PASSWORD)
            page.click("form.form-stack button[type=submit]")
            page.wait_for_url(f"{base_url}{landing}")

        sign_in("reviewer")
        page.screenshot(path=str(shots / "queue.png"), full_page=True)
        page.click(f"a[href='/review/items/{item_id}']")
        page.click("a.preview-link")
        page.wait_for_selector("iframe.preview-frame")
        page.wait_for_timeout(1000)  # let the PDF viewer paint for the screenshot
        page.screenshot(path=str(shots / "review-preview.png"), full_page=True)
        page.goto(f"{base_url}/review/items/{item_id}")  # the PDF viewer may hold focus
        page.click("button:has-text('初审通过')")
        page.wait_for_selector(".state-reviewed")
        page.click("button:has-text('退出')")

        sign_in("verifier")
        page.goto(f"{base_url}/review/items/{item_id}")
        page.click("button:has-text('核实通过')")
        page.wait_for_selector(".state-verified")
        page.click("button:has-text('退出')")

        sign_in("scorer")
        page.goto(f"{base_url}/review/items/{item_id}")
        page.fill("input[name='score-1.1']", "5")
        page.fill("input[name='score-1.2']", "4")
        page.fill("input[name='reason-1.2']", "专人负责文件未盖章")
        page.screenshot(path=str(shots / "scoring.png"), full_page=True)
        page.click("form.action-form button:has-text('评分')")
        page.wait_for_selector(".state-scored")
        assert page.locator("text=专人负责文件未盖章").count() >= 1
        page.screenshot(path=str(shots / "scored.png"), full_page=True)
        page.goto(f"{base_url}/progress/")
        page.screenshot(path=str(shots / "progress.png"), full_page=True)
        page.goto(f"{base_url}/review/routine/quota")
        assert page.locator("td.quota-missing").count() > 0
        page.screenshot(path=str(shots / "routine-quota.png"), full_page=True)
        page.click("button:has-text('退出')")

        sign_in("auditor", "/audit/")  # the auditor starts on the timeline
        page.goto(f"{base_url}/audit/?item={item_id}")
        assert page.locator("table.audit tbody tr").count() == 5
        page.screenshot(path=str(shots / "audit-item.png"), full_page=True)
        page.goto(f"{base_url}/audit/verify")
        assert page.locator("text=校验通过").count() == 1
        page.screenshot(path=str(shots / "audit-verify.png"), full_page=True)
        page.click("button:has-text('English')")
        page.wait_for_selector("text=Verified")
        page.goto(f"{base_url}/review/items/{item_id}")
        page.screenshot(path=str(shots / "review-item-en.png"), full_page=True)
    assert (shots / "portal.png").stat().st_size > 0
    assert not problems, problems  # no CSP violation or script error on the pages


MOBILE_SIZES = ((360, 640), (768, 1024))


def test_mobile_pages_do_not_scroll_sideways(
    base_url: str, session: Session, world: World, tmp_path: Path
) -> None:
    """Portal, item, routine and 公示 pages at phone and tablet sizes, with the menu toggle,
    which says whether the menu is open (aria-expanded) and closes on Escape. A page zoomed to
    200 % at 1366 px is 683 px wide: between the two sizes."""
    import datetime as dt

    from workflow.models import utcnow

    item_id = world.item(session, world.dep_a, "9").id
    now = utcnow()
    a = world.assessment
    a.published_at = a.appeal_opens_at = now - dt.timedelta(days=1)
    a.appeal_closes_at = now + dt.timedelta(days=3)
    session.commit()
    shots = screenshots(tmp_path)
    pages = {
        "portal": "/portal/",
        "item": f"/portal/items/{item_id}",
        "routine": "/portal/routine",
        "publication": "/publication/",
    }
    problems: list[str] = []
    with chromium() as browser:
        for width, height in MOBILE_SIZES:
            context = browser.new_context(
                viewport={"width": width, "height": height}, locale="zh-CN"
            )
            page = context.new_page()
            watch(page, problems)
            page.goto(f"{base_url}/login")
            page.fill("input[name=username]", "member_a")
            page.fill("input[name=password]", PASSWORD)
            page.click("form.form-stack button[type=submit]")
            page.wait_for_url(f"{base_url}/portal/")
            # The menu is collapsed behind its toggle; the toggle needs no script.
            logout = page.locator("button:has-text('退出')")
            toggle = page.locator("#nav-toggle")
            assert not logout.is_visible()
            assert toggle.get_attribute("aria-expanded") == "false"  # js/access.js
            page.click("label.nav-toggle-label")
            assert logout.is_visible()
            assert toggle.get_attribute("aria-expanded") == "true"  # a screen reader hears it
            box = logout.bounding_box()
            assert box is not None and box["x"] + box["width"] <= width
            page.screenshot(path=str(shots / f"mobile-{width}-menu.png"), full_page=True)
            page.keyboard.press("Escape")  # from the toggle, which has the focus after its click
            assert not logout.is_visible() and toggle.get_attribute("aria-expanded") == "false"
            for name, path in pages.items():
                page.goto(f"{base_url}{path}")
                scroll = page.evaluate("document.documentElement.scrollWidth")
                assert scroll <= width, (width, name, scroll)
                page.screenshot(path=str(shots / f"mobile-{width}-{name}.png"), full_page=True)
            context.close()
    assert (shots / "mobile-360-publication.png").stat().st_size > 0
    assert not problems, problems


#: The 剩余 (days left) cell of each stage row of the 考核日程 page: its box and its text.
LEFT_CELLS = """() => [...document.querySelectorAll('table.calendar tbody tr')].map(r => {
    const b = r.children[3].getBoundingClientRect();
    return {stage: r.id, left: b.left, right: b.right, text: r.children[3].innerText,
            label: getComputedStyle(r.children[3], '::before').content};
})"""


def test_calendar_page_shows_the_days_left_on_a_phone(
    base_url: str, session: Session, world: World, tmp_path: Path
) -> None:
    """考核日程 at 390 px: the table scrolled inside itself, its 剩余 column off-screen (from
    488 px on). On a phone each stage is a block, each cell under its column's name; on a
    desktop it is the table it was. Neither scrolls the page sideways."""
    from tests.web.test_deadlines import _deadlines

    _deadlines(session, world)  # 自评提交 and 初审 have deadlines: their 剩余 cells say so
    shots = screenshots(tmp_path)
    problems: list[str] = []
    with chromium() as browser:
        for width, stacked in ((390, True), (1366, False)):
            page = signed_in_page(browser, base_url, "admin", width, problems)
            page.goto(f"{base_url}/admin/assessments/{world.assessment.id}/calendar")
            assert page.evaluate("document.documentElement.scrollWidth") == width
            cells = page.evaluate(LEFT_CELLS)
            assert len(cells) == 6 and cells[0]["stage"] == "stage-submit"
            for cell in cells:
                assert 0 <= cell["left"] < cell["right"] <= width, (width, cell)
            assert cells[0]["text"].strip() and cells[1]["text"].strip(), cells
            # On the phone the cell says its column; the desktop's header row says it there.
            assert (cells[0]["label"] == '"剩余"') is stacked, cells[0]["label"]
            head = page.locator("table.calendar thead").bounding_box()
            assert head is not None and (head["height"] <= 1) is stacked, head
            page.screenshot(path=str(shots / f"calendar-{width}.png"), full_page=True)
            page.close()
    assert not problems, problems


#: A return reason as people write them: a pasted address with no place to break.
REASON = "缺少会议记录，见 https://www.jiaohe.gov.cn/zwgk/tzgg/2018/" + "a1b2c3d4e5" * 15 + ".html"


def test_returned_item_reaches_the_inbox_in_the_browser(
    base_url: str, session: Session, world: World, local_store: object, tmp_path: Path
) -> None:
    """A reviewer's return shows as 站内消息 with a badge; 查看 opens the item; settings save.

    The reason carries a pasted URL with no place to break: it wraps, on a phone and on a
    desktop, in the item's notice, its 办理记录 and the message (it widened pages to 1,834 px).
    """
    from tests.factories import submit_items
    from workflow.actions import TransitionRequest, transition_item

    item = world.item(session, world.dep_a, "3")
    submit_items(session, local_store, world, [item])  # type: ignore[arg-type]
    transition_item(
        session, item.id, world.reviewer, TransitionRequest("return", item.version, REASON)
    )
    session.commit()
    shots = screenshots(tmp_path)
    problems: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        watch(page, problems)
        page.goto(f"{base_url}/login")
        page.fill("input[name=username]", "member_a")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.form-stack button[type=submit]")
        page.wait_for_url(f"{base_url}/portal/")
        assert page.locator("a.inbox-link .badge").inner_text() == "1"
        page.click("a.inbox-link")
        page.wait_for_url(f"{base_url}/me/messages")
        assert page.locator("li.message.unread").count() == 1
        assert page.locator("text=缺少会议记录").count() == 1
        page.screenshot(path=str(shots / "inbox.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        page.click("li.message button:has-text('查看')")
        page.wait_for_url(f"{base_url}/portal/items/{item.id}")
        assert page.locator("a.inbox-link .badge").count() == 0
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        page.goto(f"{base_url}/me/notifications")
        page.fill("input[name=email]", "a@jiaohe.example")
        page.uncheck("input[name='item_scored:email']")
        page.click("form.form-stack > button[type=submit]")
        page.wait_for_selector("text=已保存通知设置")
        assert page.locator("input[name=email]").input_value() == "a@jiaohe.example"
        assert not page.locator("input[name='item_scored:email']").is_checked()
        page.screenshot(path=str(shots / "notification-settings.png"), full_page=True)
        phone = browser.new_page(viewport={"width": 360, "height": 640}, locale="zh-CN")
        phone.context.add_cookies(page.context.cookies())
        for path, name in (
            ("/me/messages", "inbox"),
            ("/me/notifications", "settings"),
            (f"/portal/items/{item.id}", "returned-item"),
        ):
            phone.goto(f"{base_url}{path}")
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, (path, width)
            phone.screenshot(path=str(shots / f"mobile-360-{name}.png"), full_page=True)
    assert not problems, problems


#: Where each row's last cell of an item page's tables lies (the column people look for there).
LAST_CELLS = """(selector) => [...document.querySelectorAll(selector + ' tbody tr')].map(r => {
    const cell = r.lastElementChild, b = cell.getBoundingClientRect();
    return {left: b.left, right: b.right, text: cell.innerText,
            label: getComputedStyle(cell, '::before').content};
})"""


def test_item_tables_stack_on_a_phone(
    base_url: str, session: Session, world: World, local_store: LocalStore, tmp_path: Path
) -> None:
    """A returned item at 390 px: the list's 下一步, the files' 删除 button and the 办理记录's
    说明 (the return reason) sat off-screen in tables that scrolled inside themselves, 说明
    squeezed to a character a line; so did a scored point's 扣分原因, and the score form's
    reason field was a sliver. On a phone each row is a block, each cell under its column's
    name; on a desktop they are the tables they were."""
    from tests.factories import submit_items
    from workflow.actions import (
        TransitionRequest,
        review_item,
        score_item,
        transition_item,
        verify_item,
    )

    item = world.item(session, world.dep_a, "3")
    scored = world.item(session, world.dep_a, "1")
    ready = world.item(session, world.dep_b, "1")
    submit_items(session, local_store, world, [item, scored, ready])
    review_item(session, ready.id, world.reviewer, ready.version)
    verify_item(session, ready.id, world.verifier, ready.version)
    transition_item(
        session, item.id, world.reviewer, TransitionRequest("return", item.version, "缺少会议记录")
    )
    review_item(session, scored.id, world.reviewer, scored.version)
    verify_item(session, scored.id, world.verifier, scored.version)
    score_item(
        session, scored.id, world.scorer, scored.version,
        scores={"1.1": 5, "1.2": 3}, deductions={"1.2": "未见任命文件"},
    )  # fmt: skip
    session.commit()
    shots = screenshots(tmp_path)
    problems: list[str] = []
    with chromium() as browser:
        for width, stacked in ((390, True), (1366, False)):
            # The scorer reads the scoring points: the deduction reason is the last column.
            page = signed_in_page(browser, base_url, "scorer", width, problems)
            page.goto(f"{base_url}/review/items/{scored.id}")
            points = page.evaluate(LAST_CELLS, "table.points")
            assert [p["text"].strip() for p in points] == ["", "未见任命文件"], points
            right = points[1]
            assert 0 <= right["left"] < right["right"] <= width, (width, right)
            assert (right["label"] == '"扣分原因"') is stacked, right["label"]
            # The score form: the reason field was a sliver at the table's right edge.
            page.goto(f"{base_url}/review/items/{ready.id}")
            field = page.locator("input[name='reason-1.2']").bounding_box()
            assert field is not None and field["x"] + field["width"] <= width, (width, field)
            assert field["width"] > (width / 2 if stacked else 150), (width, field)
            page.close()
            page = signed_in_page(browser, base_url, "member_a", width, problems)
            # The list of items: 下一步 (what to do, and by when) is its last column.
            steps = page.evaluate(LAST_CELLS, "main table.grid")
            assert len(steps) == 10 and "修改" in steps[2]["text"], steps
            for cell in steps:
                assert 0 <= cell["left"] < cell["right"] <= width, (width, cell)
            assert (steps[0]["label"] == '"下一步"') is stacked, steps[0]["label"]
            page.goto(f"{base_url}/portal/items/{item.id}")
            assert page.evaluate("document.documentElement.scrollWidth") == width
            files = page.evaluate(LAST_CELLS, "table.evidence")
            history = page.evaluate(LAST_CELLS, "table.history")
            assert files and files[0]["text"].strip() == "删除", files
            assert any("缺少会议记录" in row["text"] for row in history), history
            for cell in files + [row for row in history if row["text"].strip()]:
                assert 0 <= cell["left"] < cell["right"] <= width, (width, cell)
            assert (files[0]["label"] == '"操作"') is stacked, files[0]["label"]
            assert (history[-1]["label"] == '"说明"') is stacked, history[-1]["label"]
            head = page.locator("table.history thead").bounding_box()
            assert head is not None and (head["height"] <= 1) is stacked, head
            page.screenshot(path=str(shots / f"item-tables-{width}.png"), full_page=True)
            page.close()
    assert not problems, problems


def test_review_queue_on_a_phone(
    base_url: str, session: Session, world: World, local_store: LocalStore, tmp_path: Path
) -> None:
    """待初审 at 390 px: each row's 办理 link sat beyond the table's own sideways scroll, and the
    只看逾期 checkbox stretched across the form, its words pushed to the edge on their own line.
    On a phone a row is a block with 办理 on screen; the checkbox sits beside its words."""
    from tests.factories import submit_items

    submit_items(session, local_store, world, [world.item(session, world.dep_b, "1")])
    session.commit()
    shots = screenshots(tmp_path)
    problems: list[str] = []
    with chromium() as browser:
        for width in (390, 1366):
            page = signed_in_page(browser, base_url, "reviewer", width, problems)
            page.goto(f"{base_url}/review/?state=submitted")
            assert page.evaluate("document.documentElement.scrollWidth") == width
            cells = page.evaluate(LAST_CELLS, "main table.grid")
            assert [c["text"].strip() for c in cells] == ["办理"], cells
            assert 0 <= cells[0]["left"] < cells[0]["right"] <= width, (width, cells)
            box = page.locator("input[name=overdue]").bounding_box()
            words = page.locator("label:has(input[name=overdue])").bounding_box()
            assert box is not None and words is not None
            assert box["width"] < 30 and words["height"] < 2 * box["height"] + 12, (box, words)
            page.screenshot(path=str(shots / f"queue-{width}.png"), full_page=True)
            page.close()
    assert not problems, problems


def test_upload_form_speaks_english_and_refusals_reach_the_page(
    base_url: str, session: Session, world: World, tmp_path: Path
) -> None:
    """With English chosen, upload.js shows English; a refused file's reason is shown in it."""
    item_id = world.item(session, world.dep_a, "1").id
    session.commit()
    exe = tmp_path / "a.exe"
    exe.write_bytes(b"MZ\x90\x00" * 64)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(demo_pdf("english upload"))
    problems: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="en-GB")
        watch(page, problems)
        sign_in(page, base_url, "member_a")
        page.context.add_cookies([{"name": "lang", "value": "en", "url": base_url}])
        page.goto(f"{base_url}/portal/items/{item_id}")
        zone = page.locator(".drop-zone").inner_text()
        assert zone.startswith("Drop files here"), zone
        status = page.locator(".upload-status")
        page.set_input_files("input[name=files]", str(exe))
        assert status.inner_text() == "Chosen: a.exe"
        page.click("form.upload-form button[type=submit]")
        page.wait_for_selector(".upload-status.error")
        assert "This file type is not accepted (.exe). Accepted types: .pdf" in (
            status.inner_text()
        )
        page.set_input_files("input[name=files]", str(pdf))
        page.click("form.upload-form button[type=submit]")
        page.wait_for_selector("text=1 file uploaded")
        page.set_input_files("input[name=files]", str(pdf))
        page.click("form.upload-form button[type=submit]")
        page.wait_for_selector(".upload-status.error")
        assert status.inner_text() == (
            "This file was uploaded already (same content as “report.pdf”)"
        )
    # Chromium reports each refused request (415, 409) on the console; nothing else may fail.
    assert not [p for p in problems if "Failed to load resource" not in p], problems


def test_verify_and_score_ask_before_they_cannot_be_taken_back(
    base_url: str, session: Session, world: World, local_store: LocalStore, tmp_path: Path
) -> None:
    """Walk: one click on 核实通过 or 评分 (a routine point's field comes filled with the
    suggestion) settled the item for good, without a question. Each asks first in the browser's
    dialog: cancelling leaves the item as it was, confirming acts."""
    from tests.factories import submit_items
    from workflow.actions import review_item

    item = world.item(session, world.dep_b, "3")
    submit_items(session, local_store, world, [item])
    review_item(session, item.id, world.reviewer, item.version)
    session.commit()
    asked: list[str] = []
    problems: list[str] = []
    with chromium() as browser:
        for user, button, before, after, words in (
            ("verifier", "核实通过", "reviewed", "verified", "不能再退回修改"),
            ("scorer", "评分", "verified", "scored", "评分提交后不能自行修改"),
        ):
            page = signed_in_page(browser, base_url, user, 1366, problems)
            page.goto(f"{base_url}/review/items/{item.id}")
            if user == "scorer":
                page.fill("input[name='score-3.1']", "4.5")
                page.fill("input[name='reason-3.1']", "目录未对外公布")
            answer = {"accept": False}

            def reply(dialog: Any, answer: dict[str, bool] = answer) -> None:
                asked.append(dialog.message)
                if answer["accept"]:
                    dialog.accept()
                else:
                    dialog.dismiss()

            page.on("dialog", reply)
            page.click(f"form.action-form button:has-text('{button}')")
            page.wait_for_timeout(300)
            assert page.locator(f".state-{before}").count() == 1 and words in asked[-1], asked
            session.expire_all()
            assert session.get_one(Item, item.id).state == before
            answer["accept"] = True
            page.click(f"form.action-form button:has-text('{button}')")
            page.wait_for_selector(f".state-{after}")
            page.close()
    session.expire_all()
    scored = session.get_one(Item, item.id)
    assert scored.state == "scored" and scored.total == Decimal("4.50")
    assert len(asked) == 4 and not problems, (asked, problems)


def test_a_no_in_the_checklist_stands_out_and_stacks_on_a_phone(
    base_url: str, session: Session, world: World, local_store: LocalStore, tmp_path: Path
) -> None:
    """Walk: the scorer reads the verifier's answers beside the score form, but a 否 (what the
    score deducts for) looked like every 是, and at 390 px its 备注 was squeezed to a character a
    line. The 否 row stands out; on a phone each check point stacks with its note on screen."""
    from tests.factories import submit_items
    from workflow.actions import review_item, verify_item

    item = world.item(session, world.dep_b, "1")
    item.indicator.check_points = [
        {"code": "1-1", "text": "是否成立工作领导小组", "method": "实地考核"},
        {"code": "1-2", "text": "是否有专人负责", "method": "实地考核"},
    ]
    submit_items(session, local_store, world, [item])
    review_item(session, item.id, world.reviewer, item.version)
    note = "未见指定专人的发文，仅有口头安排，须补充正式文件"
    checks = {"1-1": {"answer": "yes"}, "1-2": {"answer": "no", "note": note}}
    verify_item(session, item.id, world.verifier, item.version, checks=checks)
    session.commit()
    shots = screenshots(tmp_path)
    problems: list[str] = []
    with chromium() as browser:
        for width, stacked in ((390, True), (1366, False)):
            page = signed_in_page(browser, base_url, "scorer", width, problems)
            page.goto(f"{base_url}/review/items/{item.id}")
            assert page.evaluate("document.documentElement.scrollWidth") == width
            yes, no = (
                page.locator(f"table.checklist-results tr.check-{a}").first for a in ("yes", "no")
            )
            background = "el => getComputedStyle(el).backgroundColor"
            assert yes.evaluate(background) != no.evaluate(background)
            answer = no.locator("td.check-answer")
            assert answer.inner_text().strip() == "否"
            assert answer.evaluate("el => getComputedStyle(el).fontWeight") == "600"
            cells = page.evaluate(LAST_CELLS, "table.checklist-results")
            assert cells[1]["text"].strip() == note, cells
            for cell in [c for c in cells if c["text"].strip()]:  # an empty note is hidden
                assert 0 <= cell["left"] < cell["right"] <= width, (width, cell)
            if stacked:  # the note takes the row's width, not a sliver
                assert cells[1]["right"] - cells[1]["left"] > width / 2, cells
            assert (cells[1]["label"] == '"备注"') is stacked, cells[1]["label"]
            page.screenshot(path=str(shots / f"checklist-{width}.png"), full_page=True)
            page.close()
    assert not problems, problems
