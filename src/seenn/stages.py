"""The pipeline's stage table: the one source of truth for both front doors.

`workflow/rules/*.smk` turn each Stage into a Snakemake rule; `seenn dvc-yaml` writes dvc.yaml
from the same table (a test fails if the committed dvc.yaml drifts). Each stage declares the
config keys it reads (a stage sees only those), its input and output files, and the source
files its computation uses (so a code change reruns exactly the stages it touches)."""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass, replace
from pathlib import Path

from .config import PROJECT_ROOT, select_keys
from .io import write_text

PREPARED = "data/prepared"
RESULTS = "results"
PARAMS_DIR = "results/params"
MEASUREMENTS = "results/measurements"  # wall-clock measurements: not deterministic, not compared


@dataclass(frozen=True)
class Stage:
    name: str
    family: str  # the workflow/rules/<family>.smk that defines it
    func: str  # "module:function" run by `seenn run <name>`
    desc: str
    params: tuple[str, ...]  # dotted config keys the stage reads
    inputs: dict[str, str]
    outputs: dict[str, str]
    code: tuple[str, ...]  # source files / globs under src/seenn its computation uses
    metrics: tuple[str, ...] = ()  # output roles that DVC shows as metrics
    plots: tuple[str, ...] = ()  # output roles that DVC shows as plots
    checkpoints: bool = False  # keeps resumable checkpoints under results/checkpoints/<name>/
    options: tuple[tuple[str, object], ...] = ()  # fixed arguments of the stage function (ctx.extras)

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
        files: set[str] = set()
        for pattern in self.code:
            matches = sorted(glob.glob(str(PROJECT_ROOT / "src" / "seenn" / pattern)))
            if not matches:
                raise FileNotFoundError(f"stage {self.name}: code pattern '{pattern}' matches no file")
            files.update(str(Path(m).relative_to(PROJECT_ROOT)) for m in matches)
        return sorted(files)

    def deps(self) -> list[str]:
        return list(self.inputs.values()) + self.code_files()


def _splits() -> dict[str, str]:
    return {s: f"{PREPARED}/{s}.pt" for s in ("train", "val", "test")}


DATA_CODE = ("data/*.py", "artifacts.py", "io.py", "errors.py")
# the ResNet + neurons every SNN (direct, fine-tuned or converted) is built from; models/qcfs.py is
# listed only by the conversion stages and models/policy.py only by the policy stages, so neither
# reruns direct training
SNN_CODE = ("models/__init__.py", "models/resnet.py", "neurons.py", "data/__init__.py", "data/augment.py", "augment_modes.py", "artifacts.py", "inference.py", "io.py", "errors.py", "runtime.py")
RUNTIME_KEYS = ("seed", "device", "deterministic")
# `seenn run` applies cpu_kernels to every stage, and the kernels can change any float result, so every
# stage declares it (build_stages adds it): switching kernels reruns the whole DAG under both tools.
KERNEL_KEY = "cpu_kernels"
ALL_KEYS = ("seed", "device", "deterministic", KERNEL_KEY, "data", "model", "neuron", "train", "evaluate", "seenn1", "figures", "report",
            "engine", "conversion", "finetune", "seenn2")
CONVERTED = f"{RESULTS}/converted"
# conversion keys the QCFS ANN training reads: conversion.max_timesteps reruns conversion, not training
ANN_TRAIN_KEYS = tuple(f"conversion.{k}" for k in ("levels", "lambda_init", "epochs", "batch_size", "lr", "momentum",
                                                     "weight_decay", "augment"))


