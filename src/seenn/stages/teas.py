"""TEAS's stages: allocate (activity profile, noise probe, initial windows at every ratio of
`teas.ratios`), retrain (regularized, periodic adjustment, final adjustment, fine-tuning at fixed
windows), evaluate (fixed T, allocation only, retrained, on the test split, through the same
operation counter as SEENN), latency (a measurement), and the paper's MNIST row (train, allocate,
retrain, evaluate the Input-Flatten-800-IF-10-IF MLP under both top-window rules, and the control:
the MLP at fixed T trained for the same extra epochs). `declare(cfg)` gives the stages the config
asks for (none with `teas.enabled: false`; the converted SNN's only with the conversion branch;
the MNIST row only on the digits)."""

from __future__ import annotations

import logging

import torch

from seenn.common.artifacts import write_csv, write_train_log
from seenn.common.errors import SeennError
from seenn.common.io import load_checked, read_json, save_checked, write_json
from seenn.common.runtime import tf32_enabled
from seenn.data.files import open_split
from seenn.data.source import held_inputs
from seenn.loops.predict import load_snn
from seenn.methods.catalog import converted_label
from seenn.stages import teas_paths as paths
from seenn.teas import allocation, layerwise
from seenn.teas.activity import noise_sensitivity
from seenn.teas.mlp import TeasMLP, teas_if
from seenn.teas.procedure import Profile, evaluate, profile, retrain, train_mlp, weights
from seenn.teas.variants import ALLOCATION, CONTROL, FIXED, NOREG, RETRAINED

log = logging.getLogger("seenn")

# torch threads of every TEAS stage: the layer-major runs are many small elementwise ops, where a
# second thread cost 4-5x the CPU time on a shared 2-core machine for little wall time, and a fixed
# count gives the same kernels (so the same bytes) whatever cores Snakemake hands out
THREADS = 1
RETRAINED_KIND = "teas_retrained"
MLP_KIND = "teas_mlp"
# the TEAS paper's MNIST row (Table 2: directly trained 2 FC, Liu et al. 2021 setting)
PAPER_MNIST = {"source": "TEAS paper, Table 2 (directly trained SNN, 2 FC, MNIST)", "timesteps": 16,
               "accuracy": 98.1, "teas_accuracy": 98.1, "teas_avg_timesteps": 6.7}



# --- inputs ---------------------------------------------------------------------------------------

def _split(path: str, samples: int, loader: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, object]:
    """(inputs, labels, spec) of a prepared split, its first `samples` (0: all)."""
    src = open_split(path)
    src, x = held_inputs(src, samples if samples > 0 else len(src), loader)
    y = src.y
    if samples > 0:
        x, y = x[:samples], y[:samples]
    return x.to(device), y.to(device), src.spec


def _load_mlp(path: str, spec) -> tuple[TeasMLP, dict]:
    ck = load_checked(path, what="TEAS MNIST MLP", producer="the teas_train_mnist stage")
    if not isinstance(ck, dict) or ck.get("kind") != MLP_KIND:
        raise SeennError(f"{path} is not a TEAS MNIST MLP checkpoint: rerun teas_train_mnist")
    if tuple(ck["input_shape"]) != tuple(spec.input_shape) or ck["num_classes"] != spec.num_classes:
        raise SeennError(f"{path} was trained for inputs {ck['input_shape']} and {ck['num_classes']} classes, the split "
                         f"has {spec.input_shape} and {spec.num_classes}: rerun teas_train_mnist")
    model = TeasMLP(tuple(ck["input_shape"]), ck["num_classes"], ck["hidden"], teas_if())
    model.load_state_dict(ck["state_dict"])
    return model, ck


def _load(ctx, spec):
    """(network, its full window T) of the stage's target."""
    if paths.runs_mlp(ctx.extras["target"]):
        model, ck = _load_mlp(ctx.inputs["model"], spec)
    else:
        model, ck = load_snn(ctx.inputs["model"], spec)
    return model.to(ctx.device).eval(), int(ck["timesteps"])


