"""The figures stage: reads the branches' result files and draws every figure of the run to PNG
(report.figures builds them)."""

from __future__ import annotations

import pandas as pd

from seenn.common.artifacts import load_logits
from seenn.common.io import read_json
from seenn.report.figures import (
    confidence_figure,
    conversion_figure,
    exit_histogram_figure,
    policy_curves_figure,
    save_png,
    seenn2_tradeoff_figure,
    summary_figure,
    tradeoff_figure,
    training_figure,
)
from seenn.report.guarantee import epsilon_figure, guarantee_inputs
from seenn.report.plotting import pyplot
from seenn.report.rules import rules_figure, shifted_figure


def conversion_figures(ctx, dpi: int) -> None:
    """The conversion branch's figures: accuracy vs T with the ANN line, SEENN-I trade-off on the
    converted SNN (the direct branch's figure function, log2 axis), and the ANN training curves."""
    i = ctx.inputs
    metrics, seenn1, ann = read_json(i["metrics_converted"]), read_json(i["seenn1_converted"]), read_json(i["ann_metrics"])
    save_png(conversion_figure(metrics, ann, "Converted SNN accuracy vs timesteps"), ctx.outputs["conversion"], dpi)
    fig = tradeoff_figure(pd.read_csv(i["sweep_converted"]), metrics, seenn1,
                          "Converted SNN: accuracy vs average timesteps (test)")
    fig.axes[0].axhline(ann["test"]["accuracy"], color="k", ls=":", lw=1, label="QCFS ANN (test)")
    if "seenn2_sweep_converted" in i:  # SEENN-II over beta on the converted SNN
        curve = pd.read_csv(i["seenn2_sweep_converted"]).sort_values("test_avg_timesteps")
        fig.axes[0].plot(curve["test_avg_timesteps"], curve["test_accuracy"], "o-", color="tab:red", lw=1.8, zorder=6,
                         label="SEENN-II over beta")
    fig.axes[0].set_xscale("log", base=2)
    fig.axes[0].legend(fontsize=7, loc="lower right")
    save_png(fig, ctx.outputs["tradeoff_converted"], dpi)
    save_png(training_figure(pd.read_csv(i["ann_train_log"]), "QCFS ANN training"), ctx.outputs["training_ann"], dpi)


def stage_figures(ctx) -> None:
    import seaborn as sns  # here, not at the top: see the imports
    p = ctx.params
    sns.set_theme(style=p["figures"]["style"])
    dpi = p["figures"]["dpi"]
    metrics = read_json(ctx.inputs["metrics_direct"])
    seenn1 = read_json(ctx.inputs["seenn1_direct"])
    sweep = pd.read_csv(ctx.inputs["sweep_direct"])
    z, y = load_logits(ctx.inputs["logits_test"])
    save_png(summary_figure(ctx.inputs), ctx.outputs["summary"], dpi)
    save_png(tradeoff_figure(sweep, metrics, seenn1, "Accuracy vs average timesteps (test)"), ctx.outputs["tradeoff"], dpi)
    save_png(exit_histogram_figure(seenn1, "Exit timesteps of SEENN-I (test)"), ctx.outputs["exit_histogram"], dpi)
    save_png(confidence_figure(z, y, seenn1["settings"]["temperature"], seenn1["settings"]["accumulate"], p["figures"]["confidence_bins"],
                               "Confidence of the accumulated prediction at each timestep (test)"),
             ctx.outputs["confidence"], dpi)
    save_png(training_figure(pd.read_csv(ctx.inputs["train_log"]), "Direct SNN training"), ctx.outputs["training"], dpi)
    if "metrics_converted" in ctx.inputs:  # the conversion branch is in the DAG
        conversion_figures(ctx, dpi)
    seenn2_figures(ctx, dpi)
    save_png(epsilon_figure(ctx.inputs), ctx.outputs["guarantee_epsilon"], dpi)
    save_png(rules_figure(ctx.inputs), ctx.outputs["rules_pareto"], dpi)
    if "rules_shifted" in ctx.outputs:
        save_png(shifted_figure(pd.read_csv(ctx.inputs["rules_shifted"])), ctx.outputs["rules_shifted"], dpi)
    if "teas_combined" in ctx.outputs:  # teas.enabled
        from seenn.report import teas_pages

        teas_pages.write_figures(ctx.inputs, ctx.outputs, dpi, save_png)


