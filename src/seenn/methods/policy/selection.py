"""Choosing among SEENN-II policies: the training rule picked on the validation split (by
SEENN-I's calibration rule), the estimator x training-split comparison grid at the main beta,
and what the authors' sample weighting did."""

from __future__ import annotations

import pandas as pd

from seenn.methods.policy.estimators import ESTIMATORS

TABLE6_POLICY = {"policy_stem_channels": 16, "policy_widths": [16, 32, 64], "policy_stem_stride": 1}  # paper Table 6


def weighting_note(r: float, weighting: bool) -> dict:
    """What the authors' weighting did on this branch: r (accuracy at t = 1 on the policy's
    training split) and the weight of each sample wrong at t = 1 (1 when switched off)."""
    w = r / (1 - r) if weighting and 0.0 < r < 1.0 else 1.0
    return {"r_t1": r, "share_wrong_at_t1": 1 - r, "weight_wrong_at_t1": w}


def select_variant(points: pd.DataFrame, full_val_accuracy: float, tolerance_points: float) -> int:
    """Row of the variant picked on validation, by SEENN-I's calibration rule: the fewest
    validation timesteps among those within `tolerance_points` of full-T validation accuracy;
    if none is, the most accurate one (columns val_accuracy, val_avg_timesteps, variant)."""
    ok = points[points["val_accuracy"] >= full_val_accuracy - tolerance_points - 1e-9]
    if ok.empty:
        return int(points.sort_values(["val_accuracy", "val_avg_timesteps"], ascending=[False, True]).index[0])
    return int(ok.sort_values(["val_avg_timesteps", "val_accuracy"], ascending=[True, False]).index[0])


def compare_cells(s: dict) -> list[dict]:
    """The grid `seenn2_compare` reports at the main beta: the configured policy first, then the
    other estimator at the configured split and weighting, then the configured estimator on every
    other (training split, weighting) pair -- 5 cells; and, when the configured policy is not the
    paper's Table 6 ResNet-8, that one too (what the smaller policy costs in accuracy)."""
    main = {"beta": s["beta"], "estimator": s["estimator"], "train_split": s["train_split"],
            "sample_weighting": s["sample_weighting"], "variant": "paper", "policy": "configured"}
    cells = [main] + [{**main, "estimator": e} for e in ESTIMATORS if e != main["estimator"]]
    cells += [{**main, "train_split": split, "sample_weighting": wt} for split in ("val", "train") for wt in (False, True)
              if (split, wt) != (main["train_split"], main["sample_weighting"])]
    if any(s[k] != v for k, v in TABLE6_POLICY.items()):
        cells.append({**main, "policy": "table6"})
    return cells


def cfg_of(cell: dict, s: dict) -> dict:
    """The seenn2 settings a comparison cell trains with (the Table 6 cell swaps in its policy)."""
    return {**s, **TABLE6_POLICY} if cell["policy"] == "table6" else s