def _settings(ctx) -> dict:
    """The target's allocation settings: the MNIST row's from teas.mnist, the others' from teas."""
    t = ctx.params["teas"]
    target = ctx.extras["target"]
    if paths.runs_mlp(target):
        m = t["mnist"]
        return {"ratios": [m["ratio"]], "ratio": m["ratio"], "ratio_weights": m["ratio_weights"],
                "top_window": paths.MNIST_TARGETS.get(target, "full")}
    return {k: t[k] for k in ("ratios", "ratio", "ratio_weights", "top_window")}


def _label(ctx) -> dict:
    """{"label": ...} naming the converted SNN by its conversion method (the other targets: none)."""
    if ctx.extras["target"] != "converted":
        return {}
    return {"label": converted_label(ctx.params["conversion"]["method"])}


def _sizes(ctx) -> dict:
    """Batch and sample counts of the keys the stage declares (the others read as 0, unused): the
    converted SNN's (windows up to conversion.max_timesteps) are its own."""
    t = ctx.params["teas"]
    sizes = {k: t.get(f"{k}_samples", 0) for k in ("profile", "noise", "eval")}
    if ctx.extras["target"] == "converted":
        return {"batch": t["converted_batch_size"], **{k: _min0(v, t["converted_samples"]) for k, v in sizes.items()}}
    return {"batch": t["batch_size"], **sizes}


def _min0(a: int, b: int) -> int:
    """The smaller of two sample counts where 0 means all."""
    return max(a, b) if 0 in (a, b) else min(a, b)


# --- allocate -------------------------------------------------------------------------------------

def stage_allocate(ctx) -> None:
    """Stage teas_allocate_<target>: activity per layer (Eq. 2) and per-step costs on the validation
    split, the noise-sensitivity probe (Fig. 3), the initial windows at every ratio."""
    torch.set_num_threads(THREADS)
    p, t = ctx.params, ctx.params["teas"]
    s, z = _settings(ctx), _sizes(ctx)
    x, y, spec = _split(ctx.inputs["val"], max(z["profile"], z["noise"]) if 0 not in (z["profile"], z["noise"]) else 0,
                        p["loader"], ctx.device)
    model, T = _load(ctx, spec)
    xp = x if z["profile"] == 0 else x[: z["profile"]]
    prof = profile(model, xp, T, z["batch"], t["conversion"], t["expansion"])
    xn, yn = (x, y) if z["noise"] == 0 else (x[: z["noise"]], y[: z["noise"]])
    clean, noisy = noise_sensitivity(model, xn, yn, T, t["noise_u"], t["noise"], t["noise_scale"], seed=p["seed"],
                                     batch_size=z["batch"])
    w = weights(prof, s["ratio_weights"])
    act = prof.activity(t["activity"])
    allocs = []
    for rho in s["ratios"]:
        win = allocation.allocate_to_ratio(act, w, T, rho, s["top_window"])
        allocs.append({"ratio": rho, "windows": win, "achieved_ratio": allocation.scaling_ratio(win, w, T),
                       "avg_window": sum(win) / len(win)})
        log.info("teas %s: ratio %.3g -> windows %s (achieved %.3f)", ctx.extras["target"], rho, win, allocs[-1]["achieved_ratio"])
    write_json(ctx.outputs["allocation"], {
        "target": ctx.extras["target"], **_label(ctx), "T": T, "ratio": s["ratio"], "ratio_weights": s["ratio_weights"],
        "top_window": s["top_window"], "activity": t["activity"], "expansion": t["expansion"],
        "profile_samples": int(xp.shape[0]),
        "layers": [{"layer": a.name, "spikes": a.spikes, "neurons": a.neurons, "raw": a.raw, "rate": a.rate, "cost_per_step": c}
                   for a, c in zip(prof.layers, prof.costs)],
        "noise": {"u": t["noise_u"], "kind": t["noise"], "scale": t["noise_scale"], "samples": int(xn.shape[0]),
                  "clean_accuracy": clean, "accuracy": noisy},
        "allocations": allocs})


