"""Human names for every table column, code value and method the report prints, with units and
number formats, in one place: tables keep their machine column names, the report shows these."""

from __future__ import annotations

import math
import re

NOT_GIVEN = "not given in the texts"  # a paper figure the paper does not report (never guessed)

# column -> (header with unit, format); format: a number of decimals, "int", "sci" (3 significant), or "text"
COLUMNS: dict[str, tuple[str, object]] = {
    "model": ("SNN", "text"), "snn": ("SNN", "text"), "method": ("Method", "text"), "dataset": ("Dataset", "text"),
    "T": ("T", "int"), "max_T": ("Max. T", "int"), "threshold": ("Threshold α", 4),
    "test_accuracy": ("Test acc. (%)", 2), "val_accuracy": ("Val. acc. (%)", 2), "accuracy": ("Acc. (%)", 2),
    "avg_timesteps": ("Avg. timesteps", 3), "test_avg_timesteps": ("Test avg. timesteps", 3),
    "val_avg_timesteps": ("Val. avg. timesteps", 3), "timestep_reduction": ("T / avg. timesteps (×)", 2),
    "AET": ("AET (Eq. 4)", 3), "empirical_AET": ("Empirical AET (Eq. 13)", 3), "aet": ("AET (Eq. 4)", 3),
    "empirical_aet": ("Empirical AET (Eq. 13)", 3), "difference": ("Difference", 3),
    "test_gap_to_ann": ("Gap to the ANN (pts)", 2),
    "beta": ("β", "g"), "variant": ("Training rule", "text"), "estimator": ("Estimator", "text"),
    "train_split": ("Policy split", "text"), "sample_weighting": ("Weighted", "text"),
    "action_grid": ("Actions u", "text"), "reward": ("Reward", "text"), "actions": ("Number of actions", "int"),
    "chosen": ("Picked on val.", "text"), "policy_arch": ("Policy network", "text"), "policy_macs": ("Policy MACs", "int"),
    "epochs": ("Epochs", "int"), "SNN acc t=1, policy split": ("SNN acc. at t = 1, policy split (%)", 2),
    "SEENN-II acc, policy split": ("SEENN-II acc., policy split (%)", 2),
    "mean u, policy split": ("Mean u, policy split", 3), "exits": ("Exits at t = 1, 2, …", "text"),
    "quantity": ("Quantity", "text"), "value": ("Value", "text"), "mean": ("Mean", 3), "std": ("Std.", 3), "n": ("n", "int"),
    "ACs_M": ("ACs (M)", 3), "MACs_M": ("MACs (M)", 3), "energy_uJ": ("Energy (µJ)", 3),
    "energy_vs_ANN": ("Energy / ANN", 3), "energy_vs_fixed_T1": ("Energy / fixed T = 1", 3),
    "energy_uJ_authors_counting": ("Energy, authors' counting (µJ)", 3),
    "metric": ("Figure", "text"), "paper": ("Paper", "text"), "this_run": ("This run", "text"),
    "this_minus_paper": ("This run − paper", "text"),
    "ms_per_sample": ("ms per sample", 3), "samples_per_s": ("Samples / s", 1), "batch": ("Batch", "int"),
    "samples": ("Samples", "int"), "speedup": ("Measured speedup (×)", 2), "ideal": ("Paper's ideal T / avg. t (×)", 2),
    "reachable": ("Reachable bound (×)", 2), "of_reachable": ("Of the bound", 2),
    "best_fixed_T": ("Best fixed T", "text"), "best_fixed_path": ("Best fixed-T path", "text"),
    "t1_ms": ("t(1) ms / sample", 4), "tT_ms": ("t(T) ms / sample", 4), "t1_over_ann": ("t(1) / ANN", 2),
    "engine_t1_over_ann": ("Engine t(1) / ANN", 2),
    "seenn1_alpha": ("SEENN-I α", 4), "seenn1_acc": ("SEENN-I acc. (%)", 2), "seenn1_t": ("SEENN-I avg. timesteps", 3),
    "seenn2_minus_seenn1": ("SEENN-II − best SEENN-I (pts)", 2), "energy": ("Energy (µJ)", 3),
    "teas_variant": ("TEAS variant", "text"), "ratio": ("Ratio ρ", "g"), "timestep_equivalents": ("Timestep-equiv.", 3),
    "avg_window": ("Avg. window", 2), "windows": ("Windows per layer", "text"), "layer": ("Layer", "text"),
    "act_raw": ("Spikes per step", 1), "act_per_neuron": ("Spikes per neuron per step", 4),
    "cost_per_step_ops": ("Operations per step", "int"), "acc_clean": ("Val. acc. (%)", 2),
    "acc_noisy": ("Val. acc. with noise (%)", 2), "seconds_per_sample": ("s per sample", 5),
    "cpu_seconds_per_sample": ("CPU s per sample", 5), "batch_size": ("Batch", "int"),
    "tied_share": ("Tied", 3), "path": ("Path", "text"), "vs_fixed_layer_major": ("× fixed T, layer-major", 2),
    "setting": ("Setting", "text"),
    "rule": ("Rule", "text"), "score": ("Score", "text"), "alpha": ("Threshold α", 4),
    "realised": ("Realised risk / coverage", 3), "promise": ("Promise", "text"), "broken_share": ("Broken", 2),
    "heldout_avg_timesteps": ("Held-out avg. timesteps", 3),
    "calibration": ("Threshold chosen by", "text"), "noise_std": ("Noise σ", "g"), "d_accuracy": ("Δ acc. (pts)", 2),
    "d_timesteps": ("Δ avg. timesteps", 3), "risk": ("Risk", 3), "coverage": ("Coverage", 3),
    "vs_full_t": ("vs full T (pts)", 2), "same_as": ("Also", "text"),
    "nb_accuracy": ("NB acc. (%)", 2), "nb_activation_sparsity": ("NB activation sparsity", 3),
    "nb_connection_sparsity": ("NB connection sparsity", 3), "nb_footprint_bytes": ("NB footprint (bytes)", "int"),
    "nb_effective_ACs": ("NB effective ACs", "int"), "nb_effective_MACs": ("NB effective MACs", "int"),
    "nb_dense": ("NB dense", "int"), "ACs": ("ACs here", "int"), "MACs": ("MACs here", "int"),
    "ACs_on_analog_input_layers": ("ACs here on pooled inputs", "int"),
}

