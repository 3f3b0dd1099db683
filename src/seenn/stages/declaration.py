"""What a pipeline stage is: its declaration (`Stage`), what it gets when it runs (`StageContext`),
the SNN branches (`Branch`), and its code inputs, computed as the import closure of its module.

Each stage is declared beside the function that runs it (a module of `seenn.stages`);
`seenn.pipeline.table` assembles the table that both front doors (Snakemake, DVC) read."""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import torch

from seenn.stages.layout import PARAMS_DIR, RESULTS, branch_dir

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/seenn
PROJECT_ROOT = PACKAGE_DIR.parents[1]
# `seenn run` sets seeds, determinism and CPU kernels (seenn.common.runtime) before any stage function:
# that module's closure is code of every stage
RUNNER_MODULE = "seenn.common.runtime"
RUNTIME_KEYS = ("seed", "device", "deterministic")  # what a training stage reads besides its own section
TRAINING_KEYS = RUNTIME_KEYS + ("amp",)  # ... and a stage that trains through loops.fit (mixed precision)
TF32_KEY = "train.tf32"  # a training loop's steps run with TF32 as set here; `seenn run` starts every stage with it off
# loops.fit's reads, for stages without `train`: the log and non-finite check, the compiled step, TF32
FIT_LOG_KEYS = ("train.log_every", "train.max_skipped_steps", "train.compile", TF32_KEY)
# what `seenn run` applies to every stage that declares `device` (seenn.pipeline.table adds them)
DEVICE_KEYS = ("device",)


@dataclass(frozen=True)
class Branch:
    """One SNN the exit methods run on: its evaluation, SEENN-I and SEENN-II stages come from one
    loop over the branches (`seenn.pipeline.table`)."""

    name: str  # direct | finetuned | converted: results/<name>/
    model: str  # the SNN file the branch evaluates
    train_logits: bool = False  # also save the train split's logits (SEENN-II trains a policy on them)
    seenn1_overrides: tuple[str, ...] = ()  # config keys `<section>.seenn1_<name>` replacing seenn1.<name>
    conformal_overrides: tuple[str, ...] = ()  # config keys `<section>.conformal_<name>` replacing conformal.<name>
    seenn2_out: str | None = None  # where its SEENN-II stages write (None: no SEENN-II)
    seenn2_variants: tuple[str, ...] = ("paper",)  # SEENN-II training rules (seenn.methods.policy.estimators.VARIANTS)
    seenn2_section: str | None = None  # with several rules: `<section>.seenn2_variant` picks one on val
    seenn2_compare: bool = False  # also the estimator x split comparison and Table 6 policy
    keep_key: str | None = None  # config key of the timesteps whose logits its evaluation keeps (None: every one)

    @property
    def dir(self) -> str:
        return branch_dir(self.name)


@dataclass
class StageContext:
    """What a stage function gets: its own config slice, its files, the device."""

    name: str
    params: dict
    inputs: dict
    outputs: dict
    device: torch.device
    checkpoint_dir: Path
    extras: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One stage of the DAG, declared beside `run`, the function `seenn run <name>` calls."""

    name: str
    run: Callable[[StageContext], None]
    desc: str
    params: tuple[str, ...]  # dotted config keys the stage reads (it sees only those)
    inputs: Mapping[str, str]
    outputs: Mapping[str, str]
    metrics: tuple[str, ...] = ()  # output roles that DVC shows as metrics
    plots: tuple[str, ...] = ()  # output roles that DVC shows as plots
    # dvc.yaml's top-level plots this stage's files feed: plot id -> {x, y (file -> column), title, ...}
    dvc_plots: Mapping[str, Mapping] = field(default_factory=dict)
    # output role -> (category, caption file in workflow/report/): Snakemake's HTML report (`snakemake --report`)
    report: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    checkpoints: bool = False  # keeps resumable checkpoints under results/checkpoints/<name>/
    options: Mapping[str, object] = field(default_factory=dict)  # fixed arguments of `run` (ctx.extras)
    threads: int | str = 1  # "all": every core Snakemake was given (training, evaluation, latency)
    resources: Mapping[str, int | str] = field(default_factory=dict)  # Snakemake resources (gpu, mem_mb, runtime)
    data_parallel: bool = False  # trains through loops.fit.fit: given several GPUs, runs under torchrun (DDP)
    # config values this stage sees in place of the params file's (dotted key -> value): a seed's own
    # training run sees `seed` = s; its config slice (results/params/<name>.json) holds them too
    overrides: Mapping[str, object] = field(default_factory=dict)

    @property
    def module(self) -> str:
        return self.run.__module__

    @property
    def func(self) -> str:
        return f"{self.module}:{self.run.__name__}"

    @property
    def params_file(self) -> str:
        return f"{PARAMS_DIR}/{self.name}.json"

    @property
    def log_file(self) -> str:
        return f"logs/{self.name}.log"

    @property
    def checkpoint_dir(self) -> str:
        return f"{RESULTS}/checkpoints/{self.name}"

    def code_files(self) -> list[str]:
        """Source files whose change reruns the stage: what its module and the runner import."""
        return sorted(module_file(m) for m in import_closure(self.module) | import_closure(RUNNER_MODULE))

    def deps(self) -> list[str]:
        return list(self.inputs.values()) + self.code_files()


def module_file(module: str) -> str:
    """Project-relative source file of a `seenn` module."""
    return str(_source(module).relative_to(PROJECT_ROOT))


def _source(module: str) -> Path:
    base = PACKAGE_DIR.parent.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _is_module(module: str) -> bool:
    return _source(module).is_file()


@functools.cache
def _imports(module: str) -> frozenset[str]:
    """`seenn` modules one module imports, anywhere in its source (function bodies included),
    with the packages whose `__init__` the import runs. Parsed once per process: the closures of
    all stages share most modules."""
    path = _source(module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names = [base] + [f"{base}.{a.name}" for a in node.names]  # `from pkg import submodule`
        else:
            continue
        for name in names:
            if name.split(".")[0] == "seenn" and _is_module(name):
                parts = name.split(".")
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(found)


@functools.cache
def import_closure(module: str) -> frozenset[str]:
    """Every `seenn` module that importing `module` (and running its functions) can load."""
    parts = module.split(".")
    todo = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    seen: set[str] = set()
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo |= _imports(m) - seen
    return frozenset(seen)
