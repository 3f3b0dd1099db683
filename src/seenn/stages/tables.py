"""The tables stage: every table of the run as CSV and Markdown (report.tables builds them), the
headline metric files DVC shows, and with extra seeds or a paper row the across-seeds and paper
comparison tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from seenn.common.io import read_json, write_json, write_table, write_text
from seenn.report.curves import fixed_t_curve, seenn1_curve
from seenn.report.guarantee import guarantee_inputs
from seenn.report.headline import (
    SEENN2_ROLES,
    headline_path,
    headline_role,
    headline_rows,
    method_keys,
    metric_file,
)
from seenn.report.tables import (
    SEED_ROLES,
    build_tables,
    paper_comparison,
    paper_comparison_markdown,
    seed_role,
    seeds_table,
    split_runs,
)


def stage_tables(ctx) -> None:
    for name, df in build_tables(ctx.inputs).items():
        write_table(df, ctx.outputs[f"{name}_csv"], ctx.outputs[f"{name}_md"])
    for row in headline_rows(ctx.inputs):  # the files DVC shows as metrics
        write_json(ctx.outputs[headline_role(row["snn_key"], row["key"])], metric_file(row))
    p = ctx.params
    runs = split_runs(ctx.inputs, p["seed"], p["seeds"])
    if "seeds_csv" in ctx.outputs:
        write_table(seeds_table(runs), ctx.outputs["seeds_csv"], ctx.outputs["seeds_md"],
                    notes="Every seed trains on the data split of the main seed: only training randomness varies. "
                          "std: sample standard deviation (ddof 1) over the seeds' runs.")
    if "paper_numbers" in ctx.inputs:
        import yaml

        row_id = p["report"]["paper_row"]
        row = yaml.safe_load(Path(ctx.inputs["paper_numbers"]).read_text())[row_id]
        df = paper_comparison(row, runs)
        write_text(ctx.outputs["paper_comparison_csv"], df.to_csv(index=False, float_format="%.4f"))
        write_text(ctx.outputs["paper_comparison_md"], paper_comparison_markdown(df, row_id, row))
    write_curves(ctx.inputs, ctx.outputs)
    if "teas_csv" in ctx.outputs:  # teas.enabled
        from seenn.report import teas_pages

        teas_pages.write_tables(ctx.inputs, ctx.outputs)


TABLE_NAMES = ("headline", "accuracy_per_t", "aet", "methods", "conversion", "seenn2_sweep", "seenn2_compare", "seenn2_ops",
               "seenn2_variants", "guarantee", "rules", "rules_front")
CONVERSION_TABLES = ("conversion", "seenn2_variants")  # built only from the conversion branch
# tables Snakemake's HTML report shows (CSV as sortable tables): role -> (category, caption file in workflow/report/)
REPORT_TABLES = {"headline_csv": ("1 Summary", "headline.rst"), "methods_csv": ("2 SEENN-I", "methods.rst"),
                 "seenn2_sweep_csv": ("3 SEENN-II", "seenn2_sweep.rst"), "conversion_csv": ("4 Conversion", "conversion_table.rst"),
                 "teas_csv": ("5 TEAS", "teas_table.rst"), "guarantee_csv": ("2 SEENN-I", "guarantee_table.rst"),
                 "rules_csv": ("2 SEENN-I", "rules_table.rst")}


def declare(conversion: bool = True, seed_runs: dict[int, str] | None = None, paper_numbers: str | None = None,
            energy: str | None = None, scores: tuple[str, ...] = ("confidence", "entropy"),
            teas: dict[str, str] | None = None, shifted: str | None = None, neurobench: str | None = None):
    """The tables of the branches present; with extra seeds (`seed_runs`: seed -> its results
    directory) also seeds.{csv,md}; with a paper numbers file also paper_comparison.{csv,md}; with
    TEAS's result files (`teas`: role -> path) also teas*.{csv,md}. The headline numbers (one JSON
    per SNN and SEENN-I `scores` and the other methods, with the `energy` counted on the engine's
    SNN) are the stage's metrics."""
    from seenn.stages.declaration import Stage
    from seenn.stages.layout import TABLES, branch_dir, result_inputs

    names = [n for n in TABLE_NAMES if conversion or n not in CONVERSION_TABLES]
    inputs = result_inputs(conversion)
    if energy:
        inputs["energy"] = energy
    for s, base in (seed_runs or {}).items():
        inputs.update({seed_role(s, r): v for r, v in result_inputs(conversion, base).items() if r in SEED_ROLES})
    if seed_runs:
        names.append("seeds")
    if paper_numbers:
        inputs["paper_numbers"] = paper_numbers
        names.append("paper_comparison")
    if shifted:  # shift.enabled: every rule on noisy inputs (stage shifted_rules)
        inputs["rules_shifted"] = shifted
        names.append("rules_shifted")
    if neurobench:  # neurobench.enabled: NeuroBench's metrics beside the project's counts
        inputs["neurobench"] = neurobench
        names.append("neurobench")
    snns = [k.removeprefix("metrics_") for k in inputs if k.startswith("metrics_")]
    inputs.update(guarantee_inputs(inputs))
    headline = {headline_role(b, key): headline_path(b, key) for b in snns
                for key in method_keys(b, list(scores), SEENN2_ROLES.get(b) in inputs)}
    outputs = {**{f"{name}_{ext}": f"{TABLES}/{name}.{ext}" for name in names for ext in ("csv", "md")}, **headline}
    inputs["sweep_direct"] = f"{branch_dir('direct')}/seenn1_sweep.csv"
    curves = {f"{CURVE_PREFIX}{snn}_{series}": f"{TABLES}/curves/{snn}_{series}.csv"
              for snn in snns for series in ("fixed_t", *(f"seenn1_{score}" for score in scores))}
    outputs.update(curves)
    if teas:
        from seenn.report.teas_pages import declare_outputs
        from seenn.stages.layout import FIGURES

        inputs.update(teas)
        outputs.update(declare_outputs(TABLES, FIGURES, mnist=any(k.startswith("teas_evaluation_mnist") for k in teas))[0])
        names.append("teas")
    return Stage(name="tables", run=stage_tables,
                 desc="CSV and Markdown tables: accuracy per T, AET vs empirical AET, fixed T vs SEENN-I/II vs oracle; "
                      "the headline numbers per SNN and method (DVC metrics)",
                 params=("seed", "seeds", "report.paper_row"), inputs=inputs, outputs=outputs,
                 metrics=tuple(headline), dvc_plots=curve_plots(snns, inputs, outputs),
                 report={role: c for role, c in REPORT_TABLES.items() if role.removesuffix("_csv") in names})


