"""Computed code inputs in the finished tiny project: every `seenn` module a stage loads when it
runs is among its declared code inputs, and editing a source file reruns exactly the stages
that load it (`dvc status`) and what follows them (a Snakemake dry run)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ENV, dvc_changed, planned_jobs, scratch_copy
from pipeline_stages import POLICY_STAGES, REPORTS, TEAS_STAGES, probe_stages

from seenn.stages.declaration import module_file

pytestmark = pytest.mark.slow


def test_every_module_a_stage_loads_is_among_its_code_inputs(project, tmp_path):
    """Run each stage as a fresh interpreter would (in a copy of the finished tiny project: forked
    from one that imported only third-party libraries, tests/stage_probe.py) and list the `seenn`
    modules it loaded: every one must be a declared code input of the stage, or editing it would
    leave the stage's results stale."""
    cwd = scratch_copy(project, tmp_path / "probe")
    cfg = yaml.safe_load((cwd / "params.yaml").read_text())
    stages = probe_stages()
    # training stages resume from the copied final checkpoints: their modules load all the same
    # (every training module is imported before the epoch loop), and the probe stays quick
    jobs = [{"name": st.name, "func": st.func, "config": cfg, "inputs": dict(st.inputs), "outputs": dict(st.outputs),
             "params": json.loads((cwd / st.params_file).read_text()), "checkpoint_dir": st.checkpoint_dir,
             "options": dict(st.options)} for st in stages]
    r = subprocess.run([sys.executable, str(Path(__file__).with_name("stage_probe.py"))], cwd=cwd, env=ENV,
                       input="".join(json.dumps(job) + "\n" for job in jobs), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    loaded = dict(json.loads(line.removeprefix("LOADED ")) for line in r.stdout.splitlines() if line.startswith("LOADED "))
    assert sorted(loaded) == sorted(st.name for st in stages)
    missing = {}
    for st in stages:
        lost = sorted({module_file(m) for m in loaded[st.name]} - set(st.code_files()))
        if lost:
            missing[st.name] = lost
    assert missing == {}


def _edit(project: Path, rel: str):
    """Append a comment to a source file of the project; returns a function that restores it
    (content and modification time, so Snakemake sees nothing left to do)."""
    path = project / rel
    backup = path.with_name(path.name + ".orig")
    shutil.copy2(path, backup)
    path.write_text(path.read_text() + "\n# edited\n")

    def restore():
        shutil.copy2(backup, path)
        backup.unlink()

    return restore


def _all_stages() -> set[str]:
    from seenn.pipeline.table import STAGES

    return {st.name for st in STAGES}


@pytest.mark.parametrize("rel, direct, planned", [
    # the normalization constants (DatasetSpec.mean/std) feed every stage that builds a network input, and
    # every stage that reads a split (the dataset registry loads on a split's spec); saved logits and CSVs
    # load no dataset, so the SEENN-I and guarantee stages and the figures do not rerun (Snakemake plans them downstream)
    ("src/seenn/data/digits.py", lambda every: every - {"tables", "report", "report_measurements", "figures"}
     - {st for st in every if st.startswith(("seenn1_", "guarantee_"))}, lambda every: every),
    # the report reads only files: editing the tables' code reruns the report because its tables change
    ("src/seenn/report/tables.py", lambda every: {"tables"}, lambda every: {"tables", "report"}),
    # every TEAS stage and the neurobench stage count operations with seenn.methods.energy.OpCounter, and
    # seenn.methods.energy loads the engine and the policy (its energy stage runs SEENN-II): the import closure takes them in
    ("src/seenn/models/policy.py", lambda every: POLICY_STAGES | {"energy", "latency", "neurobench"} | TEAS_STAGES,
     lambda every: POLICY_STAGES | {"energy", "latency", "neurobench"} | TEAS_STAGES | REPORTS),
])
def test_editing_a_source_file_reruns_exactly_the_stages_that_load_it(project, rel, direct, planned):
    """`dvc status` names the stages whose own code changed; a Snakemake dry run plans them and
    everything downstream of them."""
    every = _all_stages()
    restore = _edit(project, rel)
    try:
        assert dvc_changed(project) == direct(every)
        assert planned_jobs(project) == planned(every)
    finally:
        restore()
    assert planned_jobs(project) == set()
    assert dvc_changed(project) == set()
