"""The guarantee_<branch> stages: SEENN-I's tolerance rule, Learn-then-Test and the conformal
stopping rule side by side on a branch's saved logits, with redraws (methods.guarantee)."""

from __future__ import annotations

import logging

import pandas as pd

from seenn.common.artifacts import load_logits, write_csv
from seenn.common.io import write_json
from seenn.methods.seenn1 import SETTINGS_KEYS, branch_config, seenn1_config

LTT_KEYS = ("epsilon", "delta", "p_value", "redraws")
log = logging.getLogger("seenn")


VOID = ("data.protocol is 'authors': the validation split is the test split, so no rule chosen on it has a "
        "guarantee on test data (set data.protocol: project)")


def stage_guarantee(ctx) -> None:
    """Stage guarantee_<branch>: logits -> guarantee.json + guarantee_redraws.csv. Under the
    authors' protocol (val = test) nothing is certified: the files say why and hold no figure."""
    if ctx.params["data"]["protocol"] == "authors":
        log.warning("%s: %s", ctx.name, VOID)
        write_csv(ctx.outputs["redraws"], pd.DataFrame(columns=["redraw", "rule", "score", "broken", "measure"]))
        write_json(ctx.outputs["result"], {"void": VOID})
        return
    from seenn.methods.guarantee import compare  # here: the stage table imports this module for `declare`

    zv, yv = load_logits(ctx.inputs["logits_val"])
    zt, yt = load_logits(ctx.inputs["logits_test"])
    result, rows = compare(zv, yv, zt, yt, seenn1_config(ctx.params), branch_config(ctx.params, "conformal"),
                           ctx.params["seed"])
    write_csv(ctx.outputs["redraws"], rows)
    write_json(ctx.outputs["result"], result)


def declare(branch):
    from seenn.stages.declaration import Stage

    d = branch.dir
    return Stage(name=f"guarantee_{branch.name}", run=stage_guarantee,
                 desc=f"early exit with a guarantee on the {branch.name} SNN: tolerance rule, Learn-then-Test, conformal",
                 params=("seed", "data.protocol", "conformal") + tuple(f"seenn1.{k}" for k in SETTINGS_KEYS + LTT_KEYS)
                 + branch.seenn1_overrides + branch.conformal_overrides,
                 inputs={"logits_val": f"{d}/logits_val.pt", "logits_test": f"{d}/logits_test.pt"},
                 outputs={"result": f"{d}/guarantee.json", "redraws": f"{d}/guarantee_redraws.csv"})