def branch_stages(branch: str, model_path: str, seenn1_overrides: tuple[str, ...] = (),
                  train_logits: bool = False) -> list[Stage]:
    """Per-timestep evaluation and SEENN-I calibration of one SNN (direct, fine-tuned or converted).

    `seenn1_overrides`: config keys `<section>.seenn1_<name>` that replace seenn1.<name> for this
    branch only (seenn1.seenn1_config), e.g. the converted SNN's softmax temperature.
    `train_logits` also saves the train split's logits (SEENN-II policy training)."""
    d = f"{RESULTS}/{branch}"
    s = _splits()
    extra_in = {"train": s["train"]} if train_logits else {}
    extra_out = {"logits_train": f"{d}/logits_train.pt"} if train_logits else {}
    return [
        Stage(f"evaluate_{branch}", "evaluate", "seenn.evaluate:stage_evaluate_snn",
              f"per-timestep logits of the {branch} SNN on {'train, ' if train_logits else ''}val and test",
              ("device", "deterministic", "evaluate"),
              {"model": model_path, **extra_in, "val": s["val"], "test": s["test"]},
              {**extra_out, "logits_val": f"{d}/logits_val.pt", "logits_test": f"{d}/logits_test.pt", "metrics": f"{d}/metrics.json"},
              SNN_CODE + ("evaluate.py", "metrics.py", "runtime.py"), metrics=("metrics",)),
        Stage(f"seenn1_{branch}", "exits", "seenn.seenn1:stage_seenn1",
              f"SEENN-I threshold sweep and calibration on the {branch} SNN",
              ("seenn1",) + seenn1_overrides,
              {"logits_val": f"{d}/logits_val.pt", "logits_test": f"{d}/logits_test.pt"},
              {"sweep": f"{d}/seenn1_sweep.csv", "result": f"{d}/seenn1.json"},
              ("seenn1.py", "exits.py", "metrics.py", "artifacts.py", "io.py", "errors.py"), metrics=("result",)),
    ]


def engine_stages(stages: list[Stage]) -> list[Stage]:
    """Energy (deterministic operation counts) and latency (a measurement) of one SNN: fixed T,
    SEENN-I and the ANN; with SEENN-II when the table has the stage seenn2_evaluate, whose output
    'policy' is the main-beta policy network (loaded by `seenn.engine.load_policy`). Then the SNN
    is the one that policy was trained for (the fine-tuned SNN), so all methods share one network."""
    pstage = next((st for st in stages if st.name == "seenn2_evaluate"), None)
    model = pstage.inputs["model"] if pstage else f"{RESULTS}/direct/snn.pt"
    d = str(Path(model).parent)
    inputs = {"model": model, "test": _splits()["test"], "seenn1": f"{d}/seenn1.json",
              **({"policy": pstage.outputs["policy"]} if pstage else {})}
    code = SNN_CODE + ("engine.py", "exits.py", "latency.py", "report/tables.py")
    code += ("policy_inference.py", "models/policy.py") if pstage else ()
    return [
        Stage("energy", "energy", "seenn.energy:stage_energy",
              "ACs and MACs per layer and timestep from real spikes, and energy: fixed T, SEENN-I/II, ANN",
              ("device", "deterministic", "engine.threads", "engine.energy_batch_size", "seenn1.temperature",
               "seenn1.accumulate", "seenn1.entropy_temperature"),
              {**inputs, "logits_test": f"{d}/logits_test.pt"},
              {"energy": f"{d}/energy.json", "layers": f"{d}/energy_layers.csv",
               "table_csv": f"{RESULTS}/tables/energy.csv", "table_md": f"{RESULTS}/tables/energy.md"},
              code + ("energy.py",)),
        Stage("latency", "latency", "seenn.latency:stage_latency",
              "measured wall-clock latency and throughput: fixed T, SEENN-I/II, ANN (a measurement)",
              ("device", "seenn1.temperature", "seenn1.accumulate", "seenn1.entropy_temperature") + tuple(
                  f"engine.{k}" for k in ("compile", "threads", "keep_freed_memory", "batch_sizes", "latency_samples", "warmup",
                                           "repetitions")),
              inputs,
              {"latency": f"{MEASUREMENTS}/latency.json", "table_csv": f"{MEASUREMENTS}/latency.csv",
               "table_md": f"{MEASUREMENTS}/latency.md"},
              code),
    ]


def engine_report_inputs(stages: list[Stage]) -> dict[str, str]:
    """What the measurements report reads from the engine stages."""
    by = {st.name: st for st in stages}
    return {"energy_csv": by["energy"].outputs["table_csv"], "energy": by["energy"].outputs["energy"],
            "latency_csv": by["latency"].outputs["table_csv"], "latency": by["latency"].outputs["latency"]}


