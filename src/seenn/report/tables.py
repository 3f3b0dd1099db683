"""Result tables as CSV (for machines) and Markdown (for people), from the metrics JSON files."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from seenn.common.io import read_json
from seenn.methods.catalog import BRANCH_LABELS, ann_label, converted_label, fixed_label, seenn1_label
from seenn.methods.metrics import doubling_timesteps
from seenn.methods.seenn1 import in_order
from seenn.report.accuracy import accuracy_at
from seenn.report.guarantee import guarantee_roles, guarantee_table
from seenn.report.headline import (
    ENERGY_BRANCH,
    headline_rows,
    headline_table,
)
from seenn.report.labels import NOT_GIVEN
from seenn.report.rules import fronts, rules_table, shifted_table


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
    rows = [{"model": label, "method": fixed_label(t), "threshold": None, "test_accuracy": acc, "avg_timesteps": float(t)}
            for t, acc in enumerate(m["accuracy_per_t"], 1)]
    for score, r in in_order(seenn1):
        rows.append({"model": label, "method": seenn1_label(score), "threshold": r["alpha"],
                     "test_accuracy": r["test_accuracy"], "avg_timesteps": r["test_avg_timesteps"]})
    rows.append({"model": label, "method": "Oracle (first correct t)", "threshold": None,
                 "test_accuracy": m["oracle_accuracy"], "avg_timesteps": m["oracle_timesteps"]})
    df = pd.DataFrame(rows)
    df["timestep_reduction"] = T / df["avg_timesteps"]
    return df


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
    if "seenn2_result" in inputs:
        add_seenn2_tables(tables, inputs)
    tables["headline"] = headline_table(headline_rows(inputs))
    if guarantee_roles(inputs):
        tables["guarantee"] = guarantee_table(inputs, ENERGY_BRANCH)
    tables["rules"] = rules_table(inputs, ENERGY_BRANCH)
    tables["rules_front"] = fronts(inputs)
    if "neurobench" in inputs:
        from seenn.report.neurobench import neurobench_table

        tables["neurobench"] = neurobench_table(read_json(inputs["neurobench"]))
    if "rules_shifted" in inputs:
        tables["rules_shifted"] = shifted_table(pd.read_csv(inputs["rules_shifted"]))
    return tables


def conversion_table(ann: dict, metrics: dict) -> pd.DataFrame:
    """The QCFS ANN beside its converted SNN at T = 1, 2, 4, ..., T max: accuracy on val and test
    and the gap to the ANN (points; negative = below the ANN)."""
    rows = [{"model": ann_label(ann), "T": None, "val_accuracy": ann["val"]["accuracy"],
             "test_accuracy": ann["test"]["accuracy"], "test_gap_to_ann": 0.0}]
    test, val = accuracy_at(metrics["test"]), accuracy_at(metrics["val"])
    kept = "kept_timesteps" in metrics["test"]  # conversion.keep_timesteps: every kept T, else 1, 2, 4, ..., T
    for t in (list(test) if kept else doubling_timesteps(metrics["test"]["timesteps"])):
        acc_t = test[t]
        rows.append({"model": converted_label(ann.get("method")), "T": t, "val_accuracy": val[t],
                     "test_accuracy": acc_t, "test_gap_to_ann": acc_t - ann["test"]["accuracy"]})
    df = pd.DataFrame(rows)
    df["T"] = pd.Series([r["T"] for r in rows], dtype=object)  # integers, blank for the ANN row
    return df


def seenn2_sweep_table(s2sweep: pd.DataFrame, scores) -> pd.DataFrame:
    """One row per beta: SEENN-II test accuracy and average timesteps, beside each SEENN-I score's
    rule (by its published name) at the same cost chosen on validation (its alpha interpolated where its validation average
    timesteps equal SEENN-II's), both measured on the test split of the same SNN."""
    rows = []
    for _, r in s2sweep.iterrows():
        row = {"beta": r["beta"], "variant": r["variant"], "estimator": r["estimator"], "train_split": r["train_split"],
               "sample_weighting": bool(r["sample_weighting"]), "val_avg_timesteps": r["val_avg_timesteps"],
               "test_accuracy": r["test_accuracy"], "avg_timesteps": r["test_avg_timesteps"]}
        for score in scores:
            label = seenn1_label(score)
            row[f"{label} alpha"] = r[f"seenn1_{score}_alpha"]
            row[f"{label} test acc"] = r[f"seenn1_{score}_test_accuracy"]
            row[f"{label} avg t"] = r[f"seenn1_{score}_test_avg_timesteps"]
        best = max(scores, key=lambda sc: r[f"seenn1_{sc}_test_accuracy"])
        row["SEENN-II minus SEENN-I (pts)"] = r["test_accuracy"] - r[f"seenn1_{best}_test_accuracy"]
        rows.append(row)
    return pd.DataFrame(rows)


def seenn2_rows(points: pd.DataFrame, T: int, label: str) -> pd.DataFrame:
    """Methods-table rows of SEENN-II operating points (columns estimator, beta, test_accuracy,
    test_avg_timesteps: rows of compare.csv or a seenn2.json)."""
    df = pd.DataFrame([{"model": label, "method": f"SEENN-II ({r['estimator']}, β={r['beta']:g}"
                        + (f", {r['variant']} rule)" if r.get("variant", "paper") != "paper" else ")"), "threshold": None,
                        "test_accuracy": r["test_accuracy"], "avg_timesteps": r["test_avg_timesteps"]}
                       for _, r in points.iterrows()])
    df["timestep_reduction"] = T / df["avg_timesteps"]
    return df


def seenn2_method_rows(seenn2: dict, compare: pd.DataFrame, T: int, label: str) -> pd.DataFrame:
    """SEENN-II rows of the methods table: one per estimator, at the main beta and the configured
    training split and weighting (from the comparison grid)."""
    sel = compare[(compare["train_split"] == seenn2["train_split"])
                  & (compare["sample_weighting"].astype(bool) == bool(seenn2["sample_weighting"]))]
    return seenn2_rows(sel, T, label)


def seenn2_variants_table(variants: pd.DataFrame, label: str) -> pd.DataFrame:
    """SEENN-II training rules of one SNN at the main beta: validation and test of each, and the
    one picked on validation."""
    cols = ["variant", "action_grid", "reward", "actions", "beta", "val_accuracy", "val_avg_timesteps", "test_accuracy",
            "test_avg_timesteps", "chosen"]
    return variants[cols].assign(model=label)[["model"] + cols]


def seenn2_compare_table(compare: pd.DataFrame) -> pd.DataFrame:
    cols = ["estimator", "train_split", "sample_weighting", "policy_arch", "policy_macs", "epochs", "train_split_accuracy_t1", "train_split_accuracy",
            "train_split_mean_u", "test_accuracy", "test_avg_timesteps"] + [c for c in compare.columns if c.startswith("exit_t")]
    return compare[cols].rename(columns={"train_split_accuracy_t1": "SNN acc t=1, policy split",
                                         "train_split_accuracy": "SEENN-II acc, policy split",
                                         "train_split_mean_u": "mean u, policy split"})


def seenn2_ops_table(seenn2: dict) -> pd.DataFrame:
    """Dense operation counts (MACs of conv + linear layers) of the policy and the SNN, and the
    policy's share of the SNN's operations (at one timestep, as the paper; and at SEENN-II's
    average timesteps). Values are text so that counts print as integers."""
    o = seenn2["ops"]
    rows = [("policy network MACs per sample", f"{o['policy_macs']:,d}"),
            ("policy network parameters (conv + linear weights)", f"{o['policy_params']:,d}"),
            ("SNN MACs per timestep (dense)", f"{o['snn_macs_per_timestep']:,d}"),
            ("SNN MACs computed once (direct-encoding stem)", f"{o['snn_macs_fixed']:,d}"),
            ("SNN parameters (conv + linear weights)", f"{o['snn_params']:,d}"),
            ("policy / SNN at one timestep", f"{o['policy_share_of_one_timestep_percent']:.4f} %"),
            (f"policy / SNN at SEENN-II's {seenn2['test_avg_timesteps']:.4f} average timesteps",
             f"{o['policy_share_at_avg_timesteps_percent']:.4f} %"),
            ("SEENN-II dense cost incl. policy, in SNN timesteps", f"{o['timestep_equivalents_with_policy']:.4f}")]
    return pd.DataFrame(rows, columns=["quantity", "value"])


def insert_before_oracle(methods: pd.DataFrame, label: str, rows: pd.DataFrame) -> pd.DataFrame:
    """The methods table with `rows` placed before the oracle row of the model `label`."""
    oracle = methods.index[(methods["model"] == label) & (methods["method"].str.startswith("Oracle"))][0]
    return pd.concat([methods.iloc[:oracle], rows, methods.iloc[oracle:]], ignore_index=True)


def add_seenn2_tables(tables: dict, inputs: dict) -> None:
    """SEENN-II rows in the methods table (before each SNN's oracle row); the SEENN-II sweep
    (one row block per SNN), comparison and operations tables. Each SNN's fixed-T, AET and
    SEENN-I rows come from its own branch block."""
    metrics = read_json(inputs["metrics_finetuned"])
    seenn1 = read_json(inputs["seenn1_finetuned"])
    seenn2 = read_json(inputs["seenn2_result"])
    compare = pd.read_csv(inputs["seenn2_compare"])
    label = BRANCH_LABELS["finetuned"]
    s2 = seenn2_method_rows(seenn2, compare, metrics["test"]["timesteps"], label)
    tables["methods"] = insert_before_oracle(tables["methods"], label, s2)
    sweeps = [seenn2_sweep_table(pd.read_csv(inputs["seenn2_sweep"]), list(seenn1["scores"])).assign(model=label)]
    if "seenn2_result_converted" in inputs:
        conv = BRANCH_LABELS["converted"]
        metrics_c, seenn1_c = read_json(inputs["metrics_converted"]), read_json(inputs["seenn1_converted"])
        s2c = read_json(inputs["seenn2_result_converted"])
        point = pd.DataFrame([{k: s2c[k] for k in ("estimator", "beta", "variant", "test_accuracy", "test_avg_timesteps")}])
        tables["methods"] = insert_before_oracle(tables["methods"], conv, seenn2_rows(point, s2c["timesteps"], conv))
        sweeps.append(seenn2_sweep_table(pd.read_csv(inputs["seenn2_sweep_converted"]), list(seenn1_c["scores"]))
                      .assign(model=conv))
        tables["seenn2_variants"] = seenn2_variants_table(pd.read_csv(inputs["seenn2_variants_converted"]), conv)
    sweep = pd.concat(sweeps, ignore_index=True)
    tables["seenn2_sweep"] = sweep[["model"] + [c for c in sweep.columns if c != "model"]]
    tables["seenn2_compare"] = seenn2_compare_table(compare)
    tables["seenn2_ops"] = seenn2_ops_table(seenn2)


SEED_ROLES = ("metrics_direct", "seenn1_direct", "metrics_finetuned", "seenn1_finetuned", "seenn2_result",
              "metrics_converted", "seenn1_converted", "seenn2_result_converted")  # what each seed's run gives the tables
AET, EMPIRICAL_AET, ORACLE = "AET (Eq. 4)", "empirical AET (Eq. 13)", "Oracle (first correct t)"
ACC, AVG_T = "test_accuracy", "avg_timesteps"


def seed_role(seed: int, role: str) -> str:
    """The tables stage's input name of one seed's result file."""
    return f"seed{seed}_{role}"


def run_values(inputs: dict) -> dict[tuple[str, str, str], float]:
    """The headline figures of one run, keyed (SNN, method, quantity): per SNN fixed T at its max T,
    SEENN-I per score, SEENN-II at the main beta, AET, empirical AET and the oracle (test split)."""
    out: dict[tuple[str, str, str], float] = {}
    seenn2_roles = {"finetuned": "seenn2_result", "converted": "seenn2_result_converted"}
    for branch in branches(inputs):
        label, m = BRANCH_LABELS.get(branch, branch), read_json(inputs[f"metrics_{branch}"])["test"]
        out[(label, fixed_label(m["timesteps"]), ACC)] = m["accuracy_per_t"][-1]
        for score, r in in_order(read_json(inputs[f"seenn1_{branch}"])):
            out[(label, seenn1_label(score), ACC)] = r["test_accuracy"]
            out[(label, seenn1_label(score), AVG_T)] = r["test_avg_timesteps"]
        if seenn2_roles.get(branch) in inputs:
            s2 = read_json(inputs[seenn2_roles[branch]])
            method = f"SEENN-II (β={s2['beta']:g})"
            out[(label, method, ACC)], out[(label, method, AVG_T)] = s2["test_accuracy"], s2["test_avg_timesteps"]
        out[(label, AET, AVG_T)], out[(label, EMPIRICAL_AET, AVG_T)] = m["aet"], m["empirical_aet"]
        out[(label, ORACLE, ACC)], out[(label, ORACLE, AVG_T)] = m["oracle_accuracy"], m["oracle_timesteps"]
    return out


def split_runs(inputs: dict, seed: int, seeds: list[int]) -> dict[int, dict]:
    """The inputs of each run by its seed: the main run's (seed `seed`) and each extra seed's."""
    runs = {seed: {k: v for k, v in inputs.items() if not re.match(r"seed\d+_", k)}}
    for s in seeds:
        if s != seed:
            runs[s] = {r: inputs[seed_role(s, r)] for r in SEED_ROLES if seed_role(s, r) in inputs}
    return runs


def across_runs(values: list[dict]) -> dict[tuple[str, str, str], tuple[float, float, int]]:
    """Per key of the runs' figures: mean, sample standard deviation (ddof 1; NaN for one run), n."""
    out = {}
    for key in values[0]:
        v = np.array([run[key] for run in values if key in run], dtype=np.float64)
        out[key] = (float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan"), int(v.size))
    return out


def seeds_table(runs: dict[int, dict]) -> pd.DataFrame:
    """Mean, standard deviation and n over every seed's run (main included), one row per SNN,
    method and quantity; every run shares the data split of the main seed."""
    stats = across_runs([run_values(inputs) for inputs in runs.values()])
    seeds = ", ".join(map(str, runs))
    return pd.DataFrame([{"model": k[0], "method": k[1], "quantity": k[2], "mean": m, "std": s, "n": n, "seeds": seeds}
                         for k, (m, s, n) in stats.items()])


# (metric, paper numbers key, SNN branch the paper's figure is compared with, method, quantity); the
# paper's fixed-T, SEENN-I and Table 5 figures are of the directly trained SNN, SEENN-II of the fine-tuned
PAPER_METRICS = (
    ("accuracy at fixed T = max (%)", "fixed_t_accuracy", "direct", "fixed", ACC),
    ("SEENN-I (confidence) accuracy (%)", "seenn1_accuracy", "direct", seenn1_label("confidence"), ACC),
    ("SEENN-I (confidence) average timesteps", "seenn1_avg_timesteps", "direct", seenn1_label("confidence"), AVG_T),
    ("SEENN-II accuracy (%)", "seenn2_accuracy", "finetuned", "SEENN-II", ACC),
    ("SEENN-II average timesteps", "seenn2_avg_timesteps", "finetuned", "SEENN-II", AVG_T),
    ("AET (Eq. 4)", "aet", "direct", AET, AVG_T),
    ("empirical AET (Eq. 13)", "empirical_aet", "direct", EMPIRICAL_AET, AVG_T),
    # the paper's SEENN-I figure beside this run's SEENN-I at Learn-then-Test's certified alpha (main seed)
    ("SEENN-I (confidence) at a certified alpha: accuracy (%)", "seenn1_accuracy", "direct",
     seenn1_label("confidence", "certified"), ACC),
    ("SEENN-I (confidence) at a certified alpha: average timesteps", "seenn1_avg_timesteps", "direct",
     seenn1_label("confidence", "certified"), AVG_T),
)


def certified_values(inputs: dict) -> tuple[dict[tuple[str, str, str], float], set[str]]:
    """SEENN-I at Learn-then-Test's certified alpha (full T where none is certified) per SNN and
    score, keyed as run_values; and the SNN labels whose guarantee the protocol voids."""
    out, void = {}, set()
    for branch, role in guarantee_roles(inputs).items():
        g, label = read_json(inputs[role]), BRANCH_LABELS[branch]
        if "void" in g:
            void.add(label)
            continue
        for score, s in g["scores"].items():
            out[(label, seenn1_label(score, "certified"), ACC)] = s["ltt"]["test_accuracy"]
            out[(label, seenn1_label(score, "certified"), AVG_T)] = s["ltt"]["test_avg_timesteps"]
    return out, void


def paper_comparison(row: dict, runs: dict[int, dict]) -> pd.DataFrame:
    """One row per metric: the paper's reported figure (or NOT_GIVEN), this run's (mean, std and n
    over the seeds' runs; the certified SEENN-I rows are the main seed's, whose guarantee stage ran),
    and the difference this run - paper."""
    stats = across_runs([run_values(inputs) for inputs in runs.values()])
    certified, void = certified_values(next(iter(runs.values())))  # the main seed's run comes first
    stats.update({k: (v, float("nan"), 1) for k, v in certified.items()})
    rows = []
    for metric, key, branch, method, quantity in PAPER_METRICS:
        label = BRANCH_LABELS[branch]
        if label in void and "certified" in method:
            rows.append({"metric": metric, "snn": f"{label} (void: data.protocol is 'authors')",
                         "paper": NOT_GIVEN if row.get(key) is None else row.get(key),
                         "this_run": float("nan"), "this_run_std": float("nan"), "n": 0, "difference": float("nan")})
            continue
        match = [k for k in stats if k[0] == label and k[2] == quantity and (
            k[1].startswith("Fixed T=") if method == "fixed" else k[1].startswith("SEENN-II") if method == "SEENN-II"
            else k[1] == method)]
        mean, std, n = stats[match[0]] if match else (float("nan"), float("nan"), 0)
        paper = row.get(key)
        rows.append({"metric": metric, "snn": label + (f" ({match[0][1]})" if method in ("fixed", "SEENN-II") and match else ""),
                     "paper": NOT_GIVEN if paper is None else paper, "this_run": mean, "this_run_std": std, "n": n,
                     "difference": float("nan") if paper is None or not match else mean - paper})
    return pd.DataFrame(rows)


def paper_comparison_markdown(df: pd.DataFrame, row_id: str, row: dict) -> str:
    """The comparison for people: 'this run' as mean ± std when several seeds ran."""
    def fmt(v, std, n):
        if n == 0:
            return "not run"
        return f"{v:.4f}" + (f" ± {std:.4f} (n={n})" if n > 1 else "")

    shown = pd.DataFrame({"metric": df["metric"], "SNN (this run)": df["snn"],
                          "paper": [p if isinstance(p, str) else f"{p:g}" for p in df["paper"]],
                          "this run": ["void" if "(void" in snn else fmt(v, s, n)
                                       for snn, v, s, n in zip(df["snn"], df["this_run"], df["this_run_std"], df["n"])],
                          "difference (this run - paper)": ["" if pd.isna(d) else f"{d:+.4f}" for d in df["difference"]]})
    whose = ("The paper's fixed-T, SEENN-I and Table 5 figures are of the directly trained SNN, SEENN-II of the "
             "fine-tuned one: this run's figures come from the same branches." if "ann_accuracy" not in row else
             "The TEAS paper's Table 2 row of a converted SNN: its ANN, the converted SNN at the original T and after "
             "TEAS; this run's from its ANN, the converted SNN's fixed-T row and TEAS at teas.ratio.")
    notes = (f"Paper row `{row_id}`: {row.get('title', '')}; source: {row.get('source', '')}; the paper's max T: "
             f"{row.get('max_timesteps')}. {whose}")
    return shown.to_markdown(index=False) + "\n\n" + notes + "\n"
