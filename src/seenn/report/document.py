"""The document builder the report's sections write into (reportlab platypus): numbered
sections with PDF bookmarks and an outline, numbered tables and figures with captions,
cross-references, page numbers. reportlab's invariant mode makes identical inputs give identical bytes."""

from __future__ import annotations

from xml.sax.saxutils import escape

import pandas as pd
from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.platypus import (
    BaseDocTemplate,
    Frame,
    Image,
    KeepTogether,
    PageBreak,
    PageTemplate,
    Paragraph,
    Preformatted,
    Spacer,
)
from reportlab.platypus.flowables import BalancedColumns

from seenn.report import typeset

rl_config.invariant = 1  # no creation date, a document id from the content: identical bytes on rerun

MARGIN = 2.0 * cm
TEXT_WIDTH = A4[0] - 2 * MARGIN
MAX_FIGURE_HEIGHT = 0.42 * (A4[1] - 2 * MARGIN)  # two figures to a page where they fit


BODY = ParagraphStyle("body", fontName="Serif", fontSize=9.5, leading=13, spaceAfter=5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=8.5, leading=11.5)
CAPTION = ParagraphStyle("caption", parent=BODY, fontSize=8.5, leading=11, spaceBefore=3, spaceAfter=10)
H1 = ParagraphStyle("h1", parent=BODY, fontName="Serif-Bold", fontSize=14, leading=18, spaceBefore=12, spaceAfter=6)
H2 = ParagraphStyle("h2", parent=BODY, fontName="Serif-Bold", fontSize=11, leading=14, spaceBefore=8, spaceAfter=4)
TITLE = ParagraphStyle("title", parent=BODY, fontName="Serif-Bold", fontSize=18, leading=23, spaceAfter=4)
MONO = ParagraphStyle("mono", fontName="Mono", fontSize=7.5, leading=9.5)
BULLET = ParagraphStyle("bullet", parent=BODY, leftIndent=12, bulletIndent=2)


def text(s: str) -> str:
    """Plain text made safe for a paragraph's markup."""
    return escape(s)


class _Heading(Paragraph):
    """A heading that becomes a bookmark and an outline entry when it is placed."""

    def __init__(self, markup: str, style, key: str, title: str, level: int):
        super().__init__(markup, style)
        self.outline = (key, title, level)


class _Template(BaseDocTemplate):
    def afterFlowable(self, flowable):
        if isinstance(flowable, _Heading):
            key, title, level = flowable.outline
            self.canv.bookmarkPage(key)
            self.canv.addOutlineEntry(title, key, level=level, closed=level > 0)


class Document:
    """What a section function writes into: headings, paragraphs, typeset tables and figures.
    Sections are numbered in the order given; `ref(key)` links to a section by its key."""

    def __init__(self, title: str, sections: list[tuple[str, str]]):
        self.title = title
        self.numbers = {key: i for i, (key, _) in enumerate(sections, 1)}
        self.titles = dict(sections)
        self.story: list = []
        self.tables = 0
        self.figures = 0
        self._sub = 0
        self.grids: list[typeset.Grid] = []  # every table placed (the tests scan their cells)

    # --- structure -----------------------------------------------------------------------
    def title_block(self, subtitle: str) -> None:
        self.story += [Paragraph(text(self.title), TITLE), Paragraph(text(subtitle), SMALL), Spacer(1, 4)]

    def section(self, key: str, new_page: bool = False) -> None:
        n, title = self.numbers[key], self.titles[key]
        self._sub = 0
        if new_page:
            self.story.append(PageBreak())
        self.story.append(_Heading(f"{n}&nbsp;&nbsp;{text(title)}", H1, f"sec-{key}", f"{n} {title}", 0))

    def subsection(self, title: str) -> None:
        self._sub += 1
        key = f"sec-{len(self.story)}"
        n = f"{self._current()}.{self._sub}"
        self.story.append(_Heading(f"{n}&nbsp;&nbsp;{text(title)}", H2, key, f"{n} {title}", 1))

    def _current(self) -> int:
        headings = [f for f in self.story if isinstance(f, _Heading) and f.outline[2] == 0]
        return int(headings[-1].outline[1].split()[0])

    def ref(self, key: str) -> str:
        """Markup of a link to a section: 'Section n', or '' when the section is not in the document."""
        if key not in self.numbers:
            return ""
        return f'<a href="#sec-{key}" color="#1f4e9a">Section {self.numbers[key]}</a>'

    def has(self, key: str) -> bool:
        return key in self.numbers

    # --- content -------------------------------------------------------------------------
    def para(self, s: str, markup: bool = False, style=BODY) -> None:
        self.story.append(Paragraph(s if markup else text(s), style))

    def bullets(self, items: list[str], markup: bool = False) -> None:
        for s in items:
            self.story.append(Paragraph(s if markup else text(s), BULLET, bulletText="•"))

    def mono(self, blocks: list[str], columns: int = 3) -> None:
        """Monospace blocks (config sections) flowed into balanced columns."""
        self.story.append(BalancedColumns([Preformatted(b, MONO) for b in blocks], nCols=columns, spaceBefore=2))

    def table(self, df: pd.DataFrame, caption: str, columns: list[str] | None = None,
              names: dict[str, str] | None = None) -> str:
        """A numbered table with its caption above it (as in a paper); returns 'Table n'."""
        g = typeset.grid(df, columns, names)
        self.grids.append(g)
        self.tables += 1
        label = f"Table {self.tables}"
        parts = typeset.split(g, TEXT_WIDTH)
        for i, part in enumerate(parts):
            head = f"<b>{label}.</b> {text(caption)}" if i == 0 else f"<b>{label}</b> (continued: more columns)."
            cap = Paragraph(head, CAPTION)
            flow = typeset.flowable(part, TEXT_WIDTH)
            if len(part.rows) <= 25:
                self.story.append(KeepTogether([cap, flow, Spacer(1, 8)]))
            else:
                self.story += [cap, flow, Spacer(1, 8)]
        return label

    def figure(self, png: str, caption: str, width: float = 1.0) -> str:
        """A numbered figure at `width` of the text width (no taller than MAX_FIGURE_HEIGHT), its
        caption below; returns 'Figure n'."""
        self.figures += 1
        label = f"Figure {self.figures}"
        img = Image(png)
        w = TEXT_WIDTH * width
        h = w * img.imageHeight / img.imageWidth
        if h > MAX_FIGURE_HEIGHT:
            w, h = w * MAX_FIGURE_HEIGHT / h, MAX_FIGURE_HEIGHT
        img.drawWidth, img.drawHeight = w, h
        img.hAlign = "CENTER"
        self.story.append(KeepTogether([img, Paragraph(f"<b>{label}.</b> {text(caption)}", CAPTION)]))
        return label

    # --- output --------------------------------------------------------------------------
    def build(self, path: str) -> None:
        doc = _Template(str(path), pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                        bottomMargin=MARGIN, title=self.title, author="seenn-bench", creator="seenn-bench",
                        subject="SEENN benchmark", pageCompression=1)
        frame = Frame(MARGIN, MARGIN, TEXT_WIDTH, A4[1] - 2 * MARGIN, id="text", leftPadding=0, rightPadding=0,
                      topPadding=0, bottomPadding=0)
        doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=self._footer)])
        doc.build(list(self.story))

    def _footer(self, canv, doc) -> None:
        canv.saveState()
        canv.setFont("Serif", 8)
        canv.drawCentredString(A4[0] / 2, MARGIN / 2, f"{self.title} — page {doc.page}")
        canv.restoreState()
