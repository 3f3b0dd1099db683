"""Early exit with a guarantee, side by side on one SNN's saved logits: SEENN-I's tolerance rule
(a point estimate), Learn-then-Test's certified alpha (methods/certify.py) and the conformal
stopping rule (methods/conformal.py), each chosen on the validation split and read on test; and
redraws of random calibration / held-out halves of val + test pooled, counting how often each
rule breaks its own promise on the held-out half."""

from __future__ import annotations

import pandas as pd
import torch

from seenn.methods import conformal
from seenn.methods.certify import certify_losses, disagreement
from seenn.methods.exits import exit_scores, seenn1_exit_many
from seenn.methods.metrics import correctness
from seenn.methods.seenn1 import alpha_grid, select_alpha


class _Exits:
    """One score's exits at every alpha of the grid, for logits [N, T, K]: per alpha and sample,
    whether the prediction at the exit is right (`hit`) and differs from full T (`loss`)."""

    def __init__(self, z: torch.Tensor, y: torch.Tensor, score: str, alphas: torch.Tensor, how: tuple):
        self.T = z.shape[1]
        self.exits = seenn1_exit_many(exit_scores(z, score, *how), alphas)  # [A, N]
        c = correctness(z, y)  # [N, T]
        self.hit = c[torch.arange(c.shape[0])[None, :], self.exits - 1]
        self.full = c[:, -1]
        self.loss = disagreement(z, self.exits)

    def sweep(self, rows: torch.Tensor, alphas: torch.Tensor) -> pd.DataFrame:
        return pd.DataFrame({"alpha": alphas.tolist(), "accuracy": (self.hit[:, rows].double().mean(1) * 100).tolist(),
                             "avg_timesteps": self.exits[:, rows].double().mean(1).tolist()})

    def at(self, i: int | None, rows: torch.Tensor) -> dict:
        """Accuracy, average timesteps and risk on `rows` at alpha row i; at full T when i is None
        (no alpha certified)."""
        if i is None:
            return {"accuracy": float(self.full[rows].double().mean() * 100), "avg_timesteps": float(self.T), "risk": 0.0}
        return {"accuracy": float(self.hit[i, rows].double().mean() * 100),
                "avg_timesteps": float(self.exits[i, rows].double().mean()),
                "risk": float(self.loss[i, rows].double().mean())}


# the epsilons of the figure "average timesteps against epsilon" (the configured one joins them)
EPSILONS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2)


def _epsilon_curve(ex: _Exits, val, test, alphas, epsilons, delta: float, kind: str) -> list[dict]:
    """Learn-then-Test at each epsilon: the certified alpha (None: full T) and its test figures."""
    losses = ex.loss[:, val].sum(1).tolist()
    out = []
    for e in epsilons:
        c = certify_losses(losses, len(val), alphas, e, delta, kind)
        at = ex.at(c.index, test)
        out.append({"epsilon": e, "alpha": None if c.index is None else float(alphas[c.index]),
                    **{f"test_{k}": v for k, v in at.items()}})
    return out


