"""Where the pipeline's files live: the prepared splits, each SNN branch's results, tables,
figures and measurements, and the groups of result files several stages read."""

from __future__ import annotations

PREPARED = "data/prepared"
RESULTS = "results"
PARAMS_DIR = "results/params"
MEASUREMENTS = "results/measurements"  # wall-clock measurements: not deterministic, not compared
TABLES = f"{RESULTS}/tables"
FIGURES = f"{RESULTS}/figures"
SPLITS = ("train", "val", "test")


def split_paths(*splits: str) -> dict[str, str]:
    """The prepared split files, by split name (all three when none is named)."""
    return {s: f"{PREPARED}/{s}.pt" for s in (splits or SPLITS)}


def branch_dir(branch: str) -> str:
    """Where the files of one SNN branch (direct, finetuned, converted) live."""
    return f"{RESULTS}/{branch}"


def engine_inputs(branch) -> dict[str, str]:
    """What the engine stages read of the SNN branch they run: the SNN, the test split, its SEENN-I
    calibration and its guarantee stage's rules (Learn-then-Test, conformal), and its main-beta
    SEENN-II policy when the branch has SEENN-II."""
    return {"model": branch.model, **split_paths("test"), "seenn1": f"{branch.dir}/seenn1.json",
            "guarantee": f"{branch.dir}/guarantee.json",
            **({"policy": f"{branch.seenn2_out}/policy.pt"} if branch.seenn2_out else {})}


def result_inputs(conversion: bool = True, base: str = RESULTS) -> dict[str, str]:
    """The branches' result files that the tables and figures read: the conversion branch's only
    when it is in the DAG (`conversion.enabled`); `base` is where the run's results live (a seed's
    own run: results/seeds/<s>)."""
    direct, ft = (f"{base}/{b}" for b in ("direct", "finetuned"))
    s2 = f"{base}/seenn2"
    return {"metrics_direct": f"{direct}/metrics.json", "seenn1_direct": f"{direct}/seenn1.json",
            "metrics_finetuned": f"{ft}/metrics.json", "seenn1_finetuned": f"{ft}/seenn1.json",
            "sweep_finetuned": f"{ft}/seenn1_sweep.csv", "finetune_log": f"{ft}/finetune_log.csv",
            "seenn2_result": f"{s2}/seenn2.json", "seenn2_sweep": f"{s2}/sweep.csv", "seenn2_compare": f"{s2}/compare.csv",
            "policy_log": f"{s2}/policy_log.csv", "compare_log": f"{s2}/compare_log.csv",
            **(conversion_inputs(base) if conversion else {})}


def conversion_inputs(base: str = RESULTS) -> dict[str, str]:
    """Files of the conversion branch that tables, figures and report read."""
    conv = f"{base}/converted"
    s2c = f"{conv}/seenn2"
    return {"metrics_converted": f"{conv}/metrics.json", "seenn1_converted": f"{conv}/seenn1.json",
            "ann_metrics": f"{conv}/ann_metrics.json", "sweep_converted": f"{conv}/seenn1_sweep.csv",
            "seenn2_result_converted": f"{s2c}/seenn2.json", "seenn2_sweep_converted": f"{s2c}/sweep.csv",
            "seenn2_variants_converted": f"{s2c}/variants.csv"}
