"""The pipeline's stage table, assembled from the declarations beside each stage's code and shaped
by the config (`build_stages(config)`): the one source of truth for both front doors.

`workflow/rules/stages.smk` turns each Stage of the loaded config's table into a Snakemake rule;
`seenn dvc-yaml` and `seenn config use` write dvc.yaml from the table of params.yaml (a test fails
if the committed dvc.yaml drifts from the committed params.yaml's). A stage declares the config
keys it reads (it sees only those) and its files; its code inputs are computed (`Stage.code_files`):
the import closure of its module, so a code change reruns exactly the stages that can load it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from seenn.common.config_source import SOURCE_KEY
from seenn.common.io import write_text
from seenn.data import split_list
from seenn.pipeline.config import DEFAULT_CONFIG, PAPER_NUMBERS, apply_overrides, load_config, select_keys
from seenn.stages import (
    convert,
    energy,
    evaluate,
    figures,
    finetune,
    guarantee,
    latency,
    neurobench,
    prepare_data,
    report,
    seenn1,
    seenn2,
    shifted,
    tables,
    teas,
    teas_latency,
    teas_paths,
    train_ann,
    train_snn,
)
from seenn.stages.declaration import DEVICE_KEYS, Branch, Stage
from seenn.stages.layout import RESULTS, branch_dir

# `seenn run` applies cpu_kernels to every stage, and the kernels can change any float result, so every
# stage declares it: switching kernels reruns the whole DAG under both tools.
KERNEL_KEY = "cpu_kernels"
DEVICE_MEM_MB = 4000  # memory a stage that runs a network asks for, unless a profile says otherwise
GPU_RESOURCE = "gpu"  # the Snakemake resource the SLURM executor plugin reads (and `seenn run --gpus` receives)
# SEENN-II training rules of the converted SNN (T up to 64): the paper's, a powers-of-two action
# grid, a linear reward, both (seenn.methods.policy.estimators.VARIANTS); conversion.seenn2_variant picks one
CONVERTED_VARIANTS = ("paper", "pow2", "linear", "pow2_linear")

# Each SNN the exit methods run on, with the stages that make it. The fine-tuned SNN carries the
# main SEENN-II (and the engine stages run it: all methods then share one network).
BRANCHES = (
    (Branch("direct", model=f"{branch_dir('direct')}/snn.pt"), (train_snn.declare(),)),
    (Branch("finetuned", model=f"{branch_dir('finetuned')}/snn.pt", train_logits=True,
            seenn2_out=f"{RESULTS}/seenn2", seenn2_compare=True), (finetune.declare(),)),
    (Branch("converted", model=f"{branch_dir('converted')}/snn.pt", train_logits=True,
            seenn1_overrides=("conversion.seenn1_temperature",),
            conformal_overrides=("conversion.conformal_checkpoints", "conversion.conformal_score"),
            seenn2_out=f"{branch_dir('converted')}/seenn2", keep_key="conversion.keep_timesteps",
            seenn2_variants=CONVERTED_VARIANTS, seenn2_section="conversion"), (train_ann.declare(), convert.declare())),
)
ENGINE_BRANCH = "finetuned"
CONVERSION_BRANCH = "converted"  # omitted from the DAG by `conversion.enabled: false`
SEEDS_DIR = f"{RESULTS}/seeds"  # results/seeds/<s>/<branch>/...: the runs of the extra seeds
SEED_KEYS = ("seed", "seeds")  # what a seed's own stage declares besides its stage's keys
NOT_PER_SEED = ("seenn2_compare",)  # the estimator comparison stays on the main run, as energy and latency


def _default_switches() -> dict:
    """What `build_stages` reads of the config, at the defaults' values (config/defaults.yaml)."""
    return {"seed": None, "seeds": [], "conversion": {"enabled": True}, "report": {"paper_row": None},
            "data": {"name": "digits", "split_list": None},
            "teas": {"enabled": True, "only": False, "retrain_converted": False},
            "seenn1": {"scores": ["confidence", "entropy", "topk_gap", "dynamic_confidence"]},
            "shift": {"enabled": True, "noise_std": [0.08, 0.26]}, "neurobench": {"enabled": True}}


