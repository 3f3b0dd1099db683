"""Result tables as CSV (for machines) and Markdown (for people), from the metrics JSON files."""

from __future__ import annotations

import pandas as pd

from ..io import read_json, write_text

BRANCH_LABELS = {"direct": "Direct-trained SNN", "converted": "QCFS-converted SNN"}
ANN_LABEL = "QCFS ANN"


def accuracy_per_t(metrics: dict, branch: str) -> pd.DataFrame:
    rows = []
    for t, (acc_t, acc_v) in enumerate(zip(metrics["test"]["accuracy_per_t"], metrics["val"]["accuracy_per_t"]), 1):
        rows.append({"model": BRANCH_LABELS.get(branch, branch), "T": t, "test_accuracy": acc_t, "val_accuracy": acc_v})
    return pd.DataFrame(rows)


def aet_table(metrics: dict, branch: str, dataset: str) -> pd.DataFrame:
    m = metrics["test"]
    return pd.DataFrame([{"model": BRANCH_LABELS.get(branch, branch), "dataset": dataset, "max_T": m["timesteps"],
                          "AET": m["aet"], "empirical_AET": m["empirical_aet"], "difference": m["aet"] - m["empirical_aet"]}])


def methods_table(metrics: dict, seenn1: dict, branch: str) -> pd.DataFrame:
    """Fixed T, SEENN-I (each score) and the oracle: accuracy, average timesteps, reduction."""
    m = metrics["test"]
    T = m["timesteps"]
    label = BRANCH_LABELS.get(branch, branch)
    rows = [{"model": label, "method": f"Fixed T={t}", "threshold": None, "test_accuracy": acc, "avg_timesteps": float(t)}
            for t, acc in enumerate(m["accuracy_per_t"], 1)]
    for score, r in seenn1["scores"].items():
        rows.append({"model": label, "method": f"SEENN-I ({score})", "threshold": r["alpha"],
                     "test_accuracy": r["test_accuracy"], "avg_timesteps": r["test_avg_timesteps"]})
    rows.append({"model": label, "method": "Oracle (first correct t)", "threshold": None,
                 "test_accuracy": m["oracle_accuracy"], "avg_timesteps": m["oracle_timesteps"]})
    df = pd.DataFrame(rows)
    df["timestep_reduction"] = T / df["avg_timesteps"]
    return df


def write_table(df: pd.DataFrame, csv_path, md_path, digits: int = 4) -> None:
    write_text(csv_path, df.to_csv(index=False, float_format=f"%.{digits}f"))
    shown = df.astype(object).where(df.notna(), None)  # empty cells, not "nan"
    write_text(md_path, shown.to_markdown(index=False, floatfmt=f".{digits}f", missingval="") + "\n")


def branches(inputs: dict) -> list[str]:
    """Branches whose results the stage reads: every `metrics_<branch>` input, in table order."""
    return [k.removeprefix("metrics_") for k in inputs if k.startswith("metrics_")]


def build_tables(inputs: dict) -> dict[str, pd.DataFrame]:
    """Per-branch rows of each table, stacked (direct first), plus the conversion table."""
    parts: dict[str, list[pd.DataFrame]] = {"accuracy_per_t": [], "aet": [], "methods": []}
    for branch in branches(inputs):
        metrics = read_json(inputs[f"metrics_{branch}"])
        seenn1 = read_json(inputs[f"seenn1_{branch}"])
        dataset = metrics.get("dataset", "")
        parts["accuracy_per_t"].append(accuracy_per_t(metrics, branch))
        parts["aet"].append(aet_table(metrics, branch, dataset))
        parts["methods"].append(methods_table(metrics, seenn1, branch))
    tables = {name: pd.concat(dfs, ignore_index=True) for name, dfs in parts.items()}
    if "ann_metrics" in inputs:
        tables["conversion"] = conversion_table(read_json(inputs["ann_metrics"]), read_json(inputs["metrics_converted"]))
    return tables


# --- conversion branch (QCFS ANN -> IF SNN) ---------------------------------------------------

def conversion_timesteps(T: int) -> list[int]:
    """The T shown in summaries of a long run: powers of two up to T, and T itself."""
    ts, t = [], 1
    while t < T:
        ts.append(t)
        t *= 2
    return ts + [T]


def conversion_table(ann: dict, metrics: dict) -> pd.DataFrame:
    """The QCFS ANN beside its converted SNN at T = 1, 2, 4, ..., T max: accuracy on val and test
    and the gap to the ANN (points; negative = below the ANN)."""
    rows = [{"model": f"{ANN_LABEL} (L={ann['levels']})", "T": None, "val_accuracy": ann["val"]["accuracy"],
             "test_accuracy": ann["test"]["accuracy"], "test_gap_to_ann": 0.0}]
    T = metrics["test"]["timesteps"]
    for t in conversion_timesteps(T):
        acc_t = metrics["test"]["accuracy_per_t"][t - 1]
        rows.append({"model": BRANCH_LABELS["converted"], "T": t, "val_accuracy": metrics["val"]["accuracy_per_t"][t - 1],
                     "test_accuracy": acc_t, "test_gap_to_ann": acc_t - ann["test"]["accuracy"]})
    df = pd.DataFrame(rows)
    df["T"] = pd.Series([r["T"] for r in rows], dtype=object)  # integers, blank for the ANN row
    return df


def stage_tables(ctx) -> None:
    for name, df in build_tables(ctx.inputs).items():
        write_table(df, ctx.outputs[f"{name}_csv"], ctx.outputs[f"{name}_md"])


# ----------------------------------------------------------------------------------------------
# Engine tables (latency and energy stages). The latency table holds measurements (they vary
# from run to run); the energy table holds deterministic operation counts.
# ----------------------------------------------------------------------------------------------

def latency_table(rows: list[dict]) -> pd.DataFrame:
    """Measured latency per method and batch size: paper Eq. 14 (test time / samples) in ms,
    samples per second, and the speedup over fixed T beside the ideal T / average timesteps."""
    df = pd.DataFrame([{
        "method": r["method"], "batch": r["batch_size"], "samples": r["samples"],
        "ms_per_sample": r["seconds_per_sample"] * 1e3, "samples_per_s": r["samples_per_second"],
        "avg_timesteps": r["avg_timesteps"], "speedup": r["speedup_vs_fixed_T"],
        "ideal": r["ideal_speedup"]} for r in rows])
    return df


def energy_table(methods: list[dict]) -> pd.DataFrame:
    """Operations and energy per inference: ACs and MACs in millions, energy in microjoules."""
    return pd.DataFrame([{
        "method": m["method"], "test_accuracy": m["accuracy"], "avg_timesteps": m["avg_timesteps"],
        "ACs_M": m["acs"] / 1e6, "MACs_M": m["macs"] / 1e6, "energy_uJ": m["energy_uj"],
        "energy_vs_ANN": m["energy_vs_ann"]} for m in methods])
