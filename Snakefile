# seenn-bench workflow. Each stage is declared beside its code; src/seenn/pipeline/table.py assembles the
# table, workflow/rules/stages.smk makes one rule per stage, and `seenn dvc-yaml` writes dvc.yaml from it.
from snakemake.utils import min_version

min_version("8.0")

import sys

from seenn.pipeline.config import read_yaml
from seenn.common.errors import SeennError

# params.yaml through the project's strict reader first (UTF-8 text, no duplicate key), the one
# `seenn run` and, for duplicates, DVC apply: Snakemake's own reader keeps a duplicate's last value.
try:
    PARAMS = read_yaml("params.yaml")
except SeennError as exc:
    sys.exit(f"seenn: error: {exc}")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/stages.smk"


rule all:
    input:
        get_final_outputs(),
    default_target: True


onsuccess:
    record_in_dvc_lock()
