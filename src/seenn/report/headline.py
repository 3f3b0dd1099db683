"""The headline numbers per SNN and method (test split): accuracy, average timesteps, the SNN's
AET and empirical AET, and the energy per inference where it is counted. One small JSON file per
SNN and method (results/metrics/headline/<snn>-<method>.json) is what DVC shows as metrics, so
`dvc metrics show` reads like the report's headline table and `dvc metrics diff` shows what moved."""

from __future__ import annotations

import pandas as pd

from seenn.common.io import read_json
from seenn.methods.catalog import BRANCH_LABELS, SEENN2, fixed_label, seenn1_label
from seenn.methods.seenn1 import in_order

HEADLINE_DIR = "results/metrics/headline"
ORACLE = "Oracle (first correct t)"
SEENN2_ROLES = {"finetuned": "seenn2_result", "converted": "seenn2_result_converted"}
ENERGY_BRANCH = "finetuned"  # the SNN the engine stages count energy on (seenn.pipeline.table.ENGINE_BRANCH)
DIGITS = 4  # decimals kept in the metric files: what a reader compares, not float noise


def method_keys(branch: str, scores: list[str], seenn2: bool) -> list[str]:
    """The file stems of one SNN's headline methods: fixed T at its max T, SEENN-I per score,
    SEENN-II where the SNN has a policy, the oracle."""
    return ["fixed", *(f"seenn1-{s}" for s in scores), *(["seenn2"] if seenn2 else []), "oracle"]


def headline_path(branch: str, key: str) -> str:
    return f"{HEADLINE_DIR}/{branch}-{key}.json"


def headline_role(branch: str, key: str) -> str:
    """The tables stage's output name of one headline file (an identifier, as Snakemake's names)."""
    return f"headline_{branch}_{key.replace('-', '_')}"


def _energy(inputs: dict) -> dict[str, float]:
    """Energy per inference by headline method. SEENN-I's headline rows are the tolerance rule's
    (seenn1.json), so they take the energy of the engine row run at that rule's alpha, whichever
    label `seenn1.calibration` gave it; the other rules' rows have no headline row."""
    if "energy" not in inputs:
        return {}
    out = {}
    for m in read_json(inputs["energy"])["methods"]:
        if m.get("calibration") == "tolerance":
            out[seenn1_label(m["score"])] = m["energy_uj"]
        elif m.get("calibration") is None:
            out[m["method"]] = m["energy_uj"]
    return out


def headline_rows(inputs: dict) -> list[dict]:
    """One row per SNN (every `metrics_<branch>` input, in table order) and method, from the files
    earlier stages wrote: evaluation metrics, SEENN-I calibration, SEENN-II result, energy."""
    energy = _energy(inputs)
    rows = []
    for branch in [k.removeprefix("metrics_") for k in inputs if k.startswith("metrics_")]:
        m = read_json(inputs[f"metrics_{branch}"])["test"]
        T = m["timesteps"]
        points = [("fixed", fixed_label(T), m["accuracy_per_t"][-1], float(T))]
        for score, r in in_order(read_json(inputs[f"seenn1_{branch}"])):
            points.append((f"seenn1-{score}", seenn1_label(score), r["test_accuracy"], r["test_avg_timesteps"]))
        if SEENN2_ROLES.get(branch) in inputs:
            s2 = read_json(inputs[SEENN2_ROLES[branch]])
            points.append(("seenn2", SEENN2, s2["test_accuracy"], s2["test_avg_timesteps"]))
        points.append(("oracle", ORACLE, m["oracle_accuracy"], m["oracle_timesteps"]))
        for key, method, acc, avg_t in points:
            e = energy.get(method) if branch == ENERGY_BRANCH else None
            rows.append({"snn_key": branch, "key": key, "model": BRANCH_LABELS.get(branch, branch), "method": method,
                         "max_T": T, "accuracy": acc, "avg_timesteps": avg_t, "aet": m["aet"],
                         "empirical_aet": m["empirical_aet"], "energy_uJ": e})
    return rows


def metric_file(row: dict) -> dict:
    """What one headline metric file holds (rounded; energy only where it is counted)."""
    out = {k: round(float(row[k]), DIGITS) for k in ("accuracy", "avg_timesteps", "aet", "empirical_aet")}
    if row["energy_uJ"] is not None:
        out["energy_uJ"] = round(float(row["energy_uJ"]), DIGITS)
    return out


HEADLINE_COLUMNS = ["snn_key", "key", "model", "method", "max_T", "accuracy", "avg_timesteps", "aet", "empirical_aet",
                    "energy_uJ"]


def headline_table(rows: list[dict]) -> pd.DataFrame:
    """results/tables/headline.csv: every headline row (the report's summary reads it back)."""
    return pd.DataFrame(rows)[HEADLINE_COLUMNS]


def read_headline(path: str) -> list[dict]:
    """The rows of headline.csv, energy None where it is not counted."""
    df = pd.read_csv(path)
    return [{**r, "energy_uJ": None if pd.isna(r["energy_uJ"]) else r["energy_uJ"]} for r in df.to_dict("records")]
