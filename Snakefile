# seenn-bench workflow. The stages are defined once, in src/seenn/stages.py; the rules in
# workflow/rules/ are generated from that table, and so is dvc.yaml (`seenn dvc-yaml`).
from snakemake.utils import min_version

min_version("8.0")

import sys

from seenn.config import read_yaml
from seenn.errors import SeennError

# params.yaml through the project's strict reader first (UTF-8 text, no duplicate key), the one
# `seenn run` and, for duplicates, DVC apply: Snakemake's own reader keeps a duplicate's last value.
try:
    PARAMS = read_yaml("params.yaml")
except SeennError as exc:
    sys.exit(f"seenn: error: {exc}")


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
