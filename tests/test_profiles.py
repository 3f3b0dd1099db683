"""Cluster and multi-GPU profiles: a SLURM dry run of a paper row gives every GPU stage its GPUs
and memory from workflow/profiles/slurm (and a training stage given 8 GPUs runs under torchrun);
Snakemake 9's local executor leaves the `gpu` resource unconstrained unless it is named, so the
default CPU run is unaffected."""

import re
import time
from pathlib import Path

import yaml
from conftest import PAPER_CONFIGS, ROOT, make_project, paper_config, sh

from seenn.pipeline.table import BY_NAME, GPU_RESOURCE

SLURM = ROOT / "workflow/profiles/slurm/config.yaml"
GPU_STAGES = sorted(n for n, st in BY_NAME.items() if GPU_RESOURCE in st.resources)
JOB = re.compile(r"^Job \d+: stage (\w+) \(log in \S+?(?:; gpu=(\d+), mem_mb=(\d+))?\)$", re.M)
SHELL = re.compile(r"^Shell command: (seenn run .*)$", re.M)


def test_gpu_stages_are_those_that_run_a_network():
    assert {"train_snn", "finetune_snn", "train_ann", "convert_snn", "evaluate_direct", "energy", "latency"} <= set(GPU_STAGES)
    assert not {"prepare_data", "seenn1_direct", "tables", "figures", "report", "report_measurements"} & set(GPU_STAGES)
    assert all(BY_NAME[n].resources[GPU_RESOURCE] == 1 for n in GPU_STAGES)


def test_slurm_profile_sizes_every_gpu_stage():
    prof = yaml.safe_load(SLURM.read_text())
    assert prof["executor"] == "slurm" and {"slurm_partition", "slurm_account", "mem_mb", "runtime"} <= set(prof["default-resources"])
    assert set(prof["set-resources"]) == set(GPU_STAGES)
    for name, res in prof["set-resources"].items():
        assert {"gpu", "cpus_per_gpu", "mem_mb", "runtime", "slurm_partition"} <= set(res), name


def test_slurm_dry_run_of_a_paper_row_shows_each_gpu_stage_its_resources(tmp_path):
    row = next(p for p in PAPER_CONFIGS if p.stem == "resnet19_cifar10")
    proj = make_project(tmp_path / "row", paper_config(row))
    # a copy of the profile giving direct training a whole node of 8 GPUs (a command-line
    # --set-resources for a rule would replace the profile's entry for it, memory included)
    prof = yaml.safe_load(SLURM.read_text())
    prof["set-resources"]["train_snn"]["gpu"] = 8
    (proj / "eight").mkdir()
    (proj / "eight/config.yaml").write_text(yaml.safe_dump(prof))
    r = sh(proj, "snakemake", "-n", "--executor", "slurm", "--profile", "eight")
    out = r.stdout + r.stderr
    jobs = {m[1]: (m[2], m[3]) for m in JOB.finditer(out)}
    from seenn.pipeline.table import stages_of

    row_stages = {st.name for st in stages_of(proj / "params.yaml")}  # TEAS's MNIST row runs on the digits only
    assert set(jobs) == row_stages, row_stages ^ set(jobs)
    prof = yaml.safe_load(SLURM.read_text())["set-resources"]
    for name, (gpu, mem) in jobs.items():
        if name in GPU_STAGES:
            assert int(gpu) == (8 if name == "train_snn" else prof[name]["gpu"]) and int(mem) == prof[name]["mem_mb"], name
        else:
            assert gpu is None, name
    shells = SHELL.findall(out)
    assert "seenn run train_snn --gpus 8" in shells and "seenn run evaluate_direct --gpus 1" in shells
    assert "seenn run tables" in shells
    print("\n".join(f"{n}: gpu={g} mem_mb={m}" for n, (g, m) in sorted(jobs.items()) if g))  # the figures, with -s


def test_local_executor_leaves_the_gpu_resource_unconstrained_unless_named(tmp_path):
    """Two jobs asking for gpu=1 run side by side under `--cores 2`, and one after the other with `--resources gpu=1`."""
    (tmp_path / "Snakefile").write_text(
        "rule all:\n    input: 'a', 'b'\n"
        "for n in ('a', 'b'):\n"
        "    rule:\n        name: f'job_{n}'\n        output: n\n        resources: gpu=1\n"
        "        shell: 'python -c \"import time; t = time.time(); time.sleep(1.5); open(\\'{output}\\', \\'w\\').write(f\\'{{t}} {{time.time()}}\\')\"'\n")

    def spans(*extra):
        for f in "ab":
            (tmp_path / f).unlink(missing_ok=True)
        sh(tmp_path, "snakemake", "--cores", "2", *extra)
        return [tuple(map(float, (tmp_path / f).read_text().split())) for f in "ab"]

    (a0, a1), (b0, b1) = spans()
    assert a0 < b1 and b0 < a1  # overlapped: unconstrained
    (a0, a1), (b0, b1) = spans("--resources", "gpu=1")
    assert a1 <= b0 or b1 <= a0  # one GPU: one at a time