# SEENN-II training rules of the converted SNN (T up to 64): the paper's, a powers-of-two action
# grid, a linear reward, both (seenn.policy.VARIANTS); conversion.seenn2_variant picks one
CONVERTED_VARIANTS = ("paper", "pow2", "linear", "pow2_linear")


def conversion_stages() -> list[Stage]:
    """The ANN-to-SNN branch: QCFS ANN training, conversion to IF neurons, then the same
    evaluation and SEENN-I stages as the direct branch (SEENN-II attaches the same way)."""
    s = _splits()
    d = CONVERTED
    return [
        Stage("train_ann", "convert", "seenn.train_ann:stage_train_ann",
              "QCFS ANN training (quantization-clip-floor-shift activations, trainable thresholds)",
              RUNTIME_KEYS + ("model",) + ANN_TRAIN_KEYS,
              {"train": s["train"], "val": s["val"]},
              {"model": f"{d}/ann.pt", "log": f"{d}/ann_train_log.csv"},
              SNN_CODE + ("models/qcfs.py", "training.py", "train_ann.py", "losses.py", "checkpoint.py"),
              plots=("log",), checkpoints=True),
        Stage("convert_snn", "convert", "seenn.convert:stage_convert_snn",
              "QCFS ANN -> IF SNN (threshold lambda, reset by subtraction, membrane from lambda/2); ANN accuracy",
              ("device", "deterministic", "conversion.max_timesteps", "evaluate"),
              {"ann": f"{d}/ann.pt", "val": s["val"], "test": s["test"]},
              {"model": f"{d}/snn.pt", "ann_metrics": f"{d}/ann_metrics.json"},
              SNN_CODE + ("models/qcfs.py", "convert.py"), metrics=("ann_metrics",)),
    ] + branch_stages("converted", f"{d}/snn.pt", seenn1_overrides=("conversion.seenn1_temperature",), train_logits=True) \
      + variant_stages("converted", S2C, "conversion", CONVERTED_VARIANTS)


def conversion_report_inputs() -> dict[str, str]:
    """Files of the conversion branch that tables, figures and report read."""
    return {"metrics_converted": f"{CONVERTED}/metrics.json", "seenn1_converted": f"{CONVERTED}/seenn1.json",
            "ann_metrics": f"{CONVERTED}/ann_metrics.json", "sweep_converted": f"{CONVERTED}/seenn1_sweep.csv",
            "seenn2_result_converted": f"{S2C}/seenn2.json", "seenn2_sweep_converted": f"{S2C}/sweep.csv",
            "seenn2_variants_converted": f"{S2C}/variants.csv"}


POLICY_CODE = ("policy.py", "policy_inference.py", "models/policy.py", "checkpoint.py", "data/__init__.py", "artifacts.py",
               "exits.py", "metrics.py", "io.py", "errors.py", "runtime.py")
# seenn2 keys the policy trainings read; `seenn2.beta` (the main operating point) and `seenn2.betas`
# (the sweep) are added per stage. Reruns of a policy stage resume every policy whose settings did not
# change from its last checkpoint, so adding a beta trains only that beta.
SEENN2_TRAIN_KEYS = tuple(f"seenn2.{k}" for k in ("train_split", "sample_weighting", "estimator", "reward_base", "epochs",
                                                  "batch_size", "lr", "momentum", "weight_decay", "policy_stem_channels",
                                                  "policy_widths", "policy_stem_stride"))
FT = f"{RESULTS}/finetuned"
S2 = f"{RESULTS}/seenn2"
S2C = f"{RESULTS}/converted/seenn2"


