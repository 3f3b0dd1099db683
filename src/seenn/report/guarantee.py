"""Early exit with a guarantee in the tables and the report: per SNN, SEENN-I's tolerance rule,
Learn-then-Test's certified alpha and the conformal rule side by side (from the guarantee stages'
guarantee.json, energy from the engine's SNN), the figure of average timesteps against epsilon,
and the price of the guarantee in one sentence."""

from __future__ import annotations

import math
from pathlib import PurePosixPath

import pandas as pd

from seenn.common.io import read_json
from seenn.methods.catalog import BRANCH_LABELS

ROLE = "guarantee_"  # input roles guarantee_<branch>: each SNN's guarantee.json
RULES = {"tolerance": "tolerance rule", "ltt": "Learn-then-Test", "conformal": "conformal (SpikeCP)"}
COLUMNS = ["model", "rule", "score", "alpha", "test_accuracy", "test_avg_timesteps", "energy_uJ", "realised",
           "promise", "broken_share", "heldout_avg_timesteps"]


def guarantee_inputs(inputs: dict) -> dict[str, str]:
    """The guarantee.json (stage guarantee_<branch>) of each SNN whose metrics_<branch> is among a
    stage's `inputs`, by its input role: what the tables and figures stages declare (the main
    seed's; the extra seeds have no guarantee stage)."""
    return {f"{ROLE}{k.removeprefix('metrics_')}": str(PurePosixPath(path).parent / "guarantee.json")
            for k, path in inputs.items() if k.startswith("metrics_")}  # beside each SNN's metrics.json


def guarantee_roles(inputs: dict) -> dict[str, str]:
    """branch -> role of its guarantee.json among `inputs`, in the branches' order."""
    return {b: f"{ROLE}{b}" for b in BRANCH_LABELS if f"{ROLE}{b}" in inputs}


def guarantee_table(inputs: dict, energy_branch: str | None = None) -> pd.DataFrame:
    """One row per SNN, rule and score: the threshold each rule chose on validation and its test
    figures (realised: the risk, share of predictions that differ from full T, for the SEENN-I
    rules; the coverage for the conformal rule), what it promises, and over the redraws the share
    of held-out halves on which that promise broke. Energy where the engine counted it."""
    counted = _energies(inputs, energy_branch)
    rows = []
    for branch, role in guarantee_roles(inputs).items():
        g, label = read_json(inputs[role]), BRANCH_LABELS[branch]
        energy = counted if branch == energy_branch else {}
        if "void" in g:
            rows.append({"model": label, "rule": "every rule", "promise": f"void: {g['void']}"})
            continue
        redraws = {(r["rule"], r["score"]): r for r in g["redraws"]}
        promises = {"tolerance": f"accuracy within {g['tolerance_points']:g} pts of full T",
                    "ltt": f"risk ≤ {g['epsilon']:g} w.p. ≥ {1 - g['delta']:g}"}
        for score, s in g["scores"].items():
            for rule in ("tolerance", "ltt"):
                r = s[rule]
                rows.append({"model": label, "rule": RULES[rule], "score": score, "alpha": r["alpha"],
                             "test_accuracy": r["test_accuracy"], "test_avg_timesteps": r["test_avg_timesteps"],
                             "energy_uJ": energy.get((rule, score)), "realised": r["test_risk"],
                             "promise": promises[rule] + ("" if rule != "ltt" or r["certified"] else "; none certified: full T"),
                             **_held_out(redraws.get((rule, score)))})
        c = g["conformal"]
        rows.append({"model": label, "rule": RULES["conformal"], "score": c["score"], "alpha": None,
                     "test_accuracy": c["test"]["accuracy"], "test_avg_timesteps": c["test"]["avg_timesteps"],
                     "energy_uJ": energy.get(("conformal", c["score"])), "realised": c["test"]["coverage"],
                     "promise": f"coverage ≥ {1 - c['alpha']:g} in expectation",
                     **_held_out(redraws.get(("conformal", c["score"])))})
    return pd.DataFrame(rows, columns=COLUMNS)


