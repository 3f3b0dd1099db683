"""The report's sections, in order: each is one function that reads the run's files (`Run`) and
writes headings, paragraphs, tables and figures into the Document; a section appears only when
every input it needs is declared (conversion off: no conversion section). A new section is one
function and one entry of SECTIONS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from seenn.report.appendix import configuration, energy, method_notes_section, paper, provenance_section, seeds, teas
from seenn.report.chapters import conversion, data_models, seenn1, seenn2, summary
from seenn.report.document import Document
from seenn.report.guarantee import section as guarantee
from seenn.report.rules import section as rules
from seenn.report.run import Run


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    needs: tuple[str, ...]  # input roles the section reads: it appears only when all are declared
    write: Callable[[Run, Document], None]


SECTIONS = (
    Section("summary", "Summary", ("headline_csv", "summary"), summary),
    Section("data", "Data and models", ("manifest",), data_models),
    Section("seenn1", "SEENN-I: confidence thresholding", ("methods_csv", "tradeoff"), seenn1),
    Section("guarantee", "Early exit with a guarantee", ("guarantee_csv", "guarantee_epsilon"), guarantee),
    Section("rules", "Every published exit rule on one footing", ("rules_csv", "rules_front_csv", "rules_pareto"), rules),
    Section("seenn2", "SEENN-II: fine-tuning and the policy network", ("seenn2_sweep_csv", "seenn2_result"), seenn2),
    Section("conversion", "ANN-to-SNN conversion (QCFS)", ("conversion_csv", "metrics_converted"), conversion),
    Section("teas", "TEAS: layer-wise time steps", ("teas_csv", "teas_activity_csv", "teas_activity", "teas_allocation"),
            teas),
    Section("paper", "The paper beside this run", ("paper_comparison_csv", "paper_numbers"), paper),
    Section("seeds", "Across seeds", ("seeds_csv",), seeds),
    Section("energy", "Energy per inference", ("energy_csv", "energy"), energy),
    Section("notes", "Method notes", (), method_notes_section),
    Section("provenance", "Provenance", ("manifest",), provenance_section),
    Section("config", "Configuration", (), configuration),
)


def present(inputs: dict, sections=SECTIONS) -> list[Section]:
    """The sections whose inputs are all declared, in order."""
    return [s for s in sections if all(r in inputs for r in s.needs)]


def write_document(run: Run, title: str, subtitle: str, path: str, sections=SECTIONS) -> Document:
    """Build the report from `sections` (those present) into `path`; returns the Document (its tables for tests)."""
    shown = present(run.inputs, sections)
    doc = Document(title, [(s.key, s.title) for s in shown])
    doc.title_block(subtitle)
    for s in shown:
        s.write(run, doc)
    doc.build(path)
    return doc