def policy_stages(branch: str, out: str, suffix: str = "", compare: bool = True, variant: str = "paper") -> list[Stage]:
    """SEENN-II on one SNN branch with one training rule (`policy.VARIANTS`): one policy per beta
    trained on the branch's saved per-timestep correctness, its test evaluation with operation
    counts and SEENN-I at the same validation cost (and the main-beta policy alone, role 'policy',
    for the engine), and optionally the estimator x training-split comparison."""
    s = _splits()
    d = f"{RESULTS}/{branch}"
    logits = {f"logits_{k}": f"{d}/logits_{k}.pt" for k in ("train", "val", "test")}
    opts = (("variant", variant),)
    stages = [
        Stage(f"seenn2_train{suffix}", "policy", "seenn.policy:stage_seenn2_train",
              f"SEENN-II: train one policy network per beta on the {branch} SNN's saved per-timestep correctness"
              f" ({variant} rule)",
              RUNTIME_KEYS + SEENN2_TRAIN_KEYS + ("seenn2.betas",),
              {"train": s["train"], "val": s["val"], "logits_train": logits["logits_train"], "logits_val": logits["logits_val"]},
              {"policies": f"{out}/policies.pt", "log": f"{out}/policy_log.csv"},
              POLICY_CODE, plots=("log",), checkpoints=True, options=opts),
        Stage(f"seenn2_evaluate{suffix}", "policy", "seenn.policy:stage_seenn2_evaluate",
              f"SEENN-II on the test split (u = argmax pi) for every beta on the {branch} SNN ({variant} rule), beside "
              "SEENN-I at the same validation cost; operations of policy and SNN",
              ("device", "deterministic", "seenn2.beta"),
              {"policies": f"{out}/policies.pt", "model": f"{d}/snn.pt", "val": s["val"], "test": s["test"],
               "logits_val": logits["logits_val"], "logits_test": logits["logits_test"], "seenn1": f"{d}/seenn1.json"},
              {"sweep": f"{out}/sweep.csv", "result": f"{out}/seenn2.json", "policy": f"{out}/policy.pt"},
              POLICY_CODE + ("ops.py", "seenn1.py") + SNN_CODE, metrics=("result",), options=opts),
    ]
    if compare:
        stages.append(
            Stage(f"seenn2_compare{suffix}", "policy", "seenn.policy:stage_seenn2_compare",
                  "SEENN-II at the main beta: expected-reward vs REINFORCE, held-out vs train split, weighting on/off, "
                  "and the paper's Table 6 policy",
                  RUNTIME_KEYS + SEENN2_TRAIN_KEYS + ("seenn2.beta",),
                  {**s, **logits, "policies": f"{out}/policies.pt", "policy_log": f"{out}/policy_log.csv"},
                  {"compare": f"{out}/compare.csv", "log": f"{out}/compare_log.csv"},
                  POLICY_CODE + ("ops.py",), plots=("log",), checkpoints=True))
    return stages


def variant_stages(branch: str, out: str, section: str, variants: tuple[str, ...]) -> list[Stage]:
    """SEENN-II on one branch with several training rules, each a stage pair writing to
    <out>/<variant>/, then `seenn2_select_<branch>`, which picks one on the validation split
    (`<section>.seenn2_variant`) and writes it as the branch's SEENN-II (<out>/seenn2.json)."""
    stages = [st for v in variants
              for st in policy_stages(branch, f"{out}/{v}", suffix=f"_{branch}_{v}", compare=False, variant=v)]
    results = {v: f"{out}/{v}/seenn2.json" for v in variants}
    stages.append(
        Stage(f"seenn2_select_{branch}", "policy", "seenn.policy:stage_seenn2_select",
              f"SEENN-II on the {branch} SNN: the training rule picked on the validation split among {', '.join(variants)}",
              (f"{section}.seenn2_variant", "seenn1.tolerance_points"),
              {**{f"result_{v}": p for v, p in results.items()}, **{f"sweep_{v}": f"{out}/{v}/sweep.csv" for v in variants},
               "seenn1": f"{RESULTS}/{branch}/seenn1.json"},
              {"result": f"{out}/seenn2.json", "sweep": f"{out}/sweep.csv", "variants": f"{out}/variants.csv"},
              POLICY_CODE, metrics=("result",)))
    return stages


