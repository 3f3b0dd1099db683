"""Figures (PNG, stable bytes): accuracy vs average timesteps over alpha with fixed-T points,
histogram of exit timesteps, confidence distribution per timestep, training curves."""

from __future__ import annotations

import pandas as pd

from seenn.common.io import atomic_path, read_json
from seenn.methods.catalog import seenn1_label
from seenn.methods.exits import exit_scores
from seenn.methods.seenn1 import in_order
from seenn.report.plotting import pyplot

PNG_METADATA = {"Software": None}


def save_png(fig, path, dpi: int) -> None:
    """Save a figure atomically with no timestamp or version in its metadata."""
    plt = pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata=PNG_METADATA, bbox_inches="tight")
    plt.close(fig)


def tradeoff_figure(sweep: pd.DataFrame, metrics: dict, seenn1: dict, title: str):
    """Test accuracy vs average timesteps: SEENN-I curves over alpha, fixed-T points, chosen alphas."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    test = sweep[sweep["split"] == "test"].sort_values(["score", "alpha"])
    for score, df in test.groupby("score", sort=True):
        ax.plot(df["avg_timesteps"], df["accuracy"], label=f"{seenn1_label(score)} over alpha", lw=1.5)
        r = seenn1["scores"][score]
        ax.scatter([r["test_avg_timesteps"]], [r["test_accuracy"]], marker="*", s=140, zorder=5,
                   label=f"{seenn1_label(score)} at calibrated alpha={r['alpha']:.4f}")
    acc = metrics["test"]["accuracy_per_t"]
    ax.plot(range(1, len(acc) + 1), acc, "ko--", label="fixed T", lw=1)
    ax.scatter([metrics["test"]["oracle_timesteps"]], [metrics["test"]["oracle_accuracy"]], marker="D", color="grey",
               label="oracle (first correct t)", zorder=5)
    ax.set_xlabel("average timesteps")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def exit_histogram_figure(seenn1: dict, title: str):
    plt = pyplot()
    import seaborn as sns  # here, not at the top: see the imports
    rows = [{"score": s, "t": t, "samples": n} for s, r in in_order(seenn1)
            for t, n in enumerate(r["test_exit_histogram"], 1)]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    sns.barplot(pd.DataFrame(rows), x="t", y="samples", hue="score", ax=ax)
    ax.set_xlabel("exit timestep t")
    ax.set_ylabel("test samples")
    ax.set_title(title)
    return fig


def confidence_figure(logits, labels, temperature: float, accumulate: str, bins: int, title: str):
    """Distribution of max softmax confidence at each t, split by correct / wrong prediction."""
    import seaborn as sns  # here, not at the top: see the imports
    conf = exit_scores(logits, "confidence", temperature, accumulate)
    correct = logits.argmax(-1) == labels[:, None]
    T = conf.shape[1]
    df = pd.DataFrame({"t": [t + 1 for t in range(T) for _ in range(conf.shape[0])],
                       "confidence": conf.T.reshape(-1).tolist(),
                       "prediction": ["correct" if c else "wrong" for c in correct.T.reshape(-1).tolist()]})
    grid = sns.displot(df, x="confidence", col="t", hue="prediction", bins=bins, stat="count", common_norm=False,
                       height=2.4, aspect=0.9, facet_kws={"sharey": False}, hue_order=["correct", "wrong"])
    grid.set(yscale="log")
    grid.figure.suptitle(title, y=1.05)
    return grid.figure


def training_figure(log: pd.DataFrame, title: str):
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(7.5, 3.0))
    a1.plot(log["epoch"], log["train_loss"], "o-")
    a1.set_xlabel("epoch")
    a1.set_ylabel("training loss")
    a2.plot(log["epoch"], log["train_acc"], "o-", label="train")
    a2.plot(log["epoch"], log["val_acc"], "s-", label="validation (T max)")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy (%)")
    a2.legend(fontsize=7)
    fig.suptitle(title)
    return fig


def conversion_figure(metrics: dict, ann: dict, title: str):
    """Accuracy of the converted SNN at every T (log2 axis) against the QCFS ANN's accuracy."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    from seenn.report.accuracy import accuracy_at

    for split, style in (("test", "o-"), ("val", "s:")):
        acc = accuracy_at(metrics[split])  # every T, or conversion.keep_timesteps
        ax.plot(list(acc), list(acc.values()), style, ms=3, lw=1.2, label=f"converted SNN ({split})")
    ax.axhline(ann["test"]["accuracy"], color="k", ls="--", lw=1, label=(f"QCFS ANN, L={ann['levels']} (test)" if ann.get("method") != "rmp" else "ReLU ANN, RMP (test)"))
    ax.axhspan(ann["test"]["accuracy"] - 1, ann["test"]["accuracy"] + 1, color="grey", alpha=0.15, lw=0,
               label="ANN test accuracy +/- 1 point")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("timesteps T")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def summary_figure(inputs: dict):
    """The summary's accuracy-vs-cost figure: one panel per SNN, fixed T over T, SEENN-I over
    alpha (test), SEENN-II over beta where the SNN has it, and the oracle."""
    plt = pyplot()
    from seenn.methods.catalog import BRANCH_LABELS

    panels = [("direct", "sweep_direct", None), ("finetuned", "sweep_finetuned", "seenn2_sweep"),
              ("converted", "sweep_converted", "seenn2_sweep_converted")]
    panels = [p for p in panels if f"metrics_{p[0]}" in inputs]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 2.9), squeeze=False)
    for ax, (branch, sweep_role, s2_role) in zip(axes[0], panels):
        m = read_json(inputs[f"metrics_{branch}"])["test"]
        acc = m["accuracy_per_t"]
        ax.plot(range(1, len(acc) + 1), acc, "ko--", ms=3, lw=1, label="fixed T")
        sweep = pd.read_csv(inputs[sweep_role])
        for score, df in sweep[sweep["split"] == "test"].sort_values(["score", "alpha"]).groupby("score", sort=True):
            ax.plot(df["avg_timesteps"], df["accuracy"], lw=1.3, label=f"{seenn1_label(score)} over α")
        if s2_role and s2_role in inputs:
            curve = pd.read_csv(inputs[s2_role]).sort_values("test_avg_timesteps")
            ax.plot(curve["test_avg_timesteps"], curve["test_accuracy"], "o-", color="tab:red", ms=4, lw=1.5,
                    label="SEENN-II over β")
        ax.scatter([m["oracle_timesteps"]], [m["oracle_accuracy"]], marker="D", color="grey", zorder=5, label="oracle")
        if len(acc) > 8:
            ax.set_xscale("log", base=2)
        ax.set_title(BRANCH_LABELS[branch], fontsize=9)
        ax.set_xlabel("average timesteps")
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("test accuracy (%)")
    handles = {lab: h for ax in axes[0] for h, lab in zip(*ax.get_legend_handles_labels())}
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(5, len(handles)), fontsize=7,
               bbox_to_anchor=(0.5, -0.02), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def seenn2_tradeoff_figure(sweep_ft: pd.DataFrame, metrics_ft: dict, seenn1_ft: dict, s2sweep: pd.DataFrame,
                           compare: pd.DataFrame, seenn2: dict, sweep_direct: pd.DataFrame, title: str):
    """On the fine-tuned SNN: SEENN-I curves over alpha, the SEENN-II curve over beta, the
    estimator / training-split comparison points, fixed T and the oracle; the direct SNN's
    SEENN-I curves in grey for reference."""
    fig = tradeoff_figure(sweep_ft, metrics_ft, seenn1_ft, title)
    ax = fig.axes[0]
    for score, df in sweep_direct[sweep_direct["split"] == "test"].sort_values(["score", "alpha"]).groupby("score", sort=True):
        ax.plot(df["avg_timesteps"], df["accuracy"], color="0.75", lw=1, ls=":", label=f"direct SNN: {seenn1_label(score)}")
    curve = s2sweep.sort_values("test_avg_timesteps")
    ax.plot(curve["test_avg_timesteps"], curve["test_accuracy"], "o-", color="tab:red", lw=1.8, zorder=6,
            label=f"SEENN-II ({seenn2['estimator']}, {seenn2['train_split']} split) over beta")
    for _, r in curve.iterrows():
        ax.annotate(f"{r['beta']:g}", (r["test_avg_timesteps"], r["test_accuracy"]), fontsize=6, xytext=(3, 3),
                    textcoords="offset points", color="tab:red")
    markers = {("expected", "val"): "s", ("expected", "train"): "P", ("reinforce", "val"): "^", ("reinforce", "train"): "X"}
    for _, r in compare[compare["policy"] == "table6"].iterrows():  # the paper's wider policy, for its accuracy
        ax.scatter([r["test_avg_timesteps"]], [r["test_accuracy"]], marker="*", color="tab:olive", s=80, zorder=7,
                   label=f"Table 6 policy ({r['policy_arch']}), {r['estimator']}, {r['train_split']} (beta={r['beta']:g})")
    for _, r in compare[compare["policy"] != "table6"].iterrows():
        ax.scatter([r["test_avg_timesteps"]], [r["test_accuracy"]], marker=markers[(r["estimator"], r["train_split"])],
                   facecolors="none" if not r["sample_weighting"] else "tab:purple", edgecolors="tab:purple", s=45, zorder=7,
                   label=f"{r['estimator']}, {r['train_split']}, {'weighted' if r['sample_weighting'] else 'unweighted'}"
                         f" (beta={r['beta']:g})")
    ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.02, 1))
    return fig


def policy_curves_figure(log: pd.DataFrame, hue: str, title: str, style: str | None = None, x: str = "epoch"):
    """Policy training per epoch on its training split (greedy u = argmax pi): mean reward,
    mean u and accuracy, one line per `hue` (and `style`) value, against `x` (epoch or SGD steps)."""
    plt = pyplot()
    import seaborn as sns  # here, not at the top: see the imports
    fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.0))
    for ax, col, label in zip(axes, ("mean_reward", "mean_u", "accuracy"), ("mean reward", "mean u", "accuracy (%)")):
        sns.lineplot(log, x=x, y=col, hue=hue, style=style, ax=ax, marker="o", markersize=3, legend=ax is axes[-1])
        ax.set_ylabel(label)
        ax.set_xlabel("SGD steps" if x == "steps" else x)
    if axes[-1].get_legend() is not None:
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.02, 1), fontsize=6, title_fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