def stage_teas_only_tables(ctx) -> None:
    """The tables stage of `teas.only`: the ANN beside its converted SNN, TEAS's tables, and with a
    paper row the TEAS paper's Table 2 row beside this run (teas_pages.table2_comparison)."""
    from seenn.report import teas_pages
    from seenn.report.tables import conversion_table

    i, o = ctx.inputs, ctx.outputs
    write_table(conversion_table(read_json(i["ann_metrics"]), read_json(i["metrics_converted"])), o["conversion_csv"],
                o["conversion_md"])
    teas_pages.write_tables(i, o)
    if "paper_numbers" in i:
        import yaml

        row_id = ctx.params["report"]["paper_row"]
        row = yaml.safe_load(Path(i["paper_numbers"]).read_text())[row_id]
        df = teas_pages.table2_comparison(row, read_json(i["ann_metrics"]), read_json(i["teas_evaluation_converted"]))
        write_text(o["paper_comparison_csv"], df.to_csv(index=False, float_format="%.4f"))
        write_text(o["paper_comparison_md"], paper_comparison_markdown(df, row_id, row))


def declare_teas_only(teas: dict[str, str], paper_numbers: str | None = None):
    """The tables of `teas.only`: conversion, TEAS's (no ablation: no direct SNN) and the paper row."""
    from seenn.report.teas_pages import declare_outputs
    from seenn.stages.declaration import Stage
    from seenn.stages.layout import FIGURES, TABLES, conversion_inputs

    conv = conversion_inputs()
    inputs = {"ann_metrics": conv["ann_metrics"], "metrics_converted": conv["metrics_converted"], **teas}
    names = ["conversion"]
    if paper_numbers:
        inputs["paper_numbers"] = paper_numbers
        names.append("paper_comparison")
    outputs = {f"{name}_{ext}": f"{TABLES}/{name}.{ext}" for name in names for ext in ("csv", "md")}
    outputs.update(declare_outputs(TABLES, FIGURES, mnist=any(k.startswith("teas_evaluation_mnist") for k in teas),
                                   direct=False)[0])
    return Stage(name="tables", run=stage_teas_only_tables,
                 desc="CSV and Markdown tables of a TEAS-only run: the ANN beside its converted SNN, TEAS per variant, "
                      "windows, activity, settings (and the paper's Table 2 row beside this run)",
                 params=("report.paper_row",), inputs=inputs, outputs=outputs,
                 report={role: c for role, c in REPORT_TABLES.items() if role in outputs})