def seenn2_stages() -> list[Stage]:
    """SEENN-II (issue #4): early-exit-aware fine-tuning of the direct SNN, its evaluation and
    SEENN-I calibration, then the policy stages on the fine-tuned SNN."""
    s = _splits()
    return [
        Stage("finetune_snn", "train", "seenn.finetune:stage_finetune_snn",
              "early-exit-aware fine-tuning of the direct SNN (loss averaged over every cumulative timestep output)",
              RUNTIME_KEYS + ("finetune",),
              {"model": f"{RESULTS}/direct/snn.pt", "train": s["train"], "val": s["val"]},
              {"model": f"{FT}/snn.pt", "log": f"{FT}/finetune_log.csv"},
              SNN_CODE + ("finetune.py", "training.py", "losses.py", "checkpoint.py"), plots=("log",), checkpoints=True),
        *branch_stages("finetuned", f"{FT}/snn.pt", train_logits=True),
        *policy_stages("finetuned", S2),
    ]


SEENN2_TABLES = ("seenn2_sweep", "seenn2_compare", "seenn2_ops", "seenn2_variants")
SEENN2_FIGURES = ("tradeoff_seenn2", "policy_training", "policy_compare", "training_finetune")


def seenn2_report_inputs() -> dict[str, str]:
    """Files of the SEENN-II stages that the tables and figures stages read."""
    return {"metrics_finetuned": f"{FT}/metrics.json", "seenn1_finetuned": f"{FT}/seenn1.json",
            "sweep_finetuned": f"{FT}/seenn1_sweep.csv", "finetune_log": f"{FT}/finetune_log.csv",
            "seenn2_result": f"{S2}/seenn2.json", "seenn2_sweep": f"{S2}/sweep.csv", "seenn2_compare": f"{S2}/compare.csv",
            "policy_log": f"{S2}/policy_log.csv", "compare_log": f"{S2}/compare_log.csv"}


def build_stages() -> list[Stage]:
    s = _splits()
    stages = [
        Stage("prepare_data", "data", "seenn.data.stage:stage_prepare_data",
              "load, shuffle and split the dataset; write checked split files and a manifest",
              ("seed", "data"), {}, {**s, "manifest": f"{PREPARED}/manifest.json"}, DATA_CODE),
        Stage("train_snn", "train", "seenn.train:stage_train_snn",
              "direct SNN training (surrogate gradients, per-timestep loss)",
              RUNTIME_KEYS + ("model", "neuron", "train"),
              {"train": s["train"], "val": s["val"]},
              {"model": f"{RESULTS}/direct/snn.pt", "log": f"{RESULTS}/direct/train_log.csv"},
              SNN_CODE + ("train.py", "training.py", "losses.py", "checkpoint.py"), plots=("log",), checkpoints=True),
    ]
    stages += branch_stages("direct", f"{RESULTS}/direct/snn.pt")
    stages += seenn2_stages()
    stages += conversion_stages()
    stages += engine_stages(stages)  # after every stage that may write a SEENN-II policy
    tables_in = {"metrics_direct": f"{RESULTS}/direct/metrics.json", "seenn1_direct": f"{RESULTS}/direct/seenn1.json",
                 **seenn2_report_inputs(), **conversion_report_inputs()}
    stages += [
        Stage("tables", "report", "seenn.report.tables:stage_tables",
              "CSV and Markdown tables: accuracy per T, AET vs empirical AET, fixed T vs SEENN-I/II vs oracle",
              (), tables_in,
              {f"{name}_{ext}": f"{RESULTS}/tables/{name}.{ext}"
               for name in ("accuracy_per_t", "aet", "methods", "conversion") + SEENN2_TABLES for ext in ("csv", "md")},
              ("report/tables.py", "io.py")),
        Stage("figures", "report", "seenn.report.figures:stage_figures",
              "figures: accuracy vs average timesteps, exit histogram, confidence per timestep",
              ("figures", "seenn1.temperature", "seenn1.accumulate"),
              {"logits_test": f"{RESULTS}/direct/logits_test.pt", "sweep_direct": f"{RESULTS}/direct/seenn1_sweep.csv",
               "train_log": f"{RESULTS}/direct/train_log.csv", **tables_in, "ann_train_log": f"{CONVERTED}/ann_train_log.csv"},
              {"tradeoff": f"{RESULTS}/figures/tradeoff.png", "exit_histogram": f"{RESULTS}/figures/exit_histogram.png",
               "confidence": f"{RESULTS}/figures/confidence.png", "training": f"{RESULTS}/figures/training.png",
               "conversion": f"{RESULTS}/figures/conversion.png",
               "tradeoff_converted": f"{RESULTS}/figures/tradeoff_converted.png",
               "training_ann": f"{RESULTS}/figures/training_ann.png",
               **{name: f"{RESULTS}/figures/{name}.png" for name in SEENN2_FIGURES}},
              ("report/figures.py", "exits.py", "metrics.py", "artifacts.py", "io.py", "errors.py")),
    ]
    stages.append(
        Stage("report", "report", "seenn.report.pdf:stage_report", "the PDF report with provenance, tables and figures",
              ALL_KEYS,
              {**{k: v for st in stages if st.name in ("tables", "figures") for k, v in st.outputs.items()},
               "manifest": f"{PREPARED}/manifest.json", "metrics_direct": f"{RESULTS}/direct/metrics.json",
               **conversion_report_inputs(),
               **{k: v for k, v in engine_report_inputs(stages).items() if k in ("energy_csv", "energy")},
               "seenn2_result": f"{S2}/seenn2.json"},
              {"pdf": "reports/seenn_report.pdf"},
              ("report/pdf.py", "io.py", "runtime.py")))
    # Wall-clock figures get a PDF of their own, so the main report stays byte-identical on rerun.
    stages.append(
        Stage("report_measurements", "report", "seenn.report.pdf:stage_measurements_report",
              "the PDF of measured latency and throughput (not deterministic), beside the counted energy",
              ("report.title",), engine_report_inputs(stages), {"pdf": "reports/seenn_measurements.pdf"},
              ("report/pdf.py", "io.py")))
    return [st if KERNEL_KEY in st.params else replace(st, params=(KERNEL_KEY,) + st.params) for st in stages]


