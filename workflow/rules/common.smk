# Shared helpers: validate the config, build its stage table, turn a stage into rule arguments.
import shutil
import subprocess
import sys

from seenn.pipeline.config import validate_config
from seenn.common.errors import SeennError
from seenn.pipeline.table import GPU_RESOURCE, build_stages, dvc_yaml_drift, final_outputs, write_params_file

try:
    STAGES = build_stages(validate_config(config, source="params.yaml"))  # the stage table of this config
except SeennError as exc:
    sys.exit(f"seenn: error: {exc}")

# the other front door must describe the same DAG: refused before anything runs (or is deleted)
_drift = dvc_yaml_drift(STAGES)
if _drift:
    sys.exit(f"seenn: error: dvc.yaml does not match the stage table of params.yaml ({_drift}): run `seenn dvc-yaml` "
             "(or `seenn config use`) before running stages")

if PARAMS != config:  # PARAMS: params.yaml as the Snakefile read it, strictly, before `configfile:`
    sys.exit(
        "seenn: error: the config differs from params.yaml (--configfile/--config overrides?). "
        "params.yaml is the single config both Snakemake and DVC read: write it with "
        "`seenn config use [OVERLAY]` (config/defaults.yaml plus an overlay such as config/paper/<row>.yaml)."
    )

# Each stage's slice of the config becomes a file input; rewritten only when the slice changes.
for _st in STAGES:
    write_params_file(_st, config)


def get_final_outputs():
    """Every output of every stage."""
    return final_outputs(STAGES)


def stage_inputs(stage):
    """Named inputs of a rule: upstream files, the stage's config slice, its source files."""
    return {**stage.inputs, "params": stage.params_file, "code": stage.code_files()}


def stage_outputs(stage):
    """Named outputs of a rule: the stage's files, those it shows in Snakemake's HTML report
    (`snakemake --report report.html`) wrapped in `report()` with their category and caption
    (workflow/report/<caption>.rst; the path is relative to workflow/rules/, where the rules are made)."""
    return {
        role: report(path, caption=f"../report/{stage.report[role][1]}", category=stage.report[role][0])
        if role in stage.report else path
        for role, path in stage.outputs.items()
    }


def stage_threads(stage):
    """A stage's `threads`: "all" (training, evaluation, latency, which must run alone while it
    measures) takes every core, as a callable, so `workflow.cores` is read only when a job is
    scheduled: `snakemake --unlock` (no --cores) must not ask for it."""
    if stage.threads == "all":
        return lambda wildcards: workflow.cores
    return stage.threads


def stage_message(stage):
    """What Snakemake prints for a job (a dry run too): the stage, its log, and a GPU stage's GPUs and memory."""
    if GPU_RESOURCE in stage.resources:
        return "stage {rule} (log in {log}; gpu={resources.%s}, mem_mb={resources.mem_mb})" % GPU_RESOURCE
    return "stage {rule} (log in {log})"


def stage_shell(stage):
    """`seenn run {rule}` (DVC's cmd too); a stage asking for GPUs gets its `gpu` resource, as
    Snakemake resolves it (a profile's set-resources included): several GPUs run a training
    stage under torchrun (seenn.common.distributed), and with SEENN_GPU_SLOTS each job takes its own."""
    if GPU_RESOURCE in stage.resources:
        return "seenn run {rule} --gpus {resources.%s}" % GPU_RESOURCE
    return "seenn run {rule}"


def record_in_dvc_lock():
    """After a successful run, record every stage's hashes in dvc.lock so `dvc status` agrees."""
    if shutil.which("dvc") is None:
        print("seenn: dvc not found; dvc.lock not updated", file=sys.stderr)
        return
    result = subprocess.run(["dvc", "commit", "--force", "--quiet"], capture_output=True, text=True)
    if result.returncode != 0:
        print(f"seenn: 'dvc commit' failed, dvc.lock not updated:\n{result.stderr}", file=sys.stderr)
