"""A tiny run on CIFAR10-DVS event recordings (generated aedat4 files) with the DAG shaped by the
config: the conversion branch switched off, two seeds, the paper's VGGSNN row beside the run.
The recordings come with their own split list, written by `seenn data split-list` and pinned
through `data.split_list` / `data.split_list_sha256`. Through Snakemake; then neither Snakemake
nor DVC has anything left to do, and editing the list reruns the data stage under both."""

import copy
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import dvc_changed, make_project, planned_jobs, sh, tiny_config
from test_data_cifar10dvs import make_cifar10dvs

pytestmark = pytest.mark.slow
ROW = "vggsnn_cifar10dvs"
SPLIT_LIST = "splits/cifar10dvs_tiny.txt"  # the project's own list, relative to the project


def dvs_config(root, split_list_sha256: str) -> dict:
    cfg = tiny_config()
    cfg["data"].update({"name": "cifar10dvs", "root": str(root), "val_size": 10, "split_list": SPLIT_LIST,
                        "split_list_sha256": split_list_sha256})
    cfg["model"].update({"stem_channels": 4, "widths": [4, 8], "blocks": [1, 1]})
    cfg["train"].update({"timesteps": 10, "epochs": 1, "batch_size": 16})
    cfg["finetune"].update({"epochs": 1, "batch_size": 16})
    cfg["seenn2"].update({"epochs": 1, "betas": [1.0], "batch_size": 16})
    cfg["engine"].update({"batch_sizes": [8], "latency_samples": [8]})
    cfg["conversion"]["enabled"] = False
    cfg["shift"]["enabled"] = False  # as the vggsnn_cifar10dvs row: Gaussian pixel noise is for images
    cfg["teas"]["enabled"] = False  # as the vggsnn_cifar10dvs row (on 60 generated recordings the tiny SNN fires no spike: TEAS refuses all-zero activity)
    cfg["seeds"] = [cfg["seed"], cfg["seed"] + 1]
    cfg["report"]["paper_row"] = ROW
    return copy.deepcopy(cfg)


def outline(path) -> list[str]:
    """The report's section titles, as its PDF outline (bookmarks) holds them: plain strings,
    outside the compressed page streams."""
    return re.findall(r"/Title \((.*?)\)", Path(path).read_bytes().decode("latin-1"))


@pytest.fixture(scope="module")
def dvs_project(tmp_path_factory):
    base = tmp_path_factory.mktemp("dvs")
    make_cifar10dvs(base / "raw", per_class=6)  # 60 recordings: test 6, val 10, train 44
    out = sh(base, "seenn", "data", "split-list", str(base / "raw"), "--output", "split.txt").stdout
    digest = re.search(r"^sha256 ([0-9a-f]{64})$", out, re.M).group(1)
    cwd = make_project(base / "p", dvs_config(base / "raw", digest), extra=("config/paper/numbers.yaml",))
    (cwd / SPLIT_LIST).parent.mkdir()
    shutil.copy(base / "split.txt", cwd / SPLIT_LIST)
    sh(cwd, "seenn", "dvc-yaml")  # the DVC front door of this config's stage table
    sh(cwd, "git", "add", "-A")
    sh(cwd, "git", "commit", "-qm", "dvc.yaml of this config and its split list")
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
    titles = outline(dvs_project / "reports/seenn_report.pdf")
    assert "7 The paper beside this run" in titles and "8 Across seeds" in titles
    assert not [t for t in titles if "conversion" in t or "TEAS" in t]  # both switched off by config


def test_nothing_left_to_do_under_both_tools(dvs_project):
    assert planned_jobs(dvs_project) == set()
    assert dvc_changed(dvs_project) == set()
    assert "Running stage" not in sh(dvs_project, "dvc", "repro").stdout


def test_the_split_list_is_the_projects_own(dvs_project):
    manifest = json.loads((dvs_project / "data/prepared/manifest.json").read_text())
    assert {s: v["n"] for s, v in manifest["splits"].items()} == {"train": 44, "val": 10, "test": 6}
    deps = yaml.safe_load((dvs_project / "dvc.lock").read_text())["stages"]["prepare_data"]["deps"]
    assert [d["md5"] for d in deps if d["path"] == SPLIT_LIST] == [
        hashlib.md5((dvs_project / SPLIT_LIST).read_bytes()).hexdigest()]  # DVC tracks the list's content


def test_editing_the_split_list_reruns_the_data_stage_under_both_tools(dvs_project):
    """The list is an input of prepare_data for both tools: a re-pinned edit plans the whole DAG
    (Snakemake names the list among the updated inputs, DVC among the changed deps); a newer file
    with the same bytes, or the edit undone, plans nothing (both compare contents)."""
    listed, params = dvs_project / SPLIT_LIST, dvs_project / "params.yaml"
    original_list, original_params = listed.read_bytes(), params.read_bytes()
    later = time.time() + 60
    os.utime(listed, (later, later))
    assert planned_jobs(dvs_project) == set() and dvc_changed(dvs_project) == set()
    text = original_list.decode()
    test_line = next(ln for ln in text.splitlines() if ln.startswith("bird,") and ln.endswith(",test"))
    train_line = next(ln for ln in text.splitlines() if ln.startswith("bird,") and ln.endswith(",train"))
    listed.write_text(text.replace(test_line, test_line[:-4] + "train").replace(train_line, train_line[:-5] + "test"))
    old = yaml.safe_load(original_params)["data"]["split_list_sha256"]
    params.write_text(original_params.decode().replace(old, hashlib.sha256(listed.read_bytes()).hexdigest()))
    try:
        status = sh(dvs_project, "dvc", "status").stdout
        assert re.search(rf"^prepare_data:\s+changed deps:\s+modified:\s+{re.escape(SPLIT_LIST)}$", status, re.M), status
        dry = sh(dvs_project, "snakemake", "-n", "--cores", "2").stdout
        assert re.search(rf"stage prepare_data .*\nReason: Updated input files: .*{re.escape(SPLIT_LIST)}", dry), dry[-3000:]
        assert {"prepare_data", "train_snn", "train_snn_seed1001", "tables", "report"} <= planned_jobs(dvs_project)
    finally:
        listed.write_bytes(original_list)
        params.write_bytes(original_params)
    assert planned_jobs(dvs_project) == set() and dvc_changed(dvs_project) == set()
