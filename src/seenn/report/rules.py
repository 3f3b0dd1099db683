"""Every published exit rule on one footing: per SNN, each rule at the threshold chosen on
validation (tolerance rule and Learn-then-Test) and SpikeCP's conformal rule, with fixed T and the
oracle (empirical AET) beside them; the Pareto front of test accuracy against average timesteps
over every rule's threshold sweep; and which rule holds that front where, in one sentence."""

from __future__ import annotations

import math

import pandas as pd

from seenn.common.io import read_json
from seenn.methods.catalog import BRANCH_LABELS, conformal_label, fixed_label, seenn1_label
from seenn.methods.published import PUBLISHED, coinciding
from seenn.report.guarantee import ROLE as GUARANTEE_ROLE
from seenn.report.guarantee import RULES, engine_energies

ORACLE = "Oracle (first correct t) = empirical AET"
CALIBRATIONS = {**RULES, "conformal": "conformal", None: ""}  # how a row's threshold was chosen
COLUMNS = ["model", "rule", "calibration", "threshold", "test_accuracy", "avg_timesteps", "vs_full_t", "timestep_reduction",
           "energy_uJ", "same_as"]
FRONT_COLUMNS = ["model", "rule", "avg_timesteps", "accuracy"]


def _branches(inputs: dict) -> list[str]:
    return [b for b in BRANCH_LABELS if f"metrics_{b}" in inputs and f"seenn1_{b}" in inputs]


def _guarantee(inputs: dict, branch: str) -> dict | None:
    """One SNN's guarantee.json among `inputs`, or None when absent or void (the authors' protocol)."""
    path = inputs.get(f"{GUARANTEE_ROLE}{branch}")
    g = read_json(path) if path else None
    return None if g is None or "void" in g else g


def _merged(settings: dict) -> tuple[dict[str, str], dict[str, str]]:
    """(score -> its row's label) for the scores shown, and (score -> the rule it also is) where
    two scores are one rule under these settings: the table shows that rule's row once."""
    same = coinciding(settings)
    shown = {s: seenn1_label(s) for s in settings["scores"] if s not in same}
    also = {kept: PUBLISHED[dropped].name for dropped, kept in same.items()}
    return shown, also


def rules_table(inputs: dict, energy_branch: str | None = None) -> pd.DataFrame:
    """One row per SNN and rule at its chosen threshold (test split): fixed T at max T; each score's
    rule at the tolerance rule's and at Learn-then-Test's threshold; SpikeCP; the oracle, whose
    average timesteps are the empirical AET (Eq. 13). Energy where the engine counted it."""
    energies = engine_energies(inputs) if energy_branch else {}
    rows = []
    for branch in _branches(inputs):
        m = read_json(inputs[f"metrics_{branch}"])["test"]
        s1 = read_json(inputs[f"seenn1_{branch}"])
        g = _guarantee(inputs, branch)
        label, T, full = BRANCH_LABELS[branch], m["timesteps"], m["accuracy_per_t"][-1]
        energy = energies if branch == energy_branch else {}

        def row(rule, calibration, threshold, acc, avg_t, key=None, same_as=None):
            rows.append({"model": label, "rule": rule, "calibration": CALIBRATIONS[calibration], "threshold": threshold,
                         "test_accuracy": acc, "avg_timesteps": avg_t, "vs_full_t": acc - full, "timestep_reduction": T / avg_t,
                         "energy_uJ": energy.get(key), "same_as": same_as})

        row(fixed_label(T), None, None, full, float(T), key=(None, fixed_label(T)))
        shown, also = _merged(s1["settings"])
        for score, name in shown.items():
            r = s1["scores"][score]
            row(name, "tolerance", r["alpha"], r["test_accuracy"], r["test_avg_timesteps"], ("tolerance", score),
                also.get(score))
            if g is not None:
                lt = g["scores"][score]["ltt"]
                row(seenn1_label(score, "certified"), "ltt", lt["alpha"] if lt["certified"] else None, lt["test_accuracy"],
                    lt["test_avg_timesteps"], ("ltt", score), also.get(score))
        if g is not None:
            c = g["conformal"]
            row(conformal_label(c["score"]), "conformal", None, c["test"]["accuracy"], c["test"]["avg_timesteps"],
                ("conformal", c["score"]))
        row(ORACLE, None, None, m["oracle_accuracy"], m["empirical_aet"])
    return pd.DataFrame(rows, columns=COLUMNS)