def _profile_of(alloc: dict) -> Profile:
    from seenn.teas.activity import LayerActivity

    layers = [LayerActivity(r["layer"], r["spikes"], r["neurons"], 1, 1) for r in alloc["layers"]]
    return Profile(layers, [r["cost_per_step"] for r in alloc["layers"]], alloc["T"])


# --- retrain --------------------------------------------------------------------------------------

def schedule(t: dict, mnist: bool, regularized: bool) -> dict:
    """The retraining settings of procedure.retrain from the `teas` keys (the MNIST row's epochs
    and lambda from teas.mnist); also what the report prints beside Table 1."""
    m = t["mnist"] if mnist else {"retrain_epochs": t["epochs"], "finetune_epochs": t["finetune_epochs"], "lambda": t["lambda"]}
    return {"epochs": m["retrain_epochs"], "finetune_epochs": m["finetune_epochs"],
            "lambda": m["lambda"] if regularized else 0.0, "lr": t["lr"], "finetune_lr": t["finetune_lr"],
            "decay": t["decay"], "decay_reading": t["decay_reading"], "batch_size": t["retrain_batch_size"],
            "adjust_every": t["adjust_every"], "adjust_layers": t["adjust_layers"],
            "adjust_max_change": t["adjust_max_change"], "adjustment": t["adjustment"], "start_slack": t["start_slack"],
            "activity": t["activity"], "temperature": t["mnist"]["temperature"] if mnist else 1.0,
            "log_every": t["log_every"]}


def _train_subset(ctx, mnist: bool):
    """(inputs, labels, spec) of the retraining: the first teas.retrain_samples of the train split
    shuffled by the seed (the whole split for the MNIST MLP)."""
    p, t = ctx.params, ctx.params["teas"]
    samples = 0 if mnist else t["retrain_samples"]
    src = open_split(ctx.inputs["train"])
    src, x = held_inputs(src, len(src), p["loader"])
    y = src.y
    if samples > 0:
        keep = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(p["seed"]))[:samples]
        x, y = x[keep], y[keep]
    return x.to(ctx.device), y.to(ctx.device), src.spec


def _state(model) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def stage_retrain(ctx) -> None:
    """Stage teas_retrain_<target>[_noreg]: from the trained network at each ratio's start windows
    (the allocation at the looser start ratio under teas.adjustment 'shorten'), regularized
    retraining with periodic adjustment, a final adjustment meeting the ratio, fine-tuning at the
    final windows; the ablation (`regularized` False) retrains at the default ratio with lambda 0."""
    torch.set_num_threads(THREADS)
    p, t = ctx.params, ctx.params["teas"]
    mnist = paths.is_mnist(ctx.extras["target"])
    regularized = ctx.extras["regularized"]
    x, y, spec = _train_subset(ctx, mnist)
    alloc = read_json(ctx.inputs["allocation"])
    s = _settings(ctx)
    prof = _profile_of(alloc)
    w = weights(prof, alloc["ratio_weights"])
    cfg = {**schedule(t, mnist, regularized), "top_window": s["top_window"]}
    entries, rows = [], []
    ratios = s["ratios"] if regularized else [s["ratio"]]
    for a in alloc["allocations"]:
        if a["ratio"] not in ratios:
            continue
        model, T = _load(ctx, spec)
        start = a["windows"]
        if cfg["adjustment"] == "shorten":
            start = allocation.allocate_to_ratio(prof.activity(t["activity"]), w, T,
                                                 allocation.start_ratio(a["ratio"], t["start_slack"]), s["top_window"])
        torch.manual_seed(p["seed"])
        with tf32_enabled(p["train"]["tf32"]):
            final, log_rows = retrain(model, x, y, start, prof.rates, w, T, a["ratio"], cfg, p["seed"], t["conversion"],
                                      t["expansion"])
        entries.append({"ratio": a["ratio"], "initial_windows": a["windows"], "start_windows": start, "windows": final,
                        "state_dict": _state(model)})
        rows += [{"ratio": a["ratio"], **r} for r in log_rows]
    save_checked(ctx.outputs["model"], {"kind": RETRAINED_KIND, "regularized": regularized, "lambda": cfg["lambda"],
                                        "samples": int(x.shape[0]), "schedule": cfg, "entries": entries})
    write_csv(ctx.outputs["log"], rows)


