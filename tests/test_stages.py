"""Snakemake and DVC must describe one DAG: both come from src/seenn/pipeline/table.py."""

import importlib
import os
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from seenn.pipeline.config import load_config
from seenn.pipeline.table import BY_NAME, STAGES, TABLE_GUARD, build_stages, dvc_yaml


def test_committed_dvc_yaml_matches_stage_table():
    table = build_stages(load_config(ROOT / "params.yaml"))
    assert (ROOT / "dvc.yaml").read_text() == dvc_yaml(table), "dvc.yaml drifted: run `seenn config use` and commit it"


def test_default_table_is_the_committed_params_table():
    """`STAGES` (the table of the defaults) is the one the committed params.yaml builds."""
    assert build_stages(load_config(ROOT / "params.yaml")) == STAGES


def _dvc_stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _snakemake_rules() -> dict:
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import OutputSettings, ResourceSettings

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with SnakemakeApi(OutputSettings(quiet=True)) as api:
            wf = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=Path("Snakefile"), workdir=ROOT)
            return {r.name: r for r in wf._workflow.rules if r.name != "all"}
    finally:
        os.chdir(cwd)


def test_snakemake_rules_and_dvc_stages_agree():
    dvc = _dvc_stages()
    rules = _snakemake_rules()
    # same stages; the order differs once a branch spans families (Snakemake lists rules by
    # included .smk file, dvc.yaml follows the stage table)
    assert dvc.pop(TABLE_GUARD)["cmd"] == "seenn dvc-yaml --check"  # DVC's own guard, no rule: it produces nothing
    assert sorted(rules) == sorted(dvc)
    for name, rule in rules.items():
        st = dvc[name]
        outs = [next(iter(o)) for key in ("outs", "metrics", "plots") for o in st.get(key, [])]
        assert sorted(map(str, rule.output)) == sorted(outs), name
        inputs = sorted(str(f) for f in rule.input if not str(f).startswith("results/params/"))
        assert inputs == sorted(st["deps"]), name
        assert st["cmd"] == f"seenn run {name}"
        # a GPU stage's rule passes its `gpu` resource (torchrun for several; DVC runs one process)
        gpu = "gpu" in BY_NAME[name].resources
        assert rule.shellcmd == ("seenn run {rule} --gpus {resources.gpu}" if gpu else "seenn run {rule}"), name
        assert (rule.resources.get("gpu") == 1) == gpu, name


def test_dag_is_closed_and_acyclic():
    produced = {}
    for st in STAGES:
        for inp in st.inputs.values():
            assert inp in produced, f"{st.name} reads {inp}, which no earlier stage writes"
        for out in st.outputs.values():
            assert out not in produced, f"{out} written by both {produced[out]} and {st.name}"
            produced[out] = st.name


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_stage_function_and_code_files_exist(stage):
    module, func = stage.func.split(":")
    assert callable(getattr(importlib.import_module(module), func))
    assert all((ROOT / f).is_file() for f in stage.code_files())
    assert f"src/seenn/{module.split('.', 1)[1].replace('.', '/')}.py" in stage.code_files()
