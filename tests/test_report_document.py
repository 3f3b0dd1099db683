"""The PDF report as a document: findings computed from the numbers (they flip when the numbers
do), paper-style tables (aligned decimals, human headers, no code names in any cell, nothing cut),
sections that follow the declared inputs, and identical bytes from identical inputs. The
end-to-end build reads the small finished run in tests/fixtures/report_run/ (see its README)."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from seenn.report import labels, typeset
from seenn.report.findings import findings
from seenn.report.labels import code_names

FIXTURE = Path(__file__).parent / "fixtures" / "report_run"


def headline(s1_acc: float, s2_acc: float, s1_t: float = 1.3, s2_t: float = 1.2) -> list[dict]:
    """Synthetic headline rows of one fine-tuned SNN (T = 4)."""
    def row(key, method, acc, t, e=None):
        return {"snn_key": "finetuned", "key": key, "model": "Fine-tuned SNN", "method": method, "max_T": 4,
                "accuracy": acc, "avg_timesteps": t, "aet": 1.2, "empirical_aet": 1.1, "energy_uJ": e}
    return [row("fixed", "Fixed T=4", 95.0, 4.0, 10.0), row("seenn1-confidence", "SEENN-I (confidence)", s1_acc, s1_t, 4.0),
            row("seenn1-entropy", "SEENN-I (entropy)", s1_acc - 1, s1_t, 4.5), row("seenn2", "SEENN-II", s2_acc, s2_t, 3.0),
            row("oracle", "Oracle (first correct t)", 98.0, 1.05)]


def test_findings_follow_the_numbers_and_flip_with_the_ordering():
    ahead = findings(headline(s1_acc=94.0, s2_acc=95.5))
    behind = findings(headline(s1_acc=95.5, s2_acc=94.0))
    assert 3 <= len(ahead) <= 5 and 3 <= len(behind) <= 5
    versus_a = next(s for s in ahead if s.startswith("SEENN-II is"))
    versus_b = next(s for s in behind if s.startswith("SEENN-II is"))
    assert "1.50 points more accurate than SEENN-I (confidence)" in versus_a
    assert "1.50 points less accurate than SEENN-I (confidence)" in versus_b
    # against fixed T: SEENN-II 0.50 above in one run, 1.00 below in the other; against the oracle below both times
    s2_a = next(s for s in ahead if s.startswith("SEENN-II reaches"))
    s2_b = next(s for s in behind if s.startswith("SEENN-II reaches"))
    assert "0.50 points above fixed T = 4" in s2_a and "1.00 points below fixed T = 4" in s2_b
    assert "2.50 points below the oracle" in s2_a and "3.33× fewer than fixed T = 4" in s2_a
    # the cheaper method in energy is named from the numbers: SEENN-II at 3 µJ against 10
    assert any("SEENN-II costs 3 µJ per inference against 10 µJ for fixed T = 4 (3.33× less)" in s for s in ahead)
    assert ahead != behind


def test_findings_say_level_with_on_a_tie_and_more_timesteps_when_dearer():
    out = findings(headline(s1_acc=95.0, s2_acc=95.0, s1_t=1.1, s2_t=1.4))
    versus = next(s for s in out if s.startswith("SEENN-II is"))
    assert versus == "SEENN-II is as accurate as SEENN-I (confidence) and spends 0.30 more timesteps on average."
    assert any("level with fixed T = 4" in s for s in out)


def test_typeset_aligns_decimals_and_names_every_column():
    df = pd.DataFrame({"method": ["Fixed T=4", "SEENN-II"], "test_accuracy": [95.123456, 9.5], "avg_timesteps": [4.0, 1.23456]})
    g = typeset.grid(df)
    assert g.headers == ["Method", "Test acc. (%)", "Avg. timesteps"]
    assert g.rows == [["Fixed T=4", "95.12", "4.000"], ["SEENN-II", "9.50", "1.235"]]
    assert g.numeric == [False, True, True]
    # numbers right-aligned at the same decimals: the decimal points line up
    for c in (1, 2):
        assert len({len(r[c].split(".")[1]) for r in g.rows}) == 1
    table = typeset.flowable(g, 400)
    assert sum(table._colWidths) <= 400
    with pytest.raises(KeyError, match="no human name for table column 'raw_column'"):
        typeset.grid(pd.DataFrame({"raw_column": [1]}))


def test_typeset_wraps_long_text_instead_of_cutting_it():
    long = "SEENN-II (expected, β=1, powers of two, linear reward) on the QCFS-converted SNN"
    g = typeset.grid(pd.DataFrame({"method": [long] * 3, "test_accuracy": [1.0, 2.0, 3.0]}))
    table = typeset.flowable(g, 150)
    w, h = table.wrap(150, 1000)
    assert w <= 150 and h > 3 * 12  # wrapped onto more lines, not cut
    assert g.rows[0][0] == long


def test_code_names_are_found():
    assert code_names("test_accuracy") == ["test_accuracy"]
    assert code_names("avgTimesteps") == ["avgTimesteps"]
    assert code_names("SEENN-I (confidence) at T = 4, 95.1 %") == []
    assert labels.cell("pow2_linear", "text") == "powers of two, linear reward"


# --- the whole document, from a small finished run ------------------------------------------

def report_inputs(root: Path, conversion: bool = True, teas: bool = True) -> dict:
    """The report stage's inputs (roles of the default stage table), as files under `root`."""
    from seenn.pipeline.table import BY_NAME
    from seenn.stages.layout import conversion_inputs

    inputs = dict(BY_NAME["report"].inputs)
    if not conversion:
        dropped = set(conversion_inputs()) | {"conversion", "tradeoff_converted", "training_ann", "conversion_csv",
                                              "conversion_md", "seenn2_variants_csv", "seenn2_variants_md"}
        inputs = {k: v for k, v in inputs.items() if k not in dropped}
    if not teas:  # teas.enabled: false
        inputs = {k: v for k, v in inputs.items() if not k.startswith("teas")}
    return {k: str(root / v) for k, v in inputs.items()}