def _held_out(summary: dict | None) -> dict:
    if summary is None:
        return {}
    return {"broken_share": summary["broken_share"], "heldout_avg_timesteps": summary["mean_avg_timesteps"]}


def _energies(inputs: dict, energy_branch: str | None) -> dict[tuple[str, str], float]:
    """(calibration, score) -> energy per inference (µJ) of the engine's rule rows, when counted."""
    if energy_branch is None or f"{ROLE}{energy_branch}" not in inputs:
        return {}
    return engine_energies(inputs)


def engine_energies(inputs: dict) -> dict[tuple, float]:
    """Energy per inference (µJ) of each engine row of the energy stage's file among `inputs`:
    (calibration, score) for the exit rules, (None, label) for the others; {} when not counted."""
    if "energy" not in inputs:
        return {}
    return {((m["calibration"], m["score"]) if m.get("calibration") else (None, m["method"])): m["energy_uj"]
            for m in read_json(inputs["energy"])["methods"]}


def epsilon_figure(inputs: dict):
    """Average test timesteps of Learn-then-Test's certified alpha against epsilon, one panel per
    SNN and one line per score, with the tolerance rule's and the conformal rule's as lines."""
    from seenn.report.plotting import pyplot

    plt = pyplot()
    usable = {b: read_json(inputs[r]) for b, r in guarantee_roles(inputs).items()}
    usable = {b: g for b, g in usable.items() if "void" not in g}
    fig, axes = plt.subplots(1, max(len(usable), 1), figsize=(3.6 * max(len(usable), 1), 3.6), squeeze=False)
    for ax, (branch, g) in zip(axes[0], usable.items()):
        for i, (score, s) in enumerate(g["scores"].items()):
            curve = pd.DataFrame(s["epsilon_curve"])
            color = f"C{i}"
            ax.plot(curve["epsilon"], curve["test_avg_timesteps"], "o-", color=color, lw=1.5, ms=3,
                    label=f"Learn-then-Test ({score})")
            ax.axhline(s["tolerance"]["test_avg_timesteps"], color=color, ls="--", lw=1, label=f"tolerance rule ({score})")
        c = g["conformal"]
        ax.axhline(c["test"]["avg_timesteps"], color="k", ls=":", lw=1, label=f"conformal, alpha = {c['alpha']:g}")
        ax.axvline(g["epsilon"], color="0.6", lw=0.8)
        ax.set_xscale("log")
        ax.set_ylim(0.9, g["timesteps"] * 1.05)
        ax.set_xlabel("epsilon (risk bound)")
        ax.set_ylabel("average timesteps (test)")
        ax.set_title(f"{BRANCH_LABELS[branch]} (T = {g['timesteps']})", fontsize=9)
    if usable:  # one legend for every panel, below them (the conformal line's alpha is the run's)
        fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=7, frameon=False)
        fig.tight_layout(rect=(0, 0.16, 1, 1))
    else:
        axes[0][0].text(0.5, 0.5, "no guarantee: the protocol voids it", ha="center", va="center")
        axes[0][0].set_axis_off()
    return fig


