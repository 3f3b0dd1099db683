"""The report stages: the deterministic PDF report (report.sections) and the measurements report
(wall-clock figures get a PDF of their own, so the main report stays byte-identical on rerun)."""

from __future__ import annotations

from seenn.common.config_source import SOURCE_KEY
from seenn.common.io import atomic_path, read_json
from seenn.report.provenance import provenance_lines


def stage_report(ctx) -> None:
    """Stage report: the sections of SECTIONS whose inputs the stage declares, into reports/seenn_report.pdf."""
    from seenn.report.run import Run
    from seenn.report.sections import SECTIONS, write_document

    p, i = ctx.params, ctx.inputs
    device_of = i["metrics_direct"] if "metrics_direct" in i else i["metrics_converted"]  # teas.only: no direct SNN
    run = Run(dict(i), p, provenance_lines(p, read_json(i["manifest"]), read_json(device_of)))
    subtitle = ("Temporal early exit for spiking neural networks (SEENN): what this run found, and how."
                if "metrics_direct" in i else
                "Layer-wise time steps (TEAS) on a converted spiking neural network: what this run found, and how.")
    with atomic_path(ctx.outputs["pdf"]) as tmp:
        write_document(run, p["report"]["title"], subtitle, str(tmp), SECTIONS)


def stage_measurements_report(ctx) -> None:
    """Stage report_measurements: measured latency and speedups (beside the paper's ideal and the
    reachable bound) and the counted energy, in a PDF of their own."""
    from seenn.report import measurements

    with atomic_path(ctx.outputs["pdf"]) as tmp:
        measurements.write(ctx.inputs, ctx.params["report"]["title"] + " — measurements", str(tmp))


# the report prints the whole config, in this order, and the record of where params.yaml came from
# (SOURCE_KEY): only the report reads that record, so regenerating params.yaml from edited defaults or
# overlay comments reruns the report alone
ALL_KEYS = ("seed", "seeds", "device", "requires_gpu", "deterministic", "amp", "cpu_kernels", "data", "loader", "model", "neuron", "train", "evaluate", "seenn1", "conformal", "shift", "neurobench",
            "figures", "report", "engine", "conversion", "finetune", "seenn2", "teas", SOURCE_KEY)


def declare(tables, figures, energy, latency, conversion: bool = True, teas_latency: str | None = None) -> list:
    """The report (deterministic) and the measurements report (wall-clock figures get a PDF of their
    own, so the main report stays byte-identical on rerun). The report reads the conversion branch's
    files only when it is in the DAG, and the paper numbers when the tables compare with them."""
    from seenn.stages.declaration import Stage
    from seenn.stages.layout import PREPARED, branch_dir, conversion_inputs

    engine = {"energy_csv": energy.outputs["table_csv"], "energy": energy.outputs["energy"]}
    paper = {"paper_numbers": tables.inputs["paper_numbers"]} if "paper_numbers" in tables.inputs else {}
    table_files = {k: v for k, v in tables.outputs.items() if k not in tables.metrics}  # headline.csv holds the metrics
    return [
        Stage(name="report", run=stage_report, desc="the PDF report: findings, typeset tables, figures, provenance",
              params=ALL_KEYS,
              inputs={**table_files, **figures.outputs, "manifest": f"{PREPARED}/manifest.json",
                      "metrics_direct": f"{branch_dir('direct')}/metrics.json",
                      **(conversion_inputs() if conversion else {}), **engine,
                      "seenn2_result": f"{branch_dir('seenn2')}/seenn2.json", **paper},
              outputs={"pdf": "reports/seenn_report.pdf"}, report={"pdf": ("0 Report", "report_pdf.rst")}),
        Stage(name="report_measurements", run=stage_measurements_report,
              desc="the PDF of measured latency and throughput (not deterministic), beside the counted energy",
              params=("report.title",),
              inputs={**engine, "latency_csv": latency.outputs["table_csv"], "latency": latency.outputs["latency"],
                      **({"teas_latency_csv": teas_latency} if teas_latency else {})},
              outputs={"pdf": "reports/seenn_measurements.pdf"}, report={"pdf": ("5 Measurements", "measurements_pdf.rst")}),
    ]


def declare_teas_only(tables, figures):
    """The report of `teas.only`: data, conversion, TEAS, the paper row, notes, provenance and the
    config (its sections appear by the inputs declared); no measurements report (no engine stage)."""
    from seenn.stages.declaration import Stage
    from seenn.stages.layout import PREPARED, conversion_inputs

    conv = conversion_inputs()
    paper = {"paper_numbers": tables.inputs["paper_numbers"]} if "paper_numbers" in tables.inputs else {}
    return Stage(name="report", run=stage_report, desc="the PDF report of a TEAS-only run: conversion, TEAS, the paper row, "
                 "provenance", params=ALL_KEYS,
                 inputs={**tables.outputs, **figures.outputs, "manifest": f"{PREPARED}/manifest.json",
                         "metrics_converted": conv["metrics_converted"], "ann_metrics": conv["ann_metrics"], **paper},
                 outputs={"pdf": "reports/seenn_report.pdf"}, report={"pdf": ("0 Report", "report_pdf.rst")})