CURVE_PREFIX = "curve_"  # output roles curve_<snn>_<series>: one point file per curve


def write_curves(inputs: dict, outputs: dict) -> None:
    """The point files `dvc plots show` draws, each SNN's metrics and SEENN-I sweep read once."""
    roles = [r for r in outputs if r.startswith(CURVE_PREFIX)]
    for snn in dict.fromkeys(r.removeprefix(CURVE_PREFIX).split("_", 1)[0] for r in roles):
        curves = {"fixed_t": fixed_t_curve(read_json(inputs[f"metrics_{snn}"]))}
        sweep = pd.read_csv(inputs[f"sweep_{snn}"])
        curves.update({f"seenn1_{score}": seenn1_curve(sweep, score) for score in sweep["score"].unique()})
        for series, curve in curves.items():
            role = f"{CURVE_PREFIX}{snn}_{series}"
            if role in outputs:
                write_text(outputs[role], curve.to_csv(index=False, float_format="%.6f"))
SNN_TITLES = {"direct": "direct-trained SNN", "finetuned": "fine-tuned SNN", "converted": "QCFS-converted SNN"}
SEENN2_SWEEPS = {"finetuned": "seenn2_sweep", "converted": "seenn2_sweep_converted"}  # input roles


def curve_plots(snns: list[str], inputs: dict, outputs: dict) -> dict:
    """dvc.yaml's top-level plots: per SNN, test accuracy against average timesteps for fixed T,
    SEENN-I over alpha (each score) and, where the SNN has one, SEENN-II over beta (its sweep.csv)."""
    plots = {}
    for snn in snns:
        files = [path for role, path in outputs.items() if role.startswith(f"{CURVE_PREFIX}{snn}_")]
        x = {path: "avg_timesteps" for path in files}
        y = {path: "accuracy" for path in files}
        if SEENN2_SWEEPS.get(snn) in inputs:
            x[inputs[SEENN2_SWEEPS[snn]]] = "test_avg_timesteps"
            y[inputs[SEENN2_SWEEPS[snn]]] = "test_accuracy"
        methods = "fixed T, SEENN-I over alpha" + (", SEENN-II over beta" if len(x) > len(files) else "")
        plots[f"tradeoff_{snn}"] = {"title": f"{SNN_TITLES[snn]}: {methods} (test)", "template": "linear",
                                    "x": x, "y": y, "x_label": "average timesteps", "y_label": "test accuracy (%)"}
    return plots