def compare(zv, yv, zt, yt, cfg: dict, conf: dict, seed: int) -> tuple[dict, pd.DataFrame]:
    """Per score: the tolerance rule, Learn-then-Test and (once) the conformal rule, chosen on
    validation and read on test; then `cfg['redraws']` random halves of val + test pooled.
    `cfg`: the seenn1 settings (with epsilon, delta, p_value, redraws); `conf`: the conformal ones."""
    T = zv.shape[1]
    alphas = alpha_grid(cfg["alpha_min"], cfg["alpha_max"], cfg["alpha_steps"])
    how = (cfg["temperature"], cfg["accumulate"], cfg["entropy_temperature"])
    eps, delta, kind, tol = cfg["epsilon"], cfg["delta"], cfg["p_value"], cfg["tolerance_points"]
    z, y = torch.cat([zv, zt]), torch.cat([yv, yt])
    nv = zv.shape[0]
    val, test = torch.arange(nv), torch.arange(nv, z.shape[0])
    checkpoints = conformal.checkpoints_for(conf["checkpoints"], T)
    result = {"timesteps": T, "epsilon": eps, "delta": delta, "p_value": kind, "tolerance_points": tol,
              "conformal": dict(conf, checkpoints=checkpoints), "scores": {}}
    exits = {score: _Exits(z, y, score, alphas, how) for score in cfg["scores"]}
    for score, ex in exits.items():
        full_val = float(ex.full[val].double().mean() * 100)
        i_tol = select_alpha(ex.sweep(val, alphas), full_val, tol)
        c = certify_losses(ex.loss[:, val].sum(1).tolist(), nv, alphas, eps, delta, kind)
        full_test, ltt_test = ex.at(None, test), ex.at(c.index, test)
        result["scores"][score] = {
            "tolerance": {"alpha": float(alphas[i_tol]), **{f"test_{k}": v for k, v in ex.at(i_tol, test).items()}},
            "ltt": {"certified": c.index is not None, "alpha": None if c.index is None else float(alphas[c.index]),
                    "val_risk": None if c.index is None else c.risks[c.index],
                    **{f"test_{k}": v for k, v in ltt_test.items()},
                    "test_error_increase_points": full_test["accuracy"] - ltt_test["accuracy"]},
            "full_t_test_accuracy": full_test["accuracy"],
            "epsilon_curve": _epsilon_curve(ex, val, test, alphas, sorted({*EPSILONS, eps}), delta, kind)}
    q = conformal.calibrate(zv, yv, checkpoints, conf["alpha"], conf["score"])
    rule = conformal.ConformalExit(tuple(checkpoints), tuple(q), conf["max_set_size"], conf["score"])
    result["conformal"].update({"q": q, "test": conformal.report(zt, yt, rule)})
    rows = _redraws(z, y, exits, alphas, cfg, conf, checkpoints, seed)
    result["redraws"] = _summary(rows)
    return result, rows


def _redraws(z, y, exits: dict, alphas, cfg: dict, conf: dict, checkpoints: list[int], seed: int) -> pd.DataFrame:
    """Each redraw: a random half of val + test calibrates every rule, the other half reads it.
    A promise is broken when the held-out accuracy falls more than tolerance_points below full T
    (tolerance rule), the held-out risk exceeds epsilon (Learn-then-Test), or the held-out
    coverage falls below 1 - alpha (conformal, a guarantee in expectation only)."""
    g = torch.Generator().manual_seed(seed)
    n = z.shape[0]
    rows = []
    for r in range(cfg["redraws"]):
        perm = torch.randperm(n, generator=g)
        cal, held = perm[: n // 2], perm[n // 2 :]
        for score, ex in exits.items():
            full_cal, full_held = (float(ex.full[s].double().mean() * 100) for s in (cal, held))
            i = select_alpha(ex.sweep(cal, alphas), full_cal, cfg["tolerance_points"])
            h = ex.at(i, held)
            drop = full_held - h["accuracy"]
            rows.append({"redraw": r, "rule": "tolerance", "score": score, "broken": drop > cfg["tolerance_points"] + 1e-9,
                         "measure": drop, "avg_timesteps": h["avg_timesteps"], "accuracy": h["accuracy"]})
            c = certify_losses(ex.loss[:, cal].sum(1).tolist(), len(cal), alphas, cfg["epsilon"], cfg["delta"], cfg["p_value"])
            h = ex.at(c.index, held)
            rows.append({"redraw": r, "rule": "ltt", "score": score, "broken": h["risk"] > cfg["epsilon"],
                         "measure": h["risk"], "avg_timesteps": h["avg_timesteps"], "accuracy": h["accuracy"]})
        q = conformal.calibrate(z[cal], y[cal], checkpoints, conf["alpha"], conf["score"])
        rule = conformal.ConformalExit(tuple(checkpoints), tuple(q), conf["max_set_size"], conf["score"])
        rep = conformal.report(z[held], y[held], rule)
        rows.append({"redraw": r, "rule": "conformal", "score": conf["score"], "broken": rep["coverage"] < 1 - conf["alpha"],
                     "measure": rep["coverage"], "avg_timesteps": rep["avg_timesteps"], "accuracy": rep["accuracy"]})
    return pd.DataFrame(rows)


def _summary(rows: pd.DataFrame) -> list[dict]:
    """Per rule and score: how often the promise broke, and the mean held-out figures."""
    out = []
    for (rule, score), g in rows.groupby(["rule", "score"], sort=True):
        out.append({"rule": rule, "score": score, "redraws": len(g), "broken_share": float(g["broken"].mean()),
                    "mean_measure": float(g["measure"].mean()), "mean_avg_timesteps": float(g["avg_timesteps"].mean()),
                    "mean_accuracy": float(g["accuracy"].mean())})
    return out