def seenn2_figures(ctx, dpi: int) -> None:
    plt = pyplot()
    i, o = ctx.inputs, ctx.outputs
    seenn2 = read_json(i["seenn2_result"])
    save_png(seenn2_tradeoff_figure(pd.read_csv(i["sweep_finetuned"]), read_json(i["metrics_finetuned"]),
                                    read_json(i["seenn1_finetuned"]), pd.read_csv(i["seenn2_sweep"]),
                                    pd.read_csv(i["seenn2_compare"]), seenn2, pd.read_csv(i["sweep_direct"]),
                                    "SEENN-II vs SEENN-I on the fine-tuned SNN (test)"), o["tradeoff_seenn2"], dpi)
    plog = pd.read_csv(i["policy_log"]).assign(beta=lambda d: d["beta"].map(lambda b: f"beta={b:g}"))
    save_png(policy_curves_figure(plog, "beta", f"Policy training on the {seenn2['train_split']} split "
                                                f"({seenn2['estimator']} estimator)"), o["policy_training"], dpi)
    clog = pd.read_csv(i["compare_log"])
    clog["cell"] = (clog["train_split"] + ", " + clog["sample_weighting"].map({True: "weighted", False: "unweighted"})
                    + clog["policy"].map({"table6": ", Table 6 policy"}).fillna(""))
    save_png(policy_curves_figure(clog, "estimator", f"Estimators and training splits at beta={seenn2['beta']:g} "
                                                     "(each on its own training split)", style="cell", x="steps"),
             o["policy_compare"], dpi)
    ft_log = pd.read_csv(i["finetune_log"])
    if ft_log.empty:
        fig = plt.figure(figsize=(7.5, 1.5))
        fig.text(0.5, 0.5, "fine-tuning switched off (finetune.epochs: 0)", ha="center", va="center")
    else:
        fig = training_figure(ft_log, "Early-exit-aware fine-tuning of the direct SNN")
    save_png(fig, o["training_finetune"], dpi)


SEENN2_FIGURES = ("tradeoff_seenn2", "policy_training", "policy_compare", "training_finetune")
CONVERSION_FIGURES = ("conversion", "tradeoff_converted", "training_ann")
# output role -> (category, caption file in workflow/report/): what Snakemake's HTML report shows
REPORT_FIGURES = {
    "summary": ("1 Summary", "summary.rst"), "tradeoff": ("2 SEENN-I", "tradeoff.rst"),
    "exit_histogram": ("2 SEENN-I", "exit_histogram.rst"), "confidence": ("2 SEENN-I", "confidence.rst"),
    "training": ("2 SEENN-I", "training.rst"), "guarantee_epsilon": ("2 SEENN-I", "guarantee_epsilon.rst"),
    "rules_pareto": ("2 SEENN-I", "rules_pareto.rst"), "rules_shifted": ("2 SEENN-I", "rules_shifted.rst"),
    "tradeoff_seenn2": ("3 SEENN-II", "tradeoff_seenn2.rst"),
    "policy_training": ("3 SEENN-II", "policy_training.rst"), "policy_compare": ("3 SEENN-II", "policy_compare.rst"),
    "training_finetune": ("3 SEENN-II", "training_finetune.rst"), "conversion": ("4 Conversion", "conversion.rst"),
    "tradeoff_converted": ("4 Conversion", "tradeoff_converted.rst"), "training_ann": ("4 Conversion", "training_ann.rst"),
    "teas_activity": ("5 TEAS", "teas_activity.rst"), "teas_allocation": ("5 TEAS", "teas_allocation.rst"),
    "teas_combined": ("5 TEAS", "teas_combined.rst"),
}


