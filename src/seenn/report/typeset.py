"""Tables typeset as in a paper (reportlab platypus): rules above and below the header and at the
end, no grid, numbers right-aligned at the same decimals per column (so decimal points line up),
units in the headers, text wrapped rather than cut: every column fits the text width."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import matplotlib
import pandas as pd
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, Table, TableStyle

from seenn.report.labels import cell, column_format, header

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # DejaVu, shipped with matplotlib (β, ±, µ, ×)
FONTS = {"Serif": "DejaVuSerif.ttf", "Serif-Bold": "DejaVuSerif-Bold.ttf", "Serif-Italic": "DejaVuSerif-Italic.ttf",
         "Serif-BoldItalic": "DejaVuSerif-BoldItalic.ttf", "Mono": "DejaVuSansMono.ttf"}


def register_fonts() -> None:
    """The DejaVu faces under the names the report's styles use (once per process)."""
    for name, file in FONTS.items():
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(FONT_DIR / file)))
    pdfmetrics.registerFontFamily("Serif", normal="Serif", bold="Serif-Bold", italic="Serif-Italic",
                                  boldItalic="Serif-BoldItalic")


register_fonts()

PAD = 4  # points of padding each side of a cell
SIZES = (8.5, 7.5, 6.5)  # font sizes tried in turn until the table fits


@dataclass
class Grid:
    """A table as text: headers and rows of printed cells, and which columns hold numbers."""

    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]


def grid(df: pd.DataFrame, columns: list[str] | None = None, names: dict[str, str] | None = None) -> Grid:
    """The printed cells of `df`'s `columns` (all by default): headers from seenn.report.labels
    (or `names`), values at each column's format."""
    columns = list(df.columns) if columns is None else columns
    names = names or {}
    fmts = [column_format(c) for c in columns]
    rows = [[cell(v, f) for v, f in zip(row, fmts)] for row in df[columns].itertuples(index=False, name=None)]
    numeric = [f != "text" for f in fmts]
    return Grid([names.get(c) or header(c) for c in columns], rows, numeric)


def _widths(g: Grid, font: str, bold: str, size: float, avail: float) -> list[float] | None:
    """Column widths that fit `avail` points: numbers at full width, text and headers wrapped at
    word boundaries where needed (never narrower than their longest word); None if impossible."""
    def w(text, f):
        return stringWidth(text, f, size) + 2 * PAD

    def longest_word(text, f):
        return max((w(word, f) for word in text.split()), default=2 * PAD)

    n = len(g.headers)
    body = [max([w(r[c], font) for r in g.rows] or [2 * PAD]) for c in range(n)]
    head_full = [w(h, bold) for h in g.headers]
    minimum = [max(longest_word(g.headers[c], bold),
                   body[c] if g.numeric[c] else max([longest_word(r[c], font) for r in g.rows] or [2 * PAD]))
               for c in range(n)]
    natural = [max(body[c], head_full[c]) for c in range(n)]  # nothing wrapped
    unwrapped_body = [max(body[c], minimum[c]) for c in range(n)]  # headers wrapped, cells whole
    if sum(minimum) > avail:
        return None
    if sum(natural) <= avail:
        return natural
    # wrap headers first (cells whole), then text cells: move each column from one width toward the
    # next by the same fraction until the table fits
    for wide, narrow in ((natural, unwrapped_body), (unwrapped_body, minimum)):
        if sum(narrow) <= avail:
            frac = (sum(wide) - avail) / (sum(wide) - sum(narrow))
            return [w_ - (w_ - n_) * frac for w_, n_ in zip(wide, narrow)]
    return minimum


def fits(g: Grid, avail: float, font: str = "Serif", bold: str = "Serif-Bold") -> bool:
    return _widths(g, font, bold, SIZES[-1], avail) is not None


def split(g: Grid, avail: float, font: str = "Serif", bold: str = "Serif-Bold") -> list[Grid]:
    """A grid too wide for `avail` points as several that fit: each repeats the leading text
    columns (the row labels) and takes as many of the other columns as fit."""
    if fits(g, avail, font, bold):
        return [g]
    keys = next((i for i, num in enumerate(g.numeric) if num), 1) or 1
    parts, cols = [], list(range(keys, len(g.headers)))

    def sub(cs):
        idx = list(range(keys)) + cs
        return Grid([g.headers[i] for i in idx], [[r[i] for i in idx] for r in g.rows], [g.numeric[i] for i in idx])

    while cols:
        take = 1
        while take < len(cols) and fits(sub(cols[: take + 1]), avail, font, bold):
            take += 1
        parts.append(sub(cols[:take]))
        cols = cols[take:]
    return parts


def flowable(g: Grid, avail: float, font: str = "Serif", bold: str = "Serif-Bold") -> Table:
    """The platypus Table of a grid, at the largest font size of SIZES that fits `avail` points
    (a grid that does not fit at all is `split` first; a single column that cannot fit overflows)."""
    for size in SIZES:
        widths = _widths(g, font, bold, size, avail)
        if widths is not None:
            break
    else:
        widths = None  # one part of a split that still cannot fit: natural widths, wrapped headers
    base = ParagraphStyle("cell", fontName=font, fontSize=size, leading=size * 1.2)
    head = ParagraphStyle("head", parent=base, fontName=bold)
    right = ParagraphStyle("right", parent=base, alignment=2)
    head_right = ParagraphStyle("head_right", parent=head, alignment=2)
    data = [[Paragraph(escape(h), head_right if num else head) for h, num in zip(g.headers, g.numeric)]]
    data += [[Paragraph(escape(v), right if num else base) for v, num in zip(row, g.numeric)] for row in g.rows]
    table = Table(data, colWidths=widths or [avail / len(g.headers)] * len(g.headers), repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("LINEABOVE", (0, 0), (-1, 0), 1.0, colors.black),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
        ("LINEBELOW", (0, -1), (-1, -1), 1.0, colors.black),
        ("VALIGN", (0, 0), (-1, 0), "BOTTOM"), ("VALIGN", (0, 1), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), PAD), ("RIGHTPADDING", (0, 0), (-1, -1), PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]))
    return table
