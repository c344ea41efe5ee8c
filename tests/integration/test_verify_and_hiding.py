"""Verifiable notices (`/verify/<code>`) and scores hidden from departments before 公示."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World
from tests.integration.test_notices import (
    RESULT_NO,
    bearer,
    body_text,
    reopen,
    score_department,
    start_publication,
)
from tests.integration.test_notices import world as world
from web.app import create_app
from workflow.notices import (
    CODE_ALPHABET,
    issue_notice,
    issue_summary,
    new_verification_code,
    normalise_code,
    read_object,
)

CODE_SHAPE = re.compile(r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$")


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "objects")


@pytest.fixture
def make(db_url: str, tmp_path: Path) -> Callable[..., Flask]:
    def build(**overrides: object) -> Flask:
        config = {
            "DATABASE_URL": db_url,
            "INSTANCE_DIR": str(tmp_path),
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_STORAGE_URI": "memory://",
            "STORAGE": {
                "STORAGE_BACKEND": "local",
                "STORAGE_LOCAL_ROOT": str(tmp_path / "objects"),
            },
            **overrides,
        }
        return create_app(config)

    return build


def test_codes_are_random_and_forgiving_to_type() -> None:
    codes = {new_verification_code() for _ in range(2000)}
    assert len(codes) == 2000 and all(CODE_SHAPE.match(c) for c in codes)
    assert set("".join(codes).replace("-", "")) <= set(CODE_ALPHABET)
    assert not {"I", "L", "O", "U"} & set("".join(codes))
    # Two codes issued one after the other share no structure (no counter inside).
    first, second = sorted(codes)[:2]
    assert first[:4] != second[:4] or first[5:] != second[5:]
    code = "7QF2-MX9Z-P4TW-8RCK"
    assert normalise_code("7qf2 mx9z p4tw 8rck") == code
    assert normalise_code("7QF2MX9ZP4TW8RCK") == code
    assert normalise_code("7QF2-MX9Z-P4TW-8RC") is None  # too short
    assert normalise_code("' OR 1=1 --") is None


@pytest.mark.parametrize(
    "typed",
    [
        "验证码：QKJ1-V2AJ-Q9TH-EFF5",  # the document's line, copied whole
        "验证码:QKJ1-V2AJ-Q9TH-EFF5",
        "校验码： QKJ1-V2AJ-Q9TH-EFF5",
        "ＱＫＪ１-Ｖ２ＡＪ-Ｑ９ＴＨ-ＥＦＦ５",  # full width, from a Chinese input method
        "ＱＫＪ１－Ｖ２ＡＪ－Ｑ９ＴＨ－ＥＦＦ５",
        "QKJ1—V2AJ—Q9TH—EFF5",  # em dash
        "QKJ1―V2AJ―Q9TH―EFF5",  # horizontal bar
        "QKJ1–V2AJ–Q9TH–EFF5",  # en dash
        "QKJ1\u2010V2AJ\u2011Q9TH\u2212EFF5",  # hyphen, non-breaking hyphen, minus
        "QKJ1 V2AJ Q9TH EFF5",
        "QKJ1\u3000V2AJ\u00a0Q9TH\u200bEFF5",  # ideographic, no-break and zero-width spaces
        "qkj1-v2aj-q9th-eff5",
        "  QKJ1-V2AJ-Q9TH-EFF5\n",
        "“QKJ1-V2AJ-Q9TH-EFF5”",
        "「验证码：QKJ1-V2AJ-Q9TH-EFF5」",
        "'QKJ1-V2AJ-Q9TH-EFF5'",
        '"验证码：ｑｋｊ１ — ｖ２ａｊ — ｑ９ｔｈ — ｅｆｆ５"。',
    ],
)
def test_codes_copied_or_typed_are_forgiven(typed: str) -> None:
    assert normalise_code(typed) == "QKJ1-V2AJ-Q9TH-EFF5"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "验证码：",
        "验证码：QKJ1-V2AJ-Q9TH",  # too short
        "QKJ1-V2AJ-Q9TH-EFF5-A",  # too long
        "QKJ1-V2AJ-Q9TH-EFF5 扫描二维码",  # more than the code
        "QKJ1.V2AJ.Q9TH.EFF5",  # dots are no separators
        "QKJ1-V2AJ-Q9TH-EFU5",  # U is not in the alphabet
        "密码：QKJ1-V2AJ-Q9TH-EFF5",  # another label
        "A" * 200,
    ],
)
def test_text_that_is_no_code_stays_no_code(typed: str) -> None:
    assert normalise_code(typed) is None


def test_verify_answers_for_current_and_superseded_versions(
    session: Session, store: LocalStore, world: World, make: Callable[..., Flask]
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, special=True)
    summary = issue_summary(session, store, w.assessment, w.scorer)  # 初步: others unscored
    start_publication(session, w.assessment)
    base_url = "https://kh.example.cn"
    first = issue_notice(session, store, w.assessment, w.dep_a, w.scorer, verify_base_url=base_url)
    session.commit()
    second = issue_notice(session, store, w.assessment, w.dep_a, w.admin, verify_base_url=base_url)
    session.commit()
    old, new = first.notice, second.notice
    assert old.snapshot["verify_url"] == f"{base_url}/verify/{old.verification_code}"

    client = make().test_client()
    body = client.get(f"/api/v1/verify/{new.verification_code}").get_json()  # no token needed
    assert body == {
        "document_no": RESULT_NO,
        "year": 2018,
        "kind": "notice",
        "unit": w.dep_a.full_name,
        "total": "97.50",
        "converted": "1.95",
        "rank": 1,  # as printed: the only department scored
        "tied": False,
        "department_count": body["department_count"],
        "preliminary": False,
        "version": 2,
        "issued_at": body["issued_at"],
        "sha256": new.sha256,
        "current": True,
        "standing": "same",
    }
    superseded = client.get(f"/api/v1/verify/{old.verification_code.lower()}").get_json()
    assert superseded["current"] is False and superseded["version"] == 1
    assert superseded["sha256"] == old.sha256
    table = client.get(f"/api/v1/verify/{summary.notice.verification_code}").get_json()
    assert table["kind"] == "summary" and table["total"] is None and table["current"] is True
    assert table["rank"] is None and table["department_count"] is None
    printed = reopen(read_object(store, new.storage_key))
    assert f"在{body['department_count']}个被考核部门中排名第1位" in body_text(printed)

    page = client.get(f"/verify/{new.verification_code}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "当前版本" in html and new.sha256 in html
    assert RESULT_NO in html and "97.50" in html and "1.95" in html
    # The rank as the notice prints it, so that a rank changed on paper shows.
    assert f"在{body['department_count']}个被考核部门中第1位" in html
    # Nothing else leaks: no deduction reasons, no other department, no user names.
    assert "部分改革任务" not in html and "scorer" not in html
    assert w.dep_b.name not in html
    old_page = client.get(f"/verify/{old.verification_code}").get_data(as_text=True)
    assert "已被替代" in old_page and "当前版本" not in old_page.replace("（当前版本）", "")
    unknown = client.get("/verify/AAAA-BBBB-CCCC-DDDD")
    assert unknown.status_code == 404 and "未找到该验证码" in unknown.get_data(as_text=True)
    malformed = client.get("/api/v1/verify/not-a-code")
    assert malformed.status_code == 400
    assert malformed.get_json()["error"]["code"] == "verification_code_malformed"
    assert client.get(f"/api/v1/verify/{'A' * 41}").status_code == 400
    unknown_api = client.get("/api/v1/verify/AAAA-BBBB-CCCC-DDDD")
    assert unknown_api.status_code == 404
    assert unknown_api.get_json()["error"]["code"] == "verification_not_found"
    # The line copied from the document, as a path and as JSON.
    copied = client.get(f"/api/v1/verify/验证码：{new.verification_code.lower()}")
    assert copied.status_code == 200 and copied.get_json()["sha256"] == new.sha256
    # Someone holding the paper types its code in: /verify has the form, and goes on to it.
    entry = client.get("/verify")
    assert entry.status_code == 200 and 'name="code"' in entry.get_data(as_text=True)
    typed = client.get("/verify", query_string={"code": new.verification_code.lower()})
    assert typed.status_code == 303
    assert typed.location.endswith(f"/verify/{new.verification_code}")
    assert "当前版本" in client.get(typed.location).get_data(as_text=True)
    too_long = client.get("/verify", query_string={"code": "A" * 41})
    assert too_long.status_code == 400 and "验证码格式不正确" in too_long.get_data(as_text=True)


def test_verify_shows_a_shared_rank_as_printed(
    session: Session, store: LocalStore, world: World, make: Callable[..., Flask]
) -> None:
    """Two departments with the same total: the notice says 并列第1位, and so does its check."""
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, special=True)
    score_department(session, store, w, w.dep_b, w.member_b, special=True)
    start_publication(session, w.assessment)
    issued = issue_notice(session, store, w.assessment, w.dep_b, w.scorer).notice
    session.commit()
    body = make().test_client().get(f"/api/v1/verify/{issued.verification_code}").get_json()
    assert (body["rank"], body["tied"]) == (1, True)
    count = body["department_count"]
    printed = body_text(reopen(read_object(store, issued.storage_key)))
    assert f"在{count}个被考核部门中排名并列第1位" in printed
    page = make().test_client().get(f"/verify/{issued.verification_code}")
    assert f"在{count}个被考核部门中并列第1位" in page.get_data(as_text=True)
    english = make().test_client()
    english.set_cookie("lang", "en")
    shown = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", english.get(
        f"/verify/{issued.verification_code}").get_data(as_text=True)))  # fmt: skip
    assert f"Rank Tied at No. 1 of {count} assessed departments" in shown
    assert "Assessment year 2018 " in shown  # one year, not the years page's heading


def test_verify_page_takes_the_copied_line_and_answers_malformed_text_itself(
    session: Session, store: LocalStore, world: World, make: Callable[..., Flask]
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, special=True)
    code = issue_notice(session, store, w.assessment, w.dep_a, w.scorer, preliminary=True)
    session.commit()
    printed = code.notice.verification_code
    client = make().test_client()
    wide = printed.translate(
        str.maketrans(
            "0123456789ABCDEFGHJKMNPQRSTVWXYZ-",
            "０１２３４５６７８９ＡＢＣＤＥＦＧＨＪＫＭＮＰＱＲＳＴＶＷＸＹＺ—",
        )
    )
    for typed in (f"验证码：{printed}", f" “{wide}” ", printed.replace("-", " ").lower()):
        entry = client.get("/verify", query_string={"code": typed})
        assert entry.status_code == 303 and entry.location.endswith(f"/verify/{printed}")
        page = client.get(f"/verify/{typed}")
        assert page.status_code == 200 and "有效版本" in page.get_data(as_text=True)
    # A preliminary notice names no rank, and neither does its check.
    assert "初步结果，不作排名" in client.get(f"/verify/{printed}").get_data(as_text=True)
    assert client.get(f"/api/v1/verify/{printed}").get_json()["rank"] is None
    # No code even when forgiven: the verify page's own answer, with its form, not "forged".
    for path in (f"/verify/{'A' * 41}", "/verify/QKJ1-V2AJ-Q9TH", "/verify/验证码：密码"):
        html = client.get(path)
        text = html.get_data(as_text=True)
        assert html.status_code == 400, path
        assert "验证码格式不正确" in text and 'name="code"' in text
        assert "不是本系统印发" not in text and "页面或事项不存在" not in text
    entry = client.get("/verify", query_string={"code": "QKJ1.V2AJ"})
    assert entry.status_code == 400 and "验证码格式不正确" in entry.get_data(as_text=True)
    # A well-formed code no version carries is still the one answer for every wrong code.
    unknown = client.get(f"/verify/验证码：{new_verification_code()}")
    assert unknown.status_code == 404 and "不是本系统印发" in unknown.get_data(as_text=True)
    client.post("/language", data={"lang": "en", "next": "/verify"})
    english = client.get(f"/verify/{'A' * 41}").get_data(as_text=True)
    assert "not a well-formed verification code" in english


def test_verify_names_a_summary_as_the_table_of_all_departments(
    session: Session, store: LocalStore, world: World, make: Callable[..., Flask]
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, special=True)
    summary = issue_summary(session, store, w.assessment, w.scorer)
    notice = issue_notice(session, store, w.assessment, w.dep_a, w.scorer, preliminary=True)
    session.commit()
    client = make().test_client()
    table = client.get(f"/api/v1/verify/{summary.notice.verification_code}").get_json()
    assert table["kind"] == "summary" and table["unit"] == "全部被考核部门"
    one = client.get(f"/api/v1/verify/{notice.notice.verification_code}").get_json()
    assert one["kind"] == "notice" and one["unit"] == w.dep_a.full_name

    page = client.get(f"/verify/{summary.notice.verification_code}").get_data(as_text=True)
    assert "被考核单位" not in page and "<dt>范围</dt><dd>全部被考核部门</dd>" in page
    assert "考核结果汇总表" in page
    dep_page = client.get(f"/verify/{notice.notice.verification_code}").get_data(as_text=True)
    assert f"<dt>被考核单位</dt><dd>{w.dep_a.full_name}</dd>" in dep_page
    client.post("/language", data={"lang": "en", "next": "/verify"})
    english = client.get(f"/verify/{summary.notice.verification_code}").get_data(as_text=True)
    assert "Assessed unit" not in english and "汇总表" not in english
    assert "<dt>Scope</dt><dd>All assessed departments</dd>" in english
    assert "Results summary" in english


def test_verify_is_rate_limited(
    session: Session, store: LocalStore, world: World, make: Callable[..., Flask]
) -> None:
    client = make(VERIFY_LIMIT="5 per minute").test_client()
    answers = [
        client.get(f"/api/v1/verify/{new_verification_code()}").status_code for _ in range(7)
    ]
    assert answers[:5] == [404] * 5 and answers[5:] == [429, 429]
    pages = make(VERIFY_LIMIT="3 per minute").test_client()
    statuses = [pages.get(f"/verify/{new_verification_code()}").status_code for _ in range(4)]
    assert statuses == [404, 404, 404, 429]


def test_departments_see_no_score_before_publication(
    session: Session, store: LocalStore, world: World, make: Callable[..., Flask]
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, special=True)
    issue_notice(session, store, w.assessment, w.dep_a, w.scorer, preliminary=True)
    heads = {u.username: bearer(session, u) for u in (w.member_a, w.reviewer, w.admin)}
    session.commit()
    client = make().test_client()
    aid = w.assessment.id
    items = client.get(f"/api/v1/assessments/{aid}/items", headers=heads["member_a"]).get_json()
    assert items["items"] and all(i["total"] is None for i in items["items"])
    first = items["items"][0]["id"]
    item = client.get(f"/api/v1/items/{first}", headers=heads["member_a"]).get_json()
    assert item["scores_hidden"] is True and item["total"] is None
    assert all(s["score"] is None and s["deduction_reason"] is None for s in item["sub_items"])
    history = client.get(f"/api/v1/items/{first}/history", headers=heads["member_a"]).get_json()
    scored = [e for e in history["events"] if e["action"] == "score"]
    assert scored and all("scores" not in e["payload"] for e in scored)
    assert all("total" not in e["payload"] for e in scored)
    notice = f"/api/v1/assessments/{aid}/departments/{w.dep_a.id}/notice.docx"
    assert client.get(notice, headers=heads["member_a"]).status_code == 404
    staff = client.get(f"/api/v1/items/{first}", headers=heads["reviewer"]).get_json()
    assert staff["scores_hidden"] is False and staff["total"] is not None

    # The admin may turn hiding off; then the department sees its scores at once.
    turned = client.patch(
        f"/api/v1/assessments/{aid}/settings",
        json={"hide_scores_until_published": False},
        headers=heads["admin"],
    )
    assert turned.status_code == 200
    item = client.get(f"/api/v1/items/{first}", headers=heads["member_a"]).get_json()
    assert item["scores_hidden"] is False and item["total"] is not None
    client.patch(
        f"/api/v1/assessments/{aid}/settings",
        json={"hide_scores_until_published": True},
        headers=heads["admin"],
    )
    start_publication(session, w.assessment)
    item = client.get(f"/api/v1/items/{first}", headers=heads["member_a"]).get_json()
    assert item["scores_hidden"] is False and item["sub_items"][0]["score"] is not None
    assert client.get(notice, headers=heads["member_a"]).status_code == 200
