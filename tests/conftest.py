import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
# Two test workers (the README's `-n 2`) each run torch and tiny DAGs with two threads on two
# cores: threads that wait at an OpenMP barrier sleep instead of spinning, so the two share the
# cores instead of burning them (how long a thread waits changes no computed value).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module's tests (the big networks run tiny batches: more threads only
    contend here), the previous count restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def default_config() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


TINY_OVERRIDES = {
    "data": {"train_size": 1000, "val_size": 100, "test_size": 200},
    "model": {"stem_channels": 8, "widths": [8, 16], "blocks": [1, 1]},
    "train": {"timesteps": 3, "epochs": 4, "batch_size": 32},
    "evaluate": {"batch_size": 100},
    "seenn1": {"alpha_steps": 20, "redraws": 20, "scores": ["confidence", "entropy"]},  # the other published rules:
    # their unit tests and tests/test_rules_comparison.py (each score costs every tiny DAG calibration and engine runs)
    "figures": {"dpi": 50, "confidence_bins": 10},
    "neurobench": {"samples": 20},
    "engine": {"compile": False, "batch_sizes": [1, 64], "latency_samples": [4, 64], "warmup": 1, "repetitions": 1,
               "energy_batch_size": 100},
    "conversion": {"epochs": 3, "batch_size": 32, "max_timesteps": 8},
    "finetune": {"epochs": 1, "batch_size": 32},
    "seenn2": {"epochs": 1, "beta": 1.0, "betas": [1.0, 8.0], "batch_size": 32, "policy_stem_channels": 4,
               "policy_widths": [4, 8, 8]},
    "teas": {"profile_samples": 60, "noise_samples": 40, "retrain_samples": 100, "epochs": 1, "finetune_epochs": 1,
             "converted_samples": 40, "latency_samples": 20, "latency_repetitions": 1,
             "mnist": {"timesteps": 6, "hidden": 32, "epochs": 1, "lr": 0.001, "batch_size": 32, "temperature": 4.0, "ratio": 0.42,
                       "ratio_weights": "layers", "retrain_epochs": 1, "finetune_epochs": 1,
                       "lambda": 0.1, "log_every": 1}},
}


def paper_config(path) -> dict:
    """A paper overlay applied to config/defaults.yaml, as `seenn config use` writes it into params.yaml."""
    from seenn.pipeline.config import StrictLoader
    from seenn.pipeline.overlay import compose

    return yaml.load(compose(path, ROOT / "config" / "defaults.yaml", root=ROOT), Loader=StrictLoader)


PAPER_CONFIGS = sorted(p for p in (ROOT / "config" / "paper").glob("*.yaml") if p.name != "numbers.yaml")  # the overlays


def tiny_config() -> dict:
    """The default config shrunk so the whole DAG runs in about a minute."""
    cfg = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in TINY_OVERRIDES.items():
        cfg[section].update(copy.deepcopy(values))
    return cfg


BIN = str(Path(sys.executable).parent)
# The tools the tests start (`seenn run`, Snakemake's Snakefile) import the pipeline's modules from
# this checkout: they may cache their bytecode (src/**/__pycache__, ignored by git), which an
# environment with PYTHONDONTWRITEBYTECODE would have each of the hundreds of processes recompile.
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
       "PATH": BIN + os.pathsep + os.environ.get("PATH", ""), "DVC_NO_ANALYTICS": "1",
       "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
       # fixed dates: two tiny projects with the same files get the same commit, as two clones would
       "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
COPY = ["Snakefile", "dvc.yaml", "workflow", "src", ".dvc/config", ".dvcignore", "config/paper/numbers.yaml"]
# Outputs that are measurements or bookkeeping, not results: excluded from byte comparison.
NOT_DETERMINISTIC = ("logs/", "results/checkpoints/", "results/measurements/", "reports/seenn_measurements.pdf")


def sh(cwd, *args, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run(list(args), cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def make_project(dest: Path, config: dict, extra: tuple[str, ...] = ()) -> Path:
    """A git project holding the pipeline's code, `config` as params.yaml with the dvc.yaml of its
    stage table (and the `extra` files)."""
    dest.mkdir(parents=True)
    for item in COPY + list(extra):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            (dest / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / item)
    (dest / "params.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    from seenn.pipeline.table import build_stages, dvc_yaml

    (dest / "dvc.yaml").write_text(dvc_yaml(build_stages(config)))  # as `seenn config use` writes it beside params.yaml
    (dest / ".gitignore").write_text("/results/\n/data/\n/logs/\n/reports/*.pdf\n.snakemake/\n")
    sh(dest, "git", "init", "-q")
    sh(dest, "git", "add", "-A")
    sh(dest, "git", "commit", "-qm", "tiny project")
    return dest


def planned_jobs(cwd: Path) -> set[str]:
    """Rule names a Snakemake dry run would execute (empty when nothing to do)."""
    out = sh(cwd, "snakemake", "-n", "--cores", "2").stdout
    if "Nothing to be done" in out:
        return set()
    table = out.split("Job stats:")[1]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", table, re.M)} - {"all", "total", "job"}


def dvc_changed(cwd: Path) -> set[str]:
    """Stages `dvc status` names (empty when up to date)."""
    out = sh(cwd, "dvc", "status").stdout
    if "up to date" in out:
        return set()
    return {m.group(1) for m in re.finditer(r"^(\w+):\s*$", out, re.M)}


def scratch_copy(project: Path, dest: Path) -> Path:
    """A copy of a finished tiny project (modification times, Snakemake's metadata and DVC's
    cache and lock with it) for tests that run the tools in it: the original stays as it was."""
    shutil.copytree(project, dest, symlinks=True)
    return dest


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory) -> Path:
    """The whole DAG of the tiny config, run once per session by Snakemake and shared by the test
    workers: the first to ask builds it under a file lock, the others wait for it. No test runs a
    tool in it (each module gets a scratch copy: the `project` fixture); its Snakemake output,
    as a run without a terminal logs it, lies beside it in snakemake.out."""
    root = tmp_path_factory.getbasetemp()  # under pytest-xdist, one per worker in the session's directory
    base = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "tiny_dag"
    cwd, failed = base / "a", base / "failed.txt"
    with FileLock(str(base) + ".lock"):
        if failed.exists():
            raise AssertionError(f"the shared tiny DAG failed in another worker:\n{failed.read_text()}")
        if not (base / "snakemake.out").exists():
            shutil.rmtree(base, ignore_errors=True)
            make_project(cwd, tiny_config())
            try:
                r = sh(cwd, "snakemake", "--cores", "2")
            except AssertionError as exc:
                failed.write_text(str(exc))
                raise
            (base / "snakemake.out").write_text(r.stdout + r.stderr)
    return cwd


@pytest.fixture(scope="module")
def project(tiny_project, tmp_path_factory) -> Path:
    """This module's own copy of the finished tiny project: its tests may edit and restore it."""
    return scratch_copy(tiny_project, tmp_path_factory.mktemp("dag") / "p")


# The modules that run tiny DAGs, longest first: collected first, so that under `pytest -n 2
# --dist loadfile --no-loadscope-reorder` (the README's test line) each worker starts on one of
# them and the short modules fill the gaps, instead of the longest DAG starting last. The first
# two run side by side: one builds the shared tiny project, the other its clean twin.
LONG_FIRST = ("test_pipeline.py", "test_pipeline_determinism.py", "test_pipeline_dvs.py", "test_pipeline_reruns.py",
              "test_pipeline_code.py", "test_resume.py", "test_distributed.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FIRST)))  # stable: order within a module kept
