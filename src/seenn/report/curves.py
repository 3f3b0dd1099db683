"""The research curves as plain point files that `dvc plots show` draws: test accuracy against
average timesteps for fixed T (one point per T) and for SEENN-I over alpha (one point per alpha of
the sweep, per score). SEENN-II's curve over beta is its stage's own sweep.csv."""

from __future__ import annotations

import pandas as pd

COLUMNS = ("avg_timesteps", "accuracy")  # every curve file's x and y


def fixed_t_curve(metrics: dict) -> pd.DataFrame:
    """Fixed T = 1..T on the test split: average timesteps T, accuracy in %."""
    acc = metrics["test"]["accuracy_per_t"]
    return pd.DataFrame({"avg_timesteps": [float(t) for t in range(1, len(acc) + 1)], "accuracy": acc})


def seenn1_curve(sweep: pd.DataFrame, score: str) -> pd.DataFrame:
    """SEENN-I with one score on the test split, one point per alpha in increasing order."""
    rows = sweep[(sweep["split"] == "test") & (sweep["score"] == score)].sort_values("alpha")
    if rows.empty:
        raise ValueError(f"the SEENN-I sweep has no test rows for score '{score}'")
    return rows[["alpha", *COLUMNS]].reset_index(drop=True)
