"""The PDF report (reportlab platypus, seenn.report.sections): findings first, typeset tables,
numbered figures, provenance; one deterministic file. The measured latency gets a PDF of its own
(stage report_measurements), so this one stays byte-identical on rerun."""

from __future__ import annotations

import subprocess
from importlib import metadata

from ..config import SOURCE_KEY, config_digest, edited_by_hand
from ..io import atomic_path, read_json
from ..runtime import cpu_kernels_description, cpu_model
from .notes import AUTHORS_PROTOCOL_NOTES, METHOD_NOTES

# The typesetting modules (reportlab, 0.4 s to import) load in the two stage functions, not here:
# every stage and every Snakemake or DVC start imports this module through the stage table.

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "matplotlib", "seaborn", "reportlab", "snakemake", "dvc",
            "seenn-bench")


def method_notes(p: dict) -> str:
    """The method notes; the protocol's differences are added only when it is not the default."""
    if p.get("data", {}).get("protocol", "project") == "authors":
        return METHOD_NOTES + "\n\n" + AUTHORS_PROTOCOL_NOTES
    return METHOD_NOTES


CODE_PATHS = ["src", "workflow", "config", "params.yaml", "Snakefile", "pyproject.toml"]


def git_commit() -> str:
    """The last commit that changed the code or the config (not HEAD: a later commit of dvc.lock
    or the README must not change the report's bytes), flagged when those files are modified."""
    try:
        commit = subprocess.run(["git", "log", "-1", "--format=%H", "--", *CODE_PATHS], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *CODE_PATHS],
                               capture_output=True, text=True, check=True).stdout.strip()
        return (commit or "none") + (" (with uncommitted changes to code or config)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def versions() -> str:
    out = []
    for pkg in PACKAGES:
        try:
            out.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            out.append(f"{pkg} (not installed)")
    return ", ".join(out)


def config_source_lines(p: dict) -> list[str]:
    """Which defaults and overlay `seenn config use` wrote params.yaml from (recorded in it), and
    whether its values were edited by hand since: their digest against the one it recorded."""
    src = p[SOURCE_KEY]
    overlay = f"overlay {src['overlay']} (sha256 {src['overlay_sha256'][:16]})" if src["overlay"] else "no overlay"
    lines = [f"config: `seenn config use` from {src['defaults']} (sha256 {src['defaults_sha256'][:16]}), {overlay}"]
    if edited_by_hand(p):
        lines.append(f"params.yaml EDITED BY HAND since: its values hash to {config_digest(p)[:16]}, "
                     f"not the recorded {src['params_sha256'][:16]}")
    else:
        lines.append(f"params.yaml not edited since (values sha256 {src['params_sha256'][:16]}, as recorded)")
    return lines


def provenance(p: dict, manifest: dict, metrics: dict) -> str:
    """Where the results come from: code, config, data, seeds, device, the CPU and its kernels, packages."""
    splits = ", ".join(f"{s} {v['n']}" for s, v in manifest["splits"].items())
    return "\n".join(provenance_lines(p, manifest, metrics))


def provenance_lines(p: dict, manifest: dict, metrics: dict) -> list[str]:
    splits = ", ".join(f"{s} {v['n']}" for s, v in manifest["splits"].items())
    return [
        f"last commit of code or config: {git_commit()}",
        *config_source_lines(p),
        f"dataset: {manifest['dataset']} ({splits}); split seed {manifest['seed']}; source: {manifest['source']}",
        f"split sha256: " + ", ".join(f"{s} {v['sha256'][:16]}" for s, v in manifest["splits"].items()),
        f"device: {metrics['device']}; seed {p['seed']}; deterministic algorithms: {p['deterministic']}; TF32: {p['tf32']}; "
        f"mixed precision (training): {p['amp']}",
        *([f"seeds: {', '.join(map(str, p['seeds']))} (each other than {p['seed']} a training run of its own on the "
           f"same data split; the across-seeds page)"] if p.get("seeds") else []),
        f"CPU (of the report stage): {cpu_model()}; CPU kernels: {cpu_kernels_description(p['cpu_kernels'])}",
        f"packages: {versions()}",
    ]


def stage_report(ctx) -> None:
    """Stage report: the sections of SECTIONS whose inputs the stage declares, into reports/seenn_report.pdf."""
    from .sections import SECTIONS, Run, write_document

    p, i = ctx.params, ctx.inputs
    run = Run(dict(i), p, provenance_lines(p, read_json(i["manifest"]), read_json(i["metrics_direct"])))
    with atomic_path(ctx.outputs["pdf"]) as tmp:
        write_document(run, p["report"]["title"], "Temporal early exit for spiking neural networks (SEENN): "
                       "what this run found, and how.", str(tmp), SECTIONS)


def stage_measurements_report(ctx) -> None:
    """Stage report_measurements: measured latency and speedups (beside the paper's ideal and the
    reachable bound) and the counted energy, in a PDF of their own."""
    from . import measurements

    with atomic_path(ctx.outputs["pdf"]) as tmp:
        measurements.write(ctx.inputs, ctx.params["report"]["title"] + " — measurements", str(tmp))


# the report prints the whole config, in this order, and the record of where params.yaml came from
# (SOURCE_KEY): only the report reads that record, so regenerating params.yaml from edited defaults or
# overlay comments reruns the report alone
ALL_KEYS = ("seed", "seeds", "device", "deterministic", "tf32", "amp", "cpu_kernels", "data", "loader", "model", "neuron", "train", "evaluate", "seenn1",
            "figures", "report", "engine", "conversion", "finetune", "seenn2", "teas", SOURCE_KEY)


def declare(tables, figures, energy, latency, conversion: bool = True, teas_latency: str | None = None) -> list:
    """The report (deterministic) and the measurements report (wall-clock figures get a PDF of their
    own, so the main report stays byte-identical on rerun). The report reads the conversion branch's
    files only when it is in the DAG, and the paper numbers when the tables compare with them."""
    from ..dag import PREPARED, Stage, branch_dir, conversion_inputs

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