def stage_retrain_control(ctx) -> None:
    """Stage teas_retrain_mnist_fixed: the MNIST MLP at fixed T trained for the same extra epochs
    and schedule as its TEAS retraining (cross-entropy only, windows never adjusted): what the
    extra training alone gives."""
    torch.set_num_threads(THREADS)
    p, t = ctx.params, ctx.params["teas"]
    x, y, spec = _train_subset(ctx, True)
    model, T = _load(ctx, spec)
    cfg = {**schedule(t, True, False), "adjustment": "none", "top_window": "full"}
    torch.manual_seed(p["seed"])
    L = len(layerwise.spiking_layers(model))
    with tf32_enabled(p["train"]["tf32"]):
        final, log_rows = retrain(model, x, y, [T] * L, [1.0] * L, None, T, 1.0, cfg, p["seed"], t["conversion"],
                                  t["expansion"])
    save_checked(ctx.outputs["model"], {"kind": RETRAINED_KIND, "regularized": False, "lambda": 0.0, "samples": int(x.shape[0]),
                                        "schedule": cfg, "entries": [{"ratio": 1.0, "initial_windows": final,
                                                                      "start_windows": final, "windows": final,
                                                                      "state_dict": _state(model)}]})
    write_csv(ctx.outputs["log"], [{"ratio": 1.0, **r} for r in log_rows])


def load_retrained(path: str) -> dict:
    """A teas_retrain stage's checkpoint: its `entries` (ratio, windows, weights) and `schedule`."""
    ck = load_checked(path, what="TEAS retrained networks", producer="its teas_retrain stage")
    if not isinstance(ck, dict) or ck.get("kind") != RETRAINED_KIND:
        raise SeennError(f"{path} is not a TEAS retraining result: rerun its teas_retrain stage")
    return ck


# --- evaluate -------------------------------------------------------------------------------------

def stage_evaluate(ctx) -> None:
    """Stage teas_evaluate_<target>: fixed T, allocation only at every ratio and, where the target
    was retrained, the retrained networks (with and without the regularizer), on the test split."""
    torch.set_num_threads(THREADS)
    p, t = ctx.params, ctx.params["teas"]
    z = _sizes(ctx)
    x, y, spec = _split(ctx.inputs["test"], z["eval"], p["loader"], ctx.device)
    alloc = read_json(ctx.inputs["allocation"])
    costs = [r["cost_per_step"] for r in alloc["layers"]]
    model, T = _load(ctx, spec)
    bs, conv, exp = z["batch"], t["conversion"], t["expansion"]
    L = len(layerwise.spiking_layers(model))
    rows = [{"variant": FIXED, "ratio": 1.0, **evaluate(model, x, y, [T] * L, costs, bs, conv, exp)}]
    for a in alloc["allocations"]:
        rows.append({"variant": ALLOCATION, "ratio": a["ratio"], **evaluate(model, x, y, a["windows"], costs, bs, conv, exp)})
    schedules = {}
    for role, variant in (("retrained_fixed", CONTROL), ("retrained", RETRAINED), ("retrained_noreg", NOREG)):
        if role not in ctx.inputs:
            continue
        ck = load_retrained(ctx.inputs[role])
        schedules[role] = ck.get("schedule")
        for e in ck["entries"]:
            model.load_state_dict(e["state_dict"])
            rows.append({"variant": variant, "ratio": e["ratio"], "start_windows": e.get("start_windows"),
                         **evaluate(model, x, y, e["windows"], costs, bs, conv, exp)})
    for r in rows:
        log.info("teas %s %s ratio %.3g: windows %s acc %.2f %% TE %.3f energy %.4g uJ", ctx.extras["target"], r["variant"],
                 r["ratio"], r["windows"], r["accuracy"], r["timestep_equivalents"], r["energy_uj"])
    s = _settings(ctx)
    out = {"target": ctx.extras["target"], **_label(ctx), "T": T, "ratio": s["ratio"], "ratio_weights": s["ratio_weights"],
           "top_window": s["top_window"], "activity": alloc["activity"], "expansion": exp,
           "layers": [r["layer"] for r in alloc["layers"]], "costs": costs, "rows": rows,
           "noise": {k: alloc["noise"][k] for k in ("u", "kind", "scale")}}
    if "retrained" in schedules:
        out["schedule"] = schedules["retrained"]
    if paths.is_mnist(ctx.extras["target"]):
        out["paper"] = PAPER_MNIST
    write_json(ctx.outputs["evaluation"], out)