STAGES: list[Stage] = build_stages()
BY_NAME = {st.name: st for st in STAGES}


def stages_in_family(family: str) -> list[Stage]:
    return [st for st in STAGES if st.family == family]


def final_outputs() -> list[str]:
    """What `rule all` asks for: every stage's outputs."""
    return [p for st in STAGES for p in st.outputs.values()]


def write_params_file(stage: Stage, config: dict) -> Path:
    """Write the stage's slice of the config to results/params/<stage>.json, only if it changed.

    Snakemake takes this file as an input, so a change to any key the stage reads reruns it
    (mtime), while an unchanged slice keeps its old mtime and reruns nothing."""
    path = Path(stage.params_file)
    text = json.dumps(select_keys(config, stage.params), indent=2, sort_keys=True) + "\n"
    if not path.exists() or path.read_text() != text:
        write_text(path, text)
    return path


def dvc_yaml() -> str:
    """dvc.yaml generated from the stage table (outputs uncached: see README, 'Two front doors')."""
    import yaml

    def out_entries(st: Stage, roles) -> list:
        return [{st.outputs[r]: {"cache": False}} for r in roles]

    stages = {}
    for st in STAGES:
        entry: dict = {"cmd": f"seenn run {st.name}", "desc": st.desc, "deps": st.deps()}
        if st.params:
            entry["params"] = list(st.params)
        plain = [r for r in st.outputs if r not in st.metrics and r not in st.plots]
        if plain:
            entry["outs"] = out_entries(st, plain)
        if st.metrics:
            entry["metrics"] = out_entries(st, st.metrics)
        if st.plots:
            entry["plots"] = out_entries(st, st.plots)
        stages[st.name] = entry
    header = "# GENERATED by `seenn dvc-yaml` from src/seenn/stages.py -- do not edit by hand.\n"
    return header + yaml.safe_dump({"stages": stages}, sort_keys=False, width=120)
