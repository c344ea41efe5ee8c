"""The core flow through the pages: upload, submit, review, verify, score, see the score."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from storage.local import LocalStore
from tests.factories import World, add_evidence
from tests.web.conftest import form_version, text
from workflow.actions import review_item, submit_item
from workflow.demo import demo_pdf
from workflow.models import Item
from workflow.notices import set_result_settings

Login = Callable[[str], FlaskClient]


def _item(session: Session, world: World, dep: str = "a", code: str = "1") -> Item:
    return world.item(session, world.dep_a if dep == "a" else world.dep_b, code)


def _act(
    client: FlaskClient, item_id: int, data: dict[str, str], *, review: bool = True
) -> TestResponse:
    base = "/review" if review else "/portal"
    page = text(client.get(f"{base}/items/{item_id}"))
    data = {"version": str(form_version(page)), **data}
    return client.post(f"{base}/items/{item_id}/action", data=data)


def test_department_to_scored_through_the_pages(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    item_id = _item(session, world).id
    member = login("member_a")
    page = member.get(f"/portal/items/{item_id}")
    assert page.status_code == 200
    html = text(page)
    assert "1.1" in html and "成立“放管服”工作领导小组" in html and "以部门文件为考核依据" in html
    assert "<dt>轮次</dt><dd>尚未提交</dd>" in html  # not a bare "0"
    upload = member.post(
        f"/portal/items/{item_id}/evidence",
        data={
            "files": [
                (io.BytesIO(demo_pdf("领导小组")), "领导小组文件.pdf"),
                (io.BytesIO(demo_pdf("专人")), "专人负责.pdf"),
            ],
            "sub_item": "",
            "purpose": "evidence",
        },
        content_type="multipart/form-data",
    )
    assert upload.status_code == 303
    html = text(member.get(f"/portal/items/{item_id}"))
    assert "已上传 2 个文件" in html and "领导小组文件.pdf" in html and "专人负责.pdf" in html
    download = re.search(r'href="(/portal/evidence/\d+/download)"', html)
    assert download
    file = member.get(download.group(1))
    assert file.status_code == 200 and file.data.startswith(b"%PDF")
    assert file.headers["Content-Disposition"].startswith("attachment;")
    assert file.headers["X-Content-Type-Options"] == "nosniff"

    submitted = _act(member, item_id, {"action": "submit"}, review=False)
    assert submitted.status_code == 303
    assert "<dt>轮次</dt><dd>第 1 次提交</dd>" in text(member.get(f"/portal/items/{item_id}"))
    assert "待初审" in text(member.get(f"/portal/items/{item_id}"))

    reviewer = login("reviewer")
    queue = text(reviewer.get("/review/?state=submitted"))
    assert f"/review/items/{item_id}" in queue
    assert _act(reviewer, item_id, {"action": "review"}).status_code == 303

    verifier = login("verifier")
    assert "核实通过" in text(verifier.get(f"/review/items/{item_id}"))
    assert _act(verifier, item_id, {"action": "verify"}).status_code == 303

    scorer = login("scorer")
    scored = _act(
        scorer,
        item_id,
        {
            "action": "score",
            "score-1.1": "5",
            "score-1.2": "3.5",
            "reason-1.2": "专人负责文件未盖章",
        },
    )
    assert scored.status_code == 303, text(scored)

    index = text(member.get("/portal/"))
    # Scores stay hidden from the department until 公示, unless the office turns that off.
    assert "8.50" not in index and "已评分" in index
    assert "专人负责文件未盖章" not in text(member.get(f"/portal/items/{item_id}"))
    session.expire_all()
    set_result_settings(session, world.assessment, actor=world.admin, hide_scores=False)
    session.commit()
    index = text(member.get("/portal/"))
    assert "8.50" in index and "已评分" in index
    page_html = text(member.get(f"/portal/items/{item_id}"))
    assert "专人负责文件未盖章" in page_html and "3.50" in page_html
    for label in ("提交", "初审通过", "核实通过", "评分", "上传材料"):
        assert label in page_html


def _verified(session: Session, world: World, store: LocalStore, login: Login) -> Item:
    """Department A's item 1, submitted and reviewed, then verified through the page."""
    item = _item(session, world)
    add_evidence(session, store, item, world.member_a)
    submit_item(session, item.id, world.member_a, item.version)
    review_item(session, item.id, world.reviewer, item.version)
    session.commit()
    assert _act(login("verifier"), item.id, {"action": "verify"}).status_code == 303
    return item