# --- the MNIST MLP --------------------------------------------------------------------------------

def stage_train_mnist(ctx) -> None:
    """Stage teas_train_mnist: the paper's Input-Flatten-800-IF-10-IF trained directly at T steps."""
    torch.set_num_threads(THREADS)
    p, m = ctx.params, ctx.params["teas"]["mnist"]
    x, y, spec = _split(ctx.inputs["train"], 0, p["loader"], ctx.device)
    xv, yv, _ = _split(ctx.inputs["val"], 0, p["loader"], ctx.device)
    torch.manual_seed(p["seed"])
    model = TeasMLP(tuple(spec.input_shape), spec.num_classes, m["hidden"], teas_if()).to(ctx.device)
    with tf32_enabled(p["train"]["tf32"]):
        rows = train_mlp(model, x, y, xv, yv, m["timesteps"], m["epochs"], m["lr"], m["batch_size"], p["seed"],
                         m["temperature"], m["log_every"])
    save_checked(ctx.outputs["model"], {"kind": MLP_KIND, "input_shape": list(spec.input_shape), "num_classes": spec.num_classes,
                                        "hidden": m["hidden"], "timesteps": m["timesteps"], "dataset": spec.name,
                                        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}})
    write_train_log(ctx.outputs["log"], rows)


# --- declarations ---------------------------------------------------------------------------------

ALLOCATE_KEYS = tuple(f"teas.{k}" for k in ("ratio", "ratios", "ratio_weights", "top_window", "conversion", "expansion",
                                             "activity", "profile_samples", "noise_u", "noise", "noise_scale",
                                             "noise_samples", "batch_size", "converted_batch_size", "converted_samples"))
RETRAIN_KEYS = tuple(f"teas.{k}" for k in ("ratio", "ratios", "ratio_weights", "top_window", "conversion", "expansion",
                                            "activity", "retrain_samples", "epochs", "adjust_every", "adjust_layers",
                                            "adjust_max_change", "adjustment", "start_slack", "finetune_epochs", "lambda",
                                            "lr", "finetune_lr", "decay", "decay_reading", "retrain_batch_size", "log_every"))
EVALUATE_KEYS = tuple(f"teas.{k}" for k in ("ratio", "ratios", "ratio_weights", "top_window", "conversion", "expansion",
                                             "eval_samples", "batch_size", "converted_batch_size", "converted_samples"))
RUN_KEYS = ("seed", "device", "deterministic", "loader")


def _target_keys(target: str) -> tuple[str, ...]:
    """The keys a target's stages read beyond the TEAS keys: the MNIST row's, the converted SNN's method
    (its label)."""
    return ("teas.mnist",) if paths.is_mnist(target) else ("conversion.method",) if target == "converted" else ()


def _model_of(target: str) -> str:
    from seenn.stages.layout import branch_dir

    return paths.MNIST_MODEL if paths.is_mnist(target) else f"{branch_dir(target)}/snn.pt"


