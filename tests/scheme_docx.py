"""Build the 2018 考核细则 as a .docx (python-docx) from the notice's text and its table.

`tests/data/jiaohe-2018-rules.txt` is the notice as text: paragraphs, then the attachment's
分值构成 table, one cell per line starting with a tab, rows separated by blank lines. The
table's first column (the units) is merged down every row and the second (考评内容) down its
category's rows, as in the office's document.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from docx import Document

RULES_TEXT = Path(__file__).resolve().parent / "data" / "jiaohe-2018-rules.txt"


def seed_parts(text: str | None = None) -> tuple[list[str], list[list[str]], list[str]]:
    """The paragraphs before the table, the table's rows (3 cells each), the paragraphs after."""
    lines = (text if text is not None else RULES_TEXT.read_text("utf-8")).splitlines()
    start = lines.index("附件")  # the attachment: its title, then the table
    before = [line.rstrip() for line in lines[:start] if line.strip()]
    after: list[str] = []
    rows: list[list[str]] = []
    row: list[str] = []
    for line in lines[start:]:
        if line.startswith("\t") and not after:
            row.append(line[1:].strip())
            if len(row) == 3:
                rows.append(row)
                row = []
        elif line.strip():
            (after if rows else before).append(line.strip())
    return before, rows, after


def build_docx(edit: Callable[[str], str] | None = None) -> bytes:
    """The notice as a .docx; `edit` may change the text first (a changed point value)."""
    text = RULES_TEXT.read_text("utf-8")
    if edit is not None:
        text = edit(text)
    before, rows, after = seed_parts(text)
    document = Document()
    for paragraph in before:
        document.add_paragraph(paragraph)
    table = document.add_table(rows=len(rows), cols=3)
    for r, cells in enumerate(rows):
        for c, value in enumerate(cells):
            table.cell(r, c).text = value
    # Merge as the document does: units down every data row, each category down its rows.
    table.cell(1, 0).merge(table.cell(len(rows) - 1, 0))
    start = 1
    for r in range(2, len(rows) + 1):
        if r == len(rows) or rows[r][1]:
            if r - 1 > start:
                top = table.cell(start, 1)
                text_top = rows[start][1]
                top.merge(table.cell(r - 1, 1))
                top.text = text_top
            start = r
    table.cell(1, 0).text = rows[1][0]
    for paragraph in after:
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
