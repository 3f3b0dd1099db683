"""The seenn1_<branch> stages: SEENN-I calibrated on a branch's saved logits (methods.seenn1)."""

from __future__ import annotations

from seenn.common.artifacts import load_logits, write_csv
from seenn.common.io import write_json
from seenn.methods.seenn1 import SETTINGS_KEYS, calibrate, seenn1_config, settings


def stage_seenn1(ctx) -> None:
    """Stage seenn1_<branch>: logits -> seenn1_sweep.csv + seenn1.json."""
    zv, yv = load_logits(ctx.inputs["logits_val"])
    zt, yt = load_logits(ctx.inputs["logits_test"])
    cfg = seenn1_config(ctx.params)
    table, result = calibrate(zv, yv, zt, yt, cfg)
    result.update({k: cfg[k] for k in ("temperature", "accumulate", "entropy_temperature")})
    result["settings"] = settings(cfg)
    write_csv(ctx.outputs["sweep"], table)
    write_json(ctx.outputs["result"], result)


def declare(branch):
    """SEENN-I on one SNN branch; `branch.seenn1_overrides` are config keys `<section>.seenn1_<name>`
    replacing seenn1.<name> for that branch only (`seenn1_config`)."""
    from seenn.stages.declaration import Stage

    d = branch.dir
    return Stage(name=f"seenn1_{branch.name}", run=stage_seenn1,
                 desc=f"SEENN-I threshold sweep and calibration on the {branch.name} SNN",
                 params=tuple(f"seenn1.{k}" for k in SETTINGS_KEYS) + branch.seenn1_overrides,
                 inputs={"logits_val": f"{d}/logits_val.pt", "logits_test": f"{d}/logits_test.pt"},
                 outputs={"sweep": f"{d}/seenn1_sweep.csv", "result": f"{d}/seenn1.json"})
