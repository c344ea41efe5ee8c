"""Every error code has Chinese and English text, and every refusal's message is translatable.

The source of workflow/, web/, scoring/ and storage/ is scanned (AST) for the codes it uses:
`code="…"` keyword arguments, `code = "…"` class attributes and assignments, the codes the
input layer and `error_response` are given, and the HTTP errors' table. Each must have its
general Chinese text in `workflow.messages.MESSAGES` and that text its English in the catalog.
Each refusal's message must be a literal template (extracted by pybabel), not an f-string.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask import Flask

from scoring.pdf import PdfUnavailable
from storage.errors import FileTooLarge, human_size
from web.portal.i18n import TRANSLATIONS, init_i18n, stored_text
from workflow.errors import Conflict, DomainError, InvalidValue, ServiceUnavailable
from workflow.messages import (
    MESSAGES,
    PDF_CONVERSION_FAILED,
    PDF_OFFICE_MISSING,
    Lines,
    Np_,
    Phrase,
    Term,
    render_stored,
    stored,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("workflow", "web", "scoring", "storage")

#: The exception classes whose first argument pybabel extracts (`make catalog`). A new
#: DomainError subclass must be added here and to the Makefile's KEYWORDS.
ERROR_CLASSES = {
    "DomainError",
    "BadRequest",
    "NotAuthenticated",
    "Forbidden",
    "NotFound",
    "Conflict",
    "InvalidValue",
    "TooManyAttempts",
    "ServiceUnavailable",
    "UnsupportedBaseDocument",
    "ArchiveIntegrityError",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "NoticeRecordAltered",
}


@pytest.fixture(scope="module")
def app() -> Flask:
    """A bare app with the catalogs and the translator (no database)."""
    app = Flask(__name__)
    init_i18n(app)
    return app


def sources() -> Iterator[tuple[str, ast.Module]]:
    """Yield (path relative to the root, parsed module) of every product source file."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _string(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def codes_in(tree: ast.Module) -> set[str]:
    """Return the error codes a module uses."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "code" and (value := _string(keyword.value)):
                    found.add(value)
            name = _name(node.func)
            if name == "error_response" and len(node.args) > 1:
                found.add(_string(node.args[1]) or "")
            if name in ("InvalidInput", "__init__") and node.args:
                value = _string(node.args[0])
                if value and value.isidentifier() and value.islower():
                    found.add(value)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id == "code":
                    found.add(_string(node.value) or "")
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    for t, v in zip(target.elts, node.value.elts, strict=False):
                        if isinstance(t, ast.Name) and t.id == "code":
                            found.add(_string(v) or "")
                if isinstance(target, ast.Name) and target.id == "HTTP_ERRORS":
                    assert isinstance(node.value, ast.Dict)
                    for entry in node.value.values:
                        assert isinstance(entry, ast.Tuple)
                        found.add(_string(entry.elts[0]) or "")
    found.discard("")
    return found


def all_codes() -> set[str]:
    """Every error code used in the product's source."""
    return {code for _path, tree in sources() for code in codes_in(tree)}