def build(root: Path, conversion: bool = True, teas: bool = True):
    import json

    from seenn.report.run import Run
    from seenn.report.sections import SECTIONS, write_document

    params = json.loads((FIXTURE / "params.json").read_text())
    run = Run(report_inputs(root, conversion, teas), params, ["provenance line one", "provenance line two"])
    out = root / "reports" / "seenn_report.pdf"
    out.parent.mkdir(exist_ok=True)
    doc = write_document(run, params["report"]["title"], "subtitle", str(out), SECTIONS)
    return doc, out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report") / "a"
    shutil.copytree(FIXTURE, root)
    return build(root)


def test_no_code_name_in_any_table_header_or_cell(built):
    doc, _ = built
    assert len(doc.grids) >= 12
    found = {text: code_names(text) for g in doc.grids for text in g.headers + [c for row in g.rows for c in row]
             if code_names(text)}
    assert found == {}


def test_every_figure_and_table_is_numbered_and_the_summary_comes_first(built):
    doc, pdf = built
    assert doc.figures >= 10 and doc.tables >= 12
    assert list(doc.numbers)[:2] == ["summary", "data"] and doc.numbers["conversion"] == 7
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and b"/Outlines" in data  # bookmarks / outline
    import re

    pages = len(re.findall(rb"/Type /Page[^s]", data))
    assert 6 <= pages <= 26  # the tiny run: every section present, the exit-rule comparison the longest


def test_sections_follow_the_declared_inputs(tmp_path):
    root = tmp_path / "noconv"
    shutil.copytree(FIXTURE, root)
    doc, _ = build(root, conversion=False)
    assert "conversion" not in doc.numbers and "summary" in doc.numbers and "seenn2" in doc.numbers
    assert doc.numbers["teas"] == doc.numbers["seenn2"] + 1 and doc.numbers["energy"] == doc.numbers["teas"] + 1
    assert "paper" not in doc.numbers and "seeds" not in doc.numbers  # no paper row, no extra seeds configured
    root = tmp_path / "noteas"
    shutil.copytree(FIXTURE, root)
    doc, _ = build(root, teas=False)
    assert "teas" not in doc.numbers and doc.numbers["energy"] == doc.numbers["conversion"] + 1


def test_identical_inputs_give_identical_bytes_in_another_directory(built, tmp_path):
    _, first = built
    root = tmp_path / "elsewhere" / "b"
    shutil.copytree(FIXTURE, root)
    _, second = build(root)
    assert first.read_bytes() == second.read_bytes()