def sweep_points(inputs: dict, branch: str) -> pd.DataFrame:
    """Every operating point of one SNN on the test split: each shown score's rule over its
    threshold sweep, fixed T = 1..T, SpikeCP at its alpha. Columns rule, avg_timesteps, accuracy."""
    m = read_json(inputs[f"metrics_{branch}"])["test"]
    shown, _ = _merged(read_json(inputs[f"seenn1_{branch}"])["settings"])
    sweep = pd.read_csv(inputs[f"sweep_{branch}"])
    sweep = sweep[(sweep["split"] == "test") & sweep["score"].isin(list(shown))]
    parts = [sweep.assign(rule=sweep["score"].map(shown))[["rule", "avg_timesteps", "accuracy"]],
             pd.DataFrame({"rule": "Fixed T", "avg_timesteps": [float(t) for t in range(1, m["timesteps"] + 1)],
                           "accuracy": m["accuracy_per_t"]})]
    g = _guarantee(inputs, branch)
    if g is not None:
        c = g["conformal"]
        parts.append(pd.DataFrame({"rule": [conformal_label(c["score"])], "avg_timesteps": [c["test"]["avg_timesteps"]],
                                   "accuracy": [c["test"]["accuracy"]]}))
    return pd.concat(parts, ignore_index=True)


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """The points no other point beats (fewer or equal average timesteps and higher accuracy, or
    equal accuracy and fewer timesteps), by increasing average timesteps; on a tie of both, the
    first rule in `points` keeps the point."""
    order = points.reset_index(drop=True).reset_index().sort_values(["avg_timesteps", "accuracy", "index"],
                                                                    ascending=[True, False, True])
    keep, best = [], float("-inf")
    for i, r in order.iterrows():
        if r["accuracy"] > best:
            keep.append(i)
            best = r["accuracy"]
    return order.loc[keep].drop(columns="index").reset_index(drop=True)


def fronts(inputs: dict) -> pd.DataFrame:
    """The Pareto front of every SNN of the run, one row per point (what the tables stage writes)."""
    parts = [pareto_front(sweep_points(inputs, b)).assign(model=BRANCH_LABELS[b]) for b in _branches(inputs)
             if f"sweep_{b}" in inputs]
    return pd.concat(parts, ignore_index=True)[FRONT_COLUMNS] if parts else pd.DataFrame(columns=FRONT_COLUMNS)


NEAR_BEST_POINTS = 0.1  # the front sentence's "near the best accuracy": within this many points


def front_shares(front: pd.DataFrame) -> dict[str, float]:
    """Share of one SNN's front each rule holds, measured along log average timesteps (the figure's
    axis): a point holds the stretch up to the next point of the front. Largest first."""
    f = front.sort_values("avg_timesteps")
    t = f["avg_timesteps"].map(math.log).tolist()
    widths = [b - a for a, b in zip(t, t[1:])] + [0.0]
    total = sum(widths)
    shares: dict[str, float] = {}
    for rule, w in zip(f["rule"], widths):
        shares[rule] = shares.get(rule, 0.0) + (w / total if total > 0 else 1.0 / len(f))
    return dict(sorted(shares.items(), key=lambda kv: -kv[1]))


def front_sentence(front: pd.DataFrame, model: str) -> str | None:
    """Which rule holds the Pareto front of `model` where, as measured (one sentence): each rule's
    share of the front, and whose point first comes within NEAR_BEST_POINTS of its best accuracy."""
    f = front[front["model"] == model].sort_values("avg_timesteps")
    if f.empty:
        return None
    shares = [(rule, share) for rule, share in front_shares(f).items() if share >= 0.005]
    held = (", ".join(f"{rule} {100 * share:.0f} %" for rule, share in shares) + " of its length on a log axis"
            if len(shares) > 1 else f"{shares[0][0]} alone")
    near = f[f["accuracy"] >= f["accuracy"].max() - NEAR_BEST_POINTS].iloc[0]
    noun = model[0].lower() + model[1:] if model[1:2].islower() else model
    return (f"On the {noun} (test split, every rule's threshold sweep), the Pareto front of accuracy against average "
            f"timesteps ({f['avg_timesteps'].iloc[0]:.2f}-{f['avg_timesteps'].iloc[-1]:.2f} timesteps) is held by {held}; "
            f"the first point within {NEAR_BEST_POINTS:g} points of its best accuracy is "
            f"{near['rule']}'s, {near['accuracy']:.2f} % at {near['avg_timesteps']:.2f} timesteps.")