def price_sentence(df: pd.DataFrame, branch: str) -> str | None:
    """The price of the guarantee on one SNN: Learn-then-Test's average timesteps against the
    tolerance rule's, for the score where the tolerance rule is cheapest, and how often each
    broke its promise over the redraws."""
    rows = df[df["model"] == BRANCH_LABELS.get(branch)]
    tol = rows[rows["rule"] == RULES["tolerance"]].dropna(subset=["test_avg_timesteps"])
    if tol.empty:
        return None
    best = tol.loc[tol["test_avg_timesteps"].idxmin()]
    ltt = rows[(rows["rule"] == RULES["ltt"]) & (rows["score"] == best["score"])].iloc[0]
    d = ltt["test_avg_timesteps"] - best["test_avg_timesteps"]
    price = (f"a price of {d:.2f} timesteps per sample" if d >= 0.005 else
             f"{-d:.2f} timesteps fewer per sample" if d <= -0.005 else "no measurable price")
    return (f"Learn-then-Test's certified threshold on the {BRANCH_LABELS[branch][0].lower() + BRANCH_LABELS[branch][1:]} "
            f"({ltt['promise']}, {best['score']} score) exits after {ltt['test_avg_timesteps']:.2f} timesteps on average "
            f"against {best['test_avg_timesteps']:.2f} for the tolerance rule: {price}; over random held-out halves the "
            f"tolerance rule broke its promise on {_share(best['broken_share'])} and Learn-then-Test on "
            f"{_share(ltt['broken_share'])}.")


def _share(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f} %"


def section(run, doc) -> None:
    """The report's section "Early exit with a guarantee": what each rule promises, the table of
    the three rules per SNN, the figure against epsilon, and what the redraws can and cannot show."""
    df = run.csv("guarantee_csv")
    s1 = run.params["seenn1"]
    conf = run.params["conformal"]
    doc.section("guarantee")
    doc.para("SEENN-I's tolerance rule picks the threshold with the fewest average timesteps whose validation accuracy "
             f"is within {s1['tolerance_points']:g} points of full T: a point estimate, with no bound on what it gives up "
             "on new data. Learn-then-Test (Angelopoulos et al. 2021) certifies a threshold instead: with probability at "
             f"least 1 - delta = {1 - s1['delta']:g} over the draw of the validation split, the share of predictions that "
             f"differ from full T (the risk) is at most epsilon = {s1['epsilon']:g} on new data from the same distribution "
             f"({s1['p_value'].replace('_', '-')} p-values, fixed-sequence testing from strict to loose). The conformal rule "
             "of \"Knowing When to Stop\" (Chen, Park, Simeone 2023) stops at the first checkpoint whose prediction set "
             f"holds at most {conf['max_set_size']} class(es); the true class is in the set at the stopping time with "
             f"probability at least {1 - conf['alpha']:g}, in expectation over the calibration draw. The engine stages run "
             f"the {'certified' if s1['calibration'] == 'ltt' else 'tolerance'} threshold as SEENN-I "
             "(seenn1.calibration) and the other rules beside it.")
    show = df.copy()
    show["model"] = show["model"].where(show["model"] != show["model"].shift(), "")
    doc.table(show, "Early exit with a guarantee (test split; thresholds chosen on validation). Realised: the risk "
                    "(share of predictions that differ from full T) for the two SEENN-I rules, the coverage for the "
                    f"conformal rule. Broken: share of {s1['redraws']} random halves of validation + test pooled on which "
                    "the rule, calibrated on one half, broke its promise on the other; energy where the engine counted it.",
              columns=["model", "rule", "score", "alpha", "test_accuracy", "test_avg_timesteps", "energy_uJ", "realised",
                       "promise", "broken_share"],
              names={"test_accuracy": "Test acc. (%)", "test_avg_timesteps": "Avg. T", "realised": "Realised"})
    doc.para("Read the broken shares with care: each held-out half is itself a finite sample, so its own sampling noise "
             "inflates every rule's violation frequency (a rule whose expected risk is exactly epsilon breaks it on about "
             "half the halves). Learn-then-Test's promise is about the expected risk, the conformal rule's about coverage "
             "in expectation; the tolerance rule promises nothing beyond the validation split.")
    doc.figure(run.inputs["guarantee_epsilon"], "Average test timesteps of the certified threshold as the risk bound "
               "epsilon grows (grey: the configured epsilon), beside the tolerance rule (dashed) and the conformal rule "
               "(dotted): the gap between a solid and a dashed line is the price of the guarantee.")