def declare(conversion: bool = True, mnist: bool = True, direct: bool = True, retrain_converted: bool = False) -> list:
    """TEAS's stages: on the direct and fine-tuned SNNs (unless `direct` is false: teas.only), the
    converted one with `conversion` (retrained too with `retrain_converted`), and the MNIST row when
    `mnist` (the digits): the MLP, its two top-window readings and the control."""
    from seenn.stages.declaration import TF32_KEY, Stage
    from seenn.stages.layout import split_paths

    s = split_paths()
    mnist_keys = _target_keys(next(iter(paths.MNIST_TARGETS)))
    stages = []
    targets = paths.targets(conversion, mnist, direct)
    if mnist:
        stages.append(Stage(name="teas_train_mnist", run=stage_train_mnist,
                            desc="TEAS MNIST row: the Input-Flatten-800-IF-10-IF MLP trained directly (paper Table 2)",
                            params=RUN_KEYS + (TF32_KEY,) + mnist_keys, inputs={"train": s["train"], "val": s["val"]},
                            outputs={"model": paths.MNIST_MODEL, "log": paths.MNIST_TRAIN_LOG}, plots=("log",), threads=THREADS))
        stages.append(Stage(name="teas_retrain_mnist_fixed", run=stage_retrain_control,
                            desc="TEAS MNIST row's control: the MLP at fixed T trained for the retraining's extra epochs",
                            params=RUN_KEYS + RETRAIN_KEYS + (TF32_KEY,) + mnist_keys,
                            inputs={"model": paths.MNIST_MODEL, "train": s["train"]},
                            outputs={"model": paths.MNIST_CONTROL, "log": paths.MNIST_CONTROL_LOG}, plots=("log",),
                            options={"target": paths.MNIST}, threads=THREADS))
    for target in targets:
        extra = _target_keys(target)
        stages.append(Stage(name=f"teas_allocate_{target}", run=stage_allocate,
                            desc=f"TEAS on the {target} SNN: activity profile, noise probe, initial windows at every ratio",
                            params=RUN_KEYS + ALLOCATE_KEYS + extra, inputs={"model": _model_of(target), "val": s["val"]},
                            outputs={"allocation": paths.allocation(target)}, options={"target": target}, threads=THREADS))
    retrained_targets = (([("direct", True), ("direct", False)] if direct else [])
                         + ([("converted", True)] if conversion and retrain_converted else [])
                         + [(t, True) for t in paths.MNIST_TARGETS if mnist])
    for target, regularized in retrained_targets:
        extra = _target_keys(target)
        stages.append(Stage(name=f"teas_retrain_{target}{'' if regularized else '_noreg'}", run=stage_retrain,
                            desc=(f"TEAS retraining of the {target} SNN: regularized, periodic and final adjustment, fine-tuning"
                                  if regularized else f"TEAS ablation on the {target} SNN: retrained without the regularizer"),
                            params=RUN_KEYS + RETRAIN_KEYS + (TF32_KEY,) + extra,
                            inputs={"model": _model_of(target), "train": s["train"], "allocation": paths.allocation(target)},
                            outputs={"model": paths.retrained(target, regularized), "log": paths.retrain_log(target, regularized)},
                            plots=("log",), options={"target": target, "regularized": regularized}, threads=THREADS))
    for target in targets:
        extra = _target_keys(target)
        retrained = {"retrained": paths.retrained(target)} if (target, True) in retrained_targets else {}
        if target == "direct":
            retrained["retrained_noreg"] = paths.retrained(target, False)
        if paths.is_mnist(target):
            retrained["retrained_fixed"] = paths.MNIST_CONTROL
        stages.append(Stage(name=f"teas_evaluate_{target}", run=stage_evaluate,
                            desc=(f"TEAS on the {target} SNN: fixed T, allocation (no retraining)"
                                  f"{', retrained' if retrained else ''} (test)"),
                            params=RUN_KEYS + EVALUATE_KEYS + extra,
                            inputs={"model": _model_of(target), "test": s["test"], "allocation": paths.allocation(target),
                                    **retrained},
                            outputs={"evaluation": paths.evaluation(target)},
                            options={"target": target}, threads=THREADS))
    return stages