def english_catalog() -> dict[str, str]:
    with (TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return {m.id: m.string for m in read_po(f, locale="en") if m.id and isinstance(m.id, str)}


def counted_catalog() -> dict[str, tuple[str, str]]:
    """The plural entries (`Np_`): Chinese msgid → (English singular, plural)."""
    with (TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return {
            m.id[0]: tuple(m.string) for m in read_po(f, locale="en") if isinstance(m.id, tuple)
        }


def test_the_scan_finds_the_codes() -> None:
    codes = all_codes()
    # one of each source: keyword, class attribute, HTTP table, input layer, error_response
    assert {
        "stale_version",
        "zip_bomb_suspected",
        "method_not_allowed",
        "filename_not_utf8",
        "input_too_long",
        "database_unavailable",
    } <= codes
    assert len(codes) > 100


def test_every_code_has_chinese_and_english_text() -> None:
    english = english_catalog()
    codes = all_codes()
    no_chinese = sorted(code for code in codes if not MESSAGES.get(code))
    assert not no_chinese, f"add these codes to workflow/messages.py MESSAGES: {no_chinese}"
    no_english = sorted(code for code in codes if not english.get(MESSAGES[code]))
    assert not no_english, (
        f"translate the texts of these codes (make catalog, web/portal/README.md): {no_english}"
    )
    general = [code for code, text in MESSAGES.items() if "%(" in text]
    assert not general, f"a code's general text takes no parameters: {general}"


def test_messages_stored_under_earlier_msgids_still_read_in_english() -> None:
    """Notifications keep their msgids: a changed message keeps its earlier msgids translated."""
    from web.tasks import EARLIER_JOB_LINES
    from workflow.jobs import EARLIER_JOB_MESSAGES
    from workflow.notify import (
        EARLIER_ITEM_MESSAGES,
        EARLIER_PUBLICATION_MESSAGES,
        EARLIER_YEARLESS_MESSAGES,
    )
    from workflow.reminders import EARLIER_ALERTS, EARLIER_REMINDERS
    from workflow.workdays import EARLIER_UNKNOWN_YEAR

    english, plurals = english_catalog(), counted_catalog()
    missing = [
        m
        for m in (
            *EARLIER_ITEM_MESSAGES,
            *EARLIER_YEARLESS_MESSAGES,
            *EARLIER_PUBLICATION_MESSAGES,
            *EARLIER_ALERTS,
            *EARLIER_REMINDERS,
            *EARLIER_JOB_MESSAGES,
            *EARLIER_UNKNOWN_YEAR,
            *EARLIER_JOB_LINES,
        )
        if not english.get(m) and not all(plurals.get(m, ("",)))
    ]
    assert not missing, missing
    stored = {"msgid": EARLIER_ITEM_MESSAGES[-1], "params": {"department": "交通局",
              "indicator": "指标1"}}  # fmt: skip
    assert render_stored(stored, lambda m: english.get(m) or m).endswith(
        "has been scored. Sign in to see it."
    )


def test_every_error_class_is_extracted() -> None:
    """A subclass of a refusal must be a pybabel keyword, or its messages escape the catalog."""
    for path, tree in sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {_name(base) for base in node.bases}
                if bases & ERROR_CLASSES and path != "web/portal/inputs.py":
                    assert node.name in ERROR_CLASSES, f"{path}: add {node.name} to the keywords"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for name in ERROR_CLASSES:
        assert f"-k {name} " in makefile or f"-k {name}\n" in makefile, name


def test_refusals_carry_literal_templates() -> None:
    """No f-string or computed message: the catalog could not hold it, English would lose it."""
    found = []
    for path, tree in sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            if _name(node.func) in ERROR_CLASSES and node.args:
                message = node.args[0]
                if not isinstance(message, ast.Constant | ast.Name | ast.Attribute):
                    found.append(f"{path}:{node.lineno}")
            for keyword in node.keywords:  # the store's refusals: message=N_("…"), params=…
                if keyword.arg == "message" and isinstance(keyword.value, ast.JoinedStr):
                    found.append(f"{path}:{node.lineno}")
    assert not found, f"raise with a literal template and params=…: {found}"


def test_parameters_survive_in_both_languages(app: Flask) -> None:
    error = InvalidValue(
        "评分项 %(sub_item)s 不属于本指标", code="unknown_sub_item", params={"sub_item": "3.2"}
    )
    assert str(error) == error.message == "评分项 3.2 不属于本指标"  # no request: Chinese
    with app.test_request_context("/portal/", headers={"Cookie": "lang=en"}):
        assert error.message == "Scoring point 3.2 does not belong to this indicator"
    with app.test_request_context("/api/v1/items", headers={"Accept-Language": "en"}):
        assert error.message == "Scoring point 3.2 does not belong to this indicator"
    with app.test_request_context("/api/v1/items"):
        assert error.message == "评分项 3.2 不属于本指标"
    too_large = FileTooLarge(2 * 1024 * 1024)
    with app.test_request_context("/portal/", headers={"Cookie": "lang=en"}):
        assert too_large.message == "The file is too large (limit 2 MB)."


def test_a_size_limit_reads_with_at_most_one_decimal_rounded_down() -> None:
    """The upload form's help text and the refusal say the limit alike: 2,000,000 bytes is
    "1.9 MB" (not "1.90735 MB" in the refusal and "1 MB" in the form)."""
    assert FileTooLarge(2_000_000).message == "文件超过大小上限（1.9 MB）"
    assert human_size(200 * 1024 * 1024) == "200 MB"
    assert human_size(512 * 1024) == "512 KB"
    assert human_size(1024 * 1024 - 1) == "1023.9 KB"


def test_pdf_refusals_are_literal_templates_in_both_languages(app: Flask) -> None:
    """scoring.pdf's refusals reach both faces as catalog templates (503 pdf_unavailable)."""
    english = {
        PDF_OFFICE_MISSING: "LibreOffice (soffice) is not installed on the server",
        PDF_CONVERSION_FAILED: "The PDF conversion failed",
    }
    for template, start in english.items():
        error = ServiceUnavailable(PdfUnavailable(template).template, code="pdf_unavailable")
        assert str(error) == template
        with app.test_request_context("/portal/", headers={"Cookie": "lang=en"}):
            assert error.message.startswith(start), error.message


def test_terms_are_translated_and_unknown_texts_fall_back_to_the_code(app: Flask) -> None:
    error = InvalidValue(
        "该类型按%(unit)s计数", code="bad_period", params={"unit": Term("月份（如 2018-08）")}
    )
    dynamic = Conflict("运行时拼出的文字", code="stale_version")
    bare = DomainError(code="invalid_cursor")
    with app.test_request_context("/portal/", headers={"Cookie": "lang=en"}):
        assert error.message == "This kind is counted by month (e.g. 2018-08)"
        assert dynamic.message.startswith("The item was changed since this page was loaded")
        assert bare.message == "The cursor is invalid."
    assert bare.message == "cursor 无效"


def test_a_reason_inside_a_message_is_translated_with_it(app: Flask) -> None:
    reason = Phrase(
        "文件内容与扩展名 %(extension)s 不符（检测到：%(label)s）",
        {"extension": ".docx", "label": "PDF"},
    )
    error = InvalidValue(
        "信头文件不是有效的 Word 文档（.docx）：%(reason)s",
        code="unsupported_file_type",
        params={"reason": reason},
    )
    assert error.message == (
        "信头文件不是有效的 Word 文档（.docx）：文件内容与扩展名 .docx 不符（检测到：PDF）"
    )
    with app.test_request_context("/portal/", headers={"Cookie": "lang=en"}):
        assert error.message == (
            "The letterhead is not a valid Word document (.docx): "
            "The file's content does not match its extension .docx (found: PDF)"
        )


def test_a_stored_text_renders_as_written_and_in_english(app: Flask) -> None:
    """A job's line or a message is kept as msgids and parameters (JSON); with the msgids it
    reads as it was written, in English as the catalog says; plain text has nothing stored."""
    problem = Term("事件内容与其哈希不符（记录被修改）")
    chain = Phrase(
        "审计链校验失败：第一个异常事件序号 %(seq)s（%(problem)s）", {"seq": 7, "problem": problem}
    )
    text = Lines(
        [
            Phrase("审计校验未通过，已通知管理员：%(found)s。详见报告文件", {"found": chain}),
            "  数据",
            "",
        ]
    )
    kept = stored(text)
    assert kept is not None and json.loads(json.dumps(kept)) == kept
    assert render_stored(kept, lambda msgid: msgid) == text
    assert stored("已导出考核结果") is None and stored(None) is None
    with app.test_request_context("/jobs", headers={"Cookie": "lang=en"}):
        assert stored_text(kept, text) == (
            "Audit verification failed, the administrators were told: Audit chain verification "
            "failed: first bad event #7 (the event does not match its hash (the record was "
            "changed)). See the report file\n  数据\n"
        )
        assert stored_text(None, "旧的文字") == "旧的文字"
        # A msgstr that does not fit its parameters: the Chinese as written, never a 500.
        assert stored_text({"msgid": "已导出%(table)s", "params": {"x": 1}}, "已导出") == "已导出"
    with app.test_request_context("/jobs"):
        assert stored_text(kept, "") == text


def test_counted_texts_read_one_item_and_two_items(app: Flask) -> None:
    """A counted text (`Np_`) takes the English form of its own `n`, a nested one of its own
    (items and working days counted apart); a row stored under an earlier counted msgid too.
    It read "1 item(s)", "3 working day(s) left"."""
    from workflow.reminders import EARLIER_REMINDERS

    def line(n: int, days: int) -> dict[str, object] | None:
        left = Phrase(
            Np_("（%(due)s 截止，含今天剩余 %(n)s 个工作日）"), {"due": "2018-10-08", "n": days}
        )
        return stored(
            Phrase(
                Np_("%(queue)s %(n)s 项%(left)s"), {"queue": Term("待初审"), "n": n, "left": left}
            )
        )

    with app.test_request_context("/me/messages", headers={"Cookie": "lang=en"}):
        assert stored_text(line(1, 3), "") == (
            "To review: 1 item (due 2018-10-08; 3 working days left, today included)"
        )
        assert stored_text(line(3, 1), "") == (
            "To review: 3 items (due 2018-10-08; 1 working day left, today included)"
        )
        earlier = {"msgid": EARLIER_REMINDERS[0], "params": {"n": 1}}
        assert stored_text(earlier, "") == "Overdue: 1 item not submitted"
    with app.test_request_context("/me/messages"):
        assert (
            stored_text(line(1, 3), "") == "待初审 1 项（2018-10-08 截止，含今天剩余 3 个工作日）"
        )


def test_a_counted_refusal_and_job_line_read_one_and_several_in_english(app: Flask) -> None:
    """「尚有 1 个考核事项未评分」 read "1 items are not scored yet"; a job's line "found 1
    difference(s)"."""
    from workflow.assessments import NOT_ALL_SCORED

    one, three = (Conflict(NOT_ALL_SCORED, code="not_all_scored", params={"n": n}) for n in (1, 3))
    line = stored(Phrase(Np_("数据核对发现 %(n)s 处不一致"), {"n": 1}))
    with app.test_request_context("/portal/", headers={"Cookie": "lang=en"}):
        assert one.message == "1 item is not scored yet; the results cannot be published"
        assert three.message == "3 items are not scored yet; the results cannot be published"
        assert stored_text(line, "") == "reconciliation found 1 difference"
    with app.test_request_context("/api/v1/items", headers={"Accept-Language": "en"}):
        assert one.message.startswith("1 item is not scored yet")
    assert one.message == "尚有 1 个考核事项未评分，不能公示"  # no request: Chinese


def test_the_archives_line_counts_departments_and_files_each_on_its_own(app: Flask) -> None:
    """It read "Archived 1 department(s), 12 evidence file(s) in all"; a row stored under
    the earlier msgid reads without "(s)" too."""
    from web.tasks import EARLIER_JOB_LINES, archives_outcome

    earlier = {"msgid": EARLIER_JOB_LINES[0], "params": {"departments": 1, "files": 1}}
    with app.test_request_context("/jobs", headers={"Cookie": "lang=en"}):
        assert stored_text(stored(archives_outcome(1, 1)), "") == (
            "Archived 1 department, 1 evidence file in all"
        )
        assert stored_text(stored(archives_outcome(26, 312)), "") == (
            "Archived 26 departments, 312 evidence files in all"
        )
        assert stored_text(earlier, "") == "Departments archived: 1; evidence files in all: 1"
    assert str(archives_outcome(26, 312)) == "已归档 26 个部门，共 312 个材料文件"


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_general_texts_render(app: Flask, code: str) -> None:
    with app.test_request_context("/api/v1/", headers={"Accept-Language": "en"}):
        text = DomainError(code=code).message
    assert text and text != MESSAGES[code]