def _timestep_axis(ax, T: int) -> None:
    """Average timesteps on a log2 axis with ticks 1, 2, 4, ..., T."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({2 ** k for k in range(int(math.log2(T)) + 1)} | {T}))
    ax.xaxis.set_major_formatter("{x:g}")
    ax.xaxis.set_minor_formatter("")


def rules_figure(inputs: dict):
    """Test accuracy against average timesteps, one panel per SNN: every rule over its threshold
    sweep, fixed T, SpikeCP, the oracle, and the Pareto front over all of them."""
    from seenn.report.plotting import pyplot

    plt = pyplot()
    branches = [b for b in _branches(inputs) if f"sweep_{b}" in inputs]
    fig, axes = plt.subplots(1, max(len(branches), 1), figsize=(3.8 * max(len(branches), 1), 4.8), squeeze=False)
    for ax, branch in zip(axes[0], branches):
        pts = sweep_points(inputs, branch)
        m = read_json(inputs[f"metrics_{branch}"])["test"]
        for i, (rule, df) in enumerate(pts.groupby("rule", sort=False)):
            df = df.sort_values("avg_timesteps")
            if rule == "Fixed T":
                ax.plot(df["avg_timesteps"], df["accuracy"], "ko--", lw=1, ms=3, label=rule)
            elif len(df) == 1:
                ax.scatter(df["avg_timesteps"], df["accuracy"], marker="s", s=30, color=f"C{i}", zorder=5, label=rule)
            else:
                ax.plot(df["avg_timesteps"], df["accuracy"], lw=1.2, color=f"C{i}", label=rule)
        front = pareto_front(pts)
        ax.step(front["avg_timesteps"], front["accuracy"], where="post", color="0.3", lw=2.4, alpha=0.35,
                label="Pareto front")
        ax.scatter([m["empirical_aet"]], [m["oracle_accuracy"]], marker="D", color="grey", zorder=6, label="oracle")
        _timestep_axis(ax, m["timesteps"])
        ax.set_ylim(max(front["accuracy"].min(), m["accuracy_per_t"][-1] - 8) - 1, m["oracle_accuracy"] + 1)
        ax.set_xlabel("average timesteps (test)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{BRANCH_LABELS[branch]} (T = {m['timesteps']})", fontsize=9)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    if not branches:
        axes[0][0].set_axis_off()
    fig.tight_layout()
    return fig


def shifted_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The shifted_rules stage's rows with each rule's change from the clean test split (noise 0):
    accuracy points and average timesteps."""
    clean = rows[rows["noise_std"] == 0].set_index(["model", "rule"])
    key = pd.MultiIndex.from_frame(rows[["model", "rule"]])
    out = rows.assign(d_accuracy=rows["accuracy"].to_numpy() - clean["accuracy"].reindex(key).to_numpy(),
                      d_timesteps=rows["avg_timesteps"].to_numpy() - clean["avg_timesteps"].reindex(key).to_numpy())
    out["calibration"] = out["calibration"].map(lambda c: CALIBRATIONS.get(c if isinstance(c, str) else None, ""))
    models = list(dict.fromkeys(rows["model"]))  # the stage's order: models, and each model's rules
    first = out.groupby("model", sort=False)["rule"].transform(lambda r: r.map({v: i for i, v in enumerate(dict.fromkeys(r))}))
    out = out.assign(_m=out["model"].map(models.index), _r=first)
    out = out.sort_values(["_m", "_r", "noise_std"], kind="stable").reset_index(drop=True)
    return out[["model", "rule", "calibration", "noise_std", "accuracy", "d_accuracy", "avg_timesteps", "d_timesteps",
                "risk", "coverage"]]


def shifted_wide(table: pd.DataFrame) -> pd.DataFrame:
    """The shifted table for a page: one row per SNN and rule (Learn-then-Test's rows left out),
    accuracy and average timesteps at each noise level side by side, printed."""
    t = table[table["calibration"] != CALIBRATIONS["ltt"]]
    sigmas = sorted(t["noise_std"].unique())
    rows = []
    for (model, rule), r in t.groupby(["model", "rule"], sort=False):
        by = r.set_index("noise_std")
        rows.append({"model": model, "rule": rule,
                     **{f"Acc. σ={s:g}": f"{by.at[s, 'accuracy']:.2f}" for s in sigmas},
                     **{f"Avg. T σ={s:g}": f"{by.at[s, 'avg_timesteps']:.3f}" for s in sigmas}})
    out = pd.DataFrame(rows)
    out["model"] = out["model"].where(out["model"] != out["model"].shift(), "")
    return out


