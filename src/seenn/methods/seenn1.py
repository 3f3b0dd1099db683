"""SEENN-I calibration: sweep the threshold alpha on the validation logits, pick one by the
config's rule, and report test accuracy and average timesteps at that alpha."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from seenn.methods.exits import exit_scores, seenn1_exit, seenn1_exit_many
from seenn.methods.metrics import correctness, exit_histogram, exit_outcome


def sweep(logits: torch.Tensor, labels: torch.Tensor, score: str, alphas: torch.Tensor, temperature: float,
          accumulate: str, entropy_temperature: bool = False) -> pd.DataFrame:
    """Accuracy and average timesteps at every alpha."""
    c = correctness(logits, labels)
    exits = seenn1_exit_many(exit_scores(logits, score, temperature, accumulate, entropy_temperature), alphas)  # [A, N]
    hit = c[torch.arange(c.shape[0])[None, :], exits - 1]
    return pd.DataFrame({"alpha": alphas.tolist(), "accuracy": (hit.double().mean(1) * 100).tolist(),
                         "avg_timesteps": exits.double().mean(1).tolist()})


def alpha_grid(alpha_min: float, alpha_max: float, steps: int) -> torch.Tensor:
    """Thresholds from alpha_min to alpha_max, spaced evenly in log(1 - alpha): dense near 1,
    where accumulated-logit confidences live."""
    import math

    return 1 - torch.logspace(math.log10(1 - alpha_min), math.log10(1 - alpha_max), steps, dtype=torch.float64)


def select_alpha(val: pd.DataFrame, full_t_accuracy: float, tolerance_points: float) -> int:
    """Row index of the alpha with the fewest average timesteps whose accuracy is within
    `tolerance_points` of full-T accuracy; ties go to the higher accuracy, then the larger alpha.
    If no alpha qualifies, the most accurate one."""
    ok = val[val["accuracy"] >= full_t_accuracy - tolerance_points - 1e-9]
    if ok.empty:
        return int(val.sort_values(["accuracy", "alpha"], ascending=[False, False]).index[0])
    return int(ok.sort_values(["avg_timesteps", "accuracy", "alpha"], ascending=[True, False, False]).index[0])


def calibrate(val_logits, val_labels, test_logits, test_labels, cfg: dict) -> tuple[pd.DataFrame, dict]:
    """Sweep every configured score; return the long sweep table and the chosen operating points."""
    alphas = alpha_grid(cfg["alpha_min"], cfg["alpha_max"], cfg["alpha_steps"])
    T = val_logits.shape[1]
    cv, ct = correctness(val_logits, val_labels), correctness(test_logits, test_labels)
    full_val = float(cv[:, -1].double().mean() * 100)
    result = {"timesteps": T, "full_t": {"val_accuracy": full_val, "test_accuracy": float(ct[:, -1].double().mean() * 100)},
              "scores": {}}
    frames = []
    how = (cfg["temperature"], cfg["accumulate"], cfg["entropy_temperature"])
    for score in cfg["scores"]:
        sv = sweep(val_logits, val_labels, score, alphas, *how)
        st = sweep(test_logits, test_labels, score, alphas, *how)
        i = select_alpha(sv, full_val, cfg["tolerance_points"])
        alpha = float(alphas[i])
        exits = seenn1_exit_many(exit_scores(test_logits, score, *how), alphas[i : i + 1])[0]
        result["scores"][score] = {
            "alpha": alpha, "val_accuracy": float(sv.at[i, "accuracy"]), "val_avg_timesteps": float(sv.at[i, "avg_timesteps"]),
            "test_accuracy": float(st.at[i, "accuracy"]), "test_avg_timesteps": float(st.at[i, "avg_timesteps"]),
            "test_exit_histogram": exit_histogram(exits, T),
        }
        for split, df in (("val", sv), ("test", st)):
            frames.append(df.assign(score=score, split=split))
    table = pd.concat(frames, ignore_index=True)[["score", "split", "alpha", "accuracy", "avg_timesteps"]]
    return table, result


def at_budget(val_logits, val_labels, test_logits, test_labels, cfg: dict, val_avg_timesteps: float) -> dict:
    """SEENN-I at another method's cost, chosen on validation only: per score, the alpha where the
    validation sweep's average timesteps equal `val_avg_timesteps` (interpolated linearly in
    log(1 - alpha), the sweep's spacing; clipped to the sweep), with that alpha's validation and
    test accuracy and average timesteps. Why: comparing with SEENN-I's best alpha on the test
    split would pick SEENN-I's threshold on test while the other method's is fixed."""
    alphas = alpha_grid(cfg["alpha_min"], cfg["alpha_max"], cfg["alpha_steps"])
    how = (cfg["temperature"], cfg["accumulate"], cfg["entropy_temperature"])
    out = {}
    for score in cfg["scores"]:
        sv = sweep(val_logits, val_labels, score, alphas, *how)
        # one point per distinct average (a flat stretch of alphas gives its middle), increasing
        g = sv.assign(log_gap=np.log1p(-sv["alpha"])).groupby("avg_timesteps", as_index=False)["log_gap"].mean()
        alpha = float(-np.expm1(np.interp(val_avg_timesteps, g["avg_timesteps"], g["log_gap"])))
        point = {"alpha": alpha}
        for split, z, y in (("val", val_logits, val_labels), ("test", test_logits, test_labels)):
            acc, avg_t = exit_outcome(correctness(z, y), seenn1_exit(exit_scores(z, score, *how), alpha))
            point.update({f"{split}_accuracy": acc, f"{split}_avg_timesteps": avg_t})
        out[score] = point
    return out


# the seenn1 keys the tolerance calibration reads (the others, Learn-then-Test's, do not rerun it)
SETTINGS_KEYS = ("scores", "alpha_min", "alpha_max", "alpha_steps", "temperature", "accumulate", "entropy_temperature",
                 "tolerance_points")


def in_order(calibration: dict) -> list[tuple[str, dict]]:
    """(score, result) of a seenn1.json in the config's order of `seenn1.scores` (the JSON's keys
    are sorted), so that every table lists the rules as the config does."""
    order = calibration.get("settings", {}).get("scores", list(calibration["scores"]))
    return [(score, calibration["scores"][score]) for score in order]


def settings(cfg: dict) -> dict:
    """The SEENN-I settings a calibration used, recorded in seenn1.json so that later stages
    (SEENN-II's comparison, energy, latency) apply the same rule without re-reading the config."""
    return {k: cfg[k] for k in SETTINGS_KEYS}


def seenn1_config(params: dict) -> dict:
    """The `seenn1` settings with a branch's overrides (`branch_config`). Why: the summed logits
    of a 64-step converted SNN are ~16x larger than those of a 4-step direct SNN, so one softmax
    temperature cannot put both confidence ranges inside one alpha sweep."""
    return branch_config(params, "seenn1")


def branch_config(params: dict, section: str) -> dict:
    """Config section `section` with a branch's overrides: a declared key `<other>.<section>_<name>`
    (e.g. conversion.seenn1_temperature, conversion.conformal_checkpoints) replaces
    `<section>.<name>` for the branch whose stages declare it."""
    cfg = dict(params[section])
    prefix = f"{section}_"
    for other, values in params.items():
        if other != section and isinstance(values, dict):
            cfg.update({k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)})
    return cfg
