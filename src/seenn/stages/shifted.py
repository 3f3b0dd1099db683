"""Shifted inputs: stage evaluate_shifted_<branch> runs one SNN on the test split with Gaussian pixel
noise at each severity of `shift.noise_std` (data/shift.py: made on the fly, seeded) and saves the
logits; stage shifted_rules applies every exit rule, at the thresholds chosen on clean validation,
to the clean and the shifted logits of every SNN (methods/shifted.py). A rule's settings rerun only
the second: the SNNs' inference on noisy inputs stays cached."""

from __future__ import annotations

import pandas as pd

from seenn.common.artifacts import load_logits, save_logits, write_csv
from seenn.common.io import read_json
from seenn.data.files import open_split
from seenn.data.shift import NoisySource
from seenn.loops.predict import load_snn, predict_logits

SHIFT_DIR = "results/shift"
COLUMNS = ["model", "noise_std", "rule", "calibration", "score", "accuracy", "avg_timesteps", "risk", "coverage"]


def shifted_logits(d: str, k: int) -> str:
    return f"{d}/logits_test_noise{k}.pt"


def stage_evaluate_shifted(ctx) -> None:
    """Stage evaluate_shifted_<branch>: trained SNN + test split -> logits_test_noise<k>.pt per severity."""
    test = open_split(ctx.inputs["test"])
    model, ck = load_snn(ctx.inputs["model"], test.spec)
    model.to(ctx.device)
    p = ctx.params
    for k, sigma in enumerate(p["shift"]["noise_std"]):
        z = predict_logits(model, NoisySource(test, sigma, p["seed"]), ck["timesteps"], p["evaluate"]["batch_size"],
                           ctx.device, desc=f"evaluate test + noise {sigma:g}", stepwise=ck.get("stepwise", False),
                           loader=p["loader"])
        save_logits(ctx.outputs[f"logits_noise{k}"], z, test.y)


def stage_shifted_rules(ctx) -> None:
    """Stage shifted_rules: every SNN's clean and shifted test logits + its thresholds (seenn1.json,
    guarantee.json) -> results/shift/rules.csv, one row per SNN, severity (0: clean) and rule."""
    from seenn.methods.catalog import BRANCH_LABELS
    from seenn.methods.shifted import outcomes

    rows = []
    for branch, label in BRANCH_LABELS.items():
        if f"logits_test_{branch}" not in ctx.inputs:
            continue
        calibration = read_json(ctx.inputs[f"seenn1_{branch}"])
        guarantee = read_json(ctx.inputs[f"guarantee_{branch}"])
        guarantee = None if "void" in guarantee else guarantee
        for k, sigma in enumerate([0.0, *ctx.params["shift"]["noise_std"]]):
            role = f"logits_test_{branch}" if k == 0 else f"logits_noise{k - 1}_{branch}"
            z, y = load_logits(ctx.inputs[role])
            rows += [{"model": label, "noise_std": sigma, **r} for r in outcomes(z, y, calibration, guarantee)]
    write_csv(ctx.outputs["rules"], pd.DataFrame(rows, columns=COLUMNS))


def declare_evaluate(branch, severities: int):
    from seenn.stages.declaration import Stage
    from seenn.stages.layout import split_paths

    d = branch.dir
    return Stage(name=f"evaluate_shifted_{branch.name}", run=stage_evaluate_shifted,
                 desc=f"per-timestep logits of the {branch.name} SNN on the test split with Gaussian pixel noise",
                 params=("seed", "device", "deterministic", "loader", "evaluate", "shift.noise_std"),
                 inputs={"model": branch.model, "test": split_paths("test")["test"]},
                 outputs={f"logits_noise{k}": shifted_logits(d, k) for k in range(severities)}, threads="all")


def declare_rules(branches, severities: int):
    """One stage over every SNN: `branches` are the run's Branch objects."""
    from seenn.stages.declaration import Stage

    inputs = {}
    for b in branches:
        d = b.dir
        inputs.update({f"logits_test_{b.name}": f"{d}/logits_test.pt", f"seenn1_{b.name}": f"{d}/seenn1.json",
                       f"guarantee_{b.name}": f"{d}/guarantee.json",
                       **{f"logits_noise{k}_{b.name}": shifted_logits(d, k) for k in range(severities)}})
    return Stage(name="shifted_rules", run=stage_shifted_rules,
                 desc="every exit rule at its clean-validation threshold on clean and noisy test inputs",
                 params=("shift.noise_std",), inputs=inputs, outputs={"rules": f"{SHIFT_DIR}/rules.csv"})
