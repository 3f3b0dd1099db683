# seenn-bench workflow. The stages are defined once, in src/seenn/stages.py; the rules in
# workflow/rules/ are generated from that table, and so is dvc.yaml (`seenn dvc-yaml`).
from snakemake.utils import min_version

min_version("8.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/convert.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/exits.smk"
include: "workflow/rules/energy.smk"
include: "workflow/rules/latency.smk"
include: "workflow/rules/policy.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        get_final_outputs(),
    default_target: True


onsuccess:
    record_in_dvc_lock()
