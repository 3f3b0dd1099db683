"""SEENN-I calibration: sweep the threshold alpha on the validation logits, pick one by the
config's rule, and report test accuracy and average timesteps at that alpha."""

from __future__ import annotations

import pandas as pd
import torch

from .evaluate import load_logits
from .exits import exit_scores, seenn1_exit_many
from .io import write_json, write_text
from .metrics import correctness, exit_histogram


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


def seenn1_config(params: dict) -> dict:
    """The `seenn1` settings with a branch's overrides: a declared key `<section>.seenn1_<name>`
    (e.g. conversion.seenn1_temperature) replaces seenn1.<name> for that branch only. Why: the
    summed logits of a 64-step converted SNN are ~16x larger than those of a 4-step direct SNN,
    so one softmax temperature cannot put both confidence ranges inside one alpha sweep."""
    cfg = dict(params["seenn1"])
    for section, values in params.items():
        if section != "seenn1" and isinstance(values, dict):
            cfg.update({k.removeprefix("seenn1_"): v for k, v in values.items() if k.startswith("seenn1_")})
    return cfg


def stage_seenn1(ctx) -> None:
    """Stage seenn1_<branch>: logits -> seenn1_sweep.csv + seenn1.json."""
    zv, yv = load_logits(ctx.inputs["logits_val"])
    zt, yt = load_logits(ctx.inputs["logits_test"])
    cfg = seenn1_config(ctx.params)
    table, result = calibrate(zv, yv, zt, yt, cfg)
    result.update({k: cfg[k] for k in ("temperature", "accumulate", "entropy_temperature")})
    write_text(ctx.outputs["sweep"], table.to_csv(index=False, float_format="%.6f"))
    write_json(ctx.outputs["result"], result)