def shifted_figure(rows: pd.DataFrame):
    """Per SNN, each rule's (average timesteps, accuracy) at its tolerance-rule threshold (and fixed
    T, SpikeCP) on clean test inputs and at each noise severity, joined in order of severity: how
    far the threshold chosen on clean validation moves."""
    from seenn.report.plotting import pyplot

    plt = pyplot()
    models = list(dict.fromkeys(rows["model"]))
    fig, axes = plt.subplots(1, max(len(models), 1), figsize=(3.8 * max(len(models), 1), 4.8), squeeze=False)
    sigmas = sorted(rows["noise_std"].unique())
    markers = dict(zip(sigmas, "o^sDv"))
    for ax, model in zip(axes[0], models):
        df = rows[(rows["model"] == model) & (rows["calibration"] != "ltt")]  # the certified rows: in the table
        for i, (rule, r) in enumerate(df.groupby("rule", sort=False)):
            r = r.sort_values("noise_std")
            color = "k" if rule.startswith("Fixed T") else f"C{i % 10}"
            ax.plot(r["avg_timesteps"], r["accuracy"], "-", color=color, lw=1, label=rule)
            for _, p in r.iterrows():
                ax.scatter([p["avg_timesteps"]], [p["accuracy"]], marker=markers[p["noise_std"]], color=color, s=14, zorder=5)
        _timestep_axis(ax, int(df.loc[df["rule"].str.startswith("Fixed T"), "avg_timesteps"].max()))
        ax.set_xlabel("average timesteps (test)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{model}: markers {', '.join(f'{m} σ={s:g}' for s, m in markers.items())}", fontsize=7)
        ax.legend(fontsize=5.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def notes() -> list[str]:
    """Each published rule's source and this project's departures from it, one line each."""
    return [f"{r.name}{' (' + r.detail + ')' if r.detail else ''}{' = ' + r.also if r.also else ''}: {r.paper}; code: "
            f"{r.code}. Here: {r.departure}." for r in PUBLISHED.values()]


def section(run, doc) -> None:
    """The report's section "Every published exit rule on one footing": the table of every rule at
    its chosen threshold per SNN, the sentence on the front, the figure, and each rule's source."""
    df = run.csv("rules_csv")
    doc.section("rules")
    doc.para("Each rule below acts on the same saved accumulated logits of the same SNNs, has its threshold chosen on "
             "the validation split by the same calibration (the tolerance rule, and Learn-then-Test's certified "
             "threshold beside it), and runs in the same engine for energy and latency; only SpikeCP's conformal rule "
             "sets its thresholds by its own calibration (the guarantee section). Where two rules coincide under the "
             "run's settings the table shows one row and names both.")
    show = df.copy()
    show["model"] = show["model"].where(show["model"] != show["model"].shift(), "")
    doc.table(show, "Every published exit rule at its chosen threshold (test split). vs full T: accuracy points against "
                    "fixed T at the maximum T; energy where the engine counted it (blank elsewhere); the oracle's average "
                    "timesteps are the empirical AET (Eq. 13). Latency per rule and batch size: the measurements "
                    "document.",
              columns=["model", "rule", "calibration", "threshold", "test_accuracy", "avg_timesteps", "vs_full_t",
                       "energy_uJ", "same_as"],
              names={"test_accuracy": "Test acc. (%)", "avg_timesteps": "Avg. T", "vs_full_t": "vs full T (pts)",
                     "energy_uJ": "Energy (µJ)", "same_as": "Also"})
    front = run.csv("rules_front_csv")
    doc.bullets([s for s in (front_sentence(front, m) for m in dict.fromkeys(front["model"])) if s])
    doc.figure(run.inputs["rules_pareto"], "Test accuracy against average timesteps (log scale), one panel per SNN: each "
               "rule as its threshold sweeps, fixed T (dashed), SpikeCP at its alpha (square), the oracle (diamond) and "
               "the Pareto front over all of them (grey).")
    if run.has("rules_shifted_csv", "rules_shifted"):
        shifted = run.csv("rules_shifted_csv")
        sigmas = ", ".join(f"{s:g}" for s in sorted(shifted["noise_std"].unique()) if s > 0)
        doc.subsection("Shifted inputs")
        doc.para(f"The same rules, with the thresholds chosen on clean validation, on the test split with Gaussian noise "
                 f"on the pixels (standard deviation {sigmas} on the [0, 1] scale, as ImageNet-C's gaussian_noise at "
                 "severities 1 and 4; seeded per sample, so every SNN sees the same noisy images). Nothing in the "
                 "calibration promises anything off the clean distribution: the table shows how each rule's accuracy, "
                 "average timesteps, risk (share of predictions that differ from full T on the same inputs) and "
                 "SpikeCP's coverage move when the data moves.")
        wide = shifted_wide(shifted)
        doc.table(wide, "Each rule at the tolerance rule's clean-validation threshold (with fixed T and SpikeCP) on clean "
                        "(σ = 0) and noisy test inputs: test accuracy (%) and average timesteps at each noise level. "
                        "Learn-then-Test's thresholds, the risk and SpikeCP's coverage: results/tables/rules_shifted.csv.",
                  names={c: c for c in wide.columns if c not in ("model", "rule")})
        doc.figure(run.inputs["rules_shifted"], "Each rule on clean and noisy test inputs, at the tolerance rule's "
                   "clean-validation threshold, with fixed T and SpikeCP (markers by noise level, joined from clean "
                   "to the strongest noise).")
    doc.bullets(notes())