# code values that appear in table cells -> what a reader sees
VALUES = {"pow2": "powers of two", "pow2_linear": "powers of two, linear reward", "paper": "paper's",
          "linear": "linear reward", "powers_of_two": "1, 2, 4, …, T", "all": "1, 2, …, T", "exponential": "2^−(u−1)",
          "expected": "expected reward", "reinforce": "REINFORCE", "val": "validation", "train": "training",
          "True": "yes", "False": "no", "configured": "configured", "table6": "Table 6",
          "test_accuracy": "test accuracy (%)", "avg_timesteps": "average timesteps",
          "one_minus_p": "1 − p", "neg_log_p": "−log p", "topk_gap": "top-K gap", "dynamic_confidence": "Dynamic Confidence"}  # quantities of seeds.csv

SNN_SHORT = {"direct": "direct", "finetuned": "fine-tuned", "converted": "converted"}


def header(column: str) -> str:
    """The header of a column: its human name and unit (an unknown column is refused, so no code
    name reaches the page)."""
    if column in COLUMNS:
        return COLUMNS[column][0]
    raise KeyError(f"no human name for table column {column!r} (add it to seenn.report.labels.COLUMNS)")


def cell(value, fmt) -> str:
    """One value as printed: numbers at the column's decimals, code values by their names, blanks for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if fmt == "text" or isinstance(value, str):
        text = str(value)
        return VALUES.get(text, text)
    if fmt == "int":
        return f"{int(round(value)):,d}"
    if fmt == "g":
        return f"{value:g}"
    return f"{value:,.{fmt}f}"


def column_format(column: str):
    return COLUMNS[column][1] if column in COLUMNS else "text"


CODE_NAME = re.compile(r"\b[A-Za-z]+_[A-Za-z0-9_]+\b|\b[a-z]+[A-Z][A-Za-z]*\b|[{}\[\]]")


def code_names(text: str) -> list[str]:
    """snake_case, camelCase or braces in a text: what must never reach a table (a test scans every cell)."""
    return CODE_NAME.findall(text)