def build_stages(config: dict | None = None) -> list[Stage]:
    """The stage table of a validated config (None: of the default config). Only these settings
    shape it: `conversion.enabled` (the conversion branch or not), `seeds` (one copy of the
    training-to-evaluation stages per extra seed), `report.paper_row` (the paper comparison),
    `seenn1.scores` (one headline metric file per score), `shift.enabled` and the number of
    `shift.noise_std` severities (the shifted-input stages), `neurobench.enabled` (NeuroBench's
    stage), `teas.enabled` (TEAS's stages), `teas.retrain_converted` (the converted SNN retrained),
    `teas.only` (TEAS on the converted SNN alone: `teas_only_stages`) and
    `data.name` (TEAS's MNIST row only on the digits); `data.split_list`, when set, is one more
    input of the data stage."""
    cfg = config if config is not None else _default_switches()
    if cfg["teas"]["enabled"] and cfg["teas"]["only"]:
        return [_on_device(_with_kernels(st)) for st in teas_only_stages(cfg)]
    conversion = cfg["conversion"]["enabled"]
    extra_seeds = [s for s in cfg["seeds"] if s != cfg["seed"]]
    branches = [(b, makers) for b, makers in BRANCHES if conversion or b.name != CONVERSION_BRANCH]
    runs = []
    for branch, makers in branches:
        runs += [*makers, evaluate.declare(branch), seenn1.declare(branch), *seenn2.declare(branch)]
    runs = [_with_kernels(st) for st in runs]
    per_seed = [seed_stage(st, s) for s in extra_seeds for st in runs if st.name not in NOT_PER_SEED]
    engine_branch = next(b for b, _ in branches if b.name == ENGINE_BRANCH)
    energy_st, latency_st = energy.declare(engine_branch), latency.declare(engine_branch)
    neurobench_sts = [neurobench.declare(engine_branch)] if cfg["neurobench"]["enabled"] else []
    seed_runs = {s: f"{SEEDS_DIR}/{s}" for s in extra_seeds}
    teas_on = cfg["teas"]["enabled"]
    mnist = teas_on and cfg["data"]["name"] == "digits"
    teas_sts = [_with_kernels(st) for st in (*teas.declare(conversion=conversion, mnist=mnist,
                                                           retrain_converted=cfg["teas"]["retrain_converted"]),
                                             teas_latency.declare())] if teas_on else []
    teas_files = teas_paths.evaluations(conversion, mnist) if teas_on else None
    severities = len(cfg["shift"]["noise_std"]) if cfg["shift"]["enabled"] else 0
    shift_sts = ([_with_kernels(shifted.declare_evaluate(b, severities)) for b, _ in branches]
                 + [shifted.declare_rules([b for b, _ in branches], severities)]) if severities else []
    shift_rules = shift_sts[-1].outputs["rules"] if shift_sts else None
    tables_st = tables.declare(conversion=conversion, seed_runs=seed_runs,
                               paper_numbers=PAPER_NUMBERS if cfg["report"]["paper_row"] is not None else None,
                               energy=energy_st.outputs["energy"], scores=tuple(cfg["seenn1"]["scores"]),
                               teas=teas_files, shifted=shift_rules,
                               neurobench=neurobench_sts[0].outputs["result"] if neurobench_sts else None)
    figures_st = figures.declare(conversion=conversion, teas=teas_files, shifted=shift_rules)
    report_sts = report.declare(tables_st, figures_st, energy_st, latency_st, conversion=conversion,
                                teas_latency=teas_paths.LATENCY_CSV if teas_on else None)
    guarantees = [guarantee.declare(b) for b, _ in branches]  # the main seed's SNNs only
    stages = [prepare_data.declare(split_list.configured(cfg["data"])), *runs, *guarantees, *shift_sts, *per_seed, energy_st,
              latency_st, *neurobench_sts, *teas_sts,
              tables_st, figures_st, *report_sts]
    return [_on_device(_with_kernels(st)) for st in stages]