def test_score_needs_a_deduction_reason(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item = _verified(session, world, store, login)
    scorer = login("scorer")
    refused = _act(scorer, item.id, {"action": "score", "score-1.1": "5", "score-1.2": "4"})
    assert refused.status_code == 422
    html = text(refused)
    assert "评分项 1.2 未得满分，请填写扣分原因" in html
    assert 'value="4"' in html  # what was typed is kept


def test_a_score_typed_with_a_decimal_comma_is_refused_and_kept(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    # Walk: in a type=number field Chromium dropped the comma of "0,5", so 5 (full marks) was
    # recorded and the deduction reason silently discarded. A text field sends what was typed.
    item = _verified(session, world, store, login)
    scorer = login("scorer")
    form = text(scorer.get(f"/review/items/{item.id}"))
    field = re.search(r'<input[^>]*name="score-1\.2"[^>]*>', form)
    assert field and 'type="text"' in field.group(0) and 'inputmode="decimal"' in field.group(0)
    data = {"action": "score", "score-1.1": "5", "score-1.2": "0,5", "reason-1.2": "材料不全"}
    refused = _act(scorer, item.id, data)
    assert refused.status_code == 422
    html = text(refused)
    assert "评分项 1.2 的得分“0,5”含逗号：小数点请用“.”，如 1.5" in html
    assert 'value="0,5"' in html and 'value="材料不全"' in html  # what was typed is kept
    session.refresh(item)
    assert item.state == "verified" and item.total is None


def test_upload_refuses_a_disguised_file(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    item_id = _item(session, world).id
    member = login("member_a")
    response = member.post(
        f"/portal/items/{item_id}/evidence",
        data={"files": [(io.BytesIO(b"MZ\x90\x00not a pdf"), "report.pdf")]},
        content_type="multipart/form-data",
    )
    assert response.status_code in (415, 422)
    assert "尚未上传材料" in text(response)


def test_a_refused_upload_keeps_the_chosen_point_purpose_and_note(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    """Without JavaScript the refusal is the page again: the scoring point, the purpose and the
    note typed stay chosen (only the file has to be picked again), so a 不涉及 proof is not sent
    next time as the whole item's evidence."""
    item_id = _item(session, world).id
    member = login("member_a")
    response = member.post(
        f"/portal/items/{item_id}/evidence",
        data={
            "files": [(io.BytesIO(b""), "说明.pdf")],
            "sub_item": "1.2",
            "purpose": "not_involved_proof",
            "note": "已盖章的说明",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    page = text(response)
    assert '<option value="1.2" selected>' in page and '<option value="1.1">' in page
    assert '<option value="not_involved_proof" selected>' in page
    assert 'name="note" maxlength="2000" value="已盖章的说明"' in page
    # A fresh page starts empty.
    fresh = text(member.get(f"/portal/items/{item_id}"))
    assert " selected>" not in fresh.split('name="sub_item"')[1].split("</select>")[0]
    assert 'name="note" maxlength="2000" value=""' in fresh


def test_a_refused_file_among_several_is_named_and_none_is_kept(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    """Five files chosen, one empty: the message names that one and says the others did not go
    up either (all or none), in the reader's language."""
    item_id = _item(session, world).id
    member = login("member_a")

    def upload() -> TestResponse:
        return member.post(
            f"/portal/items/{item_id}/evidence",
            data={
                "files": [
                    (io.BytesIO(demo_pdf("通知")), "通知.pdf"),
                    (io.BytesIO(b""), "会议纪要.pdf"),
                ]
            },
            content_type="multipart/form-data",
        )

    refused = upload()
    assert refused.status_code == 422
    page = text(refused)
    assert (
        "“会议纪要.pdf”：文件为空。本次选择的 2 个文件均未上传，请更换或去掉该文件后重新上传"
        in page
    )
    assert "尚未上传材料" in page  # nothing kept
    member.post("/language", data={"lang": "en"})
    english = text(upload())
    assert "会议纪要.pdf" in english and "The file is empty" in english
    assert "None of the 2 chosen files was uploaded" in english
    # One file alone keeps the short message.
    single = member.post(
        f"/portal/items/{item_id}/evidence",
        data={"files": [(io.BytesIO(b""), "会议纪要.pdf")]},
        content_type="multipart/form-data",
    )
    assert single.status_code == 422 and "None of" not in text(single)


def test_remove_evidence_while_draft(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item = _item(session, world)
    row = add_evidence(session, store, item, world.member_a, name="旧文件.pdf")
    session.commit()
    member = login("member_a")
    page = text(member.get(f"/portal/items/{item.id}"))
    # The next step says what is there: a file is uploaded, the item can go once complete.
    assert "旧文件.pdf" in page and "已上传 1 份佐证材料；材料齐全后即可提交" in page
    assert "已上传 1 份材料；材料齐全后即可提交" in text(member.get("/portal/"))
    # A proof of not involved is another kind of file: counted apart, the table counts both.
    proof = add_evidence(
        session, store, item, world.member_a, sub_item="1.2", purpose="not_involved_proof"
    )
    session.commit()
    page = text(member.get(f"/portal/items/{item.id}"))
    assert "已上传 1 份佐证材料、1 份不涉及证明；材料齐全后即可提交" in page
    assert "材料（2）" in page and "已上传 2 份材料" in text(member.get("/portal/"))
    assert member.post(f"/portal/evidence/{proof.id}/remove").status_code == 303
    removed = member.post(f"/portal/evidence/{row.id}/remove")
    assert removed.status_code == 303
    html = text(member.get(f"/portal/items/{item.id}"))
    assert "已删除材料：旧文件.pdf" in html and "尚未上传材料" in html
    assert "请上传佐证材料后提交" in html
    # The same 删除 pressed again in a stale tab: back on the item, told so, not a 404 page.
    again = member.post(f"/portal/evidence/{row.id}/remove")
    assert again.status_code == 303 and again.location.endswith(f"/portal/items/{item.id}")
    assert "材料“旧文件.pdf”已删除" in text(member.get(f"/portal/items/{item.id}"))
    other = login("member_b")
    assert other.post(f"/portal/evidence/{row.id}/remove").status_code == 404


def test_four_eyes_reviewer_is_not_offered_verify(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item = _item(session, world, dep="b")
    add_evidence(session, store, item, world.member_b)
    submit_item(session, item.id, world.member_b, item.version)
    session.commit()
    both = login("reviewer_in_a")  # holds reviewer and verifier
    assert _act(both, item.id, {"action": "review"}).status_code == 303
    html = text(both.get(f"/review/items/{item.id}"))
    assert 'value="verify"' not in html and 'value="return"' in html
    refused = both.post(
        f"/review/items/{item.id}/action",
        data={"action": "verify", "version": str(form_version(html))},
    )
    assert refused.status_code == 403 and "四眼原则" in text(refused)
    verifier = login("verifier")
    assert 'value="verify"' in text(verifier.get(f"/review/items/{item.id}"))


def test_own_department_item_offers_no_action(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item = _item(session, world, dep="a")
    add_evidence(session, store, item, world.member_a)
    submit_item(session, item.id, world.member_a, item.version)
    session.commit()
    html = text(login("reviewer_in_a").get(f"/review/items/{item.id}"))
    assert "本部门" in html
    assert 'value="review"' not in html


def test_another_departments_item_is_not_found(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item = _item(session, world, dep="a")
    row = add_evidence(session, store, item, world.member_a)
    session.commit()
    other = login("member_b")
    assert other.get(f"/portal/items/{item.id}").status_code == 404
    assert other.get(f"/portal/evidence/{row.id}/download").status_code == 404
    assert (
        other.post(
            f"/portal/items/{item.id}/action", data={"action": "submit", "version": "1"}
        ).status_code
        == 404
    )
    assert other.get(f"/review/items/{item.id}").status_code == 403  # not office staff
    assert login("reviewer").get("/portal/").status_code == 403


def test_stale_version_gives_a_clear_message(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item = _item(session, world)
    add_evidence(session, store, item, world.member_a)
    submit_item(session, item.id, world.member_a, item.version)
    session.commit()
    reviewer = login("reviewer")
    stale_form = text(reviewer.get(f"/review/items/{item.id}"))
    version = form_version(stale_form)
    returned = reviewer.post(
        f"/review/items/{item.id}/action",
        data={"action": "return", "version": str(version), "comment": "请补充材料"},
    )
    assert returned.status_code == 303
    # Someone submits again meanwhile; the old form is now stale.
    member = login("member_a")
    resubmit = {"action": "submit", "change_note": "已补充材料"}
    assert _act(member, item.id, resubmit, review=False).status_code == 303
    stale = reviewer.post(
        f"/review/items/{item.id}/action", data={"action": "review", "version": str(version)}
    )
    assert stale.status_code == 409
    assert "事项已被更新" in text(stale) and "请刷新后重试" in text(stale)


def test_return_reason_is_escaped(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item = _item(session, world)
    add_evidence(session, store, item, world.member_a)
    submit_item(session, item.id, world.member_a, item.version)
    session.commit()
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    reviewer = login("reviewer")
    assert _act(reviewer, item.id, {"action": "return", "comment": payload}).status_code == 303
    html = text(login("member_a").get(f"/portal/items/{item.id}"))
    assert "退回原因" in html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_return_needs_a_reason(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item = _item(session, world)
    add_evidence(session, store, item, world.member_a)
    submit_item(session, item.id, world.member_a, item.version)
    session.commit()
    refused = _act(login("reviewer"), item.id, {"action": "return", "comment": "  "})
    assert refused.status_code == 422 and "请填写理由" in text(refused)


def test_queue_counts_filters_and_pages(
    make_app: Callable[..., Flask], session: Session, world: World, store: LocalStore
) -> None:
    app = make_app(REVIEW_PAGE_SIZE=2)
    ids = []
    for dep, member in ((world.dep_a, world.member_a), (world.dep_b, world.member_b)):
        for code in ("1", "2"):
            item = world.item(session, dep, code)
            add_evidence(session, store, item, member)
            submit_item(session, item.id, member, item.version)
            ids.append(item.id)
    review_item(session, ids[0], world.reviewer, 2)
    session.commit()
    client = app.test_client()
    client.post("/login", data={"username": "reviewer", "password": "correct-horse-battery"})
    first = text(client.get("/review/"))
    assert re.search(r'待初审 <span class="count">3</span>', first)
    assert re.search(r'待核实 <span class="count">1</span>', first)
    shown = re.findall(r'href="/review/items/(\d+)"', first)
    assert shown == [str(i) for i in sorted(ids[1:])[:2]]
    after = re.search(r'href="(/review/\?[^"]*after=\d+[^"]*)"', first)
    assert after
    second = text(client.get(after.group(1).replace("&amp;", "&")))
    assert re.findall(r'href="/review/items/(\d+)"', second) == [str(sorted(ids[1:])[2])]
    filtered = text(client.get(f"/review/?state=submitted&department={world.dep_b.id}"))
    assert sorted(re.findall(r'href="/review/items/(\d+)"', filtered)) == sorted(
        str(i) for i in ids[2:]
    )
    assert re.search(r'待初审 <span class="count">2</span>', filtered)


def test_upload_of_a_file_already_there_is_refused_whole(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    item_id = _item(session, world).id
    member = login("member_a")
    path = f"/portal/items/{item_id}/evidence"

    def upload(*files: tuple[str, str]) -> TestResponse:
        parts = [(io.BytesIO(demo_pdf(seed)), name) for seed, name in files]
        return member.post(path, data={"files": parts}, content_type="multipart/form-data")

    assert upload(("一", "重复.pdf"), ("二", "第二份.pdf")).status_code == 303
    again = upload(("三", "新的.pdf"), ("一", "重复（副本）.pdf"))
    assert again.status_code == 409
    page = text(again)
    assert "“重复（副本）.pdf”已上传（与“重复.pdf”内容相同），本次上传的文件均未保存" in page
    twice = upload(("四", "甲.pdf"), ("四", "乙.pdf"))
    assert twice.status_code == 422
    assert "本次上传中“乙.pdf”与“甲.pdf”内容相同" in text(twice)
    shown = text(member.get(f"/portal/items/{item_id}"))
    assert "已上传 2 份佐证材料" in shown  # neither refused upload left a file
    assert "新的.pdf" not in shown and "甲.pdf" not in shown


def test_upload_from_script_gets_json_and_keeps_the_message(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    item_id = _item(session, world).id
    member = login("member_a")
    response = member.post(
        f"/portal/items/{item_id}/evidence",
        data={"files": [(io.BytesIO(demo_pdf("xhr")), "进度条.pdf")]},
        content_type="multipart/form-data",
        headers={"X-Requested-With": "XMLHttpRequest"},
    )
    assert response.status_code == 200
    assert response.json == {"redirect": f"/portal/items/{item_id}"}
    assert "已上传 1 个文件" in text(member.get(f"/portal/items/{item_id}"))


def test_submit_without_evidence_is_refused_with_the_reason(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    item_id = _item(session, world).id
    member = login("member_a")
    refused = _act(member, item_id, {"action": "submit"}, review=False)
    assert refused.status_code == 422 and "提交前请至少上传一个佐证材料" in text(refused)


def test_pdf_preview_is_inline_and_sandboxed(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item = _item(session, world)
    row = add_evidence(session, store, item, world.member_a, name="预览.pdf")
    submit_item(session, item.id, world.member_a, item.version)
    session.commit()
    reviewer = login("reviewer")
    page = text(reviewer.get(f"/review/items/{item.id}?preview={row.id}"))
    assert f'src="/portal/evidence/{row.id}/preview"' in page and "<iframe" in page
    shown = reviewer.get(f"/portal/evidence/{row.id}/preview")
    assert shown.status_code == 200 and shown.data.startswith(b"%PDF")
    assert shown.headers["Content-Disposition"].startswith("inline;")
    assert shown.headers["Content-Security-Policy"].startswith("sandbox;")
    assert shown.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert login("member_b").get(f"/portal/evidence/{row.id}/preview").status_code == 404


def test_resubmission_after_a_return_with_a_change_note_in_the_pages(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    """The department must explain its changes (a Chinese error otherwise); the reviewer
    reads the 修改说明 beside the files added and removed since the last round."""
    item = _item(session, world)
    old = add_evidence(session, store, item, world.member_a, name="旧的会议记录.pdf")
    submit_item(session, item.id, world.member_a, item.version)
    session.commit()
    reviewer = login("reviewer")
    assert (
        _act(reviewer, item.id, {"action": "return", "comment": "会议记录缺页"}).status_code == 303
    )
    member = login("member_a")
    page = text(member.get(f"/portal/items/{item.id}"))
    assert "修改说明（必填" in page and 'name="change_note"' in page
    assert member.post(f"/portal/evidence/{old.id}/remove").status_code == 303
    upload = member.post(
        f"/portal/items/{item.id}/evidence",
        data={"files": [(io.BytesIO(demo_pdf("完整")), "完整的会议记录.pdf")]},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 303
    refused = _act(member, item.id, {"action": "submit", "change_note": "  "}, review=False)
    assert refused.status_code == 422
    assert "退回后重新提交，请填写修改说明" in text(refused)
    session.refresh(item)
    assert item.state == "returned" and item.round == 1
    done = _act(
        member, item.id, {"action": "submit", "change_note": "已换成完整的会议记录"}, review=False
    )
    assert done.status_code == 303
    html = re.sub(r"<[^>]+>", "", text(reviewer.get(f"/review/items/{item.id}")))
    assert "第 2 轮重新提交（与第 1 轮相比）" in html
    assert "上一轮退回原因：会议记录缺页" in html
    assert "本轮修改说明：已换成完整的会议记录" in html
    added = html.split("新增材料（1）")[1].split("删除材料（1）")
    assert "完整的会议记录.pdf" in added[0] and "旧的会议记录.pdf" in added[1]
    # The history names the note too, for the auditor.
    assert "修改说明：已换成完整的会议记录" in text(
        login("auditor").get(f"/review/items/{item.id}")
    )


def test_the_verifier_answers_the_checklist_and_the_scorer_sees_it(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item = _item(session, world)
    item.indicator.check_points = [
        {"code": "1-1", "text": "是否成立工作领导小组", "method": "实地考核"},
        {"code": "1-2", "text": "是否有专人负责", "method": "实地考核"},
    ]
    add_evidence(session, store, item, world.member_a)
    submit_item(session, item.id, world.member_a, item.version)
    review_item(session, item.id, world.reviewer, item.version)
    session.commit()
    verifier = login("verifier")
    page = text(verifier.get(f"/review/items/{item.id}"))
    assert "核查要点（逐项回答）" in page and 'name="check-1-2"' in page
    assert "是否有专人负责" in page and "不适用" in page
    refused = _act(verifier, item.id, {"action": "verify", "check-1-1": "yes"})
    assert refused.status_code == 422
    assert "请逐项回答核查要点：1-2 是否有专人负责" in text(refused)
    session.refresh(item)
    assert item.state == "reviewed"
    bare = _act(verifier, item.id, {"action": "verify", "check-1-1": "yes", "check-1-2": "no"})
    assert bare.status_code == 422  # a 否 needs its note, and the answers stay chosen
    assert "核查要点 1-2 答“否”时，请在备注中说明存在的问题" in (html := text(bare))
    assert re.search(r'name="check-1-2" value="no" required checked', html), html
    answers = {"check-1-1": "yes", "check-1-2": "no", "check-note-1-2": "未发文指定专人"}
    assert _act(verifier, item.id, {"action": "verify", **answers}).status_code == 303
    html = re.sub(r"<[^>]+>", "", text(login("scorer").get(f"/review/items/{item.id}")))
    # Beside the score form: the checklist as answered.
    assert "核查结果（核实人逐项回答的核查要点）" in html
    assert html.index("核查结果") < html.index("逐项打分")
    assert "未发文指定专人" in html
    # The auditor reads the answers in the timeline.
    audit = text(login("auditor").get(f"/review/items/{item.id}"))
    assert (
        "核查要点：1-1 是否成立工作领导小组：是；1-2 是否有专人负责：否（未发文指定专人）" in audit
    )