def stage_teas_only_figures(ctx) -> None:
    """The figures stage of `teas.only`: the converted SNN's accuracy against T beside its ANN, the
    ANN's training, and TEAS's activity and allocation figures."""
    import seaborn as sns

    from seenn.methods.catalog import ann_label
    from seenn.report import teas_pages

    p, i, o = ctx.params, ctx.inputs, ctx.outputs
    sns.set_theme(style=p["figures"]["style"])
    dpi = p["figures"]["dpi"]
    ann = read_json(i["ann_metrics"])
    save_png(conversion_figure(read_json(i["metrics_converted"]), ann, "Converted SNN accuracy vs timesteps"),
             o["conversion"], dpi)
    save_png(training_figure(pd.read_csv(i["ann_train_log"]), f"{ann_label(ann)} training"), o["training_ann"], dpi)
    teas_pages.write_figures(i, o, dpi, save_png)


def declare_teas_only(teas: dict[str, str]):
    """The figures of `teas.only` (no SEENN figure: no exit rule ran)."""
    from seenn.report.teas_pages import declare_outputs
    from seenn.stages.declaration import Stage
    from seenn.stages.layout import FIGURES, TABLES, branch_dir, conversion_inputs

    conv = conversion_inputs()
    inputs = {"metrics_converted": conv["metrics_converted"], "ann_metrics": conv["ann_metrics"],
              "ann_train_log": f"{branch_dir('converted')}/ann_train_log.csv", **teas}
    outputs = {name: f"{FIGURES}/{name}.png" for name in ("conversion", "training_ann")}
    outputs.update(declare_outputs(TABLES, FIGURES, direct=False)[1])
    return Stage(name="figures", run=stage_teas_only_figures,
                 desc="figures of a TEAS-only run: converted SNN accuracy vs T beside its ANN, ANN training, TEAS's "
                      "activity profile and windows",
                 params=("figures",), inputs=inputs, outputs=outputs,
                 report={name: REPORT_FIGURES[name] for name in outputs})


def declare(conversion: bool = True, teas: dict[str, str] | None = None, shifted: str | None = None):
    """The figures of the branches present (the conversion branch's only when it is in the DAG; with
    TEAS's result files, `teas`: role -> path, also TEAS's figures and the combined one)."""
    from seenn.stages.declaration import Stage
    from seenn.stages.layout import FIGURES, TABLES, branch_dir, result_inputs

    direct, conv = branch_dir("direct"), branch_dir("converted")
    names = ("summary", "tradeoff", "exit_histogram", "confidence", "training", "guarantee_epsilon", "rules_pareto") + (
        CONVERSION_FIGURES if conversion else ())
    inputs = {"logits_test": f"{direct}/logits_test.pt", "sweep_direct": f"{direct}/seenn1_sweep.csv",
              "train_log": f"{direct}/train_log.csv", **result_inputs(conversion),
              **({"ann_train_log": f"{conv}/ann_train_log.csv"} if conversion else {})}
    inputs.update(guarantee_inputs(inputs))
    outputs = {name: f"{FIGURES}/{name}.png" for name in names + SEENN2_FIGURES}
    if shifted:  # shift.enabled: every rule on noisy inputs (stage shifted_rules)
        inputs["rules_shifted"] = shifted
        outputs["rules_shifted"] = f"{FIGURES}/rules_shifted.png"
    if teas:
        from seenn.report.teas_pages import declare_outputs

        inputs.update({**teas, "energy": f"{branch_dir('finetuned')}/energy.json"})
        outputs.update(declare_outputs(TABLES, FIGURES)[1])
    return Stage(name="figures", run=stage_figures,
                 desc="figures: accuracy vs average timesteps, exit histogram, confidence per timestep, timesteps vs epsilon, "
                      "every exit rule's sweep with the Pareto front",
                 params=("figures",), inputs=inputs, outputs=outputs,
                 report={name: REPORT_FIGURES[name] for name in outputs})
