"""A tiny run on CIFAR10-DVS event recordings (generated aedat4 files) with the DAG shaped by the
config: the conversion branch switched off, two seeds, the paper's VGGSNN row beside the run.
Through Snakemake; then neither Snakemake nor DVC has anything left to do."""

import copy
import re
import zlib

import pandas as pd
import pytest

from conftest import make_project, sh, tiny_config
from test_data_cifar10dvs import make_cifar10dvs
from test_pipeline import dvc_changed, planned_jobs

pytestmark = pytest.mark.slow
ROW = "vggsnn_cifar10dvs"


def dvs_config(root) -> dict:
    cfg = tiny_config()
    cfg["data"].update({"name": "cifar10dvs", "root": str(root), "val_size": 10})
    cfg["model"].update({"stem_channels": 4, "widths": [4, 8], "blocks": [1, 1]})
    cfg["train"].update({"timesteps": 10, "epochs": 1, "batch_size": 16})
    cfg["finetune"].update({"epochs": 1, "batch_size": 16})
    cfg["seenn2"].update({"epochs": 1, "betas": [1.0], "batch_size": 16})
    cfg["engine"].update({"batch_sizes": [8], "latency_samples": [8]})
    cfg["conversion"]["enabled"] = False
    cfg["seeds"] = [cfg["seed"], cfg["seed"] + 1]
    cfg["report"]["paper_row"] = ROW
    return copy.deepcopy(cfg)


def pdf_text(path) -> str:
    """The text drawn in a matplotlib PDF: the strings of its inflated content streams, joined."""
    raw = path.read_bytes()
    out = []
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", raw, re.S):
        try:
            data = zlib.decompress(m.group(1))
        except zlib.error:
            continue
        out += [s.decode("latin-1") for s in re.findall(rb"\(((?:\\.|[^\\)])*)\)", data)]
    return "".join(out).replace("\\", "")


@pytest.fixture(scope="module")
def dvs_project(tmp_path_factory):
    base = tmp_path_factory.mktemp("dvs")
    make_cifar10dvs(base / "raw", per_class=6)  # 60 recordings: test 6, val 10, train 44
    cwd = make_project(base / "p", dvs_config(base / "raw"), extra=("config/paper/numbers.yaml",))
    sh(cwd, "seenn", "dvc-yaml")  # the DVC front door of this config's stage table
    sh(cwd, "git", "add", "-A")
    sh(cwd, "git", "commit", "-qm", "dvc.yaml of this config")
    sh(cwd, "snakemake", "--cores", "2")
    return cwd


def test_dvs_run_completes_without_the_conversion_branch(dvs_project):
    assert not (dvs_project / "results/converted").exists()
    assert (dvs_project / "results/seeds/1001/finetuned/metrics.json").is_file()
    assert (dvs_project / "results/seeds/1001/seenn2/seenn2.json").is_file()
    assert "QCFS" not in (dvs_project / "results/tables/methods.md").read_text()


def test_seeds_table_has_mean_std_and_two_runs(dvs_project):
    df = pd.read_csv(dvs_project / "results/tables/seeds.csv")
    assert set(df["n"]) == {2} and set(df["model"]) == {"Direct-trained SNN", "Fine-tuned SNN"}
    fixed = df[(df["model"] == "Direct-trained SNN") & (df["method"] == "Fixed T=10")].iloc[0]
    assert 0 <= fixed["mean"] <= 100 and fixed["std"] >= 0
    assert {"SEENN-I (confidence)", "SEENN-II (β=1)", "AET (Eq. 4)", "empirical AET (Eq. 13)"} <= set(df["method"])


def test_paper_comparison_holds_the_papers_aet(dvs_project):
    df = pd.read_csv(dvs_project / "results/tables/paper_comparison.csv", dtype={"paper": str}).set_index("metric")
    aet = df.loc["AET (Eq. 4)"]
    assert float(aet["paper"]) == 3.096 and 1 <= aet["this_run"] <= 10 and aet["n"] == 2
    assert aet["difference"] == pytest.approx(aet["this_run"] - 3.096, abs=1e-3)
    assert df.loc["SEENN-II accuracy (%)", "paper"] == "not given in the texts"
    assert pd.isna(df.loc["SEENN-II accuracy (%)", "difference"])


def test_report_holds_the_comparison_and_the_seeds_page(dvs_project):
    text = pdf_text(dvs_project / "reports/seenn_report.pdf")
    assert "Paper vs this run" in text and "3.096" in text and "not given in the texts" in text
    assert "Across seeds" in text and "switched off by config" in text


def test_nothing_left_to_do_under_both_tools(dvs_project):
    assert planned_jobs(dvs_project) == set()
    assert dvc_changed(dvs_project) == set()
    assert "Running stage" not in sh(dvs_project, "dvc", "repro").stdout
