"""Where a run's results come from, as the report prints it: the last commit of code or config,
the config's source record, data, seeds, device, CPU kernels and package versions; and the
method notes for the run's data protocol."""

from __future__ import annotations

import subprocess
from importlib import metadata

from seenn.common.config_source import SOURCE_KEY, config_digest, edited_by_hand
from seenn.common.runtime import cpu_kernels_description, cpu_model
from seenn.report.notes import AUTHORS_PROTOCOL_NOTES, METHOD_NOTES

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
        f"device: {metrics['device']}; seed {p['seed']}; deterministic algorithms: {p['deterministic']}; "
        f"training steps: mixed precision {p['amp']}, TF32 {p['train']['tf32']}, compiled {p['train']['compile']} "
        f"(every other stage: float32, TF32 off; the latency measurement in engine.precision "
        f"{p['engine']['precision']})",
        *([f"seeds: {', '.join(map(str, p['seeds']))} (each other than {p['seed']} a training run of its own on the "
           f"same data split; the across-seeds page)"] if p.get("seeds") else []),
        f"CPU (of the report stage): {cpu_model()}; CPU kernels: {cpu_kernels_description(p['cpu_kernels'])}",
        f"packages: {versions()}",
    ]
