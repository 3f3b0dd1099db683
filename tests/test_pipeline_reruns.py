"""Reruns after a change in the finished tiny project, under both tools: a figure setting reruns
only figures and report, a training setting training and everything after it, a conversion
setting only the conversion branch, and a longer beta list only the policy sweeps and reports
(the engine stages read the main-beta policy, whose bytes DVC sees unchanged)."""

import re
from contextlib import contextmanager

import pytest
import yaml
from conftest import dvc_changed, planned_jobs, scratch_copy, sh
from pipeline_stages import CONVERTED_POLICY, REPORT_STAGES, REPORTS, TEAS_CONVERTED, TEAS_DIRECT, TEAS_FINETUNED

pytestmark = pytest.mark.slow


@contextmanager
def setting(project, section: str, key: str, value):
    """params.yaml with one key changed inside the `with` block, then put back as it was."""
    params = project / "params.yaml"
    original = params.read_text()
    cfg = yaml.safe_load(original)
    cfg[section][key] = value
    params.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        yield
    finally:
        params.write_text(original)


def test_figure_setting_reruns_only_figures_and_report(project, tmp_path):
    project = scratch_copy(project, tmp_path / "p")
    with setting(project, "figures", "dpi", 60):
        assert planned_jobs(project) == {"figures", "report"}
        assert dvc_changed(project) == {"figures", "report"}
        out = sh(project, "dvc", "repro").stdout
        assert set(re.findall(r"Running stage '(\w+)'", out)) == {"figures", "report"}
        # DVC ran them: Snakemake must agree nothing is left (no timestamp trap).
        assert planned_jobs(project) == set()
    assert planned_jobs(project) == {"figures", "report"}  # DVC rewrote them: Snakemake goes by mtimes


def test_training_setting_reruns_training_and_everything_after(project):
    with setting(project, "train", "lr", 0.05):
        downstream = {"train_snn", "evaluate_direct", "seenn1_direct", "finetune_snn", "evaluate_finetuned",
                      "seenn1_finetuned", "guarantee_direct", "guarantee_finetuned", "seenn2_train", "seenn2_evaluate",
                      "seenn2_compare", "energy", "latency", "neurobench", "evaluate_shifted_direct", "evaluate_shifted_finetuned",
                      "shifted_rules", "tables", "figures", "report", "report_measurements"} | TEAS_DIRECT | TEAS_FINETUNED
        assert planned_jobs(project) == downstream
        assert dvc_changed(project) >= {"train_snn"}
    assert planned_jobs(project) == set()


@pytest.mark.parametrize("key, value, first, branch", [
    ("lr", 0.05, "train_ann", {"train_ann", "convert_snn", "evaluate_converted", "seenn1_converted", "guarantee_converted",
                                            "evaluate_shifted_converted", "shifted_rules"}
     | CONVERTED_POLICY
     | TEAS_CONVERTED),
    ("max_timesteps", 6, "convert_snn", {"convert_snn", "evaluate_converted", "seenn1_converted", "guarantee_converted",
                                            "evaluate_shifted_converted", "shifted_rules"}
     | CONVERTED_POLICY
     | TEAS_CONVERTED),
])
def test_conversion_setting_reruns_only_the_conversion_branch(project, key, value, first, branch):
    """A conversion key reruns the conversion branch from the first stage that reads it, plus the
    report stages; never the direct branch (and max_timesteps does not retrain the ANN)."""
    with setting(project, "conversion", key, value):
        assert planned_jobs(project) == branch | REPORT_STAGES
        assert dvc_changed(project) == {first, "report"}  # the report prints the whole config
    assert planned_jobs(project) == set()


def test_epsilon_reruns_only_the_guarantee_stages_and_what_reads_them(project):
    """Learn-then-Test's epsilon is read by the guarantee stages alone (the tolerance calibration
    declares only its own seenn1 keys): they rerun, and what reads their files (the engine
    stages, which run the certified rule beside the others; tables, figures, both reports);
    training and evaluation do not. `dvc status` names the stages whose own params changed (the
    report prints the whole config)."""
    guarantees = {"guarantee_direct", "guarantee_finetuned", "guarantee_converted"}
    with setting(project, "seenn1", "epsilon", 0.1):
        assert planned_jobs(project) == guarantees | {"shifted_rules", "energy", "latency", "neurobench"} | REPORTS
        assert dvc_changed(project) == guarantees | {"report"}
    assert planned_jobs(project) == set()


def test_a_rules_setting_reruns_nothing_upstream_of_the_logits(project):
    """The tolerance rule's setting reruns the calibrations, the comparison on clean and shifted
    inputs and what reads them, never training, evaluation or the SNNs' inference on noisy inputs."""
    upstream = {"prepare_data", "train_snn", "finetune_snn", "train_ann", "convert_snn", "evaluate_direct",
                "evaluate_finetuned", "evaluate_converted", "evaluate_shifted_direct", "evaluate_shifted_finetuned",
                "evaluate_shifted_converted"}
    with setting(project, "seenn1", "tolerance_points", 0.7):
        planned = planned_jobs(project)
        assert {"seenn1_direct", "guarantee_finetuned", "shifted_rules", "tables", "figures", "report"} <= planned
        assert not planned & upstream, planned & upstream
        assert not dvc_changed(project) & upstream


def test_seenn2_beta_list_reruns_only_the_policy_sweep_and_reports(project, tmp_path):
    project = scratch_copy(project, tmp_path / "p")
    params = project / "params.yaml"
    cfg = yaml.safe_load(params.read_text())
    cfg["seenn2"]["betas"] = cfg["seenn2"]["betas"] + [0.5]
    params.write_text(yaml.safe_dump(cfg, sort_keys=False))
    policies = {"seenn2_train", "seenn2_evaluate", "seenn2_compare"} | CONVERTED_POLICY
    # the policy stages of both SNNs and what follows them: seenn2_compare reads the main-beta
    # policy from seenn2_train (it reruns, but resumes every unchanged policy from its
    # checkpoint); the engine stages read the main-beta policy; nothing before the policies
    engine = {"energy", "latency", "report_measurements"}
    assert planned_jobs(project) == policies | engine | REPORT_STAGES
    # `dvc status` names the stages whose own deps or params changed (the report reads the whole config)
    assert dvc_changed(project) == {"seenn2_train", "report"} | {st for st in CONVERTED_POLICY if "_train_" in st}
    # DVC compares content: the main-beta policy comes out byte-identical (resumed, same seed), so
    # the engine stages, which read only that policy, do not rerun: reproducing them runs the
    # policy training and evaluation of the fine-tuned SNN and stops there
    out = sh(project, "dvc", "repro", *sorted(engine)).stdout
    assert set(re.findall(r"Running stage '(\w+)'", out)) == {"seenn2_train", "seenn2_evaluate"}, out
    assert dvc_changed(project) & engine == set()
