"""Small genuine files of every accepted kind, and hostile ones, built in memory."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import docx

PDF = (
    b"%PDF-1.4\n"
    b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)

# A tiny JFIF-headed JPEG stream; sniffing only reads the header.
JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010101004800480000ffdb004300030202020203020202030303030406040404040408"
    "06060506090809090a0c0f0c0a0b0e0b09090d110d0e0f101011100a0c12131210130f101010ffc9000b08000100"
    "010101110000ffcc000600101005ffda0008010100003f00d2cf20ffd9"
)

TIFF = b"II*\x00\x08\x00\x00\x00" + b"\x00" * 16

# Compound File Binary header: what DOC, XLS, PPT, WPS and ET files start with.
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504

# An MZ (Windows executable) header.
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 112

HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"

CSV_GB18030 = "部门,得分,备注\n市交通运输局,95,按时提交\n市市场监管局,88,\n".encode("gb18030")


def png() -> bytes:
    """Return a valid 1×1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


def docx_bytes(text: str = "关于放管服改革工作的自评报告") -> bytes:
    """Return a real Word document built with python-docx."""
    document = docx.Document()
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """Return a deflated ZIP holding *members*."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def xlsx_bytes() -> bytes:
    """Return a minimal but valid one-sheet workbook."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rels = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package_rels = "http://schemas.openxmlformats.org/package/2006/relationships"
    return zip_bytes(
        {
            "[Content_Types].xml": (
                b'<?xml version="1.0" encoding="UTF-8"?>'
                b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                b'<Default Extension="rels" '
                b'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                b'<Default Extension="xml" ContentType="application/xml"/>'
                b'<Override PartName="/xl/workbook.xml" ContentType="application/'
                b'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
                b'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                b"</Types>"
            ),
            "_rels/.rels": (
                f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{package_rels}">'
                f'<Relationship Id="rId1" Type="{rels}/officeDocument" Target="xl/workbook.xml"/>'
                "</Relationships>"
            ).encode(),
            "xl/workbook.xml": (
                f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" '
                f'xmlns:r="{rels}"><sheets><sheet name="得分" sheetId="1" r:id="rId1"/></sheets>'
                "</workbook>"
            ).encode(),
            "xl/_rels/workbook.xml.rels": (
                f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{package_rels}">'
                f'<Relationship Id="rId1" Type="{rels}/worksheet" '
                'Target="worksheets/sheet1.xml"/></Relationships>'
            ).encode(),
            "xl/worksheets/sheet1.xml": (
                f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{main}"><sheetData>'
                '<row r="1"><c r="A1"><v>95</v></c></row></sheetData></worksheet>'
            ).encode(),
        }
    )


def ofd_bytes() -> bytes:
    """Return a minimal OFD (GB/T 33190) package: a ZIP with ``OFD.xml`` at its root."""
    return zip_bytes(
        {
            "OFD.xml": (
                b'<?xml version="1.0" encoding="UTF-8"?>'
                b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.0" DocType="OFD">'
                b"<ofd:DocBody><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody>"
                b"</ofd:OFD>"
            ),
            "Doc_0/Document.xml": b'<ofd:Document xmlns:ofd="http://www.ofdspec.org/2016"/>',
        }
    )


def zip_bomb(member_mb: int = 200) -> bytes:
    """Return a DOCX-shaped ZIP whose one member inflates to *member_mb* MB of zeros."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = bytes(1024 * 1024)
            for _ in range(member_mb):
                member.write(block)
    return buffer.getvalue()