def test_paper_beside_run_names_the_row_it_mirrors(tmp_path):
    """With report.paper_row, a section puts the paper's numbers beside this run's and the
    difference; on the digits data it says the table mirrors the paper row, not a reproduction."""
    import json

    from conftest import ROOT

    from seenn.report.run import Run
    from seenn.report.sections import SECTIONS, write_document

    root = tmp_path / "paper"
    shutil.copytree(FIXTURE, root)
    shutil.copy(ROOT / "config/paper/numbers.yaml", root / "numbers.yaml")
    pd.DataFrame([
        {"metric": "SEENN-I (confidence) accuracy (%)", "snn": "Direct-trained SNN", "paper": "96.07", "this_run": 32.0,
         "this_run_std": float("nan"), "n": 1, "difference": 32.0 - 96.07},
        {"metric": "accuracy at fixed T = max (%)", "snn": "Direct-trained SNN (Fixed T=3)", "paper": "not given in the texts",
         "this_run": 37.5, "this_run_std": float("nan"), "n": 1, "difference": float("nan")},
    ]).to_csv(root / "paper_comparison.csv", index=False)
    params = json.loads((FIXTURE / "params.json").read_text())
    params["report"]["paper_row"] = "resnet19_cifar10"
    inputs = {**report_inputs(root), "paper_numbers": str(root / "numbers.yaml"),
              "paper_comparison_csv": str(root / "paper_comparison.csv")}
    doc = write_document(Run(inputs, params, []), "t", "s", str(root / "r.pdf"), SECTIONS)
    assert doc.numbers["paper"] == doc.numbers["teas"] + 1  # after conversion and TEAS
    g = next(g for g in doc.grids if "This run − paper" in g.headers)  # (the TEAS MNIST table has a Paper column too)
    assert g.headers == ["Figure", "SNN", "Paper", "This run", "This run − paper"]
    assert g.rows[0][2:] == ["96.07", "32.0000", "-64.0700"] and g.rows[1][2] == "not given in the texts"
    text = " ".join(p.text for p in doc.story if hasattr(p, "text"))
    assert "the table mirrors paper row resnet19_cifar10" in text and "This run is on digits" in text


def test_every_report_declaration_names_an_output_and_a_caption_file():
    """Snakemake's HTML report: each declared role is an output of its stage, with a caption file;
    the headline files are the only DVC metrics."""
    from conftest import ROOT

    from seenn.pipeline.table import STAGES

    declared = [(st, role, caption) for st in STAGES for role, (_, caption) in st.report.items()]
    assert {st.name for st, _, _ in declared} == {"tables", "figures", "report", "report_measurements"}
    for st, role, caption in declared:
        assert role in st.outputs and (ROOT / "workflow" / "report" / caption).is_file(), (st.name, role)
    metrics = [st.outputs[r] for st in STAGES for r in st.metrics]
    assert metrics and all(p.startswith("results/metrics/headline/") for p in metrics)
    assert "results/metrics/headline/finetuned-seenn2.json" in metrics


def test_a_table_too_wide_for_the_page_is_split_not_refused(monkeypatch):
    """Columns that cannot fit side by side at the smallest size go into a continuation table that
    repeats the row labels (a longer beta sweep once made the SEENN-II table too wide)."""
    cols = {"model": ["QCFS-converted SNN"] * 2, **{f"c{i}": [123456.789, 1.0] for i in range(14)}}
    names = {f"c{i}": f"Column number {i} (%)" for i in range(14)}
    for i in range(14):
        monkeypatch.setitem(labels.COLUMNS, f"c{i}", (names[f"c{i}"], 3))
    g = typeset.grid(pd.DataFrame(cols))
    parts = typeset.split(g, 482)
    assert len(parts) >= 2 and all(typeset.fits(p, 482) for p in parts)
    assert all(p.headers[0] == "SNN" for p in parts) and sum(len(p.headers) - 1 for p in parts) == 14


def test_the_guarantee_section_puts_the_three_rules_side_by_side(built):
    """Section "Early exit with a guarantee": one table row per SNN, rule and score with what each
    rule promises and how often it broke over the redraws, the figure against epsilon, and the
    price of the guarantee among the findings."""
    doc, _ = built
    assert doc.numbers["guarantee"] == doc.numbers["seenn1"] + 1
    g = next(g for g in doc.grids if "Promise" in g.headers)
    rules = {row[g.headers.index("Rule")] for row in g.rows}
    assert rules == {"tolerance rule", "Learn-then-Test", "conformal (SpikeCP)"}
    assert len(g.rows) == 3 * 5  # three SNNs: two scores x two SEENN-I rules, one conformal rule
    text = " ".join(p.text for p in doc.story if hasattr(p, "text"))
    assert "Learn-then-Test's certified threshold on the fine-tuned SNN" in text


def test_price_sentence_follows_the_numbers():
    import pandas as pd

    from seenn.report.guarantee import RULES, price_sentence

    def table(ltt_t):
        return pd.DataFrame([
            {"model": "Fine-tuned SNN", "rule": RULES["tolerance"], "score": "confidence", "test_avg_timesteps": 1.2,
             "promise": "accuracy within 0.1 pts of full T", "broken_share": 0.6},
            {"model": "Fine-tuned SNN", "rule": RULES["ltt"], "score": "confidence", "test_avg_timesteps": ltt_t,
             "promise": "risk ≤ 0.05 w.p. ≥ 0.9", "broken_share": 0.0}])

    assert "a price of 0.30 timesteps per sample" in price_sentence(table(1.5), "finetuned")
    assert "0.10 timesteps fewer per sample" in price_sentence(table(1.1), "finetuned")
    assert "broke its promise on 60 % and Learn-then-Test on 0 %" in price_sentence(table(1.2), "finetuned")
    assert price_sentence(table(1.5), "direct") is None
