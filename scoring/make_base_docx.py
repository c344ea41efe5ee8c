"""Write the shipped base document `templates/notice_base.docx`.

Run `python -m scoring.make_base_docx [PATH]`. The file is a blank GB/T 9704 page: A4 with
the official margins, Normal in 仿宋_GB2312 三号 and "— 1 —" page numbers on the outer side.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

import docx
from docx.document import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.rel import Relationships
from docx.oxml.ns import qn
from docx.styles.style import ParagraphStyle

from scoring.docx_text import (
    FONT_BODY,
    SIZE_SAN_HAO,
    apply_official_layout,
    set_style_font,
    write_page_number_footer,
)

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "templates" / "notice_base.docx"


# The stock template's thumbnail (a python-docx picture), its Word 2010 style copy and a
# sample custom XML item: not wanted in an official document, and they triple the size.
_UNWANTED_PARTS = frozenset(
    {
        RT.THUMBNAIL,
        RT.CUSTOM_XML,
        "http://schemas.microsoft.com/office/2007/relationships/stylesWithEffects",
    }
)


def _drop_relationships(rels: Relationships, reltypes: frozenset[str]) -> None:
    for r_id, rel in list(rels.items()):
        if rel.reltype in reltypes:
            del rels[r_id]


def build_base_document() -> Document:
    """Return a new, empty python-docx document set up as a GB/T 9704 page."""
    document = docx.Document()
    for paragraph in list(document.paragraphs):  # the stock template's body is empty; be sure
        paragraph._p.getparent().remove(paragraph._p)
    normal = document.styles["Normal"]
    if not isinstance(normal, ParagraphStyle) or normal.type != WD_STYLE_TYPE.PARAGRAPH:
        raise TypeError("the stock template has no Normal paragraph style")
    set_style_font(normal, FONT_BODY, SIZE_SAN_HAO)
    # docDefaults name theme fonts; replace them so unstyled text is 仿宋 too.
    defaults = document.styles.element.find(qn("w:docDefaults"))
    if defaults is not None:
        for rfonts in defaults.iter(qn("w:rFonts")):
            for key in list(rfonts.attrib):
                del rfonts.attrib[key]
            for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
                rfonts.set(qn(attr), FONT_BODY)
    for section in document.sections:
        apply_official_layout(section)
        write_page_number_footer(section)
    document.settings.odd_and_even_pages_header_footer = True  # page numbers outside
    _drop_relationships(document.part.package.rels, _UNWANTED_PARTS)
    _drop_relationships(document.part.rels, _UNWANTED_PARTS)
    props = document.core_properties
    props.author = ""
    props.last_modified_by = ""
    props.title = ""
    props.comments = ""
    props.keywords = ""
    props.subject = ""
    return document


def base_document_bytes() -> bytes:
    """Return the bytes of a freshly built base document (what the shipped file holds)."""
    buffer = BytesIO()
    build_base_document().save(buffer)
    return buffer.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    """Write the base document to the path in `argv` (default `templates/notice_base.docx`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    path = Path(args[0]) if args else DEFAULT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base_document_bytes())
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
