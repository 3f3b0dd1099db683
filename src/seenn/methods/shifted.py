"""Every exit rule on shifted inputs, at the thresholds chosen on clean validation: accuracy,
average timesteps, the risk (share of predictions that differ from full T on the same inputs)
and, for SpikeCP's conformal rule, the coverage. How far each moves from the clean test split is
what calibration on clean data does not promise."""

from __future__ import annotations

import torch

from seenn.methods import conformal
from seenn.methods.catalog import engine_methods


def outcomes(z: torch.Tensor, y: torch.Tensor, calibration: dict, guarantee: dict | None) -> list[dict]:
    """One row per rule (fixed T at max T, each score at the tolerance rule's and Learn-then-Test's
    threshold, SpikeCP) on accumulated logits z [N, T, K] with labels y."""
    T = z.shape[1]
    n = torch.arange(z.shape[0])
    full = z[:, -1].argmax(-1)
    rows = []
    for m in engine_methods(T, calibration, False, guarantee, "tolerance"):
        if m.kind == "fixed" and m.T != T or m.kind not in ("fixed", "rule"):
            continue
        exits = m.rule.posthoc(z)
        pred = z[n, exits - 1].argmax(-1)
        row = {"rule": m.label, "calibration": m.calibration, "score": m.score,
               "accuracy": float((pred == y).double().mean() * 100), "avg_timesteps": float(exits.double().mean()),
               "risk": float((pred != full).double().mean()), "coverage": None}
        if m.calibration == "conformal":
            row["coverage"] = conformal.report(z, y, m.rule)["coverage"]
        rows.append(row)
    return rows