def teas_only_stages(cfg: dict) -> list[Stage]:
    """The stage table of `teas.only` (a TEAS paper row of converted SNNs, Table 2): the data, the ANN
    and its conversion, the converted SNN's evaluation (its logits at conversion.keep_timesteps, no
    train split: nothing trains on them), TEAS on it (and the MNIST row on the digits), the tables,
    figures and report of what ran. No direct-trained or fine-tuned SNN, exit rule or engine stage."""
    conv_branch, makers = next((b, m) for b, m in BRANCHES if b.name == CONVERSION_BRANCH)
    conv_branch = replace(conv_branch, train_logits=False, seenn2_out=None)
    mnist = cfg["data"]["name"] == "digits"
    runs = [_with_kernels(st) for st in (*makers, evaluate.declare(conv_branch))]
    teas_sts = [_with_kernels(st) for st in teas.declare(conversion=True, mnist=mnist, direct=False,
                                                         retrain_converted=cfg["teas"]["retrain_converted"])]
    teas_files = teas_paths.evaluations(True, mnist, direct=False)
    paper = PAPER_NUMBERS if cfg["report"]["paper_row"] is not None else None
    tables_st = tables.declare_teas_only(teas_files, paper_numbers=paper)
    figures_st = figures.declare_teas_only(teas_files)
    report_st = report.declare_teas_only(tables_st, figures_st)
    return [prepare_data.declare(split_list.configured(cfg["data"])), *runs, *teas_sts, tables_st, figures_st, report_st]


def _on_device(st: Stage) -> Stage:
    """A stage that runs a network on the configured device (it declares `device`) also declares
    the other keys `seenn run` applies to it (DEVICE_KEYS; not TF32: the training stages alone read
    `train.tf32`, for their steps) and asks for one GPU (Snakemake resource `gpu`, unconstrained unless `--resources`
    or a profile names it; a profile's `set-resources` can give a training stage more) and
    DEVICE_MEM_MB of memory (what the default config needs; the profiles size the paper rows).
    Every rule then has both resources its message prints. The report reads the whole config (it
    declares `config_source`) only to print it: no GPU."""
    if "device" not in st.params or SOURCE_KEY in st.params:
        return st
    params = st.params + tuple(k for k in DEVICE_KEYS if k not in st.params)
    return replace(st, params=params, resources={GPU_RESOURCE: 1, "mem_mb": DEVICE_MEM_MB, **st.resources})


def _with_kernels(st: Stage) -> Stage:
    return st if KERNEL_KEY in st.params else replace(st, params=(KERNEL_KEY,) + st.params)


def seed_path(path: str, seed: int) -> str:
    """Where a seed's own run keeps a result file: results/<x> -> results/seeds/<s>/<x>; the
    prepared data (the split of `seed`, shared by every seed) stays where it is."""
    return f"{SEEDS_DIR}/{seed}/{path.removeprefix(RESULTS + '/')}" if path.startswith(RESULTS + "/") else path


def seed_stage(st: Stage, seed: int) -> Stage:
    """A stage of the main run, repeated for one extra seed: its own name, files under
    results/seeds/<s>/, and `seed` = s in its config (declaring `seed` and `seeds`)."""
    return replace(st, name=f"{st.name}_seed{seed}", desc=f"{st.desc} (seed {seed})",
                   params=tuple(dict.fromkeys(st.params + SEED_KEYS)),
                   inputs={k: seed_path(v, seed) for k, v in st.inputs.items()},
                   outputs={k: seed_path(v, seed) for k, v in st.outputs.items()},
                   overrides={**st.overrides, "seed": seed})


# The table of the default config (config/defaults.yaml, the committed params.yaml): for tests and
# listings. The front doors build theirs from the config they run (`build_stages(config)`).
STAGES: list[Stage] = build_stages()
BY_NAME = {st.name: st for st in STAGES}


def stages_of(config_path: str | Path = DEFAULT_CONFIG) -> list[Stage]:
    """The stage table of a config file (validated): what `seenn run`, `seenn dvc-yaml` and
    `seenn stages` use."""
    return build_stages(load_config(config_path))


