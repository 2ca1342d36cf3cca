"""Print-ready PDF of a notice, laid out from the notice's own HTML.

The HTML rendered from the supervisor's template is the notice (its hash is
in the audit trail); the PDF is a faithful print of it, not a second
template. This module reads the HTML's headings, paragraphs and tables with
the standard library's parser and sets them on A4 with reportlab:

* Chinese text needs a CJK font *embedded* in the file. We look for a
  TrueType-outline font (Debian ``fonts-wqy-microhei`` or ``-zenhei``;
  ``$CASEWORK_CJK_FONT`` overrides). Noto CJK is CFF-outlined, which
  reportlab cannot embed. Without one, reportlab's built-in ``STSong-Light``
  CID font is used: the text is right and extractable, but viewers
  substitute the glyphs, so a warning is logged.
* Table header rows repeat on every page; long cells wrap at CJK
  boundaries; short cells (names, ID numbers) never wrap, so copying text
  out of the PDF gives them whole.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from xml.sax.saxutils import escape

__all__ = ["CJK_FONT_CANDIDATES", "cjk_font", "html_to_pdf"]

logger = logging.getLogger(__name__)

CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
_FONT_NAME = "CaseworkCJK"
_registered: list[str] = []


def cjk_font() -> str:
    """Register (once) and return the name of the CJK font to use."""
    if _registered:
        return _registered[0]
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    candidates = [os.environ["CASEWORK_CJK_FONT"]] if os.environ.get("CASEWORK_CJK_FONT") else []
    candidates += list(CJK_FONT_CANDIDATES)
    for path in candidates:
        if Path(path).is_file():
            pdfmetrics.registerFont(TTFont(_FONT_NAME, path, subfontIndex=0))
            _registered.append(_FONT_NAME)
            return _FONT_NAME
    logger.warning(
        "no embeddable CJK font found (install Debian's fonts-wqy-microhei); "
        "using the built-in STSong-Light, which viewers substitute"
    )
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    _registered.append("STSong-Light")
    return "STSong-Light"


@dataclass
class _Block:
    kind: str  # "h1" | "h2" | "h3" | "p" | "table"
    text: str = ""
    css_class: str = ""
    rows: list[list[str]] = field(default_factory=list)
    header_rows: int = 0


class _NoticeParser(HTMLParser):
    """Collects headings, paragraphs and tables; ignores head, style and script."""

    _SKIP = frozenset({"head", "style", "script", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[_Block] = []
        self._skip = 0
        self._block: _Block | None = None
        self._table: _Block | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._row_is_header = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in ("h1", "h2", "h3", "p"):
            self._block = _Block(tag, css_class=dict(attrs).get("class") or "")
        elif tag == "br":
            self._text("\n")
        elif tag == "table":
            self._table = _Block("table")
        elif tag == "tr" and self._table is not None:
            self._row, self._row_is_header = [], True
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
            if tag == "td":
                self._row_is_header = False

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in ("h1", "h2", "h3", "p") and self._block is not None:
            self._block.text = self._block.text.strip()
            if self._block.text:
                self.blocks.append(self._block)
            self._block = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            if self._row:
                if self._row_is_header and len(self._table.rows) == self._table.header_rows:
                    self._table.header_rows += 1
                self._table.rows.append(self._row)
            self._row = None
        elif tag == "table" and self._table is not None:
            if self._table.rows:
                self.blocks.append(self._table)
            self._table = None

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._text(data)

    def _text(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._block is not None:
            self._block.text += data if data == "\n" else " ".join(data.split()) if data.strip() else ""


def html_to_pdf(html: str, title: str = "") -> bytes:
    """Lay out a notice's HTML as an A4 PDF and return its bytes."""
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER, TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

    font = cjk_font()
    parser = _NoticeParser()
    parser.feed(html)
    parser.close()
    body = ParagraphStyle("body", fontName=font, fontSize=11, leading=17, wordWrap="CJK", spaceAfter=4)
    cell = ParagraphStyle("cell", parent=body, fontSize=9.5, leading=13, spaceAfter=0)
    styles = {
        "h1": ParagraphStyle("h1", parent=body, fontSize=17, leading=24, alignment=TA_CENTER, spaceAfter=10),
        "h2": ParagraphStyle("h2", parent=body, fontSize=14, leading=20, spaceAfter=6),
        "h3": ParagraphStyle("h3", parent=body, fontSize=12, leading=18, spaceAfter=4),
        "p": body,
        "issuer": ParagraphStyle("issuer", parent=body, alignment=TA_RIGHT, spaceBefore=14),
    }
    width = A4[0] - 36 * mm
    story: list = []  # type: ignore[type-arg]
    for block in parser.blocks:
        if block.kind == "table":
            story.append(_table(block, width, font, cell, LongTable, TableStyle, Paragraph, colors))
            story.append(Spacer(1, 4 * mm))
        else:
            style = styles["issuer"] if "issuer" in block.css_class.split() else styles[block.kind]
            story.append(Paragraph(escape(block.text).replace("\n", "<br/>"), style))

    def footer(canvas, doc) -> None:  # type: ignore[no-untyped-def]
        canvas.saveState()
        canvas.setFont(font, 8)
        canvas.drawCentredString(A4[0] / 2, 10 * mm, f"第 {doc.page} 页")
        canvas.restoreState()

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=18 * mm,
        title=title, author="casework", invariant=True,
    )  # fmt: skip
    doc.build(story or [Paragraph("", body)], onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


def _table(block: _Block, width: float, font: str, cell, LongTable, TableStyle, Paragraph, colors):  # type: ignore[no-untyped-def]
    columns = max(len(r) for r in block.rows)
    rows = [r + [""] * (columns - len(r)) for r in block.rows]

    # widths follow the longest text per column (CJK characters count double), within the page
    def weight(text: str) -> int:
        return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)

    natural = [max(weight(r[i]) for r in rows) + 2 for i in range(columns)]
    total = sum(natural)
    widths = [width * n / total for n in natural]
    data = []
    for r in rows:
        # long texts wrap (Paragraph); short ones stay whole so they copy out intact
        data.append([Paragraph(escape(c), cell) if weight(c) > 24 else c for c in r])
    table = LongTable(data, colWidths=widths, repeatRows=block.header_rows)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), font, 9.5),
                ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                *([("BACKGROUND", (0, 0), (-1, block.header_rows - 1), colors.lightgrey)] if block.header_rows else []),
            ]
        )
    )
    return table
