"""The whole DAG on a tiny config, through both front doors: outputs exist and are sane,
reruns do nothing, a figure setting reruns only figures + report, a training setting reruns
training and everything after it, and two clean runs give byte-identical outputs."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, tiny_config

pytestmark = pytest.mark.slow

BIN = str(Path(sys.executable).parent)
ENV = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", ""), "DVC_NO_ANALYTICS": "1",
       "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
       # fixed dates: two tiny projects with the same files get the same commit, as two clones would
       "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
COPY = ["Snakefile", "dvc.yaml", "workflow", "src", ".dvc/config", ".dvcignore"]
# Outputs that are measurements or bookkeeping, not results: excluded from byte comparison.
NOT_DETERMINISTIC = ("logs/", "results/checkpoints/")


def sh(cwd, *args, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run(list(args), cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def make_project(dest: Path, config: dict) -> Path:
    dest.mkdir(parents=True)
    for item in COPY:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            (dest / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / item)
    (dest / "params.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (dest / ".gitignore").write_text("/results/\n/data/\n/logs/\n/reports/*.pdf\n.snakemake/\n")
    sh(dest, "git", "init", "-q")
    sh(dest, "git", "add", "-A")
    sh(dest, "git", "commit", "-qm", "tiny project")
    return dest


def planned_jobs(cwd: Path) -> set[str]:
    """Rule names a Snakemake dry run would execute (empty when nothing to do)."""
    out = sh(cwd, "snakemake", "-n", "--cores", "2").stdout
    if "Nothing to be done" in out:
        return set()
    table = out.split("Job stats:")[1]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", table, re.M)} - {"all", "total", "job"}


def dvc_changed(cwd: Path) -> set[str]:
    out = sh(cwd, "dvc", "status").stdout
    if "up to date" in out:
        return set()
    return {m.group(1) for m in re.finditer(r"^(\w+):\s*$", out, re.M)}


def output_bytes(cwd: Path) -> dict[str, bytes]:
    files = {}
    for base in ("results", "data/prepared", "reports"):
        for p in sorted((cwd / base).rglob("*")):
            rel = str(p.relative_to(cwd))
            if p.is_file() and not rel.startswith(NOT_DETERMINISTIC):
                files[rel] = p.read_bytes()
    return files


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    cwd = make_project(tmp_path_factory.mktemp("dag") / "a", tiny_config())
    sh(cwd, "snakemake", "--cores", "2")
    return cwd


def test_outputs_exist_and_are_sane(project):
    import json

    m = json.loads((project / "results/direct/metrics.json").read_text())
    T = tiny_config()["train"]["timesteps"]
    assert len(m["test"]["accuracy_per_t"]) == T
    assert all(0 <= a <= 100 for a in m["test"]["accuracy_per_t"])
    assert m["test"]["accuracy_per_t"][-1] > 30  # far above 10 % chance even for the tiny net
    assert 1 <= m["test"]["aet"] <= T and 1 <= m["test"]["empirical_aet"] <= T
    s = json.loads((project / "results/direct/seenn1.json").read_text())
    for r in s["scores"].values():
        assert 1 <= r["test_avg_timesteps"] <= T
        assert sum(r["test_exit_histogram"]) == m["test"]["n"]
    methods = (project / "results/tables/methods.md").read_text()
    assert "SEENN-I (confidence)" in methods and "Oracle" in methods
    pdf = (project / "reports/seenn_report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000


def test_seenn2_outputs_are_sane(project):
    import json

    import pandas as pd

    cfg = tiny_config()
    T = cfg["train"]["timesteps"]
    ft = json.loads((project / "results/finetuned/metrics.json").read_text())
    assert set(ft) >= {"train", "val", "test"} and ft["train"]["n"] == cfg["data"]["train_size"]
    s2 = json.loads((project / "results/seenn2/seenn2.json").read_text())
    assert s2["beta"] == cfg["seenn2"]["beta"] and 1 <= s2["test_avg_timesteps"] <= T
    assert sum(s2["test_exit_histogram"]) == ft["test"]["n"]
    assert s2["ops"]["policy_macs"] > 0 and s2["ops"]["snn_macs_per_timestep"] > 0
    sweep = pd.read_csv(project / "results/seenn2/sweep.csv")
    assert sweep["beta"].tolist() == cfg["seenn2"]["betas"]
    compare = pd.read_csv(project / "results/seenn2/compare.csv")
    assert len(compare) == 5 and set(compare["estimator"]) == {"expected", "reinforce"}
    main = compare.iloc[0]  # the configured policy, as seenn2_evaluate reports it
    assert main["test_accuracy"] == pytest.approx(s2["test_accuracy"], abs=1e-6)
    assert main["test_avg_timesteps"] == pytest.approx(s2["test_avg_timesteps"], abs=1e-6)
    log = pd.read_csv(project / "results/seenn2/policy_log.csv")
    assert len(log) == cfg["seenn2"]["epochs"] * len(cfg["seenn2"]["betas"])
    assert {"mean_reward", "mean_u", "accuracy"} <= set(log.columns)
    methods = (project / "results/tables/methods.md").read_text()
    assert "SEENN-II (expected, β=1)" in methods and "SEENN-II (reinforce" in methods and "Fine-tuned SNN" in methods
    assert "SEENN-I (confidence) at same t" in (project / "results/tables/seenn2_sweep.md").read_text()


def test_reruns_do_nothing_under_both_tools(project):
    assert planned_jobs(project) == set()
    assert dvc_changed(project) == set()
    out = sh(project, "dvc", "repro").stdout
    assert "Running stage" not in out
    assert planned_jobs(project) == set()


def test_figure_setting_reruns_only_figures_and_report(project):
    params = project / "params.yaml"
    original = params.read_text()
    cfg = yaml.safe_load(original)
    cfg["figures"]["dpi"] = 60
    params.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        assert planned_jobs(project) == {"figures", "report"}
        assert dvc_changed(project) == {"figures", "report"}
        out = sh(project, "dvc", "repro").stdout
        assert set(re.findall(r"Running stage '(\w+)'", out)) == {"figures", "report"}
        # DVC ran them: Snakemake must agree nothing is left (no timestamp trap).
        assert planned_jobs(project) == set()
    finally:
        params.write_text(original)
    assert planned_jobs(project) == {"figures", "report"}
    sh(project, "snakemake", "--cores", "2")
    assert dvc_changed(project) == set()


def test_training_setting_reruns_training_and_everything_after(project):
    params = project / "params.yaml"
    original = params.read_text()
    cfg = yaml.safe_load(original)
    cfg["train"]["lr"] = 0.05
    params.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        downstream = {"train_snn", "evaluate_direct", "seenn1_direct", "finetune_snn", "evaluate_finetuned",
                      "seenn1_finetuned", "seenn2_train", "seenn2_evaluate", "seenn2_compare", "tables", "figures", "report"}
        assert planned_jobs(project) == downstream
        assert dvc_changed(project) >= {"train_snn"}
    finally:
        params.write_text(original)
    assert planned_jobs(project) == set()


def test_seenn2_beta_list_reruns_only_the_policy_sweep_and_reports(project):
    params = project / "params.yaml"
    original = params.read_text()
    cfg = yaml.safe_load(original)
    cfg["seenn2"]["betas"] = cfg["seenn2"]["betas"] + [0.5]
    params.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        # seenn2_compare reads the main-beta policy from seenn2_train (it reruns, but resumes every
        # unchanged policy from its checkpoint)
        expected = {"seenn2_train", "seenn2_evaluate", "seenn2_compare", "tables", "figures", "report"}
        assert planned_jobs(project) == expected
        # `dvc status` names the stages whose own deps or params changed (the report reads the whole config)
        assert dvc_changed(project) == {"seenn2_train", "report"}
        dry = sh(project, "dvc", "repro", "--dry").stdout
        assert set(re.findall(r"Running stage '(\w+)'", dry)) == expected
    finally:
        params.write_text(original)
    assert planned_jobs(project) == set()


def test_two_clean_runs_are_byte_identical(project, tmp_path):
    other = make_project(tmp_path / "b", tiny_config())
    sh(other, "snakemake", "--cores", "2")
    a, b = output_bytes(project), output_bytes(other)
    assert sorted(a) == sorted(b)
    differing = [k for k in a if a[k] != b[k]]
    assert differing == []
    assert (project / "dvc.lock").read_text() == (other / "dvc.lock").read_text()
