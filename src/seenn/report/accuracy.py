"""Accuracy per timestep read from one split of an evaluation's metrics, whatever timesteps the
evaluation kept (conversion.keep_timesteps): one reader for the tables, figures and report."""

from __future__ import annotations


def accuracy_at(split: dict) -> dict[int, float]:
    """T -> accuracy of one split of an evaluation's metrics: every T = 1..T, or the kept ones."""
    if "kept_timesteps" in split:
        return dict(zip(split["kept_timesteps"], split["accuracy_per_kept_t"]))
    return {t: a for t, a in enumerate(split["accuracy_per_t"], start=1)}
