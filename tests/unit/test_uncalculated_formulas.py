"""Formula cells a file holds no result for (`workflow.spreadsheets.uncalculated_formulas`).

openpyxl writes a formula with an empty `<v>`; read for values it was an empty cell, so a
姓名 written as a formula by a script was imported as no name. Excel, WPS and LibreOffice
store the result beside the formula when they save (`t="str"` for text, even empty text).
"""

from __future__ import annotations

import io
import zipfile

from openpyxl import Workbook

from workflow.spreadsheets import uncalculated_formulas

SHEET = "xl/worksheets/sheet1.xml"


def script_written(rows: list[list[object]]) -> bytes:
    """A workbook as a script writes it: formulas without results."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def with_results(data: bytes, results: dict[str, str]) -> bytes:
    """The same workbook as Excel saves it: each formula cell (by reference) with its text
    result stored."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == SHEET:
                xml = content.decode()
                for ref, value in results.items():
                    start = xml.index(f'<c r="{ref}"')
                    end = xml.index("</c>", start)
                    cell = xml[start:end].replace(f'<c r="{ref}"', f'<c r="{ref}" t="str"', 1)
                    cell = cell.replace("<v></v>", f"<v>{value}</v>").replace("<v />", "")
                    if "<v>" not in cell:
                        cell += f"<v>{value}</v>"
                    xml = xml[:start] + cell + xml[end:]
                content = xml.encode()
            target.writestr(info, content)
    return out.getvalue()


def test_a_script_written_formula_has_no_result() -> None:
    data = script_written(
        [["用户名", "姓名"], ["wang.wu", '="王"&"五"'], ["li.si", "李四", "=1+1"]]
    )
    assert uncalculated_formulas(data) == [(2, 2), (3, 3)]


def test_a_saved_formula_has_its_result_even_empty_text() -> None:
    data = script_written([["用户名", "姓名"], ["wang.wu", '="王"&"五"'], ["li.si", '=""']])
    assert uncalculated_formulas(with_results(data, {"B2": "王五", "B3": ""})) == []
    assert uncalculated_formulas(with_results(data, {"B2": "王五"})) == [(3, 2)]


def test_text_that_looks_like_a_formula_is_text() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["A1"] = "=1+1"
    sheet["A1"].data_type = "s"  # typed as text, as the product's own exports write it
    out = io.BytesIO()
    book.save(out)
    assert uncalculated_formulas(out.getvalue()) == []