def final_outputs(stages: list[Stage] = STAGES) -> list[str]:
    """What `rule all` asks for: every stage's outputs."""
    return [p for st in stages for p in st.outputs.values()]


def write_params_file(stage: Stage, config: dict) -> Path:
    """Write the stage's slice of the config to results/params/<stage>.json, only if it changed.

    Snakemake takes this file as an input, so a change to any key the stage reads reruns it
    (mtime), while an unchanged slice keeps its old mtime and reruns nothing."""
    path = Path(stage.params_file)
    text = json.dumps(select_keys(apply_overrides(config, stage.overrides), stage.params), indent=2, sort_keys=True) + "\n"
    if not path.exists() or path.read_text() != text:
        write_text(path, text)
    return path


# the config keys that shape the stage table (build_stages reads them): editing one by hand without
# `seenn dvc-yaml` leaves dvc.yaml describing another DAG. DVC sees no stage of the old DAG change, so
# dvc.yaml carries one guard stage of its own that depends on them and fails while dvc.yaml is out of
# date (Snakemake reads params.yaml itself; `seenn run` refuses a drifted dvc.yaml under either tool)
TABLE_KEYS = ("seed", "seeds", "conversion.enabled", "report.paper_row", "seenn1.scores", "teas.enabled", "teas.only",
              "teas.retrain_converted", "data.name", "data.split_list", "shift.enabled", "shift.noise_std",
              "neurobench.enabled")
TABLE_GUARD = "stage_table"
TABLE_GUARD_DESC = ("DVC only: fails while dvc.yaml no longer matches the stage table of params.yaml "
                    "(run `seenn dvc-yaml`); nothing reads it")


def dvc_yaml(table: list[Stage] = STAGES) -> str:
    """dvc.yaml generated from a stage table (outputs uncached: see README, 'Two front doors')."""
    import yaml

    def out_entries(st: Stage, roles) -> list:
        return [{st.outputs[r]: {"cache": False}} for r in roles]

    stages = {}
    for st in table:
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
    stages[TABLE_GUARD] = {"cmd": "seenn dvc-yaml --check", "desc": TABLE_GUARD_DESC, "params": list(TABLE_KEYS)}
    top_plots = [{pid: dict(d)} for st in table for pid, d in st.dvc_plots.items()]
    header = "# GENERATED by `seenn dvc-yaml` from the stage declarations (src/seenn/pipeline/table.py) -- do not edit by hand.\n"
    doc = {"stages": stages, **({"plots": top_plots} if top_plots else {})}
    return header + yaml.safe_dump(doc, sort_keys=False, width=120)


def dvc_yaml_drift(table: list[Stage], path: str | Path = "dvc.yaml") -> str | None:
    """How the stages of `path` differ from `table` in what the config shapes (stage names, their
    commands, params, data inputs and outputs; source files aside: checked by the tests), or None
    when they agree or there is no dvc.yaml. Cheap enough for every stage run."""
    import yaml

    path = Path(path)
    if not path.exists():
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    have = (yaml.load(path.read_text(), Loader=loader) or {}).get("stages") or {}
    have = {k: v for k, v in have.items() if k != TABLE_GUARD}
    want = {st.name: st for st in table}
    extra, missing = sorted(set(have) - set(want)), sorted(set(want) - set(have))
    if extra or missing:
        parts = ([f"it has {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''} that the table has not"] if extra else []) \
            + ([f"it lacks {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"] if missing else [])
        return "; ".join(parts)

    def paths(entries) -> set[str]:
        return {next(iter(e)) if isinstance(e, dict) else e for e in entries or []}

    for name, st in want.items():
        entry = have[name] or {}
        outs = paths(entry.get("outs")) | paths(entry.get("metrics")) | paths(entry.get("plots"))
        data_deps = {d for d in entry.get("deps") or [] if not d.startswith("src/")}
        if (entry.get("cmd") != f"seenn run {name}" or list(entry.get("params") or []) != list(st.params)
                or outs != set(st.outputs.values()) or data_deps != set(st.inputs.values())):
            return f"stage {name} differs (its command, params, inputs or outputs)"
    return None
